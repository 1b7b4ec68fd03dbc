"""High-level streams: StreamReader, StreamWriter, open_connection, start_server.

The spec is CPython's ``asyncio/streams.py`` (3.11 to 3.14); names, messages, exception
classes (``asyncio.IncompleteReadError``, ``asyncio.LimitOverrunError``) and the order in
which things happen are asyncio's, so a diff against CPython stays readable. The functions
build on ``asyncio.get_running_loop().create_connection()`` / ``create_server()``, so they
run on any loop, tideloop's included.

Protocol grammar (asyncio's)::

    start -> connection_made [-> data_received]* [-> eof_received]? -> connection_lost -> end

Where this differs from asyncio, it is for speed and never visible:

- ``readuntil(separator)`` with one bytes separator skips the sort/list of the 3.13 tuple
  path; ``readline()`` first looks for ``b'\\n'`` in the buffer it already has and returns
  at once when the line fits the limit (the result is the one the general path gives).
- Classes have ``__slots__`` (the compiled build's cdef fields mirror them).

Version notes: ``readuntil`` accepts a tuple of separators (3.13 semantics: the shortest
match wins) on every version. On 3.11/3.12 the server-side protocol keeps its writer alive
(``_stream_writer``), as those versions do; 3.13 does not, and closes the transport when the
client_connected_cb task is cancelled. The unclosed-writer ``ResourceWarning`` is given by
``StreamWriter.__del__`` as all three versions give it. As 3.14 does (and not before):
``StreamWriter.start_tls`` also points the reader at the TLS transport (its flow control
pauses that one), and a plain-function ``client_connected_cb`` that raises is reported to
the loop's exception handler ("Unhandled exception in client_connected_cb") and its
connection closed; before 3.14 the exception leaves ``connection_made``. 3.12+ pass
``ssl_shutdown_timeout`` (None by default) to ``loop.start_tls``; 3.11 only when given.

Flow control of the reader (asyncio's): reading is paused while the buffer holds more than
``2 * limit`` bytes, and resumed once it is at or below ``limit`` (``_maybe_resume_transport``)
or when a reader must wait for more data (``_wait_for_data``; else readexactly(n > limit)
would deadlock).

Invariant: ``StreamReader._waiter`` is None or a pending-or-done future that exactly one
read coroutine awaits; feed_data/feed_eof/set_exception wake it and set it back to None.
Invariant: ``StreamReader._paused`` implies ``_transport`` is not None and was paused by us.
"""

from __future__ import annotations

import collections
import socket
import sys
import warnings
import weakref
from asyncio import coroutines as _coroutines
from asyncio import events as _events
from asyncio import exceptions as _exceptions
from asyncio import format_helpers as _format_helpers
from asyncio import protocols as _protocols
from asyncio.log import logger as _logger
from asyncio.tasks import sleep as _sleep
from typing import Any

__all__ = (
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
)

_DEFAULT_LIMIT = 2**16  # 64 KiB, as asyncio
_IncompleteReadError = _exceptions.IncompleteReadError
_LimitOverrunError = _exceptions.LimitOverrunError
_iscoroutine = _coroutines.iscoroutine
# 3.11/3.12.1 keep the server-side writer referenced from the protocol; 3.13 does not.
_KEEP_WRITER = sys.version_info < (3, 13)
# gh-113538 (3.13, backported to 3.12.2 and 3.11.8, so in PyPy 3.11's stdlib): a cancelled
# client_connected_cb task closes the transport instead of failing in the done callback.
_CLOSE_ON_CANCEL = sys.version_info >= (3, 12, 2) or (3, 11, 8) <= sys.version_info < (3, 12)
# CPython frees a memoryview as soon as nothing refers to it; PyPy only at GC, and a live view
# forbids resizing the bytearray under it (BufferError). Reads copy their bytes out through a
# view only where it is freed at once (one copy instead of two); on PyPy, without one.
_VIEWS_FREED_AT_ONCE = sys.implementation.name == "cpython"
# asyncio 3.12+'s StreamWriter.start_tls passes ssl_shutdown_timeout to loop.start_tls.
_PASS_SHUTDOWN_TIMEOUT = sys.version_info >= (3, 12)
# 3.14: start_tls also moves the reader to the new transport, and an exception raised by a
# plain-function client_connected_cb is reported and closes the connection.
_PY314 = sys.version_info >= (3, 14)


