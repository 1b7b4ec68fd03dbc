"""The peer misbehaves or half-closes: what the protocol sees, as on asyncio.

- reset (SO_LINGER 0, then close) while the transport has a full write buffer (reading
  paused or not) and while data is streaming in: ``connection_lost`` gets a
  ConnectionError, of the same class asyncio gives in the same scenario (on the tideloop
  run, the scenario is also run on asyncio and the classes compared); the same over TLS;
- EOF from the peer with ``eof_received`` returning None / False: the transport closes
  (the peer sees our EOF, ``connection_lost(None)``); returning True: half-open, we can
  still write and the peer receives it;
- we half-close with ``write_eof()`` and go on reading everything the peer sends after
  (protocol and streams).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _support import connected_pair

HOST = "127.0.0.1"
TIMEOUT = 30.0


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Recorder(asyncio.Protocol):
    def __init__(self, eof_result: bool | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.eof_result = eof_result
        self.events: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        self.got_data = asyncio.Event()
        self.eof = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        if self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        self.got_data.set()

    def eof_received(self) -> bool | None:
        self.events.append("eof")
        self.eof.set_result(None)
        return self.eof_result

    def pause_writing(self) -> None:
        pass

    def resume_writing(self) -> None:
        pass

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


def observe(loop_factory: Callable[[], asyncio.AbstractEventLoop], main: Any) -> Any:
    """Run main() on a new loop; nothing may reach the loop's exception handler."""
    reports: list[dict[str, Any]] = []

    async def wrapped() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: reports.append(ctx))
        return await asyncio.wait_for(main(), TIMEOUT)

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        result = runner.run(wrapped())
    assert reports == []
    return result


def check_same_as_asyncio(
    loop_impl: Any, scenario: Callable[[], Awaitable[BaseException | None]]
) -> None:
    exc = observe(loop_impl, scenario)
    assert isinstance(exc, ConnectionError), repr(exc)
    if loop_impl.impl == "tide":
        reference = observe(asyncio.new_event_loop, scenario)
        assert type(exc) is type(reference), f"tideloop: {exc!r}, asyncio: {reference!r}"


@pytest.mark.parametrize("reading", [True, False], ids=["reading", "reading-paused"])
def test_reset_mid_write(loop_impl: Any, reading: bool) -> None:
    async def scenario() -> BaseException | None:
        loop = asyncio.get_running_loop()
        client, peer = await connected_pair()
        transport, proto = await loop.create_connection(Recorder, sock=client)
        if not reading:
            transport.pause_reading()
        transport.write(b"x" * (4 << 20))
        assert transport.get_write_buffer_size() > 0  # the kernel took only a part
        reset(peer)
        exc = await proto.lost
        assert proto.events == ["made", "lost"]
        assert transport.is_closing()
        return exc

    check_same_as_asyncio(loop_impl, scenario)


def test_reset_mid_read(loop_impl: Any) -> None:
    async def scenario() -> BaseException | None:
        loop = asyncio.get_running_loop()
        client, peer = await connected_pair()
        transport, proto = await loop.create_connection(Recorder, sock=client)
        sent = 0
        try:  # fill the peer's send buffer: data is on its way when the RST goes
            while True:
                sent += peer.send(b"y" * 65536)
        except BlockingIOError:
            pass
        await proto.got_data.wait()
        reset(peer)
        exc = await proto.lost
        assert proto.events == ["made", "data", "lost"]
        assert 0 < len(proto.data) <= sent
        assert proto.data == b"y" * len(proto.data)
        return exc

    check_same_as_asyncio(loop_impl, scenario)


@pytest.mark.parametrize("eof_result", [None, False, True])
def test_eof_received(loop_impl: Any, eof_result: bool | None) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client, peer = await connected_pair()
        with peer:
            transport, proto = await loop.create_connection(
                lambda: Recorder(eof_result), sock=client
            )
            await loop.sock_sendall(peer, b"hello")
            peer.shutdown(socket.SHUT_WR)
            await proto.eof
            assert proto.data == b"hello"
            if not eof_result:
                # The transport closes itself: the peer sees EOF, we see connection_lost.
                assert await proto.lost is None
                assert await loop.sock_recv(peer, 100) == b""
                assert proto.events == ["made", "data", "eof", "lost"]
                return
            await asyncio.sleep(0)
            assert not transport.is_closing()
            payload = b"still writing after EOF " * 10_000
            transport.write(payload)
            got = bytearray()
            while len(got) < len(payload):
                chunk = await loop.sock_recv(peer, 65536)
                assert chunk
                got += chunk
            assert got == payload
            transport.close()
            assert await proto.lost is None
            assert await loop.sock_recv(peer, 100) == b""
            assert proto.events == ["made", "data", "eof", "lost"]

    observe(loop_impl, main)


