"""create_connection's Happy Eyeballs (RFC 8305) and tideloop's staggered_race, black-box.

Every test that takes ``loop_impl`` runs on tideloop and on stock asyncio (ids ``tide`` /
``aio``) with the same assertions; error messages (which list the attempts in the order they
were made) are compared by running the same call on both loops. Tests of behaviour where
stock asyncio is wrong run on tideloop only and say why.

A "slow" address is a loopback listener with backlog 0 whose accept queue is filled: Linux
drops further SYNs, so a connect() to it stays in progress (for minutes) until cancelled.
Every test checks that no file descriptor is left open (``/proc/self/fd``).
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support import Signal, no_fd_leak, run  # noqa: F401 (no_fd_leak: the fixture pytestmark uses)

import tideloop

# Every test here fails if it leaves a file descriptor open.
pytestmark = pytest.mark.usefixtures("no_fd_leak")

TIMEOUT = 10.0  # a hang guard, not a timing assertion
LoopFactory = Callable[[], asyncio.AbstractEventLoop]
FACTORIES = {"tide": tideloop.new_event_loop, "aio": asyncio.new_event_loop}


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6()


def outcome(factory: LoopFactory, coro_fn: Callable[[], Any]) -> tuple[type, str] | None:
    """(type, str) of what coro_fn() raises on a fresh loop from factory, None if nothing."""
    try:
        run(factory, coro_fn)
    except Exception as exc:
        return type(exc), str(exc)
    return None


class Proto(asyncio.Protocol):
    """Records the protocol calls; ``lost`` is done at connection_lost."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.events: list[str] = []
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")
        self.lost.set_result(exc)


class Listener:
    """A non-blocking listening socket, closed (with what it accepted) by close()."""

    def __init__(self, family: int = socket.AF_INET, host: str = "127.0.0.1", backlog=100):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(backlog)
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.port = self.addr[1]
        self.extra: list[socket.socket] = []

    async def accept(self) -> socket.socket:
        conn, _ = await asyncio.get_running_loop().sock_accept(self.sock)
        self.extra.append(conn)
        return conn

    def close(self) -> None:
        for s in self.extra:
            s.close()
        self.sock.close()


def accept_queue_slots(sock: socket.socket) -> int:
    """How many connections the listening sock queues before Linux drops SYNs.

    Linux queues max_ack_backlog + 1; max_ack_backlog is read back (TCP_INFO's tcpi_sacked,
    for a listener) rather than taken from listen()'s argument: PyPy raises 0 to 1.
    """
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    (max_ack_backlog,) = struct.unpack_from("=I", info, 28)
    return max_ack_backlog + 1


def slow_listener(family: int = socket.AF_INET, host: str = "127.0.0.1") -> Listener:
    """A listener whose accept queue is full: a connect() to it stays in progress."""
    lst = Listener(family, host, backlog=0)
    for _ in range(accept_queue_slots(lst.sock)):
        filler = socket.socket(family, socket.SOCK_STREAM)
        lst.extra.append(filler)
        filler.connect(lst.addr)  # takes a slot; never accepted
    return lst


def connecting_to(port: int) -> int:
    """How many IPv4 sockets are in SYN_SENT towards ``port`` (Linux: /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[2].split(":")[1], 16) == port and fields[3] == "02":  # SYN_SENT
                count += 1
    return count


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def refused_port() -> int:
    return free_port()  # nothing listens there once the socket is closed


def fake_getaddrinfo(loop: Any, table: dict) -> None:
    """Make loop.getaddrinfo answer table[host] for the hosts in it (asyncio's tests do this)."""
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in table:
            return list(table[host])
        return await real(host, port, *args, **kwargs)

    loop.getaddrinfo = getaddrinfo


def tcp_info(host: str, port: int) -> tuple:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    addr = (host, port, 0, 0) if family == socket.AF_INET6 else (host, port)
    return (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", addr)


# ---------------------------------------------------------------------- Happy Eyeballs


def test_happy_eyeballs_slow_first_address(loop_impl: LoopFactory) -> None:
    """The first address never answers: after the delay the second is tried and wins."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        slow, good = slow_listener(), Listener()
        try:
            fake_getaddrinfo(
                loop,
                {"h": [tcp_info("127.0.0.1", slow.port), tcp_info("127.0.0.1", good.port)]},
            )
            tr, pr = await loop.create_connection(Proto, "h", 80, happy_eyeballs_delay=0.05)
            assert tr.get_extra_info("peername") == good.addr
            peer = await good.accept()
            tr.write(b"x")
            assert await loop.sock_recv(peer, 1) == b"x"
            tr.close()
            await pr.lost
        finally:
            slow.close()
            good.close()

    run(loop_impl, main)


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
def test_happy_eyeballs_interleaves_families(loop_impl: LoopFactory) -> None:
    """[v6 slow, v6 slow, v4 good]: interleaving tries v4 second, so it wins."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        slow1 = slow_listener(socket.AF_INET6, "::1")
        slow2 = slow_listener(socket.AF_INET6, "::1")
        good = Listener()
        try:
            infos = [
                tcp_info("::1", slow1.port),
                tcp_info("::1", slow2.port),
                tcp_info("127.0.0.1", good.port),
            ]
            fake_getaddrinfo(loop, {"h": infos})
            tr, pr = await loop.create_connection(Proto, "h", 80, happy_eyeballs_delay=0.05)
            assert tr.get_extra_info("peername") == good.addr
            tr.close()
            await pr.lost
        finally:
            for lst in (slow1, slow2, good):
                lst.close()

    run(loop_impl, main)


@pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"interleave": 1},
        {"interleave": 2},
        {"happy_eyeballs_delay": 0.5},
        {"happy_eyeballs_delay": 0.5, "interleave": 0},
        {"happy_eyeballs_delay": 0.5, "interleave": 2},
    ],
    ids=repr,
)
def test_attempt_order_same_on_both_loops(kwargs: dict) -> None:
    """All refused: 'Multiple exceptions' lists the attempts in the order they were made."""
    ports = [refused_port() for _ in range(5)]
    infos = [tcp_info("::1", ports[0]), tcp_info("::1", ports[1]), tcp_info("::1", ports[2])]
    infos += [tcp_info("127.0.0.1", ports[3]), tcp_info("127.0.0.1", ports[4])]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fake_getaddrinfo(loop, {"h": infos})
        await loop.create_connection(Proto, "h", 80, **kwargs)

    tide, aio = outcome(FACTORIES["tide"], main), outcome(FACTORIES["aio"], main)
    assert tide == aio
    assert tide is not None and tide[1].startswith("Multiple exceptions:")


