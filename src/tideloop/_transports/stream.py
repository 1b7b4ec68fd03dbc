"""The stream-socket transport (TCP and Unix), serving Protocol and BufferedProtocol.

Semantics are asyncio's ``_SelectorSocketTransport`` (3.12), names included:

    start -> connection_made [-> data_received | buffer_updated]* [-> eof_received]?
          -> connection_lost -> end

- connection_made runs on the pass after creation; reading starts on the pass after that
  (so a protocol that pauses reading in connection_made never sees data), then the waiter.
- write(bytes) made while the loop runs, with nothing buffered, is *deferred* to the end of
  the pass (``_on_flush``), and so is every write after it in the pass: everything written
  to the transport in that pass leaves in one ``sendmsg`` (a response's headers and body: one
  send, one TCP segment, where asyncio makes two). A first write of a bytearray or
  memoryview (which would need a copy to be kept) or one made while the loop is not running
  sends at once; so does a write that takes the deferred bytes over the high watermark or
  ``_DEFER_MAX`` (64 KiB), with the deferred bytes before it. What the kernel does not take
  stays buffered, and the fd is watched for writability only while that buffer is
  non-empty; ``_on_writable`` flushes it with ``sendmsg`` too. Flow control is unchanged:
  deferred bytes never exceed the high watermark, so pause_writing() comes only from write()
  itself, once the kernel has refused bytes, as in asyncio. close(), abort(), write_eof(),
  set_write_buffer_limits() and sendfile's handover send the deferred bytes first (abort()
  then drops what the kernel refused, as asyncio's does). get_write_buffer_size() does not
  count deferred bytes (asyncio would have handed them to the kernel).
- pause_writing() when the buffer exceeds the high watermark; resume_writing() when it drops
  to the low one or below.
- eof_received() returning a true value keeps the transport open for writing (half-close);
  otherwise the transport closes.
- close() stops reading, lets the buffer drain, then connection_lost(None); abort() drops the
  buffer and calls connection_lost(None) on the next pass.

Readiness comes straight from the loop, without a Handle per event: TransportCore's
``_on_readable`` / ``_on_writable`` enter the event's context and call ``_read_ready`` /
``_write_ready`` here (see "Contexts" in ``base.py``).

Invariant: ``_buffer`` holds bytes-like chunks, none empty; ``_buffer_size`` is their total.
``_buffer`` is None while nothing is buffered (an idle connection keeps no deque: an empty
deque costs ~760 bytes, more than half of what a whole idle connection needs otherwise).
Invariant: ``_deferred`` iff the core is chained for the loop's end-of-pass flush
(``Loop._flush_writes``); while it is
(and state < LOST), ``_buffer`` is empty and ``_pending`` holds this pass's writes (a bytes,
or a list of them once there are several), ``_buffer_size`` bytes, at most the high
watermark and ``_DEFER_MAX``. ``_pending`` is None whenever ``_deferred`` is not set.
Invariant: the fd is watched for writing iff ``_buffer`` is non-empty, not deferred, and
state < LOST.
Invariant: the fd is watched for reading iff ``is_reading()`` and connection_made has run.
"""

from __future__ import annotations

import collections
import contextvars
import os as _os
import socket
from asyncio import constants as _constants
from asyncio import protocols as _protocols
from asyncio import transports as _transports
from asyncio import trsock as _trsock
from typing import Any

from .base import (
    CLOSING,
    LOST,
    STREAM_SHARED_CONTEXT,
    Facade,
    ReadFacade,
    TransportCore,
    WriteFacade,
    _logger,
    _protocol_method,
)

_BufferedProtocol = _protocols.BufferedProtocol
_HAS_SENDMSG = hasattr(socket.socket, "sendmsg")
# sendmsg takes at most IOV_MAX buffers (1024 on Linux; SC_IOV_MAX where available).
try:
    _IOV_MAX = _os.sysconf("SC_IOV_MAX")
except (AttributeError, OSError, ValueError):
    _IOV_MAX = 16
