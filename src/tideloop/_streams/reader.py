"""StreamReader, the buffer behind ``tideloop.streams`` (the public module re-exports it).

The spec is CPython's ``asyncio.streams.StreamReader`` (3.11 to 3.14): names, messages,
exception classes (``asyncio.IncompleteReadError``, ``asyncio.LimitOverrunError``) and the
order in which things happen are asyncio's. The protocol that feeds it
(``StreamReaderProtocol``), the writer and the connection functions are in ``streams.py``.

Where this differs from asyncio, it is for speed and never visible:

- ``readuntil(separator)`` with one bytes separator skips the sort/list of the 3.13 tuple
  path; ``readline()`` first looks for ``b'\\n'`` in the buffer it already has and returns
  at once when the line fits the limit (the result is the one the general path gives).
- The class has ``__slots__``.

``readuntil`` accepts a tuple of separators (3.13 semantics: the shortest match wins) on
every version.

Flow control (asyncio's): reading is paused while the buffer holds more than ``2 * limit``
bytes, and resumed once it is at or below ``limit`` (``_maybe_resume_transport``) or when a
reader must wait for more data (``_wait_for_data``; else readexactly(n > limit) would
deadlock).

Invariant: ``StreamReader._waiter`` is None or a pending-or-done future that exactly one
read coroutine awaits; feed_data/feed_eof/set_exception wake it and set it back to None.
Invariant: ``StreamReader._paused`` implies ``_transport`` is not None and was paused by us.
"""

from __future__ import annotations

import sys
from asyncio import events as _events
from asyncio import exceptions as _exceptions
from asyncio import format_helpers as _format_helpers
from typing import Any

_DEFAULT_LIMIT = 2**16  # 64 KiB, as asyncio
_IncompleteReadError = _exceptions.IncompleteReadError
_LimitOverrunError = _exceptions.LimitOverrunError
# CPython frees a memoryview as soon as nothing refers to it; PyPy only at GC, and a live view
# forbids resizing the bytearray under it (BufferError). Reads copy their bytes out through a
# view only where it is freed at once (one copy instead of two); on PyPy, without one.
_VIEWS_FREED_AT_ONCE = sys.implementation.name == "cpython"


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
