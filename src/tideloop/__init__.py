"""tideloop: a drop-in asyncio event loop, written in Python and compiled with Cython.

Public API: ``EventLoop``, ``new_event_loop``, ``run``, ``EventLoopPolicy``, ``COMPILED``,
``__version__``, and the streams: ``open_connection``, ``start_server``,
``open_unix_connection``, ``start_unix_server``, ``StreamReader``, ``StreamWriter``.
Everything else is private.

``EventLoopPolicy`` exists only where asyncio still has event loop policies (3.11-3.15; see
``tideloop.policy``). Where asyncio removed them (3.16) reading it raises AttributeError saying
what to use instead, ``hasattr(tideloop, "EventLoopPolicy")`` is False, and it is not in
``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._core import loop as _core_loop
from ._eventloop import EventLoop, new_event_loop
from ._version import __version__
from .policy import POLICIES as _POLICIES
from .runner import run
from .streams import (
    StreamReader,
    StreamWriter,
    open_connection,
    open_unix_connection,
    start_server,
    start_unix_server,
)

if _POLICIES:
    from .policy import EventLoopPolicy
if TYPE_CHECKING:
    from ._metrics import LagHistogram, LoopMetrics, SlowCallback, metrics

# Imported on first use: the snapshot classes are dataclasses, ~5 ms to create at import.
_METRICS_NAMES = ("LagHistogram", "LoopMetrics", "SlowCallback", "metrics")

#: True when the Cython-compiled core is in use (fixed at install time).
COMPILED: bool = not _core_loop.__file__.endswith((".py", ".pyc"))


def _give_compiled_modules_their_source() -> None:
    """Let tracebacks show the source lines of compiled frames.

    A compiled frame is named "tideloop/_core/loop.py" (setup.py compiles from src/), and
    linecache asks the frame's module loader first: an ExtensionFileLoader has no source, so
    3.11/3.12 print no line. Each compiled tideloop module gets a loader that is the same
    extension loader plus ``get_source()`` reading the ``.py`` installed beside the ``.so``
    (the file it was compiled from). Invariant: only tideloop's own extension modules are
    touched, and their loading behaviour is ExtensionFileLoader's, unchanged.
    """
    import os
    import sys
    from importlib.machinery import ExtensionFileLoader

    class CompiledModuleLoader(ExtensionFileLoader):
        def get_source(self, fullname: str) -> str | None:  # type: ignore[override]
            directory, name = os.path.split(self.path)
            try:
                with open(os.path.join(directory, name.split(".", 1)[0] + ".py"), "rb") as f:
                    return f.read().decode("utf-8")
            except OSError:
                return None

    for name, module in list(sys.modules.items()):
        loader = getattr(module, "__loader__", None)
        if name.startswith("tideloop.") and type(loader) is ExtensionFileLoader:
            source_loader = CompiledModuleLoader(loader.name, loader.path)
            module.__loader__ = source_loader
            spec = getattr(module, "__spec__", None)
            if spec is not None:
                spec.loader = source_loader


if COMPILED:
    _give_compiled_modules_their_source()


def __getattr__(name: str) -> Any:
    # Only reached for names the module does not define (PEP 562).
    if name in _METRICS_NAMES:
        from . import _metrics

        value = getattr(_metrics, name)
        globals()[name] = value
        return value
    if name == "EventLoopPolicy":
        from .policy import REMOVED_MESSAGE

        raise AttributeError(REMOVED_MESSAGE)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COMPILED",
    "EventLoop",
    "EventLoopPolicy",
    "LagHistogram",
    "LoopMetrics",
    "SlowCallback",
    "StreamReader",
    "StreamWriter",
    "__version__",
    "metrics",
    "new_event_loop",
    "open_connection",
    "open_unix_connection",
    "run",
    "start_server",
    "start_unix_server",
]
if not _POLICIES:
    __all__.remove("EventLoopPolicy")
