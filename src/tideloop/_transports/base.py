"""What every fd-backed transport shares: extra info, flow control, and the closing protocol.

Each transport is two objects (see docs in ``stream.py``):

- a *core*, a ``TransportCore`` subclass (a Cython extension type when compiled): it owns the
  fd, the write buffer and the state, and the loop calls it inline on readiness;
- a *facade*, a small Python class deriving from ``asyncio.Transport`` (or another asyncio
  transport class) whose methods forward to the core. Protocols only ever see the facade.

Why two: asyncio's transport classes declare ``__slots__ = ('_extra',)``, which gives them an
instance layout that no extension type can share, so a compiled class cannot inherit from
them; yet ``isinstance(transport, asyncio.Transport)`` must hold (CPython's own tests assert
it). The facade costs one forwarding call on the write path and nothing on the read path.

One lifecycle for every core (``_state``; changed only through ``_set_state``, which checks
the transition against ``_NEXT`` and raises AssertionError on any other)::

    OPEN --close() with output buffered--> CLOSING
    OPEN --close() with nothing buffered, abort(), EOF, fatal error--> LOST
    CLOSING --abort(), fatal error, peer gone--> LOST
    CLOSING --buffer flushed--> CLOSED   (connection_lost called at once, as asyncio)
    LOST --next pass--> CLOSED           (connection_lost called)

``connection_lost`` runs exactly once, on entering CLOSED, and only if ``connection_made`` was
called; after it ``_sock``, ``_protocol`` and ``_loop`` are None. A transport kind may use a
subset (a read pipe never enters CLOSING). TLS is not a core: its app-side grammar is
asyncio's ``SSLProtocol`` one (``tls_core.py``), layered over a stream core's lifecycle.

Invariant: ``_closing`` is True iff ``_state != OPEN`` (is_closing()).
Invariant: ``_conn_lost`` keeps asyncio's per-kind meaning (stream and datagram: 1 once
connection_lost is scheduled, then one more per write after it; write pipe: failed or late
writes), used only to warn from the 5th such write on; the lifecycle is ``_state``.

Contexts (``contextvars``), as asyncio, where each reader or writer Handle runs in a copy of the
context current when the reader or writer was added:

- the loop calls a core only through ``_on_readable`` / ``_on_writable``, defined here and
  nowhere else: they enter ``_context`` (copied at creation, again at each resume_reading())
  or ``_write_context`` (copied when a write first buffers) and call the subclass's
  ``_read_ready`` / ``_write_ready``. Every protocol callback a readiness event causes, and
  everything it schedules, therefore runs in that context: none can be written outside it;
- connection_made, and connection_lost after close()/abort(), run in a copy of the context
  that scheduled them (call_soon's rule); pause_writing and error_received raised by a
  write run in the writer's context, synchronously, as in asyncio;
- except where ``_shared_context`` is set (stream cores, on Pythons whose asyncio gives a
  socket transport one context: 3.15): then ``_context`` is the one context of everything
  above but pause_writing, with no copy at resume_reading() or at a write that buffers.
"""

from __future__ import annotations

import contextvars
import warnings
from asyncio import constants as _constants
from asyncio import futures as _futures
from typing import Any

from .._compat import logger as _logger
from .._core.watcher import IOWatcher

_copy_context = contextvars.copy_context


def _asyncio_shares_context() -> bool:
    """Whether asyncio's socket transports take a ``context`` and run every callback they
    schedule or watch for in it (3.15; detected, not version-checked, in case of backports)."""
    try:
        from asyncio import selector_events

        init = selector_events._SelectorTransport.__init__
        return "context" in init.__code__.co_varnames[: init.__code__.co_argcount + 1]
    except Exception:  # an asyncio without that class: keep the per-handle copies
        return False


# Stream cores (TCP, Unix, and TLS's socket) use one context, as asyncio does here.
STREAM_SHARED_CONTEXT = _asyncio_shares_context()
_LOG_THRESHOLD_FOR_CONNLOST_WRITES = _constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES


_set_result_unless_cancelled = _futures._set_result_unless_cancelled

# The lifecycle's states (ints: C ints in the compiled build) and its legal transitions.
OPEN = 0
CLOSING = 1
LOST = 2
CLOSED = 3
# _NEXT_<state> has bit s set iff <state> -> s is a legal transition.
_NEXT_OPEN = (1 << CLOSING) | (1 << LOST)
_NEXT_CLOSING = (1 << LOST) | (1 << CLOSED)
_NEXT_LOST = 1 << CLOSED
_STATE_NAMES = ("OPEN", "CLOSING", "LOST", "CLOSED")
# True in the compiled build: every loop a transport is made for gets a RecvState.
_NATIVE = not __file__.endswith(".py")


