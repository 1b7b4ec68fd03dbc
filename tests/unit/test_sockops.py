"""loop.sock_* black-box tests, run on tideloop and on stock asyncio (ids ``tide`` / ``aio``).

Every test in ``loop`` runs on both loops with the same assertions: asyncio is the spec.
Tests of tideloop-only behaviour (where asyncio is wrong) use ``tide_loop`` and say why.
"""

from __future__ import annotations

import array
import asyncio
import io
import os
import select
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support import readable, run_on

import tideloop

TIMEOUT = 10.0


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _has_ipv6()
_NO_V6 = pytest.mark.skipif(not HAS_IPV6, reason="no IPv6")
INET_FAMILIES = pytest.mark.parametrize(
    "family", [socket.AF_INET, pytest.param(socket.AF_INET6, marks=_NO_V6)], ids=["v4", "v6"]
)


def _make_loop(factory: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[Any]:
    loop = factory()
    try:
        yield loop
    finally:
        loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@pytest.fixture
def loop(loop_impl: Callable[[], asyncio.AbstractEventLoop]) -> Iterator[Any]:
    """A fresh loop from conftest's loop_impl: tideloop (id ``tide``) or asyncio (``aio``)."""
    yield from _make_loop(loop_impl)


@pytest.fixture
def tide_loop() -> Iterator[Any]:
    """A tideloop loop, for behaviour where tideloop deliberately differs from asyncio."""
    yield from _make_loop(tideloop.new_event_loop)


@pytest.fixture
def socks() -> Iterator[Callable[..., socket.socket]]:
    """Factory for sockets that are closed after the test: socks(family, type, blocking)."""
    made: list[socket.socket] = []

    def make(
        family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, *, blocking: bool = False
    ) -> socket.socket:
        s = socket.socket(family, type)
        s.setblocking(blocking)
        made.append(s)
        return s

    make.track = made.append  # type: ignore[attr-defined]
    yield make
    for s in made:
        s.close()



def pair(socks: Any) -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    socks.track(a)
    socks.track(b)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def tcp_pair(socks: Any, family: int = socket.AF_INET) -> tuple[socket.socket, socket.socket]:
    """A connected (client, server) TCP pair, both non-blocking."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family) as lst:
        lst.bind((host, 0))
        lst.listen(1)
        c = socks(family, blocking=True)
        c.connect(lst.getsockname())
        s, _ = lst.accept()
    socks.track(s)
    c.setblocking(False)
    s.setblocking(False)
    return c, s


def fill(sock: socket.socket) -> None:
    """Write until the kernel refuses even 1 byte."""
    size = 65536
    while size:
        try:
            while True:
                sock.send(b"\0" * size)
        except BlockingIOError:
            size //= 2


# ---------------------------------------------------------------------- recv / recv_into


def test_recv_immediate(loop: Any, socks: Any) -> None:
    a, b = pair(socks)
    b.send(b"hello")
    assert run_on(loop, loop.sock_recv(a, 100)) == b"hello"


def test_recv_deferred_unregisters(loop: Any, socks: Any) -> None:
    a, b = pair(socks)
    loop.call_later(0.01, b.send, b"later")
    assert run_on(loop, loop.sock_recv(a, 100)) == b"later"
    assert loop.remove_reader(a.fileno()) is False


def test_recv_eof(loop: Any, socks: Any) -> None:
    a, b = pair(socks)
    loop.call_later(0.01, b.shutdown, socket.SHUT_WR)
    assert run_on(loop, loop.sock_recv(a, 100)) == b""


def test_recv_into_immediate_and_deferred(loop: Any, socks: Any) -> None:
    a, b = pair(socks)
    buf = bytearray(10)
    b.send(b"abc")
    assert run_on(loop, loop.sock_recv_into(a, buf)) == 3
    loop.call_later(0.01, b.send, b"defg")
    with memoryview(buf) as view:
        assert run_on(loop, loop.sock_recv_into(a, view[3:])) == 4
    assert bytes(buf[:7]) == b"abcdefg"


def test_recv_error_propagates(loop: Any, socks: Any) -> None:
    c, s = tcp_pair(socks)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST on close

    async def main() -> None:
        loop.call_later(0.01, s.close)
        with pytest.raises(ConnectionResetError):
            await loop.sock_recv(c, 100)

    run_on(loop, main())


def test_cancel_recv_unregisters(loop: Any, socks: Any) -> None:
    a, b = pair(socks)

    async def main() -> None:
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert loop.remove_reader(a.fileno()) is False

    run_on(loop, main())


def test_recv_racing_cancel_then_recv(loop: Any, socks: Any) -> None:
    """The cancelled recv's cleanup must not remove the reader of the recv that replaced it."""
    a, b = pair(socks)

    async def main() -> bytes:
        task = asyncio.ensure_future(loop.sock_recv(a, 100))
        await asyncio.sleep(0)
        task.cancel()
        loop.call_later(0.01, b.send, b"data")
        # Registers the new reader in this step, before the cancelled future's done callbacks.
        return await loop.sock_recv(a, 100)

    assert run_on(loop, main()) == b"data"
    assert loop.remove_reader(a.fileno()) is False


# ---------------------------------------------------------------------- sendall


def test_sendall_immediate(loop: Any, socks: Any) -> None:
    a, b = pair(socks)
    assert run_on(loop, loop.sock_sendall(a, b"xyz")) is None
    assert run_on(loop, loop.sock_sendall(a, bytearray(b"12"))) is None
    assert run_on(loop, loop.sock_sendall(a, memoryview(b"..34..")[2:4])) is None
    assert run_on(loop, loop.sock_sendall(a, b"")) is None
    assert b.recv(100) == b"xyz1234"


@pytest.mark.parametrize("family", ["unix", "tcp"])
def test_sendall_large_partial_writes(loop: Any, socks: Any, family: str) -> None:
    c, s = pair(socks) if family == "unix" else tcp_pair(socks)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    payload = os.urandom(1 << 16) * 64  # 4 MiB: far more than one send() takes

    async def reader() -> bytes:
        chunks = []
        while chunk := await loop.sock_recv(s, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)

    async def main() -> bytes:
        task = asyncio.ensure_future(reader())
        await loop.sock_sendall(c, payload)
        c.shutdown(socket.SHUT_WR)
        return await task

    assert run_on(loop, main()) == payload
    assert loop.remove_writer(c.fileno()) is False


def test_sendall_multibyte_items(tide_loop: Any, socks: Any) -> None:
    """tideloop counts bytes; asyncio compares bytes sent with len() in items and never
    finishes for array('i') (it retries view[16:] of a 4-item view forever)."""
    a, b = pair(socks)
    data = array.array("i", range(4))
    run_on(tide_loop, tide_loop.sock_sendall(a, data))
    assert b.recv(100) == data.tobytes()


def test_sendall_error(loop: Any, socks: Any) -> None:
    a, b = pair(socks)
    b.close()
    with pytest.raises(BrokenPipeError):
        run_on(loop, loop.sock_sendall(a, b"x" * 10))


def test_cancel_sendall_then_sendall(loop: Any, socks: Any) -> None:
    """Mirror of CPython's _basetest_sock_send_racing."""
    c, s = tcp_pair(socks)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)

    async def main() -> bytes:
        fill(c)
        task = asyncio.ensure_future(loop.sock_sendall(c, b"hello"))
        await asyncio.sleep(0)
        task.cancel()

        async def recv_all() -> bytes:
            rv = b""
            while buf := await loop.sock_recv(s, 8192):
                rv += buf.strip(b"\0")
            return rv

        receiver = asyncio.ensure_future(recv_all())
        await loop.sock_sendall(c, b"world")
        c.shutdown(socket.SHUT_WR)
        return await receiver

    assert run_on(loop, main()).endswith(b"world")
    assert loop.remove_writer(c.fileno()) is False


