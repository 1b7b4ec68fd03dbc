"""uvicorn serving an ASGI app on tideloop (``--loop tideloop:new_event_loop``).

uvicorn runs as a program of its own, as users run it; httpx and websockets talk to it from
the loop under test, over TCP and over a Unix socket (``--uds``). Both of uvicorn's HTTP
implementations (h11, httptools) and two of its websocket ones are covered, since each
drives its transport in its own way.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from typing import Any

import httpx
import pytest
import websockets

LOOPS = {"tide": "tideloop:new_event_loop", "aio": "asyncio"}


@pytest.mark.parametrize(
    ("http", "ws", "bind"),
    [("h11", "websockets-sansio", "tcp"), ("httptools", "wsproto", "tcp"),
     ("httptools", "websockets-sansio", "uds")],
    ids=["h11", "httptools", "uds"],
)  # fmt: skip
def test_uvicorn(run: Any, program: Any, http: str, ws: str, bind: str) -> None:
    where = "--host 127.0.0.1 --port {port}" if bind == "tcp" else "--uds {uds}"
    args = f"-m uvicorn asgi_app:app {where} --lifespan on --no-access-log".split()
    server = program([*args, "--loop", LOOPS[run.impl], "--http", http, "--ws", ws])
    base = f"http://127.0.0.1:{server.port}"
    uds = server.uds if bind == "uds" else None
    body = bytes(range(256)) * 8000  # 2 MB

    def ws_connect() -> Any:
        if uds is None:
            return websockets.connect(f"ws://127.0.0.1:{server.port}/ws")
        return websockets.unix_connect(uds, uri="ws://localhost/ws")

    async def scenario() -> None:
        transport = httpx.AsyncHTTPTransport(uds=uds)
        async with httpx.AsyncClient(base_url=base, transport=transport) as client:
            # keep-alive: several requests, one connection pool
            for _ in range(5):
                resp = await client.get("/loop")
                assert resp.status_code == 200, resp.text
            loop_name = resp.text
            assert loop_name.startswith("tideloop.") == (run.impl == "tide"), loop_name

            resp = await client.post("/echo", content=body)
            assert resp.content == body
            resp = await client.get("/stream", params={"size": 3_000_001})
            expected = bytes(range(251)) * (3_000_001 // 251 + 1)
            assert resp.content == expected[:3_000_001]

            results = await asyncio.gather(*(client.get("/loop") for _ in range(20)))
            assert {r.status_code for r in results} == {200}

        async with ws_connect() as conn:
            for i in range(50):
                await conn.send(f"text {i}")
                assert await conn.recv() == f"text {i}"
            await conn.send(body[:1_000_000])  # the client's max_size is 1 MiB
            echoed = await conn.recv()
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(body[:1_000_000]).digest()
            await conn.send("close")
            with pytest.raises(websockets.ConnectionClosed):
                await conn.recv()
            assert conn.close_code == 4000

    run(scenario)
    # uvicorn's graceful shutdown: lifespan shutdown, exit status 0.
    assert server.stop(signal.SIGINT) == 0, server.output()
    output = server.output()
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output and "ERROR" not in output, output
