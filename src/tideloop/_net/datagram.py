"""create_datagram_endpoint: UDP and Unix datagram endpoints over a DatagramTransport.

Every check, error message and step is asyncio's ``BaseEventLoop.create_datagram_endpoint``
of the running Python (3.11 to 3.13 differ only in the ``sock=`` type check, noted below).
``reuse_address`` is not a parameter: asyncio refused it from 3.8 and removed it in 3.11 (the
abstract signature in ``asyncio.events`` still lists it), so passing it is a TypeError, as on
asyncio's loop.

How the socket is chosen (asyncio's algorithm): each of local_addr / remote_addr is resolved
with ``_ensure_resolved`` (an IP literal needs no lookup); the results are grouped by
``(family, proto)``, keeping only the groups that have an address for each one given; then one
socket per group is tried in order until one binds (and, without allow_broadcast, connects).
If every group fails, the first OSError is raised. A socket that fails is closed at once.

One deviation: asyncio leaks the socket it created if ``protocol_factory()`` raises; here it
is closed (a socket passed as ``sock=`` stays the caller's, as in asyncio).
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from typing import TYPE_CHECKING, Any

from .._compat import logger as _logger
from .._transports.datagram import make_datagram_transport

if TYPE_CHECKING:
    from .._api import LoopAPI

# gh-114887 (3.13, backported to 3.12.2 and 3.11.8): sock= rejects only SOCK_STREAM sockets,
# "A datagram socket was expected"; before, anything but SOCK_DGRAM, "A UDP Socket ...".
_STREAM_ONLY_REJECTED = sys.version_info >= (3, 12, 2) or (3, 11, 8) <= sys.version_info < (3, 12)
_HAS_AF_UNIX = hasattr(socket, "AF_UNIX")


def _set_reuseport(sock: socket.socket) -> None:
    """Set SO_REUSEPORT, with asyncio's ValueError where the platform lacks it."""
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port not supported by socket module")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        raise ValueError(
            "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented."
        )


