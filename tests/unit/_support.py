"""Helpers shared by the unit tests (importable as ``_support``: pyproject's pytest
``pythonpath`` puts tests/unit on sys.path; tideloop itself still comes from the install).

- ``run(factory, coro_fn)``: run ``coro_fn()`` on a fresh loop from ``factory`` (asyncio's or
  tideloop's, the ``loop_impl`` fixture) under ``asyncio.Runner``, bounded by a timeout that
  guards against hangs (never a timing assertion); ``run_on(loop, coro)`` the same on a given
  loop.
- ``open_fds()`` and the ``no_fd_leak`` fixture (a module opts in by importing it, or by
  wrapping it in an autouse fixture): the test fails if it leaves a file descriptor open.
- ``connected_pair()``: two connected non-blocking TCP sockets with small kernel buffers.
- ``Recorder`` (stream protocols) and ``DatagramRecorder``: record protocol calls in order and
  resolve futures the tests wait on instead of sleeping; ``Recorder.until(pred)`` waits for
  any recorded state, woken by the protocol callbacks (a ``Signal``).
- ``Signal``: ``notify()`` from a callback, ``await until(pred)`` in the test: the condition
  is re-checked at each notification, never polled.
- ``passes(n)``: n loop passes (``await asyncio.sleep(0)`` each: one poll of the sockets per
  pass), for absence checks ("nothing happens") and for letting tasks take their first steps.
- ``readable(sock)``: until the loop sees ``sock`` readable (add_reader, no polling).
- ``Collector``: a protocol factory that keeps what it made; ``await get(i)`` waits for the
  i-th protocol (for servers, whose protocols the test does not create itself).
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Generic, TypeVar

import pytest

P = TypeVar("P")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

TIMEOUT = 20.0  # a hang guard, not a timing assertion


def run(
    factory: LoopFactory,
    coro_fn: Callable[[], Awaitable[Any]],
    *,
    timeout: float = TIMEOUT,
    debug: bool | None = None,
) -> Any:
    """``coro_fn()``'s result, run on a new loop from ``factory`` that is closed afterwards."""

    async def bounded() -> Any:
        async with asyncio.timeout(timeout):
            return await coro_fn()

    with asyncio.Runner(loop_factory=factory, debug=debug) as runner:
        return runner.run(bounded())


def run_on(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], timeout: float = TIMEOUT
) -> Any:
    """``coro``'s result, run on ``loop`` (left open), bounded by ``timeout``."""
    return loop.run_until_complete(asyncio.wait_for(coro, timeout))


def open_fds() -> set[int]:
    """This process's open file descriptors (Linux: /proc/self/fd)."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture
def no_fd_leak() -> Iterator[None]:
    """Fail the test if it leaves a file descriptor open."""
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    leaked = []
    for fd in sorted(open_fds() - before):
        try:
            leaked.append(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass  # the directory fd of os.listdir itself
    assert not leaked, f"file descriptors leaked: {leaked}"


async def passes(n: int = 10) -> None:
    """``n`` passes of the running loop."""
    for _ in range(n):
        await asyncio.sleep(0)


async def readable(sock: Any, timeout: float = TIMEOUT) -> None:
    """Until the running loop sees ``sock`` (a socket, or an fd, that no transport owns)
    readable."""
    fd = sock if isinstance(sock, int) else sock.fileno()
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_ready() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_ready)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        loop.remove_reader(fd)


class Signal:
    """Wakes its waiters at each ``notify()``: ``until(pred)`` re-checks ``pred`` then.

    Made inside a running loop; notify() is called from that loop (a protocol callback).
    """

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def until(self, pred: Callable[[], object], timeout: float = TIMEOUT) -> None:
        """Return once ``pred()`` holds (checked now and after each notify); the timeout is
        a hang guard."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            while not pred():
                waiter = loop.create_future()
                self._waiters.append(waiter)
                await waiter


