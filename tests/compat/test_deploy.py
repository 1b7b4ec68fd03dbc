"""The servers people deploy with, on tideloop: gunicorn's workers, hypercorn, reuse_port.

Each server runs as a program of its own, as deployed; the client side runs on the loop under
test. The control (``aio``) runs the same server on asyncio's loop.

- gunicorn + uvicorn-worker with ``tideloop.contrib.gunicorn.UvicornWorker`` (control: the
  same class on asyncio, apps/asyncio_worker.py), two workers: a graceful reload (SIGHUP) under
  continuous load, then a graceful stop (SIGTERM) with requests in flight; not one request
  may fail, and the exit status is 0. One thing is allowed, on both loops: a connection that
  a stopping uvicorn worker had accepted but not yet read from is closed unanswered
  (uvicorn's shutdown closes connections with no request in progress), and the client
  retries it (up to 3 tries, 50 ms apart), as HTTP clients may when no response byte came
  back; a request whose response had begun is never retried.
- hypercorn's ``serve()`` under ``asyncio.Runner(loop_factory=...)`` (apps/hypercorn_app.py):
  keep-alive requests, a 2 MB echo, a 3 MB streamed body, websockets, then SIGTERM with a
  request in flight.
- examples/reuse_port.py: two forked processes on one port (``reuse_port=True``), run with
  ``python -m tideloop``; connections reach both, then SIGTERM with requests in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

REPO = Path(__file__).resolve().parents[2]
# Tries of a request that got no response byte (see reload_under_load).
ATTEMPTS = 3
WORKERS = {"tide": "tideloop.contrib.gunicorn.UvicornWorker", "aio": "asyncio_worker.AsyncioWorker"}


class Unanswered(ConnectionError):
    """The server closed or reset the connection before one byte of the response."""


async def http10(port: int, path: str) -> tuple[int, bytes]:
    """One HTTP/1.0 request on a new connection: (status, body); the server closes it.

    Raises Unanswered if the connection ended (EOF or reset) with no response byte.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b""
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while chunk := await reader.read(65536):
            data += chunk
    except ConnectionError as exc:
        if not data:
            raise Unanswered(f"GET {path}: {exc!r} before any response") from exc
        raise
    finally:
        writer.close()
    if not data:
        raise Unanswered(f"GET {path}: the server closed the connection unanswered")
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert length is None or int(length.group(1)) == len(body), data
    return int(head.split(b" ", 2)[1]), body


def wait_for(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def loop_name(impl: str) -> str:
    return "tideloop._eventloop.EventLoop" if impl == "tide" else "asyncio."


def test_gunicorn_uvicorn_worker_reload_and_stop(run: Any, program: Any) -> None:
    server = program(["-m", "gunicorn", "asgi_app:app", "-k", WORKERS[run.impl], "-w", "2",
                      "-b", "127.0.0.1:{port}", "--no-control-socket",
                      "--graceful-timeout", "20"])  # fmt: skip
    port = server.port
    booted = lambda: re.findall(r"Booting worker with pid: (\d+)", server.output())  # noqa: E731
    started = lambda: server.output().count("Application startup complete")  # noqa: E731
    wait_for(lambda: started() >= 2, "2 workers to start")
    old = set(booted())
    assert len(old) == 2, server.output()

    async def reload_under_load() -> set[str]:
        status, body = await http10(port, "/loop")
        assert status == 200 and body.decode().startswith(loop_name(run.impl)), body
        results: list[Any] = []
        retried: list[Exception] = []
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set():
                try:
                    for attempt in range(1, ATTEMPTS + 1):
                        try:
                            results.append(await http10(port, "/pid"))
                            break
                        except Unanswered as exc:
                            # Not one byte of the response: the request was never read
                            # (uvicorn's shutdown closes connections whose request it has
                            # not read yet; on asyncio too), so an HTTP client may retry it
                            # (RFC 9110, 9.2.2). A retry can meet the same stopping worker
                            # within its 0.1 s shutdown tick: a short pause, a few tries.
                            retried.append(exc)
                            if attempt == ATTEMPTS:
                                raise
                            await asyncio.sleep(0.05)
                except Exception as exc:  # a lost request: reported below
                    results.append(exc)

        loaders = [asyncio.create_task(load()) for _ in range(4)]
        await asyncio.sleep(0.5)
        server.proc.send_signal(signal.SIGHUP)
        # New workers up, and both old ones gone (they finish what they accepted first).
        gone = [f"Finished server process [{p}]" for p in old]
        while started() < 4 or not all(line in server.output() for line in gone):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*loaders)
        failed = [r for r in results if not isinstance(r, tuple) or r[0] != 200]
        assert not failed, (failed[:5], len(failed), len(results))
        pids = {r[1].decode() for r in results}
        assert len(results) > 50, len(results)
        assert len(retried) <= len(results) // 20, (retried[:5], len(retried), len(results))
        return pids - old

    served_by_new = run(reload_under_load)
    new = set(booted()) - old
    assert len(new) == 2 and served_by_new and served_by_new <= new, (served_by_new, new)

    async def stop_with_requests_in_flight() -> None:
        slow = [asyncio.create_task(http10(port, "/slow?ms=1500")) for _ in range(6)]
        await asyncio.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        for status, body in await asyncio.gather(*slow):
            assert status == 200 and body.decode() in new, (status, body)

    run(stop_with_requests_in_flight)
    assert server.proc.wait(20) == 0, server.output()
    output = server.output()
    assert "Traceback" not in output and "[ERROR]" not in output, output


