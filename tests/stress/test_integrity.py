"""Data integrity under load: every byte of hundreds of concurrent echo connections arrives.

Each client sends an 8-byte length and a random payload (seeded; sizes log-uniform from 1 B
up to 1 MiB) in random-sized writes, with random drains, and reads the echo back with
random ``read(n)`` sizes through a StreamReader with a small ``limit`` (a slow reader). Three
servers echo: a plain Protocol, a slow one (``pause_reading`` after every chunk, resumed on
the next loop iteration) and a BufferedProtocol whose ``get_buffer`` hands out 1-7 byte
buffers (bytearray and memoryview alternately). A share of the connections runs over TLS.
Both ways are checked with SHA-256: what each server received equals what its client sent,
and what each client got back equals what it sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import ssl
import struct
import sys
from typing import Any

import pytest

HOST = "127.0.0.1"
PYPY = sys.implementation.name == "pypy"  # slower here: a third of the connections
N_PLAIN = 60 if PYPY else 180  # spread over the three server kinds
N_TLS = 9 if PYPY else 24
CONCURRENCY = 40
MAX_SIZE = {"plain": 1 << 20, "slow": 1 << 20, "buffered": 8 << 10}
TLS_MAX_SIZE = 256 << 10


def log_uniform(rng: random.Random, top: int) -> int:
    return min(top, int(math.exp(rng.uniform(0, math.log(top + 1)))))


class EchoCore:
    """What every server kind shares: hash what arrives, echo it, close when all came."""

    def __init__(self, received: list[str]) -> None:
        self.received = received
        self.hash = hashlib.sha256()
        self.head = bytearray()
        self.count = 0
        self.total: int | None = None
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def feed(self, chunk: bytes) -> None:
        self.hash.update(chunk)
        self.count += len(chunk)
        if self.total is None:
            self.head += chunk[:8]
            if len(self.head) >= 8:
                self.total = 8 + struct.unpack("!Q", self.head[:8])[0]
        assert self.total is None or self.count <= self.total
        self.transport.write(chunk)
        if self.count == self.total:
            self.received.append(self.hash.hexdigest())
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


class PlainEcho(EchoCore, asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        self.feed(data)


class SlowEcho(EchoCore, asyncio.Protocol):
    def data_received(self, data: bytes) -> None:
        self.feed(data)
        if not self.transport.is_closing():
            self.transport.pause_reading()
            asyncio.get_running_loop().call_soon(self.resume)

    def resume(self) -> None:
        if not self.transport.is_closing():
            self.transport.resume_reading()


class TinyBufferEcho(EchoCore, asyncio.BufferedProtocol):
    def __init__(self, received: list[str], rng: random.Random, bytearrays: bool) -> None:
        super().__init__(received)
        self.rng = rng
        self.bytearrays = bytearrays
        self.buf: bytearray | memoryview = bytearray(1)
        self.calls = 0

    def get_buffer(self, sizehint: int) -> bytearray | memoryview:
        self.calls += 1
        n = self.rng.randint(1, 7)
        if self.bytearrays and self.calls % 2:
            self.buf = bytearray(n)
        else:
            self.buf = memoryview(bytearray(n))
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        assert 0 < nbytes <= len(self.buf)
        self.feed(bytes(self.buf[:nbytes]))


async def client(
    rng: random.Random, port: int, size: int, ctx: ssl.SSLContext | None
) -> tuple[str, str, str]:
    """One connection: returns (sent digest, echoed digest, expected echo digest)."""
    payload = struct.pack("!Q", size) + rng.randbytes(size)
    limit = rng.choice([1, 7, 64, 1024, 65536])
    reader, writer = await asyncio.open_connection(
        HOST, port, ssl=ctx, server_hostname=HOST if ctx else None, limit=limit
    )
    sent = hashlib.sha256()

    async def read_all() -> str:
        got = hashlib.sha256()
        n = 0
        while True:
            chunk = await reader.read(rng.choice([1, 13, 512, 4096, 1 << 16, 1 << 20]))
            if not chunk:
                break
            n += len(chunk)
            got.update(chunk)
        assert n == len(payload), (n, len(payload))
        return got.hexdigest()

    reading = asyncio.create_task(read_all())
    pos = 0
    while pos < len(payload):
        step = log_uniform(rng, len(payload) - pos) or 1
        piece = payload[pos : pos + step]
        writer.write(piece)
        sent.update(piece)
        pos += step
        if rng.random() < 0.3:
            await writer.drain()
    await writer.drain()
    echoed = await reading
    writer.close()
    await writer.wait_closed()
    return sent.hexdigest(), echoed, hashlib.sha256(payload).hexdigest()


async def serve_and_check(
    seed: int, n_plain: int, n_tls: int, server_ctx: Any, client_ctx: Any, tls_bytearrays: bool
) -> None:
    loop = asyncio.get_running_loop()
    received: list[str] = []
    servers: dict[tuple[str, bool], asyncio.Server] = {}
    srng = random.Random(f"{seed}-buffers")
    for tls in (False, True):
        ctx = server_ctx if tls else None
        bytearrays = tls_bytearrays or not tls
        servers["plain", tls] = await loop.create_server(
            lambda: PlainEcho(received), HOST, 0, ssl=ctx
        )
        servers["slow", tls] = await loop.create_server(
            lambda: SlowEcho(received), HOST, 0, ssl=ctx
        )
        servers["buffered", tls] = await loop.create_server(
            lambda b=bytearrays: TinyBufferEcho(received, srng, b), HOST, 0, ssl=ctx
        )
    kinds = ["plain", "slow", "buffered"]
    jobs = []
    for i in range(n_plain + n_tls):
        rng = random.Random(f"{seed}-{i}")
        kind = kinds[i % 3]
        tls = i >= n_plain
        top = min(MAX_SIZE[kind], TLS_MAX_SIZE) if tls else MAX_SIZE[kind]
        port = servers[kind, tls].sockets[0].getsockname()[1]
        jobs.append((rng, port, log_uniform(rng, top), client_ctx if tls else None))
    sem = asyncio.Semaphore(CONCURRENCY)

    async def limited(job: tuple[Any, ...]) -> tuple[str, str, str]:
        async with sem:
            return await client(*job)

    results = await asyncio.gather(*(limited(job) for job in jobs))
    for server in servers.values():
        server.close()
        await server.wait_closed()
    for i, (sent, echoed, expected) in enumerate(results):
        assert sent == expected, f"connection {i}: the client hashed other bytes"
        assert echoed == expected, f"connection {i} (seed {seed}): echo differs"
    assert sorted(received) == sorted(r[0] for r in results), (
        f"seed {seed}: what the servers received differs from what was sent"
    )


@pytest.mark.timeout(120)
def test_echo_integrity(run: Any, seed: int, server_ctx: Any, client_ctx: Any) -> None:
    """TLS BufferedProtocols get memoryview buffers only here (see the next test)."""
    run(lambda: serve_and_check(seed, N_PLAIN, N_TLS, server_ctx, client_ctx, False))


def test_tls_tiny_bytearray_buffers(
    run: Any, loop_impl: Any, seed: int, server_ctx: Any, client_ctx: Any
) -> None:
    """TLS into BufferedProtocols whose get_buffer returns bytearrays of 1-7 bytes."""
    if loop_impl.impl == "aio":
        pytest.skip(
            "asyncio bug: sslproto._do_read__buffered reads the rest of a buffer into "
            "buf[offset:], a copy when get_buffer returned a bytearray: those bytes are lost"
        )
    run(lambda: serve_and_check(seed, 0, 3 * 8, server_ctx, client_ctx, True))
