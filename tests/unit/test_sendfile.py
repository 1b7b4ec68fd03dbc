"""loop.sendfile(transport, ...) black-box tests, on tideloop and stock asyncio (tide / aio).

The native path (os.sendfile on the transport's socket) runs for a real file; the fallback
(read in the executor, write through the transport under flow control) for a file object
without a usable fileno (io.BytesIO), exactly as on asyncio. The peer's receive buffer and
the sender's send buffer are shrunk so that transfers take many partial sends and the
transport's write buffer crosses its watermarks. Every test checks that no file descriptor
is left open.
"""

from __future__ import annotations

import asyncio
import io
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support import Signal, no_fd_leak, passes, readable, run  # noqa: F401 (no_fd_leak: the fixture pytestmark uses)

import tideloop

# Every test here fails if it leaves a file descriptor open.
pytestmark = pytest.mark.usefixtures("no_fd_leak")

TIMEOUT = 20.0  # a hang guard, not a timing assertion
DATA = bytes(range(256)) * 4096 + b"!"  # 1 MiB + 1
BUF_SIZE = 4096
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.write_bytes(DATA)
    return path


def open_source(kind: str, path: Path) -> Any:
    """'native': a regular file; 'fallback': an in-memory file (no fileno: asyncio falls back)."""
    return open(path, "rb") if kind == "native" else io.BytesIO(path.read_bytes())


KINDS = pytest.mark.parametrize("kind", ["native", "fallback"])


def skip_aio_fallback_data(loop_impl: Any, kind: str = "fallback") -> None:
    """Skip a data check that stock asyncio 3.12+ fails on the fallback path.

    Its socket transport buffers a view of the caller's bytes-like object instead of a copy,
    and the fallback reuses one bytearray for every chunk, so queued data gets overwritten.
    tideloop's transport copies what it queues.
    """
    if kind == "fallback" and loop_impl.impl == "aio" and sys.version_info >= (3, 12):
        pytest.skip("asyncio 3.12+ fallback corrupts queued data (buffers a view of its buffer)")


class Proto(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.data = bytearray()
        self.events: list[str] = []
        self.lost = asyncio.get_running_loop().create_future()
        self.got = Signal()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.got.notify()

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


class Conn:
    """A client transport from create_connection and the server's raw socket (``peer``)."""

    def __init__(self, lsock: socket.socket, tr: Any, pr: Any, peer: socket.socket) -> None:
        self.lsock, self.tr, self.pr, self.peer = lsock, tr, pr, peer

    @classmethod
    async def open(cls, proto: Callable[[], Any] = Proto) -> Conn:
        loop = asyncio.get_running_loop()
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF_SIZE)  # inherited
        accepting = asyncio.ensure_future(loop.sock_accept(lsock))
        tr, pr = await loop.create_connection(proto, *lsock.getsockname())
        peer, _ = await accepting
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF_SIZE)
        tr.set_write_buffer_limits(high=BUF_SIZE)
        return cls(lsock, tr, pr, peer)

    async def read(self, n: int | None = None) -> bytes:
        """Read n bytes from the peer side, or until EOF."""
        loop = asyncio.get_running_loop()
        got = bytearray()
        while n is None or len(got) < n:
            chunk = await loop.sock_recv(self.peer, 1 << 16 if n is None else n - len(got))
            if not chunk:
                break
            got += chunk
        return bytes(got)

    async def finish(self, reading: Any = None) -> bytes:
        """Close the transport; return what the peer gets until EOF (or what reading returns)."""
        self.tr.close()
        try:
            return await (self.read() if reading is None else reading)
        finally:
            await self.pr.lost
            self.close()

    def close(self) -> None:
        if not self.tr.is_closing():
            self.tr.abort()
        self.peer.close()
        self.lsock.close()


# ---------------------------------------------------------------------- success


@KINDS
@pytest.mark.parametrize(
    "offset,count",
    [(0, None), (1000, 100), (1000, None), (len(DATA) - 10, 100), (0, len(DATA) + 99)],
    ids=["all", "1000+100", "from-1000", "past-eof", "count-past-eof"],
)
def test_sendfile(
    loop_impl: LoopFactory, data_path: Path, kind: str, offset: int, count: Any
) -> None:
    skip_aio_fallback_data(loop_impl, kind)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        reading = asyncio.ensure_future(conn.read())
        try:
            with open_source(kind, data_path) as f:
                sent = await loop.sendfile(conn.tr, f, offset, count)
                assert f.tell() == offset + sent
        finally:
            got = await conn.finish(reading)
        expected = DATA[offset : offset + count if count else None]
        assert sent == len(expected)
        assert got == expected

    run(loop_impl, main)


