"""Pipe transports: one end of a pipe, a socket or a character device (a pty), read or write.

Semantics are asyncio's ``_UnixReadPipeTransport`` / ``_UnixWritePipeTransport``
(unix_events.py), identical in 3.11, 3.12 and 3.13, names included:

    read:  start -> connection_made [-> data_received]* [-> eof_received]? -> connection_lost
    write: start -> connection_made [-> pause_writing -> resume_writing]* -> connection_lost

- Only FIFOs, sockets and character devices are accepted (ValueError otherwise, with
  asyncio's two different messages). The fd is made non-blocking; connection_made runs on
  the next pass, reading (or peer watching) starts on the pass after, then the waiter.
- Read side: ``os.read(fd, 256 KiB)`` per readiness event, data_received in the transport's
  context. An empty read is EOF: reading stops, then eof_received and connection_lost(None)
  run on the next pass (eof_received's return value is ignored: a read pipe has no write
  half to keep open). An exception from data_received is reported through the loop's
  exception handler and the transport stays open, as in asyncio (where it escapes the reader
  Handle).
- Write side: write() tries ``os.write`` at once and buffers only what the kernel did not
  take, in one bytearray (asyncio's choice: deleting from the front of a bytearray is
  amortised O(1)); the fd is watched for writability only while the buffer is non-empty.
  close() is write_eof(): it lets the buffer drain, then connection_lost(None). abort() drops
  the buffer. Write errors (EPIPE, ECONNRESET, ...) close the transport with
  connection_lost(exc) and are not reported to the exception handler (they are OSErrors).

Some facts about pipes
----------------------
- The write end of a pipe is never readable, so asyncio watches it for *reading* to learn
  that the read end went away: with no reader left the kernel flags the write end with
  EPOLLERR (POLLERR for poll/select), which the pollers report as READ|WRITE. On a socket
  used as a pipe, readability means the peer closed (EOF) or sent something; asyncio treats
  both as "closed by peer". Either way the transport closes: connection_lost(None) if the
  buffer was empty, else connection_lost(BrokenPipeError()). This "reader trick" is used for
  sockets and FIFOs (FIFOs except on AIX, where it only works for sockets); never for
  character devices, whose readability means input, not a gone peer.
- Reading a pty master after the last slave fd closed fails with EIO on Linux instead of
  returning b"" (EOF). asyncio does not turn that into EOF: it is a fatal read error that
  closes the transport with connection_lost(OSError(EIO)), logged only in debug mode; every
  other read error is also reported to the exception handler. Same here.
- O_NONBLOCK belongs to the open file description, not to the fd: it is shared with every
  dup() of the fd and with other processes holding it (a child's stdin, a pty slave). asyncio
  sets it anyway; so do we.
- The pipe object (anything with ``fileno()`` and ``close()``: a file object, a socket) is
  closed by the transport after connection_lost, or by the facade's finalizer with a
  ResourceWarning if the transport was never closed.

Pipe transports are not entered in ``loop._transports`` (asyncio's Unix loop does not either),
so ``add_reader`` on their fd behaves as on asyncio.

Lifecycle: TransportCore's (``base.py``). The read side goes OPEN -> LOST (EOF, close(),
abort(), error) -> CLOSED; the write side also OPEN -> CLOSING on close()/write_eof() with
data buffered, and CLOSING -> CLOSED when the buffer drains. After connection_lost ``_sock``
(the pipe object), ``_protocol`` and ``_loop`` are None.
Invariant (read): the fd is watched for reading iff ``_reading``; ``_reading`` implies
``is_reading()``.
Invariant (write): ``_buffer_size == len(_buffer)``; the fd is watched for writing iff
``_buffer`` is non-empty (and the state is OPEN or CLOSING).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from asyncio import constants as _constants
from asyncio import futures as _futures
from asyncio import transports as _transports
from typing import Any

from .base import CLOSING, LOST, OPEN, Facade, ReadFacade, TransportCore, WriteFacade, _logger

_MAX_SIZE = 256 * 1024  # as asyncio: the most one os.read() asks for
_EIO = errno.EIO
_LOG_THRESHOLD = _constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
_AIX = sys.platform.startswith("aix")
_os_read = os.read
_os_write = os.write
_set_result_unless_cancelled = _futures._set_result_unless_cancelled


def _repr(core: Any, name: str, polling: bool, bufsize: int) -> str:
    """asyncio's pipe transport repr; "open" when the loop is closed (CPython issue #314)."""
    info = [name]
    pipe = core._sock
    if pipe is None:
        info.append("closed")
    elif core._closing:
        info.append("closing")
    info.append(f"fd={core._sock_fd}")
    loop = core._loop
    if pipe is not None and loop is not None and not loop.is_closed():
        info.append("polling" if polling else "idle")
        if bufsize >= 0:
            info.append(f"bufsize={bufsize}")
    elif pipe is not None:
        info.append("open")
    else:
        info.append("closed")
    return "<{}>".format(" ".join(info))


