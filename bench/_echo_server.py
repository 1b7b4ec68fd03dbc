"""Echo server for bench/echo.py, run as a subprocess with the venv python of each row.

    python -I _echo_server.py --loop asyncio|uvloop|tideloop [--compiled 0|1]
        [--proto protocol|buffered|streams|taskfloor] [--streams-impl asyncio|tideloop] [--udp]
        [--tls CERTFILE KEYFILE] [--poller NAME] [--port PORT] [--cold-malloc]

Listens on 127.0.0.1:PORT (0: any free port) and prints "READY <pid> <port> <json>" (the json
says which loop is running), or "NA <reason>" with exit status 3 when this implementation
cannot run the workload (tideloop without transports yet, no tideloop streams, wrong build).
Exits on SIGTERM (the default action) or when stdin closes.

    protocol   asyncio.Protocol: data_received() writes the data back
    buffered   asyncio.BufferedProtocol: get_buffer() returns a preallocated bytearray's
               memoryview, buffer_updated() writes the filled part back
    streams    start_server(): while data := await reader.read(65536): write + drain;
               --streams-impl picks asyncio.start_server or tideloop.start_server
    taskfloor  the floor under any streams echo built on asyncio's Task and Future: a Protocol
               whose one Task per connection awaits a fresh Future per message (set by
               data_received) and writes the data back; no reader, no writer, no drain
    --udp      DatagramProtocol: datagram_received() sendto()s the data back
    --tls      serve protocol/buffered over TLS: create_server(ssl=) with that certificate
Unless --cold-malloc, warm_malloc() first puts glibc's allocator in the state of a server that
has run a while. _http_server.py reuses warm_malloc(), make_loop() and serve().
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback

BUF_SIZE = 256 * 1024
BACKLOG = 1024  # asyncio's default of 100 would drop SYNs when 100 clients connect at once


class NotAvailable(Exception):
    """This implementation cannot run this server (printed as NA, exit status 3)."""


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


class EchoBuffered(asyncio.BufferedProtocol):
    def connection_made(self, transport):
        self.transport = transport
        self.view = memoryview(bytearray(BUF_SIZE))

    def get_buffer(self, sizehint):
        return self.view

    def buffer_updated(self, nbytes):
        self.transport.write(self.view[:nbytes])
        if self.transport.get_write_buffer_size():
            # Part of it is queued. Some transports (asyncio >= 3.12) queue the view itself
            # rather than a copy, so the next read must not go into the same buffer.
            self.view = memoryview(bytearray(BUF_SIZE))


class EchoTaskFloor(asyncio.Protocol):
    """Per message: one Future, one Task wake-up, one write; what a stream reader cannot
    go below while tasks and futures are asyncio's (streams minus this = the streams layer)."""

    def connection_made(self, transport):
        self.transport = transport
        self.data = None
        self.waiter = None
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self.serve())

    def data_received(self, data):
        if self.data is None:
            self.data = data
        else:
            self.data += data
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set_result(None)

    def connection_lost(self, exc):
        self.task.cancel()

    async def serve(self):
        loop = self.loop
        write = self.transport.write
        while True:
            if self.data is None:
                self.waiter = waiter = loop.create_future()
                await waiter
            data = self.data
            self.data = None
            write(data)


