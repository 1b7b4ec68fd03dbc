"""loop.getaddrinfo / getnameinfo tests, on tideloop and stock asyncio (ids ``tide`` / ``aio``).

Results must equal ``socket.getaddrinfo``'s for the same arguments on both loops. tideloop
answers numeric lookups on the loop thread; tests of that (and of the private
``_ensure_resolved`` / ``_ipaddr_info``) use ``tide_loop``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
from asyncio import base_events
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support import run_on

import tideloop
from tideloop._net import dns

TIMEOUT = 10.0
HAS_IPV6 = socket.has_ipv6


class RecordingExecutor(concurrent.futures.ThreadPoolExecutor):
    """A default executor that counts the calls it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.calls: list[Any] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(fn)
        return super().submit(fn, *args, **kwargs)


def _make_loop(factory: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[Any]:
    loop = factory()
    loop.executor = RecordingExecutor()
    loop.set_default_executor(loop.executor)
    try:
        yield loop
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.fixture
def loop(loop_impl: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[Any]:
    yield from _make_loop(loop_impl)


@pytest.fixture
def tide_loop() -> Iterator[Any]:
    yield from _make_loop(tideloop.new_event_loop)



def outcome(func: Callable[[], Any]) -> Any:
    """The result, or (exception type, args): errors must match too."""
    try:
        return func()
    except Exception as exc:
        return type(exc), exc.args


async def _await(coro: Any) -> Any:
    return await coro


def loop_outcome(loop: Any, coro: Any) -> Any:
    return outcome(lambda: run_on(loop, _await(coro)))


V6 = socket.AF_INET6 if HAS_IPV6 else socket.AF_INET
# Lookups that the C library answers without NSS: tideloop runs them on the loop thread.
NUMERIC = [
    ("127.0.0.1", 80, {}),
    ("127.0.0.1", "8080", {"type": socket.SOCK_STREAM}),
    (b"127.0.0.1", b"53", {"type": socket.SOCK_DGRAM}),
    ("127.0.0.1", None, {"family": socket.AF_INET}),
    ("127.0.0.1", 0, {"proto": socket.IPPROTO_UDP}),
    ("10.1.2.3", 443, {"flags": socket.AI_NUMERICSERV}),
    ("::1", 80, {"family": V6}),
    ("fe80::1", 80, {"type": socket.SOCK_STREAM}),
    ("::ffff:127.0.0.1", 1, {}),
    (None, 80, {"flags": socket.AI_PASSIVE}),
    (None, 80, {"type": socket.SOCK_STREAM}),
    (None, None, {}),  # gaierror, raised on the loop thread
    ("127.0.0.1", 80, {"type": socket.SOCK_RAW}),
    ("127.0.0.1", 70000, {}),
    ("0.0.0.0", 80, {"flags": socket.AI_PASSIVE | socket.AI_ADDRCONFIG}),
]
# Lookups that go to the executor, on both loops.
THREADED = [
    ("localhost", 80, {}),
    ("localhost", "http", {"type": socket.SOCK_STREAM}),
    ("127.0.0.1", "http", {}),  # service name
    ("127.0.0.1", "", {}),  # empty service: left to the C library
    ("127.0.0.1", 80, {"flags": socket.AI_CANONNAME}),
    ("127.0.0.1", 80, {"family": V6}),  # family mismatch: gaierror from the thread
    ("127.1", 80, {}),  # inet_aton form, not inet_pton: not shortcut
    ("::1%lo", 80, {}),  # zone index
    ("no-such-host.invalid", 80, {}),
    ("127.0.0.1", 80.5, {}),  # TypeError from socket.getaddrinfo
]


def _ids(cases: list) -> list[str]:
    return [f"{h!r}-{p!r}-{kw}" for h, p, kw in cases]


@pytest.mark.parametrize(
    ("host", "port", "kwargs"), NUMERIC + THREADED, ids=_ids(NUMERIC + THREADED)
)
def test_getaddrinfo_equals_socket(loop: Any, host: Any, port: Any, kwargs: dict) -> None:
    args = [kwargs.get(k, 0) for k in ("family", "type", "proto", "flags")]
    expected = outcome(lambda: socket.getaddrinfo(host, port, *args))
    assert loop_outcome(loop, loop.getaddrinfo(host, port, **kwargs)) == expected


@pytest.mark.parametrize(("host", "port", "kwargs"), NUMERIC, ids=_ids(NUMERIC))
def test_numeric_getaddrinfo_needs_no_thread(
    tide_loop: Any, host: Any, port: Any, kwargs: dict
) -> None:
    loop_outcome(tide_loop, tide_loop.getaddrinfo(host, port, **kwargs))
    assert tide_loop.executor.calls == []


@pytest.mark.parametrize(("host", "port", "kwargs"), THREADED, ids=_ids(THREADED))
def test_other_getaddrinfo_uses_executor(loop: Any, host: Any, port: Any, kwargs: dict) -> None:
    loop_outcome(loop, loop.getaddrinfo(host, port, **kwargs))
    assert len(loop.executor.calls) == 1


def test_getaddrinfo_debug_log(loop: Any, caplog: pytest.LogCaptureFixture) -> None:
    loop.set_debug(True)
    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        for host in ("127.0.0.1", "localhost"):
            run_on(loop, loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM))
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    for host in ("127.0.0.1", "localhost"):
        assert f"Get address info {host}:80, type=<SocketKind.SOCK_STREAM: 1>" in messages
        assert any(m.startswith(f"Getting address info {host}:80, type=") for m in messages)


@pytest.mark.parametrize(
    ("sockaddr", "flags"),
    [
        (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
        (("::1", 443, 0, 0), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
        (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV | socket.NI_DGRAM),
        (("localhost", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),  # gaierror
        (("127.0.0.1", 80), 0),
        (("127.0.0.1", 80), socket.NI_NUMERICHOST),
        (("127.0.0.1",), 0),  # TypeError
    ],
)
def test_getnameinfo_equals_socket(loop: Any, sockaddr: tuple, flags: int) -> None:
    expected = outcome(lambda: socket.getnameinfo(sockaddr, flags))
    assert loop_outcome(loop, loop.getnameinfo(sockaddr, flags)) == expected


def test_numeric_getnameinfo_needs_no_thread(tide_loop: Any) -> None:
    flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
    assert run_on(tide_loop, tide_loop.getnameinfo(("127.0.0.1", 80), flags)) == ("127.0.0.1", "80")
    assert tide_loop.executor.calls == []
    run_on(tide_loop, tide_loop.getnameinfo(("127.0.0.1", 80)))
    assert len(tide_loop.executor.calls) == 1


def test_getaddrinfo_works_from_many_tasks(loop: Any) -> None:
    async def main() -> list:
        return await asyncio.gather(
            *(
                loop.getaddrinfo(h, 80, type=socket.SOCK_STREAM)
                for h in ("127.0.0.1", "localhost") * 5
            )
        )

    results = run_on(loop, main())
    assert results[0] == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
    assert results[1] == socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)


# ---------------------------------------------------------------------- private helpers

IPADDR_CASES = [
    ("127.0.0.1", 80, 0, socket.SOCK_STREAM, 0),
    ("127.0.0.1", "80", socket.AF_INET, socket.SOCK_DGRAM, 0),
    (b"127.0.0.1", b"", 0, socket.SOCK_STREAM, socket.IPPROTO_TCP),
    ("127.0.0.1", None, 0, socket.SOCK_STREAM, 0),
    ("127.0.0.1", "", 0, socket.SOCK_STREAM, 0),
    ("127.0.0.1", "http", 0, socket.SOCK_STREAM, 0),
    ("127.0.0.1", 80, 0, socket.SOCK_RAW, 0),
    ("127.0.0.1", 80, 0, socket.SOCK_STREAM, 99),
    ("127.0.0.1", 80, V6, socket.SOCK_STREAM, 0),
    ("::1", 80, 0, socket.SOCK_STREAM, 0),
    ("::1", 80, V6, socket.SOCK_DGRAM, 0),
    ("::1%lo", 80, 0, socket.SOCK_STREAM, 0),
    ("localhost", 80, 0, socket.SOCK_STREAM, 0),
    (None, 80, 0, socket.SOCK_STREAM, 0),
    ("1.2.3.4", object(), 0, socket.SOCK_STREAM, 0),
]


@pytest.mark.parametrize("case", IPADDR_CASES)
def test_ipaddr_info_matches_asyncio(case: tuple) -> None:
    assert dns._ipaddr_info(*case) == base_events._ipaddr_info(*case)
    assert dns._ipaddr_info(*case, 5, 6) == base_events._ipaddr_info(*case, 5, 6)


@pytest.mark.parametrize(
    "address",
    [("127.0.0.1", 80), ("::1", 80, 1, 2), ("localhost", 80), ("127.0.0.1", "http")],
)
@pytest.mark.parametrize("type_", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_ensure_resolved_matches_asyncio(tide_loop: Any, address: tuple, type_: int) -> None:
    aio = asyncio.new_event_loop()
    try:
        expected = loop_outcome(aio, aio._ensure_resolved(address, type=type_, loop=aio))
    finally:
        aio.close()
    assert loop_outcome(tide_loop, tide_loop._ensure_resolved(address, type=type_)) == expected
    if address[0] != "localhost" and address[1] != "http":
        assert tide_loop.executor.calls == []  # an IP literal is never looked up
