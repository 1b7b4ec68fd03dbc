"""staggered_race: start attempts one after another, keep the first that succeeds (RFC 8305).

Same contract as ``asyncio.staggered.staggered_race`` (3.11-3.13), which ``create_connection``
uses for Happy Eyeballs: attempt 0 starts at once; attempt i+1 starts when attempt i fails or
``delay`` seconds after attempt i started, whichever comes first (``delay=None``: only on
failure, i.e. one after another). The first attempt to return wins; every other one is
cancelled. The result is ``(winner_result, winner_index, exceptions)`` where
``exceptions[i]`` is what attempt i raised (None for the winner), one entry per attempt
started.

Why not asyncio's own (it takes ``loop=``, so it would run on tideloop):

- 3.12/3.13.0's version asserts its bookkeeping order, which an eager task factory breaks
  (gh-124309): the attempt runs inside ``create_task`` before the race has recorded it;
- if the caller is cancelled it cancels the attempts but does not wait for them, so their
  sockets are closed only later, on some later pass, maybe after the loop was closed;
- a second attempt that succeeds although it was cancelled (one that swallowed the
  cancellation) trips an assertion and its result (a connected socket) leaks.

Here every attempt runs in a wrapper that records its outcome synchronously, so it does not
matter when the task is first stepped; the race returns (or raises) only after every attempt
task has finished; and a result that arrives after the winner, or after the race itself was
cancelled, is handed to ``discard`` (``create_connection`` passes ``socket.close``).

Invariant: ``_running`` == the number of attempt tasks not yet done; the race returns or
raises only when it is 0.
Invariant: ``_winner_index`` is set at most once; after it is set no attempt is started.
"""

from __future__ import annotations

import functools
from asyncio import events as _events
from asyncio import exceptions as _exceptions
from asyncio import tasks as _tasks
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

_CancelledError = _exceptions.CancelledError
_END = object()


class _Race:
    """The state of one staggered_race call; see the module docstring."""

    __slots__ = (
        "_loop",
        "_fns",
        "_delay",
        "_discard",
        "_tasks",
        "_exceptions",
        "_running",
        "_started",
        "_exhausted",
        "_latest_failed",
        "_winner_index",
        "_winner_result",
        "_fatal",
        "_wakeup",
        "_due",
        "_timer",
    )

    def __init__(
        self,
        loop: Any,
        coro_fns: Iterable[Callable[[], Awaitable[Any]]],
        delay: float | None,
        discard: Callable[[Any], object] | None,
    ) -> None:
        self._loop = loop
        self._fns = iter(coro_fns)
        self._delay = delay
        self._discard = discard
        self._tasks: list = []
        self._exceptions: list = []
        self._running = 0
        self._started = 0
        self._exhausted = False
        # The most recently started attempt has failed: start the next one now.
        self._latest_failed = False
        self._winner_index: int | None = None
        self._winner_result: Any = None
        # SystemExit/KeyboardInterrupt raised by an attempt: re-raised by the race.
        self._fatal: BaseException | None = None
        # The future the race task waits on; None while it is not waiting.
        self._wakeup: Any = None
        # ``delay`` has passed since the latest attempt started (set by ``_timer``).
        self._due = False
        self._timer: Any = None

    # ------------------------------------------------------------------ attempts

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def _on_due(self) -> None:
        self._timer = None
        self._due = True
        self._wake()

    def _start_next(self) -> None:
        """Start the next attempt (and its delay timer), or note that there is none."""
        self._latest_failed = False
        self._due = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fn: Any = next(self._fns, _END)
        if fn is _END:
            self._exhausted = True
            return
        if self._delay is not None:
            self._timer = self._loop.call_later(self._delay, self._on_due)
        index = self._started
        self._started += 1
        self._exceptions.append(None)
        self._running += 1
        # Recorded before create_task: an eager task may finish inside it.
        task = self._loop.create_task(self._attempt(index, fn))
        self._tasks.append(task)
        task.add_done_callback(functools.partial(self._task_done, index))

    async def _attempt(self, index: int, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            result = await fn()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._exceptions[index] = exc
            if index == self._started - 1:
                self._latest_failed = True
                self._wake()
            return
        if self._winner_index is None:
            self._winner_index = index
            self._winner_result = result
            current = _tasks.current_task(self._loop)
            for task in self._tasks:
                if task is not current:
                    task.cancel()
            self._wake()
        elif self._discard is not None:
            # Succeeded although it was cancelled (it swallowed the cancellation): not needed.
            self._discard(result)

    def _task_done(self, index: int, task: Any) -> None:
        self._running -= 1
        if task.cancelled():
            # Cancelled before its first step: the wrapper never ran.
            if self._exceptions[index] is None:
                self._exceptions[index] = _CancelledError()
        else:
            exc = task.exception()
            if exc is not None and self._fatal is None:
                self._fatal = exc
        self._wake()

    # ------------------------------------------------------------------ the race

    async def run(self) -> tuple[Any, int | None, list]:
        error: BaseException | None = None
        try:
            await self._race()
        except BaseException as exc:  # cancelled, or iterating coro_fns failed
            error = exc
        # Never leave an attempt running: cancel the rest and wait until all have finished.
        # Each is cancelled once, and again only if the race itself is cancelled again while
        # it waits (as asyncio 3.13's staggered_race): a second cancel() would interrupt an
        # attempt's own cleanup (its finally: await ...) at its next wake-up.
        self._cancel_running()
        while self._running:
            self._wakeup = self._loop.create_future()
            try:
                await self._wakeup
            except _CancelledError as exc:
                if error is None:
                    error = exc
                self._cancel_running()
            finally:
                self._wakeup = None
        try:
            if self._fatal is not None:
                raise self._fatal
            if error is not None:
                if self._winner_index is not None and self._discard is not None:
                    self._discard(self._winner_result)
                raise error
            return self._winner_result, self._winner_index, self._exceptions
        finally:
            error = self._fatal = None
            self._exceptions = []  # break cycles through the exceptions' tracebacks

    def _cancel_running(self) -> None:
        for task in self._tasks:
            if not task.done():
                task.cancel()

    async def _race(self) -> None:
        try:
            self._start_next()
            while self._winner_index is None and self._fatal is None:
                if not self._exhausted and (self._latest_failed or self._due):
                    self._start_next()
                elif self._exhausted and not self._running:
                    return
                else:
                    self._wakeup = self._loop.create_future()
                    try:
                        await self._wakeup
                    finally:
                        self._wakeup = None
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


async def staggered_race(
    coro_fns: Iterable[Callable[[], Awaitable[Any]]],
    delay: float | None,
    *,
    loop: Any = None,
    discard: Callable[[Any], object] | None = None,
) -> tuple[Any, int | None, list]:
    """Run the coroutine functions with staggered starts; return the first success.

    Returns ``(winner_result, winner_index, exceptions)`` as asyncio's staggered_race; see the
    module docstring. ``discard(result)`` is called for a successful result nobody will get
    (a late second winner, or the winner when the race itself is cancelled).
    """
    if loop is None:
        loop = _events.get_running_loop()
    return await _Race(loop, coro_fns, delay, discard).run()
