"""``EventLoopPolicy`` for code that still sets policies (deprecated by asyncio in 3.14).

Prefer ``tideloop.run()``, ``asyncio.run(..., loop_factory=tideloop.new_event_loop)`` or
``asyncio.Runner(loop_factory=...)``: they need no policy at all.
"""

from __future__ import annotations

from asyncio import events as _events

from ._eventloop import EventLoop, new_event_loop

# 3.14 renamed the base class and warns when the public name is used; take the private name
# where it exists so merely importing tideloop never warns.
_BasePolicy = getattr(_events, "_BaseDefaultEventLoopPolicy", None)
if _BasePolicy is None:
    _BasePolicy = _events.BaseDefaultEventLoopPolicy


class EventLoopPolicy(_BasePolicy):  # type: ignore[valid-type,misc]
    """An event loop policy whose loops are tideloop loops.

    >>> import asyncio, tideloop
    >>> asyncio.set_event_loop_policy(tideloop.EventLoopPolicy())
    """

    def _loop_factory(self) -> EventLoop:
        return new_event_loop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
