"""The datagram-socket transport (UDP and Unix datagram), for asyncio.DatagramProtocol.

Semantics are asyncio's ``_SelectorDatagramTransport`` of the running Python, names included:

    start -> connection_made [-> datagram_received | error_received]* -> connection_lost -> end

- connection_made runs on the pass after creation; reading starts on the pass after that
  (a protocol that pauses reading in connection_made never sees a datagram), then the waiter.
- One readiness event reads one datagram: ``recvfrom(max_size)`` -> datagram_received(data,
  addr), in the transport's context (max_size: 256 KiB as asyncio, 64 KiB for IP sockets,
  see ``_MAX_SIZE_INET``). An OSError from recvfrom (ECONNREFUSED after an ICMP
  port-unreachable on a connected socket, ...) goes to error_received and is not fatal.
- sendto() tries the socket at once and buffers the datagram only if the kernel would block;
  the fd is watched for writability only while the buffer is non-empty. An OSError from the
  send goes to error_received (the datagram is dropped), any other exception is fatal.
- Flow control counts each buffered datagram as ``len(data)`` bytes, plus an 8-byte header on
  3.13+ (asyncio 3.13 counts the header so that empty datagrams, which 3.13 sends and older
  versions silently drop, still fill the buffer).
- close() stops reading, lets the buffer drain, then connection_lost(None); abort() drops the
  buffer and calls connection_lost(None) on the next pass.

Where this differs from asyncio, on purpose (each a crash or a leak there):

- asyncio 3.13.0 adds the header on buffering but not on flushing, so get_write_buffer_size()
  never returns to 0 after the buffer was used (CPython gh-135444, fixed later); this counts
  the header both ways, as the fixed asyncio does.
- When the buffer drains after close(), asyncio calls connection_lost without setting
  ``_conn_lost``; a later abort() or sendto() then calls into the released loop and raises
  AttributeError. Here ``_conn_lost`` is set first, so they are no-ops (counted as writes
  after the connection was lost, with asyncio's warning from the 5th on).
- A datagram that an unconnected transport sends after close() (asyncio still tries those)
  and that would block is dropped instead of buffered: nothing would flush it.

Readiness comes straight from the loop: TransportCore's ``_on_readable`` / ``_on_writable``
enter the event's context and call ``_read_ready`` / ``_write_ready`` here (see "Contexts"
in ``base.py``). An exception raised by datagram_received() or error_received()
escapes to the loop, which reports it through the exception handler and keeps the transport
open, as asyncio does for its reader handle.

Invariant: ``_buffer`` holds ``(bytes, addr)`` tuples; ``_buffer_size`` is the sum of
``len(data) + _HEADER_SIZE`` over them.
Invariant: the fd is watched for writing iff ``_buffer`` is non-empty; then ``_state < LOST``.
Invariant: the fd is watched for reading iff ``_reading``; then connection_made has been
scheduled and ``is_reading()``.
Invariant: ``_state >= LOST`` once connection_lost is scheduled or has run (so ``_loop`` is
never used after it is released).
"""

from __future__ import annotations

import collections
import socket
import sys
from asyncio import transports as _transports
from asyncio import trsock as _trsock
from typing import Any

from .base import CLOSING, LOST, Facade, ReadFacade, TransportCore, WriteFacade, _protocol_method

_MAX_SIZE = 256 * 1024  # as asyncio (_SelectorTransport.max_size): the most one recvfrom asks
# An IP datagram carries at most 65535 bytes in all (UDP: 65507 payload bytes over IPv4, 65527
# over IPv6; Linux has no UDP jumbograms), so asking for more can only cost: recvfrom mallocs
# the full size and shrinks it, and 256 KiB is above glibc's mmap threshold, which made every
# read an mmap + mremap + munmap (3 syscalls, 3x the CPU of a UDP echo). 64 KiB stays on the
# heap and truncates nothing. Unix datagrams can be larger: they keep asyncio's 256 KiB.
_MAX_SIZE_INET = 64 * 1024
_INET_FAMILIES = (
    (socket.AF_INET, socket.AF_INET6) if hasattr(socket, "AF_INET6") else (socket.AF_INET,)
)
# asyncio 3.13 sends empty datagrams (gh-113812) and counts a UDP header per buffered
# datagram; 3.11 and 3.12 return from sendto(b"") without sending and count payload only.
_SEND_EMPTY = sys.version_info >= (3, 13)
_DATAGRAMS_PER_PASS = 16  # the most _on_readable delivers per readiness event
_HEADER_SIZE = 8 if _SEND_EMPTY else 0
# True in the compiled build: a connected socket's send() goes through _sockio.pxd's C shim
# (same semantics as socket.send, without its per-call overhead), and so do an IP socket's
# recvfrom and its sendto back to the address last received (see _on_readable / sendto);
# pure mode calls the socket methods.
_NATIVE = not __file__.endswith(".py")


