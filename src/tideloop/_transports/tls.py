"""TLS over any stream transport, through ``ssl.MemoryBIO`` (stdlib ``ssl`` only): the facades.

The design is asyncio's ``sslproto.py`` (3.11+), itself uvloop's ``sslproto.pyx``: a
BufferedProtocol sits on the raw stream transport, feeds what it reads into an incoming
``MemoryBIO``, drives an ``SSLObject`` and writes what lands in the outgoing ``MemoryBIO`` to
the raw transport. The user's protocol sees a transport of its own. Behaviour (callback order,
exception types, messages, flow-control defaults) is asyncio's; the code is adapted from
CPython's ``Lib/asyncio/sslproto.py`` (PSF license, which contains code from uvloop, MIT or
Apache-2.0).

Three objects, as the rest of ``_transports/`` (see ``base.py`` for why):

- ``TLSCore`` (``tls_core.py``): all the state and logic (a Cython extension type when
  compiled); its docstring gives the TLS state machine, the app protocol's grammar, flow
  control and the invariants;
- ``SSLProtocol`` (here): an ``asyncio.BufferedProtocol`` facade that the raw transport talks
  to; ``get_buffer`` and ``buffer_updated`` are slots holding the core's bound methods, so the
  read path calls the core directly;
- ``SSLTransport`` (here): the ``asyncio.Transport`` facade the user's protocol gets; ``write``
  is a slot holding the core's bound ``write``.

This module checks the arguments and fills in asyncio's defaults (timeouts, the default client
context for ``ssl=True``, flow-control limits) and hands the core only checked values; the
core never sees a None limit or timeout. ``make_tls_transport`` builds the whole stack over a
connected socket. ``TLSCore`` and ``_STATE_NAMES`` are re-exported for tests and scripts.

The app's side of closing: ``close()`` flushes the app's pending writes through the TLS layer,
exchanges close_notify, then the raw transport closes and connection_lost(None) follows; a
second ``close()`` drops the transport's links (later calls raise AttributeError, as
asyncio's). ``abort()`` force-closes the raw transport at once; ``write_eof()`` raises
NotImplementedError (TLS 1.3 has no half-close that asyncio exposes). From 3.14 on (as asyncio
there) ``is_closing()`` is also true once the raw transport is closing.

Invariant: ``SSLProtocol`` makes its core and the core's ``SSLTransport`` together, so a core
always has its app transport until connection_lost.
Invariant: ``SSLTransport._closed`` is True once close()/abort() was called or the connection
was lost (then ``__del__`` gives no ResourceWarning).
"""

from __future__ import annotations

import ssl
import sys
import warnings
from asyncio import constants as _constants
from asyncio import protocols as _protocols
from asyncio import transports as _transports
from typing import Any

from .tls_core import _STATE_NAMES, TLSCore

# Both also in tls_core.py, where the compiled build makes them C globals (not importable).
_MAX_SIZE = 256 * 1024  # asyncio's SSLProtocol.max_size, the size of the core's read buffer
# 3.14: the app transport is closing once the raw one is, as asyncio there.
_PY314 = sys.version_info >= (3, 14)


def _create_transport_context(server_side: bool, server_hostname: Any) -> Any:
    """The default client context for ``ssl=True`` (asyncio's helper)."""
    if server_side:
        raise ValueError("Server side SSL needs a valid SSLContext")
    # Client side may pass ssl=True to use a default context; the default is secure for client
    # connections. server_hostname='' disables the hostname check.
    sslcontext = ssl.create_default_context()
    if not server_hostname:
        sslcontext.check_hostname = False
    return sslcontext


def add_flowcontrol_defaults(high: Any, low: Any, kb: int) -> tuple[int, int]:
    """(high, low) with asyncio's defaults: high = kb KiB (or 4 * low), low = high // 4."""
    if high is None:
        if low is None:
            hi = kb * 1024
        else:
            lo = low
            hi = 4 * lo
    else:
        hi = high
    if low is None:
        lo = hi // 4
    else:
        lo = low
    if not hi >= lo >= 0:
        raise ValueError(f"high ({hi!r}) must be >= low ({lo!r}) must be >= 0")
    return hi, lo