def test_happy_eyeballs_failure_starts_next_at_once(loop_impl: LoopFactory) -> None:
    """A refused first attempt starts the second without waiting for the (long) delay."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        good = Listener()
        try:
            infos = [tcp_info("127.0.0.1", refused_port()), tcp_info("127.0.0.1", good.port)]
            fake_getaddrinfo(loop, {"h": infos})
            # TIMEOUT guards the whole test; a 1000 s delay would trip it if it were waited.
            tr, pr = await loop.create_connection(Proto, "h", 80, happy_eyeballs_delay=1000)
            assert tr.get_extra_info("peername") == good.addr
            tr.close()
            await pr.lost
        finally:
            good.close()

    run(loop_impl, main)


def test_happy_eyeballs_with_local_addr(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        slow, good = slow_listener(), Listener()
        try:
            infos = [tcp_info("127.0.0.1", slow.port), tcp_info("127.0.0.1", good.port)]
            fake_getaddrinfo(loop, {"h": infos})
            tr, pr = await loop.create_connection(
                Proto, "h", 80, happy_eyeballs_delay=0.05, local_addr=("127.0.0.1", 0)
            )
            assert tr.get_extra_info("peername") == good.addr
            assert tr.get_extra_info("sockname")[0] == "127.0.0.1"
            tr.close()
            await pr.lost
        finally:
            slow.close()
            good.close()

    run(loop_impl, main)


@pytest.mark.parametrize("he", [None, 0.05], ids=["seq", "he"])
def test_cancel_pending_connect_closes_sockets(loop_impl: LoopFactory, he: Any) -> None:
    """Cancelled while every attempt hangs: CancelledError, every attempt's socket closed."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        slow1, slow2 = slow_listener(), slow_listener()
        try:
            infos = [tcp_info("127.0.0.1", slow1.port), tcp_info("127.0.0.1", slow2.port)]
            fake_getaddrinfo(loop, {"h": infos})
            task = asyncio.ensure_future(
                loop.create_connection(Proto, "h", 80, happy_eyeballs_delay=he)
            )
            # Until both attempts started (he) / the first one (seq): a connect in progress
            # has no callback, so this polls (bounded) the kernel's socket table.
            expected = (1, 1) if he else (1, 0)
            async with asyncio.timeout(10):
                while (connecting_to(slow1.port), connecting_to(slow2.port)) != expected:
                    await asyncio.sleep(0.01)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            slow1.close()
            slow2.close()

    run(loop_impl, main)


