"""The loop core: ready queue, timer heap, poller and waker, and asyncio's lifecycle around them.

One pass of the loop (``_run_once``), as in asyncio:

1. drop cancelled timers from the top of the heap (or rebuild it when over half are cancelled);
2. poll, with timeout 0 if callbacks are ready or the loop is stopping, else until the nearest
   timer (capped at a day), else forever (a zero-timeout poll is skipped when no fd is watched);
3. take the timers due by ``time() + clock_resolution`` off the heap;
4. run, in asyncio's order, the callbacks queued before the pass, then I/O in event order
   (reader/writer Handles, queued as asyncio's are, and IOWatchers, called inline with no Handle
   per event), then the due timers. What they schedule waits for the next pass;
5. let the watchers that deferred writes during the pass send them (``_flush_writes``).

The core knows fds, handles and watchers, nothing above them: the layers above reach it
through ``_add_reader``/``_add_writer``/``_remove_reader``/``_remove_writer`` (an fd and a
Handle or an IOWatcher, unchecked), ``_add_callback`` and the public call_soon/call_later API.
It reports what escapes a callback through ``call_exception_handler`` (``_core/errors.py``).
The public ``add_reader`` family, the executor and the async-generator hooks are mixins above
it (``_net/registry.py``, ``_executor.py``, ``_asyncgens.py``); ``tideloop.EventLoop`` joins
them.

Invariant: ``_thread_id`` is not None exactly while ``run_forever`` runs (``is_running()``).
Invariant: ``_ready`` is one list for the loop's life, appended to by any thread (atomic under
the GIL); a pass runs its first ``ntodo`` entries by index (setting each slot to None before
running it, so nothing outlives its callback), then deletes them in one slice deletion (also
atomic), so a handle appended meanwhile, from any thread, is never lost.
Invariant: ``_timer_cancelled_count`` counts cancelled handles still in ``_scheduled``.
Invariant: every fd in ``_fds`` is registered with the poller for exactly ``entry.events``,
the events of its non-None reader/writer; with a lazy poller (epoll) an entry may also sit
registered with ``events == 0`` after its last reader/writer went away ("idle"), see
``_drop_events``.
"""

from __future__ import annotations

import heapq
import sys
import threading
import time
from asyncio import coroutines as _aio_coroutines
from asyncio import events as _aio_events
from asyncio import futures as _aio_futures
from asyncio import tasks as _aio_tasks
from collections.abc import Callable
from math import ceil as _ceil

# ldexp(x, 0) is x as a C double: PyFloat_AsDouble's conversion and its errors.
from math import ldexp as _as_double
from typing import Any

from .._compat import PY313 as _PY313
from .._compat import PY314 as _PY314
from .._compat import PY3133 as _PY3133
from .._compat import logger as _logger
from .._poll import make_poller, poller_name
from .._poll.constants import READ, WRITE
from .._poll.epoll import EpollPoller
from .handles import Handle, TimerHandle, new_handle, new_threadsafe_handle, new_timer_handle
from .metrics import LoopStats
from .timers import heap_pop, heap_push
from .waker import Waker
from .watcher import IOWatcher

# The core calls asyncio's private helpers (_get_loop, _set_running_loop, _is_debug_mode,
# _set_task_name), which typeshed does not declare, and passes itself as the loop, which it is
# only once tideloop.EventLoop joins it with AbstractEventLoop: to mypy, these are untyped.
_coroutines: Any = _aio_coroutines
_events: Any = _aio_events
_futures: Any = _aio_futures
_tasks: Any = _aio_tasks

# asyncio's own tuning constants (base_events), kept equal so timer behaviour matches.
_MIN_SCHEDULED_TIMER_HANDLES = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5
MAXIMUM_SELECT_TIMEOUT = 24 * 3600
DEBUG_STACK_DEPTH = 10

