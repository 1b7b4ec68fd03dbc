"""tideloop: a drop-in asyncio event loop, written in Python and compiled with Cython.

Public API: ``EventLoop``, ``new_event_loop``, ``run``, ``EventLoopPolicy``, ``COMPILED``,
``__version__``, and the streams: ``open_connection``, ``start_server``,
``open_unix_connection``, ``start_unix_server``, ``StreamReader``, ``StreamWriter``.
Everything else is private.
"""

from __future__ import annotations

from ._core import loop as _core_loop
from ._eventloop import EventLoop, new_event_loop
from ._version import __version__
from .policy import EventLoopPolicy
from .runner import run
from .streams import (
    StreamReader,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)

#: True when the Cython-compiled core is in use (fixed at install time).
COMPILED: bool = not _core_loop.__file__.endswith((".py", ".pyc"))

__all__ = [
    "COMPILED",
    "EventLoop",
    "EventLoopPolicy",
    "StreamReader",
    "StreamWriter",
    "__version__",
    "new_event_loop",
    "open_connection",
    "open_unix_connection",
    "run",
    "start_server",
    "start_unix_server",
]
