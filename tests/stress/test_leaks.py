"""Resource leaks over many connections, and a cancellation storm.

- Sequential TCP and TLS connections (each: connect, echo, close on both sides): after a
  warm-up, the process's fd count, the census of live transport / protocol / stream / future
  objects (by type, after ``gc.collect()``) and the RSS are taken; after many more
  connections the fd count must be exactly the same, no type in the census may have grown,
  and the RSS may have grown by less than a generous bound.
- A cancellation storm: thousands of tasks that connect, write, read and sleep, at most a
  few hundred at a time, cancelled at random points (seeded) from outside. Afterwards: no
  fd left open, no task pending, and nothing reported through the loop's exception handler
  (no "Task was destroyed but it is pending!", no unhandled exception).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import random
import re
import sys
from typing import Any

import pytest

HOST = "127.0.0.1"
PYPY = sys.implementation.name == "pypy"  # slower here: less work
TCP_CONNS = 300 if PYPY else 2000
TLS_CONNS = 60 if PYPY else 300
WARMUP = 50
RSS_BOUND = 20 << 20
# Under scripts/asan, ASan's quarantine holds freed memory back from reuse (256 MiB by
# default), so RSS grows with every allocation: fds and live objects still count there.
SANITIZED = os.environ.get("TIDELOOP_SANITIZED") == "1"
STORM_TASKS = 800 if PYPY else 2500
STORM_CONCURRENCY = 200

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/fd and /proc/self/statm"
)

# Not handles: a cancelled timer may wait in the loop's heap until it is due or the heap is
# compacted (asyncio's too): bounded, and whatever a handle would keep alive is counted here.
_TRACKED = re.compile(r"Transport|Protocol|Core|SSL|Stream|Server|Future|Task|socket")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def census() -> collections.Counter[str]:
    """Live objects of the asyncio / tideloop / ssl / socket types, counted by type."""
    for _ in range(3):  # PyPy frees an object with a finalizer only in a later collection
        gc.collect()
    counts: collections.Counter[str] = collections.Counter()
    for obj in gc.get_objects():
        t = type(obj)
        module = t.__module__
        if not isinstance(module, str):  # e.g. a type whose class defines __module__
            continue
        if module.split(".")[0] in ("asyncio", "tideloop", "ssl", "_ssl", "socket"):
            if _TRACKED.search(t.__qualname__):
                counts[f"{module}.{t.__qualname__}"] += 1
    return counts


def grown(before: collections.Counter[str], after: collections.Counter[str]) -> dict[str, Any]:
    return {k: (before[k], n) for k, n in after.items() if n > before[k]}


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
@pytest.mark.timeout(120)
def test_sequential_connections_leak_nothing(
    run: Any, tls: bool, server_ctx: Any, client_ctx: Any
) -> None:
    n = TLS_CONNS if tls else TCP_CONNS
    fds_outside = open_fds()

    async def main() -> None:
        handled = 0
        all_handled = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal handled
            await echo_handler(reader, writer)
            handled += 1
            if handled == target:
                all_handled.set()

        server = await asyncio.start_server(handler, HOST, 0, ssl=server_ctx if tls else None)
        port = server.sockets[0].getsockname()[1]

        async def connections(count: int) -> None:
            for i in range(count):
                reader, writer = await asyncio.open_connection(
                    HOST, port, ssl=client_ctx if tls else None
                )
                msg = b"%d" % i * 100
                writer.write(msg)
                assert await reader.readexactly(len(msg)) == msg
                writer.close()
                await writer.wait_closed()

        try:
            target = WARMUP
            await connections(WARMUP)
            await all_handled.wait()
            all_handled.clear()
            fds, objs, mem = open_fds(), census(), rss()
            target = n
            await connections(n - WARMUP)
            await all_handled.wait()
            assert open_fds() == fds, "file descriptors leaked"
            after = census()
            assert not grown(objs, after), f"objects accumulate: {grown(objs, after)}"
            if not SANITIZED:
                assert rss() - mem < RSS_BOUND
        finally:
            server.close()
            await server.wait_closed()

    run(main)
    gc.collect()
    assert open_fds() == fds_outside


async def with_timeout(coro: Any) -> Any:
    async with asyncio.timeout(60):
        return await coro


@pytest.mark.timeout(120)
def test_cancellation_storm(loop_impl: Any, seed: int) -> None:
    fds_outside = open_fds()
    reports: list[dict[str, Any]] = []
    rng = random.Random(seed)

    async def main() -> dict[str, int]:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _l, ctx: reports.append(ctx))
        handlers: set[asyncio.Task[None]] = set()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            await echo_handler(reader, writer)

        server = await asyncio.start_server(handler, HOST, 0)
        async with server:  # closed even if the test fails
            port = server.sockets[0].getsockname()[1]
            sem = asyncio.Semaphore(STORM_CONCURRENCY)
            writers: list[asyncio.StreamWriter] = []
            stages: collections.Counter[str] = collections.Counter()

            active: dict[asyncio.Task[None], str] = {}  # task -> where it waits now

            async def worker(size: int, pause: float) -> None:
                me = asyncio.current_task()
                assert me is not None
                writer = None
                stage = active[me] = "semaphore"
                try:
                    async with sem:
                        stage = active[me] = "connect"
                        reader, writer = await asyncio.open_connection(HOST, port)
                        writers.append(writer)
                        for _ in range(2):
                            stage = active[me] = "drain"
                            writer.write(b"z" * size)
                            await writer.drain()
                            stage = active[me] = "read"
                            assert await reader.readexactly(size) == b"z" * size
                            stage = active[me] = "sleep"
                            await asyncio.sleep(pause)
                        stage = "done"
                finally:
                    del active[me]
                    stages[stage] += 1
                    if writer is not None:
                        writer.close()

            tasks = [
                asyncio.create_task(
                    worker(rng.choice([1, 100, 10_000, 100_000]), rng.choice([0, 1e-3]))
                )
                for _ in range(STORM_TASKS)
            ]
            # Half the tasks are victims. At every loop iteration, each victim past the
            # semaphore is cancelled with some probability, and one waiting victim too: the
            # cancellations land at every stage of a worker.
            victims = set(rng.sample(tasks, k=STORM_TASKS // 2))
            cancelled = 0
            running = len(tasks)

            def finished(_: Any) -> None:
                nonlocal running
                running -= 1

            for task in tasks:
                task.add_done_callback(finished)
            while running:
                for task, stage in list(active.items()):
                    if task in victims and (stage != "semaphore" or rng.random() < 0.01):
                        if rng.random() < 0.2:
                            victims.discard(task)
                            task.cancel()
                            cancelled += 1
                await asyncio.sleep(0)
            assert cancelled > STORM_TASKS // 10
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for r in results:
                assert r is None or isinstance(r, asyncio.CancelledError), repr(r)
            for w in writers:
                try:
                    await w.wait_closed()
                except ConnectionError:
                    pass
            server.close()
            await server.wait_closed()
            await asyncio.gather(*handlers)
            assert asyncio.all_tasks() == {asyncio.current_task()}
            return dict(stages)

    with asyncio.Runner(loop_factory=loop_impl) as runner:
        stages = runner.run(with_timeout(main()))
    gc.collect()
    print("cancelled at:", stages)
    assert reports == [], reports
    assert sum(stages.values()) <= STORM_TASKS  # a task cancelled before its first step never runs
    assert stages.get("done", 0) < STORM_TASKS, "nothing was cancelled"
    assert open_fds() == fds_outside, "file descriptors leaked"