class DatagramCore(TransportCore):
    """The working half of a datagram transport; see the module docstring."""

    __slots__ = (
        "_buffer",
        "_address",
        "_connected",
        "_max_size",
        "_native_addrs",
        "_raddr",
        "_raddr_raw",
        "_datagram_received",
        "_error_received",
    )

    def __init__(self, loop: Any, sock: Any, address: Any, extra: dict | None) -> None:
        TransportCore.__init__(self, loop, sock, sock.fileno(), extra)
        self._buffer = collections.deque()
        # The remote_addr given to create_datagram_endpoint (None for an unconnected socket).
        self._address = address
        # The socket has a peer (extra "peername" is true): send(), not sendto().
        self._connected = False
        self._max_size = _MAX_SIZE_INET if sock.family in _INET_FAMILIES else _MAX_SIZE
        # Compiled, IP: recvfrom/sendto through the C shims. _raddr is the address tuple of
        # the last datagram whose source differed from the one before, _raddr_raw its raw
        # sockaddr: invariant, _raddr is what socket.recvfrom returns for _raddr_raw.
        self._native_addrs = _NATIVE and sock.family in _INET_FAMILIES
        self._raddr: Any = None
        self._raddr_raw: Any = None
        # The protocol's bound methods, looked up once per set_protocol() (as uvloop does).
        self._datagram_received = None
        self._error_received = None

    # ------------------------------------------------------------------ protocol

    def set_protocol(self, protocol: Any) -> None:
        self._datagram_received = _protocol_method(protocol, "datagram_received")
        self._error_received = _protocol_method(protocol, "error_received")
        self._protocol = protocol
        self._protocol_connected = True

    # ------------------------------------------------------------------ reading

    def _read_ready(self) -> None:
        """Deliver up to _DATAGRAMS_PER_PASS queued datagrams, stopping at EAGAIN, an error,
        or once a callback paused or closed the transport.

        asyncio delivers one per pass; a busy server then pays one epoll_wait per datagram
        (measured: udp-1k-c10 made exactly as many epoll_wait calls as recvfrom). libuv, and
        so uvloop, reads up to 32 per readiness event. The order of datagrams and callbacks
        is unchanged; only other callbacks wait for the batch.
        """
        if self._state >= LOST:
            return
        for _ in range(_DATAGRAMS_PER_PASS):
            try:
                if self._native_addrs:
                    rx = self._recv_state.rx
                    data = tideloop_recvfrom_data(rx, self._sock_fd, self._max_size)  # noqa: F821
                    if tideloop_last_addr_is(rx, self._raddr_raw):  # noqa: F821
                        addr = self._raddr
                    else:
                        raw = tideloop_last_addr_raw(rx)  # noqa: F821
                        addr = tideloop_addr_tuple(raw)  # noqa: F821
                        self._raddr_raw = raw
                        self._raddr = addr
                else:
                    data, addr = self._sock.recvfrom(self._max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._datagram_received(data, addr)
            if not self._reading or self._state >= LOST:
                return

    # ------------------------------------------------------------------ writing

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram to addr (the connected address if None); buffer it if blocked."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if not _SEND_EMPTY and not data:
            return
        if self._address:
            if addr not in (None, self._address):
                raise ValueError(f"Invalid address: must be None or {self._address}")
            addr = self._address
        if self._sock is None or (self._state >= LOST and self._address):
            # (_sock is None: connection_lost ran, or the facade's finalizer closed the socket
            # while someone kept this bound method; the fd number may already be reused.)
            self._write_after_conn_lost()
            return
        if not self._buffer:
            # Attempt to send it right away first.
            try:
                if not self._connected:
                    if addr is self._raddr and addr is not None:
                        # The address last received (checked by identity: an echo passes
                        # back the very tuple it got): its raw sockaddr is cached.
                        tideloop_sendto_raw(self._sock_fd, data, self._raddr_raw)  # noqa: F821
                    else:
                        self._sock.sendto(data, addr)
                elif _NATIVE:
                    tideloop_send(self._sock_fd, data)  # noqa: F821
                else:
                    self._sock.send(data)
                return
            except (BlockingIOError, InterruptedError):
                if self._state >= LOST:
                    return  # connection_lost is scheduled: nothing would flush it
                self._add_writer()
            except OSError as exc:
                self._error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        # Ensure that what we buffer is immutable (bytes(b) is b for an exact bytes object).
        chunk = bytes(data)
        self._buffer.append((chunk, addr))
        self._buffer_size += len(chunk) + _HEADER_SIZE
        self._maybe_pause_protocol()

    def _write_ready(self) -> None:
        if self._state >= LOST:
            return
        buffer = self._buffer
        while buffer:
            item = buffer.popleft()
            data = item[0]
            self._buffer_size -= len(data) + _HEADER_SIZE
            try:
                if not self._connected:
                    self._sock.sendto(data, item[1])
                elif _NATIVE:
                    tideloop_send(self._sock_fd, data)  # noqa: F821
                else:
                    self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                buffer.appendleft(item)  # Try again later.
                self._buffer_size += len(data) + _HEADER_SIZE
                break
            except OSError as exc:
                self._error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal write error on datagram transport")
                return
        self._maybe_resume_protocol()  # May append to the buffer, or abort.
        if not buffer and self._state < LOST:
            self._loop._remove_writer(self._sock_fd)
            if self._state == CLOSING:
                self._conn_lost += 1
                self._call_connection_lost(None)

    def _clear_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_size = 0

    # ------------------------------------------------------------------ closing

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            TransportCore._call_connection_lost(self, exc)
        finally:
            # Release the protocol, as the base class does with _protocol.
            self._datagram_received = self._error_received = None

    def __repr__(self) -> str:
        info = [type(self).__name__]
        state = self._repr_state()
        if state:
            info.append(state)
        info.append(f"fd={self._sock_fd}")
        if self._loop is not None and not self._loop.is_closed():
            info.append("read=polling" if self._reading else "read=idle")
            info.append(
                f"write=<{'polling' if self._buffer else 'idle'}, bufsize={self._buffer_size}>"
            )
        return "<{}>".format(" ".join(info))


class DatagramTransport(
    Facade, ReadFacade, WriteFacade, _transports.Transport, _transports.DatagramTransport
):
    """tideloop's UDP/Unix datagram transport: a facade over a DatagramCore.

    Both an ``asyncio.DatagramTransport`` and an ``asyncio.Transport``, as asyncio's own
    datagram transport is (CPython's test_events asserts the latter); write() and the other
    stream-only methods raise NotImplementedError, as there.

    ``sendto`` is not a method here but a slot holding the core's bound ``sendto``: the
    hottest call a protocol makes then goes straight to the core, with no forwarding frame.
    """

    __slots__ = ("_core", "sendto", "__weakref__")

    def __init__(self, core: DatagramCore) -> None:
        self._core = core
        self.sendto = core.sendto


def make_datagram_transport(
    loop: Any,
    sock: Any,
    protocol: Any,
    address: Any = None,
    waiter: Any = None,
    extra: dict | None = None,
) -> DatagramTransport:
    """Create a datagram transport over a non-blocking datagram socket and start it.

    ``address`` is the remote address sendto() defaults to and insists on (create_datagram_
    endpoint's remote_addr, resolved); the socket may or may not be connected to it
    (allow_broadcast skips the connect). connection_made(transport) runs on the next pass,
    then reading starts, then ``waiter`` (if any) gets None. The socket becomes the
    transport's; it is closed with it.
    """
    core = DatagramCore(loop, sock, address, extra)
    transport = DatagramTransport(core)
    core._facade = transport
    extra_info = core._extra
    extra_info["socket"] = _trsock.TransportSocket(sock)
    try:
        extra_info["sockname"] = sock.getsockname()
    except OSError:
        extra_info["sockname"] = None
    if "peername" not in extra_info:
        try:
            extra_info["peername"] = sock.getpeername()
        except OSError:
            extra_info["peername"] = None
    core._connected = bool(extra_info["peername"])
    core.set_protocol(protocol)
    loop._transports[core._sock_fd] = transport
    core._start(waiter)
    return transport
