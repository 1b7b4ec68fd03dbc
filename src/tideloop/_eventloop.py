"""``tideloop.EventLoop``: the compiled core plus the Python-level mixins, as one asyncio loop.

The core (``_core.loop.Loop``) is a Cython extension type in the compiled build and cannot
inherit from ``asyncio.AbstractEventLoop``; this class joins them (as uvloop's ``Loop`` does), so
``isinstance(loop, asyncio.AbstractEventLoop)`` holds in both build modes. Methods that the
mixins and the core do not provide yet fall through to AbstractEventLoop and raise
NotImplementedError.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from ._core.loop import Loop
from ._net.connect import ConnectMixin
from ._net.datagram import DatagramMixin
from ._net.dns import DnsMixin
from ._net.pipes import PipesMixin
from ._net.server import ServerMixin
from ._net.sockops import SockOpsMixin
from ._net.subprocess import SubprocessMixin
from ._net.tls import TLSMixin
from ._signals import SignalsMixin


class EventLoop(
    SignalsMixin,
    ConnectMixin,
    ServerMixin,
    TLSMixin,
    DatagramMixin,
    PipesMixin,
    SubprocessMixin,
    SockOpsMixin,
    DnsMixin,
    Loop,
    asyncio.AbstractEventLoop,
):
    """tideloop's asyncio event loop. Create it with ``tideloop.new_event_loop()``.

    ``poller`` names the I/O backend: ``"epoll"`` (Linux's default) or ``"select"`` (the
    ``selectors`` module's best selector, the default elsewhere). None uses the
    ``TIDELOOP_POLLER`` environment variable, read now, else the default; an unknown name
    raises ValueError. The loop's repr names the backend in use (``poller=epoll``).
    """

    def __init__(self, poller: str | None = None) -> None:
        Loop.__init__(self, poller)
        self._init_signals()

    def close(self) -> None:
        """Close the loop (see asyncio); also removes signal handlers, as asyncio's Unix loop."""
        Loop.close(self)
        self._close_signals()
        self._close_subprocesses()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_poller", None) is None:
            return  # __init__ failed before the loop held anything (e.g. a bad poller name)
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()


def new_event_loop(poller: str | None = None) -> EventLoop:
    """Return a new tideloop event loop; ``poller`` picks its I/O backend (see EventLoop)."""
    return EventLoop(poller)