@KINDS
def test_sendfile_offset_past_eof(loop_impl: LoopFactory, data_path: Path, kind: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with open_source(kind, data_path) as f:
                assert await loop.sendfile(conn.tr, f, len(DATA) + 10) == 0
        finally:
            assert await conn.finish() == b""

    run(loop_impl, main)


PY314 = sys.version_info >= (3, 14)
START = 123  # the file position before the call


def expected_position(kind: str, offset: int) -> tuple[int, int]:
    """(bytes sent, file position after) for a file at START sent from offset, as asyncio.

    3.14+: the fallback seeks to offset first, and the position ends at offset + sent, even
    when nothing was sent. Before: the fallback seeks only to a non-zero offset, and nothing
    moves the position when nothing was sent.
    """
    if PY314:
        sent = max(len(DATA) - offset, 0)
        return sent, offset + sent
    begin = START if kind == "fallback" and not offset else offset
    sent = max(len(DATA) - begin, 0)
    if sent:
        return sent, offset + sent
    return sent, (begin if kind == "fallback" else START)


OFFSETS = pytest.mark.parametrize(
    "offset", [0, len(DATA) // 2, len(DATA), len(DATA) + 10], ids=["0", "half", "eof", "past"]
)


@KINDS
@OFFSETS
def test_sendfile_file_position(
    loop_impl: LoopFactory, data_path: Path, kind: str, offset: int
) -> None:
    """loop.sendfile from a file not at its start: bytes sent and the position after."""
    sent_expected, pos_expected = expected_position(kind, offset)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        reading = asyncio.ensure_future(conn.read())
        try:
            with open_source(kind, data_path) as f:
                f.seek(START)
                sent = await loop.sendfile(conn.tr, f, offset)
                assert (sent, f.tell()) == (sent_expected, pos_expected)
        finally:
            got = await conn.finish(reading)
        assert len(got) == sent
        if not (kind == "fallback" and loop_impl.impl == "aio" and sys.version_info >= (3, 12)):
            assert got == DATA[len(DATA) - sent :]  # see skip_aio_fallback_data

    run(loop_impl, main)


@KINDS
@OFFSETS
def test_sock_sendfile_file_position(
    loop_impl: LoopFactory, data_path: Path, kind: str, offset: int
) -> None:
    """loop.sock_sendfile from a file not at its start: bytes sent and the position after."""
    sent_expected, pos_expected = expected_position(kind, offset)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)

        async def read() -> bytes:
            got = bytearray()
            while chunk := await loop.sock_recv(b, 1 << 16):
                got += chunk
            return bytes(got)

        reading = asyncio.ensure_future(read())
        try:
            with open_source(kind, data_path) as f:
                f.seek(START)
                sent = await loop.sock_sendfile(a, f, offset)
                assert (sent, f.tell()) == (sent_expected, pos_expected)
            a.shutdown(socket.SHUT_WR)
            assert await reading == DATA[len(DATA) - sent :]
        finally:
            reading.cancel()
            a.close()
            b.close()

    run(loop_impl, main)


@KINDS
def test_pre_and_post_data_keep_order(loop_impl: LoopFactory, data_path: Path, kind: str) -> None:
    prefix, suffix = b"P" * 300_000, b"S" * 300_000  # both exceed the buffers: queued

    skip_aio_fallback_data(loop_impl, kind)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        reading = asyncio.ensure_future(conn.read())
        with open_source(kind, data_path) as f:
            conn.tr.write(prefix)
            assert conn.tr.get_write_buffer_size() > 0
            assert await loop.sendfile(conn.tr, f) == len(DATA)
            conn.tr.write(suffix)
        assert await conn.finish(reading) == prefix + DATA + suffix

    run(loop_impl, main)


@KINDS
def test_reading_resumes_after(loop_impl: LoopFactory, data_path: Path, kind: str) -> None:
    skip_aio_fallback_data(loop_impl, kind)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with open_source(kind, data_path) as f:
                reading = asyncio.ensure_future(conn.read(len(DATA)))
                assert await loop.sendfile(conn.tr, f) == len(DATA)
                assert await reading == DATA
            assert conn.tr.is_reading()
            await loop.sock_sendall(conn.peer, b"after")
            await conn.pr.got.until(lambda: len(conn.pr.data) >= 5)
            assert conn.pr.data == b"after"
            # Paused before: still paused after.
            conn.tr.pause_reading()
            with open_source(kind, data_path) as f:
                reading = asyncio.ensure_future(conn.read(len(DATA)))
                await loop.sendfile(conn.tr, f)
                await reading
            assert not conn.tr.is_reading()
        finally:
            await conn.finish()

    run(loop_impl, main)


def test_buffered_protocol_after_fallback(loop_impl: LoopFactory, data_path: Path) -> None:
    skip_aio_fallback_data(loop_impl)

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(100)
            self.got = bytearray()
            self.lost = asyncio.get_running_loop().create_future()
            self.changed = Signal()

        def get_buffer(self, sizehint: int) -> Any:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]
            self.changed.notify()

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost.set_result(exc)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open(Buffered)
        try:
            reading = asyncio.ensure_future(conn.read(len(DATA)))
            assert await loop.sendfile(conn.tr, io.BytesIO(DATA)) == len(DATA)
            assert await reading == DATA
            assert conn.tr.get_protocol() is conn.pr
            await loop.sock_sendall(conn.peer, b"after")
            await conn.pr.changed.until(lambda: len(conn.pr.got) >= 5)
            assert conn.pr.got == b"after"
        finally:
            await conn.finish()

    run(loop_impl, main)


