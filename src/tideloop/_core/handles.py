"""Handle and TimerHandle: the callbacks the loop runs.

They mirror ``asyncio.Handle`` / ``asyncio.TimerHandle`` attribute for attribute (``_callback``,
``_args``, ``_cancelled``, ``_loop``, ``_source_traceback``, ``_repr``, ``_context``, ``_when``,
``_scheduled``), so reprs, exception-handler contexts and debug output match asyncio's.

Invariant: a cancelled handle has ``_callback is None and _args is None``; the loop skips it.
Invariant: ``TimerHandle._scheduled`` is True exactly while the handle sits in the loop's heap.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
from asyncio import format_helpers as _format_helpers
from collections.abc import Callable
from typing import Any

_copy_context = contextvars.copy_context
_RLock = threading.RLock
_extract_stack = _format_helpers.extract_stack
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def source_traceback() -> Any:
    """Return the caller's stack for debug mode, without tideloop's own frames.

    asyncio deletes a fixed number of its own frames; tideloop cannot, because compiled functions
    push no frames and pure ones do. Trimming by file keeps both modes' tracebacks identical.
    """
    frame: Any = sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    return _extract_stack(frame)

if sys.version_info >= (3, 13):

    def _format_callback_source(callback: Any, args: Any, debug: bool) -> str:
        return _format_helpers._format_callback_source(callback, args, debug=debug)

else:

    def _format_callback_source(callback: Any, args: Any, debug: bool) -> str:
        return _format_helpers._format_callback_source(callback, args)


class Handle:
    """A callback scheduled by call_soon & co, run once in its context unless cancelled."""

    __slots__ = (
        "_callback",
        "_args",
        "_cancelled",
        "_loop",
        "_source_traceback",
        "_repr",
        "_context",
        "__weakref__",
    )

    def __init__(
        self,
        callback: Callable[..., object] | None,
        args: tuple[Any, ...] | None,
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        if context is None:
            context = _copy_context()
        self._context = context
        self._loop = loop
        self._callback: Any = callback
        self._args = args
        self._cancelled = False
        self._repr: str | None = None
        if loop.get_debug():
            self._source_traceback = source_traceback()
        else:
            self._source_traceback = None

    def _repr_info(self) -> list[str]:
        info = [self.__class__.__name__]
        if self._cancelled:
            info.append("cancelled")
        if self._callback is not None:
            info.append(
                _format_callback_source(self._callback, self._args, self._loop.get_debug())
            )
        if self._source_traceback:
            frame = self._source_traceback[-1]
            info.append(f"created at {frame[0]}:{frame[1]}")
        return info

    def __repr__(self) -> str:
        if self._repr is not None:
            return self._repr
        return "<{}>".format(" ".join(self._repr_info()))

    def get_context(self) -> contextvars.Context:
        return self._context

    def cancel(self) -> None:
        if not self._cancelled:
            self._cancelled = True
            if self._loop.get_debug():
                # Keep the callback's description for "Executing <Handle ...> took 2.5 s".
                self._repr = repr(self)
            self._callback = None
            self._args = None

    def cancelled(self) -> bool:
        return self._cancelled

    def _run(self) -> None:
        args = self._args
        try:
            # Unrolled so the compiled build calls Context.run without building a new tuple.
            if not args:
                self._context.run(self._callback)
            elif len(args) == 1:
                self._context.run(self._callback, args[0])
            else:
                self._context.run(self._callback, *args)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            cb = _format_callback_source(self._callback, self._args, self._loop.get_debug())
            context = {
                "message": f"Exception in callback {cb}",
                "exception": exc,
                "handle": self,
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)
        # A traceback keeps this frame: drop what it holds (mypy: self is never None otherwise).
        self = args = None  # type: ignore[assignment]  # noqa: F841


def new_handle(
    callback: Callable[..., object], args: tuple[Any, ...], loop: Any, context: Any, debug: bool
) -> Handle:
    """Make a Handle for ``loop`` without going through ``__init__`` (the loop's fast path).

    Same result as ``Handle(callback, args, loop, context)``, but takes the loop's debug flag
    from the caller (a typed loop reads it as a C field; ``loop.get_debug()`` would be a
    Python call), and in the compiled build skips argument parsing.
    """
    handle = Handle.__new__(Handle)
    if context is None:
        context = _copy_context()
    handle._context = context
    handle._loop = loop
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._repr = None
    if debug:
        handle._source_traceback = source_traceback()
    else:
        handle._source_traceback = None
    return handle


class ThreadSafeHandle(Handle):
    """What call_soon_threadsafe returns on 3.14+, as asyncio's ``events._ThreadSafeHandle``.

    Any thread may cancel it. ``cancel()``, ``cancelled()`` and ``_run()`` hold one RLock, so a
    cancel from another thread either wins (the callback never starts) or waits until the
    callback has returned; the callback itself may cancel its own handle (the lock is
    reentrant). The loop reads ``_cancelled`` without the lock, so ``_run`` checks it again.
    """

    __slots__ = ("_lock",)

    def __init__(
        self,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        Handle.__init__(self, callback, args, loop, context)
        self._lock = _RLock()

    def cancel(self) -> None:
        with self._lock:
            Handle.cancel(self)

    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled

    def _run(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            Handle._run(self)


def new_threadsafe_handle(
    callback: Callable[..., object], args: tuple[Any, ...], loop: Any, context: Any, debug: bool
) -> ThreadSafeHandle:
    """Make a ThreadSafeHandle for ``loop`` without ``__init__``; see new_handle."""
    handle = ThreadSafeHandle.__new__(ThreadSafeHandle)
    if context is None:
        context = _copy_context()
    handle._context = context
    handle._loop = loop
    handle._callback = callback
    handle._args = args
    handle._cancelled = False
    handle._repr = None
    if debug:
        handle._source_traceback = source_traceback()
    else:
        handle._source_traceback = None
    handle._lock = _RLock()
    return handle


def new_timer_handle(
    when: float,
    callback: Callable[..., object],
    args: tuple[Any, ...],
    loop: Any,
    context: Any,
    debug: bool,
) -> TimerHandle:
    """Make a TimerHandle for ``loop`` without ``__init__``; see new_handle."""
    timer = TimerHandle.__new__(TimerHandle)
    if context is None:
        context = _copy_context()
    timer._context = context
    timer._loop = loop
    timer._callback = callback
    timer._args = args
    timer._cancelled = False
    timer._repr = None
    if debug:
        timer._source_traceback = source_traceback()
    else:
        timer._source_traceback = None
    timer._when = when
    timer._scheduled = False
    return timer


class TimerHandle(Handle):
    """A Handle due at loop time ``_when``; ordered by ``_when`` for the loop's heap."""

    __slots__ = ("_scheduled", "_when")

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: Any,
        context: contextvars.Context | None = None,
    ) -> None:
        Handle.__init__(self, callback, args, loop, context)
        self._when = when
        self._scheduled = False

    def _repr_info(self) -> list[str]:
        info = Handle._repr_info(self)
        pos = 2 if self._cancelled else 1
        info.insert(pos, f"when={self._when}")
        return info

    def __hash__(self) -> int:
        return hash(self._when)

    def __lt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when < other._when
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when < other._when or self.__eq__(other)
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when > other._when
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return self._when > other._when or self.__eq__(other)
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimerHandle):
            return (
                self._when == other._when
                and self._callback == other._callback
                and self._args == other._args
                and self._cancelled == other._cancelled
            )
        return NotImplemented

    def cancel(self) -> None:
        if not self._cancelled:
            self._loop._timer_handle_cancelled(self)
        Handle.cancel(self)

    def when(self) -> float:
        """Return the scheduled time as a float (loop.time() clock)."""
        return self._when
