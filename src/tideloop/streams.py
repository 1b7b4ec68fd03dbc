"""High-level streams: StreamReader, StreamWriter, open_connection, start_server.

The spec is CPython's ``asyncio/streams.py`` (3.11 to 3.14); names, messages, exception
classes (``asyncio.IncompleteReadError``, ``asyncio.LimitOverrunError``) and the order in
which things happen are asyncio's, so a diff against CPython stays readable. The functions
build on ``asyncio.get_running_loop().create_connection()`` / ``create_server()``, so they
run on any loop, tideloop's included.

Protocol grammar (asyncio's)::

    start -> connection_made [-> data_received]* [-> eof_received]? -> connection_lost -> end

``StreamReader`` lives in ``_streams/reader.py`` (its docstring gives its flow control and
invariants) and is re-exported here; this module holds the protocol that feeds it
(``StreamReaderProtocol`` and its ``FlowControlMixin``), ``StreamWriter`` and the functions.
Where this differs from asyncio, it is for speed and never visible (classes have
``__slots__``; the reader's fast paths are described in its module).

Version notes: on 3.11/3.12 the server-side protocol keeps its writer alive
(``_stream_writer``), as those versions do; 3.13 does not, and closes the transport when the
client_connected_cb task is cancelled. The unclosed-writer ``ResourceWarning`` is given by
``StreamWriter.__del__`` as all three versions give it. As 3.14 does (and not before):
``StreamWriter.start_tls`` also points the reader at the TLS transport (its flow control
pauses that one), and a plain-function ``client_connected_cb`` that raises is reported to
the loop's exception handler ("Unhandled exception in client_connected_cb") and its
connection closed; before 3.14 the exception leaves ``connection_made``. 3.12+ pass
``ssl_shutdown_timeout`` (None by default) to ``loop.start_tls``; 3.11 only when given.
"""

from __future__ import annotations

import collections
import socket
import sys
import warnings
import weakref
from asyncio import coroutines as _coroutines
from asyncio import events as _events
from asyncio import protocols as _protocols
from asyncio.log import logger as _logger
from asyncio.tasks import sleep as _sleep
from typing import Any

from ._streams.reader import _DEFAULT_LIMIT, StreamReader

# Public here: introspection (help(), reprs of the class, docs) names the module users import.
StreamReader.__module__ = __name__

__all__ = (
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
)

_iscoroutine = _coroutines.iscoroutine
# 3.11/3.12.1 keep the server-side writer referenced from the protocol; 3.13 does not.
_KEEP_WRITER = sys.version_info < (3, 13)
# gh-113538 (3.13, backported to 3.12.2 and 3.11.8, so in PyPy 3.11's stdlib): a cancelled
# client_connected_cb task closes the transport instead of failing in the done callback.
_CLOSE_ON_CANCEL = sys.version_info >= (3, 12, 2) or (3, 11, 8) <= sys.version_info < (3, 12)
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
