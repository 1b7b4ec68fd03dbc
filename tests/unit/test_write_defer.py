"""The stream transport's deferred writes: what a pass writes leaves at the pass's end.

tideloop's TCP/Unix transport sends the writes made while the loop runs when the pass ends,
all of one transport's in one ``sendmsg`` (asyncio and uvloop try a ``send`` per write).
The documented contract ("write() buffers the data and arranges for it to be sent out
asynchronously", pause_writing() above the high watermark) is the same on both loops, and
these tests check it on both (ids ``tide`` / ``aio``); where the loops differ on purpose
(one send instead of two, what abort() drops), the test says so and checks tideloop's.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from _support import TIMEOUT, LoopFactory, Recorder, passes, run


async def _pair(
    proto: asyncio.BaseProtocol, kind: int = socket.SOCK_STREAM
) -> tuple[Any, socket.socket]:
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair(socket.AF_UNIX, kind)
    peer.setblocking(False)
    if kind == socket.SOCK_STREAM:
        transport, _ = await loop.connect_accepted_socket(lambda: proto, ours)
    else:
        # connect_accepted_socket wants SOCK_STREAM; a SEQPACKET pair keeps each send a
        # record, which is what shows how many sends a transport made.
        from tideloop._transports.stream import make_stream_transport

        waiter = loop.create_future()
        transport = make_stream_transport(loop, ours, proto, waiter)
        await waiter
    return transport, peer


async def _recv_until_eof(peer: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    got = b""
    while chunk := await loop.sock_recv(peer, 1 << 16):
        got += chunk
    return got


def test_two_writes_of_one_callback_are_one_send() -> None:
    """On tideloop the peer receives one record for two writes; asyncio sends two."""
    import tideloop

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        proto = Recorder()
        tr, peer = await _pair(proto, socket.SOCK_SEQPACKET)
        tr.write(b"head;")
        tr.writelines([b"body", bytearray(b";")])
        tr.write(memoryview(b"tail"))
        assert tr.get_write_buffer_size() == 0  # deferred bytes are not counted
        records = [await asyncio.wait_for(loop.sock_recv(peer, 100), TIMEOUT)]
        tr.write(b"again")
        records.append(await asyncio.wait_for(loop.sock_recv(peer, 100), TIMEOUT))
        # A first write that is not bytes would need a copy to be kept: it goes at once.
        tr.write(bytearray(b"now"))
        tr.write(b"later")
        records.append(await asyncio.wait_for(loop.sock_recv(peer, 100), TIMEOUT))
        records.append(await asyncio.wait_for(loop.sock_recv(peer, 100), TIMEOUT))
        tr.close()
        await proto.lost
        peer.close()
        return records

    assert run(tideloop.new_event_loop, main) == [b"head;body;tail", b"again", b"now", b"later"]


def test_writes_arrive_in_order_across_passes(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        expected = b""
        for i in range(50):
            piece = str(i).encode() * (i + 1)
            tr.write(piece)
            expected += piece
            if i % 7 == 0:
                await asyncio.sleep(0)
        big = b"B" * 300_000  # over the high watermark: sent at once, the rest buffered
        tr.write(big)
        tr.write(b"end")
        tr.write_eof()
        assert await asyncio.wait_for(_recv_until_eof(peer), TIMEOUT) == expected + big + b"end"
        tr.close()
        await proto.lost
        peer.close()

    run(loop_impl, main)


def test_a_pass_the_kernel_takes_part_of_arrives_whole(loop_impl: LoopFactory) -> None:
    """Forty writes in one pass, more than the peer's and our kernel buffers hold: the rest
    is buffered and sent as the peer reads, in order."""

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        pieces = [bytes([65 + i % 26]) * 1500 for i in range(40)]
        for piece in pieces:
            tr.write(piece)
        await passes(2)
        assert tr.get_write_buffer_size() > 0  # the kernel refused part of it
        tr.close()
        assert await asyncio.wait_for(_recv_until_eof(peer), TIMEOUT) == b"".join(pieces)
        assert await proto.lost is None
        peer.close()

    run(loop_impl, main)


def test_a_transport_flushed_early_and_written_again_keeps_the_others(
    loop_impl: LoopFactory,
) -> None:
    """Three transports write in one pass; the middle one goes over 64 KiB (sent at once)
    and writes again. Every peer gets everything (a chained flush must survive a transport
    that is flushed early and deferred again)."""

    async def main() -> None:
        pairs = []
        for _ in range(3):
            proto = Recorder()
            tr, peer = await _pair(proto)
            pairs.append((tr, peer, proto))
        (a, _, _), (b, _, _), (c, _, _) = pairs
        a.write(b"a1")
        b.write(b"b1")
        c.write(b"c1")
        b.write(b"B" * 70_000)
        b.write(b"b2")
        a.write(b"a2")
        expected = [b"a1a2", b"b1" + b"B" * 70_000 + b"b2", b"c1"]
        loop = asyncio.get_running_loop()
        # Read, not write_eof() first: write_eof() would send a lost transport's bytes.
        for (_tr, peer, _proto), want in reversed(list(zip(pairs, expected, strict=True))):
            got = b""
            while len(got) < len(want):
                got += await asyncio.wait_for(loop.sock_recv(peer, 1 << 17), TIMEOUT)
            assert got == want
        for tr, peer, proto in pairs:
            tr.close()
            await proto.lost
            peer.close()

    run(loop_impl, main)


def test_writelines_over_the_limit_after_a_write(loop_impl: LoopFactory) -> None:
    """A write, then writelines() whose items take the pass over 64 KiB: the bytes are sent
    at once part way through the list, and the items after that still arrive, in order."""

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        items = [b"x" * 40_000, bytearray(b"y" * 40_000), b"z", memoryview(b"w" * 30_000)]
        tr.write(b"a")
        tr.writelines(items)
        tr.write(b"end")
        tr.write_eof()
        want = b"a" + b"".join(bytes(i) for i in items) + b"end"
        assert await asyncio.wait_for(_recv_until_eof(peer), TIMEOUT) == want
        tr.close()
        assert await proto.lost is None
        peer.close()

    run(loop_impl, main)


def test_a_producer_writing_until_paused_is_paused(loop_impl: LoopFactory) -> None:
    """``while not paused: write()`` must end: deferral never holds back pause_writing."""

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        tr.set_write_buffer_limits(high=16_384)
        writes = 0
        while "pause" not in proto.events:
            tr.write(b"p" * 1000)
            writes += 1
            assert writes < 10_000, "pause_writing never came"
        # Paused synchronously, by the write that left more than high unsent.
        assert tr.get_write_buffer_size() > 16_384
        assert proto.size_at_pause is not None and proto.size_at_pause > 16_384
        got = b""
        loop = asyncio.get_running_loop()
        while "resume" not in proto.events:
            got += await asyncio.wait_for(loop.sock_recv(peer, 1 << 16), TIMEOUT)
        tr.abort()
        await proto.lost
        peer.close()

    run(loop_impl, main)


def test_close_after_writes_sends_them_then_eof(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.write(b"one ")
        tr.writelines([b"two ", b"three"])
        tr.close()
        assert await asyncio.wait_for(_recv_until_eof(peer), TIMEOUT) == b"one two three"
        assert await proto.lost is None
        peer.close()

    run(loop_impl, main)


def test_write_eof_after_writes_sends_them_first(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.write(b"before eof")
        tr.write_eof()
        assert await asyncio.wait_for(_recv_until_eof(peer), TIMEOUT) == b"before eof"
        tr.close()
        await proto.lost
        peer.close()

    run(loop_impl, main)


def test_the_last_pass_sends_before_the_loop_stops(loop_impl: LoopFactory) -> None:
    """A coroutine that writes and returns: its bytes are out when run_until_complete()
    returns, so a blocking read with the loop stopped gets them (and close() loses none)."""
    loop = loop_impl()
    try:

        async def connect() -> tuple[Any, Any, socket.socket]:
            proto = Recorder()
            tr, peer = await _pair(proto)
            return tr, proto, peer

        tr, proto, peer = loop.run_until_complete(connect())

        async def write_and_return() -> None:
            tr.write(b"last words")

        loop.run_until_complete(write_and_return())
        peer.settimeout(TIMEOUT)
        assert peer.recv(100) == b"last words"
        # Made while the loop is stopped: sent at once, as nothing would end a pass.
        tr.write(b"outside")
        assert tr.get_write_buffer_size() == 0
        assert peer.recv(100) == b"outside"
        tr.close()
        loop.run_until_complete(proto.lost)
        peer.close()
    finally:
        loop.close()


def test_abort_after_writes_sends_what_the_kernel_takes(loop_impl: LoopFactory) -> None:
    """abort() loses what is buffered, but asyncio's write() has already handed its bytes
    to the kernel: tideloop sends the pass's deferred bytes before aborting, so the peer
    gets them on both loops."""

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.write(b"last ")
        tr.write(b"words")
        tr.abort()
        assert tr.get_write_buffer_size() == 0
        assert await proto.lost is None
        assert await asyncio.wait_for(_recv_until_eof(peer), TIMEOUT) == b"last words"
        peer.close()

    run(loop_impl, main)


def test_a_failed_deferred_send_loses_the_connection_once(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        peer.close()
        await passes(3)
        tr.write(b"to nobody")
        exc = await asyncio.wait_for(proto.lost, TIMEOUT)
        # The peer's close is seen either by the read (EOF: None) or by the send (an error).
        assert exc is None or isinstance(exc, OSError)
        assert [e for e in proto.events if isinstance(e, tuple)] == [("lost", exc)]

    run(loop_impl, main)


def test_set_write_buffer_limits_sends_deferred_bytes_first() -> None:
    """Lowering high below what a pass deferred must not pause a protocol whose bytes the
    kernel takes (asyncio, sending at write(), would not pause either)."""
    import tideloop

    async def main() -> None:
        proto = Recorder()
        tr, peer = await _pair(proto)
        tr.write(b"x" * 5000)
        tr.set_write_buffer_limits(high=100)
        assert tr.get_write_buffer_size() == 0
        assert "pause" not in proto.events
        loop = asyncio.get_running_loop()
        got = b""
        while len(got) < 5000:
            got += await asyncio.wait_for(loop.sock_recv(peer, 1 << 16), TIMEOUT)
        tr.close()
        await proto.lost
        peer.close()

    run(tideloop.new_event_loop, main)