# ---------------------------------------------------------------------- errors


def test_write_during_native_sendfile(loop_impl: LoopFactory, data_path: Path) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with open(data_path, "rb") as f:
                task = asyncio.ensure_future(loop.sendfile(conn.tr, f))
                await readable(conn.peer)  # it sends; the peer does not read yet
                assert not task.done()
                with pytest.raises(RuntimeError, match="sendfile is in progress"):
                    conn.tr.write(b"data")
                with pytest.raises(RuntimeError, match="sendfile is in progress"):
                    conn.tr.writelines([b"data"])
                assert await conn.read(len(DATA)) == DATA
                assert await task == len(DATA)
            conn.tr.write(b"more")  # allowed again
            assert await conn.read(4) == b"more"
        finally:
            await conn.finish()

    run(loop_impl, main)


@KINDS
def test_closing_transport(loop_impl: LoopFactory, data_path: Path, kind: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        conn.tr.close()
        with open_source(kind, data_path) as f:
            with pytest.raises(RuntimeError, match="Transport is closing"):
                await loop.sendfile(conn.tr, f)
            assert f.tell() == 0
        assert await conn.finish() == b""

    run(loop_impl, main)


def test_unsupported_transports(loop_impl: LoopFactory) -> None:
    class Plain(asyncio.Transport):
        def is_closing(self) -> bool:
            return False

    class FallbackOnly(Plain):
        _sendfile_compatible = asyncio.constants._SendfileMode.FALLBACK

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="sendfile is not supported for transport"):
            await loop.sendfile(Plain(), io.BytesIO(b"x"))
        with pytest.raises(RuntimeError, match="fallback is disabled and native sendfile"):
            await loop.sendfile(FallbackOnly(), io.BytesIO(b"x"), fallback=False)

    run(loop_impl, main)


