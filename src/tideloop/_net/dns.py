"""Name resolution for the loop: getaddrinfo, getnameinfo and ``_ensure_resolved``.

Semantics are asyncio's (base_events.py, identical in 3.11-3.13): the C resolver runs in the
default executor, results and exceptions are exactly ``socket.getaddrinfo``'s, and debug mode
logs each lookup on the ``asyncio`` logger with its duration.

One deliberate difference, invisible to callers: a lookup that cannot touch the network is
answered on the loop thread instead of a worker thread. asyncio pays a thread hop (and, on first
use, an executor start-up) for ``getaddrinfo('127.0.0.1', 80)``; tideloop does not.

Discussion: what "cannot touch the network" means.
    The C library resolves a *node* through NSS (DNS, /etc/hosts, mDNS...) unless it parses as a
    numeric address, and a *service* through NSS unless it parses as a number. So the shortcut
    is taken only when

    - host is None, or an ASCII IPv4/IPv6 literal that ``inet_pton`` accepts for a family the
      call allows (no ``%zone``: that needs ``if_nametoindex``, and Linux's ``inet_pton`` rejects
      it anyway);
    - port is None, an int, or a str/bytes of ASCII digits (never a service name, never ``''``);
    - AI_CANONNAME is not requested (old glibc reverse-resolves numeric hosts for it).

    The shortcut calls the real ``socket.getaddrinfo`` with the caller's arguments, adding only
    AI_NUMERICHOST when host is not None: that flag forbids a lookup outright, and for a string
    that already parses as an address it changes nothing in the result. So results (order,
    tuple shapes, IPv6 flowinfo/scope, exceptions) are identical to the threaded path by
    construction, and the flag is a guarantee that the shortcut can never block.

    ``getnameinfo`` takes the same shortcut when both NI_NUMERICHOST and NI_NUMERICSERV are set:
    CPython's ``socket.getnameinfo`` parses the sockaddr with AI_NUMERICHOST itself, so with
    both flags no lookup is possible.

Rejected: a pure-Python parser that builds the addrinfo tuples itself (what asyncio's
``_ipaddr_info`` does for ``_ensure_resolved``). For the public method it would have to
reproduce the C library's socktype/protocol expansion and ordering; calling the C function
with AI_NUMERICHOST gets that for free and cannot drift.
"""

from __future__ import annotations

import socket
from asyncio.log import logger
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._api import LoopAPI

_HAS_IPv6 = hasattr(socket, "AF_INET6")
_AF_INET = socket.AF_INET
_AF_INET6 = getattr(socket, "AF_INET6", -1)
_AF_UNSPEC = socket.AF_UNSPEC
_AI_NUMERICHOST = getattr(socket, "AI_NUMERICHOST", 0)
_AI_CANONNAME = getattr(socket, "AI_CANONNAME", 0)
_NI_NUMERIC = getattr(socket, "NI_NUMERICHOST", 0) | getattr(socket, "NI_NUMERICSERV", 0)
_HAS_INET_PTON = hasattr(socket, "inet_pton")
_getaddrinfo = socket.getaddrinfo
_getnameinfo = socket.getnameinfo
_inet_pton: Any = getattr(socket, "inet_pton", None)
# Used when the loop has no slow_callback_duration attribute (asyncio's default).
_SLOW_CALLBACK_DURATION = 0.1


def _ipaddr_info(
    host: Any, port: Any, family: int, type: int, proto: int, flowinfo: int = 0, scopeid: int = 0
) -> tuple | None:
    """Return one addrinfo tuple if host is already an IP address, else None.

    A re-implementation of asyncio.base_events._ipaddr_info (private, so not imported), kept
    line-for-line equivalent: ``_ensure_resolved`` must return what asyncio's would.
    """
    if not _HAS_INET_PTON:
        return None
    if proto not in {0, socket.IPPROTO_TCP, socket.IPPROTO_UDP} or host is None:
        return None
    if type == socket.SOCK_STREAM:
        proto = socket.IPPROTO_TCP
    elif type == socket.SOCK_DGRAM:
        proto = socket.IPPROTO_UDP
    else:
        return None

    if port is None or (isinstance(port, (bytes, str)) and not port):
        port = 0
    else:
        # A service name such as "http" needs getaddrinfo.
        try:
            port = int(port)
        except (TypeError, ValueError):
            return None

    if family == _AF_UNSPEC:
        afs: list[int] = [_AF_INET]
        if _HAS_IPv6:
            afs.append(_AF_INET6)
    else:
        afs = [family]

    if isinstance(host, bytes):
        host = host.decode("idna")
    if "%" in host:
        # Linux's inet_pton rejects an IPv6 zone index such as '::1%lo0'.
        return None

    for af in afs:
        try:
            _inet_pton(af, host)
        except OSError:
            continue
        # The host has already been resolved.
        if _HAS_IPv6 and af == _AF_INET6:
            return af, type, proto, "", (host, port, flowinfo, scopeid)
        return af, type, proto, "", (host, port)
    return None