def _write_limits(high: Any, low: Any) -> tuple[int, int]:
    """(high, low) for the app's writes, checked, with asyncio's defaults (512 KiB)."""
    return add_flowcontrol_defaults(high, low, _constants.FLOW_CONTROL_HIGH_WATER_SSL_WRITE)


def _read_limits(high: Any, low: Any) -> tuple[int, int]:
    """(high, low) for undecrypted input, checked, with asyncio's defaults (256 KiB)."""
    return add_flowcontrol_defaults(high, low, _constants.FLOW_CONTROL_HIGH_WATER_SSL_READ)


class SSLProtocol(_protocols.BufferedProtocol):
    """What the raw stream transport sees: asyncio's ``sslproto.SSLProtocol`` interface.

    ``get_buffer`` and ``buffer_updated`` are slots holding the core's bound methods.
    """

    __slots__ = ("_core", "get_buffer", "buffer_updated", "__weakref__")

    max_size = _MAX_SIZE

    def __init__(
        self,
        loop: Any,
        app_protocol: Any,
        sslcontext: Any,
        waiter: Any,
        server_side: bool = False,
        server_hostname: Any = None,
        call_connection_made: bool = True,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> None:
        if ssl_handshake_timeout is None:
            ssl_handshake_timeout = _constants.SSL_HANDSHAKE_TIMEOUT
        elif ssl_handshake_timeout <= 0:
            raise ValueError(
                f"ssl_handshake_timeout should be a positive number, got {ssl_handshake_timeout}"
            )
        if ssl_shutdown_timeout is None:
            ssl_shutdown_timeout = _constants.SSL_SHUTDOWN_TIMEOUT
        elif ssl_shutdown_timeout <= 0:
            raise ValueError(
                f"ssl_shutdown_timeout should be a positive number, got {ssl_shutdown_timeout}"
            )
        if not sslcontext:
            sslcontext = _create_transport_context(server_side, server_hostname)

        core = TLSCore(
            loop,
            app_protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            call_connection_made,
            ssl_handshake_timeout,
            ssl_shutdown_timeout,
        )
        core._set_read_buffer_limits(*_read_limits(None, None))
        core._set_write_buffer_limits(*_write_limits(None, None))
        core._ssl_protocol = self
        self._core = core
        self.get_buffer = core.get_buffer
        self.buffer_updated = core.buffer_updated
        core._app_transport = SSLTransport(core)

    def __repr__(self) -> str:
        core = self._core
        return f"<SSLProtocol state={_STATE_NAMES[core._state]} transport={core._transport!r}>"

    @property
    def _app_transport(self) -> Any:
        return self._core._app_transport

    @property
    def _app_protocol(self) -> Any:
        return self._core._app_protocol

    def connection_made(self, transport: Any) -> None:
        self._core.connection_made(transport)

    def connection_lost(self, exc: Any) -> None:
        self._core.connection_lost(exc)

    def eof_received(self) -> Any:
        return self._core.eof_received()

    def pause_writing(self) -> None:
        self._core.pause_writing()

    def resume_writing(self) -> None:
        self._core.resume_writing()


def _detached_write(data: Any) -> None:
    raise AttributeError("'NoneType' object has no attribute '_write_appdata'")


class SSLTransport(_transports.Transport):
    """The transport the user's protocol gets (asyncio's ``_SSLProtocolTransport``).

    ``write`` is a slot holding the core's bound ``write``. ``_closed`` is True once
    close()/abort() was called or the connection was lost.
    """

    __slots__ = ("_core", "_ssl_protocol", "_closed", "write", "__weakref__")

    _start_tls_compatible = True
    _sendfile_compatible = _constants._SendfileMode.FALLBACK

    def __init__(self, core: TLSCore) -> None:
        self._core = core
        self._ssl_protocol = core._ssl_protocol
        self._closed = False
        self.write = core.write

    def __repr__(self) -> str:
        core = self._core
        if core is None:
            return "<SSLTransport closed>"
        state = "closed" if self._closed else _STATE_NAMES[core._state].lower()
        return f"<SSLTransport {state} transport={core._transport!r}>"

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            self._closed = True
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Get optional transport information (TLS keys, then the raw transport's)."""
        core = self._core
        if name in core._extra:
            return core._extra[name]
        elif core._transport is not None:
            return core._transport.get_extra_info(name, default)
        else:
            return default

    def set_protocol(self, protocol: Any) -> None:
        self._core._set_app_protocol(protocol)

    def get_protocol(self) -> Any:
        return self._core._app_protocol

    def is_closing(self) -> bool:
        if self._closed:
            return True
        if _PY314:
            # 3.14: also once the raw transport is closing (e.g. the peer shut down).
            transport = self._core._transport
            return transport is not None and transport.is_closing()
        return False

    def close(self) -> None:
        """Flush buffered data, exchange close_notify, then connection_lost(None)."""
        if not self._closed:
            self._closed = True
            self._core._start_shutdown()
        else:
            # As asyncio: a second close() drops the link to the protocol, which breaks the
            # cycle app protocol -> transport -> TLS layer -> app protocol (CPython's
            # test_create_connection_memory_leak relies on it). Later calls raise
            # AttributeError, as asyncio's do.
            self._ssl_protocol = None
            self._core = None
            self.write = _detached_write

    def is_reading(self) -> bool:
        return not self._core._app_reading_paused

    def pause_reading(self) -> None:
        """Stop calling the protocol's data_received() until resume_reading()."""
        self._core._pause_reading()

    def resume_reading(self) -> None:
        self._core._resume_reading()

    def set_write_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        core = self._core
        core._set_write_buffer_limits(*_write_limits(high, low))
        core._control_app_writing()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._core._write_limits

    def get_write_buffer_size(self) -> int:
        return self._core._get_write_buffer_size()

    def set_read_buffer_limits(self, high: Any = None, low: Any = None) -> None:
        """Limits on undecrypted input; above high the raw transport stops reading."""
        core = self._core
        core._set_read_buffer_limits(*_read_limits(high, low))
        core._control_ssl_reading()

    def get_read_buffer_limits(self) -> tuple[int, int]:
        return self._core._read_limits

    def get_read_buffer_size(self) -> int:
        return self._core._get_read_buffer_size()

    @property
    def _protocol_paused(self) -> bool:
        # Required for sendfile fallback pause_writing/resume_writing logic
        return self._core._protocol_paused

    def writelines(self, list_of_data: Any) -> None:
        self._core._write_appdata(list_of_data)

    def write_eof(self) -> None:
        """Not supported over TLS (as asyncio)."""
        raise NotImplementedError

    def can_write_eof(self) -> bool:
        return False

    def abort(self) -> None:
        """Close now: buffered data is lost; connection_lost(None) follows."""
        self._closed = True
        self._core._abort(None)

    def _force_close(self, exc: Any) -> None:
        self._closed = True
        self._core._abort(exc)

    def _test__append_write_backlog(self, data: Any) -> None:
        # for test only (CPython's test_ssl calls it)
        core = self._core
        core._write_backlog.append(data)
        core._write_buffer_size += len(data)


def make_tls_transport(
    loop: Any,
    sock: Any,
    protocol: Any,
    sslcontext: Any,
    waiter: Any,
    *,
    server_side: bool = False,
    server_hostname: Any = None,
    extra: dict | None = None,
    on_lost: Any = None,
    ssl_handshake_timeout: Any = None,
    ssl_shutdown_timeout: Any = None,
) -> SSLTransport:
    """A TLS transport over a connected socket (asyncio's ``_make_ssl_transport``).

    The raw stream transport is made and started at once; the handshake starts when it calls
    connection_made, ``protocol.connection_made`` follows the handshake, then ``waiter`` gets
    None (or the handshake's exception). ``on_lost``: as make_stream_transport's, for the
    socket's transport.
    """
    from .stream import make_stream_transport

    ssl_protocol = SSLProtocol(
        loop,
        protocol,
        sslcontext,
        waiter,
        server_side,
        server_hostname,
        ssl_handshake_timeout=ssl_handshake_timeout,
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    make_stream_transport(loop, sock, ssl_protocol, None, extra, on_lost)
    return ssl_protocol._app_transport
