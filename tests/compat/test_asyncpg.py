"""asyncpg against a real PostgreSQL server (the ``postgres`` fixture), on tideloop.

Covers TCP and the server's Unix socket, prepared statements, transactions, COPY in both
directions, LISTEN/NOTIFY, a cancelled query, a pool under concurrency, and TLS (asyncpg
negotiates it with SSLRequest and then upgrades the connection with loop.start_tls).
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import asyncpg
import pytest


async def _connect(postgres: Any, **kwargs: Any) -> asyncpg.Connection:
    kwargs.setdefault("host", postgres.host)
    # Plain TCP unless the test asks for TLS: asyncpg's default ("prefer") would take the
    # TLS this server offers (test_default_sslmode).
    kwargs.setdefault("ssl", False)
    return await asyncpg.connect(
        port=postgres.port, user=postgres.user, database=postgres.database, **kwargs
    )


def test_queries(run: Any, postgres: Any) -> None:
    async def scenario() -> None:
        conn = await _connect(postgres)
        try:
            assert await conn.fetchval("SELECT 1 + 1") == 2
            await conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text, data bytea)")
            rows = [(i, f"name {i}", bytes(range(i % 256)) * 10) for i in range(2000)]
            await conn.executemany("INSERT INTO t VALUES ($1, $2, $3)", rows)
            stmt = await conn.prepare("SELECT id, name, data FROM t WHERE id >= $1 ORDER BY id")
            got = await stmt.fetch(1000)
            assert [tuple(r) for r in got] == rows[1000:]
            # a large result, streamed by a cursor inside a transaction
            async with conn.transaction():
                seen = [r["id"] async for r in conn.cursor("SELECT id FROM t ORDER BY id")]
            assert seen == list(range(2000))
            # a rolled-back transaction leaves nothing behind
            with pytest.raises(asyncpg.UniqueViolationError):
                async with conn.transaction():
                    await conn.execute("INSERT INTO t VALUES (5000, 'x', NULL)")
                    await conn.execute("INSERT INTO t VALUES (1, 'dup', NULL)")
            assert await conn.fetchval("SELECT count(*) FROM t") == 2000
        finally:
            await conn.close()

    run(scenario)


def test_copy(run: Any, postgres: Any) -> None:
    async def scenario() -> None:
        conn = await _connect(postgres)
        try:
            await conn.execute("CREATE TEMP TABLE c (id int, payload text)")
            records = [(i, "x" * (i % 1000)) for i in range(20_000)]
            await conn.copy_records_to_table("c", records=records)
            out = io.BytesIO()
            await conn.copy_from_query("SELECT * FROM c ORDER BY id", output=out, format="csv")
            lines = out.getvalue().decode().splitlines()
            assert len(lines) == 20_000
            assert lines[1234] == f"1234,{'x' * 234}"
        finally:
            await conn.close()

    run(scenario)


def test_unix_socket(run: Any, postgres: Any) -> None:
    async def scenario() -> None:
        conn = await _connect(postgres, host=postgres.socket_dir)
        try:
            assert await conn.fetchval("SELECT current_user") == postgres.user
            assert await conn.fetchval("SELECT inet_client_addr()") is None  # not TCP
        finally:
            await conn.close()

    run(scenario)


def test_listen_notify_and_cancel(run: Any, postgres: Any) -> None:
    async def scenario() -> None:
        listener, sender = await _connect(postgres), await _connect(postgres)
        try:
            got: asyncio.Queue[str] = asyncio.Queue()
            await listener.add_listener("chan", lambda *args: got.put_nowait(args[3]))
            for i in range(10):
                await sender.execute(f"NOTIFY chan, 'msg {i}'")
            assert [await got.get() for _ in range(10)] == [f"msg {i}" for i in range(10)]
            # a timeout cancels a running query (asyncpg sends a CancelRequest on a new
            # connection), and the connection stays usable
            with pytest.raises(asyncio.TimeoutError):
                await sender.execute("SELECT pg_sleep(30)", timeout=0.2)
            assert await sender.fetchval("SELECT 42") == 42
        finally:
            await listener.close()
            await sender.close()

    run(scenario)


def test_pool(run: Any, postgres: Any) -> None:
    async def scenario() -> None:
        async with asyncpg.create_pool(
            host=postgres.host, port=postgres.port, user=postgres.user,
            database=postgres.database, ssl=False, min_size=2, max_size=8,
        ) as pool:  # fmt: skip

            async def work(i: int) -> int:
                async with pool.acquire() as conn:
                    return await conn.fetchval("SELECT $1::int * 2 FROM pg_sleep(0.01)", i)

            results = await asyncio.gather(*(work(i) for i in range(100)))
            assert results == [i * 2 for i in range(100)]

    run(scenario)


@pytest.mark.tls
def test_ssl(run: Any, postgres: Any, tls: Any) -> None:
    async def scenario() -> None:
        conn = await _connect(postgres, host="localhost", ssl=tls.client_context())
        try:
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            rows = await conn.fetch("SELECT g, repeat('y', 1000) FROM generate_series(1, 3000) g")
            assert len(rows) == 3000
        finally:
            await conn.close()

    run(scenario)


def test_server_terminates_backend(run: Any, postgres: Any) -> None:
    """The server ends a session (pg_terminate_backend): the client sees the connection
    go away; a pool replaces such a connection by itself."""

    async def scenario() -> None:
        admin = await _connect(postgres)
        try:
            victim = await _connect(postgres)
            pid = victim.get_server_pid()
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
            for _ in range(200):  # the server's notice and EOF arrive: connection_lost
                if victim.is_closed():
                    break
                await asyncio.sleep(0.01)
            assert victim.is_closed()
            with pytest.raises(asyncpg.InterfaceError, match="connection is closed"):
                await victim.fetchval("SELECT 1")

            async with asyncpg.create_pool(
                postgres.dsn(), ssl=False, min_size=1, max_size=1
            ) as pool:
                pid = await pool.fetchval("SELECT pg_backend_pid()")
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                for _ in range(50):
                    try:
                        assert await pool.fetchval("SELECT pg_backend_pid()") != pid
                        break
                    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError,
                            asyncpg.InternalClientError):  # fmt: skip
                        # InternalClientError ("cannot switch to state ..."): asyncpg's own,
                        # seen on asyncio's loop too when the EOF races the query.
                        await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the pool never recovered")
        finally:
            await admin.close()

    run(scenario)


@pytest.mark.tls
def test_default_sslmode(run: Any, postgres: Any) -> None:
    """asyncpg's default (sslmode "prefer") upgrades to TLS when the server offers it, as
    this one does: so a plain ``asyncpg.connect(dsn)`` needs loop.start_tls."""

    async def scenario() -> None:
        conn = await asyncpg.connect(postgres.dsn())
        try:
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        finally:
            await conn.close()

    run(scenario)