# ---------------------------------------------------------------------- connect / accept


def _listener(socks: Any, family: int = socket.AF_INET, backlog: int = 8) -> socket.socket:
    lst = socks(family)
    lst.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    lst.listen(backlog)
    return lst


@INET_FAMILIES
def test_connect_and_accept_tcp(loop: Any, socks: Any, family: int) -> None:
    lst = _listener(socks, family)
    client = socks(family)

    async def main() -> tuple:
        acc = asyncio.ensure_future(loop.sock_accept(lst))
        await asyncio.sleep(0)  # accept is now waiting (deferred path)
        await loop.sock_connect(client, lst.getsockname())
        return await acc

    conn, addr = run_on(loop, main())
    socks.track(conn)
    assert conn.gettimeout() == 0
    assert addr == client.getsockname()
    assert client.getpeername() == lst.getsockname()
    assert loop.remove_reader(lst.fileno()) is False
    assert loop.remove_writer(client.fileno()) is False


def test_accept_immediate(loop: Any, socks: Any) -> None:
    lst = _listener(socks)
    client = socks(blocking=True)
    client.connect(lst.getsockname())
    conn, addr = run_on(loop, loop.sock_accept(lst))
    socks.track(conn)
    assert conn.gettimeout() == 0
    assert addr == client.getsockname()