# ---------------------------------------------------------------------------------- read side


class ReadPipeCore(TransportCore):
    """The working half of a read pipe transport; see the module docstring."""

    __slots__ = ()

    # _start, _start_reading, _stop_reading, is_reading, pause_reading and resume_reading:
    # TransportCore's.

    def _read_ready(self) -> None:
        if self._closing:
            return  # a stale event: reading stopped earlier in this pass
        try:
            data = _os_read(self._sock_fd, _MAX_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal_error(exc, "Fatal read error on pipe transport")
            return
        if data:
            try:
                self._protocol.data_received(data)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # asyncio lets this escape its reader Handle: reported, the transport stays.
                self._loop.call_exception_handler(
                    {
                        "message": "Exception in callback "
                        f"{type(self._facade).__name__}._read_ready()",
                        "exception": exc,
                        "transport": self._facade,
                        "protocol": self._protocol,
                    }
                )
            return
        if self._loop.get_debug():
            _logger().info("%r was closed by peer", self._facade)
        self._set_state(LOST)
        self._stop_reading()
        self._loop.call_soon(self._protocol.eof_received)
        self._loop.call_soon(self._call_connection_lost, None)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        if not self._closing:
            self._close(None)

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        # should be called by exception handler only
        if isinstance(exc, OSError) and exc.errno == _EIO:
            if self._loop.get_debug():
                _logger().debug("%r: %s", self._facade, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self._facade,
                    "protocol": self._protocol,
                }
            )
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        if self._state != OPEN:
            return
        self._set_state(LOST)
        self._stop_reading()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _force_close(self, exc: BaseException | None) -> None:
        self._close(exc)

    def __repr__(self) -> str:
        return _repr(self, type(self).__name__, self._reading, -1)


class ReadPipeTransport(Facade, ReadFacade, _transports.ReadTransport):
    """tideloop's read pipe transport: an asyncio.ReadTransport over a ReadPipeCore.

    Unlike the stream facade it keeps a ``__dict__``: asyncio's pipe transports have one, and
    code (CPython's test_subprocess among it) replaces methods such as ``pause_reading`` on
    the instance.
    """

    __slots__ = ("_core", "__dict__", "__weakref__")

    def __init__(self, core: ReadPipeCore) -> None:
        self._core = core

    @property
    def _pipe(self) -> Any:
        """The pipe object while open, else None (asyncio's attribute; tests assign it)."""
        return self._core._sock

    @_pipe.setter
    def _pipe(self, pipe: Any) -> None:
        self._core._sock = pipe


# --------------------------------------------------------------------------------- write side