def test_hypercorn(run: Any, program: Any) -> None:
    server = program(["hypercorn_app.py", run.impl, "{port}"])
    base = f"http://127.0.0.1:{server.port}"
    body = bytes(range(256)) * 8000  # 2 MB

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(5):  # keep-alive
                resp = await client.get("/loop")
                assert resp.status_code == 200, resp.text
            assert resp.text.startswith(loop_name(run.impl)), resp.text
            resp = await client.post("/echo", content=body)
            assert resp.content == body
            resp = await client.get("/stream", params={"size": 3_000_001})
            assert resp.content == (bytes(range(251)) * 11953)[:3_000_001]
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as conn:
            for i in range(20):
                await conn.send(f"text {i}")
                assert await conn.recv() == f"text {i}"
            await conn.send(body[:1_000_000])
            echoed = await conn.recv()
            assert hashlib.sha256(echoed).digest() == hashlib.sha256(body[:1_000_000]).digest()
        slow = asyncio.create_task(http10(server.port, "/slow?ms=1000"))
        await asyncio.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        status, pid = await slow
        assert status == 200 and int(pid) == server.proc.pid

    run(scenario)
    assert server.proc.wait(20) == 0, server.output()
    assert "Traceback" not in server.output(), server.output()


def test_reuse_port_processes(run: Any, program: Any) -> None:
    example = str(REPO / "examples" / "reuse_port.py")
    launcher = ["-m", "tideloop", example] if run.impl == "tide" else [example]
    server = program([*launcher, "--workers", "2", "--port", "{port}"])
    serving = lambda: re.findall(r"worker (\d+) serving on .* \((.+)\)", server.output())  # noqa: E731
    wait_for(lambda: len(serving()) == 2, "2 workers to listen")
    workers = {pid for pid, _ in serving()}
    assert all(name.startswith(loop_name(run.impl)) for _, name in serving()), server.output()

    async def scenario() -> None:
        seen: list[str] = []

        async def client() -> None:
            for _ in range(25):
                status, body = await http10(server.port, "/")
                assert status == 200, body
                seen.append(body.split()[0].decode())

        await asyncio.gather(*(client() for _ in range(8)))
        # 200 connections from as many source ports, spread by the kernel's hash: both
        # workers serve (the chance that one gets all of them is 2**-199).
        assert set(seen) == workers, (set(seen), workers)

        slow = [asyncio.create_task(http10(server.port, "/slow?ms=1000")) for _ in range(6)]
        await asyncio.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        for status, body in await asyncio.gather(*slow):
            assert status == 200 and body.split()[0].decode() in workers, (status, body)

    run(scenario)
    assert server.proc.wait(20) == 0, server.output()
    assert server.output().count("stopped") == 2, server.output()
    assert "Traceback" not in server.output(), server.output()