def test_cancel_accept_unregisters(loop: Any, socks: Any) -> None:
    lst = _listener(socks)
    with pytest.raises(asyncio.TimeoutError):
        loop.run_until_complete(asyncio.wait_for(loop.sock_accept(lst), 0.05))
    assert loop.remove_reader(lst.fileno()) is False
    # No connection was swallowed by the cancelled accept.
    client = socks(blocking=True)
    client.connect(lst.getsockname())
    conn, _ = run_on(loop, loop.sock_accept(lst))
    socks.track(conn)


def test_connect_unix(loop: Any, socks: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "sock")
    lst = socks(socket.AF_UNIX)
    lst.bind(path)
    lst.listen(1)
    client = socks(socket.AF_UNIX)
    run_on(loop, loop.sock_connect(client, path))
    conn, _ = run_on(loop, loop.sock_accept(lst))
    socks.track(conn)
    run_on(loop, loop.sock_sendall(client, b"over unix"))
    assert run_on(loop, loop.sock_recv(conn, 100)) == b"over unix"


def test_connect_refused(loop: Any, socks: Any) -> None:
    with socket.socket() as tmp:
        tmp.bind(("127.0.0.1", 0))
        address = tmp.getsockname()
    with pytest.raises(ConnectionRefusedError):
        run_on(loop, loop.sock_connect(socks(), address))


def test_connect_resolves_host_name(loop: Any, socks: Any) -> None:
    lst = _listener(socks)
    client = socks()
    run_on(loop, loop.sock_connect(client, ("localhost", lst.getsockname()[1])))
    assert client.getpeername() == lst.getsockname()


def _accept_queue_slots(sock: socket.socket) -> int:
    """How many connections the listening sock queues before Linux drops SYNs.

    Linux queues max_ack_backlog + 1; max_ack_backlog is read back (TCP_INFO's tcpi_sacked,
    for a listener) rather than taken from listen()'s argument: PyPy raises 0 to 1.
    """
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 32)
    (max_ack_backlog,) = struct.unpack_from("=I", info, 28)
    return max_ack_backlog + 1


def test_cancel_pending_connect_unregisters(loop: Any, socks: Any) -> None:
    """A full accept queue drops SYNs, which keeps connect() in progress (Linux)."""
    lst = _listener(socks, backlog=0)
    for _ in range(_accept_queue_slots(lst)):
        socks(blocking=True).connect(lst.getsockname())  # fills a slot; never accepted
    pending = socks()
    with pytest.raises(asyncio.TimeoutError):
        loop.run_until_complete(
            asyncio.wait_for(loop.sock_connect(pending, lst.getsockname()), 0.1)
        )
    assert loop.remove_writer(pending.fileno()) is False


# ---------------------------------------------------------------------- datagrams


@INET_FAMILIES
def test_sendto_recvfrom(loop: Any, socks: Any, family: int) -> None:
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    a = socks(family, socket.SOCK_DGRAM)
    b = socks(family, socket.SOCK_DGRAM)
    a.bind((host, 0))
    b.bind((host, 0))

    async def main() -> None:
        # deferred: nothing queued yet
        recv = asyncio.ensure_future(loop.sock_recvfrom(b, 4096))
        await asyncio.sleep(0)
        assert await loop.sock_sendto(a, b"ping", b.getsockname()) == 4
        assert await recv == (b"ping", a.getsockname())
        # immediate
        assert await loop.sock_sendto(a, b"pong!", b.getsockname()) == 5
        assert select.select([b], [], [], 10)[0]  # queued for b (a hang guard, 10 s)
        assert await loop.sock_recvfrom(b, 4096) == (b"pong!", a.getsockname())

    run_on(loop, main())
    assert loop.remove_reader(b.fileno()) is False


