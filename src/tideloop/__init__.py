"""tideloop: a drop-in asyncio event loop, written in Python and compiled with Cython.

Public API: ``EventLoop``, ``new_event_loop``, ``run``, ``EventLoopPolicy``, ``COMPILED``,
``__version__``. Everything else is private.
"""

from __future__ import annotations

from ._core import loop as _core_loop
from ._eventloop import EventLoop, new_event_loop
from ._version import __version__
from .policy import EventLoopPolicy
from .runner import run

#: True when the Cython-compiled core is in use (fixed at install time).
COMPILED: bool = not _core_loop.__file__.endswith((".py", ".pyc"))

__all__ = ["COMPILED", "EventLoop", "EventLoopPolicy", "__version__", "new_event_loop", "run"]
