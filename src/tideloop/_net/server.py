"""Listening stream sockets: ``create_server``, ``create_unix_server`` and the Server object.

Semantics are asyncio's: ``base_events.Server`` and ``create_server``, ``unix_events``'
``create_unix_server`` (3.13, with ``cleanup_socket`` and ``keep_alive`` offered on every
version) and ``selector_events._accept_connection``. Argument checks, their order and their
messages are asyncio's. ``Server.wait_closed`` follows the *running* version, because
CPython's own tests check it: on 3.11 it returns at once once the server is closed; from 3.12.1
it waits until the server is closed *and* its last connection is gone.

Some facts about accepting
--------------------------
- The listening socket is watched by an ``_Acceptor``, an IOWatcher the loop calls inline on
  readiness (no Handle per event). One readiness event accepts up to ``backlog`` connections,
  as asyncio does (bpo-27906): a burst of connects costs one poll, not one poll each.
- accept() failing with EMFILE/ENFILE/ENOBUFS/ENOMEM leaves the connection queued, and the
  fd stays readable (level-triggered): accepting again at once would spin. So, as asyncio,
  the failure is reported (``'socket.accept() out of system resource'``), the reader is
  removed and added back ``constants.ACCEPT_RETRY_DELAY`` seconds later. The accept loop
  stops there (asyncio 3.11-3.13 kept looping, reporting and scheduling a retry up to
  ``backlog`` times per event; CPython gh-151615 fixed it the same way).
- The retry timer is not cancelled by close(); it finds the socket closed and does nothing.
- ConnectionAbortedError (a connection reset while queued) skips that connection only
  (gh-151615 too; asyncio 3.13.0 stopped the batch, which level-triggering made harmless).
- Each connection's protocol_factory() and transport are made in a fresh copy of the context
  in which serving started, as asyncio's per-connection Task does.

Rejected: a Task per accepted connection (asyncio's ``_accept_connection2`` awaits a waiter
that a plain stream transport resolves one pass later, only to close the transport if the
task is cancelled meanwhile). Here the acceptor makes the protocol and the transport inline:
connection_made runs one pass after accept instead of two, with no Task, coroutine or Future
per connection. Errors are handled as there: in debug mode they are reported with
``'Error on transport creation for incoming connection'``; the accepted socket is closed
(asyncio left it to the garbage collector).

Across versions: an address that cannot be bound with EADDRNOTAVAIL is skipped (3.13,
bpo-30945: an address family the host has disabled) and only "could not bind on any address"
fails, on every version; the bind error's text is the running version's.

Rejected: ``set()`` of the resolved addresses, as asyncio: its order varies from run to run.
``dict.fromkeys`` removes the same duplicates and keeps getaddrinfo's order.
"""

from __future__ import annotations

import collections.abc
import contextvars
import errno
import os
import socket
import stat
import sys
from asyncio import base_events as _aio_base_events
from asyncio import constants as _constants
from asyncio import events as _events
from asyncio import exceptions as _exceptions
from asyncio import tasks as _tasks
from asyncio import trsock as _trsock
from typing import TYPE_CHECKING, Any

from .._compat import PY312 as _PY312
from .._compat import PY313 as _PY313
from .._compat import PY314 as _PY314
from .._compat import logger as _logger
from .._core.watcher import IOWatcher
from .._transports.stream import make_stream_transport
from .._transports.tls import make_tls_transport
from .sendfile import _check_ssl_socket

if TYPE_CHECKING:
    from .._api import LoopAPI

# Untyped: their ``socket`` attribute is looked up per call (CPython's tests patch it).
_base_events: Any = _aio_base_events
_unix_events: Any
try:
    from asyncio import unix_events as _unix_events
except ImportError:  # Windows: no Unix servers anyway
    _unix_events = None

_HAS_IPv6 = hasattr(socket, "AF_INET6")
_AF_UNIX = getattr(socket, "AF_UNIX", None)
# asyncio's cleanup_socket default: 3.13 removes a Unix server's socket file on close.
_CLEANUP_SOCKET_DEFAULT = sys.version_info >= (3, 13)
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_copy_context = contextvars.copy_context


def _set_reuseport(sock: Any) -> None:
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        ) from None


def _is_abstract(path: Any) -> bool:
    """True for a Linux abstract-namespace address ('\\0...' or b'\\0...')."""
    return path[0] in (0, "\x00")


