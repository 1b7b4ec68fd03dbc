"""create_connection (Happy Eyeballs), create_unix_connection, connect_accepted_socket.

Semantics are asyncio's (base_events.py and unix_events.py of the running Python): the same
argument checks in the same order with the same exception types and messages, resolution
through ``_ensure_resolved`` (DnsMixin), connection through ``sock_connect`` (SockOpsMixin),
and the transport made and started like asyncio's ``_make_socket_transport``: the call returns
once ``connection_made`` has run.

How create_connection picks an address
--------------------------------------
getaddrinfo's list (optionally interleaved by family, RFC 8305 section 4) is tried in order.
Without ``happy_eyeballs_delay`` each address is tried only after the previous one failed.
With it, the next attempt also starts when the delay has passed, attempts overlap, the first
connected socket wins and the others are cancelled (``staggered.py``). If nothing connects:
``all_errors=True`` raises ExceptionGroup("create_connection failed", errors); otherwise one
error is re-raised as is, several errors with the same ``str()`` raise the first, and
different ones raise ``OSError('Multiple exceptions: ...')``.

Invariant (no leaks): every socket this module creates is either returned inside a transport
or closed before the call returns or raises, cancellation included. A socket passed in by
the caller (``sock=``) is closed by the transport made over it and, from 3.14 on (asyncio's
gh-153133), also when no transport could be made (protocol_factory raising, a bad TLS
argument); before 3.14 asyncio leaves it open then, and so does tideloop.

Differences from asyncio, on purpose:
- before 3.14, a socket created here is also closed when making the transport fails;
  asyncio 3.11-3.13 leaks it until the garbage collector warns;
- Happy Eyeballs attempts that raise something other than OSError: asyncio 3.13 then fails
  with IndexError (it indexes an empty error list); here the first such exception is raised.

TLS (``ssl=``: an SSLContext, or True for a default client context) wraps the socket's
stream transport in ``_transports/tls.py``; the call returns once the handshake is done and
the protocol's connection_made has run. server_hostname defaults to host and is required
without one (with ``sock=``); '' disables the hostname check.
"""

from __future__ import annotations

import collections
import itertools
import os
import socket
import sys
from asyncio import exceptions as _exceptions
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._compat import PY313 as _PY313
from .._compat import logger as _logger
from .._transports.stream import make_stream_transport
from .._transports.tls import make_tls_transport
from .sendfile import _check_ssl_socket
from .staggered import staggered_race

if TYPE_CHECKING:
    from .._api import LoopAPI

# asyncio 3.14 (gh-153133) closes the socket, even a caller's, when no transport is made.
_CLOSE_SOCK_ON_TRANSPORT_ERROR = sys.version_info >= (3, 14)


def _interleave_addrinfos(addrinfos: list, first_address_family_count: int = 1) -> list:
    """Interleave addrinfo tuples by family (asyncio's helper, RFC 8305 section 4)."""
    # Group addresses by family
    by_family: dict = collections.OrderedDict()
    for addr in addrinfos:
        by_family.setdefault(addr[0], []).append(addr)
    lists = list(by_family.values())
    reordered = []
    if first_address_family_count > 1:
        reordered.extend(lists[0][: first_address_family_count - 1])
        del lists[0][: first_address_family_count - 1]
    reordered.extend(
        a for a in itertools.chain.from_iterable(itertools.zip_longest(*lists)) if a is not None
    )
    return reordered


def _bind_error(exc: OSError, laddr: Any) -> OSError:
    """The OSError asyncio raises when binding to a local address fails (3.13 vs older)."""
    if _PY313 or exc.strerror is None:
        reason = str(exc).lower()
    else:
        reason = exc.strerror.lower()
    return OSError(exc.errno, f"error while attempting to bind on address {laddr!r}: {reason}")


def _close_socket(sock: Any) -> None:
    sock.close()