class EchoDatagram(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.transport.sendto(data, addr)


async def echo_stream(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def warm_malloc() -> None:
    """Allocate and free one 1 MiB block, as any server that has run for a while has done.

    glibc serves blocks above its mmap threshold (128 KiB at start) with mmap, and raises the
    threshold to the size of the first such block freed whole. asyncio allocates a 256 KiB
    bytes object for every read; until the threshold moves (a connection closing does it:
    recv() returning b"" frees the block unshrunk) each read costs mmap + mremap + munmap,
    which in a never-closed-connection benchmark more than triples asyncio's echo cost."""
    block = bytearray(1 << 20)
    del block


def make_loop(name: str, compiled: str | None, poller: str | None = None,
              eager_writes: bool = False) -> tuple[asyncio.AbstractEventLoop, dict]:
    """The loop to benchmark, and facts about it; NotAvailable if it is not what was asked.

    poller (tideloop only): the backend to ask for through TIDELOOP_POLLER, which tideloop
    reads when the loop is created. A tideloop that does not know the name (ValueError) or
    falls back to epoll (it logs "io_uring is unavailable") gives NotAvailable, so the row is
    n/a rather than a second epoll row. eager_writes (tideloop only): TIDELOOP_DEFER_WRITES=0,
    every write sent at once (the tide-c-eager row)."""
    if eager_writes:
        if name != "tideloop":
            raise SystemExit("--eager-writes is for --loop tideloop only")
        os.environ["TIDELOOP_DEFER_WRITES"] = "0"
    if poller:
        if name != "tideloop":
            raise SystemExit("--poller is for --loop tideloop only")
        os.environ["TIDELOOP_POLLER"] = poller
    if name == "asyncio":
        loop = asyncio.new_event_loop()
        info = {}
    elif name == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
        info = {"uvloop": uvloop.__version__}
    elif name == "tideloop":
        import tideloop
        if compiled is not None and bool(int(compiled)) != tideloop.COMPILED:
            raise NotAvailable(f"wrong build: tideloop.COMPILED is {tideloop.COMPILED}")
        try:
            loop = tideloop.new_event_loop()
        except ValueError as e:  # a tideloop that does not know this poller name
            raise NotAvailable(f"TIDELOOP_POLLER={poller}: {e}") from None
        info = {"tideloop": getattr(tideloop, "__version__", "?"),
                "compiled": tideloop.COMPILED}
        if poller:
            backend = repr(loop).rpartition("poller=")[2].rstrip(">")
            if backend != poller:  # it fell back (and logged why)
                loop.close()
                raise NotAvailable(f"TIDELOOP_POLLER={poller} gave poller {backend!r}: "
                                   f"{poller} is unavailable in this build or kernel")
            info["poller"] = backend
    else:
        raise SystemExit(f"unknown --loop {name!r}")
    asyncio.set_event_loop(loop)
    info["loop"] = f"{type(loop).__module__}.{type(loop).__qualname__}"
    info["python"] = sys.version.split()[0]
    return loop, info


async def start(args) -> int:
    """Start the server asked for; return its port."""
    loop = asyncio.get_running_loop()
    host = "127.0.0.1"
    if args.udp:
        transport, _ = await loop.create_datagram_endpoint(EchoDatagram,
                                                           local_addr=(host, args.port))
        return transport.get_extra_info("sockname")[1]
    if args.proto == "streams":
        if args.streams_impl == "tideloop":
            import tideloop
            start_server = getattr(tideloop, "start_server", None)
            if start_server is None:
                raise NotAvailable("tideloop has no start_server (streams) yet")
        else:
            start_server = asyncio.start_server
        server = await start_server(echo_stream, host, args.port, backlog=BACKLOG)
    else:
        factory = {"buffered": EchoBuffered, "taskfloor": EchoTaskFloor}.get(args.proto,
                                                                        EchoProtocol)
        ssl_context = None
        if args.tls:
            import ssl

            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.load_cert_chain(*args.tls)
        server = await loop.create_server(factory, host, args.port, backlog=BACKLOG,
                                          ssl=ssl_context)
    return server.sockets[0].getsockname()[1]


def serve(loop, info: dict, starter) -> None:
    """Run starter() (a coroutine giving the port), announce READY, serve until stdin closes.

    Any failure to start (NotImplementedError from a loop without transports, ...) becomes
    "NA <reason>" and exit status 3, which echo.py shows as n/a."""
    try:
        port = loop.run_until_complete(starter())
    except (NotAvailable, NotImplementedError, ImportError, AttributeError) as e:
        where = traceback.extract_tb(e.__traceback__)[-1].name
        why = str(e).splitlines()[0] if str(e) else f"raised in {where}()"
        print(f"NA {type(e).__name__}: {why}"[:200], flush=True)
        os._exit(3)
    try:
        loop.add_reader(0, lambda: os.read(0, 4096) or os._exit(0))
    except (NotImplementedError, OSError, ValueError):
        pass  # stdin is not pollable here (a file); SIGTERM still ends the server
    print(f"READY {os.getpid()} {port} {json.dumps(info)}", flush=True)
    loop.run_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", required=True, choices=("asyncio", "uvloop", "tideloop"))
    ap.add_argument("--compiled", choices=("0", "1"), help="require tideloop.COMPILED")
    ap.add_argument("--proto", default="protocol", choices=("protocol", "buffered", "streams",
                                                               "taskfloor"))
    ap.add_argument("--streams-impl", default="asyncio", choices=("asyncio", "tideloop"))
    ap.add_argument("--udp", action="store_true")
    ap.add_argument("--tls", nargs=2, metavar=("CERTFILE", "KEYFILE"))
    ap.add_argument("--poller", help="tideloop backend (TIDELOOP_POLLER), e.g. io_uring")
    ap.add_argument("--eager-writes", action="store_true",
                    help="tideloop: TIDELOOP_DEFER_WRITES=0 (each write sent at once)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cold-malloc", action="store_true", help="skip warm_malloc()")
    args = ap.parse_args()
    if not args.cold_malloc:
        warm_malloc()
    try:
        loop, info = make_loop(args.loop, args.compiled, args.poller, args.eager_writes)
    except (NotAvailable, ImportError) as e:
        print(f"NA {type(e).__name__}: {e}"[:200], flush=True)
        os._exit(3)
    info.update(proto="udp" if args.udp else args.proto, tls=bool(args.tls),
                streams_impl=args.streams_impl if args.proto == "streams" else None)
    serve(loop, info, lambda: start(args))


if __name__ == "__main__":
    main()
