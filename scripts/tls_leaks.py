"""Open and close many TLS connections on tideloop; fail if fds or SSL objects are left behind.

    python scripts/tls_leaks.py [-n 10000] [--batch 50]

Client and server both run on one tideloop loop in this process, with a certificate
authority made now by ``trustme`` (no key on disk). Connections come in batches of
``--batch`` concurrent ones, and cycle through the ways a connection ends:

    clean      echo, then close(): close_notify both ways
    abort      echo, then abort() from the client
    srv-close  the server writes and closes first
    vanish     a raw TCP client sends half a ClientHello and disconnects (mid-handshake)
    timeout    a raw TCP client connects and says nothing; the server's 0.5 s handshake
               timeout ends it (one in 50 connections)

After a warm-up batch it counts open fds (/proc/self/fd), live ``ssl.SSLObject`` and tideloop
``TLSCore`` objects (gc), and RSS; it counts them again at the end and exits with status 1 if
any count grew (RSS is reported, not judged: allocators keep freed memory).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import ssl
import sys
import time

import trustme

import tideloop
from tideloop._transports.tls import TLSCore

HOST = "127.0.0.1"
KINDS = ("clean", "abort", "srv-close", "clean", "vanish")


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if data == b"close":
            self.transport.write(b"bye")
            self.transport.close()
        else:
            self.transport.write(data)


class Client(asyncio.Protocol):
    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.got = loop.create_future()
        self.lost = loop.create_future()

    def data_received(self, data: bytes) -> None:
        if not self.got.done():
            self.got.set_result(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost.set_result(exc)


def counts() -> dict[str, int]:
    gc.collect()
    objs = gc.get_objects()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "SSLObject": sum(1 for o in objs if type(o) is ssl.SSLObject),
        "TLSCore": sum(1 for o in objs if type(o) is TLSCore),
        "rss_kib": rss // 1024,
    }


async def one(kind: str, port: int, client_ctx: ssl.SSLContext, hello: bytes) -> None:
    loop = asyncio.get_running_loop()
    if kind in ("vanish", "timeout"):
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, (HOST, port))
        if kind == "vanish":
            await loop.sock_sendall(sock, hello[: len(hello) // 2])
        else:
            await asyncio.sleep(0.7)  # past the server's handshake timeout
        sock.close()
        return
    tr, proto = await loop.create_connection(
        Client, HOST, port, ssl=client_ctx, server_hostname="localhost"
    )
    tr.write(b"close" if kind == "srv-close" else b"ping")
    await proto.got
    if kind == "abort":
        tr.abort()
    elif kind == "clean":
        tr.close()
    await proto.lost


async def main(n: int, batch: int) -> int:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    try:
        client_ctx.wrap_bio(bio_in, bio_out, server_hostname="localhost").do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = bio_out.read()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        Echo, HOST, 0, ssl=server_ctx, ssl_handshake_timeout=0.5, backlog=1000
    )
    port = server.sockets[0].getsockname()[1]

    async def run(count: int, start: int) -> None:
        for base in range(start, start + count, batch):
            kinds = [
                "timeout" if i % 50 == 49 else KINDS[i % len(KINDS)]
                for i in range(base, min(base + batch, start + count))
            ]
            await asyncio.gather(*(one(k, port, client_ctx, hello) for k in kinds))

    await run(batch, 0)  # warm-up
    await asyncio.sleep(1)
    before = counts()
    t0 = time.monotonic()
    await run(n, batch)
    await asyncio.sleep(1)  # let the servers' last connections (timeouts) finish
    took = time.monotonic() - t0
    server.close()
    await server.wait_closed()
    after = counts()
    print(f"{n} TLS connections in {took:.1f} s on tideloop (compiled={tideloop.COMPILED})")
    for key in before:
        print(f"  {key:<10} before {before[key]:>8}  after {after[key]:>8}")
    grew = [k for k in ("fds", "SSLObject", "TLSCore") if after[k] > before[k]]
    if grew:
        print(f"LEAK: {', '.join(grew)} grew")
        return 1
    print("no leaks")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=10_000, help="connections (default 10000)")
    ap.add_argument("--batch", type=int, default=50, help="concurrent connections")
    args = ap.parse_args()
    sys.exit(tideloop.run(main(args.n, args.batch)))
