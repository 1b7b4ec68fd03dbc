"""The Linux epoll backend (level-triggered).

Some facts about epoll that shape this file:

- epoll tracks open file *descriptions*, keyed by fd number. Closing an fd removes it from the
  set only if no duplicate of the description is open; a closed-and-reused fd number can
  therefore look registered to us and not to the kernel. ``modify`` falls back to ``register``
  on ENOENT and ``register`` to ``modify`` on EEXIST, so our map and the kernel's converge.
- EPOLLERR and EPOLLHUP are always reported, asked for or not. We report them as READ|WRITE.
- Regular files cannot be watched (EPERM), exactly as with ``selectors.EpollSelector``.
- The timeout has millisecond resolution; we round up so a timer is never polled too early.

Two paths, one behaviour: the compiled build calls ``epoll_wait(2)`` directly into a
preallocated C array (``_poll_native``; the GIL is released only for a wait that may block);
the pure build calls ``select.epoll.poll``. Registration always goes through ``select.epoll``.
"""

from __future__ import annotations

import errno
import os
import select
from math import ceil as _ceil

from .constants import READ, WRITE

# Importable everywhere (the compiled core cimports this class); constructed only on Linux.
_EPOLLIN = getattr(select, "EPOLLIN", 0x001)
_EPOLLOUT = getattr(select, "EPOLLOUT", 0x004)
_NOT_IN = ~_EPOLLIN
_NOT_OUT = ~_EPOLLOUT
# True in the compiled build: the C declarations of _libc.pxd are then reachable.
_NATIVE = not __file__.endswith(".py")
_MAX_EVENTS = 1024


class EpollPoller:
    """Readiness through one epoll instance. Not thread-safe: the loop's thread only."""

    __slots__ = ("_epoll", "_epoll_poll", "_epfd", "_events")

    #: Its key in tideloop._poll.POLLERS (TIDELOOP_POLLER=epoll), shown by the loop's repr.
    name = "epoll"

    #: The kernel drops a closed fd from the set by itself, so the loop may leave an fd
    #: registered after its last reader/writer is removed (see Loop._drop_events).
    lazy_unregister = True

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._epoll_poll = self._epoll.poll
        self._epfd = self._epoll.fileno()
        if _NATIVE:
            self._events = tideloop_alloc_events(_MAX_EVENTS)  # noqa: F821
            if not self._events:
                self._epoll.close()
                raise MemoryError

    def __dealloc__(self) -> None:
        # Compiled build only (Cython's destructor hook): free the C event array.
        free(self._events)  # noqa: F821

    def fileno(self) -> int:
        return self._epfd

    def register(self, fd: int, events: int) -> None:
        try:
            self._epoll.register(fd, events)
        except FileExistsError:
            self._epoll.modify(fd, events)

    def modify(self, fd: int, events: int) -> None:
        try:
            self._epoll.modify(fd, events)
        except FileNotFoundError:
            self._epoll.register(fd, events)

    def unregister(self, fd: int) -> None:
        try:
            self._epoll.unregister(fd)
        except OSError as exc:
            # Already closed (EBADF) or dropped by the kernel with its last duplicate (ENOENT).
            if exc.errno not in (errno.EBADF, errno.ENOENT):
                raise

    def poll(self, timeout: float | None) -> list:
        """Wait up to ``timeout`` seconds (None: forever); return [(fd, READ|WRITE mask)]."""
        if self._epfd < 0:
            raise ValueError("I/O operation on closed epoll object")
        if _NATIVE:
            if timeout is None:
                return self._poll_native(-1)
            if timeout <= 0.0:
                return self._poll_native(0)
            return self._poll_native(_ceil(timeout * 1e3))
        if timeout is not None and timeout > 0:
            timeout = _ceil(timeout * 1e3) * 1e-3
        result = []
        for fd, ev in self._epoll_poll(-1 if timeout is None else timeout):
            mask = 0
            if ev & _NOT_OUT:
                mask |= READ
            if ev & _NOT_IN:
                mask |= WRITE
            result.append((fd, mask))
        return result

    def _poll_native(self, timeout_ms: int) -> list:
        # Compiled build only.
        n = self._wait(timeout_ms)
        result = []
        for i in range(n):
            result.append((self._event_fd(i), self._event_mask(i)))
        return result

    # The compiled loop reads events straight from the C array with these three (no list,
    # no tuples); they exist in the compiled build only.

    def _wait(self, timeout_ms: int) -> int:
        """Wait up to timeout_ms (-1: forever); return how many events are in the array.

        An interrupted wait runs the Python signal handlers (which may raise) and waits out
        the rest of its timeout, as select.epoll.poll does (PEP 475): an interruption need
        not be a signal for us (closing an io_uring interrupts its thread's next wait once).
        """
        deadline = 0.0
        if timeout_ms > 0:
            deadline = tideloop_monotonic() + timeout_ms * 1e-3  # noqa: F821
        while True:
            n = tideloop_epoll_wait(self._epfd, self._events, _MAX_EVENTS, timeout_ms)  # noqa: F821
            if n >= 0:
                return n
            err = c_errno  # noqa: F821
            if err != errno.EINTR:
                raise OSError(err, os.strerror(err))
            PyErr_CheckSignals()  # noqa: F821  (run Python signal handlers; may raise)
            if timeout_ms == 0:
                return 0
            if timeout_ms > 0:
                timeout_ms = _ceil((deadline - tideloop_monotonic()) * 1e3)  # noqa: F821
                if timeout_ms <= 0:
                    return 0

    def _event_fd(self, i: int) -> int:
        return self._events[i].data.fd

    def _event_mask(self, i: int) -> int:
        ev = self._events[i].events
        mask = 0
        if ev & _NOT_OUT:
            mask |= READ
        if ev & _NOT_IN:
            mask |= WRITE
        return mask

    def close(self) -> None:
        self._epfd = -1
        self._epoll.close()


assert READ == _EPOLLIN and WRITE == _EPOLLOUT
