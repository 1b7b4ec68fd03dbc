"""Black-box tests of the stream transport's documented semantics, on tideloop and asyncio.

Transports are made with loop.connect_accepted_socket() over a socketpair, so every test runs
unchanged on both loops (ids ``tide`` / ``aio``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from fractions import Fraction
from typing import Any

import pytest
from _support import Recorder, run


async def _pair(proto: asyncio.BaseProtocol) -> tuple[Any, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    peer.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(lambda: proto, ours)
    return transport, peer


async def _read_all(peer: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while len(got) < n:
        chunk = await loop.sock_recv(peer, 1 << 20)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def test_state_machine_echo_and_close(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        assert isinstance(tr, asyncio.Transport)
        assert proto.events == ["made"]
        await asyncio.get_running_loop().sock_sendall(peer, b"ping")
        assert await proto.wait_for_bytes(1) == b"ping"
        peer.shutdown(socket.SHUT_WR)
        exc = await asyncio.wait_for(proto.lost, 5)
        assert exc is None
        assert proto.events == ["made", "data", "eof", ("lost", None)]
        assert tr.is_closing()
        peer.close()

    run(loop_impl, main)


def test_writelines_with_a_bad_item_queues_nothing(loop_impl: Any) -> None:
    """writelines([b"x", 1]): TypeError and nothing queued, so close() still completes
    (asyncio 3.12-3.14 build the whole list first; 3.15's queues b"x" and then hangs)."""
    if loop_impl.impl == "aio" and sys.version_info >= (3, 15):
        pytest.skip("asyncio 3.15 queues the items before a bad one and never sends them")

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        with pytest.raises(TypeError):
            tr.writelines([b"x", 1])
        assert tr.get_write_buffer_size() == 0
        tr.writelines([b"y", bytearray(b"z")])
        tr.close()
        assert await asyncio.wait_for(proto.lost, 10) is None
        peer.settimeout(10)  # everything is queued (and then EOF): no wait in practice
        got = b""
        while chunk := peer.recv(100):
            got += chunk
        assert got == b"yz"
        peer.close()

    run(loop_impl, main)


def test_eof_received_true_keeps_writing_open(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder(keep_open=True)
        tr, peer = await _pair(proto)
        peer.shutdown(socket.SHUT_WR)
        await proto.until(lambda: "eof" in proto.events)
        assert proto.events == ["made", "eof"]
        assert not tr.is_closing()
        tr.write(b"after eof")
        tr.close()
        await asyncio.wait_for(proto.lost, 5)
        assert await _read_all(peer, 9) == b"after eof"
        assert proto.events[-1] == ("lost", None)
        peer.close()

    run(loop_impl, main)


def test_write_buffer_watermarks(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        tr.set_write_buffer_limits(high=10_000, low=2_000)
        assert tr.get_write_buffer_limits() == (2_000, 10_000)
        # Fill the kernel buffers so that what follows is buffered by the transport.
        while tr.get_write_buffer_size() == 0:
            tr.write(b"f" * 4096)
        assert "pause" not in proto.events or tr.get_write_buffer_size() > 10_000
        size = tr.get_write_buffer_size()
        # Grow to exactly high: no pause (pause only when the size *exceeds* high).
        if size < 10_000 and "pause" not in proto.events:
            tr.write(b"x" * (10_000 - size))
            assert tr.get_write_buffer_size() == 10_000
            assert "pause" not in proto.events
            tr.write(b"y")
        assert proto.events.count("pause") == 1
        total = tr.get_write_buffer_size()
        got = 0
        loop = asyncio.get_running_loop()
        while "resume" not in proto.events:
            chunk = await loop.sock_recv(peer, 1 << 16)
            got += len(chunk)
        # resume_writing fires once the buffer is at or below low.
        assert tr.get_write_buffer_size() <= 2_000
        assert total > 10_000
        tr.abort()
        await asyncio.wait_for(proto.lost, 5)
        peer.close()

    run(loop_impl, main)


@pytest.mark.parametrize(
    ("high", "low", "expected"),
    [
        (None, None, (16384, 65536)),
        (0, None, (0, 0)),
        (None, 100, (100, 400)),
        (1000, None, (250, 1000)),
        (500, 500, (500, 500)),
    ],
)
def test_set_write_buffer_limits_defaults(
    loop_impl: Any, high: Any, low: Any, expected: Any
) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.set_write_buffer_limits(high=high, low=low)
        assert tr.get_write_buffer_limits() == expected
        tr.close()
        await proto.lost
        peer.close()

    run(loop_impl, main)


@pytest.mark.parametrize(
    ("high", "pauses_at"),
    [(2**64, None), (2**1100, None), (1.5, 2), (Fraction(7, 2), 4)],
    ids=["2**64", "2**1100", "1.5", "fraction"],
)
def test_set_write_buffer_limits_any_number(loop_impl: Any, high: Any, pauses_at: Any) -> None:
    """asyncio stores whatever number it is given and compares buffer sizes with it; so does
    tideloop, whose compiled fields are C doubles (these raised OverflowError or TypeError)."""

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.set_write_buffer_limits(high=high)
        assert tr.get_write_buffer_limits() == (high // 4, high)
        sock = tr.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        while tr.get_write_buffer_size() == 0:  # fill the kernel's buffers
            tr.write(b"f" * 4096)
        size = tr.get_write_buffer_size()
        paused = "pause" in proto.events
        assert paused == (pauses_at is not None and size >= pauses_at)
        tr.abort()
        await asyncio.wait_for(proto.lost, 5)
        peer.close()

    run(loop_impl, main)


@pytest.mark.parametrize(
    ("high", "low"),
    # inf // 4 and everything compared with NaN are NaN: not high >= low >= 0.
    [(10, 20), (-1, None), (None, -5), (-4, -8), (float("inf"), None), (float("nan"), 0)],
)
def test_set_write_buffer_limits_rejects(loop_impl: Any, high: Any, low: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        with pytest.raises(ValueError, match="must be >="):
            tr.set_write_buffer_limits(high=high, low=low)
        tr.close()
        await proto.lost
        peer.close()

    run(loop_impl, main)


def test_pause_resume_reading_idempotent(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        proto = Recorder()
        tr, peer = await _pair(proto)
        assert tr.is_reading()
        tr.pause_reading()
        tr.pause_reading()
        assert not tr.is_reading()
        await loop.sock_sendall(peer, b"held")
        # An absence check, not a wait: the bytes are in our socket already, so a reading
        # transport would take them on the next pass; none does in ten.
        for _ in range(10):
            await asyncio.sleep(0)
        assert proto.data == b""
        tr.resume_reading()
        tr.resume_reading()
        assert tr.is_reading()
        assert await proto.wait_for_bytes(1) == b"held"
        tr.close()
        assert not tr.is_reading()
        await proto.lost
        peer.close()

    run(loop_impl, main)


def test_writelines_and_large_write_arrive_in_order(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        try:
            big = bytes(range(256)) * 8192  # 2 MiB: certainly buffered
            tr.write(big)
            tr.writelines([b"a", bytearray(b"bc"), memoryview(b"def")])
            tr.close()
            data = await _read_all(peer, len(big) + 6)
            assert data == big + b"abcdef"
            await proto.lost
            assert proto.events[-1] == ("lost", None)
        finally:
            peer.close()

    run(loop_impl, main)


def test_reads_that_grow_and_shrink_arrive_intact(loop_impl: Any) -> None:
    """Reads of sizes that go up and down across 16 KiB each deliver exactly what was sent.

    The compiled build reads a large chunk straight into its bytes object, sized by the last
    read, then grows or shrinks it (_sockio.pxd, tideloop_recv_bytes_hint); every branch of
    that is taken here: each payload is queued whole while reading is paused, so one read
    takes all of it."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sizes: list[int] = []

        class Sizes(Recorder):
            def data_received(self, data: bytes) -> None:
                assert type(data) is bytes
                sizes.append(len(data))
                super().data_received(data)

        proto = Sizes()
        tr, peer = await _pair(proto)
        try:
            sent = bytearray()
            for size in (40_000, 100_000, 30_000, 10, 20_000, 120_000, 16_384, 1, 90_000, 5):
                payload = os.urandom(size)
                tr.pause_reading()
                await loop.sock_sendall(peer, payload)
                sent += payload
                tr.resume_reading()
                assert await proto.wait_for_bytes(len(sent)) == sent
            large = [n for n in sizes if n >= 16 * 1024]
            steps = list(zip(large, large[1:], strict=False))
            assert any(b > a for a, b in steps) and any(b < a for a, b in steps), sizes
        finally:
            tr.close()
            peer.close()

    run(loop_impl, main)


def _send_one_at_a_time(payloads: list[bytes], keep: bool) -> list[tuple[bytes, int]]:
    """Send each payload alone (the next once the last arrived) to a Protocol; -> what each
    data_received call got, as (data, hash(data)) taken in the call, and, when keep is true,
    the data objects themselves kept alive until the end."""

    async def main() -> list[tuple[bytes, int]]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[bytes, int]] = []
        kept: list[bytes] = []

        class Hasher(Recorder):
            def data_received(self, data: bytes) -> None:
                seen.append((bytes(bytearray(data)), hash(data)))
                if keep:
                    kept.append(data)
                super().data_received(data)

        proto = Hasher()
        tr, peer = await _pair(proto)
        try:
            total = 0
            for payload in payloads:
                await loop.sock_sendall(peer, payload)
                total += len(payload)
                await proto.wait_for_bytes(total)
            if keep:
                assert [bytes(k) for k in kept] == [d for d, _ in seen]
                assert b"".join(kept) == b"".join(payloads)
        finally:
            tr.close()
            peer.close()
        return seen

    import tideloop

    with asyncio.Runner(loop_factory=tideloop.new_event_loop) as runner:
        return runner.run(main())


@pytest.mark.parametrize("keep", [False, True], ids=["dropped", "kept"])
def test_same_size_reads_are_fresh_bytes(keep: bool) -> None:
    """Reads of one size, each with other contents, arrive intact, with their own hash.

    The compiled build reuses a dropped read's bytes object for the next read of the same
    length (_sockio.pxd, tideloop_recycle_bytes): only once data_received has returned and
    nothing else references it. A kept object must never change, and a reused one must not
    keep the hash cached from its last contents."""
    payloads = [bytes([i]) * 1024 for i in range(1, 40)] + [os.urandom(4096) for _ in range(5)]
    seen = _send_one_at_a_time(payloads, keep)
    assert b"".join(d for d, _ in seen) == b"".join(payloads)
    for data, h in seen:
        assert h == hash(data)


def test_buffered_bytearray_is_copied() -> None:
    """tideloop only: a bytearray written while the buffer is busy is copied, so the caller
    may reuse it at once. (Stock asyncio 3.12+ keeps a view and sends the later contents.)"""
    import tideloop

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        try:
            big = bytes(range(256)) * 8192
            tr.write(big)
            buf = bytearray(b"mutable")
            tr.write(buf)
            buf[:] = b"CHANGED"
            tr.close()
            assert await _read_all(peer, len(big) + 7) == big + b"mutable"
            await proto.lost
        finally:
            peer.close()

    run(tideloop.new_event_loop, main)


def test_write_errors(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        # asyncio 3.14 words it "must be a bytes, bytearray, or memoryview object"
        with pytest.raises(TypeError, match="bytes-like|bytes, bytearray, or memoryview"):
            tr.write("text")
        tr.write(b"")  # nothing
        assert tr.can_write_eof()
        tr.write_eof()
        with pytest.raises(RuntimeError, match="write_eof"):
            tr.write(b"x")
        assert await asyncio.get_running_loop().sock_recv(peer, 10) == b""
        tr.close()
        await proto.lost
        peer.close()

    run(loop_impl, main)


def test_abort_drops_buffer_and_loses_connection_once(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.write(b"z" * (8 << 20))
        assert tr.get_write_buffer_size() > 0
        tr.abort()
        tr.abort()
        tr.close()
        assert tr.get_write_buffer_size() == 0
        await asyncio.wait_for(proto.lost, 5)
        # An absence check, not a wait: no second connection_lost in the next passes.
        for _ in range(10):
            await asyncio.sleep(0)
        assert [e for e in proto.events if isinstance(e, tuple)] == [("lost", None)]
        peer.close()

    run(loop_impl, main)


def test_extra_info(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        sock = tr.get_extra_info("socket")
        assert sock.fileno() >= 0
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("peername") == sock.getpeername()
        assert tr.get_extra_info("nonexistent", "dflt") == "dflt"
        assert tr.get_protocol() is proto
        tr.close()
        await proto.lost
        peer.close()

    run(loop_impl, main)


class Buffered(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(7)
        self.got = bytearray()
        self.lost = None

    def connection_made(self, transport: Any) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int) -> bytearray:
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.got += self.buf[:nbytes]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(exc)


def test_buffered_protocol_small_buffer(loop_impl: Any) -> None:
    async def main() -> None:
        proto = Buffered()
        tr, peer = await _pair(proto)
        payload = bytes(range(200)) * 50
        await asyncio.get_running_loop().sock_sendall(peer, payload)
        peer.shutdown(socket.SHUT_WR)
        assert await asyncio.wait_for(proto.lost, 5) is None
        assert bytes(proto.got) == payload
        peer.close()

    run(loop_impl, main)


def test_protocol_exception_is_fatal_and_reported(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        contexts: list[dict] = []
        loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

        class Bad(Recorder):
            def data_received(self, data: bytes) -> None:
                raise ZeroDivisionError

        proto = Bad()
        tr, peer = await _pair(proto)
        await loop.sock_sendall(peer, b"x")
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, ZeroDivisionError)
        assert contexts and "data_received" in contexts[0]["message"]
        assert contexts[0]["transport"] is tr and contexts[0]["protocol"] is proto
        peer.close()

    run(loop_impl, main)


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/fd")
def test_no_fd_leak(loop_impl: Any) -> None:
    import os

    async def main() -> None:
        for _ in range(50):
            proto = Recorder()
            tr, peer = await _pair(proto)
            tr.write(b"data")
            tr.close()
            await proto.lost
            peer.close()

    before = len(os.listdir("/proc/self/fd"))
    run(loop_impl, main)
    assert len(os.listdir("/proc/self/fd")) <= before


def test_abort_after_close_flushed_is_a_no_op() -> None:
    """tideloop only: asyncio's abort() after a flushed close() fails on its cleared loop."""
    import tideloop

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.write(b"q" * (4 << 20))  # buffered, so close() waits for the flush
        tr.close()
        assert await _read_all(peer, 4 << 20) == b"q" * (4 << 20)
        await asyncio.wait_for(proto.lost, 5)
        tr.abort()  # must not raise
        tr.close()
        await asyncio.sleep(0)
        assert [e for e in proto.events if isinstance(e, tuple)] == [("lost", None)]
        peer.close()

    run(tideloop.new_event_loop, main)
