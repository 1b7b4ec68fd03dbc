"""aiohttp's server and client on tideloop: keep-alive, chunked bodies, websockets, TLS.

Server (AppRunner) and client (ClientSession) share the loop under test, except in
test_run_app, where ``web.run_app`` serves from a program of its own, started through
``python -m tideloop`` (or plain ``python`` for the asyncio control).
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

MiB = 1024 * 1024


def test_keepalive(run: Any, aiohttp_app: Any) -> None:
    async def scenario() -> None:
        async with aiohttp_app.serve() as port:
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector) as session:
                peers = set()
                for _ in range(20):
                    async with session.get(f"http://127.0.0.1:{port}/loop") as resp:
                        assert resp.status == 200
                        info = await resp.json()
                        peers.add(tuple(info["peer"]))
                # One connection served all 20 requests.
                assert len(peers) == 1, peers

    run(scenario)


def test_concurrent_requests(run: Any, aiohttp_app: Any) -> None:
    async def scenario() -> None:
        import asyncio

        async with aiohttp_app.serve() as port, aiohttp.ClientSession() as session:

            async def one(i: int) -> int:
                url = f"http://127.0.0.1:{port}/download?size={i * 1000}"
                async with session.get(url) as resp:
                    return len(await resp.read())

            sizes = await asyncio.gather(*(one(i) for i in range(50)))
            assert sizes == [i * 1000 for i in range(50)]

    run(scenario)


def test_chunked_upload(run: Any, aiohttp_app: Any) -> None:
    data = aiohttp_app.pattern(3 * MiB + 17)

    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 40_000):
            yield data[start : start + 40_000]

    async def scenario() -> None:
        async with (
            aiohttp_app.serve() as port,
            aiohttp.ClientSession() as session,
            session.post(f"http://127.0.0.1:{port}/upload", data=body()) as resp,
        ):
            assert resp.status == 200
            info = await resp.json()
        assert info == {
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "chunked": True,
        }

    run(scenario)


def test_chunked_download(run: Any, aiohttp_app: Any) -> None:
    size = 5 * MiB + 3

    async def scenario() -> None:
        async with aiohttp_app.serve() as port, aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/download?size={size}&piece=100000"
            async with session.get(url) as resp:
                assert resp.status == 200
                assert resp.headers["Transfer-Encoding"] == "chunked"
                digest, got = hashlib.sha256(), 0
                async for piece in resp.content.iter_chunked(32768):
                    digest.update(piece)
                    got += len(piece)
        assert got == size
        assert digest.hexdigest() == hashlib.sha256(aiohttp_app.pattern(size)).hexdigest()

    run(scenario)


def test_websocket(run: Any, aiohttp_app: Any) -> None:
    big = aiohttp_app.pattern(2 * MiB)

    async def scenario() -> None:
        async with aiohttp_app.serve() as port, aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                for i in range(100):
                    await ws.send_str(f"message {i}")
                for i in range(100):
                    assert await ws.receive_str() == f"message {i}"
                await ws.send_bytes(big)
                assert await ws.receive_bytes() == big
                await ws.send_str("close")
                msg = await ws.receive()
                assert msg.type == aiohttp.WSMsgType.CLOSE
                assert (msg.data, msg.extra) == (4000, "bye")
            assert ws.closed

    run(scenario)


@pytest.mark.tls
def test_tls(run: Any, aiohttp_app: Any, tls: Any) -> None:
    data = aiohttp_app.pattern(MiB)

    async def scenario() -> None:
        async with aiohttp_app.serve(tls.server_context()) as port:
            connector = aiohttp.TCPConnector(ssl=tls.client_context(), limit=1)
            async with aiohttp.ClientSession(connector=connector) as session:
                base = f"https://localhost:{port}"
                peers = set()
                for _ in range(3):  # keep-alive over TLS
                    async with session.get(f"{base}/loop") as resp:
                        peers.add(tuple((await resp.json())["peer"]))
                assert len(peers) == 1
                async with session.post(f"{base}/upload", data=data) as resp:
                    info = await resp.json()
                assert info["sha256"] == hashlib.sha256(data).hexdigest()
                async with session.ws_connect(f"{base}/ws") as ws:
                    await ws.send_str("over TLS")
                    assert await ws.receive_str() == "over TLS"

    run(scenario)


@pytest.mark.parametrize("how", ["launcher", "loop_argument"])
def test_run_app(run: Any, program: Any, how: str) -> None:
    """web.run_app in a program of its own; SIGTERM ends it cleanly (its signal handlers).

    ``launcher``: ``python -m tideloop aiohttp_app.py`` (run_app makes the loop itself);
    ``loop_argument``: ``web.run_app(app, loop=tideloop.new_event_loop())``.
    """
    if run.impl == "aio":
        server = program(["aiohttp_app.py", "{port}"])
    elif how == "launcher":
        server = program(["-m", "tideloop", "aiohttp_app.py", "{port}"])
    else:
        server = program(["aiohttp_app.py", "{port}", "tideloop"])
    port = server.port

    async def scenario() -> str:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/loop") as resp,
        ):
            return (await resp.json())["loop"]

    loop_name = run(scenario)
    assert loop_name.startswith("tideloop.") == (run.impl == "tide"), loop_name
    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert "Traceback" not in server.output(), server.output()


def test_file_response(run: Any, aiohttp_app: Any, tmp_path: Any) -> None:
    """web.FileResponse sends with loop.sendfile; a Range request gets a slice."""
    data = aiohttp_app.pattern(10 * MiB + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    async def scenario() -> None:
        async with aiohttp_app.serve(file=str(path)) as port, aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/file"
            async with session.get(url) as resp:
                assert resp.status == 200
                assert int(resp.headers["Content-Length"]) == len(data)
                assert await resp.read() == data
            async with session.get(url, headers={"Range": "bytes=1000-1999999"}) as resp:
                assert resp.status == 206
                assert await resp.read() == data[1000:2000000]

    run(scenario)


def test_slow_reader_and_abort(run: Any, aiohttp_app: Any) -> None:
    """A client that reads slowly gets every byte (server-side flow control); one that
    goes away mid-download ends the handler, and the server goes on serving."""
    size = 8 * MiB

    async def scenario() -> None:
        import asyncio

        async with aiohttp_app.serve() as port:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession(read_bufsize=2**14) as session:
                async with session.get(f"{base}/download?size={size}") as resp:
                    digest, got = hashlib.sha256(), 0
                    while piece := await resp.content.read(1 << 16):
                        digest.update(piece)
                        got += len(piece)
                        if got < MiB:
                            await asyncio.sleep(0.002)  # the server's buffers fill up
                assert got == size
                assert digest.digest() == hashlib.sha256(aiohttp_app.pattern(size)).digest()

            async with aiohttp.ClientSession() as session:
                resp = await session.get(f"{base}/download?size={64 * MiB}")
                await resp.content.readexactly(MiB)
                resp.close()  # drop the connection mid-body
                for _ in range(200):
                    async with session.get(f"{base}/events") as info:
                        if (await info.json())["download_aborted"] == 1:
                            break
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the server did not see the client go away")

    run(scenario)


def test_eager_task_factory(run: Any, aiohttp_app: Any) -> None:
    """Server and client with asyncio.eager_task_factory (3.12+), as some apps set it."""
    import asyncio
    import sys

    if sys.version_info < (3, 12):
        pytest.skip("eager tasks are 3.12+")

    async def scenario() -> None:
        asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
        async with aiohttp_app.serve() as port, aiohttp.ClientSession() as session:

            async def one(i: int) -> int:
                async with session.get(f"http://127.0.0.1:{port}/download?size={i}") as r:
                    return len(await r.read())

            assert await asyncio.gather(*(one(i) for i in range(30))) == list(range(30))
            async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                await ws.send_str("eager")
                assert await ws.receive_str() == "eager"

    run(scenario)


def test_unix_socket(run: Any, aiohttp_app: Any, tmp_path: Any) -> None:
    """web.UnixSite and the client's UnixConnector."""
    from aiohttp import web

    path = str(tmp_path / "aiohttp.sock")

    async def scenario() -> None:
        runner = web.AppRunner(aiohttp_app.make_app(), access_log=None)
        await runner.setup()
        try:
            await web.UnixSite(runner, path).start()
            connector = aiohttp.UnixConnector(path=path)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get("http://localhost/download?size=3000000") as resp:
                    assert await resp.read() == aiohttp_app.pattern(3_000_000)
                async with session.ws_connect("http://localhost/ws") as ws:
                    await ws.send_bytes(b"unix")
                    assert await ws.receive_bytes() == b"unix"
        finally:
            await runner.cleanup()

    run(scenario)
