"""Which transport owns which fd, and the public add_reader/add_writer that respect it.

asyncio's selector loop keeps ``loop._transports`` (fd -> transport, weak values) and refuses
``add_reader``/``add_writer``/``remove_reader``/``remove_writer`` on an fd that a transport
which is not closing owns (RuntimeError "File descriptor ... is used by transport ...").
CPython's tests and code written against asyncio read ``loop._transports``, so the name is
kept. Stream and datagram transports enter themselves at creation
(``_transports/stream.py``, ``datagram.py``); pipe transports do not (neither do asyncio's).

The core knows none of this: its ``_add_reader``/``_remove_reader`` (used by transports,
servers and the sock_* methods' callbacks through the public methods here) take an fd and a
Handle or an IOWatcher, unchecked.

Invariant: ``_transports[fd]`` is the live transport made over fd last, or absent; a closed
transport may stay until it is collected (weak values), and a closing one no longer blocks
add_reader (asyncio's rule).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._core.handles import new_handle

if TYPE_CHECKING:
    from .._api import LoopAPI


def _fileobj_to_fd(fileobj: Any) -> int:
    """Return the fd of an int or an object with fileno(), with selectors' errors."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class TransportRegistryMixin:
    """``_transports`` and the checked public reader/writer methods of the loop.

    Needs from the loop: ``_add_reader``/``_add_writer``/``_remove_reader``/``_remove_writer``
    (the core's, unchecked). ``_init_transports()`` must run in ``__init__``.
    """

    _transports: weakref.WeakValueDictionary[int, Any]
    # Compiled build: the stream and datagram transports' per-loop read state
    # (_transports/base.py RecvState), made by the loop's first transport; per loop, so loops
    # in different threads share no buffer.
    _recv_state: Any = None

    def _init_transports(self) -> None:
        self._transports = weakref.WeakValueDictionary()

    def add_reader(self: LoopAPI, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        """Call callback(*args) whenever fd is readable, until remove_reader(fd)."""
        fd = _fileobj_to_fd(fd)
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, new_handle(callback, args, self, None, self.get_debug()))

    def add_writer(self: LoopAPI, fd: Any, callback: Callable[..., object], *args: Any) -> None:
        """Call callback(*args) whenever fd is writable, until remove_writer(fd)."""
        fd = _fileobj_to_fd(fd)
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, new_handle(callback, args, self, None, self.get_debug()))

    def remove_reader(self: LoopAPI, fd: Any) -> bool:
        """Stop watching fd for reading; return True if it was watched."""
        fd = _fileobj_to_fd(fd)
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def remove_writer(self: LoopAPI, fd: Any) -> bool:
        """Stop watching fd for writing; return True if it was watched."""
        fd = _fileobj_to_fd(fd)
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    def _ensure_fd_no_transport(self, fd: Any) -> None:
        """Raise RuntimeError if a transport that is not closing owns fd (as asyncio)."""
        transport = self._transports.get(fd)
        if transport is not None and not transport.is_closing():
            raise RuntimeError(f"File descriptor {fd!r} is used by transport {transport!r}")