class Server(_events.AbstractServer):
    """The object ``create_server`` / ``create_unix_server`` return (asyncio's Server).

    State machine::

        created --_start_serving()--> serving --close()--> closed
        created --close()--> closed

    Invariant: ``_sockets is None`` iff close() was called; then ``_serving`` is False.
    Invariant: ``_waiters is None`` iff the waiters of wait_closed() were woken, which happens
    once: when the server is closed and no connection is attached, in either order.
    Invariant: ``_attached`` counts the ``_attach()`` calls not yet matched by ``_detach()``.
    The acceptor attaches each transport it makes and gives it ``_detach`` as its ``on_lost``
    callback, which the transport calls after its connection_lost or, if abandoned and
    collected, from its ``__del__`` (as asyncio 3.13). The server keeps no reference to its
    transports (a set of weak references cost ~200 bytes per idle connection):
    close_clients() finds them in the loop's fd -> transport map by that callback.
    """

    def __init__(
        self,
        loop: Any,
        sockets: list,
        protocol_factory: Any,
        ssl_context: Any,
        backlog: int,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any = None,
    ) -> None:
        self._loop = loop
        self._sockets: Any = sockets  # None once closed
        self._attached = 0
        self._waiters: list | None = []
        self._protocol_factory = protocol_factory
        self._backlog = backlog
        self._ssl_context = ssl_context
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._serving = False
        self._serving_forever_fut: Any = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} sockets={self.sockets!r}>"

    # ------------------------------------------------------------------ transports

    def _attach(self, transport: Any = None) -> None:
        """Called by the acceptor (or _make_ssl_transport) for each transport it makes.

        The argument is optional, as in 3.11/3.12 asyncio's signature (their tests call it
        without one); only the count matters.
        """
        self._attached += 1

    def _detach(self, transport: Any = None) -> None:
        """That transport's on_lost: called after its connection_lost() (or from its __del__)."""
        self._attached -= 1
        if self._sockets is None and self._idle():
            self._wakeup()

    def _idle(self) -> bool:
        return self._attached == 0

    def _clients(self) -> list:
        """The transports attached to this server and still open: those in the loop's fd
        map whose end is reported to this server's _detach (bound methods compare equal
        when their object is the same)."""
        detach = self._detach
        return [
            transport
            for transport in list(self._loop._transports.values())
            if getattr(getattr(transport, "_core", None), "_on_lost", None) == detach
        ]

    def _wakeup(self) -> None:
        waiters = self._waiters
        if waiters is None:
            return
        self._waiters = None
        for waiter in waiters:
            if not waiter.done():
                # 3.11 resolves the waiter with itself, 3.12+ with None.
                waiter.set_result(None if _PY312 else waiter)

    def close_clients(self) -> None:
        """Close every connection of this server (3.13 API)."""
        for transport in self._clients():
            transport.close()

    def abort_clients(self) -> None:
        """Abort every connection of this server, dropping buffered output (3.13 API)."""
        for transport in self._clients():
            transport.abort()

    # ------------------------------------------------------------------ serving

    def _start_serving(self) -> None:
        if self._serving:
            return
        self._serving = True
        for sock in self._sockets:
            sock.listen(self._backlog)
            self._loop._start_serving(
                self._protocol_factory,
                sock,
                self._ssl_context,
                self,
                self._backlog,
                self._ssl_handshake_timeout,
                self._ssl_shutdown_timeout,
            )

    def get_loop(self) -> Any:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    @property
    def sockets(self) -> tuple:
        if self._sockets is None:
            return ()
        return tuple(_trsock.TransportSocket(s) for s in self._sockets)

    def close(self) -> None:
        """Stop listening and close the listening sockets; connections stay open."""
        sockets = self._sockets
        if sockets is None:
            return
        self._sockets = None
        for sock in sockets:
            self._loop._stop_serving(sock)
        self._serving = False
        fut = self._serving_forever_fut
        if fut is not None and not fut.done():
            fut.cancel()
            self._serving_forever_fut = None
        if self._idle():
            self._wakeup()

    async def start_serving(self) -> None:
        self._start_serving()
        # Skip one loop iteration so that all 'loop.add_reader' go through.
        await _tasks.sleep(0)

    async def serve_forever(self) -> None:
        if self._serving_forever_fut is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._sockets is None:
            raise RuntimeError(f"server {self!r} is closed")
        self._start_serving()
        self._serving_forever_fut = self._loop.create_future()
        try:
            await self._serving_forever_fut
        except _exceptions.CancelledError:
            try:
                self.close()
                if _PY314:
                    # asyncio 3.14: a cancelled serve_forever also closes the connections,
                    # so that wait_closed() cannot hang on an idle client.
                    self.close_clients()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever_fut = None

    async def wait_closed(self) -> None:
        """Wait until the server is closed and (3.12.1+) all its connections are gone."""
        if self._waiters is None or (not _PY312 and self._sockets is None):
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        await waiter