async def open_connection(
    host: Any = None, port: Any = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
) -> tuple[StreamReader, StreamWriter]:
    """A wrapper for create_connection() returning a (reader, writer) pair.

    The arguments are those of ``loop.create_connection()`` except protocol_factory, plus
    ``limit`` (the StreamReader's buffer limit).
    """
    loop = _events.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port, **kwds)
    writer = StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def start_server(
    client_connected_cb: Any,
    host: Any = None,
    port: Any = None,
    *,
    limit: int = _DEFAULT_LIMIT,
    **kwds: Any,
) -> Any:
    """Start a socket server, calling ``client_connected_cb(reader, writer)`` per client.

    ``client_connected_cb`` may be a plain function or a coroutine function (its coroutine
    becomes a Task). The other arguments are those of ``loop.create_server()`` except
    protocol_factory, plus ``limit``. Returns the loop's Server.
    """
    loop = _events.get_running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwds)


if hasattr(socket, "AF_UNIX"):
    __all__ += ("open_unix_connection", "start_unix_server")

    async def open_unix_connection(
        path: Any = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
    ) -> tuple[StreamReader, StreamWriter]:
        """Similar to `open_connection` but works with UNIX Domain Sockets."""
        loop = _events.get_running_loop()
        reader = StreamReader(limit=limit, loop=loop)
        protocol = StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
        writer = StreamWriter(transport, protocol, reader, loop)
        return reader, writer

    async def start_unix_server(
        client_connected_cb: Any, path: Any = None, *, limit: int = _DEFAULT_LIMIT, **kwds: Any
    ) -> Any:
        """Similar to `start_server` but works with UNIX Domain Sockets."""
        loop = _events.get_running_loop()

        def factory() -> StreamReaderProtocol:
            reader = StreamReader(limit=limit, loop=loop)
            return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

        return await loop.create_unix_server(factory, path, **kwds)


class FlowControlMixin(_protocols.Protocol):
    """Flow control for StreamWriter.drain(): pause_writing/resume_writing/connection_lost.

    A subclass overriding these must call the super methods. drain() awaits
    ``_drain_helper()``; several tasks may drain at once, each with its own waiter future,
    all woken by resume_writing() (or failed by connection_lost(exc)).
    """

    __slots__ = ("_loop", "_paused", "_drain_waiters", "_connection_lost")

    def __init__(self, loop: Any = None) -> None:
        if loop is None:
            self._loop = _events.get_event_loop()
        else:
            self._loop = loop
        self._paused = False
        self._drain_waiters: collections.deque = collections.deque()
        self._connection_lost = False

    def pause_writing(self) -> None:
        assert not self._paused
        self._paused = True
        if self._loop.get_debug():
            _logger.debug("%r pauses writing", self)

    def resume_writing(self) -> None:
        assert self._paused
        self._paused = False
        if self._loop.get_debug():
            _logger.debug("%r resumes writing", self)
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connection_lost = True
        # Wake up the writer(s) if currently paused.
        if not self._paused:
            return
        for waiter in self._drain_waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        if not self._paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            self._drain_waiters.remove(waiter)

    def _get_close_waiter(self, stream: Any) -> Any:
        raise NotImplementedError