class ConnectMixin:
    """Outgoing stream connections, and transports over sockets connected elsewhere.

    Needs from the loop: ``_ensure_resolved`` (DnsMixin), ``sock_connect`` (SockOpsMixin),
    ``create_future``, ``get_debug`` and ``_transports`` (TransportRegistryMixin, via
    ``make_stream_transport``).
    """

    __slots__ = ()

    # ------------------------------------------------------------------ TCP

    async def create_connection(
        self: LoopAPI,
        protocol_factory: Any,
        host: Any = None,
        port: Any = None,
        *,
        ssl: Any = None,
        family: Any = 0,
        proto: Any = 0,
        flags: Any = 0,
        sock: Any = None,
        local_addr: Any = None,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
        happy_eyeballs_delay: Any = None,
        interleave: Any = None,
        all_errors: bool = False,
    ) -> tuple[Any, Any]:
        """Connect to a TCP server; return (transport, protocol) once connection_made has run.

        ``all_errors`` is new in 3.12 (accepted on 3.11 too).
        """
        if server_hostname is not None and not ssl:
            raise ValueError("server_hostname is only meaningful with ssl")

        if server_hostname is None and ssl:
            # Use host as default for server_hostname. It is an error if host is empty or not
            # set (an already-connected socket, or only a port); server_hostname='' bypasses
            # the hostname check.
            if not host:
                raise ValueError("You must set server_hostname when using ssl without a host")
            server_hostname = host

        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")

        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")

        if sock is not None:
            _check_ssl_socket(sock)

        if happy_eyeballs_delay is not None and interleave is None:
            # If using happy eyeballs, default to interleave addresses by family
            interleave = 1

        own_sock = False
        if host is not None or port is not None:
            if sock is not None:
                raise ValueError("host/port and sock can not be specified at the same time")

            infos = await self._ensure_resolved(
                (host, port),
                family=family,
                type=socket.SOCK_STREAM,
                proto=proto,
                flags=flags,
                loop=self,
            )
            if not infos:
                raise OSError("getaddrinfo() returned empty list")

            if local_addr is not None:
                laddr_infos = await self._ensure_resolved(
                    local_addr,
                    family=family,
                    type=socket.SOCK_STREAM,
                    proto=proto,
                    flags=flags,
                    loop=self,
                )
                if not laddr_infos:
                    raise OSError("getaddrinfo() returned empty list")
            else:
                laddr_infos = None

            if interleave:
                infos = _interleave_addrinfos(infos, interleave)

            sock = await self._connect_any(infos, laddr_infos, happy_eyeballs_delay, all_errors)
            own_sock = True
        else:
            if sock is None:
                raise ValueError("host and port was not specified and no sock specified")
            if sock.type != socket.SOCK_STREAM:
                # AF_INET, AF_INET6 and AF_UNIX are all allowed, as long as they are
                # SOCK_STREAM (create_unix_connection exists, but asyncio accepts AF_UNIX here).
                raise ValueError(f"A Stream Socket was expected, got {sock!r}")

        try:
            transport, protocol = await self._create_connection_transport(
                sock,
                protocol_factory,
                ssl,
                server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        except BaseException:
            if own_sock:
                # Ours: close it now (a transport made over it has been closed and would
                # close it on its next pass anyway; socket.close() is idempotent).
                sock.close()
            raise
        if self.get_debug():
            # Get the socket from the transport because SSL transport closes
            # the old socket and creates a new SSL socket
            sock = transport.get_extra_info("socket")
            _logger().debug(
                "%r connected to %s:%r: (%r, %r)", sock, host, port, transport, protocol
            )
        return transport, protocol

    async def _connect_any(
        self: LoopAPI, infos: list, laddr_infos: list | None, delay: Any, all_errors: bool
    ) -> Any:
        """Connect to one of infos (in order, or staggered by delay); raise asyncio's error."""
        # One list per attempt, filled by _connect_sock with the OSErrors it saw.
        # Typed Any: set to None below to break cycles through the tracebacks.
        exceptions: Any = []
        others: Any = []  # non-OSError failures of Happy Eyeballs attempts
        flat: Any
        sock = None
        try:
            if delay is None:
                # not using happy eyeballs
                for addrinfo in infos:
                    try:
                        sock = await self._connect_sock(exceptions, addrinfo, laddr_infos)
                        break
                    except OSError:
                        continue
            else:
                # Each attempt reaches ``exceptions`` through this function's cell, which the
                # finally below clears: the attempts' frames stay alive in the raised error's
                # traceback, and must not keep the error lists (and so a cycle) alive.
                errors: Any  # set to None below

                def attempt(addrinfo: Any) -> Callable[[], Awaitable[Any]]:
                    return lambda: self._connect_sock(exceptions, addrinfo, laddr_infos)

                sock, _, errors = await staggered_race(
                    [attempt(addrinfo) for addrinfo in infos],
                    delay,
                    loop=self,
                    discard=_close_socket,
                )
                others = [
                    exc
                    for exc in errors
                    if exc is not None
                    and not isinstance(exc, (OSError, _exceptions.CancelledError))
                ]
                errors = None
            if sock is not None:
                return sock
            flat = [exc for sub in exceptions for exc in sub]
            if not flat and others:
                raise others[0]
            if all_errors:
                raise ExceptionGroup("create_connection failed", flat)
            if len(flat) == 1:
                raise flat[0]
            # If they all have the same str(), raise one.
            model = str(flat[0])
            if all(str(exc) == model for exc in flat):
                raise flat[0]
            # Raise a combined exception so the user can see all the various error messages.
            raise OSError("Multiple exceptions: {}".format(", ".join(str(exc) for exc in flat)))
        finally:
            exceptions = flat = others = None  # break cycles

    async def _connect_sock(
        self: LoopAPI, exceptions: Any, addr_info: tuple, local_addr_infos: Any = None
    ) -> Any:
        """Create, bind and connect one socket (asyncio's helper, same name and contract).

        Appends its own list to ``exceptions`` and records there each OSError it sees; the
        socket is closed on every failure, cancellation included.
        """
        my_exceptions: Any = []
        exceptions.append(my_exceptions)
        family, type_, proto, _, address = addr_info
        sock = None
        try:
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setblocking(False)
            if local_addr_infos is not None:
                for lfamily, _, _, _, laddr in local_addr_infos:
                    # skip local addresses of different family
                    if lfamily != family:
                        continue
                    try:
                        sock.bind(laddr)
                        break
                    except OSError as exc:
                        my_exceptions.append(_bind_error(exc, laddr))
                else:  # all bind attempts failed
                    if my_exceptions:
                        raise my_exceptions.pop()
                    else:
                        raise OSError(f"no matching local address with {family=} found")
            await self.sock_connect(sock, address)
            return sock
        except OSError as exc:
            my_exceptions.append(exc)
            if sock is not None:
                sock.close()
            raise
        except BaseException:
            if sock is not None:
                sock.close()
            raise
        finally:
            exceptions = my_exceptions = None

    async def _create_connection_transport(
        self: LoopAPI,
        sock: Any,
        protocol_factory: Any,
        ssl: Any,
        server_hostname: Any,
        server_side: bool = False,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> tuple[Any, Any]:
        """Make a stream transport over the connected sock and wait for connection_made.

        If no transport can be made, sock is closed on 3.14+ (asyncio's gh-153133; before,
        the callers close only a socket of their own). On failure after the transport exists
        (the waiter raised, e.g. cancellation) the transport is closed, which closes sock,
        as asyncio does.
        """
        try:
            sock.setblocking(False)
            protocol = protocol_factory()
            waiter: Any = self.create_future()  # Any: set to None below
            if ssl:
                sslcontext = None if isinstance(ssl, bool) else ssl
                transport: Any = make_tls_transport(
                    self,
                    sock,
                    protocol,
                    sslcontext,
                    waiter,
                    server_side=server_side,
                    server_hostname=server_hostname,
                    ssl_handshake_timeout=ssl_handshake_timeout,
                    ssl_shutdown_timeout=ssl_shutdown_timeout,
                )
            else:
                transport = make_stream_transport(self, sock, protocol, waiter)
        except BaseException:
            if _CLOSE_SOCK_ON_TRANSPORT_ERROR:
                sock.close()
            raise
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        finally:
            waiter = None
        return transport, protocol

    # ------------------------------------------------------------------ Unix

    async def create_unix_connection(
        self: LoopAPI,
        protocol_factory: Any,
        path: Any = None,
        *,
        ssl: Any = None,
        sock: Any = None,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> tuple[Any, Any]:
        """Connect to a Unix stream socket at path (or over sock); asyncio's unix_events."""
        assert server_hostname is None or isinstance(server_hostname, str)
        if ssl:
            if server_hostname is None:
                raise ValueError("you have to pass server_hostname when using ssl")
        else:
            if server_hostname is not None:
                raise ValueError("server_hostname is only meaningful with ssl")
            if ssl_handshake_timeout is not None:
                raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
            if ssl_shutdown_timeout is not None:
                raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")

        own_sock = False
        if path is not None:
            if sock is not None:
                raise ValueError("path and sock can not be specified at the same time")

            path = os.fspath(path)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0)
            try:
                sock.setblocking(False)
                await self.sock_connect(sock, path)
            except BaseException:
                sock.close()
                raise
            own_sock = True
        else:
            if sock is None:
                raise ValueError("no path and sock were specified")
            if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
                raise ValueError(f"A UNIX Domain Stream Socket was expected, got {sock!r}")
            sock.setblocking(False)

        try:
            return await self._create_connection_transport(
                sock,
                protocol_factory,
                ssl,
                server_hostname,
                ssl_handshake_timeout=ssl_handshake_timeout,
                ssl_shutdown_timeout=ssl_shutdown_timeout,
            )
        except BaseException:
            if own_sock:
                sock.close()
            raise

    # ------------------------------------------------------------------ accepted sockets

    async def connect_accepted_socket(
        self: LoopAPI,
        protocol_factory: Any,
        sock: Any,
        *,
        ssl: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> tuple[Any, Any]:
        """Wrap a socket accepted elsewhere in a transport (server side)."""
        if sock.type != socket.SOCK_STREAM:
            raise ValueError(f"A Stream Socket was expected, got {sock!r}")

        if ssl_handshake_timeout is not None and not ssl:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")

        if ssl_shutdown_timeout is not None and not ssl:
            raise ValueError("ssl_shutdown_timeout is only meaningful with ssl")

        if sock is not None:
            _check_ssl_socket(sock)

        transport, protocol = await self._create_connection_transport(
            sock,
            protocol_factory,
            ssl,
            "",
            server_side=True,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if self.get_debug():
            # Get the socket from the transport because SSL transport closes
            # the old socket and creates a new SSL socket
            sock = transport.get_extra_info("socket")
            _logger().debug("%r handled: (%r, %r)", sock, transport, protocol)
        return transport, protocol