class WritePipeCore(TransportCore):
    """The working half of a write pipe transport; see the module docstring.

    ``_conn_lost`` keeps asyncio's meaning for write pipes: writes that failed or came after
    the transport closed (the 5th such write on logs a warning). The lifecycle is ``_state``.
    """

    __slots__ = ("_buffer", "_watch_peer")

    def __init__(self, loop: Any, pipe: Any, fd: int, extra: dict | None) -> None:
        TransportCore.__init__(self, loop, pipe, fd, extra)
        self._buffer = bytearray()
        self._watch_peer = False  # use the reader trick (see the module docstring)

    def _start(self, waiter: Any) -> None:
        """Schedule connection_made, then peer watching, then the waiter (asyncio's order)."""
        loop = self._loop
        loop.call_soon(self._protocol.connection_made, self._facade)
        if self._watch_peer:
            # only start reading when connection_made() has been called
            loop.call_soon(self._start_watching_peer)
        if waiter is not None:
            # only wake up the waiter when connection_made() has been called
            loop.call_soon(_set_result_unless_cancelled, waiter, None)

    def _start_watching_peer(self) -> None:
        # Not after connection_made closed it (asyncio would watch a closed pipe here).
        if self._state <= CLOSING:
            self._loop._add_reader(self._sock_fd, self)

    def _read_ready(self) -> None:
        if self._state >= LOST:
            return  # a stale event
        # Pipe was closed by peer.
        if self._loop.get_debug():
            _logger().info("%r was closed by peer", self._facade)
        if self._buffer:
            self._close(BrokenPipeError())
        else:
            self._close(None)

    # ------------------------------------------------------------------ writing

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def write(self, data: Any) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            # asyncio asserts; raised explicitly so that it holds under -O too.
            raise AssertionError(repr(data))
        if type(data) is not bytes:
            data = memoryview(data)
            if data.itemsize != 1 or data.ndim != 1:
                data = data.cast("B")  # os.write() counts bytes, len() counts items
        if not data:
            return
        if self._conn_lost or self._closing:
            if self._conn_lost >= _LOG_THRESHOLD:
                _logger().warning("pipe closed by peer or os.write(pipe, data) raised exception.")
            self._conn_lost += 1
            return
        if not self._buffer:
            # Attempt to send it right away first.
            try:
                n = _os_write(self._sock_fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._conn_lost += 1
                self._fatal_error(exc, "Fatal write error on pipe transport")
                return
            if n == len(data):
                return
            if n > 0:
                data = memoryview(data)[n:]
            self._add_writer()
        self._buffer += data
        self._buffer_size = len(self._buffer)
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Any) -> None:
        # asyncio's WriteTransport.writelines: one joined write.
        self.write(b"".join(list_of_data))

    def _write_ready(self) -> None:
        if self._state >= LOST or not self._buffer:
            return  # a stale event
        buffer = self._buffer
        try:
            n = _os_write(self._sock_fd, buffer)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            buffer.clear()
            self._buffer_size = 0
            self._conn_lost += 1
            # Remove writer here, _fatal_error() doesn't it because _buffer is empty.
            self._loop._remove_writer(self._sock_fd)
            self._fatal_error(exc, "Fatal write error on pipe transport")
            return
        if n == len(buffer):
            buffer.clear()
            self._buffer_size = 0
            self._loop._remove_writer(self._sock_fd)
            self._maybe_resume_protocol()  # May append to buffer.
            # CLOSING, not just closing: resume_writing() may have aborted (state LOST).
            if self._state == CLOSING:
                self._loop._remove_reader(self._sock_fd)
                self._call_connection_lost(None)
        elif n > 0:
            del buffer[:n]
            self._buffer_size = len(buffer)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing:
            return
        if self._buffer:
            self._set_state(CLOSING)  # _write_ready finishes the job
            return
        self._set_state(LOST)
        self._loop._remove_reader(self._sock_fd)
        self._loop.call_soon(self._call_connection_lost, None)

    # ------------------------------------------------------------------ closing

    def close(self) -> None:
        if self._sock is not None and not self._closing:
            # write_eof is all what we needed to close the write pipe
            self.write_eof()

    def abort(self) -> None:
        self._close(None)

    def _fatal_error(
        self, exc: BaseException, message: str = "Fatal error on pipe transport"
    ) -> None:
        # should be called by exception handler only
        if isinstance(exc, OSError):
            if self._loop.get_debug():
                _logger().debug("%r: %s", self._facade, message, exc_info=True)
        else:
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self._facade,
                    "protocol": self._protocol,
                }
            )
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        if self._state >= LOST:
            return  # asyncio would schedule connection_lost twice (or crash after it)
        self._set_state(LOST)
        if self._buffer:
            self._loop._remove_writer(self._sock_fd)
        self._clear_buffer()
        self._loop._remove_reader(self._sock_fd)
        self._loop.call_soon(self._call_connection_lost, exc)

    def _force_close(self, exc: BaseException | None) -> None:
        self._close(exc)

    def _clear_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_size = 0

    def __repr__(self) -> str:
        return _repr(self, type(self).__name__, bool(self._buffer), len(self._buffer))


