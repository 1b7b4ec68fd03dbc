"""Black-box tests of create_datagram_endpoint and the datagram transport, on tideloop and asyncio.

Every test runs unchanged on both loops (ids ``tide`` / ``aio``) and asserts asyncio's
behaviour for the running Python: 3.13 sends empty datagrams and counts an 8-byte header per
buffered datagram, 3.11/3.12 drop empty datagrams and count the payload only.

Flow control needs a send that would block. UDP over loopback never blocks (the kernel hands
the datagram to the receiver, or drops it, at once), so those tests use Unix datagram sockets,
where a sender blocks once the receiver's queue is full (net.unix.max_dgram_qlen).
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import gc
import os
import select
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from _support import DatagramRecorder as Recorder
from _support import Signal, passes, run

PY313 = sys.version_info >= (3, 13)
HEADER = 8 if PY313 else 0
# gh-114887 (3.13, backported to 3.12.2 and 3.11.8; PyPy 3.11's stdlib has it): sock= rejects
# only SOCK_STREAM, with "A datagram socket was expected" instead of "A UDP Socket ...".
STREAM_ONLY_REJECTED = sys.version_info >= (3, 12, 2) or (3, 11, 8) <= sys.version_info < (3, 12)
HAS_IPV6 = socket.has_ipv6 and os.path.exists("/proc/net/if_inet6")
AF_UNIX = getattr(socket, "AF_UNIX", -1)
unix_only = pytest.mark.skipif(AF_UNIX == -1, reason="needs AF_UNIX")



class Contexts(list):
    """The contexts passed to the loop's exception handler; ``changed`` at each one."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = Signal()

    def handler(self, _loop: asyncio.AbstractEventLoop, ctx: dict) -> None:
        self.append(ctx)
        self.changed.notify()


def capture_errors(loop: asyncio.AbstractEventLoop) -> Contexts:
    contexts = Contexts()
    loop.set_exception_handler(contexts.handler)
    return contexts


def wait_readable(sock: Any) -> None:
    """Block until ``sock`` has something to read (the kernel queued a datagram for it);
    the timeout is a hang guard."""
    assert select.select([sock.fileno()], [], [], 10)[0], "nothing arrived"