def _protocol_method(protocol: Any, name: str) -> Any:
    """protocol.<name>, bound now; or, if the protocol lacks it, a callable that looks it up
    at each call, so the AttributeError comes when asyncio's would (on the first datagram or
    error), not at creation."""
    method = getattr(protocol, name, None)
    if method is not None:
        return method

    def late_bound(*args: Any) -> Any:
        return getattr(protocol, name)(*args)

    return late_bound


class RecvState:
    """The compiled build's per-loop read state: a C ``tideloop_rx`` (_sockio.pxd) with the
    receive buffer, the spare bytes object and the last datagram's source address.

    One per loop (``loop._recv_state``, see _net/registry.py; made by the loop's first
    transport) and never replaced, so loops in different threads share nothing. Only the
    loop's thread reads through it. Each transport core keeps a typed reference
    (``_recv_state``), taken at creation: two loads on the read path, and the state lives as
    long as any reader of it.
    Pure mode never makes one (its transports call the socket methods).
    """

    __slots__ = ()

    def __cinit__(self) -> None:
        # Compiled build only (Cython's constructor hook), as __dealloc__.
        self.rx = tideloop_rx_new()  # noqa: F821
        if not self.rx:
            raise MemoryError

    def __dealloc__(self) -> None:
        tideloop_rx_free(self.rx)  # noqa: F821


# Write-buffer watermarks are held as C doubles (compiled build), compared with C sizes. Any
# number asyncio accepts must work: huge ints, floats, Fractions. Capping them at 2**62, more
# than any buffer can hold, keeps every comparison exact; the getters return what was set.
_WATER_CAP = float(1 << 62)
_DEFAULT_WATER_MARKS = (16 * 1024, 64 * 1024)  # (low, high), asyncio's


def _water_mark(value: Any) -> float:
    """``value`` (a number >= 0) as the double a watermark field holds; see _WATER_CAP."""
    return _WATER_CAP if value > _WATER_CAP else float(value)


def _next_states(state: int) -> int:
    if state == OPEN:
        return _NEXT_OPEN
    if state == CLOSING:
        return _NEXT_CLOSING
    if state == LOST:
        return _NEXT_LOST
    return 0


def _check_transition(core: Any, old: int, new: int) -> None:
    """Raise AssertionError unless old -> new is a legal lifecycle transition."""
    if not (_next_states(old) >> new) & 1:
        raise AssertionError(
            f"{type(core).__name__}: illegal transition "
            f"{_STATE_NAMES[old]} -> {_STATE_NAMES[new]}"
        )