def _is_digits(port: Any) -> bool:
    """True for a non-empty str/bytes of ASCII digits (str.isdigit() also takes '²' and '٣')."""
    if isinstance(port, bytes):
        return port.isdigit()  # bytes.isdigit() is ASCII-only
    return port.isascii() and port.isdigit()


def _numeric_lookup(host: Any, port: Any, family: Any, flags: Any) -> bool:
    """True if getaddrinfo(host, port, family, ..., flags) cannot consult NSS (see the essay)."""
    if not isinstance(flags, int) or flags & _AI_CANONNAME or _inet_pton is None:
        return False
    if port is not None and not isinstance(port, int):
        if not isinstance(port, (str, bytes)) or not _is_digits(port):
            return False
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    elif not isinstance(host, str) or not host.isascii():
        return False
    if "%" in host:
        return False
    if family in (_AF_UNSPEC, _AF_INET):
        try:
            _inet_pton(_AF_INET, host)
            return True
        except (OSError, ValueError):
            pass
    if _HAS_IPv6 and family in (_AF_UNSPEC, _AF_INET6):
        try:
            _inet_pton(_AF_INET6, host)
            return True
        except (OSError, ValueError):
            pass
    return False


class DnsMixin:
    """getaddrinfo / getnameinfo / _ensure_resolved for the event loop.

    Needs from the loop: ``run_in_executor``, ``get_debug``, ``time``, ``_check_closed`` and,
    optionally, ``slow_callback_duration`` (asyncio's attribute; 0.1 s when absent).

    Invariant: every method returns or raises exactly what the same call on asyncio's loop
    would; only the thread it runs on may differ (numeric lookups run inline).
    """

    __slots__ = ()

    def _getaddrinfo_debug(
        self: LoopAPI,
        host: Any,
        port: Any,
        family: Any,
        type: Any,
        proto: Any,
        flags: Any,
        extra_flags: int = 0,
    ) -> list:
        """socket.getaddrinfo with asyncio's debug-mode log lines (same text, same levels).

        extra_flags are added to the call but not to the log, which shows the caller's flags.
        """
        msg_parts = [f"{host}:{port!r}"]
        if family:
            msg_parts.append(f"family={family!r}")
        if type:
            msg_parts.append(f"type={type!r}")
        if proto:
            msg_parts.append(f"proto={proto!r}")
        if flags:
            msg_parts.append(f"flags={flags!r}")
        msg = ", ".join(msg_parts)
        logger.debug("Get address info %s", msg)

        t0 = self.time()
        addrinfo = _getaddrinfo(host, port, family, type, proto, flags | extra_flags)
        dt = self.time() - t0

        msg = f"Getting address info {msg} took {dt * 1e3:.3f}ms: {addrinfo!r}"
        if dt >= getattr(self, "slow_callback_duration", _SLOW_CALLBACK_DURATION):
            logger.info(msg)
        else:
            logger.debug(msg)
        return addrinfo

    async def getaddrinfo(
        self: LoopAPI,
        host: Any,
        port: Any,
        *,
        family: Any = 0,
        type: Any = 0,
        proto: Any = 0,
        flags: Any = 0,
    ) -> list:
        """Resolve host/port like socket.getaddrinfo; numeric lookups never leave this thread."""
        debug = self.get_debug()
        if _numeric_lookup(host, port, family, flags):
            # run_in_executor refuses to run on a closed loop; keep that behaviour.
            self._check_closed()
            extra = _AI_NUMERICHOST if host is not None else 0
            if debug:
                return self._getaddrinfo_debug(host, port, family, type, proto, flags, extra)
            return _getaddrinfo(host, port, family, type, proto, flags | extra)
        func = self._getaddrinfo_debug if debug else _getaddrinfo
        return await self.run_in_executor(None, func, host, port, family, type, proto, flags)

    async def getnameinfo(self: LoopAPI, sockaddr: Any, flags: Any = 0) -> tuple:
        """Reverse-resolve like socket.getnameinfo; fully numeric requests run inline."""
        if _NI_NUMERIC and isinstance(flags, int) and flags & _NI_NUMERIC == _NI_NUMERIC:
            self._check_closed()
            return _getnameinfo(sockaddr, flags)
        return await self.run_in_executor(None, _getnameinfo, sockaddr, flags)

    async def _ensure_resolved(
        self,
        address: Any,
        *,
        family: Any = 0,
        type: Any = socket.SOCK_STREAM,
        proto: Any = 0,
        flags: Any = 0,
        loop: Any = None,
    ) -> list:
        """Return getaddrinfo's list for address; an IP literal gives [one tuple] without lookup.

        Same contract as asyncio's base_events._ensure_resolved. ``loop`` is accepted for
        signature compatibility (asyncio passes ``loop=self``) and defaults to self.
        """
        host, port = address[:2]
        info = _ipaddr_info(host, port, family, type, proto, *address[2:])
        if info is not None:
            # "host" is already a resolved IP.
            return [info]
        if loop is None:
            loop = self
        return await loop.getaddrinfo(
            host, port, family=family, type=type, proto=proto, flags=flags
        )
