"""create_connection / create_unix_connection / connect_accepted_socket, black-box.

Every test that takes ``loop_impl`` runs on tideloop and on stock asyncio (ids ``tide`` /
``aio``) with the same assertions: asyncio is the spec. Argument errors are compared by
running the same call on both loops. Tests of deliberate differences (tideloop closes a
socket asyncio leaks; TLS is not written yet) run on tideloop only and say why.

Happy Eyeballs and the staggered race are in test_happy_eyeballs.py. Every test checks that
no file descriptor is left open (``/proc/self/fd``).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support import Signal, no_fd_leak, run  # noqa: F401 (no_fd_leak: the fixture pytestmark uses)

import tideloop

# Every test here fails if it leaves a file descriptor open.
pytestmark = pytest.mark.usefixtures("no_fd_leak")

TIMEOUT = 10.0  # a hang guard, not a timing assertion
PY312 = sys.version_info >= (3, 12)
PY314 = sys.version_info >= (3, 14)
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
_NO_V6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
INET = pytest.mark.parametrize(
    "family,host",
    [(socket.AF_INET, "127.0.0.1"), pytest.param(socket.AF_INET6, "::1", marks=_NO_V6)],
    ids=["v4", "v6"],
)
ALL_ERRORS = pytest.mark.skipif(not PY312, reason="all_errors is new in 3.12 (asyncio)")


def outcome(factory: LoopFactory, coro_fn: Callable[[], Any]) -> tuple[type, str] | None:
    """(type, str) of what coro_fn() raises on a fresh loop from factory, None if nothing."""
    try:
        run(factory, coro_fn)
    except Exception as exc:
        return type(exc), str(exc)
    return None


class Proto(asyncio.Protocol):
    """Records the protocol calls; ``lost`` is done at connection_lost; ``wait_for_bytes(n)``
    waits for n bytes, woken by data_received."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.events: list[str] = []
        self.data = bytearray()
        self.lost = asyncio.get_running_loop().create_future()
        self.got = Signal()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.got.notify()

    async def wait_for_bytes(self, n: int) -> None:
        await self.got.until(lambda: len(self.data) >= n)

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


# ---------------------------------------------------------------------- TCP


