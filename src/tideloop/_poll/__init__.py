"""I/O readiness backends behind one small interface.

Every backend offers ``register(fd, events)``, ``modify(fd, events)``, ``unregister(fd)``,
``poll(timeout) -> list[(fd, events)]``, ``fileno()`` and ``close()``, where ``events`` is a
mask of ``READ`` and ``WRITE`` (``timeout`` None blocks, 0 returns at once). An error or hang-up
on an fd is reported as both READ and WRITE, so whoever waits on it wakes and sees the error
in its own syscall, as with ``selectors``.
"""

from __future__ import annotations

import select

from .constants import READ, WRITE

__all__ = ["READ", "WRITE", "default_poller_class"]


def default_poller_class() -> type:
    """Return the best backend for this platform: epoll on Linux, else ``selectors``."""
    if hasattr(select, "epoll"):
        from .epoll import EpollPoller

        return EpollPoller
    from .select import SelectorsPoller

    return SelectorsPoller
