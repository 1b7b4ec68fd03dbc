"""redis-py's asyncio client against a real redis-server (the ``redis_server`` fixture).

Over TCP and over the server's Unix socket: commands, large values, pipelines, pub/sub,
blocking commands with a timeout, and a connection pool under concurrency.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def _client(redis_server: Any, via: str) -> aioredis.Redis:
    if via == "tcp":
        return aioredis.Redis(host=redis_server.host, port=redis_server.port)
    return aioredis.Redis(unix_socket_path=redis_server.unix_socket)


@pytest.fixture(params=["tcp", "unix"])
def via(request: pytest.FixtureRequest) -> str:
    return request.param


def test_commands(run: Any, redis_server: Any, via: str) -> None:
    key = f"{run.impl}-{via}"

    async def scenario() -> None:
        client = _client(redis_server, via)
        try:
            assert await client.ping()
            await client.set(f"{key}:a", "1")
            assert await client.incr(f"{key}:a") == 2
            big = bytes(range(256)) * 20_000  # 5 MB: many reads and partial writes
            await client.set(f"{key}:big", big)
            assert await client.get(f"{key}:big") == big
            async with client.pipeline(transaction=True) as pipe:
                for i in range(1000):
                    pipe.rpush(f"{key}:list", i)
                pipe.lrange(f"{key}:list", 0, -1)
                results = await pipe.execute()
            assert results[-1] == [str(i).encode() for i in range(1000)]
            # a blocking pop that times out, then one that a concurrent push wakes up
            assert await client.blpop([f"{key}:empty"], timeout=0.1) is None
            other = _client(redis_server, via)
            try:
                waiter = asyncio.ensure_future(client.blpop([f"{key}:q"], timeout=5))
                await asyncio.sleep(0.05)
                await other.rpush(f"{key}:q", "hello")
                assert await waiter == (f"{key}:q".encode(), b"hello")
            finally:
                await other.aclose()
        finally:
            await client.delete(f"{key}:a", f"{key}:big", f"{key}:list", f"{key}:q")
            await client.aclose()

    run(scenario)


def test_pubsub(run: Any, redis_server: Any, via: str) -> None:
    channel = f"chan-{run.impl}-{via}"

    async def scenario() -> None:
        client = _client(redis_server, via)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            confirm = await pubsub.get_message(timeout=5)
            assert confirm is not None and confirm["type"] == "subscribe"
            for i in range(20):
                await client.publish(channel, f"m{i}")
            got = []
            while len(got) < 20:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                assert msg is not None, got
                got.append(msg["data"])
            assert got == [f"m{i}".encode() for i in range(20)]
        finally:
            await pubsub.aclose()
            await client.aclose()

    run(scenario)


def test_pool_concurrency(run: Any, redis_server: Any, via: str) -> None:
    key = f"pool-{run.impl}-{via}"

    async def scenario() -> None:
        client = _client(redis_server, via)
        try:

            async def work(i: int) -> bytes | None:
                await client.set(f"{key}:{i}", i)
                return await client.get(f"{key}:{i}")

            results = await asyncio.gather(*(work(i) for i in range(80)))
            assert results == [str(i).encode() for i in range(80)]
            assert len(client.connection_pool._available_connections) > 1
        finally:
            await client.delete(*(f"{key}:{i}" for i in range(80)))
            await client.aclose()

    run(scenario)


def test_server_drops_connection(run: Any, redis_server: Any, via: str) -> None:
    """CLIENT KILL closes the client's connection from the server side: the client sees it
    and reconnects on the next command (redis-py's default retry)."""

    async def scenario() -> None:
        client, admin = _client(redis_server, via), _client(redis_server, via)
        try:
            await client.client_setname(f"victim-{run.impl}-{via}")
            assert await client.ping()
            killed = await admin.execute_command(
                "CLIENT", "KILL", "SKIPME", "yes", "ID", await client.client_id()
            )
            assert killed == 1
            await asyncio.sleep(0.05)  # let the EOF arrive
            assert await client.ping()  # a new connection
            assert await client.client_getname() is None
        finally:
            await client.aclose()
            await admin.aclose()

    run(scenario)


@pytest.mark.tls(raises=redis.exceptions.ConnectionError)  # wraps NotImplementedError
def test_tls(run: Any, redis_server: Any, tls: Any) -> None:
    async def scenario() -> None:
        client = aioredis.Redis(
            host="localhost", port=redis_server.tls_port, ssl=True,
            ssl_ca_data=tls.ca.cert_pem.bytes().decode(), retry=Retry(NoBackoff(), 0),
        )  # fmt: skip
        try:
            big = bytes(range(256)) * 8000
            await client.set("tls-big", big)
            assert await client.get("tls-big") == big
            assert await client.delete("tls-big") == 1
        finally:
            await client.aclose()

    run(scenario)
