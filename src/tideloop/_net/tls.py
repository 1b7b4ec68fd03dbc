"""loop.start_tls and the TLS transport factory (asyncio's base_events/selector_events).

``start_tls`` upgrades an existing transport in place: the transport's protocol becomes an
``SSLProtocol`` (paused first, so nothing reaches it before its connection_made), the
handshake runs, and the call returns the new TLS transport, which the caller's protocol must
use from then on. The user protocol's connection_made is *not* called again. If the handshake
fails or the call is cancelled, the underlying transport is closed.

From 3.14 on (asyncio's gh-142352), a server-side upgrade of a stream protocol (asyncio's or
tideloop's ``StreamReaderProtocol``) first moves the bytes already buffered in its
``StreamReader`` (typically the peer's ClientHello, read before start_tls) into the TLS
layer; before 3.14 they stay in the reader and the handshake waits for them in vain.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from .._compat import PY314 as _PY314
from .._transports.tls import SSLProtocol, make_tls_transport

if TYPE_CHECKING:
    from .._api import LoopAPI


def _move_stream_buffer(protocol: Any, incoming: Any) -> None:
    """Move what a stream protocol's StreamReader holds into the TLS layer's incoming BIO."""
    from asyncio import streams as _aio_streams

    from .. import streams as _tide_streams

    if isinstance(
        protocol, (_aio_streams.StreamReaderProtocol, _tide_streams.StreamReaderProtocol)
    ):
        reader = getattr(protocol, "_stream_reader", None)
        if reader is not None:
            buffer = reader._buffer
            if buffer:
                incoming.write(buffer)
                buffer.clear()


class TLSMixin:
    """start_tls and ``_make_ssl_transport``. Needs ``create_future`` and ``call_soon``."""

    __slots__ = ()

    def _make_ssl_transport(
        self,
        rawsock: Any,
        protocol: Any,
        sslcontext: Any,
        waiter: Any = None,
        *,
        server_side: bool = False,
        server_hostname: Any = None,
        extra: dict | None = None,
        server: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> Any:
        """A TLS transport over a connected socket (asyncio's signature); attached to
        ``server`` (a Server) until it ends."""
        transport = make_tls_transport(
            self,
            rawsock,
            protocol,
            sslcontext,
            waiter,
            server_side=server_side,
            server_hostname=server_hostname,
            extra=extra,
            on_lost=None if server is None else server._detach,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
        )
        if server is not None:
            server._attach(transport)
        return transport

    async def start_tls(
        self: LoopAPI,
        transport: Any,
        protocol: Any,
        sslcontext: Any,
        *,
        server_side: bool = False,
        server_hostname: Any = None,
        ssl_handshake_timeout: Any = None,
        ssl_shutdown_timeout: Any = None,
    ) -> Any:
        """Upgrade transport to TLS; return the new transport that protocol must use."""
        if not isinstance(sslcontext, ssl.SSLContext):
            raise TypeError(
                f"sslcontext is expected to be an instance of ssl.SSLContext, got {sslcontext!r}"
            )
        if not getattr(transport, "_start_tls_compatible", False):
            raise TypeError(f"transport {transport!r} is not supported by start_tls()")

        waiter: Any = self.create_future()  # Any: set to None below
        ssl_protocol = SSLProtocol(
            self,
            protocol,
            sslcontext,
            waiter,
            server_side,
            server_hostname,
            ssl_handshake_timeout=ssl_handshake_timeout,
            ssl_shutdown_timeout=ssl_shutdown_timeout,
            call_connection_made=False,
        )

        # Pause early so that "ssl_protocol.data_received()" doesn't have a chance to get
        # called before "ssl_protocol.connection_made()".
        transport.pause_reading()

        if _PY314 and server_side:
            # gh-142352: what the stream reader already holds is the start of the TLS stream.
            _move_stream_buffer(protocol, ssl_protocol._core._incoming)

        transport.set_protocol(ssl_protocol)
        conmade_cb = self.call_soon(ssl_protocol.connection_made, transport)
        resume_cb = self.call_soon(transport.resume_reading)

        try:
            await waiter
        except BaseException:
            transport.close()
            conmade_cb.cancel()
            resume_cb.cancel()
            raise
        finally:
            waiter = None

        return ssl_protocol._app_transport