class TransportCore(IOWatcher):
    """State and behaviour common to the stream, datagram and pipe transports' cores.

    Subclasses implement ``_read_ready`` / ``_write_ready`` (never ``_on_readable`` /
    ``_on_writable``: see "Contexts" in the module docstring).
    """

    __slots__ = (
        "_loop",
        "_recv_state",
        "_facade",
        "_protocol",
        "_sock",
        "_sock_fd",
        "_extra",
        "_context",
        "_write_context",
        "_shared_context",
        "_on_lost",
        "_state",
        "_closing",
        "_conn_lost",
        "_protocol_connected",
        "_protocol_paused",
        "_high_water",
        "_low_water",
        "_water_marks",
        "_buffer_size",
        "_paused",
        "_reading",
        "_is_connection",
    )

    def __init__(
        self, loop: Any, sock: Any, fd: int, extra: dict | None, context: Any = None
    ) -> None:
        self._loop = loop
        self._flush_next = None  # not chained for the loop's end-of-pass flush (IOWatcher)
        # Compiled build: the loop's read state, made by its first transport; None in pure mode.
        self._recv_state = None
        if _NATIVE and loop is not None:
            if self._loop._recv_state is None:
                self._loop._recv_state = RecvState()
            self._recv_state = self._loop._recv_state
        self._facade = None
        self._protocol = None
        self._sock = sock
        self._sock_fd = fd
        self._extra = {} if extra is None else dict(extra)
        # Protocol callbacks made from readiness run in a copy of the creator's context, as
        # asyncio's reader/writer handles do; a creator that already runs in a fresh copy made
        # for this transport (the server's accept) passes it, saving a Context per connection.
        self._context = _copy_context() if context is None else context
        # The context _write_ready runs in: copied by the write that started buffering.
        self._write_context = None
        # Set by a subclass whose asyncio counterpart keeps one context (see "Contexts").
        self._shared_context = False
        # Given by whoever attached the transport (a Server: its _detach); called with the
        # facade once, after connection_lost (or from the facade's __del__ if abandoned).
        self._on_lost = None
        self._state = OPEN
        self._closing = False
        self._conn_lost = 0
        self._protocol_connected = False
        self._protocol_paused = False
        self._buffer_size = 0
        self._water_marks = _DEFAULT_WATER_MARKS
        self._low_water, self._high_water = _DEFAULT_WATER_MARKS
        self._paused = False  # pause_reading() called (and not resumed)
        self._reading = False  # registered with the loop for reading
        # Counted in the loop's metrics (transports, and connections if a subclass says so)
        # until _call_connection_lost.
        self._is_connection = False
        if loop is not None:
            self._loop._stats.transports += 1

    # ------------------------------------------------------------------ lifecycle

    def _set_state(self, state: int) -> None:
        """Move to ``state``; AssertionError if the lifecycle has no such transition."""
        _check_transition(self, self._state, state)
        self._state = state
        self._closing = True

    # ------------------------------------------------------------------ readiness
    # The loop's only ways in (IOWatcher). Each enters the context the event belongs to, so
    # whatever protocol callback the event leads to runs there.

    def _on_readable(self) -> None:
        if _NATIVE:
            context = self._context
            tideloop_context_enter(context)  # noqa: F821
            try:
                self._read_ready()
            finally:
                tideloop_context_exit(context)  # noqa: F821
        else:
            self._context.run(self._read_ready)

    def _on_writable(self) -> None:
        if _NATIVE:
            context = self._write_context
            tideloop_context_enter(context)  # noqa: F821
            try:
                self._write_ready()
            finally:
                tideloop_context_exit(context)  # noqa: F821
        else:
            self._write_context.run(self._write_ready)

    def _read_ready(self) -> None:
        raise NotImplementedError

    def _write_ready(self) -> None:
        raise NotImplementedError

    def _add_writer(self) -> None:
        """Watch the fd for writability, from a write that buffers (in the writer's context,
        which _write_ready will run in, as asyncio's writer Handle)."""
        self._write_context = self._context if self._shared_context else _copy_context()
        self._loop._add_writer(self._sock_fd, self)

    # ------------------------------------------------------------------ basics

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        extra = self._extra
        if extra is None:
            extra = self._extra = self._make_extra()
        return extra.get(name, default)

    def _make_extra(self) -> dict:
        """The extra-info dict of a core whose ``_extra`` was left None (built on first use:
        an idle connection never pays for it); overridden by StreamCore."""
        return {}

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol
        self._protocol_connected = True

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return self._buffer_size

    # ------------------------------------------------------------------ flow control

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._water_marks

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """Set the watermarks: pause_writing() above ``high``, resume_writing() at ``low``."""
        if high is None:
            high = 64 * 1024 if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._water_marks = (low, high)
        self._high_water = _water_mark(high)
        self._low_water = _water_mark(low)
        self._maybe_pause_protocol()

    def _maybe_pause_protocol(self) -> None:
        if self._buffer_size <= self._high_water:
            return
        if not self._protocol_paused:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler(
                    {
                        "message": "protocol.pause_writing() failed",
                        "exception": exc,
                        "transport": self._facade,
                        "protocol": self._protocol,
                    }
                )

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low_water:
            self._protocol_paused = False
            try:
                self._protocol.resume_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler(
                    {
                        "message": "protocol.resume_writing() failed",
                        "exception": exc,
                        "transport": self._facade,
                        "protocol": self._protocol,
                    }
                )

    # ------------------------------------------------------------------ closing

    def _write_after_conn_lost(self) -> None:
        """Count a write to a lost connection; warn from the 5th on (asyncio's rule)."""
        if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            _logger().warning("socket.send() raised exception.")
        self._conn_lost += 1

    def _clear_buffer(self) -> None:
        """Drop buffered output (subclasses own the buffer)."""
        self._buffer_size = 0

    def abort(self) -> None:
        self._force_close(None)

    def _fatal_error(self, exc: BaseException, message: str = "Fatal error on transport") -> None:
        # Should be called from exception handler only.
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                _logger().debug("%r: %s", self._facade, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self._facade,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc)

    # ------------------------------------------------------------------ starting and reading
    # Shared by the stream and datagram cores; the pipe cores override these with their
    # state-table versions.

    def _start(self, waiter: Any) -> None:
        """Schedule connection_made, then reading, then the waiter (asyncio's order)."""
        loop = self._loop
        context = self._context if self._shared_context else None
        loop.call_soon(self._protocol.connection_made, self._facade, context=context)
        loop.call_soon(self._start_reading, context=context)
        if waiter is not None:
            loop.call_soon(_set_result_unless_cancelled, waiter, None, context=context)

    def _start_reading(self) -> None:
        if self.is_reading():
            self._reading = True
            self._loop._add_reader(self._sock_fd, self)

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True
        self._stop_reading()
        if self._loop.get_debug():
            _logger().debug("%r pauses reading", self._facade)

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        # asyncio re-adds its reader Handle here, in a copy of the caller's context.
        if not self._shared_context:
            self._context = _copy_context()
        self._start_reading()
        if self._loop.get_debug():
            _logger().debug("%r resumes reading", self._facade)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            self._loop._remove_reader(self._sock_fd)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        """Stop reading; connection_lost(None) follows once the write buffer is flushed."""
        if self._closing:
            return
        if self._buffer_size:  # invariant: 0 iff nothing is buffered
            self._set_state(CLOSING)
            self._stop_reading()
            return
        self._set_state(LOST)
        self._stop_reading()
        self._conn_lost += 1
        self._loop._remove_writer(self._sock_fd)
        context = self._context if self._shared_context else None
        self._loop.call_soon(self._call_connection_lost, None, context=context)

    def _force_close(self, exc: BaseException | None) -> None:
        """Close now, dropping buffered output; connection_lost(exc) follows."""
        if self._state >= LOST:
            return
        if self._buffer_size:
            self._clear_buffer()
            self._loop._remove_writer(self._sock_fd)
        self._set_state(LOST)
        self._stop_reading()
        self._conn_lost += 1
        context = self._context if self._shared_context else None
        self._loop.call_soon(self._call_connection_lost, exc, context=context)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        self._set_state(CLOSED)
        try:
            if self._protocol_connected:
                self._protocol.connection_lost(exc)
        finally:
            self._close_fd()
            self._protocol = None
            if self._loop is not None:
                stats = self._loop._stats
                stats.transports -= 1
                if self._is_connection:
                    stats.connections -= 1
            self._loop = None
            on_lost = self._on_lost
            if on_lost is not None:
                self._on_lost = None
                on_lost(self._facade)
            # Break the core <-> facade cycle; the facade keeps its core (closed) for callers.
            self._facade = None

    def _close_fd(self) -> None:
        """Close the owned socket or pipe (once)."""
        sock = self._sock
        if sock is not None and self._extra is None:
            # "socket" must stay the (now closed) socket, as asyncio's extra keeps it.
            self._extra = self._make_extra()
        self._sock = None
        if sock is not None:
            sock.close()

    def _repr_state(self) -> str:
        if self._sock is None:
            return "closed"
        if self._closing:
            return "closing"
        return ""


