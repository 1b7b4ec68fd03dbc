"""One port served by several processes, each with its own event loop (SO_REUSEPORT).

A plain asyncio program: it knows nothing of tideloop. Run it on tideloop with

    python -m tideloop examples/reuse_port.py                          # self-check, then OK
    python -m tideloop examples/reuse_port.py --workers 4 --port 8080  # serve until SIGTERM

(or on the standard loop with ``python examples/reuse_port.py ...``). The parent forks the
workers before any loop exists, so each child makes its own loop with ``asyncio.run()``: on
tideloop under ``python -m tideloop``. Every worker listens on the same address with
``reuse_port=True`` and the kernel spreads new connections over them, which is how one
loop, single-threaded by design, is scaled over several cores.

Each worker answers any HTTP request with ``<pid> <loop class>`` (``GET /slow?ms=N`` first
waits N ms) and closes the connection. SIGTERM or SIGINT to the parent is passed to every
worker: a worker stops accepting, lets the requests it has accepted finish (up to GRACE
seconds), and exits; the parent exits once all have, with status 1 if any failed.

Without ``--port`` it checks itself: two workers on a free port, 200 requests that must be
answered by both, then SIGTERM with a request in flight that must still be answered, and a
clean exit of both.

A connection still in a stopping worker's accept queue is reset when that worker closes its
socket (the kernel assigned it to that socket): a rolling restart should start the new
processes before it stops the old ones, so that new connections already go to them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import threading
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


async def worker(host: str, port: int, ready: int, verbose: bool) -> None:
    """Serve until SIGTERM/SIGINT; write one byte to the fd ``ready`` once listening."""
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
    if verbose:
        loop_name = f"{type(loop).__module__}.{type(loop).__qualname__}"
        print(f"worker {os.getpid()} serving on {host}:{port} ({loop_name})", flush=True)
    os.write(ready, b"r")
    await stop.wait()
    server.close()  # stop accepting; the other workers' sockets take new connections
    if accepted:
        await asyncio.wait(set(accepted), timeout=GRACE)
    if verbose:
        print(f"worker {os.getpid()} stopped", flush=True)


def run_worker(host: str, port: int, ready: int, verbose: bool) -> None:
    """The forked child: serve until told to stop, then leave without the parent's atexit."""
    # Until the loop's handlers are installed, a stop signal just ends this process.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    status = 0
    try:
        asyncio.run(worker(host, port, ready, verbose))
    except BaseException:
        traceback.print_exc()
        status = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def start_workers(count: int, host: str, port: int, verbose: bool) -> list[int]:
    """Fork ``count`` workers; return their pids once every one is listening."""
    ready_r, ready_w = os.pipe()
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
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            run_worker(host, port, ready_w, verbose)
        children.append(pid)
    os.close(ready_w)
    received = b""
    while len(received) < count:
        chunk = os.read(ready_r, count)
        if not chunk:  # every worker has exited: one failed to start
            break
        received += chunk
    os.close(ready_r)
    if len(received) < count:
        forward(signal.SIGTERM, None)
        wait_all(children)
        raise SystemExit("a worker failed to start")
    return children


def wait_all(children: list[int]) -> int:
    """Wait for every worker; 0 if all exited with 0, else 1."""
    status = 0
    for pid in children:
        _, wait_status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(wait_status) != 0:
            status = 1
    return status


def get(port: int, path: str = "/") -> tuple[int, str]:
    """A blocking HTTP/1.0 GET on a new connection: (worker pid, loop class)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK"), data
    pid, loop_name = body.decode().split()
    return int(pid), loop_name


def self_check() -> int:
    # Reserve a free port: a bound (not listening) SO_REUSEPORT socket holds it while the
    # workers bind the same port with reuse_port=True.
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        children = start_workers(2, "127.0.0.1", port, verbose=False)
    answers = [get(port) for _ in range(200)]
    served_by = {pid for pid, _ in answers}
    # 200 connections from as many source ports: the kernel's hash sends some to each worker
    # (the chance that one gets all of them is 2**-199).
    assert served_by == set(children), (served_by, children)

    in_flight: list[tuple[int, str]] = []
    slow = threading.Thread(target=lambda: in_flight.append(get(port, "/slow?ms=500")))
    slow.start()
    threading.Event().wait(0.2)  # the request is accepted and waiting in a worker
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    slow.join()
    assert len(in_flight) == 1 and in_flight[0][0] in children, in_flight
    assert wait_all(children) == 0, "a worker failed"
    loop_names = {name for _, name in answers}
    assert len(loop_names) == 1, loop_names
    print(f"2 workers on 127.0.0.1:{port}: {len(answers)} requests, answered by both")
    print("SIGTERM with a request in flight: answered, both workers exited 0")
    print(f"loop: {loop_names.pop()}")
    print("OK")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="serve on this port (else: self-check)")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.port is None:
        return self_check()
    children = start_workers(args.workers, args.host, args.port, verbose=True)
    print(f"{len(children)} workers on {args.host}:{args.port}: {children}", flush=True)
    return wait_all(children)


if __name__ == "__main__":
    sys.exit(main())
