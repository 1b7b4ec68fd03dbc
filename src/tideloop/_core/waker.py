"""The waker: how another thread (call_soon_threadsafe) wakes a loop blocked in poll().

An eventfd on Linux (one fd; writes coalesce into a counter, so a burst of wake-ups costs one
read), else a non-blocking socketpair. ``wake()`` may be called from any thread and never
blocks; ``drain()`` runs on the loop's thread when the fd is readable.

Invariant: after ``wake()`` returns, the next (or current) poll of the loop returns promptly.
"""

from __future__ import annotations

import os
import socket
from typing import Any


class Waker:
    """Owns the wake-up fd. Not closed by anyone but ``close()``."""

    __slots__ = ("_fd", "_eventfd", "_rsock", "_wsock", "_closed")

    def __init__(self) -> None:
        self._closed = False
        self._rsock: Any = None
        self._wsock: Any = None
        if hasattr(os, "eventfd"):
            self._eventfd = True
            self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            self._eventfd = False
            self._rsock, self._wsock = socket.socketpair()
            self._rsock.setblocking(False)
            self._wsock.setblocking(False)
            self._fd = self._rsock.fileno()

    def fileno(self) -> int:
        return self._fd

    def wake(self) -> None:
        if self._closed:
            return
        try:
            if self._eventfd:
                os.eventfd_write(self._fd, 1)
            else:
                self._wsock.send(b"\0")
        except OSError:
            # Full (the loop will wake anyway) or closed concurrently by close(): both fine.
            pass

    def drain(self) -> None:
        try:
            if self._eventfd:
                os.eventfd_read(self._fd)
            else:
                while self._rsock.recv(4096):
                    pass
        except (BlockingIOError, InterruptedError):
            pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._eventfd:
            os.close(self._fd)
        else:
            self._rsock.close()
            self._wsock.close()
        self._fd = -1