_MAX_SIZE = 256 * 1024  # as asyncio: the most one recv() asks for
# True in the compiled build: recv/send go through _sockio.pxd's C shims (same semantics as
# the socket methods, without their per-call overhead); pure mode calls the socket methods.
_NATIVE = not __file__.endswith(".py")
_SHUT_WR = socket.SHUT_WR
_copy_context = contextvars.copy_context
# The most a pass's writes defer before they are sent at once (and the high watermark, if
# lower): enough for any response's headers and body, and a producer that writes until
# get_write_buffer_size() is non-zero (deferred bytes are not counted) still meets the
# kernel's limit, as on asyncio.
_DEFER_MAX = 64 * 1024
if _os.environ.get("TIDELOOP_DEFER_WRITES") == "0":
    # Read once, at import: every write goes out at once, as asyncio's does (for a program
    # that writes and then blocks the loop waiting for the peer; and for measuring).
    _DEFER_MAX = 0


def _set_nodelay(sock: Any) -> None:
    if (
        sock.family in (socket.AF_INET, socket.AF_INET6)
        and sock.type == socket.SOCK_STREAM
        and sock.proto == socket.IPPROTO_TCP
    ):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StreamCore(TransportCore):
    """The working half of a stream transport; see the module docstring."""

    __slots__ = (
        "_buffer",
        "_eof",
        "_empty_waiter",
        "_buffered",
        "_data_received",
        "_get_buffer",
        "_buffer_updated",
        "_sockname",
        "_peername",
        "_recv_hint",
        "_deferred",
        "_pending",
    )

    def __init__(
        self, loop: Any, sock: Any, extra: dict | None, context: Any = None
    ) -> None:
        TransportCore.__init__(self, loop, sock, sock.fileno(), extra, context)
        self._shared_context = STREAM_SHARED_CONTEXT
        if loop is not None:
            self._is_connection = True
            self._loop._stats.connections += 1
        if extra is None:
            # Built by _make_extra on the first get_extra_info(): an idle connection keeps
            # two tuples instead of a dict and a TransportSocket (~200 bytes less).
            self._extra = None
        # Taken at creation (they are gone once the socket closes); see make_stream_transport.
        self._sockname = None
        self._peername = None
        self._buffer = None
        self._eof = False
        self._empty_waiter = None
        self._buffered = False
        # The protocol's bound methods, looked up once per set_protocol() (as uvloop does).
        self._data_received = None
        self._get_buffer = None
        self._buffer_updated = None
        # Compiled build: the size of the last read, from which a large read goes straight
        # into its bytes object (see _sockio.pxd, tideloop_recv_bytes_hint).
        self._recv_hint = 0
        self._deferred = False
        self._pending = None  # the pass's first deferred write, while it is the only one

    def _make_extra(self) -> dict:
        return {
            "socket": _trsock.TransportSocket(self._sock),
            "sockname": self._sockname,
            "peername": self._peername,
        }

    # ------------------------------------------------------------------ protocol

    def set_protocol(self, protocol: Any) -> None:
        self._buffered = isinstance(protocol, _BufferedProtocol)
        if self._buffered:
            self._get_buffer = _protocol_method(protocol, "get_buffer")
            self._buffer_updated = _protocol_method(protocol, "buffer_updated")
            self._data_received = None
        else:
            self._data_received = _protocol_method(protocol, "data_received")
            self._get_buffer = self._buffer_updated = None
        self._protocol = protocol
        self._protocol_connected = True

    # ------------------------------------------------------------------ reading

    def _read_ready(self) -> None:
        if self._state >= LOST:
            return
        if self._buffered:
            self._read_ready__get_buffer()
        else:
            self._read_ready__data_received()

    def _read_ready__data_received(self) -> None:
        try:
            if _NATIVE:
                data = tideloop_recv_bytes_hint(  # noqa: F821
                    self._recv_state.rx, self._sock_fd, _MAX_SIZE, self._recv_hint
                )
                self._recv_hint = nread = len(data)
            else:
                data = self._sock.recv(_MAX_SIZE)
                nread = len(data)
            self._loop._stats.bytes_read += nread
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not data:
            self._read_ready__on_eof()
            return
        try:
            self._data_received(data)
            if _NATIVE:
                # Unreferenced now? Then the loop's next read of its size reuses it (_sockio.pxd).
                tideloop_recycle_bytes(self._recv_state.rx, data)  # noqa: F821
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")

    def _read_ready__get_buffer(self) -> None:
        try:
            buf = self._get_buffer(-1)
            if not len(buf):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return
        try:
            if _NATIVE:
                nbytes = tideloop_recv_into(self._sock_fd, buf)  # noqa: F821
            else:
                nbytes = self._sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal read error on socket transport")
            return
        if not nbytes:
            self._read_ready__on_eof()
            return
        self._loop._stats.bytes_read += nbytes
        try:
            self._buffer_updated(nbytes)
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.buffer_updated() call failed.")

    def _read_ready__on_eof(self) -> None:
        if self._loop.get_debug():
            _logger().debug("%r received EOF", self._facade)
        try:
            keep_open = self._protocol.eof_received()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if keep_open:
            # Keep the connection open so the protocol can write more, but we can't receive
            # more: stop reading.
            self._stop_reading()
        else:
            self.close()

    # ------------------------------------------------------------------ writing

    def write(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to write; sendfile is in progress")
        if not data:
            return
        if self._state >= LOST:
            self._write_after_conn_lost()
            return
        if self._deferred:
            self._defer_more(data)
            return
        if not self._buffer:
            if (
                type(data) is bytes
                and not self._closing
                and self._loop._thread_id is not None
                and len(data) <= self._high_water
                and len(data) <= _DEFER_MAX
            ):
                self._pending = data
                self._buffer_size = len(data)
                self._defer()
                return
            # Optimization: try to send now.
            n = self._send(data)
            if n < 0 or n == len(data):
                return
            # Not all was written; register write handler.
            self._add_writer()
            self._append(data, n)
        else:
            self._append(data, 0)
        # May pause the protocol.
        self._maybe_pause_protocol()

    def _send(self, data: Any) -> int:
        """One send of ``data`` now: the bytes the kernel took (0: none), or -1 after a fatal
        error (the transport is then lost)."""
        try:
            if _NATIVE:
                n = tideloop_send(self._sock_fd, data)  # noqa: F821
            else:
                n = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return -1
        self._loop._stats.bytes_written += n
        return n

    def _defer(self) -> None:
        """Chain the core to the loop's end-of-pass flush (its bytes are in ``_pending``),
        unless it still is: a flush made at once (close, a write over the limit) leaves the
        core chained, and the chain's flush of it is then a no-op or, after another write,
        this pass's second send. Chained iff ``_flush_next`` is set or it is the tail."""
        self._deferred = True
        loop = self._loop
        tail = loop._flush_tail
        if self._flush_next is not None or tail is self:
            return
        if tail is None:
            loop._flush_head = self
        else:
            tail._flush_next = self
        loop._flush_tail = self

    def _defer_more(self, data: Any) -> None:
        """A later write of the pass: kept after the deferred bytes (``_pending`` becomes a
        list); over the high watermark or ``_DEFER_MAX``, all of them are sent now (what the
        kernel refuses may pause). Only while ``_deferred``."""
        chunk = data if type(data) is bytes else bytes(memoryview(data).cast("B"))
        pending = self._pending
        if type(pending) is list:
            pending.append(chunk)
        else:
            self._pending = [pending, chunk]
        self._buffer_size += len(chunk)
        if self._buffer_size > self._high_water or self._buffer_size > _DEFER_MAX:
            self._flush_deferred()

    def _on_flush(self) -> None:
        self._flush_deferred(True)

    def _flush_deferred(self, at_pass_end: bool = False) -> None:
        """Send the deferred bytes now, in one send (one sendmsg for several writes); what
        the kernel refuses stays in ``_buffer``, watched for writability. No-op unless
        ``_deferred``.

        The writability watch runs in the context asyncio's writer Handle would: a copy of
        the caller's (a write, close...), or at the pass's end, where no write is running, a
        copy of the transport's own (the one data_received runs in); one context per
        transport where asyncio shares one (3.15). Copied only then: a pass whose bytes
        the kernel takes copies none."""
        if not self._deferred:
            return
        self._deferred = False
        pending = self._pending
        self._pending = None
        if self._state >= LOST or pending is None:
            return  # aborted meanwhile: the bytes were dropped
        several = type(pending) is list
        if not several:
            n = self._send(pending)
        elif _NATIVE:
            n = self._sendv(pending)
        else:
            n = self._sendv_py(pending)
        if n < 0:
            return  # fatal: the transport is lost
        if n == self._buffer_size:
            self._buffer_size = 0
            if _NATIVE and not several:
                # As after data_received: an echoed read nobody holds any more is reused.
                tideloop_recycle_bytes(self._recv_state.rx, pending)  # noqa: F821
            return
        self._buffer_size = 0
        if several:
            for chunk in pending:
                size = len(chunk)
                if n >= size:
                    n -= size
                else:
                    self._append(chunk, n)
                    n = 0
        else:
            self._append(pending, n)
        if self._shared_context:
            self._write_context = self._context
        elif at_pass_end:
            self._write_context = self._context.copy()
        else:
            self._write_context = _copy_context()
        self._loop._add_writer(self._sock_fd, self)
        self._maybe_pause_protocol()

    def _sendv(self, chunks: list) -> int:
        """Compiled build: one sendmsg of ``chunks`` (the first 64); as ``_send``."""
        try:
            n = tideloop_sendv(self._sock_fd, chunks)  # noqa: F821
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return -1
        self._loop._stats.bytes_written += n
        return n

    def _sendv_py(self, chunks: list) -> int:
        """Pure build: one sendmsg of ``chunks`` (at most IOV_MAX of them); as ``_send``."""
        try:
            if not _HAS_SENDMSG:
                n = self._sock.send(chunks[0])
            elif len(chunks) > _IOV_MAX:
                n = self._sock.sendmsg(chunks[:_IOV_MAX])
            else:
                n = self._sock.sendmsg(chunks)
        except (BlockingIOError, InterruptedError):
            return 0
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal write error on socket transport")
            return -1
        self._loop._stats.bytes_written += n
        return n

    def _append(self, data: Any, sent: int) -> None:
        """Buffer data[sent:] as an immutable chunk (the caller may reuse its bytearray)."""
        if type(data) is bytes:
            chunk = data if not sent else memoryview(data)[sent:]
        else:
            chunk = bytes(memoryview(data).cast("B")[sent:])
        buffer = self._buffer
        if buffer is None:
            self._buffer = buffer = collections.deque()
        buffer.append(chunk)
        self._buffer_size += len(chunk)

    def writelines(self, list_of_data: Any) -> None:
        if self._eof:
            raise RuntimeError("Cannot call writelines() after write_eof()")
        if self._empty_waiter is not None:
            raise RuntimeError("unable to writelines; sendfile is in progress")
        if self._state >= LOST:
            for data in list_of_data:
                if data:
                    self._write_after_conn_lost()
                    break
            return
        # Every item is checked before any is queued: a bad one queues nothing (asyncio's
        # list of memoryviews fails the same way).
        items = list(list_of_data)
        for data in items:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"data argument must be a bytes-like object, not {type(data).__name__!r}"
                )
        if self._deferred:
            # One at a time through write(): one of them may send the pass's bytes at once
            # (over the limit), and the rest then take write()'s other paths.
            for data in items:
                if data:
                    self.write(data)
            return
        was_empty = not self._buffer
        chunks = []
        for data in items:
            if data:
                chunks.append(data if type(data) is bytes else bytes(memoryview(data).cast("B")))
        if not chunks:
            return
        if was_empty and not self._closing and self._loop._thread_id is not None:
            size = 0
            for chunk in chunks:
                size += len(chunk)
            if size <= self._high_water and size <= _DEFER_MAX:
                self._pending = chunks if len(chunks) > 1 else chunks[0]
                self._buffer_size = size
                self._defer()
                return
        for chunk in chunks:
            self._append(chunk, 0)
        if was_empty:
            self._flush()
            if self._buffer and self._state < LOST:
                self._add_writer()
        self._maybe_pause_protocol()

    def _flush(self) -> bool:
        """Send as much of the buffer as the kernel takes. Return False on a fatal error."""
        buffer = self._buffer
        try:
            if _HAS_SENDMSG and len(buffer) > 1:
                if len(buffer) > _IOV_MAX:
                    n = self._sock.sendmsg([buffer[i] for i in range(_IOV_MAX)])
                else:
                    n = self._sock.sendmsg(buffer)
            elif _NATIVE:
                n = tideloop_send(self._sock_fd, buffer[0])  # noqa: F821
            else:
                n = self._sock.send(buffer[0])
        except (BlockingIOError, InterruptedError):
            return True
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop._remove_writer(self._sock_fd)
            self._clear_buffer()
            self._fatal_error(exc, "Fatal write error on socket transport")
            waiter = self._empty_waiter
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            return False
        self._buffer_size -= n
        self._loop._stats.bytes_written += n
        while n:
            chunk = buffer[0]
            size = len(chunk)
            if n >= size:
                buffer.popleft()
                n -= size
            else:
                buffer[0] = memoryview(chunk)[n:]
                break
        return True

    def _write_ready(self) -> None:
        if self._state >= LOST or not self._buffer:
            return
        if not self._flush():
            return
        self._maybe_resume_protocol()  # May append to the buffer, or abort.
        if self._state >= LOST:
            return  # resume_writing() aborted: _force_close() dropped the buffer and writer
        if not self._buffer:
            self._buffer = None
            self._loop._remove_writer(self._sock_fd)
            waiter = self._empty_waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            if self._state == CLOSING:
                # Counted, so that a later abort() sees the connection as lost (asyncio forgets
                # to, and abort() then fails on the cleared loop).
                self._conn_lost += 1
                self._call_connection_lost(None)
            elif self._eof:
                self._sock.shutdown(_SHUT_WR)

    def _clear_buffer(self) -> None:
        self._buffer = None
        self._pending = None
        self._buffer_size = 0

    def get_write_buffer_size(self) -> int:
        # Deferred bytes are not counted: asyncio's write() would have handed them to the
        # kernel already, and programs read 0 after a write as "nothing held back".
        return 0 if self._deferred else self._buffer_size

    def write_eof(self) -> None:
        if self._closing or self._eof:
            return
        self._flush_deferred()
        if self._state >= LOST:
            return  # the send failed: the transport is closing with the error
        self._eof = True
        if not self._buffer:
            self._sock.shutdown(_SHUT_WR)

    def can_write_eof(self) -> bool:
        return True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._flush_deferred()  # deferred bytes are judged by the old marks
        TransportCore.set_write_buffer_limits(self, high, low)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        self._flush_deferred()
        TransportCore.close(self)

    def abort(self) -> None:
        # What asyncio's write() would already have handed to the kernel is sent: only what
        # the kernel refuses is lost, as there.
        self._flush_deferred()
        TransportCore.abort(self)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            TransportCore._call_connection_lost(self, exc)
        finally:
            # Release the protocol's bound methods, as the base class releases _protocol.
            self._data_received = self._get_buffer = self._buffer_updated = None
        waiter = self._empty_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError("Connection is closed by peer"))

    # ------------------------------------------------------------------ sendfile support

    def _make_empty_waiter(self) -> Any:
        if self._empty_waiter is not None:
            raise RuntimeError("Empty waiter is already set")
        self._flush_deferred()
        self._empty_waiter = self._loop.create_future()
        if not self._buffer:
            self._empty_waiter.set_result(None)
        return self._empty_waiter

    def _reset_empty_waiter(self) -> None:
        self._empty_waiter = None

    def __repr__(self) -> str:
        info = [type(self).__name__]
        state = self._repr_state()
        if state:
            info.append(state)
        info.append(f"fd={self._sock_fd}")
        if self._sock is not None and not self._closing:
            info.append("read=polling" if self._reading else "read=idle")
            info.append(
                f"write=<{'polling' if self._buffer else 'idle'}, bufsize={self._buffer_size}>"
            )
        return "<{}>".format(" ".join(info))


