"""gunicorn worker classes that serve ASGI apps with uvicorn on tideloop.

    pip install tideloop[gunicorn]      # gunicorn and uvicorn-worker
    gunicorn app:app -w 4 -k tideloop.contrib.gunicorn.UvicornWorker

They are uvicorn-worker's classes with uvicorn's ``loop`` setting pointed at
``tideloop:new_event_loop`` (uvicorn >= 0.36 takes a loop factory there), so each worker
process runs its own tideloop loop; gunicorn's signals keep their meaning (HUP: new workers,
old ones finish their requests; TERM: graceful stop; QUIT: fast stop).

- ``UvicornWorker``: uvicorn's HTTP implementation chosen as uvicorn's ``auto`` does
  (httptools if installed, else h11).
- ``UvicornH11Worker``: always h11 (pure Python).
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker

__all__ = ["UvicornH11Worker", "UvicornWorker"]

LOOP = "tideloop:new_event_loop"


class UvicornWorker(_UvicornWorker):
    """uvicorn-worker's ``UvicornWorker`` on a tideloop loop."""

    CONFIG_KWARGS: dict[str, Any] = {**_UvicornWorker.CONFIG_KWARGS, "loop": LOOP}


class UvicornH11Worker(UvicornWorker):
    """uvicorn-worker's ``UvicornH11Worker`` (h11 HTTP) on a tideloop loop."""

    CONFIG_KWARGS: dict[str, Any] = {**UvicornWorker.CONFIG_KWARGS, "http": "h11"}
