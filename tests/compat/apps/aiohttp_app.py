"""An aiohttp application for the compat tests, served in process or as a program.

    python aiohttp_app.py PORT [tideloop]   serve it with web.run_app until SIGTERM or SIGINT

As a program it leaves the loop to ``web.run_app`` (``asyncio.new_event_loop()``), so
``python -m tideloop aiohttp_app.py PORT`` serves it on tideloop and plain ``python`` on
asyncio; with ``tideloop`` it passes ``loop=tideloop.new_event_loop()``. Routes:

    GET  /loop                 {"loop": "<module>.<class>", "peer": [host, port]}
    POST /upload               reads the body piece by piece: {"size", "sha256", "chunked"}
    GET  /download?size=N      N bytes of pattern(N), sent with chunked encoding
    GET  /ws                   websocket: echoes text and binary messages; "close" closes
    GET  /file                 app[FILE] as a web.FileResponse (loop.sendfile; Range works)
    GET  /events               counts of handlers that ended by the client going away
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ssl
import sys
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

FILE = web.AppKey("file", str)
EVENTS = web.AppKey("events", dict[str, int])
_BLOCK = bytes(range(251)) * 4096  # ~1 MiB; 251 is prime, so chunk seams show up in hashes


def pattern(size: int) -> bytes:
    """``size`` deterministic bytes (i % 251 for each position i)."""
    reps = size // len(_BLOCK) + 1
    return (_BLOCK * reps)[:size]


async def loop_info(request: web.Request) -> web.Response:
    loop = asyncio.get_running_loop()
    assert request.transport is not None
    return web.json_response(
        {
            "loop": f"{type(loop).__module__}.{type(loop).__qualname__}",
            "peer": list(request.transport.get_extra_info("peername")[:2]),
        }
    )


async def upload(request: web.Request) -> web.Response:
    digest, size = hashlib.sha256(), 0
    async for piece in request.content.iter_any():
        digest.update(piece)
        size += len(piece)
    return web.json_response(
        {
            "size": size,
            "sha256": digest.hexdigest(),
            "chunked": request.headers.get("Transfer-Encoding") == "chunked",
        }
    )


async def download(request: web.Request) -> web.StreamResponse:
    size = int(request.query["size"])
    piece = int(request.query.get("piece", 65536))
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    data = memoryview(pattern(size))
    try:
        for start in range(0, size, piece):
            await response.write(data[start : start + piece])
    except (ConnectionError, asyncio.CancelledError):
        request.app[EVENTS]["download_aborted"] += 1
        raise
    await response.write_eof()
    return response


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            if msg.data == "close":
                await ws.close(code=4000, message=b"bye")
            else:
                await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def file(request: web.Request) -> web.FileResponse:
    return web.FileResponse(request.app[FILE])


async def events(request: web.Request) -> web.Response:
    return web.json_response(request.app[EVENTS])


def make_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/loop", loop_info)
    app.router.add_post("/upload", upload)
    app.router.add_get("/download", download)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/file", file)
    app.router.add_get("/events", events)
    app[EVENTS] = {"download_aborted": 0}
    return app


@contextlib.asynccontextmanager
async def serve(
    ssl_context: ssl.SSLContext | None = None, file: str | None = None
) -> AsyncIterator[int]:
    """Serve make_app() on 127.0.0.1 with an AppRunner on the running loop; yield the port."""
    app = make_app()
    if file is not None:
        app[FILE] = file
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    loop = None
    if sys.argv[2:] == ["tideloop"]:
        import tideloop

        loop = tideloop.new_event_loop()
    web.run_app(
        make_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop
    )