class StreamReaderProtocol(FlowControlMixin):
    """Adapts a Protocol to a StreamReader (and, on the server side, calls back the user).

    The reader is held weakly (asyncio's choice: a reader nobody reads from may be
    collected); a server-side protocol holds it strongly until connection_made.
    """

    __slots__ = (
        "_stream_reader_wr",
        "_source_traceback",
        "_strong_reader",
        "_reject_connection",
        "_stream_writer",
        "_task",
        "_transport",
        "_client_connected_cb",
        "_over_ssl",
        "_closed",
        "__weakref__",
    )

    def __init__(
        self, stream_reader: Any, client_connected_cb: Any = None, loop: Any = None
    ) -> None:
        super().__init__(loop=loop)
        self._source_traceback = None
        if stream_reader is not None:
            self._stream_reader_wr: Any = weakref.ref(stream_reader)
            self._source_traceback = stream_reader._source_traceback
        else:
            self._stream_reader_wr = None
        self._strong_reader = None
        if client_connected_cb is not None:
            # A stream made by start_server(): keep the reader until the connection is made.
            self._strong_reader = stream_reader
        self._reject_connection = False
        self._stream_writer: Any = None
        self._task: Any = None
        self._transport: Any = None
        self._client_connected_cb = client_connected_cb
        self._over_ssl = False
        self._closed = self._loop.create_future()

    @property
    def _stream_reader(self) -> Any:
        if self._stream_reader_wr is None:
            return None
        return self._stream_reader_wr()

    def _replace_transport(self, transport: Any) -> None:
        self._transport = transport
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        if _PY314:
            # 3.14: the reader's flow control then pauses the new (TLS) transport.
            reader = self._stream_reader
            if reader is not None:
                reader._replace_transport(transport)

    def _replace_writer(self, writer: Any) -> None:  # 3.11/3.12 spelling
        self._stream_writer = writer
        self._replace_transport(writer.transport)

    def connection_made(self, transport: Any) -> None:
        if self._reject_connection:
            context: dict[str, Any] = {
                "message": (
                    "An open stream was garbage collected prior to "
                    "establishing network connection; "
                    'call "stream.close()" explicitly.'
                )
            }
            if self._source_traceback:
                context["source_traceback"] = self._source_traceback
            self._loop.call_exception_handler(context)
            transport.abort()
            return
        self._transport = transport
        reader = self._stream_reader
        if reader is not None:
            reader.set_transport(transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        if self._client_connected_cb is not None:
            writer = StreamWriter(transport, self, reader, self._loop)
            if _KEEP_WRITER:
                self._stream_writer = writer
            if _PY314:
                # 3.14: a plain-function callback's error is reported like a coroutine's.
                try:
                    res = self._client_connected_cb(reader, writer)
                except Exception as exc:
                    self._loop.call_exception_handler(
                        {
                            "message": "Unhandled exception in client_connected_cb",
                            "exception": exc,
                            "transport": transport,
                        }
                    )
                    transport.close()
                    self._strong_reader = None
                    return
            else:
                res = self._client_connected_cb(reader, writer)
            if _iscoroutine(res):
                loop = self._loop

                def callback(task: Any) -> None:
                    if _CLOSE_ON_CANCEL and task.cancelled():
                        transport.close()
                        return
                    exc = task.exception()
                    if exc is not None:
                        loop.call_exception_handler(
                            {
                                "message": "Unhandled exception in client_connected_cb",
                                "exception": exc,
                                "transport": transport,
                            }
                        )
                        transport.close()

                # Invariant: the task is referenced here until connection_lost (a task only
                # the loop's weak set holds may be collected mid-flight).
                self._task = loop.create_task(res)
                self._task.add_done_callback(callback)
            self._strong_reader = None

    def connection_lost(self, exc: BaseException | None) -> None:
        reader = self._stream_reader
        if reader is not None:
            if exc is None:
                reader.feed_eof()
            else:
                reader.set_exception(exc)
        closed = self._closed
        if not closed.done():
            if exc is None:
                closed.set_result(None)
            else:
                closed.set_exception(exc)
        super().connection_lost(exc)
        self._stream_reader_wr = None
        self._stream_writer = None
        self._task = None
        self._transport = None

    def data_received(self, data: Any) -> None:
        # The hot path: the weak reference is dereferenced inline, not through the property.
        wr = self._stream_reader_wr
        if wr is not None:
            reader = wr()
            if reader is not None:
                reader.feed_data(data)

    def eof_received(self) -> bool:
        reader = self._stream_reader
        if reader is not None:
            reader.feed_eof()
        # Over SSL, return False: SSLProtocol warns that returning true from
        # eof_received() has no effect when using ssl.
        return not self._over_ssl

    def _get_close_waiter(self, stream: Any) -> Any:
        return self._closed

    def __del__(self) -> None:
        # Mark the close waiter's exception as retrieved (no "never retrieved" report).
        try:
            closed = self._closed
        except AttributeError:
            pass  # failed constructor
        else:
            if closed.done() and not closed.cancelled():
                closed.exception()


class StreamWriter:
    """Wraps a Transport: write(), writelines(), [can_]write_eof(), get_extra_info(),
    close(), plus drain() for flow control and wait_closed()."""

    __slots__ = (
        "_transport",
        "_protocol",
        "_reader",
        "_loop",
        "_complete_fut",
        "_inline_drain",
        "__weakref__",
    )

    def __init__(self, transport: Any, protocol: Any, reader: Any, loop: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        # drain() expects that the reader has an exception() method
        assert reader is None or isinstance(reader, StreamReader)
        self._reader = reader
        self._loop = loop
        self._complete_fut = loop.create_future()
        self._complete_fut.set_result(None)
        # Invariant: True only if the protocol's _drain_helper is FlowControlMixin's, whose
        # fast path (neither paused nor lost: return at once) drain() may then run inline.
        self._inline_drain = (
            getattr(type(protocol), "_drain_helper", None) is FlowControlMixin._drain_helper
        )

    def __repr__(self) -> str:
        info = [self.__class__.__name__, f"transport={self._transport!r}"]
        if self._reader is not None:
            info.append(f"reader={self._reader!r}")
        return "<{}>".format(" ".join(info))

    @property
    def transport(self) -> Any:
        return self._transport

    def write(self, data: Any) -> None:
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        self._transport.writelines(data)

    def write_eof(self) -> Any:
        return self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> Any:
        return self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        await self._protocol._get_close_waiter(self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Flush the write buffer: ``w.write(data); await w.drain()``.

        Raises the reader's exception (the connection's error) if there is one.
        """
        reader = self._reader
        if reader is not None:
            exc = reader._exception
            if exc is not None:
                raise exc
        if self._transport.is_closing():
            # Yield so connection_lost() may run: a write(); await drain() loop must see
            # the error once the socket is closed (asyncio's reasoning).
            await _sleep(0)
        protocol = self._protocol
        if self._inline_drain and not protocol._paused and not protocol._connection_lost:
            return
        await protocol._drain_helper()

    async def start_tls(
        self,
        sslcontext: Any,
        *,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> None:
        """Upgrade an existing stream-based connection to TLS (through loop.start_tls)."""
        server_side = self._protocol._client_connected_cb is not None
        protocol = self._protocol
        await self.drain()
        kwds: dict[str, Any] = {}
        if _PASS_SHUTDOWN_TIMEOUT or ssl_shutdown_timeout is not None:
            # 3.12+ pass it always, as asyncio; 3.11's StreamWriter.start_tls has no such
            # parameter, so there it is passed only when given (a loop may not take it).
            kwds["ssl_shutdown_timeout"] = ssl_shutdown_timeout
        new_transport = await self._loop.start_tls(
            self._transport,
            protocol,
            sslcontext,
            server_side=server_side,
            server_hostname=server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            **kwds,
        )
        self._transport = new_transport
        if _KEEP_WRITER:
            protocol._replace_writer(self)
        else:
            protocol._replace_transport(new_transport)

    def __del__(self, warnings: Any = warnings) -> None:
        if not self._transport.is_closing():
            if self._loop.is_closed():
                warnings.warn("loop is closed", ResourceWarning)
            else:
                self.close()
                warnings.warn(f"unclosed {self!r}", ResourceWarning)


class StreamReader:
    """A buffer fed by a protocol and drained by read coroutines (one at a time).

    Invariant: ``_buffer`` is a single bytearray; reads slice its front (``del buf[:n]`` is
    an O(1) pointer move in CPython when at the front), feed_data extends it. No memoryview
    of it outlives a read (see ``_VIEWS_FREED_AT_ONCE``).
    """

    __slots__ = (
        "_limit",
        "_loop",
        "_buffer",
        "_eof",
        "_waiter",
        "_exception",
        "_transport",
        "_paused",
        "_source_traceback",
        "__weakref__",
    )

    def __init__(self, limit: int = _DEFAULT_LIMIT, loop: Any = None) -> None:
        # The line length limit is a security feature; it also doubles as half the buffer
        # limit.
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._limit = limit
        if loop is None:
            self._loop = _events.get_event_loop()
        else:
            self._loop = loop
        self._buffer = bytearray()
        self._eof = False  # Whether we're done.
        self._waiter: Any = None  # A future used by _wait_for_data()
        self._exception: Any = None
        self._transport: Any = None
        self._paused = False
        self._source_traceback: Any = None
        if self._loop.get_debug():
            self._source_traceback = _format_helpers.extract_stack(sys._getframe(1))

    def __repr__(self) -> str:
        info = ["StreamReader"]
        if self._buffer:
            info.append(f"{len(self._buffer)} bytes")
        if self._eof:
            info.append("eof")
        if self._limit != _DEFAULT_LIMIT:
            info.append(f"limit={self._limit}")
        if self._waiter:
            info.append(f"waiter={self._waiter!r}")
        if self._exception:
            info.append(f"exception={self._exception!r}")
        if self._transport:
            info.append(f"transport={self._transport!r}")
        if self._paused:
            info.append("paused")
        return "<{}>".format(" ".join(info))

    def exception(self) -> Any:
        return self._exception

    def set_exception(self, exc: Any) -> None:
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_exception(exc)

    def _wakeup_waiter(self) -> None:
        """Wake up the read*() coroutine waiting for data or EOF."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)

    def set_transport(self, transport: Any) -> None:
        assert self._transport is None, "Transport already set"
        self._transport = transport

    def _replace_transport(self, transport: Any) -> None:
        """The connection moved to transport (start_tls; called on 3.14+, as asyncio)."""
        assert self._transport is not None, "Transport not set"
        self._transport = transport

    def _maybe_resume_transport(self) -> None:
        if self._paused and len(self._buffer) <= self._limit:
            self._paused = False
            self._transport.resume_reading()

    def feed_eof(self) -> None:
        self._eof = True
        self._wakeup_waiter()

    def at_eof(self) -> bool:
        """Return True if the buffer is empty and 'feed_eof' was called."""
        return self._eof and not self._buffer

    def feed_data(self, data: Any) -> None:
        assert not self._eof, "feed_data after feed_eof"
        if not data:
            return
        buf = self._buffer
        buf.extend(data)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)
        if self._transport is not None and not self._paused and len(buf) > 2 * self._limit:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                # The transport can't be paused: buffer everything, and forget the
                # transport so we don't keep trying.
                self._transport = None
            else:
                self._paused = True

    async def _wait_for_data(self, func_name: str) -> None:
        """Wait until feed_data() or feed_eof() is called; resume reading if paused."""
        # One waiter: with two read coroutines waiting, which one gets the next data
        # would be undefined.
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is already waiting for incoming data"
            )
        assert not self._eof, "_wait_for_data after EOF"
        # Waiting for data while paused would deadlock (readexactly(n > limit)).
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def readline(self) -> bytes:
        """Read one line, ending with b'\\n' (or the rest of the stream at EOF).

        If the limit is exceeded, ValueError is raised: the line including its newline is
        removed from the buffer if the newline was found, else the buffer is cleared. The
        limit is compared with the line without its newline.
        """
        # Fast path: a whole line that fits the limit is already buffered. The general
        # path would find the same newline at the same offset and return the same bytes.
        if self._exception is None:
            buf = self._buffer
            isep = buf.find(b"\n")
            if 0 <= isep <= self._limit:
                end = isep + 1
                chunk = bytes(memoryview(buf)[:end]) if _VIEWS_FREED_AT_ONCE else bytes(buf[:end])
                del buf[:end]
                if self._paused:
                    self._maybe_resume_transport()
                return chunk
        try:
            line = await self.readuntil(b"\n")
        except _IncompleteReadError as e:
            return e.partial
        except _LimitOverrunError as e:
            if self._buffer.startswith(b"\n", e.consumed):
                del self._buffer[: e.consumed + 1]
            else:
                self._buffer.clear()
            self._maybe_resume_transport()
            raise ValueError(e.args[0])
        return line

    async def readuntil(self, separator: Any = b"\n") -> bytes:
        """Read data until ``separator`` (or, given a tuple, any of them) is found.

        The returned data ends with the separator. With a tuple the result is the shortest
        one that ends with any of the separators. At EOF without a separator,
        IncompleteReadError (partial = the whole buffer, which is cleared). Over the limit,
        LimitOverrunError and the data stays in the buffer.
        """
        if isinstance(separator, tuple):
            # Makes sure the shortest match wins
            seps: Any = sorted(separator, key=len)
            if not seps:
                raise ValueError("Separator should contain at least one element")
            min_seplen = len(seps[0])
            max_seplen = len(seps[-1])
        else:
            seps = None
            min_seplen = max_seplen = len(separator)
        if min_seplen == 0:
            raise ValueError("Separator should be at least one-byte string")

        if self._exception is not None:
            raise self._exception

        # Consume the whole buffer except its last max_seplen - 1 bytes, which may hold the
        # start of a separator (see asyncio's comment: rescanning is cheap for real-world
        # separators, a partial-match FSM is not worth it).
        # `offset`: bytes from the start of the buffer that hold no separator.
        buf = self._buffer
        offset = 0
        match_start = -1
        match_end = -1
        while True:
            buflen = len(buf)
            # Enough data in the buffer for the shortest separator to fit?
            if buflen - offset >= min_seplen:
                if seps is None:
                    isep = buf.find(separator, offset)
                    if isep != -1:
                        match_start = isep
                        match_end = isep + min_seplen
                        break
                else:
                    for sep in seps:
                        isep = buf.find(sep, offset)
                        if isep != -1:
                            end = isep + len(sep)
                            if match_end == -1 or end < match_end:
                                match_end = end
                                match_start = isep
                    if match_end != -1:
                        break
                offset = buflen + 1 - max_seplen
                if offset < 0:
                    offset = 0
                if offset > self._limit:
                    raise _LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit", offset
                    )
            # A complete separator may be buffered even at EOF (the last chunk brought it),
            # so EOF is checked *after* the buffer.
            if self._eof:
                chunk = bytes(buf)
                buf.clear()
                raise _IncompleteReadError(chunk, None)
            # _wait_for_data() resumes reading if the stream was paused.
            await self._wait_for_data("readuntil")

        if match_start > self._limit:
            raise _LimitOverrunError(
                "Separator is found, but chunk is longer than limit", match_start
            )
        chunk = (
            bytes(memoryview(buf)[:match_end]) if _VIEWS_FREED_AT_ONCE else bytes(buf[:match_end])
        )
        del buf[:match_end]
        self._maybe_resume_transport()
        return chunk

    async def read(self, n: int = -1) -> bytes:
        """Read up to `n` bytes.

        n == -1 (or any n < 0): read until EOF and return everything. n == 0: b'' at once.
        n > 0: at most n bytes, as soon as at least one is buffered; b'' at EOF. The result
        is not bounded by the limit.
        """
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            # read(self._limit) until EOF: waiting for everything at once would deadlock
            # once more than the limit is buffered (reading paused).
            blocks = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    break
                blocks.append(block)
            return b"".join(blocks)

        buf = self._buffer
        if not buf and not self._eof:
            # _wait_for_data("read"), inlined: this is the hot path of every stream server.
            if self._waiter is not None:
                raise RuntimeError(
                    "read() called while another coroutine is already waiting for incoming data"
                )
            if self._paused:
                self._paused = False
                self._transport.resume_reading()
            self._waiter = waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        # Correct even when the buffer holds fewer than n bytes.
        if n >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(memoryview(buf)[:n]) if _VIEWS_FREED_AT_ONCE else bytes(buf[:n])
            del buf[:n]
        if self._paused:
            self._maybe_resume_transport()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Read exactly `n` bytes; IncompleteReadError (with .partial) at an early EOF."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        buf = self._buffer
        while len(buf) < n:
            if self._eof:
                incomplete = bytes(buf)
                buf.clear()
                raise _IncompleteReadError(incomplete, n)
            await self._wait_for_data("readexactly")
        if len(buf) == n:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(memoryview(buf)[:n]) if _VIEWS_FREED_AT_ONCE else bytes(buf[:n])
            del buf[:n]
        if self._paused:
            self._maybe_resume_transport()
        return data

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> bytes:
        val = await self.readline()
        if val == b"":
            raise StopAsyncIteration
        return val