class Collector(Generic[P]):
    """A protocol factory that keeps each protocol ``make()`` returns, in order.

    ``await get(i)`` waits until the factory has made an i-th one (0-based) and returns it.
    """

    def __init__(self, make: Callable[[], P]) -> None:
        self.make = make
        self.made: list[P] = []
        self._signal = Signal()

    def __call__(self) -> P:
        self.made.append(self.make())
        self._signal.notify()
        return self.made[-1]

    async def get(self, i: int = 0, timeout: float = TIMEOUT) -> P:
        await self._signal.until(lambda: len(self.made) > i, timeout)
        return self.made[i]


class Recorder(asyncio.Protocol):
    """Records the protocol calls in order (consecutive reads as one ``"data"``).

    Made inside a running loop. ``made`` and ``lost`` are futures resolved by connection_made
    (with the transport) and connection_lost (with its argument; a second call raises);
    ``got`` is set by each read. ``echo`` writes back what arrives; ``keep_open`` is what
    eof_received returns. ``until(pred)`` waits until ``pred()`` holds, re-checked after each
    callback.
    """

    def __init__(self, *, echo: bool = False, keep_open: bool = False) -> None:
        self.echo = echo
        self.keep_open = keep_open
        self.events: list[Any] = []
        self.data = bytearray()
        self.transport: Any = None
        self.size_at_pause: int | None = None
        loop = asyncio.get_running_loop()
        self.made: asyncio.Future[Any] = loop.create_future()
        self.lost: asyncio.Future[BaseException | None] = loop.create_future()
        self.got = asyncio.Event()
        self.changed = Signal()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")
        self.made.set_result(transport)
        self.changed.notify()

    def data_received(self, data: bytes) -> None:
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        self.got.set()
        self.changed.notify()
        if self.echo:
            self.transport.write(data)

    def eof_received(self) -> bool:
        self.events.append("eof")
        self.changed.notify()
        return self.keep_open

    def pause_writing(self) -> None:
        self.events.append("pause")
        self.size_at_pause = self.transport.get_write_buffer_size()
        self.changed.notify()

    def resume_writing(self) -> None:
        self.events.append("resume")
        self.changed.notify()

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.append(("lost", exc))
        if self.lost.done():
            raise AssertionError(f"connection_lost called twice: {self.events}")
        self.lost.set_result(exc)
        self.changed.notify()

    async def wait_for_bytes(self, n: int, timeout: float = 10.0) -> bytes:
        """All data received, once there are at least ``n`` bytes."""
        async with asyncio.timeout(timeout):
            while len(self.data) < n:
                self.got.clear()
                await self.got.wait()
        return bytes(self.data)

    async def until(self, pred: Callable[[], object], timeout: float = TIMEOUT) -> None:
        """Return once ``pred()`` holds, re-checked after each protocol callback."""
        await self.changed.until(pred, timeout)


class DatagramRecorder(asyncio.DatagramProtocol):
    """Records the datagram protocol calls in order; ``wait_for(n)`` waits for n datagrams.

    ``lost`` / ``error`` are futures resolved by connection_lost and the first
    error_received; ``echo`` sends each datagram back to its sender.
    """

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.events: list[Any] = []
        self.datagrams: list[tuple[bytes, Any]] = []
        self.errors: list[Exception] = []
        self.transport: Any = None
        loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[Exception | None] = loop.create_future()
        self.error: asyncio.Future[Exception] = loop.create_future()
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.events.append("data")
        self.datagrams.append((data, addr))
        if self.echo:
            self.transport.sendto(data, addr)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def error_received(self, exc: Exception) -> None:
        self.events.append(("error", type(exc)))
        self.errors.append(exc)
        if not self.error.done():
            self.error.set_result(exc)

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        if self.lost.done():
            raise AssertionError(f"connection_lost called twice: {self.events}")
        self.lost.set_result(exc)

    async def wait_for(self, n: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.datagrams) < n:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter


async def connected_pair() -> tuple[socket.socket, socket.socket]:
    """(client, peer): connected non-blocking TCP sockets on 127.0.0.1 with small kernel
    buffers (4 KiB), so that writes fill them soon."""
    loop = asyncio.get_running_loop()
    with socket.socket() as lsock:
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client.setblocking(False)
        await loop.sock_connect(client, lsock.getsockname())
        peer, _ = await loop.sock_accept(lsock)
    peer.setblocking(False)
    return client, peer