def _remove_stale_unix_socket(path: str) -> None:
    """Remove a socket file left at path by an earlier endpoint (asyncio does this too)."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        # Directory may have permissions only to create socket.
        _logger().error("Unable to check or remove stale UNIX socket %r: %r", path, err)


class DatagramMixin:
    """``create_datagram_endpoint`` and asyncio's private ``_make_datagram_transport``.

    Needs from the loop: create_future, sock_connect (SockOpsMixin), _ensure_resolved
    (DnsMixin), _ensure_fd_no_transport and _transports (TransportRegistryMixin) and _debug
    (the core).
    """

    __slots__ = ()

    def _make_datagram_transport(
        self: LoopAPI,
        sock: Any,
        protocol: Any,
        address: Any = None,
        waiter: Any = None,
        extra: dict | None = None,
    ) -> Any:
        """Wrap sock in a started DatagramTransport (asyncio's selector loop method)."""
        self._ensure_fd_no_transport(sock.fileno())
        return make_datagram_transport(self, sock, protocol, address, waiter, extra)

    async def create_datagram_endpoint(
        self: LoopAPI,
        protocol_factory: Any,
        local_addr: Any = None,
        remote_addr: Any = None,
        *,
        family: int = 0,
        proto: int = 0,
        flags: int = 0,
        reuse_port: bool | None = None,
        allow_broadcast: bool | None = None,
        sock: socket.socket | None = None,
    ) -> tuple[Any, Any]:
        """Create datagram connection."""
        own_sock = sock is None
        if sock is not None:
            if _STREAM_ONLY_REJECTED:
                if sock.type == socket.SOCK_STREAM:
                    raise ValueError(f"A datagram socket was expected, got {sock!r}")
            elif sock.type != socket.SOCK_DGRAM:
                raise ValueError(f"A UDP Socket was expected, got {sock!r}")
            if (
                local_addr
                or remote_addr
                or family
                or proto
                or flags
                or reuse_port
                or allow_broadcast
            ):
                # show the problematic kwargs in exception msg
                opts = dict(
                    local_addr=local_addr,
                    remote_addr=remote_addr,
                    family=family,
                    proto=proto,
                    flags=flags,
                    reuse_port=reuse_port,
                    allow_broadcast=allow_broadcast,
                )
                problems = ", ".join(f"{k}={v}" for k, v in opts.items() if v)
                raise ValueError(
                    f"socket modifier keyword arguments can not be used "
                    f"when sock is specified. ({problems})"
                )
            sock.setblocking(False)
            r_addr = None
        else:
            if not (local_addr or remote_addr):
                if family == 0:
                    raise ValueError("unexpected address family")
                addr_pairs_info: Any = (((family, proto), (None, None)),)
            elif _HAS_AF_UNIX and family == socket.AF_UNIX:
                for addr in (local_addr, remote_addr):
                    if addr is not None and not isinstance(addr, str):
                        raise TypeError("string is expected")
                if local_addr and local_addr[0] not in (0, "\x00"):
                    _remove_stale_unix_socket(local_addr)
                addr_pairs_info = (((family, proto), (local_addr, remote_addr)),)
            else:
                addr_pairs_info = await self._resolve_pairs(
                    local_addr, remote_addr, family, proto, flags
                )
            sock, r_addr = await self._open_datagram_socket(
                addr_pairs_info, local_addr, remote_addr, reuse_port, allow_broadcast
            )

        try:
            protocol = protocol_factory()
        except BaseException:
            if own_sock:
                sock.close()
            raise
        waiter = self.create_future()
        transport = self._make_datagram_transport(sock, protocol, r_addr, waiter)
        if self._debug:
            if local_addr:
                _logger().info(
                    "Datagram endpoint local_addr=%r remote_addr=%r created: (%r, %r)",
                    local_addr,
                    remote_addr,
                    transport,
                    protocol,
                )
            else:
                _logger().debug(
                    "Datagram endpoint remote_addr=%r created: (%r, %r)",
                    remote_addr,
                    transport,
                    protocol,
                )

        try:
            await waiter
        except BaseException:
            transport.close()
            raise

        return transport, protocol

    async def _resolve_pairs(
        self: LoopAPI, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
    ) -> list:
        """Resolve both addresses; [((family, proto), (local, remote))] usable for each given."""
        # join address by (family, protocol)
        addr_infos: dict = {}  # Using order preserving dict
        for idx, addr in ((0, local_addr), (1, remote_addr)):
            if addr is not None:
                if not (isinstance(addr, tuple) and len(addr) == 2):
                    raise TypeError("2-tuple is expected")

                infos = await self._ensure_resolved(
                    addr,
                    family=family,
                    type=socket.SOCK_DGRAM,
                    proto=proto,
                    flags=flags,
                    loop=self,
                )
                if not infos:
                    raise OSError("getaddrinfo() returned empty list")

                for fam, _, pro, _, address in infos:
                    key = (fam, pro)
                    if key not in addr_infos:
                        addr_infos[key] = [None, None]
                    addr_infos[key][idx] = address

        # each addr has to have info for each (family, proto) pair
        addr_pairs_info = [
            (key, addr_pair)
            for key, addr_pair in addr_infos.items()
            if not ((local_addr and addr_pair[0] is None) or (remote_addr and addr_pair[1] is None))
        ]
        if not addr_pairs_info:
            raise ValueError("can not get address information")
        return addr_pairs_info

    async def _open_datagram_socket(
        self: LoopAPI,
        addr_pairs_info: Any,
        local_addr: Any,
        remote_addr: Any,
        reuse_port: Any,
        allow_broadcast: Any,
    ) -> tuple[socket.socket, Any]:
        """Try each (family, proto) in turn; return (sock, remote address) for the first
        that binds and connects. Failed sockets are closed; all failing raises the first
        OSError."""
        exceptions: Any = []  # Any: set to None below
        try:
            for (family, proto), (local_address, remote_address) in addr_pairs_info:
                sock = None
                r_addr = None
                try:
                    sock = socket.socket(family=family, type=socket.SOCK_DGRAM, proto=proto)
                    if reuse_port:
                        _set_reuseport(sock)
                    if allow_broadcast:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                    sock.setblocking(False)

                    if local_addr:
                        sock.bind(local_address)
                    if remote_addr:
                        if not allow_broadcast:
                            await self.sock_connect(sock, remote_address)
                        r_addr = remote_address
                except OSError as exc:
                    if sock is not None:
                        sock.close()
                    exceptions.append(exc)
                except BaseException:
                    if sock is not None:
                        sock.close()
                    raise
                else:
                    return sock, r_addr
            raise exceptions[0]
        finally:
            # Break the cycles through the tracebacks (asyncio does the same in create_connection).
            exceptions = None
