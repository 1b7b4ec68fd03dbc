"""httpx (anyio on asyncio) as the client of the aiohttp test server, both on tideloop."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

MiB = 1024 * 1024


def test_httpx(run: Any, aiohttp_app: Any) -> None:
    data = aiohttp_app.pattern(2 * MiB + 5)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 50_000):
            yield data[start : start + 50_000]

    async def scenario() -> None:
        async with aiohttp_app.serve() as port, httpx.AsyncClient() as client:
            base = f"http://127.0.0.1:{port}"
            peers = {tuple((await client.get(f"{base}/loop")).json()["peer"]) for _ in range(10)}
            assert len(peers) == 1  # keep-alive: one connection for sequential requests

            resp = await client.post(f"{base}/upload", content=chunks())
            assert resp.json() == {
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "chunked": True,
            }

            digest, size = hashlib.sha256(), 3 * MiB + 1
            async with client.stream("GET", f"{base}/download", params={"size": size}) as resp:
                assert resp.headers["transfer-encoding"] == "chunked"
                async for piece in resp.aiter_bytes():
                    digest.update(piece)
            assert digest.hexdigest() == hashlib.sha256(aiohttp_app.pattern(size)).hexdigest()

            got = await asyncio.gather(
                *(client.get(f"{base}/download", params={"size": i * 777}) for i in range(40))
            )
            assert [len(r.content) for r in got] == [i * 777 for i in range(40)]

    run(scenario)


@pytest.mark.tls
def test_httpx_tls(run: Any, aiohttp_app: Any, tls: Any) -> None:
    async def scenario() -> None:
        async with (
            aiohttp_app.serve(tls.server_context()) as port,
            httpx.AsyncClient(verify=tls.client_context()) as client,
        ):
            resp = await client.get(f"https://localhost:{port}/download", params={"size": MiB})
            assert resp.content == aiohttp_app.pattern(MiB)

    run(scenario)
