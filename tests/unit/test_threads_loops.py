"""Loops running at the same time in different threads never see each other's data.

The compiled build reads through per-loop state (_transports/_sockio.pxd: the receive buffer,
the spare bytes object reused for the next read of its length, the last datagram's source
address, all in the loop's RecvState). Were any of it shared between loops, a read in one
thread could deliver bytes another thread's loop had received, or an echo could go to an
address another loop had just read. Here every thread runs its own loop with TCP echo servers
and clients (Protocol and asyncio streams, reads below and above 16 KiB, where the compiled
read changes method, and the same 1 KiB size again and again, where it reuses a bytes object)
and a UDP echo server answering clients on several ports, all with payloads that differ per
thread, connection and message; every byte that comes back is checked.

With the GIL the old process-wide state was safe too (no shim released the GIL between
filling the buffer or address and consuming it), so this cannot fail for it there; it fails
once two reads really run at once, as under free threading. (Checked by releasing the GIL
around the shims' recv/recvmsg/recvfrom: with the old shared state this test failed in every
run, with wrong bytes and wrong addresses; with the per-loop state it passes.)
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from typing import Any

# Stream messages: the same 1 KiB again and again, small ones, and reads of 16 KiB and more
# (300 000 bytes is above the 256 KiB the loop reads at most at once).
STREAM_SIZES = (1024, 1024, 100, 1024, 20_000, 1024, 70_000, 4096, 1024, 300_000, 16_384, 7)
UDP_SIZES = (1024, 1024, 100, 1400, 1024, 9000, 30_000, 1024, 60_000, 1)
THREADS = 3
STREAM_CLIENTS = 3  # per thread, each of the two kinds
STREAM_ROUNDS = 2  # times through STREAM_SIZES
UDP_CLIENTS = 6  # per thread, each on its own port
UDP_ROUNDS = 4  # times through UDP_SIZES


def _payload(*key: int, size: int) -> bytes:
    """Bytes that differ for every (thread, connection, message) key."""
    return random.Random(repr(key)).randbytes(size)


def _check(got: bytes, want: bytes, what: str) -> None:
    if got != want:
        at = next(
            (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
            min(len(got), len(want)),
        )
        raise AssertionError(f"{what}: {len(got)} bytes back for {len(want)}, first diff at {at}")


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


class _Collector(asyncio.Protocol):
    """A client Protocol: collects what comes back; wait(n) returns once n bytes came."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.data += data
        if self.waiter is not None and len(self.data) >= self.want:
            if not self.waiter.done():
                self.waiter.set_result(None)

    async def wait(self, n: int) -> bytes:
        self.want = n
        if len(self.data) < n:
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, 20)
            self.waiter = None
        got = bytes(self.data[:n])
        del self.data[:n]
        return got


class _UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.sent: set[bytes] = set()  # what came back already

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait((data, addr))


async def _stream_client(tag: int, n: int, port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for r in range(STREAM_ROUNDS):
            for i, size in enumerate(STREAM_SIZES):
                want = _payload(tag, 1, n, r, i, size=size)
                writer.write(want)
                got = await asyncio.wait_for(reader.readexactly(size), 20)
                _check(got, want, f"thread {tag} stream {n} message {r}.{i}")
    finally:
        writer.close()
        await writer.wait_closed()


async def _protocol_client(tag: int, n: int, port: int) -> None:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_Collector, "127.0.0.1", port)
    try:
        for r in range(STREAM_ROUNDS):
            for i, size in enumerate(STREAM_SIZES):
                want = _payload(tag, 2, n, r, i, size=size)
                transport.write(want)
                _check(await proto.wait(size), want, f"thread {tag} protocol {n} message {r}.{i}")
    finally:
        transport.close()


async def _udp_roundtrip(transport: Any, proto: _UdpClient, want: bytes, what: str) -> None:
    """Send want until its echo comes back (loopback UDP may drop a datagram); anything else
    that arrives must be a late echo of one of this client's earlier datagrams."""
    server = transport.get_extra_info("peername")
    for _attempt in range(5):
        transport.sendto(want)
        try:
            while True:
                got, addr = await asyncio.wait_for(proto.queue.get(), 1.0)
                assert addr == server, f"{what}: from {addr}, not {server}"
                if got == want:
                    proto.sent.add(want)
                    return
                assert got in proto.sent, f"{what}: a datagram this client never sent"
        except TimeoutError:
            continue
    raise AssertionError(f"{what}: no echo")


async def _udp_client(tag: int, n: int, server: Any) -> None:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_UdpClient, remote_addr=server)
    try:
        for r in range(UDP_ROUNDS):
            for i, size in enumerate(UDP_SIZES):
                want = _payload(tag, 3, n, r, i, size=size)
                what = f"thread {tag} udp {n} message {r}.{i}"
                await _udp_roundtrip(transport, proto, want, what)
    finally:
        transport.close()


async def _one_loop(tag: int, start: threading.Barrier) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", 0)
    udp, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", 0))
    try:
        port = server.sockets[0].getsockname()[1]
        udp_addr = udp.get_extra_info("sockname")
        # Every loop is ready before any sends: the threads' traffic overlaps.
        await loop.run_in_executor(None, start.wait, 30)
        await asyncio.gather(
            *(_stream_client(tag, n, port) for n in range(STREAM_CLIENTS)),
            *(_protocol_client(tag, n, port) for n in range(STREAM_CLIENTS)),
            *(_udp_client(tag, n, udp_addr) for n in range(UDP_CLIENTS)),
        )
    finally:
        udp.close()
        server.close()
        await server.wait_closed()


def test_loops_in_threads_keep_their_own_data(loop_impl: Any) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def thread_main(tag: int) -> None:
        try:
            with asyncio.Runner(loop_factory=loop_impl) as runner:
                runner.run(_one_loop(tag, start))
        except BaseException as exc:
            errors.append(exc)
            start.abort()

    # A short switch interval makes the threads take turns more often.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        threads = [threading.Thread(target=thread_main, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(50)
    finally:
        sys.setswitchinterval(interval)
    assert not any(t.is_alive() for t in threads), "a loop thread hung"
    if errors:
        raise errors[0]
