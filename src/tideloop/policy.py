"""``EventLoopPolicy`` for code that still sets policies, where asyncio still has them.

asyncio deprecates its policy system in 3.14 and removes it in 3.16 (gh-127949:
``AbstractEventLoopPolicy``, ``DefaultEventLoopPolicy``, ``get/set_event_loop_policy``, all
with ``remove=(3, 16)``). This module follows asyncio:

- ``POLICIES`` is True while asyncio has policies: a default policy class to derive from *and*
  the public ``set_event_loop_policy()`` to install one with. Both, because a policy that no
  public API can install is of no use to a program, whatever private classes remain.
- ``EventLoopPolicy`` is defined only then. Where asyncio removed policies it does not exist,
  and ``tideloop.EventLoopPolicy`` raises AttributeError with ``REMOVED_MESSAGE``.

Using the class warns on 3.14+ exactly where asyncio's own policies warn
(``asyncio.set_event_loop_policy()``): that DeprecationWarning is asyncio's, and defining or
instantiating the class warns on no version. Prefer ``tideloop.run()``,
``asyncio.run(..., loop_factory=tideloop.new_event_loop)`` or
``asyncio.Runner(loop_factory=...)``: they need no policy on any version.
"""

from __future__ import annotations

import sys
from asyncio import events as _events
from typing import Any

from ._eventloop import EventLoop, new_event_loop

REMOVED_MESSAGE = (
    "tideloop.EventLoopPolicy: asyncio 3.16 removed event loop policies; use tideloop.run() "
    "or asyncio.run(..., loop_factory=tideloop.new_event_loop)"
)


def _base_policy() -> type | None:
    """asyncio's default policy class for this platform, or None where asyncio has none.

    On Unix that is the Unix default policy, so that on 3.11/3.12 tideloop's policy keeps the
    child-watcher API (get_child_watcher/set_child_watcher) that code written for those
    versions still calls; tideloop's own subprocesses do not need a watcher. 3.14 renamed the
    classes private and warns when asyncio's public aliases are read, so the private names
    come first and only plain module attributes are read (no warning on any version).
    """
    if sys.platform != "win32":
        from asyncio import unix_events

        base = getattr(unix_events, "_UnixDefaultEventLoopPolicy", None)
        if base is not None:
            return base
    for name in ("_BaseDefaultEventLoopPolicy", "BaseDefaultEventLoopPolicy"):
        base = getattr(_events, name, None)
        if base is not None:
            return base
    return None


_BasePolicy: Any = _base_policy()

#: True where asyncio has event loop policies (3.11-3.15), so ``EventLoopPolicy`` exists.
POLICIES: bool = _BasePolicy is not None and hasattr(_events, "set_event_loop_policy")

if POLICIES:

    class EventLoopPolicy(_BasePolicy):
        """An event loop policy whose loops are tideloop loops.

        >>> import asyncio, tideloop
        >>> asyncio.set_event_loop_policy(tideloop.EventLoopPolicy())
        """

        def _loop_factory(self) -> EventLoop:
            return new_event_loop()

        def __repr__(self) -> str:
            return f"<{type(self).__name__}>"
