"""I/O readiness backends behind one small interface, and the table that picks one by name.

Every backend offers ``register(fd, events)``, ``modify(fd, events)``, ``unregister(fd)``,
``poll(timeout) -> list[(fd, events)]``, ``fileno()`` and ``close()``, where ``events`` is a
mask of ``READ`` and ``WRITE`` (``timeout`` None blocks, 0 returns at once, a positive timeout
never returns early for lack of precision: it is rounded up). An error or hang-up on an fd is
reported with every event the fd is registered for (epoll: READ|WRITE always), so whoever
waits on it wakes and sees the error in its own syscall, as with ``selectors``. Registering a
closed fd raises OSError; unregistering one does not. Each backend class has a ``name``, its
key in ``POLLERS``.

A loop picks its backend (``make_poller``) from, in order: the constructor's ``poller=``
argument, the ``TIDELOOP_POLLER`` environment variable (read when the loop is created; empty
counts as unset), else the platform's default (epoll on Linux, else ``selectors``).
Where the kernel refuses io_uring (seccomp, ``kernel.io_uring_disabled``, too old), asking
for it gives epoll, and the first such fall-back in a process logs one warning saying why.
"""

from __future__ import annotations

import os
import select as _stdlib_select  # not `select`: the submodule .select takes that name
from typing import Any

from .constants import READ, WRITE
from .epoll import EpollPoller
from .select import SelectorsPoller
from .uring import UringPoller

__all__ = ["POLLERS", "READ", "WRITE", "default_poller_class", "make_poller", "poller_name"]

#: Backend name -> class: the values ``TIDELOOP_POLLER`` and ``poller=`` accept.
POLLERS: dict[str, type] = {
    "epoll": EpollPoller,
    "select": SelectorsPoller,
    "io_uring": UringPoller,
}

_ENV = "TIDELOOP_POLLER"


def default_poller_class() -> type:
    """Return the best backend for this platform: epoll on Linux, else ``selectors``."""
    if hasattr(_stdlib_select, "epoll"):
        return EpollPoller
    return SelectorsPoller


def make_poller(poller: Any = None) -> Any:
    """Return a new poller for a loop.

    ``poller`` is a backend name (a key of ``POLLERS``), None (then ``TIDELOOP_POLLER``, else
    the platform's default), or an already made poller object, returned as it is. An unknown
    name raises ValueError naming the valid ones; epoll where the platform has none raises
    ValueError too.
    """
    source = "poller="
    if poller is None:
        poller = os.environ.get(_ENV) or None
        if poller is None:
            return default_poller_class()()
        source = _ENV + "="
    if not isinstance(poller, str):
        return poller
    cls = POLLERS.get(poller)
    if cls is None:
        valid = ", ".join(repr(name) for name in POLLERS)
        raise ValueError(f"unknown tideloop poller {source}{poller!r}: valid names are {valid}")
    if cls in (EpollPoller, UringPoller) and not hasattr(_stdlib_select, "epoll"):
        raise ValueError(f"tideloop poller {source}{poller!r} is not available on this platform")
    if cls is UringPoller:
        try:
            return UringPoller()
        except OSError as exc:
            _warn_fallback(exc)
            return EpollPoller()
    return cls()


_fallback_logged = False


def _warn_fallback(exc: OSError) -> None:
    """Log, once per process, that io_uring was asked for and epoll is used instead."""
    global _fallback_logged
    if not _fallback_logged:
        _fallback_logged = True
        from .._compat import logger

        logger().warning("tideloop: io_uring is unavailable here (%s); using epoll", exc)


def poller_name(poller: Any) -> str:
    """The backend's name for a loop's repr: its ``name``, else its class name."""
    name = getattr(type(poller), "name", None)
    return name if isinstance(name, str) else type(poller).__name__
