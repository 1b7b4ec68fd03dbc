"""asgi_app served by hypercorn's ``serve()`` on a chosen loop, as its docs show for uvloop.

    python hypercorn_app.py tide|aio PORT

``tide``: ``asyncio.Runner(loop_factory=tideloop.new_event_loop)``; ``aio``: asyncio's loop.
hypercorn stops gracefully on SIGTERM or SIGINT (its own loop signal handlers).
"""

from __future__ import annotations

import asyncio
import sys

from asgi_app import app
from hypercorn.asyncio import serve
from hypercorn.config import Config

import tideloop

config = Config()
config.bind = [f"127.0.0.1:{sys.argv[2]}"]
factory = tideloop.new_event_loop if sys.argv[1] == "tide" else None
with asyncio.Runner(loop_factory=factory) as runner:
    runner.run(serve(app, config))  # type: ignore[arg-type]
