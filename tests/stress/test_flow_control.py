"""Write flow control: the watermarks hold, and pause/resume and ``drain()`` follow them.

Over a TCP connection with small kernel buffers to a peer that reads at its own pace:

- after every ``write()`` (made only while not paused) the buffer holds at most high-water
  plus that write, and above high-water the protocol has already been paused;
- ``pause_writing`` / ``resume_writing`` strictly alternate, starting with pause, a pause is
  made above high and a resume at or below low, and the stream ends resumed;
- ``StreamWriter.drain()`` stays blocked while the buffer is above high-water, finishes once
  the peer reads, and then the buffer is at or below low-water;
- the limits at their edges: ``high=0``, ``high=0, low=0``, ``high=1``, ``high == low``,
  ``low`` only, as ``get_write_buffer_limits()`` reports them the way asyncio computes them.

Every byte is checked on the peer's side.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
from typing import Any

import pytest
from _support import connected_pair

HOST = "127.0.0.1"
TOTAL = 1 << 21  # bytes per connection

LIMITS: list[dict[str, int]] = [
    {},
    {"high": 0},
    {"high": 0, "low": 0},
    {"high": 1},
    {"high": 4096, "low": 4096},
    {"low": 1000},
    {"high": 100_000, "low": 10},
]


def expected_limits(high: int | None = None, low: int | None = None) -> tuple[int, int]:
    """asyncio's rule: (low, high), high defaulting to 4 * low or 64 KiB, low to high // 4."""
    if high is None:
        high = 64 * 1024 if low is None else 4 * low
    if low is None:
        low = high // 4
    return low, high


async def read_exactly(peer: socket.socket, n: int, rng: random.Random) -> str:
    """Read n bytes at random sizes from the raw peer socket; the SHA-256 of what came."""
    loop = asyncio.get_running_loop()
    h = hashlib.sha256()
    got = 0
    while got < n:
        chunk = await loop.sock_recv(peer, rng.choice([1, 100, 4096, 65536]))
        assert chunk, f"EOF after {got} of {n} bytes"
        got += len(chunk)
        h.update(chunk)
    assert got == n
    return h.hexdigest()


class Sender(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None
        self.paused = False
        self.events: list[tuple[str, int]] = []
        self.resumed = asyncio.Event()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def pause_writing(self) -> None:
        self.events.append(("pause", self.transport.get_write_buffer_size()))
        self.paused = True
        self.resumed.clear()

    def resume_writing(self) -> None:
        self.events.append(("resume", self.transport.get_write_buffer_size()))
        self.paused = False
        self.resumed.set()


def limits_id(limits: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in limits.items()) or "default"


def check_events(events: list[tuple[str, int]], low: int, high: int) -> None:
    names = [name for name, _ in events]
    assert names, "never paused: the test did not fill the buffer"
    assert names == ["pause", "resume"] * (len(names) // 2), f"not alternating: {names}"
    for name, size in events:
        if name == "pause":
            assert size > high, events
        else:
            assert size <= low, events


@pytest.mark.parametrize("limits", LIMITS, ids=limits_id)
def test_watermarks_hold(run: Any, seed: int, limits: dict[str, int]) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(seed)
        client, peer = await connected_pair()
        with peer:
            transport, proto = await loop.create_connection(Sender, sock=client)
            transport.set_write_buffer_limits(**limits)
            low, high = expected_limits(**limits)
            assert transport.get_write_buffer_limits() == (low, high)
            reading = asyncio.create_task(read_exactly(peer, TOTAL, random.Random(seed + 1)))
            sent = hashlib.sha256()
            data = random.Random(seed + 2).randbytes(TOTAL)
            pos = 0
            while pos < TOTAL:
                if proto.paused:
                    await proto.resumed.wait()
                    continue
                chunk = data[pos : pos + rng.choice([1, 7, 1000, 4096, 65536, 300_000])]
                transport.write(chunk)
                sent.update(chunk)
                pos += len(chunk)
                size = transport.get_write_buffer_size()
                assert size <= high + len(chunk), (size, high, len(chunk))
                assert size <= high or proto.paused, f"{size} > high {high}, not paused"
            assert await reading == sent.hexdigest()
            if proto.paused:  # the last pause's resume may come after the peer's last read
                await proto.resumed.wait()
            assert transport.get_write_buffer_size() == 0
            check_events(proto.events, low, high)
            transport.close()

    run(main)


DRAIN_LIMITS = [{}, {"high": 0}, {"high": 1}, {"high": 4096, "low": 4096}]


@pytest.mark.parametrize("limits", DRAIN_LIMITS, ids=limits_id)
def test_drain_blocks_above_high(run: Any, seed: int, limits: dict[str, int]) -> None:
    async def main() -> None:
        rng = random.Random(seed)
        client, peer = await connected_pair()
        with peer:
            reader, writer = await asyncio.open_connection(sock=client)
            writer.transport.set_write_buffer_limits(**limits)
            low, high = expected_limits(**limits)
            data = rng.randbytes(1 << 20)
            writer.write(data)
            assert writer.transport.get_write_buffer_size() > high
            drain = asyncio.create_task(writer.drain())
            for _ in range(20):  # loop iterations, not time: the peer has not read a byte
                await asyncio.sleep(0)
            assert not drain.done(), "drain() returned while the buffer is above high-water"
            # The peer reads a little: the buffer stays far above high, drain stays blocked.
            loop = asyncio.get_running_loop()
            first = await loop.sock_recv(peer, 1000)
            for _ in range(20):
                await asyncio.sleep(0)
            assert not drain.done(), "drain() returned while the buffer is above high-water"
            rest = asyncio.create_task(read_exactly(peer, len(data) - len(first), rng))
            await drain
            assert writer.transport.get_write_buffer_size() <= low
            assert data.startswith(first)
            assert await rest == hashlib.sha256(data[len(first) :]).hexdigest()
            writer.close()
            await writer.wait_closed()

    run(main)
