"""The Linux epoll backend (level-triggered).

Some facts about epoll that shape this file:

- epoll tracks open file *descriptions*, keyed by fd number. Closing an fd removes it from the
  set only if no duplicate of the description is open; a closed-and-reused fd number can
  therefore look registered to us and not to the kernel. ``modify`` falls back to ``register``
  on ENOENT and ``register`` to ``modify`` on EEXIST, so our map and the kernel's converge.
- EPOLLERR and EPOLLHUP are always reported, asked for or not. We report them as READ|WRITE.
- Regular files cannot be watched (EPERM), exactly as with ``selectors.EpollSelector``.
"""

from __future__ import annotations

import errno
from math import ceil as _ceil
import select

from .constants import READ, WRITE

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_NOT_IN = ~select.EPOLLIN
_NOT_OUT = ~select.EPOLLOUT


class EpollPoller:
    """Readiness through one ``select.epoll`` object. Not thread-safe: the loop's thread only."""

    __slots__ = ("_epoll", "_epoll_poll")

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._epoll_poll = self._epoll.poll

    def fileno(self) -> int:
        return self._epoll.fileno()

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
        if timeout is None:
            timeout = -1
        elif timeout > 0:
            # epoll has a 1 ms resolution: round up so a timer is never polled for too early.
            timeout = _ceil(timeout * 1e3) * 1e-3
        events = self._epoll_poll(timeout)
        result = []
        for fd, ev in events:
            mask = 0
            if ev & _NOT_OUT:
                mask |= READ
            if ev & _NOT_IN:
                mask |= WRITE
            result.append((fd, mask))
        return result

    def close(self) -> None:
        self._epoll.close()


assert READ == _EPOLLIN and WRITE == _EPOLLOUT
