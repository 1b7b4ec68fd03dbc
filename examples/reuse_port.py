"""One port served by several processes, each with its own event loop (SO_REUSEPORT).

A plain asyncio program: it knows nothing of tideloop. Run it on tideloop with

    python -m tideloop examples/reuse_port.py --workers 4 --port 8080

(or on the standard loop with ``python examples/reuse_port.py ...``). The parent forks the
workers before any loop exists, so each child makes its own loop with ``asyncio.run()``: on
tideloop under ``python -m tideloop``. Every worker listens on the same address with
``reuse_port=True`` and the kernel spreads new connections over them, which is how one
loop, single-threaded by design, is scaled over several cores.

Each worker answers any HTTP request with ``<pid> <loop class>`` (``GET /slow?ms=N`` first
waits N ms) and closes the connection. SIGTERM or SIGINT to the parent is passed to every
worker: a worker stops accepting, lets the requests it has accepted finish (up to GRACE
seconds), and exits; the parent exits once all have, with status 1 if any failed.

A connection still in a stopping worker's accept queue is reset when that worker closes its
socket (the kernel assigned it to that socket): a rolling restart should start the new
processes before it stops the old ones, so that new connections already go to them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import traceback
from urllib.parse import parse_qs, urlsplit

GRACE = 10.0  # seconds a stopping worker waits for the requests it has accepted


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        target = head.split(b" ", 2)[1].decode("latin-1")
        url = urlsplit(target)
        if url.path == "/slow":
            await asyncio.sleep(int(parse_qs(url.query).get("ms", ["0"])[0]) / 1000)
        loop = asyncio.get_running_loop()
        body = f"{os.getpid()} {type(loop).__module__}.{type(loop).__qualname__}\n".encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        pass  # the client went away or sent no HTTP head: nothing to answer
    except (IndexError, ValueError):
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    finally:
        writer.close()


async def worker(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    accepted: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        accepted.add(task)
        try:
            await handle(reader, writer)
        finally:
            accepted.discard(task)

    server = await asyncio.start_server(tracked, host, port, reuse_port=True)
    loop_name = f"{type(loop).__module__}.{type(loop).__qualname__}"
    print(f"worker {os.getpid()} serving on {host}:{port} ({loop_name})", flush=True)
    await stop.wait()
    server.close()  # stop accepting; the other workers' sockets take new connections
    if accepted:
        await asyncio.wait(set(accepted), timeout=GRACE)
    print(f"worker {os.getpid()} stopped", flush=True)


def run_worker(host: str, port: int) -> None:
    """The forked child: serve until told to stop, then leave without the parent's atexit."""
    # Until the loop's handlers are installed, a stop signal just ends this process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    status = 0
    try:
        asyncio.run(worker(host, port))
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")

    children: list[int] = []

    def forward(sig: int, frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # Installed before forking, so that no stop signal can find the parent without them.
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.stdout.flush()
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            run_worker(args.host, args.port)
        children.append(pid)
    print(f"{len(children)} workers on {args.host}:{args.port}: {children}", flush=True)

    status = 0
    for pid in children:
        _, wait_status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(wait_status) != 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