_heapify = heapq.heapify
_monotonic = time.monotonic
_get_ident = threading.get_ident
_iscoroutine = _coroutines.iscoroutine
# 3.14 deprecates the public name (a DeprecationWarning per call) and uses the private one.
_iscoroutinefunction = getattr(
    _coroutines, "_iscoroutinefunction", _coroutines.iscoroutinefunction
)
# True in the compiled build, where _clock.pxd's C clock is reachable.
_NATIVE = not __file__.endswith(".py")


def _have_native_clock() -> bool:
    return TIDELOOP_HAVE_NATIVE_CLOCK  # noqa: F821  (compiled build only)


_NATIVE_CLOCK = _NATIVE and _have_native_clock()


def _now() -> float:
    """The loop's clock: time.monotonic(), read straight from clock_gettime when compiled.

    Read after every callback (the metrics, _core/metrics.py), so in the compiled build it is
    a C inline function whose only call is the clock's; the Python fallback stays out of it.
    """
    if _NATIVE_CLOCK:
        return tideloop_monotonic()  # noqa: F821  (compiled build only)
    return _py_now()


def _py_now() -> float:
    return _monotonic()


def _format_handle(handle: Handle) -> str:
    cb = handle._callback
    if isinstance(getattr(cb, "__self__", None), _tasks.Task):
        # format the task
        return repr(cb.__self__)
    return str(handle)


def _run_until_complete_cb(fut: Any) -> None:
    if not fut.cancelled():
        exc = fut.exception()
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            # Issue #22429: run_forever() already finished, no need to stop it.
            return
    _futures._get_loop(fut).stop()


class FdEntry:
    """What the loop watches one fd for: a reader and a writer, each a Handle or an IOWatcher.

    Invariant: ``rwatch`` is ``reader`` when that is an IOWatcher, else None (``wwatch``
    likewise): typed once when set, so dispatching an event needs no type test.
    """

    __slots__ = ("reader", "writer", "rwatch", "wwatch", "events")

    def __init__(self) -> None:
        self.reader = None
        self.writer = None
        self.rwatch = None
        self.wwatch = None
        self.events = 0


