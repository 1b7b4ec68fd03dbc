"""Unix signal handlers: loop.add_signal_handler / remove_signal_handler.

Python runs signal handlers only in the main thread, between bytecodes. As asyncio does, the
loop installs a no-op Python handler and asks the interpreter (``signal.set_wakeup_fd``) to
write each signal's number to a non-blocking socketpair that the loop watches; the loop reads
the numbers and runs the user's callbacks as ordinary handles, in the loop's thread.

The socketpair is made on the first add_signal_handler, so loops that never handle signals
(and loops in other threads) cost nothing. It is separate from the call_soon_threadsafe waker
(an eventfd), which cannot carry signal numbers.

Invariant: ``signal.set_wakeup_fd`` points at our socket iff ``_signal_handlers`` is non-empty.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import warnings
from asyncio import coroutines as _coroutines
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._compat import logger as _logger
from ._core.handles import Handle

if TYPE_CHECKING:
    from ._api import LoopAPI

# 3.14 deprecates the public name (a DeprecationWarning per call) and uses the private one.
_iscoroutinefunction = getattr(_coroutines, "_iscoroutinefunction", _coroutines.iscoroutinefunction)


def _sighandler_noop(signum: int, frame: Any) -> None:
    """Dummy signal handler: Python writes the signal number to the wakeup fd."""


class SignalsMixin:
    """add_signal_handler / remove_signal_handler for a Loop (Unix, main thread only)."""

    _signal_handlers: dict[int, Handle]
    _ssock: Any  # socket.socket | None
    _csock: Any  # socket.socket | None

    def _init_signals(self) -> None:
        self._signal_handlers = {}
        self._ssock = None
        self._csock = None

    def add_signal_handler(
        self: LoopAPI, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        """Add a handler for a signal. UNIX only.

        Raise ValueError if the signal number is invalid or uncatchable.
        Raise RuntimeError if there is a problem setting up the handler.
        """
        if _coroutines.iscoroutine(callback) or _iscoroutinefunction(callback):
            raise TypeError("coroutines cannot be used with add_signal_handler()")
        self._check_signal(sig)
        self._check_closed()
        if self._csock is None:
            self._ssock, self._csock = socket.socketpair()
            self._ssock.setblocking(False)
            self._csock.setblocking(False)
            self._add_reader(self._ssock.fileno(), Handle(self._read_signals, (), self, None))
        try:
            # set_wakeup_fd() raises ValueError if this is not the main thread. By calling it
            # early we ensure that a loop running in another thread cannot add a handler.
            signal.set_wakeup_fd(self._csock.fileno())
        except (ValueError, OSError) as exc:
            raise RuntimeError(str(exc)) from None

        handle = Handle(callback, args, self, None)
        self._signal_handlers[sig] = handle
        try:
            # Register a dummy signal handler to ask Python to write the signal
            # number in the wakeup file descriptor.
            signal.signal(sig, _sighandler_noop)
            # Set SA_RESTART to limit EINTR occurrences.
            signal.siginterrupt(sig, False)
        except OSError as exc:
            del self._signal_handlers[sig]
            if not self._signal_handlers:
                try:
                    signal.set_wakeup_fd(-1)
                except (ValueError, OSError) as nexc:
                    _logger().info("set_wakeup_fd(-1) failed: %s", nexc)
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

    def _read_signals(self: LoopAPI) -> None:
        while True:
            try:
                data = self._ssock.recv(4096)
            except InterruptedError:
                continue
            except BlockingIOError:
                break
            if not data:
                break
            for signum in data:
                if signum:
                    self._handle_signal(signum)

    def _handle_signal(self: LoopAPI, sig: int) -> None:
        """Internal helper that is the actual signal handler."""
        handle = self._signal_handlers.get(sig)
        if handle is None:
            return  # Assume it's some race condition.
        if handle._cancelled:
            self.remove_signal_handler(sig)  # Remove it properly.
        else:
            self._add_callback(handle)

    def remove_signal_handler(self, sig: int) -> bool:
        """Remove a handler for a signal. UNIX only.

        Return True if a signal handler was removed, False if not.
        """
        self._check_signal(sig)
        try:
            del self._signal_handlers[sig]
        except KeyError:
            return False

        handler: Any
        if sig == signal.SIGINT:
            handler = signal.default_int_handler
        else:
            handler = signal.SIG_DFL

        try:
            signal.signal(sig, handler)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RuntimeError(f"sig {sig} cannot be caught") from None
            raise

        if not self._signal_handlers:
            try:
                signal.set_wakeup_fd(-1)
            except (ValueError, OSError) as exc:
                _logger().info("set_wakeup_fd(-1) failed: %s", exc)

        return True

    def _check_signal(self, sig: int) -> None:
        """Raise TypeError/ValueError unless sig is a valid signal number."""
        if not isinstance(sig, int):
            raise TypeError(f"sig must be an int, not {sig!r}")
        if sig not in signal.valid_signals():
            raise ValueError(f"invalid signal number {sig}")

    def _close_signals(self) -> None:
        """Remove every handler (unless the interpreter is finalizing) and close the socketpair."""
        if not sys.is_finalizing():
            for sig in list(self._signal_handlers):
                self.remove_signal_handler(sig)
        elif self._signal_handlers:
            warnings.warn(
                f"Closing the loop {self!r} on interpreter shutdown "
                f"stage, skipping signal handlers removal",
                ResourceWarning,
                source=self,
            )
            self._signal_handlers.clear()
        if self._csock is not None:
            self._ssock.close()
            self._csock.close()
            self._ssock = self._csock = None
