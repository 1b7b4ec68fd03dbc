"""The loop's low-level socket API: sock_recv, sock_sendall, sock_connect, sock_accept & co.

Semantics are asyncio's selector_events.py, which is identical for these methods in 3.11, 3.12
and 3.13: SSLSocket -> TypeError; in debug mode a blocking socket -> ValueError("the socket
must be non-blocking"); the syscall is tried at once and the loop only waits when it would
block; cancelling the awaiting task unregisters the reader/writer.

Some facts about waiting on a socket
------------------------------------
- A sock_* call that would block registers ``callback(fut, sock, ...)`` with add_reader or
  add_writer and awaits ``fut``. The callback retries the syscall on every readiness event and
  settles ``fut``; a done callback on ``fut`` unregisters. The callback checks ``fut.done()``
  first: cancellation can land between the readiness event and the callback.
- There is one reader and one writer slot per fd. A second registration replaces the first, so
  the *first* future's done callback must not unregister the *second* one. This is the race in
  "cancel a pending sock_recv, then sock_recv again at once" (CPython's test_sock_client_racing):
  the cancelled future's done callback runs on the next pass, after the new reader is in place.
  asyncio solves it with the Handle returned by its private ``_add_reader``: replacing a reader
  cancels the old Handle, and the done callback skips ``remove_reader`` if its Handle was
  cancelled. The public ``add_reader`` returns None, so here each loop keeps
  ``_sock_readers`` / ``_sock_writers``: fd -> the future whose callback this mixin registered
  last. A done callback unregisters only if its future is still the one on record.
- Ordering: the task awaiting ``fut`` adds its wake-up callback after our done callback, so the
  fd is unregistered before the task resumes; code after ``await loop.sock_recv(...)`` sees a
  clean fd.

Things that don't work
----------------------
- Binding the syscall at registration (``add_reader(fd, cb, fut, sock.recv, n)``) to share one
  callback for every operation: it freezes the method object, and callers (CPython's
  test_sendto_blocking among them) may replace ``sock.sendto`` while an operation waits.
- Re-registering from inside the callback on EAGAIN, as asyncio's ``_sock_accept`` does: it
  stacks one done callback per spurious wake-up. Here the callback stays registered and returns.

Limitation (known): a reader registered on the same fd with the public ``add_reader`` by other
code, after a sock_* call on that fd was cancelled but before its done callback ran, is removed
by that done callback (asyncio would keep it). Closing that gap needs the core to expose the
registration identity of an fd's reader/writer.
"""

from __future__ import annotations

import functools
import socket
from typing import TYPE_CHECKING, Any

from .sendfile import SendfileMixin, _check_ssl_socket

if TYPE_CHECKING:
    from .._api import LoopAPI

_HAS_IPv6 = hasattr(socket, "AF_INET6")
_INET_FAMILIES = (socket.AF_INET, socket.AF_INET6) if _HAS_IPv6 else (socket.AF_INET,)
_partial = functools.partial