def test_recvfrom_into(loop: Any, socks: Any) -> None:
    a = socks(type=socket.SOCK_DGRAM)
    b = socks(type=socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    buf = bytearray(8)

    async def main() -> None:
        recv = asyncio.ensure_future(loop.sock_recvfrom_into(b, buf))  # nbytes=0: len(buf)
        await asyncio.sleep(0)
        await loop.sock_sendto(a, b"0123456789", b.getsockname())
        assert await recv == (8, a.getsockname())
        assert bytes(buf) == b"01234567"
        await loop.sock_sendto(a, b"abcdef", b.getsockname())
        assert select.select([b], [], [], 10)[0]  # queued for b (a hang guard, 10 s)
        assert await loop.sock_recvfrom_into(b, buf, 3) == (3, a.getsockname())
        assert bytes(buf[:3]) == b"abc"

    run_on(loop, main())


def test_sendto_blocking_retried(loop: Any, socks: Any) -> None:
    """sendto that first raises BlockingIOError is retried on writability (CPython's test)."""
    a = socks(type=socket.SOCK_DGRAM)
    b = socks(type=socket.SOCK_DGRAM)
    b.bind(("127.0.0.1", 0))

    class Flaky:
        family, type, proto = a.family, a.type, a.proto
        fileno, gettimeout = a.fileno, a.gettimeout
        tries = 0

        def sendto(self, *args: Any) -> int:
            self.tries += 1
            if self.tries == 1:
                raise BlockingIOError
            return a.sendto(*args)

    assert run_on(loop, loop.sock_sendto(Flaky(), b"x", b.getsockname())) == 1
    assert b.recv(10) == b"x"
    assert loop.remove_writer(a.fileno()) is False


# ---------------------------------------------------------------------- argument checks


def _all_ops(loop: Any, sock: Any) -> list[Any]:
    addr = ("127.0.0.1", 9)
    return [
        lambda: loop.sock_recv(sock, 10),
        lambda: loop.sock_recv_into(sock, bytearray(10)),
        lambda: loop.sock_recvfrom(sock, 10),
        lambda: loop.sock_recvfrom_into(sock, bytearray(10)),
        lambda: loop.sock_sendall(sock, b"x"),
        lambda: loop.sock_sendto(sock, b"x", addr),
        lambda: loop.sock_connect(sock, addr),
        lambda: loop.sock_accept(sock),
        lambda: loop.sock_sendfile(sock, io.BytesIO(b"x")),
    ]


def test_debug_rejects_blocking_socket(loop: Any, socks: Any) -> None:
    loop.set_debug(True)
    sock = socks(blocking=True)
    for op in _all_ops(loop, sock):
        with pytest.raises(ValueError, match="the socket must be non-blocking"):
            run_on(loop, op())


def test_blocking_socket_allowed_without_debug(loop: Any, socks: Any) -> None:
    loop.set_debug(False)  # PYTHONASYNCIODEBUG=1 turns it on
    a, b = pair(socks)
    a.setblocking(True)
    b.send(b"ok")
    assert run_on(loop, loop.sock_recv(a, 10)) == b"ok"


def test_ssl_socket_rejected(loop: Any, socks: Any) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    sock = ctx.wrap_socket(socks(), server_hostname="x", do_handshake_on_connect=False)
    socks.track(sock)
    for op in _all_ops(loop, sock):
        with pytest.raises(TypeError, match="Socket cannot be of type SSLSocket"):
            run_on(loop, op())


# ---------------------------------------------------------------------- sendfile

DATA = b"0123456789abcdef" * 64 * 1024  # 1 MiB


@pytest.fixture
def data_file(tmp_path: Any) -> Iterator[Any]:
    path = tmp_path / "data"
    path.write_bytes(DATA)
    with open(path, "rb") as f:
        yield f


def _sendfile_and_read(loop: Any, socks: Any, **kwargs: Any) -> tuple[int, bytes]:
    """Run sock_sendfile(client, ...) while reading everything on the server side."""
    c, s = tcp_pair(socks)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # many short sends

    async def main() -> tuple[int, bytes]:
        async def reader() -> bytes:
            chunks = []
            while chunk := await loop.sock_recv(s, 1 << 16):
                chunks.append(chunk)
            return b"".join(chunks)

        task = asyncio.ensure_future(reader())
        sent = await loop.sock_sendfile(c, **kwargs)
        c.shutdown(socket.SHUT_WR)
        return sent, await task

    result = run_on(loop, main())
    assert loop.remove_writer(c.fileno()) is False
    return result


def test_sendfile_native(loop: Any, socks: Any, data_file: Any) -> None:
    sent, got = _sendfile_and_read(loop, socks, file=data_file)
    assert sent == len(DATA) and got == DATA
    assert data_file.tell() == len(DATA)


def test_sendfile_offset_count(loop: Any, socks: Any, data_file: Any) -> None:
    sent, got = _sendfile_and_read(loop, socks, file=data_file, offset=1000, count=300000)
    assert sent == 300000 and got == DATA[1000:301000]
    assert data_file.tell() == 301000


def test_sendfile_count_past_eof(loop: Any, socks: Any, data_file: Any) -> None:
    sent, got = _sendfile_and_read(loop, socks, file=data_file, offset=len(DATA) - 10, count=100)
    assert sent == 10 and got == DATA[-10:]
    assert data_file.tell() == len(DATA)


def test_sendfile_empty_file(loop: Any, socks: Any, tmp_path: Any) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with open(tmp_path / "empty", "rb") as f:
        sent, got = _sendfile_and_read(loop, socks, file=f)
        assert (sent, got, f.tell()) == (0, b"", 0)


def test_sendfile_fallback_non_regular_file(loop: Any, socks: Any) -> None:
    f = io.BytesIO(DATA)
    sent, got = _sendfile_and_read(loop, socks, file=f, offset=5, count=200000)
    assert sent == 200000 and got == DATA[5:200005]
    assert f.tell() == 200005


def test_sendfile_no_fallback_raises(loop: Any, socks: Any) -> None:
    c, _ = tcp_pair(socks)
    with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
        run_on(loop, loop.sock_sendfile(c, io.BytesIO(b"x"), fallback=False))


def test_sendfile_first_call_error_falls_back(
    loop: Any, socks: Any, data_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError before anything is sent means "sendfile unusable here": fall back."""

    def broken(*args: Any) -> int:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", broken)
    c, _ = tcp_pair(socks)
    with pytest.raises(asyncio.SendfileNotAvailableError, match="os.sendfile call failed"):
        run_on(loop, loop.sock_sendfile(c, data_file, fallback=False))
    assert data_file.tell() == 0
    sent, got = _sendfile_and_read(loop, socks, file=data_file, count=100000)
    assert sent == 100000 and got == DATA[:100000]


def test_sendfile_error_after_progress(
    loop: Any, socks: Any, data_file: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError after some bytes went out is raised as is; the position follows the bytes."""
    real = os.sendfile
    calls = []

    def flaky(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(offset)
        if len(calls) == 1:
            return real(out_fd, in_fd, offset, 1000)
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "sendfile", flaky)
    c, _ = tcp_pair(socks)
    with pytest.raises(OSError, match="I/O error"):
        run_on(loop, loop.sock_sendfile(c, data_file, fallback=False))
    assert data_file.tell() == 1000


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"offset": -1}, ValueError, "offset must be a non-negative integer"),
        ({"offset": "1"}, TypeError, "offset must be a non-negative integer"),
        ({"count": 0}, ValueError, "count must be a positive integer"),
        ({"count": 1.5}, TypeError, "count must be a positive integer"),
    ],
)
def test_sendfile_bad_arguments(
    loop: Any, socks: Any, data_file: Any, kwargs: dict, exc: type, match: str
) -> None:
    c, _ = tcp_pair(socks)
    with pytest.raises(exc, match=match):
        run_on(loop, loop.sock_sendfile(c, data_file, **kwargs))


