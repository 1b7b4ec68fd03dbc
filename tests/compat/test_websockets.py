"""The websockets library (its asyncio implementation), server and client on tideloop.

Over TCP and a Unix socket: text and binary echo, messages far larger than a socket buffer,
fragmented messages, permessage-deflate compression, ping/pong, many concurrent clients,
a broadcast, and both sides' closing handshakes with a custom close code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect, unix_connect
from websockets.asyncio.server import ServerConnection, broadcast, serve, unix_serve
from websockets.exceptions import ConnectionClosed

MiB = 1024 * 1024


async def echo(conn: ServerConnection) -> None:
    async for message in conn:
        if message == "close":
            await conn.close(4001, "asked to")
            return
        if message == "broadcast":
            broadcast(conn.server.connections, "to everyone")
            continue
        await conn.send(message)


@pytest.fixture(params=["tcp", "unix"])
def via(request: pytest.FixtureRequest) -> str:
    return request.param


def test_echo(run: Any, via: str, tmp_path: Path) -> None:
    big = bytes(range(256)) * (3 * MiB // 256)  # 3 MiB
    path = str(tmp_path / "ws.sock")

    async def scenario() -> None:
        if via == "tcp":
            server = await serve(echo, "127.0.0.1", 0, max_size=8 * MiB)
            port = server.sockets[0].getsockname()[1]
            client = connect(f"ws://127.0.0.1:{port}", max_size=8 * MiB)
        else:
            server = await unix_serve(echo, path, max_size=8 * MiB)
            client = unix_connect(path, max_size=8 * MiB)
        async with server, client as conn:
            for i in range(200):
                await conn.send(f"hello {i}")
            for i in range(200):
                assert await conn.recv() == f"hello {i}"
            await conn.send(big)
            assert await conn.recv() == big
            # a fragmented message: sent in pieces, echoed whole
            await conn.send([b"ab" * 1000, b"cd" * 1000, b"ef" * 1000])
            assert await conn.recv() == b"ab" * 1000 + b"cd" * 1000 + b"ef" * 1000
            latency = await (await conn.ping())
            assert latency >= 0
            await conn.send("close")
            with pytest.raises(ConnectionClosed):
                await conn.recv()
            assert conn.close_code == 4001
            assert conn.close_reason == "asked to"

    run(scenario)


def test_many_clients_and_broadcast(run: Any) -> None:
    async def scenario() -> None:
        async with serve(echo, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            conns = await asyncio.gather(*(connect(f"ws://127.0.0.1:{port}") for _ in range(50)))
            try:

                async def talk(i: int, conn: Any) -> None:
                    for j in range(20):
                        await conn.send(f"{i}:{j}")
                        assert await conn.recv() == f"{i}:{j}"

                await asyncio.gather(*(talk(i, c) for i, c in enumerate(conns)))
                await conns[0].send("broadcast")
                got = await asyncio.gather(*(c.recv() for c in conns))
                assert got == ["to everyone"] * 50
            finally:
                await asyncio.gather(*(c.close() for c in conns))
            assert all(c.close_code == 1000 for c in conns)

    run(scenario)


def test_server_shutdown_closes_clients(run: Any) -> None:
    async def scenario() -> None:
        server = await serve(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as conn:
            await conn.send("x")
            assert await conn.recv() == "x"
            server.close()  # closes open connections with 1001 (going away)
            await server.wait_closed()
            with pytest.raises(ConnectionClosed):
                await conn.recv()
            assert conn.close_code == 1001

    run(scenario)


def test_backpressure(run: Any) -> None:
    """A server that sends far more than the client reads: send() waits (the transport's
    write buffer fills and pauses the protocol), then everything arrives in order."""
    count, size = 400, 64 * 1024

    async def flood(conn: ServerConnection) -> None:
        for i in range(count):
            await conn.send(i.to_bytes(4, "big") * (size // 4))
        await conn.close()

    async def scenario() -> None:
        async with serve(flood, "127.0.0.1", 0, compression=None, write_limit=2**16) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}", compression=None, max_queue=4) as conn:
                await asyncio.sleep(0.2)  # the server fills every buffer meanwhile
                for i in range(count):
                    message = await conn.recv()
                    assert message == i.to_bytes(4, "big") * (size // 4), i
                with pytest.raises(ConnectionClosed):
                    await conn.recv()

    run(scenario)


@pytest.mark.tls
def test_wss(run: Any, tls: Any) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: many TLS records

    async def scenario() -> None:
        async with serve(echo, "127.0.0.1", 0, ssl=tls.server_context(), max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            uri = f"wss://localhost:{port}"
            async with connect(uri, ssl=tls.client_context(), max_size=None) as conn:
                await conn.send("over TLS")
                assert await conn.recv() == "over TLS"
                await conn.send(big)
                assert await conn.recv() == big

    run(scenario)