class _Acceptor(IOWatcher):
    """Accepts connections on one listening socket for a Server; see the module docstring.

    Invariant: registered as the reader of ``_fd`` from ``_start_serving`` until
    ``_stop_serving``, except while backing off from a resource error.
    """

    __slots__ = (
        "_loop",
        "_protocol_factory",
        "_sock",
        "_fd",
        "_sslcontext",
        "_server",
        "_backlog",
        "_ssl_handshake_timeout",
        "_ssl_shutdown_timeout",
        "_context",
    )

    def __init__(
        self,
        loop: Any,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any,
        server: Any,
        backlog: int,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any,
    ) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sock = sock
        self._fd = sock.fileno()
        self._sslcontext = sslcontext
        self._server = server
        self._backlog = backlog
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        # What asyncio's reader Handle would capture when serving starts.
        self._context = _copy_context()

    def __repr__(self) -> str:
        return f"<_Acceptor fd={self._fd} server={self._server!r}>"

    def _on_writable(self) -> None:  # never registered for writing
        pass

    def _on_readable(self) -> None:
        sock = self._sock
        loop = self._loop
        for _ in range(self._backlog):
            try:
                conn, addr = sock.accept()
                if loop._debug:
                    _logger().debug("%r got a new connection from %r: %r", self._server, addr, conn)
                conn.setblocking(False)
            except (BlockingIOError, InterruptedError):
                return  # the accept queue is empty
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRNOS:
                    raise  # the loop reports it and keeps the reader
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": exc,
                        "socket": _trsock.TransportSocket(sock),
                    }
                )
                loop._remove_reader(self._fd)
                loop.call_later(_constants.ACCEPT_RETRY_DELAY, self._resume)
                return
            context = self._context.copy()
            context.run(self._accept_connection, conn, addr, context)
            if sock.fileno() == -1:
                return  # protocol_factory() closed the server

    def _resume(self) -> None:
        """Watch the socket again after a resource error, unless it was closed meanwhile."""
        if self._sock.fileno() != -1 and not self._loop.is_closed():
            self._loop._add_reader(self._fd, self)

    def _accept_connection(self, conn: Any, addr: Any, context: Any) -> None:
        """Make the protocol and the transport for one accepted socket (asyncio's
        ``_accept_connection2`` without its Task; runs in ``context``, its own copy, which
        the plain transport then keeps for its callbacks)."""
        loop = self._loop
        server = self._server
        protocol = None
        try:
            protocol = self._protocol_factory()
            if self._sslcontext:
                waiter = loop.create_future()
                transport: Any = make_tls_transport(
                    loop,
                    conn,
                    protocol,
                    self._sslcontext,
                    waiter,
                    server_side=True,
                    extra={"peername": addr},
                    on_lost=server._detach,
                    ssl_handshake_timeout=self._ssl_handshake_timeout,
                    ssl_shutdown_timeout=self._ssl_shutdown_timeout,
                )
                server._attach(transport)
                waiter.add_done_callback(_HandshakeDone(loop, protocol, transport))
            else:
                transport = make_stream_transport(
                    loop, conn, protocol, None, None, server._detach, addr, context
                )
                server._attach(transport)
        except (SystemExit, KeyboardInterrupt):
            conn.close()
            raise
        except BaseException as exc:
            conn.close()
            if loop._debug:
                context = {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                }
                if protocol is not None:
                    context["protocol"] = protocol
                loop.call_exception_handler(context)


class _HandshakeDone:
    """Done callback of a TLS server connection's handshake waiter: what asyncio's
    ``_accept_connection2`` does after ``await waiter`` (close the transport on failure and,
    in debug mode, report it), without a Task per connection."""

    __slots__ = ("_loop", "_protocol", "_transport")

    def __init__(self, loop: Any, protocol: Any, transport: Any) -> None:
        self._loop = loop
        self._protocol = protocol
        self._transport = transport

    def __call__(self, waiter: Any) -> None:
        loop, protocol, transport = self._loop, self._protocol, self._transport
        self._loop = self._protocol = self._transport = None
        if waiter.cancelled():
            exc: BaseException = _exceptions.CancelledError()
        else:
            exc = waiter.exception()
            if exc is None:
                return
        transport.close()
        if loop._debug:
            loop.call_exception_handler(
                {
                    "message": "Error on transport creation for incoming connection",
                    "exception": exc,
                    "protocol": protocol,
                    "transport": transport,
                }
            )