@pytest.fixture
def sockdir() -> Iterator[str]:
    # Short: AF_UNIX paths are limited to ~107 bytes, pytest's tmp_path can be longer.
    path = tempfile.mkdtemp(prefix="tl-dg-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def udp_pair(server_factory: Any = Recorder) -> tuple[Any, Any, Any, Any]:
    """A server endpoint on 127.0.0.1 and a client connected to it (remote_addr)."""
    loop = asyncio.get_running_loop()
    st, server = await loop.create_datagram_endpoint(server_factory, local_addr=("127.0.0.1", 0))
    addr = st.get_extra_info("sockname")
    ct, client = await loop.create_datagram_endpoint(Recorder, remote_addr=addr)
    return st, server, ct, client


async def close_all(*pairs: tuple[Any, Recorder]) -> None:
    for transport, _ in pairs:
        transport.close()
    for _, proto in pairs:
        assert await asyncio.wait_for(proto.lost, 5) is None


# ---------------------------------------------------------------------------- echo


NO_V6 = pytest.mark.skipif(not HAS_IPV6, reason="IPv6 not available")


@pytest.mark.parametrize(
    "host,family",
    [("127.0.0.1", socket.AF_INET), pytest.param("::1", socket.AF_INET6, marks=NO_V6)],
    ids=["v4", "v6"],
)
def test_udp_echo_connected(loop_impl: Any, host: str, family: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, server = await loop.create_datagram_endpoint(
            lambda: Recorder(echo=True), local_addr=(host, 0)
        )
        assert server.events == ["made"]  # connection_made ran before the endpoint returned
        addr = st.get_extra_info("sockname")
        assert st.get_extra_info("peername") is None
        ct, client = await loop.create_datagram_endpoint(Recorder, remote_addr=addr[:2])
        ct_addr = ct.get_extra_info("peername")  # resolved: a 4-tuple for IPv6
        assert isinstance(ct, asyncio.Transport)
        if loop_impl.impl == "tide" or sys.version_info >= (3, 12):
            assert isinstance(ct, asyncio.DatagramTransport)
        assert client.transport is ct
        sock = ct.get_extra_info("socket")
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert sock.family == family and sock.type == socket.SOCK_DGRAM
        assert ct.get_extra_info("peername")[:2] == addr[:2]
        assert ct.get_extra_info("sockname") == sock.getsockname()
        assert ct.get_extra_info("nope", 42) == 42

        for i in range(5):
            ct.sendto(b"msg%d" % i)
        await client.wait_for(5)
        assert [d for d, _ in client.datagrams] == [b"msg%d" % i for i in range(5)]
        assert all(a[:2] == addr[:2] for _, a in client.datagrams)
        assert server.datagrams[0][1] == ct.get_extra_info("sockname")
        with pytest.raises(TypeError) as info:
            ct.sendto("text")
        assert str(info.value) == "data argument must be a bytes-like object, not 'str'"
        with pytest.raises(ValueError) as info2:
            ct.sendto(b"x", (host, addr[1] ^ 1))
        assert str(info2.value) == f"Invalid address: must be None or {ct_addr}"
        ct.sendto(bytearray(b"again"), ct_addr)  # the connected address itself is allowed
        await client.wait_for(6)
        assert client.datagrams[-1][0] == b"again"

        await close_all((ct, client), (st, server))
        assert client.events[0] == "made" and client.events[-1] == ("lost", None)
        assert sock.fileno() == -1

    run(loop_impl, main)


def test_udp_unconnected_sendto(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, server = await loop.create_datagram_endpoint(
            lambda: Recorder(echo=True), local_addr=("127.0.0.1", 0)
        )
        addr = st.get_extra_info("sockname")
        ct, client = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        assert ct.get_extra_info("peername") is None
        ct.sendto(memoryview(b"via memoryview"), addr)
        ct.sendto(b"second", addr)
        await client.wait_for(2)
        assert client.datagrams == [(b"via memoryview", addr), (b"second", addr)]
        await close_all((ct, client), (st, server))

    run(loop_impl, main)


@pytest.mark.parametrize(
    "host,family",
    [("127.0.0.1", socket.AF_INET), pytest.param("::1", socket.AF_INET6, marks=NO_V6)],
    ids=["v4", "v6"],
)
def test_source_addresses_from_interleaved_senders(loop_impl: Any, host: str, family: int) -> None:
    """Datagrams from three senders, interleaved: each arrives with exactly the tuple
    socket.recvfrom gives (the sender's getsockname(), a 4-tuple on IPv6), and an echo to
    that tuple, or to an equal tuple that is another object, reaches the right sender.
    (The compiled build caches the last source address: this is what must not go stale.)"""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, server = await loop.create_datagram_endpoint(
            lambda: Recorder(echo=True), local_addr=(host, 0)
        )
        addr = st.get_extra_info("sockname")
        clients = []
        for _ in range(3):
            clients.append(await loop.create_datagram_endpoint(Recorder, local_addr=(host, 0)))
        order = [0, 0, 1, 2, 1, 1, 0, 2, 2, 0]
        for n, i in enumerate(order):
            clients[i][0].sendto(b"%d" % n, addr)
            await clients[i][1].wait_for(order[: n + 1].count(i))
        expected = [clients[i][0].get_extra_info("sockname") for i in order]
        assert [a for _, a in server.datagrams] == expected
        for i, (_, proto) in enumerate(clients):
            assert [d for d, _ in proto.datagrams] == [
                b"%d" % n for n, j in enumerate(order) if j == i
            ]
        # An equal address that is a different object (not the one just received).
        target = clients[1][0].get_extra_info("sockname")
        st.sendto(b"direct", tuple(list(target)))
        await clients[1][1].wait_for(order.count(1) + 1)
        assert clients[1][1].datagrams[-1] == (b"direct", addr)
        await close_all(*clients, (st, server))

    run(loop_impl, main)


def test_allow_broadcast_with_remote_addr_does_not_connect(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, server = await loop.create_datagram_endpoint(
            lambda: Recorder(echo=True), local_addr=("127.0.0.1", 0)
        )
        addr = st.get_extra_info("sockname")
        ct, client = await loop.create_datagram_endpoint(
            Recorder, remote_addr=addr, allow_broadcast=True
        )
        sock = ct.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST)
        assert ct.get_extra_info("peername") is None
        ct.sendto(b"x")  # goes to the remote_addr given
        await client.wait_for(1)
        with pytest.raises(ValueError) as info:
            ct.sendto(b"x", ("127.0.0.1", 9))
        assert str(info.value) == f"Invalid address: must be None or {addr}"
        await close_all((ct, client), (st, server))

    run(loop_impl, main)


def test_empty_datagrams(loop_impl: Any) -> None:
    async def main() -> None:
        st, server, ct, client = await udp_pair()
        ct.sendto(b"")
        ct.sendto(b"end")
        await server.wait_for(2 if PY313 else 1)
        expected = [b"", b"end"] if PY313 else [b"end"]  # 3.13 sends them (gh-113812)
        assert [d for d, _ in server.datagrams] == expected
        await close_all((ct, client), (st, server))

    run(loop_impl, main)


@pytest.mark.parametrize(
    "host,size",
    [("127.0.0.1", 65507), pytest.param("::1", 65527, marks=NO_V6)],
    ids=["v4", "v6"],
)
def test_largest_udp_datagram_is_not_truncated(loop_impl: Any, host: str, size: int) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, server = await loop.create_datagram_endpoint(Recorder, local_addr=(host, 0))
        ct, client = await loop.create_datagram_endpoint(
            Recorder, remote_addr=st.get_extra_info("sockname")[:2]
        )
        payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
        ct.sendto(payload)
        await server.wait_for(1)
        assert server.datagrams[0][0] == payload
        await close_all((ct, client), (st, server))

    run(loop_impl, main)


# ---------------------------------------------------------------------------- errors


def test_error_received_connection_refused(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ct, client = await loop.create_datagram_endpoint(
            Recorder, remote_addr=("127.0.0.1", free_udp_port())
        )
        await asyncio.sleep(0)  # reading starts on the pass after connection_made
        exc = None
        for _ in range(50):  # the ICMP error arrives asynchronously; resend until seen
            ct.sendto(b"anyone?")
            try:
                exc = await asyncio.wait_for(asyncio.shield(client.error), 0.1)
                break
            except TimeoutError:
                pass
        assert isinstance(exc, ConnectionRefusedError)
        assert not ct.is_closing()  # not fatal
        ct.close()
        assert await client.lost is None
        assert client.events[0] == "made"
        assert ("error", ConnectionRefusedError) in client.events

    run(loop_impl, main)


def test_unconnected_sendto_without_addr_is_fatal(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        contexts = capture_errors(loop)
        ct, client = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        ct.sendto(b"nowhere")  # sock.sendto(data, None): TypeError, a fatal error
        assert ct.is_closing()
        exc = await client.lost
        assert isinstance(exc, TypeError)
        assert len(contexts) == 1
        assert contexts[0]["message"] == "Fatal write error on datagram transport"
        assert contexts[0]["exception"] is exc
        assert contexts[0]["transport"] is ct
        assert contexts[0]["protocol"] is client

    run(loop_impl, main)


def test_datagram_received_exception_is_reported_not_fatal(loop_impl: Any) -> None:
    class Boom(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            if data == b"boom":
                raise ZeroDivisionError("boom")

    async def main() -> None:
        contexts = capture_errors(asyncio.get_running_loop())
        st, server, ct, client = await udp_pair(Boom)
        ct.sendto(b"boom")
        await server.wait_for(1)
        await contexts.changed.until(lambda: contexts)
        # An absence check, not a wait: no second report in the next passes.
        await passes()
        assert len(contexts) == 1
        assert isinstance(contexts[0]["exception"], ZeroDivisionError)
        assert not st.is_closing()
        ct.sendto(b"still open")
        await server.wait_for(2)
        await close_all((ct, client), (st, server))

    run(loop_impl, main)


def test_protocol_without_datagram_received(loop_impl: Any) -> None:
    async def main() -> None:
        contexts = capture_errors(asyncio.get_running_loop())
        st, server, ct, client = await udp_pair(asyncio.BaseProtocol)  # accepted as in asyncio
        ct.sendto(b"x")
        await contexts.changed.until(lambda: contexts)
        assert isinstance(contexts[0]["exception"], AttributeError)
        assert not st.is_closing()
        st.close()
        await close_all((ct, client))

    run(loop_impl, main)


def test_set_protocol_switches_receiver(loop_impl: Any) -> None:
    async def main() -> None:
        st, server, ct, client = await udp_pair()
        other = Recorder()
        st.set_protocol(other)
        assert st.get_protocol() is other
        ct.sendto(b"to the new one")
        await other.wait_for(1)
        assert server.datagrams == []
        await close_all((ct, client), (st, other))

    run(loop_impl, main)


# ---------------------------------------------------------------------------- endpoint arguments


ARG_ERRORS = {  # id: (kwargs, exception type, message): asyncio's, on every version
    "no-address-no-family": ({}, ValueError, "unexpected address family"),
    "local-3-tuple": ({"local_addr": ("127.0.0.1", 0, 0)}, TypeError, "2-tuple is expected"),
    "remote-str": ({"remote_addr": "h:53"}, TypeError, "2-tuple is expected"),
    "families-disagree": (
        {"local_addr": ("127.0.0.1", 0), "remote_addr": ("::1", 1)},
        ValueError,
        "can not get address information",
    ),
    "unix-tuple": ({"family": AF_UNIX, "local_addr": ("a", 0)}, TypeError, "string is expected"),
    "unix-bytes": ({"family": AF_UNIX, "remote_addr": b"/x"}, TypeError, "string is expected"),
}


@pytest.mark.parametrize("kwargs,exc_type,message", ARG_ERRORS.values(), ids=ARG_ERRORS)
def test_endpoint_argument_errors(
    loop_impl: Any, kwargs: dict, exc_type: type, message: str
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(exc_type) as info:
            await loop.create_datagram_endpoint(asyncio.DatagramProtocol, **kwargs)
        assert type(info.value) is exc_type
        assert str(info.value) == message

    run(loop_impl, main)


def test_reuse_address_is_not_a_parameter(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TypeError) as info:
            await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), reuse_address=True
            )
        assert "unexpected keyword argument 'reuse_address'" in str(info.value)

    run(loop_impl, main)


def test_sock_argument_errors(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            with pytest.raises(ValueError) as info:
                await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=tcp)
            what = "A datagram socket" if STREAM_ONLY_REJECTED else "A UDP Socket"
            assert str(info.value) == f"{what} was expected, got {tcp!r}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            with pytest.raises(ValueError) as info:
                await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol,
                    sock=udp,
                    local_addr=("127.0.0.1", 0),
                    family=socket.AF_INET,
                    reuse_port=True,
                )
            assert str(info.value) == (
                "socket modifier keyword arguments can not be used when sock is specified. "
                f"(local_addr={('127.0.0.1', 0)}, family={socket.AF_INET}, reuse_port=True)"
            )

    run(loop_impl, main)


def test_sock_argument(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        assert sock.getblocking()
        tr, proto = await loop.create_datagram_endpoint(Recorder, sock=sock)
        assert not sock.getblocking()  # made non-blocking
        assert tr.get_extra_info("sockname") == sock.getsockname()
        with pytest.raises(RuntimeError):  # the fd belongs to the transport now
            loop.add_reader(sock.fileno(), lambda: None)
        await close_all((tr, proto))
        assert sock.fileno() == -1  # closed with the transport

    run(loop_impl, main)


def test_reuse_port(loop_impl: Any) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        t1, p1 = await loop.create_datagram_endpoint(
            Recorder, local_addr=("127.0.0.1", 0), reuse_port=True
        )
        addr = t1.get_extra_info("sockname")
        t2, p2 = await loop.create_datagram_endpoint(Recorder, local_addr=addr, reuse_port=True)
        assert t2.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        await close_all((t1, p1), (t2, p2))

    run(loop_impl, main)


def test_family_only_unbound_socket_and_send_error(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        st, server = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        tr, proto = await loop.create_datagram_endpoint(Recorder, family=socket.AF_INET)
        assert tr.get_extra_info("sockname") == ("0.0.0.0", 0)
        # Broadcast without SO_BROADCAST: EACCES from sendto, to error_received at once.
        tr.sendto(b"x", ("255.255.255.255", 9))
        assert proto.events == ["made", ("error", PermissionError)]
        assert not tr.is_closing()
        tr.sendto(b"hi", st.get_extra_info("sockname"))  # binds implicitly
        await server.wait_for(1)
        await close_all((tr, proto), (st, server))

    run(loop_impl, main)


# ---------------------------------------------------------------------------- AF_UNIX


@unix_only
def test_unix_datagram_echo_and_stale_socket(loop_impl: Any, sockdir: str) -> None:
    server_path = os.path.join(sockdir, "srv")
    client_path = os.path.join(sockdir, "cli")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(2):  # the second round finds stale socket files and removes them
            st, server = await loop.create_datagram_endpoint(
                lambda: Recorder(echo=True), local_addr=server_path, family=socket.AF_UNIX
            )
            ct, client = await loop.create_datagram_endpoint(
                Recorder,
                local_addr=client_path,
                remote_addr=server_path,
                family=socket.AF_UNIX,
            )
            assert st.get_extra_info("sockname") == server_path
            assert ct.get_extra_info("peername") == server_path
            ct.sendto(b"over unix")
            await client.wait_for(1)
            assert client.datagrams == [(b"over unix", server_path)]
            assert server.datagrams == [(b"over unix", client_path)]
            ct.close()
            st.close()
            await client.lost
            await server.lost
            assert os.path.exists(server_path)  # asyncio leaves the file behind

    run(loop_impl, main)


@unix_only
def test_unix_local_path_that_is_not_a_socket_is_kept(loop_impl: Any, sockdir: str) -> None:
    path = os.path.join(sockdir, "regular-file")
    with open(path, "w") as f:
        f.write("keep me")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(OSError):  # EADDRINUSE: only socket files are removed
            await loop.create_datagram_endpoint(Recorder, local_addr=path, family=socket.AF_UNIX)
        with open(path) as f:
            assert f.read() == "keep me"

    run(loop_impl, main)


# ---------------------------------------------------------------------------- flow control


async def _blocked_unix_client(
    sockdir: str, high: int | None = None
) -> tuple[Any, Recorder, socket.socket, int]:
    """A connected Unix datagram transport whose peer does not read, sent to until buffering.

    Returns (transport, protocol, peer socket, number of datagrams that went out at once).
    """
    loop = asyncio.get_running_loop()
    path = os.path.join(sockdir, "peer")
    peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    peer.bind(path)
    peer.setblocking(False)
    tr, proto = await loop.create_datagram_endpoint(
        Recorder, remote_addr=path, family=socket.AF_UNIX
    )
    if high is not None:
        tr.set_write_buffer_limits(high=high)
    sent = 0
    while tr.get_write_buffer_size() == 0:
        tr.sendto(b"%06d" % sent + b"." * 994)
        sent += 1
        assert sent < 100_000, "the peer's queue never filled"
    return tr, proto, peer, sent - 1


def _drain(peer: socket.socket, got: list[bytes]) -> None:
    while True:
        try:
            got.append(peer.recv(65536))
        except BlockingIOError:
            return


async def _receive(peer: socket.socket, got: list[bytes], n: int) -> None:
    """Read datagrams from ``peer`` into ``got`` until there are at least ``n``, each
    awaited with loop.sock_recv."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(10):
        while len(got) < n:
            got.append(await loop.sock_recv(peer, 65536))
            _drain(peer, got)


@unix_only
def test_flow_control_pause_resume_and_order(loop_impl: Any, sockdir: str) -> None:
    async def main() -> None:
        tr, proto, peer, immediate = await _blocked_unix_client(sockdir, high=10_000)
        assert proto.events == ["made"]
        assert tr.get_write_buffer_size() == 1000 + HEADER
        total = immediate + 1
        while "pause" not in proto.events:
            tr.sendto(b"%06d" % total + b"." * 994)
            total += 1
        buffered = total - immediate
        assert tr.get_write_buffer_size() == buffered * (1000 + HEADER)
        assert tr.get_write_buffer_size() > 10_000
        assert proto.events == ["made", "pause"]

        got: list[bytes] = []
        await _receive(peer, got, total)
        assert got == [b"%06d" % i + b"." * 994 for i in range(total)]
        assert proto.events == ["made", "pause", "resume"]
        if loop_impl.impl == "tide" or sys.version_info[:3] != (3, 13, 0):
            # asyncio 3.13.0 never subtracts the header again (CPython gh-135444).
            assert tr.get_write_buffer_size() == 0
        tr.close()
        assert await proto.lost is None
        peer.close()

    run(loop_impl, main)


@unix_only
def test_close_flushes_buffer_first(loop_impl: Any, sockdir: str) -> None:
    async def main() -> None:
        tr, proto, peer, immediate = await _blocked_unix_client(sockdir)
        tr.close()
        assert tr.is_closing()
        tr.close()  # idempotent
        # An absence check, not a wait: the peer's queue is full, and no connection_lost
        # comes in the next passes.
        await passes()
        assert not proto.lost.done()  # waits for the buffer
        got: list[bytes] = []
        await _receive(peer, got, immediate + 1)
        assert await asyncio.wait_for(proto.lost, 10) is None
        _drain(peer, got)
        assert len(got) == immediate + 1
        assert proto.events[-1] == ("lost", None)
        assert proto.events.count(("lost", None)) == 1
        peer.close()

    run(loop_impl, main)


@unix_only
def test_abort_drops_buffer(loop_impl: Any, sockdir: str) -> None:
    async def main() -> None:
        tr, proto, peer, immediate = await _blocked_unix_client(sockdir)
        tr.abort()
        assert tr.is_closing()
        assert not proto.lost.done()  # connection_lost comes on a later pass
        assert await proto.lost is None
        tr.abort()
        tr.close()
        await passes()  # an absence check, not a wait: no second connection_lost
        assert proto.events == ["made", ("lost", None)]
        got: list[bytes] = []
        _drain(peer, got)
        assert len(got) == immediate  # the buffered datagram was dropped
        peer.close()

    run(loop_impl, main)


# ---------------------------------------------------------------------------- lifecycle


def test_close_in_connection_made_never_reads(loop_impl: Any) -> None:
    class CloseAtOnce(Recorder):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tr, proto = await loop.create_datagram_endpoint(CloseAtOnce, local_addr=("127.0.0.1", 0))
        assert await proto.lost is None
        assert proto.events == ["made", ("lost", None)]
        assert tr.get_extra_info("socket").fileno() == -1

    run(loop_impl, main)


def test_tide_sendto_after_connection_lost_is_ignored() -> None:
    # asyncio raises AttributeError here (it calls into the transport's released loop).
    import tideloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tr, proto = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        tr.close()
        tr.sendto(b"x", ("127.0.0.1", 9))  # unconnected, before connection_lost: sent
        assert await proto.lost is None
        for _ in range(3):
            tr.sendto(b"x", ("127.0.0.1", 9))  # after it: dropped
        tr.abort()
        tr.close()
        assert proto.events == ["made", ("lost", None)]
        assert tr.get_write_buffer_size() == 0

        # A socket connected by the caller (sock=): send() by fd number when compiled. After
        # connection_lost that number may belong to another socket: nothing may go there.
        st, server = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(st.get_extra_info("sockname"))
        old_fd = sock.fileno()
        tr, proto = await loop.create_datagram_endpoint(Recorder, sock=sock)
        await close_all((tr, proto))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as reuse:
            reuse.connect(st.get_extra_info("sockname"))
            assert reuse.fileno() == old_fd
            tr.sendto(b"misdirected")
            # Had it gone out through old_fd (now ``reuse``), it would come before this.
            reuse.send(b"marker")
            await server.wait_for(1)
        await passes()
        assert [d for d, _ in server.datagrams] == [b"marker"]
        await close_all((st, server))

    run(tideloop.new_event_loop, main)


def test_sendto_after_close_connected_is_dropped(loop_impl: Any) -> None:
    async def main() -> None:
        st, server, ct, client = await udp_pair()
        ct.close()
        ct.sendto(b"lost")  # dropped silently (asyncio warns from the 5th on)
        await client.lost
        ct.sendto(b"lost")
        # An absence check, not a wait: nothing arrives at the server meanwhile.
        await asyncio.sleep(0.05)
        assert server.datagrams == []
        await close_all((st, server))

    run(loop_impl, main)


def test_pause_resume_reading(loop_impl: Any) -> None:
    async def main() -> None:
        st, server, ct, client = await udp_pair()
        assert st.is_reading()
        st.pause_reading()
        st.pause_reading()
        assert not st.is_reading()
        ct.sendto(b"held")
        wait_readable(st.get_extra_info("socket"))
        # An absence check, not a wait: the datagram is queued, the paused transport does
        # not take it in the next passes.
        await passes()
        assert server.datagrams == []
        st.resume_reading()
        st.resume_reading()
        await server.wait_for(1)
        assert server.datagrams[0][0] == b"held"
        st.close()
        assert not st.is_reading()
        await close_all((ct, client))
        await server.lost

    run(loop_impl, main)


@pytest.mark.parametrize("action", ["pause", "close"])
def test_burst_stops_when_callback_pauses_or_closes(loop_impl: Any, action: str) -> None:
    """Several datagrams queued at once: a datagram_received that pauses (or closes) the
    transport gets no further datagram in the same pass (tideloop reads a batch per
    readiness event; asyncio reads one)."""

    class Stopper(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            super().datagram_received(data, addr)
            if action == "pause":
                self.transport.pause_reading()
            else:
                self.transport.close()

    async def main() -> None:
        st, server, ct, client = await udp_pair(Stopper)
        st.pause_reading()
        for i in range(8):
            ct.sendto(b"%d" % i)
        # Not a wait for an event: time for the kernel to queue all eight (nothing tells
        # how many are queued; had fewer been, the test would be weaker, not failing).
        await asyncio.sleep(0.05)
        wait_readable(st.get_extra_info("socket"))
        st.resume_reading()
        await server.wait_for(1)
        # An absence check, not a wait: no second datagram in the next passes.
        await passes()
        assert [d for d, _ in server.datagrams] == [b"0"]
        if action == "pause":
            st.resume_reading()
            await server.wait_for(2)
            assert [d for d, _ in server.datagrams] == [b"0", b"1"]
            st.close()
        await close_all((ct, client))
        await server.lost

    run(loop_impl, main)


def test_callbacks_run_in_creators_context(loop_impl: Any) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    class Ctx(Recorder):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            seen.append(var.get())
            super().datagram_received(data, addr)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        var.set("creator")
        st, server = await loop.create_datagram_endpoint(Ctx, local_addr=("127.0.0.1", 0))
        var.set("later")
        ct, client = await loop.create_datagram_endpoint(
            Recorder, remote_addr=st.get_extra_info("sockname")
        )
        ct.sendto(b"x")
        await server.wait_for(1)
        assert seen == ["creator"]
        await close_all((ct, client), (st, server))

    run(loop_impl, main)


def test_waiter_cancelled_closes_transport(loop_impl: Any) -> None:
    made: list[Recorder] = []

    def factory() -> Recorder:
        proto = Recorder()
        made.append(proto)
        return proto

    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0)))
        while not made:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await made[0].lost is None

    run(loop_impl, main)


def test_protocol_factory_error_propagates(loop_impl: Any) -> None:
    def factory() -> Any:
        raise RuntimeError("no protocol")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(RuntimeError, match="no protocol"):
            await loop.create_datagram_endpoint(factory, local_addr=("127.0.0.1", 0))

    if loop_impl.impl == "aio":
        # asyncio leaks the socket it made here (tideloop closes it): collect it quietly.
        with pytest.warns(ResourceWarning):
            run(loop_impl, main)
            gc.collect()
    else:
        run(loop_impl, main)


def test_unclosed_transport_warns(loop_impl: Any) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        return tr.get_extra_info("socket")

    with pytest.warns(ResourceWarning, match="unclosed transport"):
        sock = run(loop_impl, main)
        gc.collect()
    assert sock.fileno() == -1


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/fd")
def test_no_fd_leak(loop_impl: Any, sockdir: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            st, server = await loop.create_datagram_endpoint(
                lambda: Recorder(echo=True), local_addr=("127.0.0.1", 0)
            )
            ct, client = await loop.create_datagram_endpoint(
                Recorder, remote_addr=st.get_extra_info("sockname")
            )
            ct.sendto(b"x")
            await client.wait_for(1)
            ct.abort()
            st.close()
            await client.lost
            await server.lost
            with pytest.raises(ValueError):
                await loop.create_datagram_endpoint(
                    Recorder, local_addr=("127.0.0.1", 0), remote_addr=("::1", 1)
                )
            with pytest.raises(OSError) as info:  # the socket that failed to bind is closed
                await loop.create_datagram_endpoint(Recorder, local_addr=taken.getsockname())
            assert info.value.errno == errno.EADDRINUSE

    run(loop_impl, lambda: asyncio.sleep(0))  # warm up lazily created fds (executor, ...)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        before = len(os.listdir("/proc/self/fd"))
        run(loop_impl, main)
        gc.collect()
        assert len(os.listdir("/proc/self/fd")) <= before
