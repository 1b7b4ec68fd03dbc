"""Black-box tests of the streams API, written once and run four ways.

Every test runs on tideloop's loop and asyncio's (``loop_impl``: ``tide`` / ``aio``) and with
tideloop's stream functions and classes or asyncio's (``api``: ``tidestreams`` /
``aiostreams``), so each behaviour checked here is asyncio's own behaviour, checked on
tideloop. Exchanges go over real sockets (TCP on 127.0.0.1, Unix sockets in tmp_path).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest
from _support import run

from tideloop import streams

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
TIMEOUT = 10.0


@pytest.fixture(params=["tidestreams", "aiostreams"])
def api(request: pytest.FixtureRequest) -> types.SimpleNamespace:
    mod: Any = streams if request.param == "tidestreams" else asyncio
    return types.SimpleNamespace(
        name=request.param,
        open_connection=mod.open_connection,
        start_server=mod.start_server,
        open_unix_connection=mod.open_unix_connection,
        start_unix_server=mod.start_unix_server,
        StreamReader=mod.StreamReader,
        StreamWriter=mod.StreamWriter,
    )


def _port(server: Any) -> int:
    return server.sockets[0].getsockname()[1]


async def _close(writer: Any) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


async def _echo(reader: Any, writer: Any) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        await _close(writer)


# ----------------------------------------------------------------------------- basics


def test_echo_roundtrip(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        server = await api.start_server(_echo, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            assert isinstance(reader, api.StreamReader)
            assert isinstance(writer, api.StreamWriter)
            writer.write(b"hello\n")
            writer.writelines([b"wor", bytearray(b"ld\n"), memoryview(b"abcdef-")])
            await writer.drain()
            assert await reader.readline() == b"hello\n"
            assert await reader.readuntil(b"d\n") == b"world\n"
            assert await reader.readexactly(3) == b"abc"
            assert await reader.readuntil(b"-") == b"def-"
            assert writer.can_write_eof()
            writer.write(b"tail")
            writer.write_eof()
            assert await reader.read() == b"tail"
            assert reader.at_eof()
            assert await reader.read(10) == b""
            assert await reader.readline() == b""
            await _close(writer)
            assert writer.is_closing()

    run(loop_impl, main)


def test_extra_info_and_transport(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        server = await api.start_server(_echo, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            assert writer.get_extra_info("peername")[1] == _port(server)
            assert isinstance(writer.get_extra_info("socket"), asyncio.trsock.TransportSocket)
            assert writer.get_extra_info("nonexistent", "dflt") == "dflt"
            assert writer.transport.get_extra_info("peername") == writer.get_extra_info("peername")
            assert not writer.is_closing()
            assert "StreamWriter" in repr(writer)
            assert "StreamReader" in repr(reader)
            await _close(writer)

    run(loop_impl, main)


def test_async_iteration_by_lines(loop_impl: LoopFactory, api: Any) -> None:
    async def serve(reader: Any, writer: Any) -> None:
        writer.write(b"one\ntwo\n\nthree")
        await _close(writer)

    async def main() -> list[bytes]:
        server = await api.start_server(serve, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            lines = [line async for line in reader]
            await _close(writer)
            return lines

    assert run(loop_impl, main) == [b"one\n", b"two\n", b"\n", b"three"]


def test_plain_function_callback(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> bytes:
        tasks: list[asyncio.Task] = []

        def cb(reader: Any, writer: Any) -> None:
            tasks.append(asyncio.get_running_loop().create_task(_echo(reader, writer)))

        server = await api.start_server(cb, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            writer.write(b"ping\n")
            line = await reader.readline()
            await _close(writer)
            await asyncio.gather(*tasks)
            return line

    assert run(loop_impl, main) == b"ping\n"


def test_unix_echo(loop_impl: LoopFactory, api: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "s.sock")

    async def main() -> bytes:
        server = await api.start_unix_server(_echo, path)
        async with server:
            reader, writer = await api.open_unix_connection(path)
            writer.write(b"over unix\n")
            line = await reader.readline()
            await _close(writer)
            return line

    assert run(loop_impl, main) == b"over unix\n"


def test_open_connection_sock_and_limit(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        reader, writer = await api.open_connection(sock=a, limit=4)
        try:
            b.sendall(b"12345\n")
            with pytest.raises(ValueError, match="Separator is found, but chunk is longer"):
                await reader.readline()
            b.sendall(b"123\n")
            assert await reader.readline() == b"123\n"
        finally:
            b.close()
            await _close(writer)

    run(loop_impl, main)


# ----------------------------------------------------------------------------- errors


def test_limit_overrun_leaves_data(loop_impl: LoopFactory, api: Any) -> None:
    async def serve(reader: Any, writer: Any) -> None:
        writer.write(b"x" * 20 + b"!" + b"tail")
        await _close(writer)

    async def main() -> None:
        server = await api.start_server(serve, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server), limit=8)
            # Until the whole message is in the reader's buffer: no public event tells, so
            # this polls (bounded) the buffer itself.
            async with asyncio.timeout(10):
                while len(reader._buffer) < 25:
                    await asyncio.sleep(0.005)
            with pytest.raises(asyncio.LimitOverrunError) as info:
                await reader.readuntil(b"!")
            assert info.value.consumed == 20
            assert await reader.readexactly(21) == b"x" * 20 + b"!"
            with pytest.raises(asyncio.IncompleteReadError) as info2:
                await reader.readexactly(10)
            assert info2.value.partial == b"tail"
            assert info2.value.expected == 10
            await _close(writer)

    run(loop_impl, main)


def test_readuntil_incomplete_at_eof(loop_impl: LoopFactory, api: Any) -> None:
    async def serve(reader: Any, writer: Any) -> None:
        writer.write(b"no separator here")
        await _close(writer)

    async def main() -> None:
        server = await api.start_server(serve, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await reader.readuntil(b"\r\n")
            assert info.value.partial == b"no separator here"
            assert info.value.expected is None
            assert reader.at_eof()
            await _close(writer)

    run(loop_impl, main)


def test_concurrent_reads_raise_runtime_error(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        server = await api.start_server(_echo, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            first = asyncio.ensure_future(reader.read(5))
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="already waiting"):
                await reader.readline()
            writer.write(b"data")
            assert await first == b"data"
            await _close(writer)

    run(loop_impl, main)


def test_callback_exception_goes_to_handler(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> list[dict]:
        loop = asyncio.get_running_loop()
        contexts: list[dict] = []
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))

        async def cb(reader: Any, writer: Any) -> None:
            await reader.readline()
            raise ZeroDivisionError("in callback")

        server = await api.start_server(cb, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            writer.write(b"go\n")
            # The server closes the transport after reporting the error.
            assert await reader.read() == b""
            await _close(writer)
        return contexts

    contexts = run(loop_impl, main)
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Unhandled exception in client_connected_cb"
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert "transport" in contexts[0]


@pytest.mark.skipif(
    sys.version_info < (3, 14),
    reason="before 3.14 a plain callback's exception leaves connection_made (asyncio)",
)
def test_sync_callback_exception_goes_to_handler(loop_impl: LoopFactory, api: Any) -> None:
    """A plain-function client_connected_cb that raises: reported, connection closed (3.14)."""

    async def main() -> list[dict]:
        loop = asyncio.get_running_loop()
        contexts: list[dict] = []
        loop.set_exception_handler(lambda _loop, ctx: contexts.append(ctx))

        def cb(reader: Any, writer: Any) -> None:
            raise ZeroDivisionError("in callback")

        server = await api.start_server(cb, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            assert await reader.read() == b""  # the server closed the connection
            await _close(writer)
        return contexts

    contexts = run(loop_impl, main)
    assert len(contexts) == 1
    assert contexts[0]["message"] == "Unhandled exception in client_connected_cb"
    assert isinstance(contexts[0]["exception"], ZeroDivisionError)
    assert "transport" in contexts[0]


def test_callback_task_survives_gc(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> bytes:
        go = asyncio.Event()
        started = asyncio.Event()

        async def cb(reader: Any, writer: Any) -> None:
            started.set()
            await go.wait()
            writer.write(b"alive\n")
            await _close(writer)

        server = await api.start_server(cb, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            await asyncio.wait_for(started.wait(), 10)  # the callback task waits on go
            gc.collect()
            go.set()
            line = await reader.readline()
            await _close(writer)
            return line

    assert run(loop_impl, main) == b"alive\n"


def test_drain_raises_connection_error(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        reader, writer = await api.open_connection(sock=a)
        b.close()
        with pytest.raises(ConnectionError):
            for _ in range(1000):
                writer.write(b"x" * 65536)
                await writer.drain()
        assert isinstance(reader.exception(), ConnectionError)
        with pytest.raises(ConnectionError):
            await reader.read()
        writer.close()
        with pytest.raises(ConnectionError):
            await writer.wait_closed()

    run(loop_impl, main)


# ----------------------------------------------------------------------------- flow control


def test_drain_backpressure_with_slow_reader(loop_impl: LoopFactory, api: Any) -> None:
    total = 8 * 1024 * 1024

    async def main() -> None:
        go = asyncio.Event()
        got = asyncio.get_running_loop().create_future()

        async def slow(reader: Any, writer: Any) -> None:
            await go.wait()
            data = await reader.readexactly(total)
            got.set_result(len(data))
            await _close(writer)

        server = await api.start_server(slow, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            writer.transport.set_write_buffer_limits(high=64 * 1024)
            writer.write(b"x" * total)
            drains = [asyncio.ensure_future(writer.drain()) for _ in range(3)]
            # An absence check, not a wait: the peer does not read, so in twenty passes (each
            # a chance to write) the write buffer stays over the high watermark.
            for _ in range(20):
                await asyncio.sleep(0)
            assert not any(d.done() for d in drains)
            assert writer.transport.get_write_buffer_size() > 64 * 1024
            go.set()
            await asyncio.gather(*drains)  # several drainers at once are all released
            assert await got == total
            assert await reader.read() == b""
            await _close(writer)

    run(loop_impl, main)


def test_reader_pauses_transport_over_twice_the_limit(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        a, b = socket.socketpair()
        b.setblocking(False)
        reader, writer = await api.open_connection(sock=a, limit=1024)
        loop = asyncio.get_running_loop()
        await loop.sock_sendall(b, b"y" * 4096)
        # The reader pauses the transport from its own feed_data: no callback tells the
        # test, so this polls (bounded) for the state itself.
        async with asyncio.timeout(10):
            while writer.transport.is_reading():
                await asyncio.sleep(0.005)
        assert not writer.transport.is_reading()
        await reader.readexactly(2048)  # 2048 left: still over the limit, still paused
        assert not writer.transport.is_reading()
        await reader.readexactly(1024)  # at the limit: reading resumes
        assert writer.transport.is_reading()
        assert await reader.readexactly(1024) == b"y" * 1024
        b.close()
        assert await reader.read() == b""
        await _close(writer)

    run(loop_impl, main)


# ----------------------------------------------------------------------------- closing


def test_close_and_wait_closed(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        seen_eof = asyncio.get_running_loop().create_future()

        async def serve(reader: Any, writer: Any) -> None:
            seen_eof.set_result(await reader.read())
            await _close(writer)

        server = await api.start_server(serve, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            writer.write(b"last words")
            writer.close()
            assert writer.is_closing()
            await writer.wait_closed()
            await writer.wait_closed()  # idempotent
            assert await seen_eof == b"last words"
            assert await reader.read() == b""

    run(loop_impl, main)


def test_unclosed_writer_warns(loop_impl: LoopFactory, api: Any) -> None:
    async def main() -> None:
        server = await api.start_server(_echo, "127.0.0.1", 0)
        async with server:
            reader, writer = await api.open_connection("127.0.0.1", _port(server))
            transport = writer.transport
            with pytest.warns(ResourceWarning, match="unclosed <StreamWriter"):
                del writer
                for _ in range(3):  # PyPy may run a finalizer a collection or two later
                    gc.collect()
            assert transport.is_closing()  # __del__ closed it
            assert await reader.read() == b""

    run(loop_impl, main)


def test_start_tls_goes_through_the_loop(loop_impl: LoopFactory, api: Any) -> None:
    # TLS itself is tested with the loop's start_tls; here only that StreamWriter.start_tls
    # drains and calls loop.start_tls with asyncio's arguments.
    async def main() -> dict:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        reader, writer = await api.open_connection(sock=a)
        calls: dict[str, Any] = {}
        new_transport = writer.transport

        async def fake_start_tls(transport: Any, protocol: Any, ctx: Any, **kw: Any) -> Any:
            calls.update(kw, ctx=ctx, same=transport is writer.transport)
            return new_transport

        loop.start_tls = fake_start_tls  # type: ignore[method-assign]
        try:
            await writer.start_tls("CTX", server_hostname="example.org")
        finally:
            del loop.start_tls
        b.close()
        await _close(writer)
        return calls

    calls = run(loop_impl, main)
    expected = {
        "ctx": "CTX",
        "same": True,
        "server_side": False,
        "server_hostname": "example.org",
        "ssl_handshake_timeout": None,
    }
    if sys.version_info >= (3, 12):
        expected["ssl_shutdown_timeout"] = None  # 3.11's StreamWriter.start_tls has none
    assert calls == expected


# ----------------------------------------------------------------------------- tideloop only


def test_tuple_separators_on_every_version(loop_impl: LoopFactory) -> None:
    # asyncio has tuple separators from 3.13; tideloop offers them (3.13 semantics) on
    # 3.11 and 3.12 too. The cases are CPython 3.13's test_readuntil_multi_separator*.
    async def main() -> None:
        reader = streams.StreamReader()
        reader.feed_data(b"line 1\nline 2\r")
        assert await reader.readuntil((b"\r", b"\n")) == b"line 1\n"
        assert await reader.readuntil((b"\r", b"\n")) == b"line 2\r"
        # The first end position wins, even if that is the longer separator.
        reader.feed_data(b"ABCDEFG")
        assert await reader.readuntil((b"DEF", b"BCDE")) == b"ABCDE"
        assert await reader.read(2) == b"FG"
        with pytest.raises(ValueError, match="at least one element"):
            await reader.readuntil(())
        with pytest.raises(ValueError, match="at least one-byte"):
            await reader.readuntil((b"x", b""))

        limited = streams.StreamReader(limit=3)
        limited.feed_data(b"some dataA")
        with pytest.raises(asyncio.LimitOverrunError, match="is found") as info:
            await limited.readuntil((b"A", b"ome dataA"))
        assert info.value.consumed == 9
        assert await limited.readexactly(10) == b"some dataA"  # left in the buffer

        # Room for the shortest separator but not the longest: the offset stays >= 0.
        reader = streams.StreamReader()
        reader.feed_data(b"data")
        task = asyncio.ensure_future(reader.readuntil((b"A", b"long sep")))
        await asyncio.sleep(0)
        reader.feed_data(b"Z")
        await asyncio.sleep(0)
        reader.feed_data(b"Aaaa")
        assert await task == b"dataZA"
        assert await reader.read(3) == b"aaa"

    run(loop_impl, main)
