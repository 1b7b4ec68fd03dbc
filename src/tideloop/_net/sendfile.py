"""loop.sock_sendfile: zero-copy os.sendfile() with asyncio's read+send fallback.

Semantics are asyncio's (base_events.sock_sendfile + unix_events._sock_sendfile_native,
identical in 3.11-3.13 except 3.13's 1 GiB cap on 32-bit builds, applied here everywhere):

- arguments are checked first (debug-mode blocking check, SSLSocket, then
  ``_check_sendfile_params``), with asyncio's exception types and messages;
- the native path raises SendfileNotAvailableError when os.sendfile is missing, the file has no
  usable fileno, or the *first* bytes cannot be sent (an OSError before anything was sent, e.g.
  a file that is not mmap-able); ``fallback=True`` then runs the read+sock_sendall loop;
- an OSError after some bytes went out is raised as is (ENOTCONN normalised to
  ConnectionError, as asyncio does);
- the return value is the number of bytes sent, and the file position is left just past the
  last byte sent, on success, error and cancellation. Before 3.14 asyncio moves it only if
  something was sent, and its fallbacks seek to offset only if offset is non-zero; from 3.14
  on the native path always moves it (to offset itself when sending starts at or past EOF)
  and the fallbacks always seek to offset first. tideloop follows the running version.

Discussion: how the native path waits.
    asyncio removes and re-adds the writer around every sendfile() call. Here the writer is
    registered once, on the first EAGAIN, through ``_sock_wait_writable`` (see sockops.py) and
    removed when the future is done, so a send costs one syscall per writable event and no
    poller updates. After a short send (the socket buffer filled) the step waits for the next
    writable event instead of spinning, so a fast consumer cannot pin the loop on one transfer.

Difference from asyncio, on purpose: when the future is cancelled asyncio leaves the file
position where it was (its cancel callback only removes the writer); here it is moved past the
bytes already sent, which is what the fallback path (and the docs' promise) does.

loop.sendfile(transport, ...) (base_events.sendfile + selector_events._sendfile_native):

- a closing transport -> RuntimeError("Transport is closing"); a transport whose
  ``_sendfile_compatible`` is UNSUPPORTED (datagram, pipes...) -> RuntimeError;
- tideloop's stream transport (TRY_NATIVE) sends natively: wait until its write buffer is
  empty (``_make_empty_waiter``; write() raises "sendfile is in progress" meanwhile), pause
  reading, take the fd out of the loop's transport map so sock_sendfile may watch it, then
  ``sock_sendfile(..., fallback=False)``, and put everything back;
- otherwise (FALLBACK, e.g. TLS, or native not available and ``fallback=True``) the file is
  read in the executor and written through the transport by ``_SendfileFallbackProtocol``,
  which stands in for the protocol to honour pause_writing/resume_writing.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import sys
from asyncio import constants as _constants
from asyncio import protocols as _protocols
from asyncio import tasks as _tasks
from asyncio.exceptions import SendfileNotAvailableError
from typing import TYPE_CHECKING, Any

from .._transports.stream import StreamTransport

if TYPE_CHECKING:
    from .._api import LoopAPI

_SSLSocket: Any
try:
    from ssl import SSLSocket as _SSLSocket
except ImportError:  # pragma: no cover - Python built without ssl
    _SSLSocket = None

_FALLBACK_READBUFFER_SIZE = _constants.SENDFILE_FALLBACK_READBUFFER_SIZE
# asyncio's loop.sendfile fallback reads this much at a time (a literal in base_events).
_TRANSPORT_FALLBACK_BLOCKSIZE = 16384
_SendfileMode = _constants._SendfileMode
_shield = _tasks.shield
# 3.13 caps each os.sendfile() count so 32-bit builds don't overflow; harmless on 64-bit.
_MAX_BLOCKSIZE = sys.maxsize // 2 + 1
# asyncio 3.14+ sets the file position even when nothing was sent (a send at or past EOF),
# and its fallbacks seek to offset even when it is 0; older versions do neither.
_ALWAYS_SEEK = sys.version_info >= (3, 14)


def _check_ssl_socket(sock: Any) -> None:
    """Raise TypeError for an ssl.SSLSocket (asyncio's base_events._check_ssl_socket)."""
    if _SSLSocket is not None and isinstance(sock, _SSLSocket):
        raise TypeError("Socket cannot be of type SSLSocket")


def _update_filepos(fileno: int, offset: int, total_sent: int) -> None:
    """Move the file position to offset (unix_events' helper).

    Before 3.14 only if anything was sent, as asyncio there.
    """
    if total_sent > 0 or _ALWAYS_SEEK:
        os.lseek(fileno, offset, os.SEEK_SET)


def _seek_to_start(file: Any, offset: int) -> None:
    """Where asyncio's read+send fallbacks start: seek to offset (before 3.14: if non-zero)."""
    if _ALWAYS_SEEK:
        if hasattr(file, "seek"):
            file.seek(offset)
    elif offset:
        file.seek(offset)


def _sendfile_mode(transport: Any) -> Any:
    """The transport's ``_sendfile_compatible`` mode; tideloop's stream transport is native."""
    mode = getattr(transport, "_sendfile_compatible", None)
    if mode is None:
        if isinstance(transport, StreamTransport):
            return _SendfileMode.TRY_NATIVE
        return _SendfileMode.UNSUPPORTED
    return mode


def _protocol_paused(transport: Any) -> bool | None:
    """Whether the transport has paused its protocol's writing; None if it cannot say."""
    core = getattr(transport, "_core", transport)
    paused = getattr(core, "_protocol_paused", None)
    return None if paused is None else bool(paused)


class _SendfileFallbackProtocol(_protocols.Protocol):
    """Stands in for a transport's protocol while loop.sendfile() writes a file through it.

    asyncio's (base_events._SendfileFallbackProtocol) takes only asyncio's _FlowControlMixin
    transports. This one takes any transport with get_protocol/set_protocol, is_reading/
    pause_reading/resume_reading, is_closing, write, and a ``_protocol_paused`` flag on itself
    (asyncio's transports) or on its ``_core`` (tideloop's).

    Invariant: until the connection is lost, ``_write_ready_fut`` is not None iff the
    transport has paused writing (as seen through pause_writing/resume_writing since this
    protocol was installed); when it is lost, a pending one gets the error.

    Difference from asyncio, on purpose: restore() leaves the real protocol's idea of "paused"
    equal to the transport's. asyncio calls resume_writing() if the protocol was paused at the
    start, even when the transport is paused again at the end (a second, unpaired resume
    follows), and never tells it about a pause that is still on (an unpaired resume follows);
    asyncio's own stream FlowControlMixin asserts against both.
    """

    def __init__(self, transp: Any, loop: Any) -> None:
        paused = _protocol_paused(transp)
        if paused is None:
            raise TypeError("transport should be _FlowControlMixin instance")
        self._transport = transp
        self._loop = loop
        self._proto = transp.get_protocol()
        self._should_resume_reading = transp.is_reading()
        self._should_resume_writing = paused
        self._lost = False
        transp.pause_reading()
        transp.set_protocol(self)
        self._write_ready_fut = loop.create_future() if paused else None

    async def drain(self) -> None:
        if self._transport.is_closing():
            raise ConnectionError("Connection closed by peer")
        fut = self._write_ready_fut
        if fut is None:
            return
        await fut

    def connection_made(self, transport: Any) -> None:
        raise RuntimeError("Invalid state: connection should have been established already.")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        fut = self._write_ready_fut
        if fut is not None and not fut.done():
            # Never happens if peer disconnects after sending the whole content
            # Thus disconnection is always an exception from user perspective
            if exc is None:
                fut.set_exception(ConnectionError("Connection is closed by peer"))
            else:
                fut.set_exception(exc)
        self._proto.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._write_ready_fut is not None:
            return
        self._write_ready_fut = self._loop.create_future()

    def resume_writing(self) -> None:
        fut = self._write_ready_fut
        if fut is None or self._lost:
            return
        fut.set_result(False)
        self._write_ready_fut = None

    def data_received(self, data: bytes) -> None:
        raise RuntimeError("Invalid state: reading should be paused")

    def eof_received(self) -> bool | None:
        raise RuntimeError("Invalid state: reading should be paused")

    async def restore(self) -> None:
        """Give the transport back to the real protocol, in the flow-control state it is in."""
        transp = self._transport
        transp.set_protocol(self._proto)
        if self._should_resume_reading:
            transp.resume_reading()
        fut = self._write_ready_fut
        self._write_ready_fut = None
        if fut is not None:
            # Nobody waits for it any more; mark its exception (if any) as retrieved.
            if fut.done():
                if not fut.cancelled():
                    fut.exception()
            else:
                fut.cancel()
        if self._lost:
            return  # the real protocol has had connection_lost()
        paused_now = fut is not None
        if self._should_resume_writing and not paused_now:
            self._proto.resume_writing()
        elif paused_now and not self._should_resume_writing:
            self._proto.pause_writing()


class SendfileMixin:
    """sock_sendfile, loop.sendfile and their helpers; mixed into SockOpsMixin.

    Needs from the loop: ``create_future``, ``run_in_executor``, ``get_debug``, ``sock_sendall``
    and ``_sock_wait_writable`` (SockOpsMixin). The helpers keep asyncio's names
    (``_sock_sendfile_native``, ``_sock_sendfile_fallback``, ``_check_sendfile_params``) so that
    transport-level ``loop.sendfile`` code written against asyncio's layout can reuse them.
    """

    __slots__ = ()

    # ------------------------------------------------------------------ transports

    async def sendfile(
        self: LoopAPI,
        transport: Any,
        file: Any,
        offset: Any = 0,
        count: Any = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send file over transport; return the number of bytes sent (see the module doc)."""
        if transport.is_closing():
            raise RuntimeError("Transport is closing")
        mode = _sendfile_mode(transport)
        if mode is _SendfileMode.UNSUPPORTED:
            raise RuntimeError(f"sendfile is not supported for transport {transport!r}")
        if mode is _SendfileMode.TRY_NATIVE:
            try:
                return await self._sendfile_native(transport, file, offset, count)
            except SendfileNotAvailableError:
                if not fallback:
                    raise

        if not fallback:
            raise RuntimeError(
                f"fallback is disabled and native sendfile is not "
                f"supported for transport {transport!r}"
            )

        return await self._sendfile_fallback(transport, file, offset, count)

    async def _sendfile_native(
        self: LoopAPI, transp: Any, file: Any, offset: Any, count: Any
    ) -> int:
        """os.sendfile() on the transport's socket, once its write buffer has drained."""
        if not isinstance(transp, StreamTransport):
            raise SendfileNotAvailableError("sendfile syscall is not supported")
        # Raises "Empty waiter is already set" if a sendfile is in progress: before any change.
        sock, drained, resume_reading = transp._lend_socket()
        fd = sock.fileno()
        transports = self._transports
        # sock_sendfile watches the fd itself; add_writer refuses an fd a transport owns.
        transports.pop(fd, None)
        try:
            # Shielded: if we are cancelled the transport must not later resolve a cancelled
            # waiter (it would raise InvalidStateError inside the loop); it is reset below.
            await _shield(drained)
            if transp.is_closing():
                # close() was called while the buffer drained: the socket is going away.
                raise ConnectionError("Connection is closed by peer")
            return await self.sock_sendfile(sock, file, offset, count, fallback=False)
        finally:
            if transp._return_socket(resume_reading):
                transports[fd] = transp

    async def _sendfile_fallback(
        self: LoopAPI, transp: Any, file: Any, offset: Any, count: Any
    ) -> int:
        """Read the file in the executor and write it through the transport, flow-controlled."""
        _seek_to_start(file, offset)
        blocksize = (
            min(count, _TRANSPORT_FALLBACK_BLOCKSIZE) if count else _TRANSPORT_FALLBACK_BLOCKSIZE
        )
        buf = bytearray(blocksize)
        total_sent = 0
        # tideloop's stream transport copies whatever it queues, so it can be handed views of
        # the one reused buffer. Other transports get bytes: asyncio's 3.12+ socket transport
        # queues the view itself, and the next chunk overwrites it (asyncio's own fallback
        # corrupts data that way).
        copy = not isinstance(transp, StreamTransport)
        proto = _SendfileFallbackProtocol(transp, self)
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        return total_sent
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    return total_sent  # EOF
                await proto.drain()
                transp.write(bytes(view[:read]) if copy else view[:read])
                total_sent += read
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
            await proto.restore()

    # ------------------------------------------------------------------ sockets

    async def sock_sendfile(
        self: LoopAPI,
        sock: Any,
        file: Any,
        offset: Any = 0,
        count: Any = None,
        *,
        fallback: bool = True,
    ) -> int:
        """Send file over the connected SOCK_STREAM sock; return the number of bytes sent."""
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        _check_ssl_socket(sock)
        self._check_sendfile_params(sock, file, offset, count)
        try:
            return await self._sock_sendfile_native(sock, file, offset, count)
        except SendfileNotAvailableError:
            if not fallback:
                raise
        return await self._sock_sendfile_fallback(sock, file, offset, count)

    def _check_sendfile_params(self, sock: Any, file: Any, offset: Any, count: Any) -> None:
        """asyncio's argument checks, in asyncio's order, with its messages."""
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not sock.type == socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        if count is not None:
            if not isinstance(count, int):
                raise TypeError(f"count must be a positive integer (got {count!r})")
            if count <= 0:
                raise ValueError(f"count must be a positive integer (got {count!r})")
        if not isinstance(offset, int):
            raise TypeError(f"offset must be a non-negative integer (got {offset!r})")
        if offset < 0:
            raise ValueError(f"offset must be a non-negative integer (got {offset!r})")

    async def _sock_sendfile_native(
        self: LoopAPI, sock: Any, file: Any, offset: int, count: Any
    ) -> int:
        """Send with os.sendfile(); SendfileNotAvailableError if that cannot start."""
        if not hasattr(os, "sendfile"):
            raise SendfileNotAvailableError("os.sendfile() is not available")
        try:
            fileno = file.fileno()
        except (AttributeError, io.UnsupportedOperation):
            raise SendfileNotAvailableError("not a regular file")
        try:
            fsize = os.fstat(fileno).st_size
        except OSError:
            raise SendfileNotAvailableError("not a regular file")
        blocksize = count if count else fsize
        if not blocksize:
            return 0  # empty file (asyncio answers 0 here even for a pipe)
        blocksize = min(blocksize, _MAX_BLOCKSIZE)

        fut: Any = self.create_future()  # Any: set to None below
        # Invariant: progress == [file offset of the next byte to send, bytes sent so far].
        progress = [offset, 0]
        self._sock_sendfile_step(fut, sock, fileno, count, blocksize, progress, False)
        if fut.done():
            return fut.result()

        def on_done(fut: Any) -> None:
            if fut.cancelled():
                try:
                    _update_filepos(fileno, progress[0], progress[1])
                except OSError:
                    pass  # the file was closed by whoever cancelled us

        fut.add_done_callback(on_done)
        try:
            return await fut
        finally:
            fut = None  # break the cycle through the exception's traceback

    def _sock_sendfile_step(
        self: LoopAPI,
        fut: Any,
        sock: Any,
        fileno: int,
        count: Any,
        blocksize: int,
        progress: list,
        registered: bool,
    ) -> None:
        """Call os.sendfile() until EOF, count, error or a full socket; settle fut unless full.

        First called directly (registered=False); when the socket fills up it registers itself
        as the writer callback (registered=True) and is called again on each writable event.
        """
        if fut.done():
            return  # cancelled; the done callbacks remove the writer and fix the file position
        fd = sock.fileno()
        offset, total_sent = progress
        while True:
            if count:
                blocksize = count - total_sent
                if blocksize <= 0:
                    _update_filepos(fileno, offset, total_sent)
                    fut.set_result(total_sent)
                    return
            try:
                sent = os.sendfile(fd, fileno, offset, blocksize)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                if (
                    (total_sent or registered)
                    and exc.errno == errno.ENOTCONN
                    and (type(exc) is not ConnectionError)
                ):
                    # The peer went away mid-transfer: normalise to ConnectionError so every
                    # POSIX system reports the same thing (asyncio does this too).
                    new_exc = ConnectionError("socket is not connected", errno.ENOTCONN)
                    new_exc.__cause__ = exc
                    exc = new_exc
                error: Exception = exc
                if total_sent == 0:
                    # Most likely a file sendfile() cannot read (not mmap-able): fall back.
                    error = SendfileNotAvailableError("os.sendfile call failed")
                _update_filepos(fileno, offset, total_sent)
                fut.set_exception(error)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                _update_filepos(fileno, offset, total_sent)
                fut.set_exception(exc)
                return
            if sent == 0:  # EOF
                _update_filepos(fileno, offset, total_sent)
                fut.set_result(total_sent)
                return
            offset += sent
            total_sent += sent
            progress[0] = offset
            progress[1] = total_sent
            if sent < blocksize:
                break  # short send: the socket buffer is full, wait for room
        if not registered:
            self._sock_wait_writable(
                fut,
                fd,
                self._sock_sendfile_step,
                fut,
                sock,
                fileno,
                count,
                blocksize,
                progress,
                True,
            )

    async def _sock_sendfile_fallback(
        self: LoopAPI, sock: Any, file: Any, offset: int, count: Any
    ) -> int:
        """Read into a buffer in the executor and sock_sendall it (base_events' fallback)."""
        _seek_to_start(file, offset)
        blocksize = min(count, _FALLBACK_READBUFFER_SIZE) if count else _FALLBACK_READBUFFER_SIZE
        buf = bytearray(blocksize)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                view = memoryview(buf)[:blocksize]
                read = await self.run_in_executor(None, file.readinto, view)
                if not read:
                    break  # EOF
                await self.sock_sendall(sock, view[:read])
                total_sent += read
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset + total_sent)