class StreamTransport(Facade, ReadFacade, WriteFacade, _transports.Transport):
    """tideloop's TCP/Unix stream transport: an asyncio.Transport over a StreamCore.

    ``write`` and ``is_closing`` are not methods here but slots holding the core's bound
    methods: the hottest call a protocol makes, and the one every ``StreamWriter.drain()``
    makes, then go straight to the core, with no forwarding frame.
    """

    __slots__ = ("_core", "write", "is_closing", "__weakref__")

    # loop.sendfile() may use os.sendfile on this transport's socket (as asyncio's selector
    # socket transport).
    _sendfile_compatible = _constants._SendfileMode.TRY_NATIVE
    # loop.start_tls() may wrap it (asyncio's _SelectorSocketTransport says the same).
    _start_tls_compatible = True

    def __init__(self, core: StreamCore) -> None:
        self._core = core
        self.write = core.write
        self.is_closing = core.is_closing

    def writelines(self, list_of_data: Any) -> None:
        self._core.writelines(list_of_data)

    def get_write_buffer_size(self) -> int:
        return self._core.get_write_buffer_size()

    def write_eof(self) -> None:
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def _force_close(self, exc: BaseException | None) -> None:
        """Close now, dropping buffered output; connection_lost(exc) follows (the TLS layer
        calls this, as asyncio's SSLProtocol does on its transports). This pass's deferred
        writes are sent first, as abort() does."""
        core = self._core
        core._flush_deferred()
        core._force_close(exc)

    # sendfile support (loop.sendfile)
    def _make_empty_waiter(self) -> Any:
        return self._core._make_empty_waiter()

    def _reset_empty_waiter(self) -> None:
        self._core._reset_empty_waiter()

    def _lend_socket(self) -> tuple[Any, Any, bool]:
        """Lend the socket to loop.sendfile: return ``(sock, drained, resume)`` with reading
        paused; ``drained`` (a future) resolves once the write buffer is empty. The borrower
        must end the loan with ``_return_socket(resume)``, whatever happens. RuntimeError
        (and no change) if a loan is already running."""
        core = self._core
        drained = core._make_empty_waiter()
        resume = self.is_reading()
        self.pause_reading()
        return core._sock, drained, resume

    def _return_socket(self, resume: bool) -> bool:
        """End the loan: resume reading if ``resume``; True if the socket is still open."""
        core = self._core
        core._reset_empty_waiter()
        if resume:
            self.resume_reading()
        return core._sock is not None