def test_no_fallback(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            f = io.BytesIO(DATA)
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sendfile(conn.tr, f, fallback=False)
            assert f.tell() == 0
            conn.tr.write(b"ok")  # the transport is unharmed
            assert await conn.read(2) == b"ok"
            assert conn.tr.is_reading()
        finally:
            assert await conn.finish() == b""

    run(loop_impl, main)


@pytest.mark.parametrize(
    "args,exc",
    [((-1,), ValueError), ((0, 0), ValueError), (("1",), TypeError), ((0, 1.5), TypeError)],
    ids=["offset<0", "count=0", "offset-str", "count-float"],
)
def test_bad_arguments_native(
    loop_impl: LoopFactory, data_path: Path, args: tuple, exc: type
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with open(data_path, "rb") as f, pytest.raises(exc):
                await loop.sendfile(conn.tr, f, *args)
            assert conn.tr.is_reading()
        finally:
            assert await conn.finish() == b""

    run(loop_impl, main)


def test_text_file_rejected(loop_impl: LoopFactory, data_path: Path) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with (
                open(data_path, encoding="latin-1") as f,
                pytest.raises(ValueError, match="binary mode"),
            ):
                await loop.sendfile(conn.tr, f)
        finally:
            await conn.finish()

    run(loop_impl, main)


@KINDS
def test_peer_closes_in_the_middle(loop_impl: LoopFactory, data_path: Path, kind: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with open_source(kind, data_path) as f:

                async def reader() -> None:
                    await conn.read(1024)
                    conn.peer.close()  # unread data: the kernel answers with RST

                reading = asyncio.ensure_future(reader())
                with pytest.raises(ConnectionError):
                    await loop.sendfile(conn.tr, f)
                await reading
                assert 1024 <= f.tell() < len(DATA)
            await conn.pr.lost
            assert conn.tr.is_closing()
        finally:
            conn.close()

    run(loop_impl, main)


def test_cancel_native_sendfile_restores_transport(loop_impl: LoopFactory, data_path: Path) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            with open(data_path, "rb") as f:
                task = asyncio.ensure_future(loop.sendfile(conn.tr, f))
                await readable(conn.peer)  # it sends; the peer does not read yet
                assert not task.done()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            fd = conn.tr.get_extra_info("socket").fileno()
            with pytest.raises(RuntimeError, match="is used by transport"):
                loop.add_reader(fd, lambda: None)  # the transport owns its fd again
            assert conn.tr.is_reading()
            conn.tr.write(b"END")
            got = await conn.finish()
            assert got.endswith(b"END") and DATA.startswith(got[:-3])
        finally:
            conn.close()

    run(loop_impl, main)


def test_cancel_while_waiting_for_buffer(data_path: Path) -> None:
    """Cancelled while the write buffer drains before the native send: no stray state.

    tideloop only: asyncio awaits the empty waiter outside its try/finally, so after this
    cancellation every write() raises "sendfile is in progress" for good.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            conn.tr.write(b"B" * 500_000)
            with open(data_path, "rb") as f:
                task = asyncio.ensure_future(loop.sendfile(conn.tr, f))
                # Not a wait for an event: passes for the task to start and wait for the
                # buffer, which cannot drain (the peer does not read).
                await passes()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert f.tell() == 0
            conn.tr.write(b"E")
            assert await conn.finish() == b"B" * 500_000 + b"E"
        finally:
            conn.close()

    run(tideloop.new_event_loop, main)


# ---------------------------------------------------------------------- flow control


def test_fallback_waits_for_paused_transport(loop_impl: LoopFactory) -> None:
    """The protocol was paused before sendfile: the fallback waits for resume_writing."""

    skip_aio_fallback_data(loop_impl)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn = await Conn.open()
        try:
            conn.tr.write(b"B" * 500_000)
            assert conn.pr.events == ["pause"]
            reading = asyncio.ensure_future(conn.read(500_000 + len(DATA)))
            assert await loop.sendfile(conn.tr, io.BytesIO(DATA)) == len(DATA)
            assert await reading == b"B" * 500_000 + DATA
        finally:
            await conn.finish()

    run(loop_impl, main)


class FakeTransport(asyncio.Transport):
    """A FALLBACK-mode transport (as TLS will be) that pauses its protocol when told to."""

    _sendfile_compatible = asyncio.constants._SendfileMode.FALLBACK

    def __init__(self, protocol: Any) -> None:
        super().__init__()
        self._proto = protocol
        self._protocol_paused = False
        self.reading = True
        self.data = bytearray()
        self.pause_at: int | None = None  # pause the protocol once data reaches this size

    def is_closing(self) -> bool:
        return False

    def get_protocol(self) -> Any:
        return self._proto

    def set_protocol(self, protocol: Any) -> None:
        self._proto = protocol

    def is_reading(self) -> bool:
        return self.reading

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def write(self, data: Any) -> None:
        self.data += data
        if self.pause_at is not None and len(self.data) >= self.pause_at:
            self.pause()

    def pause(self) -> None:
        if not self._protocol_paused:
            self._protocol_paused = True
            self._proto.pause_writing()

    def resume(self) -> None:
        """The buffer drained."""
        if self._protocol_paused:
            self._protocol_paused = False
            self._proto.resume_writing()


@pytest.mark.parametrize(
    "paused_before,paused_after", [(False, False), (False, True), (True, False), (True, True)]
)
def test_fallback_flow_control_balanced(paused_before: bool, paused_after: bool) -> None:
    """tideloop only: after the fallback the real protocol's pause/resume calls pair up.

    asyncio's fallback takes only its own _FlowControlMixin transports, and after it the
    real protocol may get resume_writing() with no pause_writing() first (the transport was
    paused while the fallback protocol was installed), or twice; asyncio's own stream
    FlowControlMixin asserts against both.
    """
    data = DATA[:100_000]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pr = Proto()
        tr = FakeTransport(pr)
        if paused_before:
            tr.pause()
            loop.call_later(0.01, tr.resume)  # the fallback waits for this
        if paused_after:
            tr.pause_at = len(data)
        assert await loop.sendfile(tr, io.BytesIO(data)) == len(data)
        assert tr.data == data
        assert tr.get_protocol() is pr and tr.is_reading()
        tr.resume()  # whatever is buffered drains
        expected = ["pause", "resume"] if (paused_before or paused_after) else []
        assert pr.events == expected

    run(tideloop.new_event_loop, main)


def test_fallback_needs_flow_control(loop_impl: LoopFactory) -> None:
    class NoFlowControl(FakeTransport):
        def __getattribute__(self, name: str) -> Any:
            if name == "_protocol_paused":
                raise AttributeError(name)
            return super().__getattribute__(name)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tr = NoFlowControl(Proto())
        with pytest.raises(TypeError, match="transport should be _FlowControlMixin instance"):
            await loop.sendfile(tr, io.BytesIO(b"x"))

    run(loop_impl, main)
