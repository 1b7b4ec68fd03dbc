"""The control for tideloop.contrib.gunicorn.UvicornWorker: the same worker on asyncio."""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class AsyncioWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, "loop": "asyncio"}