@INET
def test_tcp_connect_exchange_close(loop_impl: LoopFactory, family: int, host: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener(family, host)
        try:
            accepting = asyncio.ensure_future(lst.accept())
            tr, pr = await loop.create_connection(Proto, host, lst.port)
            peer = await accepting
            assert isinstance(tr, asyncio.Transport)
            assert isinstance(pr, Proto)
            assert pr.transport is tr and pr.events == ["made"]  # before we got it back
            assert tr.get_extra_info("peername")[:2] == lst.addr[:2]
            assert tr.get_extra_info("sockname")[:2] == peer.getpeername()[:2]
            assert tr.get_extra_info("socket").family == family
            sock = tr.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            tr.write(b"ping")
            assert await loop.sock_recv(peer, 10) == b"ping"
            await loop.sock_sendall(peer, b"pong")
            await pr.wait_for_bytes(4)
            assert pr.data == b"pong"
            peer.shutdown(socket.SHUT_WR)
            assert await pr.lost is None
            assert pr.events == ["made", "eof", "lost"]
        finally:
            lst.close()

    run(loop_impl, main)


def test_connect_host_name(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        try:
            tr, pr = await loop.create_connection(
                Proto, "localhost", str(lst.port), family=socket.AF_INET
            )
            assert tr.get_extra_info("peername") == lst.addr
            tr.close()
            await pr.lost
        finally:
            lst.close()

    run(loop_impl, main)


def test_connection_refused(loop_impl: LoopFactory) -> None:
    port = refused_port()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(Proto, "127.0.0.1", port)
        assert info.value.errno == errno.ECONNREFUSED
        assert str(info.value) == f"[Errno 111] Connect call failed ('127.0.0.1', {port})"

    run(loop_impl, main)


def test_refused_errors_same_on_both_loops() -> None:
    """One address, the same address twice, two addresses, all_errors: asyncio's rules."""
    p1, p2 = refused_port(), refused_port()
    table = {
        "one": [tcp_info("127.0.0.1", p1)],
        "twice": [tcp_info("127.0.0.1", p1)] * 2,
        "two": [tcp_info("127.0.0.1", p1), tcp_info("127.0.0.1", p2)],
        "none": [],
    }

    def case(host: str, **kwargs: Any) -> Callable[[], Any]:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            fake_getaddrinfo(loop, table)
            await loop.create_connection(Proto, host, 80, **kwargs)

        return main

    cases = {
        "one": case("one"),
        "twice": case("twice"),
        "two": case("two"),
        "none": case("none"),
        "two-he": case("two", happy_eyeballs_delay=0.25),
        "twice-he": case("twice", happy_eyeballs_delay=0.25),
    }
    for name, fn in cases.items():
        tide, aio = outcome(FACTORIES["tide"], fn), outcome(FACTORIES["aio"], fn)
        assert tide == aio, name
        assert tide is not None
    assert outcome(FACTORIES["tide"], cases["one"])[0] is ConnectionRefusedError
    assert outcome(FACTORIES["tide"], cases["twice"])[0] is ConnectionRefusedError
    kind, msg = outcome(FACTORIES["tide"], cases["two"])
    assert kind is OSError and msg.startswith("Multiple exceptions: ")
    assert f"('127.0.0.1', {p1})" in msg and f"('127.0.0.1', {p2})" in msg
    assert outcome(FACTORIES["tide"], cases["none"]) == (
        OSError,
        "getaddrinfo() returned empty list",
    )


@ALL_ERRORS
@pytest.mark.parametrize("he", [None, 0.25], ids=["seq", "he"])
def test_all_errors(loop_impl: LoopFactory, he: float | None) -> None:
    p1, p2 = refused_port(), refused_port()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fake_getaddrinfo(loop, {"h": [tcp_info("127.0.0.1", p1), tcp_info("127.0.0.1", p2)]})
        with pytest.raises(ExceptionGroup) as info:
            await loop.create_connection(Proto, "h", 80, all_errors=True, happy_eyeballs_delay=he)
        assert str(info.value).startswith("create_connection failed")
        assert [type(e) for e in info.value.exceptions] == [ConnectionRefusedError] * 2
        assert [e.args[1] for e in info.value.exceptions] == [
            f"Connect call failed ('127.0.0.1', {p})" for p in (p1, p2)
        ]
        # all_errors has no effect on success
        lst = Listener()
        try:
            tr, pr = await loop.create_connection(Proto, "127.0.0.1", lst.port, all_errors=True)
            tr.close()
            await pr.lost
        finally:
            lst.close()

    run(loop_impl, main)


@pytest.mark.parametrize("group", [False, True], ids=["one", "all-errors"])
def test_happy_eyeballs_failure_leaves_no_reference_cycle(
    loop_impl: LoopFactory, group: bool
) -> None:
    """The errors a failed Happy Eyeballs create_connection raises are the caller's only.

    Nothing the attempts leave behind (frames in the tracebacks, error lists, futures) may
    keep them alive (asyncio 3.14's test_open_connection_happy_eyeball_refcycles; older
    asyncio keeps the error lists alive through its attempts' closures). Without Happy
    Eyeballs the caller's task itself awaits the failed future, so the Handle that woke it
    still refers to it, on both loops.
    """
    if group and not PY312:
        pytest.skip("all_errors is new in 3.12")
    if loop_impl.impl == "aio" and not PY314:  # type: ignore[attr-defined]
        pytest.skip("asyncio before 3.14 keeps the Happy Eyeballs error lists alive")
    if sys.implementation.name == "pypy":
        pytest.skip(
            "on PyPy, Future.result, Task.__wakeup and contextvars.Context.run are Python code:"
            " their frames in the error's traceback hold the failed future, which holds the error"
        )
    ports = [refused_port(), refused_port()] if group else [refused_port()]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        fake_getaddrinfo(loop, {"h": [tcp_info("127.0.0.1", p) for p in ports]})
        errors = None
        try:
            await loop.create_connection(
                Proto, "h", 80, happy_eyeballs_delay=0.25, all_errors=group
            )
        except OSError as exc:  # not pytest.raises: it keeps the traceback
            errors = [exc]
        except ExceptionGroup as exc:
            errors = list(exc.exceptions)
        assert errors is not None and len(errors) == len(ports)
        gc.collect()
        for exc in errors:
            assert isinstance(exc, ConnectionRefusedError)
            # Only this coroutine (its frame's locals; 3.11 does not report those) and the
            # list above refer to it.
            assert [r for r in gc.get_referrers(exc) if r is not errors and r is not coro] == []

    coro = main()
    with asyncio.Runner(loop_factory=loop_impl) as runner:
        runner.run(coro)  # not through run(): wait_for would add a referrer


def test_first_address_refused_second_works(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        try:
            fake_getaddrinfo(
                loop,
                {"h": [tcp_info("127.0.0.1", refused_port()), tcp_info("127.0.0.1", lst.port)]},
            )
            tr, pr = await loop.create_connection(Proto, "h", 80)
            assert tr.get_extra_info("peername") == lst.addr
            tr.close()
            await pr.lost
        finally:
            lst.close()

    run(loop_impl, main)


# ---------------------------------------------------------------------- local_addr


def test_local_addr(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        try:
            port = free_port()
            tr, pr = await loop.create_connection(
                Proto, "127.0.0.1", lst.port, local_addr=("127.0.0.1", port)
            )
            assert tr.get_extra_info("sockname") == ("127.0.0.1", port)
            tr.close()
            await pr.lost
        finally:
            lst.close()

    run(loop_impl, main)


def test_local_addr_in_use(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        try:
            with pytest.raises(OSError) as info:
                await loop.create_connection(Proto, "127.0.0.1", lst.port, local_addr=lst.addr)
            assert info.value.errno == errno.EADDRINUSE
            assert str(lst.addr) in info.value.strerror
            assert info.value.strerror.startswith("error while attempting to bind on address")
        finally:
            lst.close()

    run(loop_impl, main)


@pytest.mark.parametrize("local", ["v6only", "inuse", "mixed", "empty"])
@pytest.mark.parametrize("he", [None, 0.1], ids=["seq", "he"])
def test_local_addr_errors_same_on_both_loops(local: str, he: Any) -> None:
    lst = Listener()
    try:
        table = {
            "v6only": [tcp_info("::1", 0)],
            "inuse": [tcp_info("127.0.0.1", lst.port)],
            "mixed": [tcp_info("::1", 0), tcp_info("127.0.0.1", lst.port)],
            "empty": [],
        }

        async def main() -> None:
            loop = asyncio.get_running_loop()
            fake_getaddrinfo(loop, table)
            await loop.create_connection(
                Proto, "127.0.0.1", lst.port, local_addr=(local, 0), happy_eyeballs_delay=he
            )

        tide, aio = outcome(FACTORIES["tide"], main), outcome(FACTORIES["aio"], main)
        assert tide == aio
        assert tide is not None and issubclass(tide[0], OSError)
        if local == "v6only":
            assert tide == (
                OSError,
                "no matching local address with family=<AddressFamily.AF_INET: 2> found",
            )
    finally:
        lst.close()


# ---------------------------------------------------------------------- sock=


def test_sock_argument(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        try:
            sock = socket.socket()
            sock.setblocking(False)
            await loop.sock_connect(sock, lst.addr)
            sock.setblocking(True)  # create_connection makes it non-blocking
            tr, pr = await loop.create_connection(Proto, sock=sock)
            assert sock.gettimeout() == 0
            assert tr.get_extra_info("peername") == lst.addr
            assert tr.get_extra_info("socket").fileno() == sock.fileno()
            tr.close()
            await pr.lost
            assert sock.fileno() == -1  # the transport closed it
        finally:
            lst.close()

    run(loop_impl, main)


def test_unix_sock_accepted_by_create_connection(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        try:
            tr, pr = await loop.create_connection(Proto, sock=a)
            tr.write(b"hi")
            b.setblocking(False)
            # Not a blocking b.recv(): tideloop sends a pass's writes when the pass ends.
            assert await asyncio.wait_for(loop.sock_recv(b, 2), TIMEOUT) == b"hi"
            tr.close()
            await pr.lost
        finally:
            b.close()

    run(loop_impl, main)


@pytest.mark.parametrize("api", ["tcp", "unix", "accepted"])
def test_protocol_factory_error_with_sock(loop_impl: LoopFactory, api: str) -> None:
    """protocol_factory raising: the error propagates; a caller's sock is closed on 3.14+.

    asyncio 3.14 (gh-153133) closes a socket no transport could be made over, even the
    caller's; 3.11-3.13 leave it to the caller.
    """

    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        try:

            def factory() -> Any:
                raise ZeroDivisionError

            with pytest.raises(ZeroDivisionError):
                if api == "tcp":
                    await loop.create_connection(factory, sock=a)
                elif api == "unix":
                    await loop.create_unix_connection(factory, sock=a)
                else:
                    await loop.connect_accepted_socket(factory, a)
            assert (a.fileno() == -1) is PY314
        finally:
            a.close()
            b.close()

    run(loop_impl, main)


def test_protocol_factory_error_closes_own_socket(tmp_path: Path, loop_impl: LoopFactory) -> None:
    """A socket connected by the call is closed when protocol_factory raises.

    asyncio does so from 3.14 on (gh-153133); before, it leaks the socket until the garbage
    collector warns, and tideloop closes it anyway (a deliberate difference).
    """
    if loop_impl.impl == "aio" and not PY314:  # type: ignore[attr-defined]
        pytest.skip("asyncio before 3.14 leaks the socket")
    path = str(tmp_path / "s.sock")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        srv = socket.socket(socket.AF_UNIX)
        try:
            srv.bind(path)
            srv.listen()

            def factory() -> Any:
                raise ZeroDivisionError

            with pytest.raises(ZeroDivisionError):
                await loop.create_connection(factory, "127.0.0.1", lst.port)
            with pytest.raises(ZeroDivisionError):
                await loop.create_unix_connection(factory, path)
        finally:
            srv.close()
            lst.close()

    run(loop_impl, main)  # no_fd_leak checks the rest


def test_cancelled_before_connection_made(loop_impl: LoopFactory) -> None:
    """Cancelled while waiting for connection_made: the transport is closed, no leak."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        made: list[Any] = []

        class P(Proto):
            def connection_made(self, transport: Any) -> None:
                super().connection_made(transport)
                made.append(self)

        try:
            task = asyncio.ensure_future(loop.create_connection(P, sock=a))
            await asyncio.sleep(0)  # the transport exists; connection_made is scheduled
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert len(made) == 1
            assert await made[0].lost is None
        finally:
            a.close()
            b.close()

    run(loop_impl, main)


# ---------------------------------------------------------------------- argument errors


def _ssl_sock() -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return ctx.wrap_socket(socket.socket(), server_hostname="x", do_handshake_on_connect=False)


CONNECT_ERRORS: dict[str, dict[str, Any]] = {
    "server_hostname without ssl": {"host": "127.0.0.1", "port": 1, "server_hostname": "x"},
    "ssl without host": {"port": 1, "ssl": True},
    "ssl, empty host": {"host": "", "port": 1, "ssl": True},
    "handshake timeout without ssl": {"host": "h", "port": 1, "ssl_handshake_timeout": 1},
    "shutdown timeout without ssl": {"host": "h", "port": 1, "ssl_shutdown_timeout": 1},
    "ssl=False and server_hostname": {"host": "h", "port": 1, "ssl": False, "server_hostname": ""},
    "host and sock": {"host": "h", "sock": "stream"},
    "port and sock": {"port": 1, "sock": "stream"},
    "nothing": {},
    "datagram sock": {"sock": "dgram"},
    "SSLSocket": {"sock": "ssl"},
    "SSLSocket and host": {"host": "h", "sock": "ssl"},
    "SSLSocket, ssl, no hostname": {"sock": "ssl", "ssl": True},
}


def _make_sock(kind: str, made: list) -> Any:
    if kind == "stream":
        s = socket.socket()
    elif kind == "dgram":
        s = socket.socket(type=socket.SOCK_DGRAM)
    else:
        s = _ssl_sock()
    made.append(s)
    return s


@pytest.mark.parametrize("name", list(CONNECT_ERRORS))
def test_create_connection_argument_errors(name: str) -> None:
    made: list[Any] = []
    kwargs = dict(CONNECT_ERRORS[name])
    if "sock" in kwargs:
        kwargs["sock"] = _make_sock(kwargs["sock"], made)
    try:

        async def main() -> None:
            loop = asyncio.get_running_loop()
            await loop.create_connection(Proto, **kwargs)

        tide, aio = outcome(FACTORIES["tide"], main), outcome(FACTORIES["aio"], main)
        assert tide == aio
        assert tide is not None and tide[0] in (ValueError, TypeError)
    finally:
        for s in made:
            s.close()


UNIX_ERRORS: dict[str, dict[str, Any]] = {
    "server_hostname without ssl": {"path": "/nonexistent", "server_hostname": "x"},
    "ssl without server_hostname": {"path": "/nonexistent", "ssl": True},
    "handshake timeout without ssl": {"path": "/x", "ssl_handshake_timeout": 1},
    "shutdown timeout without ssl": {"path": "/x", "ssl_shutdown_timeout": 1},
    "path and sock": {"path": "/x", "sock": "unix"},
    "nothing": {},
    "inet sock": {"sock": "inet"},
    "unix datagram sock": {"sock": "unix-dgram"},
    "missing path": {"path": "/nonexistent/tideloop.sock"},
    "bad path type": {"path": 3.5},
}


@pytest.mark.parametrize("name", list(UNIX_ERRORS))
def test_create_unix_connection_argument_errors(name: str) -> None:
    made: list[Any] = []
    kwargs = dict(UNIX_ERRORS[name])
    kind = kwargs.get("sock")
    if kind is not None:
        s = {
            "unix": lambda: socket.socket(socket.AF_UNIX),
            "inet": lambda: socket.socket(),
            "unix-dgram": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM),
        }[kind]()
        made.append(s)
        kwargs["sock"] = s
    try:

        async def main() -> None:
            loop = asyncio.get_running_loop()
            await loop.create_unix_connection(Proto, **kwargs)

        tide, aio = outcome(FACTORIES["tide"], main), outcome(FACTORIES["aio"], main)
        assert tide == aio
        assert tide is not None
    finally:
        for s in made:
            s.close()


@pytest.mark.parametrize(
    "name", ["datagram", "handshake timeout", "shutdown timeout", "SSLSocket", "ok"]
)
def test_connect_accepted_socket_argument_errors(name: str) -> None:
    a, b = socket.socketpair()
    made = [a, b]
    kwargs: dict[str, Any] = {}
    sock: Any = a
    if name == "datagram":
        sock = socket.socket(type=socket.SOCK_DGRAM)
        made.append(sock)
    elif name == "handshake timeout":
        kwargs["ssl_handshake_timeout"] = 1
    elif name == "shutdown timeout":
        kwargs["ssl_shutdown_timeout"] = 1
    elif name == "SSLSocket":
        sock = _ssl_sock()
        made.append(sock)
    try:

        async def main() -> None:
            loop = asyncio.get_running_loop()
            s = sock
            if name == "ok":
                s = sock.dup()
            tr, pr = await loop.connect_accepted_socket(Proto, s, **kwargs)
            tr.close()
            await pr.lost

        tide, aio = outcome(FACTORIES["tide"], main), outcome(FACTORIES["aio"], main)
        assert tide == aio
        assert (tide is None) == (name == "ok")
    finally:
        for s in made:
            s.close()


# ---------------------------------------------------------------------- TLS (issue 5)


def test_tls_handshake_failure_closes_sockets() -> None:
    """tideloop only: a handshake that fails (the peer speaks no TLS) closes the socket that
    create_connection made, and the caller's socket (sock=) with the transport made over it,
    as asyncio does once its transport is collected."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        a, b = socket.socketpair()
        try:
            ctx = ssl.create_default_context()
            task = asyncio.ensure_future(
                loop.create_connection(Proto, "127.0.0.1", lst.port, ssl=ctx)
            )
            peer = await lst.accept()
            peer.sendall(b"HTTP/1.0 400 not TLS\r\n\r\n" * 4)
            with pytest.raises(ssl.SSLError):
                await task
            peer.close()
            b.sendall(b"HTTP/1.0 400 not TLS\r\n\r\n" * 4)
            ctx.check_hostname = False  # server_hostname="" (else wrap_bio raises ValueError)
            with pytest.raises(ssl.SSLError):
                await loop.create_connection(Proto, sock=a, ssl=ctx, server_hostname="")
            await asyncio.sleep(0)
            assert a.fileno() == -1  # closed with the transport made over it
            # Validation comes first
            with pytest.raises(ValueError, match="server_hostname is only meaningful"):
                await loop.create_connection(Proto, "h", 1, ssl=None, server_hostname="x")
        finally:
            lst.close()
            a.close()
            b.close()

    before = len(os.listdir("/proc/self/fd"))
    run(tideloop.new_event_loop, main)
    assert len(os.listdir("/proc/self/fd")) == before


# ---------------------------------------------------------------------- Unix


@pytest.mark.parametrize("as_path", [False, True], ids=["str", "Path"])
def test_unix_connection(loop_impl: LoopFactory, tmp_path: Path, as_path: bool) -> None:
    path = tmp_path / "s.sock"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(str(path))
        srv.listen()
        srv.setblocking(False)
        peer = None
        try:
            tr, pr = await loop.create_unix_connection(Proto, path if as_path else str(path))
            peer, _ = await loop.sock_accept(srv)
            assert tr.get_extra_info("peername") == str(path)
            assert tr.get_extra_info("socket").family == socket.AF_UNIX
            tr.write(b"abc")
            assert await loop.sock_recv(peer, 3) == b"abc"
            tr.close()
            await pr.lost
        finally:
            if peer is not None:
                peer.close()
            srv.close()

    run(loop_impl, main)


def test_unix_connection_sock(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        a, b = socket.socketpair()
        try:
            tr, pr = await loop.create_unix_connection(Proto, sock=a)
            assert a.gettimeout() == 0
            b.sendall(b"xyz")
            await pr.wait_for_bytes(3)
            assert pr.data == b"xyz"
            tr.close()
            await pr.lost
        finally:
            b.close()

    run(loop_impl, main)


def test_unix_connection_refused(loop_impl: LoopFactory, tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(Proto, path)

    run(loop_impl, main)


# ---------------------------------------------------------------------- accepted sockets


def test_connect_accepted_socket(loop_impl: LoopFactory) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        client = socket.socket()
        try:
            client.setblocking(False)
            await loop.sock_connect(client, lst.addr)
            conn = await lst.accept()
            lst.extra.remove(conn)  # the transport owns it now
            conn.setblocking(True)
            tr, pr = await loop.connect_accepted_socket(Proto, conn)
            assert conn.gettimeout() == 0
            assert pr.events == ["made"]
            assert tr.get_extra_info("peername") == client.getsockname()
            await loop.sock_sendall(client, b"request")
            await pr.wait_for_bytes(7)
            tr.write(b"response")
            assert await loop.sock_recv(client, 100) == b"response"
            client.close()
            assert await pr.lost is None
        finally:
            client.close()
            lst.close()

    run(loop_impl, main)


# ---------------------------------------------------------------------- debug mode


def test_debug_logs(loop_impl: LoopFactory, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        lst = Listener()
        a, b = socket.socketpair()
        try:
            tr, pr = await loop.create_connection(Proto, "127.0.0.1", lst.port)
            tr2, pr2 = await loop.connect_accepted_socket(Proto, a)
            tr.close()
            tr2.close()
            await pr.lost
            await pr2.lost
        finally:
            b.close()
            lst.close()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        run(loop_impl, main, debug=True)
    messages = [r.getMessage() for r in caplog.records]
    assert any(" connected to 127.0.0.1:" in m for m in messages)
    assert any(" handled: (" in m for m in messages)
