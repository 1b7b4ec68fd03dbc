"""``tideloop.EventLoop``: the compiled core plus the Python-level mixins, as one asyncio loop.

The core (``_core.loop.Loop``) is a Cython extension type in the compiled build and cannot
inherit from ``asyncio.AbstractEventLoop``, nor from a Python class; this class joins them (as
uvloop's ``Loop`` does), so ``isinstance(loop, asyncio.AbstractEventLoop)`` holds in both build
modes. The MRO, from the top layer down::

    EventLoop
      SignalsMixin                                   _signals.py
      ConnectMixin ServerMixin TLSMixin DatagramMixin
      PipesMixin SubprocessMixin SockOpsMixin(SendfileMixin) DnsMixin
      TransportRegistryMixin                         _net/: what makes sockets and transports
      ExecutorMixin AsyncGenMixin                    _executor.py, _asyncgens.py
      ExceptionHandlerMixin                          _core/errors.py
      Loop                                           _core/loop.py (compiled)
      asyncio.AbstractEventLoop

No two of them define the same method, except what this class composes explicitly
(``__init__``, ``close``, ``_run_forever_setup``/``_run_forever_cleanup``). What the mixins need
from each other and from the core is declared in ``_api.LoopAPI``. Methods nobody provides fall
through to AbstractEventLoop and raise NotImplementedError.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._asyncgens import AsyncGenMixin
from ._core.errors import ExceptionHandlerMixin
from ._core.loop import Loop
from ._executor import ExecutorMixin
from ._net.connect import ConnectMixin
from ._net.datagram import DatagramMixin
from ._net.dns import DnsMixin
from ._net.pipes import PipesMixin
from ._net.registry import TransportRegistryMixin
from ._net.server import ServerMixin
from ._net.sockops import SockOpsMixin
from ._net.subprocess import SubprocessMixin
from ._net.tls import TLSMixin
from ._signals import SignalsMixin

if TYPE_CHECKING:
    from ._api import LoopAPI


# type-ignore: tideloop's Handle/TimerHandle are not asyncio.Handle subclasses (compiled
# classes; see docs/design.md), and several parameters are wider than typeshed's.
class EventLoop(  # type: ignore[misc]
    SignalsMixin,
    ConnectMixin,
    ServerMixin,
    TLSMixin,
    DatagramMixin,
    PipesMixin,
    SubprocessMixin,
    SockOpsMixin,
    DnsMixin,
    TransportRegistryMixin,
    ExecutorMixin,
    AsyncGenMixin,
    ExceptionHandlerMixin,
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
        self._init_transports()
        self._init_asyncgens()
        self._init_signals()
        if _on_new_loop is not None:
            _on_new_loop(self)

    def _run_forever_setup(self) -> None:
        Loop._run_forever_setup(self)
        self._install_asyncgen_hooks()

    def _run_forever_cleanup(self) -> None:
        try:
            Loop._run_forever_cleanup(self)
        finally:
            self._restore_asyncgen_hooks()

    def close(self) -> None:
        """Close the loop (see asyncio): drop callbacks and fd watches, shut the default
        executor down without waiting; also removes signal handlers, as asyncio's Unix loop,
        and hands running children to reaper threads."""
        was_closed = self.is_closed()
        Loop.close(self)  # raises if running
        if not was_closed:
            self._close_executor()
        self._close_signals()
        self._close_subprocesses()

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if getattr(self, "_poller", None) is None:
            return  # __init__ failed before the loop held anything (e.g. a bad poller name)
        if not self.is_closed():
            _warn(f"unclosed event loop {self!r}", ResourceWarning, source=self)
            if not self.is_running():
                self.close()


# Called with each new loop when set (``python -m tideloop --stats`` keeps them to report).
_on_new_loop: Callable[[EventLoop], object] | None = None


def new_event_loop(poller: str | None = None) -> EventLoop:
    """Return a new tideloop event loop; ``poller`` picks its I/O backend (see EventLoop)."""
    return EventLoop(poller)


if TYPE_CHECKING:

    def _implements_loop_api(loop: EventLoop) -> LoopAPI:
        """Never called: mypy checks here that EventLoop provides all of ``_api.LoopAPI``."""
        return loop
