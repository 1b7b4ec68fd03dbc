"""A TCP echo server and its clients, on nothing but the loop's sock_* coroutines.

A plain asyncio program: it knows nothing of tideloop. Run it on tideloop with

    python -m tideloop examples/echo_sock.py

or on the standard loop with ``python examples/echo_sock.py``. It starts an echo server on
127.0.0.1 (a free port), runs several clients at once, each sending messages from 1 byte to
1 MiB and checking that every byte comes back, then shuts everything down and prints a short
report naming the event loop it ran on. Exit status 0 means every echo was verified.

Each client sends and receives at the same time (two tasks on one socket): a client that sent
1 MiB before reading anything would deadlock against a server blocked on a full send buffer.
"""

from __future__ import annotations

import asyncio
import random
import socket
import sys
import time

CLIENTS = 8
MESSAGE_SIZES = (1, 100, 4096, 65536, 1 << 20)  # 1 B .. 1 MiB, one of each per client
CHUNK = 65536
TIME_LIMIT = 10.0  # seconds; a safety net, the whole run takes a few tens of milliseconds


async def handle_client(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> int:
    """Echo until the client shuts down its side; return the number of bytes echoed."""
    echoed = 0
    with conn:
        while data := await loop.sock_recv(conn, CHUNK):
            await loop.sock_sendall(conn, data)
            echoed += len(data)
    return echoed


async def serve(
    loop: asyncio.AbstractEventLoop, listener: socket.socket, handlers: set[asyncio.Task[int]]
) -> None:
    """Accept connections forever; each one gets its own handler task."""
    while True:
        conn, _ = await loop.sock_accept(listener)
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handlers.add(loop.create_task(handle_client(loop, conn)))


async def recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = await loop.sock_recv(sock, min(CHUNK, n - len(buf)))
        if not data:
            raise ConnectionError(f"server closed after {len(buf)} of {n} bytes")
        buf += data
    return bytes(buf)


async def client(loop: asyncio.AbstractEventLoop, address: tuple[str, int], seed: int) -> int:
    """Send every message size once, in a shuffled order; verify the echo; return bytes sent."""
    rng = random.Random(seed)
    sizes = list(MESSAGE_SIZES)
    rng.shuffle(sizes)
    messages = [rng.randbytes(size) for size in sizes]
    expected = b"".join(messages)

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        async def send_all() -> None:
            for message in messages:
                await loop.sock_sendall(sock, message)

        _, echoed = await asyncio.gather(send_all(), recv_exactly(loop, sock, len(expected)))
        if echoed != expected:
            raise AssertionError(f"client {seed}: echo differs from what was sent")
        sock.shutdown(socket.SHUT_WR)  # the server sees EOF and closes its side
        if await loop.sock_recv(sock, 1):
            raise AssertionError(f"client {seed}: data after the echo")
    return len(expected)


async def main() -> int:
    loop = asyncio.get_running_loop()
    loop_name = f"{type(loop).__module__}.{type(loop).__qualname__}"
    started = time.perf_counter()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(CLIENTS)
    listener.setblocking(False)
    address = listener.getsockname()

    handlers: set[asyncio.Task[int]] = set()
    server = asyncio.create_task(serve(loop, listener, handlers))
    try:
        async with asyncio.timeout(TIME_LIMIT):
            sent = await asyncio.gather(*(client(loop, address, seed) for seed in range(CLIENTS)))
            echoed = await asyncio.gather(*handlers)
    finally:
        server.cancel()
        try:
            await server
        except asyncio.CancelledError:
            pass
        listener.close()
    elapsed = time.perf_counter() - started

    total = sum(sent)
    if sum(echoed) != total or len(handlers) != CLIENTS:
        print(
            f"FAILED: server echoed {sum(echoed)} of {total} bytes over {len(handlers)} "
            f"connections",
            file=sys.stderr,
        )
        return 1
    print(f"loop: {loop_name}")
    print(f"server: {address[0]}:{address[1]}, {len(handlers)} connections")
    print(
        f"clients: {CLIENTS} x {len(MESSAGE_SIZES)} messages ({min(MESSAGE_SIZES)} B to "
        f"{max(MESSAGE_SIZES) >> 20} MiB), {total / (1 << 20):.1f} MiB echoed and verified"
    )
    print(f"time: {elapsed * 1000:.1f} ms")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
