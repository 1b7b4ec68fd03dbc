"""anyio on its asyncio backend, with tideloop as the loop (``backend_options``).

anyio makes the loop itself from ``loop_factory``; every scenario checks it got tideloop's.
Covers task groups and cancel scopes, TCP and Unix socket streams and listeners, UDP,
``wait_readable``, worker threads calling back into the loop, and memory object streams.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream


def anyio_run(loop_impl: Any, main: Any) -> Any:
    async def checked() -> Any:
        loop_module = type(asyncio.get_running_loop()).__module__
        assert loop_module.startswith("tideloop") == (loop_impl.impl == "tide"), loop_module
        with anyio.fail_after(20):
            return await main()

    return anyio.run(checked, backend="asyncio", backend_options={"loop_factory": loop_impl})


async def _echo(stream: SocketStream) -> None:
    async with stream:
        async for data in stream:
            await stream.send(data)


def test_tcp_and_unix_streams(loop_impl: Any, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB

    async def exchange(stream: SocketStream) -> None:
        async with stream, anyio.create_task_group() as tg:
            tg.start_soon(stream.send, payload)
            got = bytearray()
            while len(got) < len(payload):
                got += await stream.receive()
            assert got == payload

    async def main() -> None:
        tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
        unix = await anyio.create_unix_listener(tmp_path / "s.sock")
        async with tcp, unix, anyio.create_task_group() as tg:
            tg.start_soon(tcp.serve, _echo)
            tg.start_soon(unix.serve, _echo)
            port = tcp.extra(anyio.abc.SocketAttribute.local_port)
            streams = [await anyio.connect_tcp("127.0.0.1", port) for _ in range(5)]
            streams.append(await anyio.connect_unix(tmp_path / "s.sock"))
            await asyncio.gather(*(exchange(stream) for stream in streams))
            tg.cancel_scope.cancel()

    anyio_run(loop_impl, main)


def test_udp(loop_impl: Any) -> None:
    async def main() -> None:
        async with (
            await anyio.create_udp_socket(local_host="127.0.0.1") as server,
            await anyio.create_connected_udp_socket(
                "127.0.0.1", server.extra(anyio.abc.SocketAttribute.local_port)
            ) as client,
        ):
            for i in range(20):
                await client.send(b"ping %d" % i)
                data, addr = await server.receive()
                assert data == b"ping %d" % i
                await server.sendto(data.upper(), *addr)
                assert await client.receive() == b"PING %d" % i

    anyio_run(loop_impl, main)


def test_cancel_scopes_threads_and_streams(loop_impl: Any) -> None:
    async def main() -> None:
        # a timeout cancels a sleeping task; a shielded cleanup still runs
        with anyio.move_on_after(0.05) as scope:
            await anyio.sleep(10)
        assert scope.cancelled_caught

        send, receive = anyio.create_memory_object_stream[int](10)
        results: list[int] = []

        async def consumer() -> None:
            async with receive:
                async for item in receive:
                    results.append(item)

        def worker(n: int) -> int:  # in a worker thread: calls back into the loop
            anyio.from_thread.run(send.send, n)
            return n * n

        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer)
            squares = [await anyio.to_thread.run_sync(worker, i) for i in range(10)]
            await send.aclose()
        assert squares == [i * i for i in range(10)]
        assert results == list(range(10))

        # wait_readable on a plain socket (the loop's add_reader)
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.wait_readable, a)
                await anyio.sleep(0.01)
                b.send(b"x")
            assert a.recv(1) == b"x"

        # an exception in one task cancels its siblings
        async def fail() -> None:
            await anyio.sleep(0.01)
            raise ValueError("boom")

        with pytest.raises(ExceptionGroup) as info:
            async with anyio.create_task_group() as tg:
                tg.start_soon(anyio.sleep, 10)
                tg.start_soon(fail)
        assert info.group_contains(ValueError, match="boom")

    anyio_run(loop_impl, main)