def test_timeout_around_happy_eyeballs(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        slow1, slow2 = slow_listener(), slow_listener()
        try:
            infos = [tcp_info("127.0.0.1", slow1.port), tcp_info("127.0.0.1", slow2.port)]
            fake_getaddrinfo(loop, {"h": infos})
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await loop.create_connection(Proto, "h", 80, happy_eyeballs_delay=0.01)
            assert asyncio.current_task().cancelling() == 0
        finally:
            slow1.close()
            slow2.close()

    run(loop_impl, main)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are new in 3.12")
def test_happy_eyeballs_with_eager_task_factory() -> None:
    """tideloop only: stock 3.12/3.13.0 staggered_race asserts under eager tasks (gh-124309)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        slow, good = slow_listener(), Listener()
        try:
            infos = [
                tcp_info("127.0.0.1", refused_port()),
                tcp_info("127.0.0.1", slow.port),
                tcp_info("127.0.0.1", good.port),
            ]
            fake_getaddrinfo(loop, {"h": infos})
            tr, pr = await loop.create_connection(Proto, "h", 80, happy_eyeballs_delay=0.05)
            assert tr.get_extra_info("peername") == good.addr
            tr.close()
            await pr.lost
        finally:
            slow.close()
            good.close()

    run(tideloop.new_event_loop, main)


# ---------------------------------------------------------------------- staggered_race


def _race_cases() -> dict[str, tuple[list, Any]]:
    async def ok(value: Any, delay: float = 0) -> Any:
        await asyncio.sleep(delay)
        return value

    async def fail(exc: BaseException, delay: float = 0) -> Any:
        await asyncio.sleep(delay)
        raise exc

    def fns(*specs: tuple) -> list:
        return [lambda spec=spec: spec[0](*spec[1:]) for spec in specs]

    return {
        "empty": ([], 0.01),
        "first wins": (fns((ok, "a")), None),
        "second wins": (fns((fail, OSError("x")), (ok, "b")), None),
        "all fail": (fns((fail, OSError("x")), (fail, ValueError("y"))), None),
        "slow first": (fns((ok, "a", 5), (ok, "b")), 0.01),
        "failure starts next": (fns((fail, OSError("x"), 0.01), (ok, "b")), 5),
        "sequential": (fns((ok, "a", 0.02), (ok, "b")), None),
    }


@pytest.mark.parametrize("name", list(_race_cases()))
def test_staggered_race_matches_asyncio(loop_impl: LoopFactory, name: str) -> None:
    from asyncio.staggered import staggered_race as aio_race

    from tideloop._net.staggered import staggered_race

    async def main() -> None:
        results = []
        for race in (aio_race, staggered_race):
            fns, delay = _race_cases()[name]
            winner, index, excs = await race(fns, delay)
            results.append((winner, index, [type(e) for e in excs]))
        assert results[0] == results[1]

    run(loop_impl, main)


def test_staggered_race_cancelled_waits_for_attempts(loop_impl: LoopFactory) -> None:
    from tideloop._net.staggered import staggered_race

    async def main() -> None:
        started: list[int] = []
        finished: list[int] = []
        starting = Signal()

        async def attempt(i: int) -> None:
            started.append(i)
            starting.notify()
            try:
                await asyncio.sleep(100)
            finally:
                # Not a wait for anything: a cleanup that takes a while (on a timer), which
                # the race must wait for.
                await asyncio.sleep(0.01)
                finished.append(i)

        race = asyncio.ensure_future(
            staggered_race([lambda i=i: attempt(i) for i in range(3)], 0.01)
        )
        await starting.until(lambda: len(started) == 3)  # until all three run
        race.cancel()
        with pytest.raises(asyncio.CancelledError):
            await race
        assert sorted(finished) == [0, 1, 2]  # all cleaned up before the race returned

    run(loop_impl, main)


def test_staggered_race_discards_late_winner(loop_impl: LoopFactory) -> None:
    from tideloop._net.staggered import staggered_race

    async def main() -> None:
        discarded: list[Any] = []

        async def stubborn() -> str:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                return "late"  # swallows the cancellation and "succeeds"
            return "never"

        async def quick() -> str:
            # Not a wait for anything: an attempt that takes a while (10 ms after the 1 ms
            # stagger), so that stubborn runs when it wins.
            await asyncio.sleep(0.01)
            return "quick"

        winner, index, _ = await staggered_race([stubborn, quick], 0.001, discard=discarded.append)
        assert (winner, index, discarded) == ("quick", 1, ["late"])

        # The race itself cancelled after a winner was found (while a loser still cleans
        # up): the race raises CancelledError and the winner is discarded too.
        discarded.clear()
        won = asyncio.Event()

        async def slow_cleanup() -> None:
            try:
                await asyncio.sleep(100)
            finally:
                await asyncio.sleep(100)  # ends when cancelled again

        async def winner_fn() -> str:
            await asyncio.sleep(0.01)  # not a wait for anything: an attempt that takes a while
            won.set()
            return "winner"

        race = asyncio.ensure_future(
            staggered_race([slow_cleanup, winner_fn], 0.001, discard=discarded.append)
        )
        await won.wait()
        race.cancel()
        with pytest.raises(asyncio.CancelledError):
            await race
        assert discarded == ["winner"]

    run(loop_impl, main)


def test_staggered_race_iterable_error(loop_impl: LoopFactory) -> None:
    from tideloop._net.staggered import staggered_race

    async def main() -> None:
        started: list[str] = []

        async def slow() -> None:
            started.append("slow")
            try:
                await asyncio.sleep(100)
            finally:
                started.append("cleaned")

        def fns() -> Iterator[Any]:
            yield slow
            raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await staggered_race(fns(), 0.01)
        assert started == ["slow", "cleaned"]

    run(loop_impl, main)
