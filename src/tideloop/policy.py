"""``EventLoopPolicy`` for code that still sets policies (deprecated by asyncio in 3.14).

Prefer ``tideloop.run()``, ``asyncio.run(..., loop_factory=tideloop.new_event_loop)`` or
``asyncio.Runner(loop_factory=...)``: they need no policy at all.
"""

from __future__ import annotations

import sys
from asyncio import events as _events

from ._eventloop import EventLoop, new_event_loop


def _base_policy() -> type:
    """asyncio's default policy class for this platform, without touching deprecated names.

    On Unix that is the Unix default policy, so that on 3.11/3.12 tideloop's policy keeps the
    child-watcher API (get_child_watcher/set_child_watcher) that code written for those
    versions still calls; tideloop's own subprocesses do not need a watcher. 3.14 renamed the
    public base class and warns when the old name is used, so the private names come first.
    """
    if sys.platform != "win32":
        from asyncio import unix_events

        base = getattr(unix_events, "_UnixDefaultEventLoopPolicy", None)
        if base is not None:
            return base
    base = getattr(_events, "_BaseDefaultEventLoopPolicy", None)
    return base if base is not None else _events.BaseDefaultEventLoopPolicy


_BasePolicy = _base_policy()


class EventLoopPolicy(_BasePolicy):  # type: ignore[valid-type,misc]
    """An event loop policy whose loops are tideloop loops.

    >>> import asyncio, tideloop
    >>> asyncio.set_event_loop_policy(tideloop.EventLoopPolicy())
    """

    def _loop_factory(self) -> EventLoop:
        return new_event_loop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