# --------------------------------------------------------------------------- facades
# The methods every facade forwards to its core. Each facade class lists these mixins
# before its asyncio base class, e.g. ``class StreamTransport(Facade, ReadFacade,
# WriteFacade, asyncio.Transport)``; the mixins have empty __slots__, so the facade keeps
# its own layout.


class Facade:
    """BaseTransport methods, the repr and the unclosed-transport warning."""

    __slots__ = ()

    def __repr__(self) -> str:
        core = self._core
        return repr(core).replace(type(core).__name__, type(self).__name__, 1)

    def __del__(self, _warn: Any = warnings.warn) -> None:
        core = self._core
        if core._sock is not None:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            core._close_fd()
            on_lost = core._on_lost
            if on_lost is not None:  # abandoned: connection_lost will never report its end
                core._on_lost = None
                on_lost(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._core.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._core._closing

    def close(self) -> None:
        self._core.close()

    def set_protocol(self, protocol: Any) -> None:
        self._core.set_protocol(protocol)

    def get_protocol(self) -> Any:
        return self._core._protocol


class ReadFacade:
    """ReadTransport methods."""

    __slots__ = ()

    def is_reading(self) -> bool:
        return self._core.is_reading()

    def pause_reading(self) -> None:
        self._core.pause_reading()

    def resume_reading(self) -> None:
        self._core.resume_reading()


class WriteFacade:
    """The flow-control part of WriteTransport, and abort()."""

    __slots__ = ()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._core.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._core._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._core.get_write_buffer_limits()

    def abort(self) -> None:
        self._core.abort()
