"""Black-box tests of loop.connect_read_pipe / connect_write_pipe, on tideloop and asyncio.

Every test taking ``loop_impl`` runs unchanged on both loops (ids ``tide`` / ``aio``): asyncio's
unix_events pipe transports are the spec. Tests of deliberate differences use ``tide_only``
and say why.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import gc
import io
import logging
import os
import socket
import sys
import tempfile
import tty
from collections.abc import Callable
from typing import Any

import pytest
from _support import Signal, open_fds, readable, run

import tideloop

TIMEOUT = 10.0
LINUX = sys.platform == "linux"
needs_pty = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs os.openpty()")


class ReadProto(asyncio.Protocol):
    """Records a read pipe's protocol calls in order (consecutive data merged)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        loop = asyncio.get_running_loop()
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.changed = Signal()  # notified by each read

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")
        self.made.set_result(None)

    def data_received(self, data: bytes) -> None:
        assert self.events[0] == "made"
        if self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        self.changed.notify()

    async def wait_for_bytes(self, n: int) -> None:
        await self.changed.until(lambda: len(self.data) >= n)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


class WriteProto(asyncio.BaseProtocol):
    """Records a write pipe's protocol calls in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.transport: Any = None
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        self.resumed: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def pause_writing(self) -> None:
        self.events.append("pause")
        self.resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self.events.append("resume")
        assert self.resumed is not None
        self.resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


async def read_fd(fd: int, n: int) -> bytes:
    """Read n bytes from a non-blocking fd while the loop runs (stops early at EOF/EIO)."""
    got = bytearray()
    while len(got) < n:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            await readable(fd)
            continue
        if not chunk:
            break
        got += chunk
    return bytes(got)


def nonblocking_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def rfile(fd: int) -> io.FileIO:
    """An unbuffered read file object over fd, for a transport to own (and close)."""
    return io.FileIO(fd, "r")


def wfile(fd: int) -> io.FileIO:
    """An unbuffered write file object over fd, for a transport to own (and close)."""
    return io.FileIO(fd, "w")



# ------------------------------------------------------------------------------- read side


def test_read_pipe_data_then_eof(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        pipeobj = rfile(r)
        proto = ReadProto()
        tr, p = await loop.connect_read_pipe(lambda: proto, pipeobj)
        assert p is proto and tr is proto.transport
        assert isinstance(tr, asyncio.ReadTransport)
        assert proto.events == ["made"]
        assert tr.get_extra_info("pipe") is pipeobj
        assert tr.get_extra_info("nope", 42) == 42
        assert tr.get_protocol() is proto
        assert tr.is_reading() and not tr.is_closing()
        assert not os.get_blocking(r)
        os.write(w, b"1")
        await proto.wait_for_bytes(1)
        os.write(w, b"2345")
        await proto.wait_for_bytes(5)
        assert proto.data == b"12345"
        os.close(w)
        assert await proto.lost is None
        assert proto.events == ["made", "data", "eof", ("lost", None)]
        assert tr.is_closing() and not tr.is_reading()
        assert pipeobj.closed
        assert tr.get_protocol() is None
        tr.close()  # idempotent after connection_lost
        tr.pause_reading()
        tr.resume_reading()

    run(loop_impl, main)


def test_read_pipe_close_before_eof(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        proto = ReadProto()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rfile(r))
        tr.close()
        assert tr.is_closing()
        assert await proto.lost is None
        assert proto.events == ["made", ("lost", None)]
        os.close(w)

    run(loop_impl, main)


def test_read_pipe_large_transfer(loop_impl: Any) -> None:
    payload = os.urandom(3 * 1024 * 1024)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        proto = ReadProto()
        await loop.connect_read_pipe(lambda: proto, rfile(r))
        wt, wp = await loop.connect_write_pipe(WriteProto, wfile(w))
        wt.write(payload)
        wt.close()
        assert await proto.lost is None
        assert await wp.lost is None
        assert proto.data == payload
        assert proto.events == ["made", "data", "eof", ("lost", None)]

    run(loop_impl, main)


def test_pause_resume_reading(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        proto = ReadProto()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rfile(r))
        tr.pause_reading()
        tr.pause_reading()  # idempotent
        assert not tr.is_reading()
        os.write(w, b"held")
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.resume_reading()
        tr.resume_reading()  # idempotent
        assert tr.is_reading()
        await proto.wait_for_bytes(4)
        assert proto.data == b"held"
        tr.pause_reading()
        os.close(w)  # EOF is not noticed while paused
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.events == ["made", "data"]
        tr.resume_reading()
        assert await proto.lost is None
        assert proto.events == ["made", "data", "eof", ("lost", None)]

    run(loop_impl, main)


def test_pause_reading_in_connection_made(loop_impl: Any) -> None:
    class Paused(ReadProto):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        os.write(w, b"early")
        proto = Paused()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rfile(r))
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.data == b"" and not tr.is_reading()
        tr.resume_reading()
        await proto.wait_for_bytes(5)
        tr.close()
        await proto.lost
        os.close(w)

    run(loop_impl, main)


def test_data_received_error_is_reported_and_transport_stays(loop_impl: Any) -> None:
    class Bad(ReadProto):
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if data == b"boom":
                raise ZeroDivisionError

    async def main() -> None:
        loop = asyncio.get_running_loop()
        contexts: list[dict] = []
        reported = Signal()

        def handler(_loop: Any, ctx: dict) -> None:
            contexts.append(ctx)
            reported.notify()

        loop.set_exception_handler(handler)
        r, w = os.pipe()
        proto = Bad()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rfile(r))
        os.write(w, b"boom")
        await reported.until(lambda: contexts)
        assert isinstance(contexts[0]["exception"], ZeroDivisionError)
        assert not tr.is_closing()
        os.write(w, b"more")
        await proto.wait_for_bytes(8)
        os.close(w)
        assert await proto.lost is None
        assert len(contexts) == 1

    run(loop_impl, main)


def test_protocol_runs_in_creator_context(loop_impl: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    class Seen(ReadProto):
        seen: list[str]

        def data_received(self, data: bytes) -> None:
            self.seen.append(var.get())
            super().data_received(data)

        def eof_received(self) -> None:
            self.seen.append(var.get())
            super().eof_received()

        def connection_lost(self, exc: Exception | None) -> None:
            self.seen.append(var.get())
            super().connection_lost(exc)

    async def connect(proto: Seen, r: int) -> None:
        var.set("creator")
        await asyncio.get_running_loop().connect_read_pipe(lambda: proto, rfile(r))

    async def main() -> None:
        r, w = os.pipe()
        proto = Seen()
        proto.seen = []
        await asyncio.create_task(connect(proto, r))
        assert var.get() == "unset"
        os.write(w, b"x")
        os.close(w)
        await proto.lost
        assert proto.seen == ["creator", "creator", "creator"]

    run(loop_impl, main)


def test_connect_cancelled_closes_transport(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        pipeobj = rfile(r)
        protos: list[ReadProto] = []

        def factory() -> ReadProto:
            protos.append(ReadProto())
            return protos[0]

        task = asyncio.create_task(loop.connect_read_pipe(factory, pipeobj))
        await asyncio.sleep(0)  # the transport exists; its waiter is pending
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await protos[0].lost is None
        assert protos[0].events == ["made", ("lost", None)]
        assert pipeobj.closed
        os.close(w)

    run(loop_impl, main)


# ------------------------------------------------------------------------------ write side


def test_write_pipe_write_and_close(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = nonblocking_pipe()
        pipeobj = wfile(w)
        proto = WriteProto()
        tr, p = await loop.connect_write_pipe(lambda: proto, pipeobj)
        assert p is proto and tr is proto.transport
        assert isinstance(tr, asyncio.WriteTransport)
        # A Transport, as asyncio's: the read half's methods exist and refuse.
        assert isinstance(tr, asyncio.Transport)
        for method in (tr.pause_reading, tr.resume_reading, tr.is_reading):
            with pytest.raises(NotImplementedError):
                method()
        assert proto.events == ["made"]
        assert tr.get_extra_info("pipe") is pipeobj
        assert tr.can_write_eof()
        assert tr.get_write_buffer_size() == 0
        tr.write(b"1")
        tr.write(bytearray(b"23"))
        tr.write(memoryview(b"45"))
        tr.write(b"")
        tr.writelines([b"6", bytearray(b"7"), memoryview(b"89")])
        assert await read_fd(r, 9) == b"123456789"
        tr.close()
        assert tr.is_closing()
        assert await proto.lost is None
        assert proto.events == ["made", ("lost", None)]
        assert pipeobj.closed
        tr.close()
        assert os.read(r, 10) == b""  # the write end is closed
        os.close(r)

    run(loop_impl, main)


def test_write_non_bytes_rejected(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        with pytest.raises(AssertionError):  # asyncio asserts
            tr.write("str")  # type: ignore[arg-type]
        tr.close()
        await proto.lost
        os.close(r)

    run(loop_impl, main)


def test_big_write_pauses_and_resumes(loop_impl: Any) -> None:
    payload = os.urandom(4 * 1024 * 1024)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = nonblocking_pipe()
        proto = WriteProto()
        tr, _ = await loop.connect_write_pipe(lambda: proto, wfile(w))
        tr.set_write_buffer_limits(high=64 * 1024, low=16 * 1024)
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        tr.write(payload)
        assert proto.events == ["made", "pause"]
        assert 0 < tr.get_write_buffer_size() < len(payload)
        got = await read_fd(r, len(payload))
        assert got == payload
        assert proto.resumed is not None
        await proto.resumed
        # No callback when the buffer empties (resume_writing came at the low mark): polls
        # the state itself, bounded.
        async with asyncio.timeout(TIMEOUT):
            while tr.get_write_buffer_size():
                await asyncio.sleep(0.001)
        assert proto.events == ["made", "pause", "resume"]
        tr.write_eof()  # == close() for a pipe
        assert tr.is_closing()
        assert await proto.lost is None
        os.close(r)

    run(loop_impl, main)


def test_close_flushes_buffer(loop_impl: Any) -> None:
    payload = os.urandom(1024 * 1024)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = nonblocking_pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        tr.close()
        assert tr.is_closing()
        tr.write(b"dropped")  # after close: ignored
        assert await read_fd(r, len(payload) + 100) == payload  # then EOF
        assert await proto.lost is None
        os.close(r)

    run(loop_impl, main)


def test_abort_drops_buffer(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = nonblocking_pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        tr.write(b"x" * (1024 * 1024))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        assert await proto.lost is None
        got = await read_fd(r, 1024 * 1024)
        assert 0 < len(got) < 1024 * 1024
        os.close(r)

    run(loop_impl, main)


@pytest.mark.parametrize("buffered", [False, True], ids=["empty", "buffered"])
def test_reader_gone(loop_impl: Any, buffered: bool) -> None:
    # The write end watches the read end: connection_lost(None), or BrokenPipeError if data
    # was still buffered.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        await asyncio.sleep(0)  # the pass that starts watching the read end
        if buffered:
            tr.write(b"x" * (1024 * 1024))
            assert tr.get_write_buffer_size() > 0
        os.close(r)
        exc = await proto.lost
        if buffered:  # no resume_writing when the buffer is dropped
            assert isinstance(exc, BrokenPipeError)
            assert proto.events == ["made", "pause", ("lost", exc)]
        else:
            assert proto.events == ["made", ("lost", None)]
        assert tr.is_closing() and tr.get_write_buffer_size() == 0

    run(loop_impl, main)


def test_write_to_broken_pipe(loop_impl: Any, caplog: pytest.LogCaptureFixture) -> None:
    # The read end is gone and the transport does not watch it yet (connection_made runs the
    # pass before the watching starts): write() itself gets EPIPE.
    class WriteAtOnce(WriteProto):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.write(b"data")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Debug mode: asyncio's connect_write_pipe logs pipe.fileno() of the pipe that is
        # closed by then, and raises ValueError (tideloop does not).
        loop.set_debug(False)
        contexts: list[dict] = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        r, w = os.pipe()
        os.close(r)
        proto = WriteAtOnce()
        tr, _ = await loop.connect_write_pipe(lambda: proto, wfile(w))
        exc = await proto.lost
        assert isinstance(exc, BrokenPipeError)
        assert contexts == []  # an OSError: not reported
        for _ in range(6):
            tr.write(b"more")  # counted; the 5th and later log a warning

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(loop_impl, main)
    warned = [r for r in caplog.records if "pipe closed by peer" in r.getMessage()]
    assert len(warned) == 2


def test_writes_after_close_warn(loop_impl: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        tr.close()
        for _ in range(7):
            tr.write(b"x")
        await proto.lost
        os.close(r)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        run(loop_impl, main)
    warned = [r for r in caplog.records if "pipe closed by peer" in r.getMessage()]
    assert len(warned) == 2


def test_pipe_both_ways(loop_impl: Any) -> None:
    # Two pipes, one in each direction, all four ends on transports: an echo round trip.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a_r, b_w = os.pipe()
        b_r, a_w = os.pipe()
        a_in = ReadProto()
        b_in = ReadProto()
        await loop.connect_read_pipe(lambda: a_in, rfile(a_r))
        await loop.connect_read_pipe(lambda: b_in, rfile(b_r))
        a_out, a_wp = await loop.connect_write_pipe(WriteProto, wfile(a_w))
        b_out, b_wp = await loop.connect_write_pipe(WriteProto, wfile(b_w))
        for i in range(20):
            msg = b"ping %d" % i
            a_out.write(msg)
            await b_in.changed.until(lambda m=msg: bytes(b_in.data).endswith(m))
            b_out.write(msg.replace(b"ping", b"pong"))
            await a_in.changed.until(
                lambda m=msg: bytes(a_in.data).endswith(m.replace(b"ping", b"pong"))
            )
        a_out.close()
        b_out.close()
        assert await a_in.lost is None and await b_in.lost is None
        assert await a_wp.lost is None and await b_wp.lost is None
        assert a_in.events == b_in.events == ["made", "data", "eof", ("lost", None)]

    run(loop_impl, main)


# --------------------------------------------------------------------------------- sockets


def test_socketpair_as_pipes(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        left, right = socket.socketpair()
        rproto = ReadProto()
        rt, _ = await loop.connect_read_pipe(lambda: rproto, left)
        wt, wproto = await loop.connect_write_pipe(WriteProto, wfile(right.detach()))
        wt.write(b"over a socket")
        await rproto.wait_for_bytes(13)
        assert rproto.data == b"over a socket"
        wt.close()
        assert await wproto.lost is None
        assert await rproto.lost is None
        assert rproto.events == ["made", "data", "eof", ("lost", None)]
        assert left.fileno() == -1  # the transport closed the socket object

    run(loop_impl, main)


def test_socket_write_pipe_peer_closes(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        peer, ours = socket.socketpair()
        peer.setblocking(False)
        wt, proto = await loop.connect_write_pipe(WriteProto, wfile(ours.detach()))
        wt.write(b"1")
        assert await loop.sock_recv(peer, 1024) == b"1"
        peer.close()
        assert await proto.lost is None
        assert proto.events == ["made", ("lost", None)]

    run(loop_impl, main)


# ------------------------------------------------------------------------------------ ptys


@needs_pty
def test_read_pty_output(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        proto = ReadProto()
        tr, _ = await loop.connect_read_pipe(lambda: proto, rfile(master))
        assert proto.events == ["made"]
        os.write(slave, b"1")
        await proto.wait_for_bytes(1)
        os.write(slave, b"2345")
        await proto.wait_for_bytes(5)
        assert proto.data == b"12345"
        os.close(slave)
        tr.close()
        await proto.lost
        assert proto.events[:2] == ["made", "data"]
        assert tr.get_extra_info("pipe") is not None

    run(loop_impl, main)


@needs_pty
@pytest.mark.skipif(not LINUX, reason="EIO from a pty master whose slave closed is Linux's")
def test_pty_master_eio_closes_quietly(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        contexts: list[dict] = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        master, slave = os.openpty()
        tty.setraw(slave)
        proto = ReadProto()
        await loop.connect_read_pipe(lambda: proto, rfile(master))
        os.write(slave, b"abc")
        await proto.wait_for_bytes(3)
        os.close(slave)
        exc = await proto.lost
        # asyncio: EIO is a read error, not EOF; logged only in debug mode.
        assert isinstance(exc, OSError) and exc.errno == errno.EIO
        assert proto.events == ["made", "data", ("lost", exc)]
        assert contexts == []

    run(loop_impl, main)


@needs_pty
def test_write_pty(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(slave))
        tr.write(b"1")
        assert await read_fd(master, 1) == b"1"
        tr.write(b"2345")
        assert await read_fd(master, 4) == b"2345"
        assert tr.get_extra_info("pipe") is not None
        tr.close()
        assert await proto.lost is None
        assert proto.events == ["made", ("lost", None)]
        os.close(master)

    run(loop_impl, main)


@needs_pty
def test_bidirectional_pty(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        master, read_slave = os.openpty()
        write_slave = os.dup(read_slave)
        tty.setraw(read_slave)
        os.set_blocking(master, False)
        rproto = ReadProto()
        rt, _ = await loop.connect_read_pipe(lambda: rproto, rfile(read_slave))
        wt, wproto = await loop.connect_write_pipe(WriteProto, wfile(write_slave))
        wt.write(b"out")
        assert await read_fd(master, 3) == b"out"
        os.write(master, b"in")
        await rproto.wait_for_bytes(2)
        assert rproto.data == b"in"
        os.close(master)
        rt.close()
        wt.close()
        await rproto.lost
        await wproto.lost

    run(loop_impl, main)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("side", ["read", "write"])
def test_regular_file_rejected(loop_impl: Any, side: str) -> None:
    messages = {
        "read": "Pipe transport is for pipes/sockets only.",
        "write": "Pipe transport is only for pipes, sockets and character devices",
    }

    async def main() -> None:
        loop = asyncio.get_running_loop()
        connect = loop.connect_read_pipe if side == "read" else loop.connect_write_pipe
        with tempfile.TemporaryFile() as f:
            blocking = os.get_blocking(f.fileno())
            with pytest.raises(ValueError) as info:
                await connect(asyncio.Protocol, f)
            assert str(info.value) == messages[side]
            assert not f.closed
            assert os.get_blocking(f.fileno()) == blocking

    run(loop_impl, main)


# ----------------------------------------------------------------------------- lifetimes


def test_unclosed_transport_warns(loop_impl: Any) -> None:
    loop = loop_impl()
    r, w = os.pipe()
    rpipe = rfile(r)
    wpipe = wfile(w)

    async def connect() -> tuple[Any, Any]:
        rt, _ = await loop.connect_read_pipe(asyncio.Protocol, rpipe)
        wt, _ = await loop.connect_write_pipe(asyncio.BaseProtocol, wpipe)
        return rt, wt

    rt, wt = loop.run_until_complete(connect())
    loop.close()
    assert "open" in repr(rt) and "open" in repr(wt)
    with pytest.warns(ResourceWarning, match="unclosed transport"):
        del rt, wt
        # Three passes, as test.support.gc_collect(): on PyPy one collection is not always
        # enough for __del__ to have run (CPython runs it at the del, by refcount).
        for _ in range(3):
            gc.collect()
    assert rpipe.closed and wpipe.closed


@pytest.mark.skipif(not LINUX, reason="/proc/self/fd")
def test_no_fd_leak(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for i in range(30):
            r, w = os.pipe()
            rproto = ReadProto()
            await loop.connect_read_pipe(lambda p=rproto: p, rfile(r))
            wt, wproto = await loop.connect_write_pipe(WriteProto, wfile(w))
            wt.write(b"x" * (200_000 if i % 2 else 10))
            if i % 3 == 0:
                wt.abort()
            else:
                wt.close()
            await wproto.lost
            await rproto.lost
        if hasattr(os, "openpty"):
            for _ in range(10):
                master, slave = os.openpty()
                rproto = ReadProto()
                rt, _ = await loop.connect_read_pipe(lambda p=rproto: p, rfile(master))
                wt, wproto = await loop.connect_write_pipe(WriteProto, wfile(slave))
                wt.close()
                await wproto.lost
                rt.close()
                await rproto.lost

    run(loop_impl, lambda: asyncio.sleep(0))  # warm up: lazily opened fds
    before = open_fds()
    run(loop_impl, main)
    assert open_fds() <= before


# --------------------------------------------------------------------- tideloop-only behaviour


@pytest.fixture
def tide_only() -> Callable[[], asyncio.AbstractEventLoop]:
    return tideloop.new_event_loop


def test_abort_twice_is_harmless(tide_only: Any) -> None:
    # asyncio schedules connection_lost a second time, which then fails in the exception
    # handler with AttributeError ('NoneType' has no 'connection_lost'); tideloop ignores it.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        contexts: list[dict] = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
        r, w = os.pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        tr.abort()
        tr.abort()
        await proto.lost
        await asyncio.sleep(0)
        tr.abort()
        tr.close()
        await asyncio.sleep(0)
        assert proto.events == ["made", ("lost", None)]
        assert contexts == []
        os.close(r)

    run(tide_only, main)


def test_repr(tide_only: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = os.pipe()
        rproto = ReadProto()
        rt, _ = await loop.connect_read_pipe(lambda: rproto, rfile(r))
        wt, wproto = await loop.connect_write_pipe(WriteProto, wfile(w))
        assert repr(rt) == f"<ReadPipeTransport fd={r} polling>"
        assert repr(wt) == f"<WritePipeTransport fd={w} idle bufsize=0>"
        rt.pause_reading()
        assert repr(rt) == f"<ReadPipeTransport fd={r} idle>"
        wt.write(b"x" * 1_000_000)
        assert repr(wt).startswith(f"<WritePipeTransport fd={w} polling bufsize=")
        wt.abort()
        assert repr(wt).startswith(f"<WritePipeTransport closing fd={w}")
        rt.close()
        await rproto.lost
        await wproto.lost
        assert repr(rt) == f"<ReadPipeTransport closed fd={r} closed>"

    run(tide_only, main)


def test_write_array_counts_bytes(tide_only: Any) -> None:
    # asyncio compares os.write()'s byte count with len() of the memoryview, which counts
    # items: for an 'i' array it then re-slices by items and sends the wrong bytes (and the
    # reader below waits forever). tideloop casts such views to bytes first.
    import array

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r, w = nonblocking_pipe()
        tr, proto = await loop.connect_write_pipe(WriteProto, wfile(w))
        data = array.array("i", range(100_000))  # bigger than the pipe: part is buffered
        tr.write(memoryview(data))
        assert await read_fd(r, len(data.tobytes())) == data.tobytes()
        tr.close()
        await proto.lost
        os.close(r)

    run(tide_only, main)