class WritePipeTransport(Facade, WriteFacade, _transports.Transport):
    """tideloop's write pipe transport: an asyncio.WriteTransport over a WritePipeCore.

    An ``asyncio.Transport``, as asyncio's (through its ``_FlowControlMixin``): the read
    methods are ReadTransport's, which raise NotImplementedError. Keeps a ``__dict__`` for the
    same reason as ReadPipeTransport.
    """

    __slots__ = ("_core", "__dict__", "__weakref__")

    def __init__(self, core: WritePipeCore) -> None:
        self._core = core

    @property
    def _pipe(self) -> Any:
        """The pipe object while open, else None (asyncio's attribute; tests assign it)."""
        return self._core._sock

    @_pipe.setter
    def _pipe(self, pipe: Any) -> None:
        self._core._sock = pipe

    def write(self, data: Any) -> None:
        self._core.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._core.writelines(list_of_data)

    def write_eof(self) -> None:
        self._core.write_eof()

    def can_write_eof(self) -> bool:
        return True


# ---------------------------------------------------------------------------------- factories


def _pipe_fd(pipe: Any, message: str) -> tuple[int, int]:
    """Return (fd, st_mode) of a pipe object; ValueError(message) unless FIFO, socket or chr."""
    fd = pipe.fileno()
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        raise ValueError(message)
    return fd, mode


def make_read_pipe_transport(
    loop: Any, pipe: Any, protocol: Any, waiter: Any = None, extra: dict | None = None
) -> ReadPipeTransport:
    """Create a read transport over ``pipe`` (a file object or socket) and start it.

    The fd becomes non-blocking. connection_made(transport) runs on the next pass, then
    reading starts, then ``waiter`` (if any) gets None. The pipe object becomes the
    transport's: it is closed after connection_lost. Raises ValueError (nothing changed) if
    the fd is not a FIFO, a socket or a character device.
    """
    fd, _ = _pipe_fd(pipe, "Pipe transport is for pipes/sockets only.")
    os.set_blocking(fd, False)
    core = ReadPipeCore(loop, pipe, fd, extra)
    transport = ReadPipeTransport(core)
    core._facade = transport
    core._extra["pipe"] = pipe
    core.set_protocol(protocol)
    core._start(waiter)
    return transport


def make_write_pipe_transport(
    loop: Any, pipe: Any, protocol: Any, waiter: Any = None, extra: dict | None = None
) -> WritePipeTransport:
    """Create a write transport over ``pipe`` (a file object or socket) and start it.

    As make_read_pipe_transport; for a FIFO or a socket the fd is also watched for reading
    from the pass after connection_made, to notice the read end going away.
    """
    fd, mode = _pipe_fd(pipe, "Pipe transport is only for pipes, sockets and character devices")
    os.set_blocking(fd, False)
    core = WritePipeCore(loop, pipe, fd, extra)
    transport = WritePipeTransport(core)
    core._facade = transport
    core._extra["pipe"] = pipe
    core.set_protocol(protocol)
    # On AIX, the reader trick (to be notified when the read end of the socket is closed)
    # only works for sockets. On other platforms it works for pipes and sockets.
    core._watch_peer = stat.S_ISSOCK(mode) or (stat.S_ISFIFO(mode) and not _AIX)
    core._start(waiter)
    return transport