def test_sendfile_rejects_datagram_socket(loop: Any, socks: Any, data_file: Any) -> None:
    with pytest.raises(ValueError, match="only SOCK_STREAM type sockets are supported"):
        run_on(loop, loop.sock_sendfile(socks(type=socket.SOCK_DGRAM), data_file))


def test_sendfile_rejects_text_file(loop: Any, socks: Any, tmp_path: Any) -> None:
    (tmp_path / "t").write_text("text")
    with open(tmp_path / "t") as f, pytest.raises(ValueError, match="binary mode"):
        run_on(loop, loop.sock_sendfile(socks(), f))


def test_sendfile_cancel_keeps_position(tide_loop: Any, socks: Any, data_file: Any) -> None:
    """tideloop moves the file position past the bytes sent when cancelled (as the fallback
    path does); asyncio's native path leaves it at the start."""
    loop = tide_loop
    c, s = tcp_pair(socks)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    async def main() -> None:
        task = asyncio.ensure_future(loop.sock_sendfile(c, data_file))
        await readable(s)  # some bytes went out; nobody reads: the transfer stalls
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_on(loop, main())
    assert 0 < data_file.tell() < len(DATA)
    c.shutdown(socket.SHUT_WR)
    s.settimeout(TIMEOUT)
    assert data_file.tell() == sum(iter(lambda: len(s.recv(1 << 16)), 0))
    assert loop.remove_writer(c.fileno()) is False