class SockOpsMixin(SendfileMixin):
    """The nine ``sock_*`` coroutine methods of asyncio.AbstractEventLoop.

    Needs from the loop (``_api.LoopAPI``): add_reader/remove_reader/add_writer/remove_writer
    (which check _ensure_fd_no_transport), create_future, get_debug and _ensure_resolved
    (DnsMixin).
    The class that mixes this in must have a ``__dict__``: the two waiter maps below are
    created on first use so that no ``__init__`` cooperation is required.
    """

    # Invariant: _sock_readers[fd] is fut  <=>  the reader registered for fd is the callback
    # this mixin added for fut, and fut is not done yet or its done callback has not run.
    # The same holds for _sock_writers and writers. Entries are removed by those done callbacks.
    _sock_readers: dict | None = None
    _sock_writers: dict | None = None

    # ------------------------------------------------------------------ waiting

    def _sock_check(self: LoopAPI, sock: Any) -> None:
        _check_ssl_socket(sock)
        if self.get_debug() and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    def _sock_wait_readable(self: LoopAPI, fut: Any, fd: int, callback: Any, *args: Any) -> None:
        """Call callback(*args) on each readable event of fd until fut is done."""
        # add_reader runs _ensure_fd_no_transport(fd): a transport-owned fd raises here.
        self.add_reader(fd, callback, *args)
        waiters = self._sock_readers
        if waiters is None:
            waiters = self._sock_readers = {}
        waiters[fd] = fut
        fut.add_done_callback(_partial(self._sock_reader_done, fd))

    def _sock_reader_done(self: LoopAPI, fd: int, fut: Any) -> None:
        waiters = self._sock_readers
        if waiters is not None and waiters.get(fd) is fut:
            del waiters[fd]
            self.remove_reader(fd)

    def _sock_wait_writable(self: LoopAPI, fut: Any, fd: int, callback: Any, *args: Any) -> None:
        """Call callback(*args) on each writable event of fd until fut is done."""
        self.add_writer(fd, callback, *args)
        waiters = self._sock_writers
        if waiters is None:
            waiters = self._sock_writers = {}
        waiters[fd] = fut
        fut.add_done_callback(_partial(self._sock_writer_done, fd))

    def _sock_writer_done(self: LoopAPI, fd: int, fut: Any) -> None:
        waiters = self._sock_writers
        if waiters is not None and waiters.get(fd) is fut:
            del waiters[fd]
            self.remove_writer(fd)

    def _sock_retry(self, fut: Any, sock: Any, method: str, *args: Any) -> None:
        """The readiness callback of the plain waits (recv, recv_into, recvfrom,
        recvfrom_into, sendto): try ``sock.<method>(*args)`` again and settle ``fut`` with its
        result or its error; on EAGAIN/EINTR stay registered for the next event.

        ``method`` is a name, looked up at each try (see "Things that don't work").
        """
        if fut.done():
            return  # cancellation can land between the event and this callback
        try:
            result = getattr(sock, method)(*args)
        except (BlockingIOError, InterruptedError):
            return  # try again next time
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    # ------------------------------------------------------------------ receiving

    async def sock_recv(self: LoopAPI, sock: Any, n: Any) -> bytes:
        """Receive up to n bytes from sock; b'' at EOF."""
        self._sock_check(sock)
        try:
            return sock.recv(n)
        except (BlockingIOError, InterruptedError):
            pass
        fut = self.create_future()
        self._sock_wait_readable(fut, sock.fileno(), self._sock_retry, fut, sock, "recv", n)
        return await fut

    async def sock_recv_into(self: LoopAPI, sock: Any, buf: Any) -> int:
        """Receive into the writable buffer buf; return the number of bytes written."""
        self._sock_check(sock)
        try:
            return sock.recv_into(buf)
        except (BlockingIOError, InterruptedError):
            pass
        fut = self.create_future()
        self._sock_wait_readable(fut, sock.fileno(), self._sock_retry, fut, sock, "recv_into", buf)
        return await fut

    async def sock_recvfrom(self: LoopAPI, sock: Any, bufsize: Any) -> tuple:
        """Receive a datagram of up to bufsize bytes; return (data, address)."""
        self._sock_check(sock)
        try:
            return sock.recvfrom(bufsize)
        except (BlockingIOError, InterruptedError):
            pass
        fut = self.create_future()
        self._sock_wait_readable(
            fut, sock.fileno(), self._sock_retry, fut, sock, "recvfrom", bufsize
        )
        return await fut

    async def sock_recvfrom_into(self: LoopAPI, sock: Any, buf: Any, nbytes: Any = 0) -> tuple:
        """Receive a datagram into buf (at most nbytes, 0 = len(buf)); return (n, address)."""
        self._sock_check(sock)
        if not nbytes:
            nbytes = len(buf)
        try:
            return sock.recvfrom_into(buf, nbytes)
        except (BlockingIOError, InterruptedError):
            pass
        fut = self.create_future()
        self._sock_wait_readable(
            fut, sock.fileno(), self._sock_retry, fut, sock, "recvfrom_into", buf, nbytes
        )
        return await fut

    # ------------------------------------------------------------------ sending

    async def sock_sendall(self: LoopAPI, sock: Any, data: Any) -> None:
        """Send all of data; on error nothing tells how much the peer received.

        Invariant while waiting: ``pos[0]`` bytes of ``view`` have been sent (partial progress
        is kept across writable events; each event sends from there).
        """
        self._sock_check(sock)
        try:
            n = sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        if n == len(data):
            return  # all sent: the common case costs one syscall and no allocation
        # Count in bytes, not items: asyncio slices memoryview(data) by item, which is wrong
        # for buffers whose itemsize is not 1 (array('i'), memoryview.cast('I')).
        view = memoryview(data).cast("B")
        if n == len(view):
            return
        fut = self.create_future()
        self._sock_wait_writable(fut, sock.fileno(), self._sock_sendall, fut, sock, view, [n])
        return await fut

    def _sock_sendall(self, fut: Any, sock: Any, view: memoryview, pos: list) -> None:
        if fut.done():
            return  # cancellation can land between the event and this callback
        start = pos[0]
        try:
            n = sock.send(view[start:])
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            return
        start += n
        if start == len(view):
            fut.set_result(None)
        else:
            pos[0] = start

    async def sock_sendto(self: LoopAPI, sock: Any, data: Any, address: Any) -> int:
        """Send one datagram to address; return the number of bytes sent."""
        self._sock_check(sock)
        try:
            return sock.sendto(data, address)
        except (BlockingIOError, InterruptedError):
            pass
        fut = self.create_future()
        # Retried as sendto(data, 0, address), as asyncio's _sock_sendto does.
        self._sock_wait_writable(
            fut, sock.fileno(), self._sock_retry, fut, sock, "sendto", data, 0, address
        )
        return await fut

    # ------------------------------------------------------------------ connections

    async def sock_connect(self: LoopAPI, sock: Any, address: Any) -> None:
        """Connect sock to address, resolving host names for AF_INET/AF_INET6 sockets."""
        self._sock_check(sock)
        if sock.family in _INET_FAMILIES:
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto
            )
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
            return None
        except (BlockingIOError, InterruptedError):
            # EINPROGRESS, or EINTR (issue #23618: the connection goes on in the background).
            # Either way the socket turns writable when it succeeds or fails.
            pass
        fut: Any = self.create_future()  # Any: set to None below
        self._sock_wait_writable(fut, sock.fileno(), self._sock_connect_cb, fut, sock, address)
        try:
            return await fut
        finally:
            fut = None  # break the cycle through the exception's traceback

    def _sock_connect_cb(self, fut: Any, sock: Any, address: Any) -> None:
        if fut.done():
            return
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err != 0:
                # OSError(ECONNREFUSED, ...) is constructed as ConnectionRefusedError.
                raise OSError(err, f"Connect call failed {address}")
        except (BlockingIOError, InterruptedError):
            pass  # still registered: retried on the next writable event
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result(None)
        finally:
            fut = None

    async def sock_accept(self: LoopAPI, sock: Any) -> tuple:
        """Accept a connection on the listening sock; return (conn, address), conn non-blocking."""
        self._sock_check(sock)
        try:
            conn, address = sock.accept()
        except (BlockingIOError, InterruptedError):
            pass
        else:
            conn.setblocking(False)
            return conn, address
        fut = self.create_future()
        self._sock_wait_readable(fut, sock.fileno(), self._sock_accept, fut, sock)
        return await fut

    def _sock_accept(self, fut: Any, sock: Any) -> None:
        if fut.done():
            return  # don't accept a connection nobody will receive
        try:
            conn, address = sock.accept()
            conn.setblocking(False)
        except (BlockingIOError, InterruptedError):
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            fut.set_exception(exc)
        else:
            fut.set_result((conn, address))
