"""The loop's executor API: run_in_executor, set_default_executor, shutdown_default_executor.

Semantics are asyncio's ``BaseEventLoop`` (3.11-3.14): the default executor is a
``ThreadPoolExecutor`` made on first use; once ``shutdown_default_executor()`` or ``close()``
ran, using the default executor raises RuntimeError, an explicit one still works.

Not part of the core: nothing here is on the hot path, and the core never calls it. The class
that mixes this in (``tideloop.EventLoop``) calls ``_close_executor()`` from ``close()``.

Invariant: ``_default_executor`` is None or a ThreadPoolExecutor that this loop may shut down;
after ``_executor_shutdown_called`` is set no new default executor is made.
"""

from __future__ import annotations

import concurrent.futures
import sys
import threading
import warnings
from asyncio import futures as _aio_futures
from asyncio import timeouts as _timeouts
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import LoopAPI

# Untyped: _set_result_unless_cancelled is private (not in typeshed), and wrap_future is given
# the loop, an AbstractEventLoop only once tideloop.EventLoop joins the mixins.
_futures: Any = _aio_futures


class ExecutorMixin:
    """The executor methods of ``asyncio.AbstractEventLoop``.

    Needs from the loop: ``_check_closed``, ``_check_callback``, ``_debug``, ``create_future``,
    ``is_closed`` and ``call_soon_threadsafe`` (the core).
    """

    # Class-level defaults: the instance gets its own values on first assignment, so no
    # __init__ cooperation is needed.
    _default_executor: concurrent.futures.ThreadPoolExecutor | None = None
    _executor_shutdown_called: bool = False

    def run_in_executor(
        self: LoopAPI, executor: Any, func: Callable[..., object], *args: Any
    ) -> Any:
        """Run func(*args) in the executor (default: a lazily created thread pool)."""
        self._check_closed()
        if self._debug:
            self._check_callback(func, "run_in_executor")
        if executor is None:
            executor = self._default_executor
            # Only check when the default executor is being used
            if self._executor_shutdown_called:
                raise RuntimeError("Executor shutdown has been called")
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        return _futures.wrap_future(executor.submit(func, *args), loop=self)

    def set_default_executor(self, executor: Any) -> None:
        if not isinstance(executor, concurrent.futures.ThreadPoolExecutor):
            raise TypeError("executor must be ThreadPoolExecutor")
        self._default_executor = executor

    if sys.version_info >= (3, 12):

        async def shutdown_default_executor(self: LoopAPI, timeout: float | None = None) -> None:
            """Shut the default executor down, waiting at most ``timeout`` seconds for its
            threads."""
            await _shutdown_default_executor(self, timeout)

    else:

        async def shutdown_default_executor(self: LoopAPI) -> None:
            """Shut the default executor down and wait for its threads (3.11's asyncio takes
            no timeout: passing one is a TypeError there, and here)."""
            await _shutdown_default_executor(self, None)

    def _do_shutdown(self: LoopAPI, future: Any) -> None:
        try:
            executor: Any = self._default_executor  # None if close() ran meanwhile: raises
            executor.shutdown(wait=True)
            if not self.is_closed():
                self.call_soon_threadsafe(_futures._set_result_unless_cancelled, future, None)
        except Exception as ex:
            if not self.is_closed() and not future.cancelled():
                self.call_soon_threadsafe(future.set_exception, ex)

    def _close_executor(self) -> None:
        """From close(), once: forbid the default executor and shut it down without waiting."""
        self._executor_shutdown_called = True
        executor = self._default_executor
        if executor is not None:
            self._default_executor = None
            executor.shutdown(wait=False)


async def _shutdown_default_executor(loop: LoopAPI, timeout: float | None) -> None:
    """shutdown_default_executor's body, for both signatures."""
    loop._executor_shutdown_called = True
    if loop._default_executor is None:
        return
    future = loop.create_future()
    thread = threading.Thread(target=loop._do_shutdown, args=(future,))
    thread.start()
    try:
        async with _timeouts.timeout(timeout):
            await future
    except TimeoutError:
        warnings.warn(
            f"The executor did not finishing joining its threads within {timeout} seconds.",
            RuntimeWarning,
            stacklevel=3,
        )
        loop._default_executor.shutdown(wait=False)
    else:
        thread.join()