def test_write_eof_then_read(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client, peer = await connected_pair()
        with peer:
            transport, proto = await loop.create_connection(Recorder, sock=client)
            assert transport.can_write_eof()
            transport.write(b"request" * 1000)
            transport.write_eof()
            assert not transport.is_closing()
            got = bytearray()
            while chunk := await loop.sock_recv(peer, 65536):
                got += chunk
            assert got == b"request" * 1000
            response = bytes(range(256)) * 4096  # 1 MiB after our EOF
            await loop.sock_sendall(peer, response)
            peer.shutdown(socket.SHUT_WR)
            await proto.eof
            assert proto.data == response
            assert await proto.lost is None
            assert proto.events == ["made", "data", "eof", "lost"]

    observe(loop_impl, main)


def test_streams_write_eof_then_read(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client, peer = await connected_pair()
        with peer:
            reader, writer = await asyncio.open_connection(sock=client, limit=1024)
            writer.write(b"question")
            writer.write_eof()
            await writer.drain()
            got = bytearray()
            while chunk := await loop.sock_recv(peer, 65536):
                got += chunk
            assert got == b"question"
            response = bytes(range(256)) * 4096
            sending = asyncio.create_task(loop.sock_sendall(peer, response))
            assert await reader.readexactly(1000) == response[:1000]
            await sending
            peer.shutdown(socket.SHUT_WR)
            assert await reader.read() == response[1000:]
            assert reader.at_eof()
            writer.close()
            await writer.wait_closed()

    observe(loop_impl, main)


class TlsPeer(asyncio.Protocol):
    """The TLS server side: streams data until told to reset."""

    def __init__(self, made: asyncio.Future[Any], stream: bool) -> None:
        self.made = made
        self.stream = stream
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        if self.stream:
            transport.write(b"t" * (4 << 20))
        else:
            transport.pause_reading()
        self.made.set_result(self)

    def reset(self) -> None:
        sock = self.transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def connection_lost(self, exc: BaseException | None) -> None:
        pass


@pytest.mark.parametrize("direction", ["mid-read", "mid-write"])
def test_tls_reset(loop_impl: Any, direction: str, server_ctx: Any, client_ctx: Any) -> None:
    """The TLS peer resets while we read its stream / while our write buffer is full."""

    async def scenario() -> BaseException | None:
        loop = asyncio.get_running_loop()
        made: asyncio.Future[TlsPeer] = loop.create_future()
        reading = direction == "mid-read"
        server = await loop.create_server(lambda: TlsPeer(made, reading), HOST, 0, ssl=server_ctx)
        async with server:
            transport, proto = await loop.create_connection(
                Recorder,
                HOST,
                server.sockets[0].getsockname()[1],
                ssl=client_ctx,
                server_hostname=HOST,
            )
            peer = await made
            if reading:
                await proto.got_data.wait()
            else:
                transport.write(b"w" * (4 << 20))  # the peer does not read: it waits
                await asyncio.sleep(0)
            peer.reset()
            exc = await proto.lost
            assert transport.is_closing()
        return exc

    check_same_as_asyncio(loop_impl, scenario)


def test_reset_while_draining(loop_impl: Any) -> None:
    """StreamWriter.drain() waits on a full buffer; the peer resets: drain() raises."""

    async def scenario() -> BaseException | None:
        client, peer = await connected_pair()
        reader, writer = await asyncio.open_connection(sock=client)
        writer.write(b"d" * (4 << 20))
        draining = asyncio.ensure_future(writer.drain())
        await asyncio.sleep(0)
        assert not draining.done()
        reset(peer)
        try:
            await draining
        except ConnectionError as exc:
            result: BaseException | None = exc
        else:
            raise AssertionError("drain() returned after the peer reset")
        with pytest.raises(ConnectionError):
            await reader.read(100)
        writer.close()
        return result

    check_same_as_asyncio(loop_impl, scenario)