_last_sockname: list = [None]  # make_stream_transport's one-entry cache of equal socknames


def make_stream_transport(
    loop: Any,
    sock: Any,
    protocol: Any,
    waiter: Any = None,
    extra: dict | None = None,
    on_lost: Any = None,
    peername: Any = None,
    context: Any = None,
) -> StreamTransport:
    """Create a stream transport over a connected non-blocking socket and start it.

    connection_made(transport) runs on the next pass, then reading starts, then ``waiter``
    (if any) gets None. ``on_lost(transport)`` (if given) is called once the transport has
    ended (after connection_lost, or when an abandoned one is collected): whoever attaches a
    transport (a Server) passes its detach. The socket becomes the transport's; it is closed
    with it.
    ``peername``: the address accept() gave (else getpeername() is asked; an ``extra``
    "peername" wins over both). ``context``: a Context copied for this transport alone, run
    in for its protocol callbacks (default: a copy of the current one).

    Extra info is "socket", "sockname", "peername" plus ``extra``; without ``extra`` the dict
    is built on the first get_extra_info() call from the addresses taken here.
    """
    core = StreamCore(loop, sock, extra, context)
    transport = StreamTransport(core)
    core._facade = transport
    try:
        sockname = sock.getsockname()
    except OSError:
        sockname = None
    else:
        # Every connection a server accepts on one address has an equal sockname: share one
        # tuple (~150 bytes less per idle connection).
        if sockname == _last_sockname[0]:
            sockname = _last_sockname[0]
        else:
            _last_sockname[0] = sockname
    if peername is None:
        try:
            peername = sock.getpeername()
        except OSError:
            peername = None
    core._sockname = sockname
    core._peername = peername
    extra_info = core._extra
    if extra_info is not None:
        extra_info["socket"] = _trsock.TransportSocket(sock)
        extra_info["sockname"] = sockname
        extra_info.setdefault("peername", peername)
    core.set_protocol(protocol)
    _set_nodelay(sock)
    fd = core._sock_fd
    loop._transports[fd] = transport
    try:
        core._start(waiter)  # AttributeError for a protocol without connection_made
    except BaseException:
        # Never started: the transport owns the socket, so it closes it (asyncio 3.14 closes
        # it too; earlier versions leaked it) and is forgotten.
        if loop._transports.get(fd) is transport:
            del loop._transports[fd]
        core._close_fd()
        raise
    # Last: the caller attaches the transport once this returns, so nothing may raise after.
    core._on_lost = on_lost
    return transport