class ServerMixin:
    """create_server / create_unix_server and the loop hooks Server uses.

    Needs from the loop: ``_add_reader``/``_remove_reader`` (taking an IOWatcher),
    ``call_later``, ``call_exception_handler``, ``create_future``, ``_debug``, ``is_closed``,
    ``_ensure_resolved`` (DnsMixin) and ``_transports`` (TransportRegistryMixin, via
    make_stream_transport).
    The class that mixes this in must have a ``__dict__`` (``_unix_server_sockets`` is made
    on first use).
    """

    # Invariant: maps each listening Unix socket whose file close() must remove to the inode
    # that file had when the server was created (asyncio 3.13's cleanup_socket).
    _unix_server_sockets: dict | None = None

    # ------------------------------------------------------------------ hooks used by Server

    def _start_serving(
        self: LoopAPI,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        ssl_handshake_timeout: Any = _constants.SSL_HANDSHAKE_TIMEOUT,
        ssl_shutdown_timeout: Any = _constants.SSL_SHUTDOWN_TIMEOUT,
    ) -> None:
        """Start accepting on a listening socket (asyncio's signature)."""
        acceptor = _Acceptor(
            self,
            protocol_factory,
            sock,
            sslcontext,
            server,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        self._add_reader(acceptor._fd, acceptor)

    def _stop_serving(self: LoopAPI, sock: Any) -> None:
        """Stop accepting, close the socket and remove its Unix socket file if it is ours."""
        unix = self._unix_server_sockets
        path = sock.getsockname() if unix and sock in unix else None
        self._remove_reader(sock.fileno())
        sock.close()
        if unix is not None and path is not None:
            prev_ino = unix.pop(sock)
            try:
                if os.stat(path).st_ino == prev_ino:
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as err:
                _logger().error("Unable to clean up listening UNIX socket %r: %r", path, err)

    async def _serve(
        self,
        sockets: list,
        protocol_factory: Any,
        ssl: Any,
        backlog: int,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any,
        start_serving: bool,
    ) -> Server:
        for sock in sockets:
            sock.setblocking(False)
        server = Server(
            self,
            sockets,
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        if start_serving:
            try:
                server._start_serving()
            except BaseException:
                # E.g. listen(backlog) with a bad backlog: the sockets are ours to close
                # (asyncio leaks them).
                server.close()
                raise
            # Skip one loop iteration so that all 'loop.add_reader' go through.
            await _tasks.sleep(0)
        return server

    # ------------------------------------------------------------------ TCP

    async def _create_server_getaddrinfo(
        self: LoopAPI, host: Any, port: Any, family: Any, flags: Any
    ) -> list:
        infos = await self._ensure_resolved(
            (host, port), family=family, type=socket.SOCK_STREAM, flags=flags, loop=self
        )
        if not infos:
            raise OSError(f"getaddrinfo({host!r}) returned empty list")
        return infos

    async def create_server(
        self: LoopAPI,
        protocol_factory: Any,
        host: Any = None,
        port: Any = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: Any = None,
        reuse_port: Any = None,
        keep_alive: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        start_serving: bool = True,
    ) -> Server:
        """Create a TCP server on host/port (a host, a sequence of hosts, or all
        interfaces for None or '') or on a listening ``sock``; see asyncio.

        With ``ssl`` (an SSLContext) each connection is served over TLS: the protocol's
        connection_made runs after the handshake.
        """
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and ssl is None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and ssl is None:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")
        if sock is not None:
            _check_ssl_socket(sock)

        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")
            if reuse_address is None:
                reuse_address = os.name == "posix" and sys.platform != "cygwin"
            if host == "":
                hosts: list[Any] = [None]
            elif isinstance(host, str) or not isinstance(host, collections.abc.Iterable):
                hosts = [host]
            else:
                hosts = list(host)
            if len(hosts) == 1:
                results = [await self._create_server_getaddrinfo(hosts[0], port, family, flags)]
            else:
                results = await _tasks.gather(
                    *[self._create_server_getaddrinfo(h, port, family, flags) for h in hosts]
                )
            infos = list(dict.fromkeys(info for result in results for info in result))
            sockets = self._bind_all(infos, reuse_address, reuse_port, keep_alive)
        else:
            if sock is None:
                raise ValueError("Neither host/port nor sock were specified")
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")
            sockets = [sock]

        server = await self._serve(
            sockets,
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            start_serving,
        )
        if self._debug:
            _logger().info("%r is serving", server)
        return server

    def _bind_all(
        self: LoopAPI, infos: list, reuse_address: Any, reuse_port: Any, keep_alive: Any
    ) -> list:
        """One bound socket per address (asyncio's loop, its options and its errors).

        Sockets come from ``asyncio.base_events.socket.socket``, looked up per call, because
        CPython's tests mock that module to bind to addresses the host does not have.
        """
        debug = self._debug
        sockets: list = []
        completed = False
        try:
            for af, socktype, proto, _canonname, sa in infos:
                try:
                    sock = _base_events.socket.socket(af, socktype, proto)
                except OSError:
                    # Assume it's a bad family/type/protocol combination.
                    if debug:
                        _logger().warning(
                            "create_server() failed to create socket.socket(%r, %r, %r)",
                            af,
                            socktype,
                            proto,
                            exc_info=True,
                        )
                    continue
                sockets.append(sock)
                if reuse_address:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
                if reuse_port:
                    _set_reuseport(sock)
                if keep_alive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, True)
                # Disable IPv4/IPv6 dual stack support (enabled by default on Linux) which
                # makes a single socket listen on both address families.
                if _HAS_IPv6 and af == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, True)
                try:
                    sock.bind(sa)
                except OSError as err:
                    # 3.13 words it with str(err); 3.11/3.12 with err.strerror.
                    reason = str(err) if _PY313 or err.strerror is None else err.strerror
                    msg = f"error while attempting to bind on address {sa!r}: {reason.lower()}"
                    if err.errno == errno.EADDRNOTAVAIL:
                        # Assume the family is not enabled (bpo-30945)
                        sockets.pop()
                        sock.close()
                        if debug:
                            _logger().warning(msg)
                        continue
                    raise OSError(err.errno, msg) from None
            if not sockets:
                addresses = [info[4] for info in infos]
                raise OSError(f"could not bind on any address out of {addresses!r}")
            completed = True
        finally:
            if not completed:
                for sock in sockets:
                    sock.close()
        return sockets

    # ------------------------------------------------------------------ Unix

    async def create_unix_server(
        self,
        protocol_factory: Any,
        path: Any = None,
        *,
        sock: Any = None,
        backlog: int = 100,
        ssl: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        start_serving: bool = True,
        cleanup_socket: bool | None = None,
    ) -> Server:
        """Create a Unix stream server on ``path`` (a stale socket file there is removed;
        '\\0...' is an abstract address) or on a bound ``sock``; see asyncio. With
        ``cleanup_socket``, close() removes the socket file if it is still the server's.

        ``cleanup_socket`` is 3.13's parameter; tideloop offers it on every version. Its
        default follows the running Python, so existing code sees no change: True on 3.13+,
        False before (where asyncio never removes the file)."""
        if cleanup_socket is None:
            cleanup_socket = _CLEANUP_SOCKET_DEFAULT
        if isinstance(ssl, bool):
            raise TypeError("ssl argument must be an SSLContext or None")
        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")

        created = path is not None
        if created:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")
            path = os.fspath(path)
            # Check for abstract socket. `str` and `bytes` paths are supported. (asyncio
            # creates the socket first, and leaks it when this raises IndexError for ''.)
            if not _is_abstract(path):
                try:
                    if stat.S_ISSOCK(os.stat(path).st_mode):
                        os.remove(path)
                except FileNotFoundError:
                    pass
                except OSError as err:
                    # Directory may have permissions only to create socket.
                    _logger().error("Unable to check or remove stale UNIX socket %r: %r", path, err)
            # Looked up per call: asyncio's tests patch asyncio.unix_events.socket.
            sock = _unix_events.socket.socket(_AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(path)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    # Let's improve the error message by adding with what exact address it
                    # occurs.
                    raise OSError(errno.EADDRINUSE, f"Address {path!r} is already in use") from None
                raise
            except BaseException:
                sock.close()
                raise
        else:
            if sock is None:
                raise ValueError("path was not specified, and no sock specified")
            if sock.family != _AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")

        if cleanup_socket:
            name = sock.getsockname()
            # An unbound socket's name is '' (asyncio 3.13.0 raises IndexError there).
            if name and not _is_abstract(name):
                try:
                    ino = os.stat(name).st_ino
                except FileNotFoundError:
                    pass
                else:
                    if self._unix_server_sockets is None:
                        self._unix_server_sockets = {}
                    self._unix_server_sockets[sock] = ino
        return await self._serve(
            [sock],
            protocol_factory,
            ssl,
            backlog,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
            start_serving,
        )
