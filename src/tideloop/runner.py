"""``tideloop.run()``: asyncio.run() on a tideloop loop."""

from __future__ import annotations

import asyncio
from asyncio import events as _events
from collections.abc import Coroutine
from typing import Any, TypeVar

from ._eventloop import new_event_loop

_T = TypeVar("_T")


def run(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run a coroutine on a new tideloop loop and close it, exactly like ``asyncio.run``.

    Cancels remaining tasks, shuts down async generators and the default executor on exit.
    """
    if _events._get_running_loop() is not None:
        # fail fast with short traceback
        raise RuntimeError("asyncio.run() cannot be called from a running event loop")
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