class Loop:
    """The compiled core of ``tideloop.EventLoop``; see the module docstring for one pass."""

    def __init__(self, poller: Any = None) -> None:
        """``poller``: a backend name (``"epoll"``, ``"select"``), None (``TIDELOOP_POLLER``,
        else the platform's default) or a poller object; see ``tideloop._poll.make_poller``."""
        self._closed = False
        self._stopping = False
        self._ready: list[Any] = []
        self._scheduled: list[Any] = []  # TimerHandles, a heap
        self._timer_cancelled_count = 0
        self._thread_id: int | None = None
        self._clock_resolution = time.get_clock_info("monotonic").resolution
        self._task_factory = None
        self._current_handle: Any = None
        self._coroutine_origin_tracking_enabled = False
        self._coroutine_origin_tracking_saved_depth: Any = None
        self.slow_callback_duration = 0.1
        self._debug = False
        self.set_debug(_coroutines._is_debug_mode())
        self._fds: dict[int, FdEntry] = {}
        self._poller = make_poller(poller)
        self._lazy_unregister = bool(getattr(self._poller, "lazy_unregister", False))
        # Compiled build with epoll (or io_uring, which waits for epoll's set): _run_once
        # reads the poller's C event array directly.
        self._epoll = self._poller if _NATIVE and isinstance(self._poller, EpollPoller) else None
        self._waker = Waker()
        self._waker_fd = self._waker.fileno()
        self._poller.register(self._waker_fd, READ)
        # What tideloop.metrics() reports; see _core/metrics.py for when the clock is read.
        # run_forever() restarts t_last; set here too for those who call _run_once() directly.
        self._stats = LoopStats()
        self._stats.t_last = _now()
        # Watchers whose writes wait for the end of the pass, a FIFO chained through their
        # _flush_next (see _flush_writes; StreamCore._defer chains a stream transport).
        self._flush_head: IOWatcher | None = None
        self._flush_tail: IOWatcher | None = None

    def __repr__(self) -> str:
        return (
            f"<{self.__class__.__name__} running={self.is_running()} "
            f"closed={self.is_closed()} debug={self.get_debug()} "
            f"poller={poller_name(self._poller)}>"
        )

    # ---------------------------------------------------------------- lifecycle

    def run_forever(self) -> None:
        """Run until stop() is called."""
        self._run_forever_setup()
        try:
            while True:
                self._run_once()
                if self._stopping:
                    break
        finally:
            self._run_forever_cleanup()

    def _run_forever_setup(self) -> None:
        self._check_closed()
        self._check_running()
        self._set_coroutine_origin_tracking(self._debug)
        self._thread_id = _get_ident()
        # Looked up per call, not cached: asyncio's tests swap in the pure-Python version.
        _events._set_running_loop(self)
        stats = self._stats
        stats.t_run = stats.t_last = _now()

    def _run_forever_cleanup(self) -> None:
        if self._flush_head is not None:  # a pass ended by an exception escaping a callback
            self._flush_writes()
        stats = self._stats
        now = _now()
        if stats.in_poll:  # the poll raised (KeyboardInterrupt in select, say)
            stats.in_poll = False
            stats.idle += now - stats.t_last
        stats.elapsed += now - stats.t_run
        stats.t_last = now
        self._stopping = False
        self._thread_id = None
        _events._set_running_loop(None)
        self._set_coroutine_origin_tracking(False)

    def run_until_complete(self, future: Any) -> Any:
        """Run until the future (or coroutine, wrapped in a task) is done; return its result."""
        self._check_closed()
        self._check_running()
        new_task = not _futures.isfuture(future)
        future = _tasks.ensure_future(future, loop=self)
        if new_task:
            # An exception is raised if the future didn't complete, so there
            # is no need to log the "destroy pending task" message
            future._log_destroy_pending = False
        future.add_done_callback(_run_until_complete_cb)
        try:
            self.run_forever()
        except BaseException:
            if new_task and future.done() and not future.cancelled():
                # The coroutine raised a BaseException. Consume the exception
                # to not log a warning, the caller doesn't have access to the
                # local task.
                future.exception()
            raise
        finally:
            future.remove_done_callback(_run_until_complete_cb)
        if not future.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return future.result()

    def stop(self) -> None:
        """Stop after the callbacks already ready have run (a whole pass)."""
        self._stopping = True

    def is_running(self) -> bool:
        return self._thread_id is not None

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the loop: drop pending callbacks and fd watches, close the poller and waker."""
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self._closed:
            return
        if self._debug:
            _logger().debug("Close %r", self)
        self._closed = True
        self._ready.clear()
        self._scheduled.clear()
        self._timer_cancelled_count = 0
        for entry in self._fds.values():
            if isinstance(entry.reader, Handle):
                entry.reader.cancel()
            if isinstance(entry.writer, Handle):
                entry.writer.cancel()
        self._fds.clear()
        self._poller.close()
        self._waker.close()

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("Event loop is closed")

    def _check_running(self) -> None:
        if self.is_running():
            raise RuntimeError("This event loop is already running")
        if _events._get_running_loop() is not None:
            raise RuntimeError("Cannot run the event loop while another loop is running")

    def _check_thread(self) -> None:
        """Raise if called from a thread other than the one running the loop (debug mode)."""
        if self._thread_id is None:
            return
        if self._thread_id != _get_ident():
            raise RuntimeError(
                "Non-thread-safe operation invoked on an event loop other than the current one"
            )

    def _check_callback(self, callback: Any, method: str) -> None:
        if _iscoroutine(callback) or _iscoroutinefunction(callback):
            raise TypeError(f"coroutines cannot be used with {method}()")
        if not callable(callback):
            raise TypeError(f"a callable object was expected by {method}(), got {callback!r}")

    # ---------------------------------------------------------------- one pass

    def _run_once(self) -> None:
        """Run one full iteration of the event loop (see the module docstring)."""
        scheduled = self._scheduled
        sched_count = len(scheduled)
        if (
            sched_count > _MIN_SCHEDULED_TIMER_HANDLES
            and self._timer_cancelled_count / sched_count > _MIN_CANCELLED_TIMER_HANDLES_FRACTION
        ):
            # Remove delayed calls that were cancelled if their number is too high.
            new_scheduled = []
            for timer in scheduled:
                if timer._cancelled:
                    timer._scheduled = False
                else:
                    new_scheduled.append(timer)
            _heapify(new_scheduled)
            self._scheduled = scheduled = new_scheduled
            self._timer_cancelled_count = 0
        else:
            while scheduled:
                timer = scheduled[0]
                if not timer._cancelled:
                    break
                self._timer_cancelled_count -= 1
                heap_pop(scheduled)
                timer._scheduled = False

        ready = self._ready
        if ready or self._stopping:
            timeout = 0.0
        elif scheduled:
            timer = scheduled[0]
            timeout = timer._when - _now()
            # Written so that a NaN deadline (call_at(nan)) polls with timeout 0, as asyncio
            # 3.11/3.12's min(max(0, t), MAX): NaN fails both tests, and the timer is due below.
            if timeout > MAXIMUM_SELECT_TIMEOUT:
                timeout = MAXIMUM_SELECT_TIMEOUT
            elif not timeout >= 0.0:
                timeout = 0.0
        else:
            timeout = -1.0  # block until an event

        stats = self._stats
        epoll = self._epoll
        events: Any = None
        nevents = 0
        may_block = timeout != 0.0
        if may_block or self._fds:
            if may_block:
                stats.in_poll = True
            if epoll is not None:
                if timeout < 0.0:
                    timeout_ms = -1
                elif timeout == 0.0:
                    timeout_ms = 0
                else:
                    timeout_ms = _ceil(timeout * 1e3)
                # The events stay in epoll's C array until the next _wait: nothing below polls.
                nevents = epoll._wait(timeout_ms)
            else:
                events = self._poller.poll(timeout if timeout >= 0.0 else None)
                nevents = len(events)
        # else: callbacks are ready and no fd is watched, so a zero-timeout poll could only
        # report the waker, which the next blocking poll drains anyway: skip the syscall.

        # The pass's start, "now" (see _core/metrics.py): a poll that may block was idle from
        # the end of the last item, and is read after; the clock is read too when timers wait
        # (to take the due ones, as asyncio does). Otherwise the pass starts where the last
        # item ended: a zero-timeout poll's microseconds go to the first item run.
        if may_block:
            stats.in_poll = False
            now = _now()
            stats.idle += now - stats.t_last
            stats.t_last = now
        elif scheduled:
            now = stats.t_last = _now()
        else:
            now = stats.t_last
        stats.t_item = -1.0  # no item yet (the clock is never negative)
        stats.passes += 1
        stats.io_events += nevents  # less the waker's and stale ones (_process_event)
        ran = 0
        slow = self.slow_callback_duration
        timer_lag = 0.0

        # Due timers are taken now, as asyncio does (one scheduled meanwhile waits a pass).
        timers = None
        if scheduled:
            end_time = now + self._clock_resolution
            while scheduled:
                timer = scheduled[0]
                if timer._when >= end_time:
                    break
                heap_pop(scheduled)
                timer._scheduled = False
                if timers is None:
                    timers = []
                timers.append(timer)

        # asyncio's order within a pass: the callbacks queued before it, then I/O in event
        # order, then due timers. Callbacks scheduled meanwhile wait for the next pass.
        ntodo = len(ready)
        i = 0
        t = 0
        try:
            while i < ntodo:
                handle = ready[i]
                ready[i] = None  # asyncio pops before running: objects die as promptly
                i += 1
                if not handle._cancelled:
                    t0 = stats.t_item = stats.t_last
                    if self._debug:
                        self._run_handle_debug(handle)
                    else:
                        handle._run()
                    t1 = stats.t_last = _now()
                    ran += 1
                    if t1 - t0 >= slow:
                        self._note_slow(handle, t1 - t0)
            handle = None
            if nevents:
                if epoll is not None:
                    for k in range(nevents):
                        self._process_event(epoll._event_fd(k), epoll._event_mask(k))
                else:
                    for fd, mask in events:
                        self._process_event(fd, mask)
            if timers is not None:
                ntimers = len(timers)
                while t < ntimers:
                    timer = timers[t]
                    t += 1
                    if not timer._cancelled:
                        t0 = stats.t_item = stats.t_last
                        if t0 - timer._when > timer_lag:
                            timer_lag = t0 - timer._when
                        if self._debug:
                            self._run_handle_debug(timer)
                        else:
                            timer._run()
                        t1 = stats.t_last = _now()
                        stats.timers += 1
                        if t1 - t0 >= slow:
                            self._note_slow(timer, t1 - t0)
            # One lag sample per pass that ran anything (see _core/metrics.py).
            if stats.t_item >= 0.0:
                if stats.t_item - now > timer_lag:
                    timer_lag = stats.t_item - now
                if timer_lag > 0.0:
                    stats.record_lag(timer_lag)
                else:
                    stats.lag_zeros += 1
        finally:
            stats.callbacks += ran
            # Normally everything ran. If SystemExit/KeyboardInterrupt escaped a callback, the
            # queued handles and due timers after it stay queued, in order, as in asyncio
            # (unprocessed I/O events are level-triggered and come back on the next poll).
            if i:
                if _NATIVE:
                    tideloop_del_head(ready, i)  # noqa: F821  (loop.pxd; compiled build only)
                else:
                    del ready[:i]
            if timers is not None and t < len(timers):
                ready[ntodo - i : ntodo - i] = timers[t:]
        handle = None  # Needed to break cycles when an exception occurs.
        timer = None
        if self._flush_head is not None:
            self._flush_writes()

    def _flush_writes(self) -> None:
        """End of a pass: let each watcher that deferred writes during it send them.

        Transports defer the writes made while the loop runs so that the writes of one pass
        leave in one send (a response's headers and body, say). Invariant: a watcher is in
        the chain from ``_flush_head`` to ``_flush_tail`` at most once (it is chained iff
        its ``_flush_next`` is set or it is the tail), in the order of its first write of
        the pass; it is unlinked before its ``_on_flush`` runs,
        so writes made while flushing are flushed in this same call, and an exception
        escaping a flush leaves the rest chained for the next call. A chain, not a list: no
        allocation per pass.
        """
        while self._flush_head is not None:
            watcher = self._flush_head
            self._flush_head = watcher._flush_next
            if self._flush_head is None:
                self._flush_tail = None
            watcher._flush_next = None
            watcher._on_flush()

    def _run_handle_debug(self, handle: Any) -> None:
        try:
            self._current_handle = handle
            t0 = _now()
            handle._run()
            dt = _now() - t0
            if dt >= self.slow_callback_duration:
                _logger().warning("Executing %s took %.3f seconds", _format_handle(handle), dt)
        finally:
            self._current_handle = None
            handle = None  # a traceback holding this frame must not keep the handle alive

    def _process_event(self, fd: int, mask: int) -> None:
        """Run what waits on one fd's readiness: reader/writer Handles or watchers."""
        if fd == self._waker_fd:
            self._stats.io_events -= 1  # the pass counted every event; this one is the loop's
            self._waker.drain()
            return
        fds = self._fds
        entry = fds.get(fd)
        if entry is None:
            self._stats.io_events -= 1
            return
        if not entry.events:
            self._stats.io_events -= 1
            # Idle (lazily unregistered) and the fd has events nobody wants: drop it now.
            del fds[fd]
            self._poller.unregister(fd)
            return
        if mask & READ:
            watcher = entry.rwatch
            if watcher is not None:
                self._dispatch(watcher, True)
            elif entry.reader is not None:
                self._run_io_handle(entry.reader)
        if mask & WRITE:
            # Read the writer only now: the reader may have closed the fd's owner.
            watcher = entry.wwatch
            if watcher is not None:
                self._dispatch(watcher, False)
            elif entry.writer is not None:
                self._run_io_handle(entry.writer)

    def _note_slow(self, item: Any, duration: float) -> None:
        """Count and remember a callback or dispatch that ran ``duration`` >= the threshold,
        then call the slow-callback hook, if any, with the Handle (or, for a transport's I/O,
        the transport) and the duration. The hook's own time is not the next item's."""
        stats = self._stats
        stats.slow_count += 1
        if isinstance(item, Handle):
            subject = item
            what = _format_handle(item)
        else:
            subject = getattr(item, "_facade", None) or item
            what = repr(subject)
        stats.slow_recent.append((what, duration, stats.t_last))
        hook = stats.slow_hook
        if hook is not None:
            try:
                hook(subject, duration)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                loop: Any = self  # call_exception_handler: _core/errors.py's mixin
                loop.call_exception_handler(
                    {
                        "message": "Exception in the slow callback hook " + repr(hook),
                        "exception": exc,
                        "handle": subject,
                    }
                )
            stats.t_last = _now()

    def _run_io_handle(self, handle: Handle) -> None:
        """Run an add_reader/add_writer callback at its place in the pass (I/O phase)."""
        if not handle._cancelled:
            stats = self._stats
            t0 = stats.t_item = stats.t_last
            if self._debug:
                self._run_handle_debug(handle)
            else:
                handle._run()
            t1 = stats.t_last = _now()
            if t1 - t0 >= self.slow_callback_duration:
                self._note_slow(handle, t1 - t0)

    def _dispatch(self, watcher: IOWatcher, readable: bool) -> None:
        """Call a watcher inline; report (never propagate) what escapes it, as Handle._run."""
        stats = self._stats
        t0 = stats.t_item = stats.t_last
        try:
            if readable:
                watcher._on_readable()
            else:
                watcher._on_writable()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            loop: Any = self  # call_exception_handler: _core/errors.py's mixin, in EventLoop
            loop.call_exception_handler(
                {
                    "message": "Exception in I/O callback of " + repr(watcher),
                    "exception": exc,
                }
            )
        t1 = stats.t_last = _now()
        if t1 - t0 >= self.slow_callback_duration:
            if self._debug:
                what = "reading" if readable else "writing"
                _logger().warning(
                    "Executing %r (%s) took %.3f seconds", watcher, what, t1 - t0
                )
            self._note_slow(watcher, t1 - t0)

    # ---------------------------------------------------------------- callbacks

    def time(self) -> float:
        """Return the loop's clock: time.monotonic()."""
        return _now()

    def call_soon(self, callback: Callable[..., object], *args: Any, context: Any = None) -> Handle:
        """Arrange for callback(*args) to run on the next pass, in FIFO order."""
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_soon")
        handle = new_handle(callback, args, self, context, self._debug)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> Handle:
        """Like call_soon(), from any thread: wakes the loop if it is blocked in poll().

        On 3.14+ the handle is a ThreadSafeHandle (any thread may cancel it), as asyncio's.
        """
        self._check_closed()
        if self._debug:
            self._check_callback(callback, "call_soon_threadsafe")
        handle: Handle
        if _PY314:
            handle = new_threadsafe_handle(callback, args, self, context, self._debug)
        else:
            handle = new_handle(callback, args, self, context, self._debug)
        self._ready.append(handle)
        self._waker.wake()
        return handle

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> TimerHandle:
        """Arrange for callback(*args) to run ``delay`` seconds from now."""
        if delay is None:
            raise TypeError("delay must not be None")
        when = _now() + delay
        if type(when) is not float:  # as call_at: no float form raises before the heap sees it
            when = _as_double(when, 0)
        return self._call_at(when, callback, args, context, "call_later")

    def call_at(
        self, when: float, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> TimerHandle:
        """Arrange for callback(*args) to run at loop time ``when``.

        ``when`` is stored as a float in both build modes (the compiled heap holds C doubles):
        a value with no float form raises here, TypeError or, for an int beyond float's range,
        OverflowError, where asyncio stores it and raises the same from a later pass. NaN and
        infinities are kept (see ``_run_once``: a NaN deadline is due once it tops the heap).
        """
        if when is None:
            raise TypeError("when cannot be None")
        if type(when) is not float:
            when = _as_double(when, 0)
        return self._call_at(when, callback, args, context, "call_at")

    def _call_at(
        self, when: float, callback: Callable[..., object], args: tuple, context: Any, method: str
    ) -> TimerHandle:
        if self._closed:
            raise RuntimeError("Event loop is closed")
        if self._debug:
            self._check_thread()
            self._check_callback(callback, method)
        timer = new_timer_handle(when, callback, args, self, context, self._debug)
        heap_push(self._scheduled, timer)
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: TimerHandle) -> None:
        """Count a cancelled timer still in the heap (called by TimerHandle.cancel)."""
        if handle._scheduled:
            self._timer_cancelled_count += 1

    def _add_callback(self, handle: Handle) -> None:
        """Queue an existing handle to run on the next pass."""
        if not handle._cancelled:
            self._ready.append(handle)

    def _add_callback_signalsafe(self, handle: Handle) -> None:
        """Queue an existing handle from any thread (or a signal handler) and wake the loop."""
        if not handle._cancelled:
            self._ready.append(handle)
            self._waker.wake()

    def _write_to_self(self) -> None:
        """Wake the loop from another thread or a signal handler."""
        self._waker.wake()

    # ---------------------------------------------------------------- futures and tasks

    def create_future(self) -> Any:
        """Create an asyncio.Future attached to this loop (``asyncio.futures.Future``, per call)."""
        return _futures.Future(loop=self)

    def create_task(self, coro: Any, **kwargs: Any) -> Any:
        """Schedule a coroutine as an asyncio.Task (or the task factory's product).

        Keywords are handled as the running Python's asyncio does (its signature differs):

        - 3.14+ ``(coro, **kwargs)``: every keyword goes to the factory, or to Task, unchanged,
          so an eager factory starts the task with its name and context already set;
        - 3.13.3+ ``(coro, *, name=None, context=None, **kwargs)``, as 3.13.4 settled it (3.13.3
          also passed ``name``): the factory gets ``kwargs`` and ``context`` unless it is None,
          then ``set_name(name)`` (even for None);
        - 3.11-3.13.2 ``(coro, *, name=None, context=None)``: the factory gets ``context``
          only when it is not None, then the name is set (3.13: even None).

        ``asyncio.tasks.Task`` is looked up per call, as asyncio does (tests swap in _PyTask).
        """
        self._check_closed()
        factory = self._task_factory
        if _PY314:
            if factory is not None:
                return factory(self, coro, **kwargs)
            task = _tasks.Task(coro, loop=self, **kwargs)
        else:
            name = kwargs.pop("name", None)
            context = kwargs.pop("context", None)
            if kwargs and not _PY3133:
                raise TypeError(
                    f"create_task() got an unexpected keyword argument {next(iter(kwargs))!r}"
                )
            if factory is not None:
                if _PY3133:
                    if context is not None:
                        kwargs["context"] = context
                    task = factory(self, coro, **kwargs)
                elif context is None:
                    # Use legacy API if context is not needed
                    task = factory(self, coro)
                else:
                    task = factory(self, coro, context=context)
                if _PY313:
                    task.set_name(name)
                else:
                    _tasks._set_task_name(task, name)
                return task
            task = _tasks.Task(coro, loop=self, name=name, context=context, **kwargs)
        tb = task._source_traceback
        if tb and tb[-1].filename == __file__:
            del tb[-1]
        try:
            return task
        finally:
            # gh-128552: an eagerly failed task's exception traceback reaches this frame (pure
            # build): do not let the frame keep the task alive through a cycle.
            del task

    def set_task_factory(self, factory: Any) -> None:
        """Set the callable (loop, coro[, context=...]) used by create_task(); None resets."""
        if factory is not None and not callable(factory):
            raise TypeError("task factory must be a callable or None")
        self._task_factory = factory

    def get_task_factory(self) -> Any:
        return self._task_factory

    # ---------------------------------------------------------------- debug

    def set_slow_callback_hook(self, hook: Callable[[Any, float], object] | None) -> None:
        """Call ``hook(handle, seconds)`` after each callback that ran for at least
        ``slow_callback_duration`` seconds (``handle``: the Handle, or for a transport's I/O
        the transport); None removes it. What escapes the hook goes to the exception handler.
        """
        if hook is not None and not callable(hook):
            raise TypeError(f"a callable object or None is required, got {hook!r}")
        self._stats.slow_hook = hook

    def get_slow_callback_hook(self) -> Callable[[Any, float], object] | None:
        """The hook set by set_slow_callback_hook(), or None."""
        hook: Callable[[Any, float], object] | None = self._stats.slow_hook
        return hook

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = bool(enabled)
        if self.is_running():
            self.call_soon_threadsafe(self._set_coroutine_origin_tracking, enabled)

    def _set_coroutine_origin_tracking(self, enabled: bool) -> None:
        if bool(enabled) == bool(self._coroutine_origin_tracking_enabled):
            return
        if enabled:
            self._coroutine_origin_tracking_saved_depth = sys.get_coroutine_origin_tracking_depth()
            sys.set_coroutine_origin_tracking_depth(DEBUG_STACK_DEPTH)
        else:
            sys.set_coroutine_origin_tracking_depth(self._coroutine_origin_tracking_saved_depth)
        self._coroutine_origin_tracking_enabled = enabled

    # ---------------------------------------------------------------- readers and writers

    def _add_reader(self, fd: int, handle: Any) -> None:
        """Watch fd for reading with a Handle (queued) or an IOWatcher (called inline)."""
        self._check_closed()
        entry = self._fds.get(fd)
        if entry is None:
            self._poller.register(fd, READ)
            entry = FdEntry()
            entry.events = READ
            self._fds[fd] = entry
        else:
            if not entry.events & READ:
                self._poller.modify(fd, entry.events | READ)
                entry.events |= READ
            if isinstance(entry.reader, Handle):
                entry.reader.cancel()
        entry.reader = handle
        entry.rwatch = None if isinstance(handle, Handle) else handle

    def _add_writer(self, fd: int, handle: Any) -> None:
        """Watch fd for writing with a Handle (queued) or an IOWatcher (called inline)."""
        self._check_closed()
        entry = self._fds.get(fd)
        if entry is None:
            self._poller.register(fd, WRITE)
            entry = FdEntry()
            entry.events = WRITE
            self._fds[fd] = entry
        else:
            if not entry.events & WRITE:
                self._poller.modify(fd, entry.events | WRITE)
                entry.events |= WRITE
            if isinstance(entry.writer, Handle):
                entry.writer.cancel()
        entry.writer = handle
        entry.wwatch = None if isinstance(handle, Handle) else handle

    def _remove_reader(self, fd: int) -> bool:
        if self._closed:
            return False
        entry = self._fds.get(fd)
        if entry is None or entry.reader is None:
            return False
        if isinstance(entry.reader, Handle):
            entry.reader.cancel()
        entry.reader = entry.rwatch = None
        self._drop_events(fd, entry, READ)
        return True

    def _remove_writer(self, fd: int) -> bool:
        if self._closed:
            return False
        entry = self._fds.get(fd)
        if entry is None or entry.writer is None:
            return False
        if isinstance(entry.writer, Handle):
            entry.writer.cancel()
        entry.writer = entry.wwatch = None
        self._drop_events(fd, entry, WRITE)
        return True

    def _drop_events(self, fd: int, entry: FdEntry, events: int) -> None:
        entry.events &= ~events
        if entry.events:
            self._poller.modify(fd, entry.events)
        elif self._lazy_unregister:
            # Keep the fd registered but idle: the next _add_reader/_add_writer on it costs one
            # epoll_ctl(MOD) instead of DEL now + ADD later (a reader added and removed around
            # each read does exactly that). Safe only where the kernel forgets a closed fd by
            # itself (epoll): if the fd was closed meanwhile, MOD fails with ENOENT and the
            # poller falls back to ADD; if it reports events first, _process_event unregisters it.
            pass
        else:
            del self._fds[fd]
            self._poller.unregister(fd)
