"""A small ASGI application for the uvicorn compat test (no framework, ASGI 3).

    GET  /loop       the running loop's class, "<module>.<class>", as text
    POST /echo       the request body, read message by message, sent back in pieces
    GET  /stream     ?size=N: N bytes (i % 251 for each position i) in 64 KiB body messages
    GET  /slow       ?ms=N: "<pid>" after N milliseconds (a request in flight, on purpose)
    GET  /pid        the serving process's pid
    ws   /ws         echoes text and binary messages; "close" closes with code 4000

The lifespan protocol records its startup; /loop answers 503 if startup did not run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_BLOCK = bytes(range(251)) * 4096
state = {"started": False}


def pattern(size: int) -> bytes:
    return (_BLOCK * (size // len(_BLOCK) + 1))[:size]


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def http(scope: Scope, receive: Receive, send: Send) -> None:
    path = scope["path"]
    if path == "/loop":
        loop = asyncio.get_running_loop()
        name = f"{type(loop).__module__}.{type(loop).__qualname__}"
        await _respond(send, 200 if state["started"] else 503, name.encode())
    elif path == "/echo":
        pieces = []
        while True:
            message = await receive()
            pieces.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(pieces)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for start in range(0, len(body), 100_000):
            await send({"type": "http.response.body", "body": body[start : start + 100_000],
                        "more_body": True})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})
    elif path == "/stream":
        size = int(parse_qs(scope["query_string"].decode())["size"][0])
        data = pattern(size)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for start in range(0, size, 65536):
            await send({"type": "http.response.body", "body": data[start : start + 65536],
                        "more_body": True})  # fmt: skip
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await asyncio.sleep(int(parse_qs(scope["query_string"].decode())["ms"][0]) / 1000)
        await _respond(send, 200, str(os.getpid()).encode())
    elif path == "/pid":
        await _respond(send, 200, str(os.getpid()).encode())
    else:
        await _respond(send, 404, b"not found")


async def websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            state["started"] = True
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    handler = {"http": http, "websocket": websocket, "lifespan": lifespan}[scope["type"]]
    await handler(scope, receive, send)
