"""The TLS core: the state machine of a TLS connection over ``ssl.MemoryBIO`` (stdlib only).

``TLSCore`` (a Cython extension type when compiled, see ``tls_core.pxd``) does the handshake,
the shutdown, reading and writing through the ``SSLObject`` and its two BIOs, and flow
control across both layers. Its facades are in ``tls.py`` (the design is described there):
they check the arguments, make the core, and forward to it; the hot paths (``get_buffer``,
``buffer_updated``, the app's ``write``) are the core's bound methods, held in their slots.

TLS state machine (``_state``; every change goes through ``_set_state``)::

    UNWRAPPED -> DO_HANDSHAKE -> WRAPPED -> FLUSHING -> SHUTDOWN
    any -> UNWRAPPED   (handshake failure, abort, connection lost)

The user protocol's grammar (``_app_state``)::

    INIT -connection_made-> CON_MADE [-data_received*->] [-eof_received-> EOF] -> CON_LOST

Shutdown (``_start_shutdown``, from the app transport's close()): the app's pending writes
go through the TLS layer (FLUSHING), then close_notify (SHUTDOWN); the peer's close_notify
closes the raw transport, or the ``ssl_shutdown_timeout`` timer force-closes it.

Flow control runs across both layers:

- app -> TLS: the user's protocol is paused when ``outgoing.pending + backlog`` reaches the
  write high-water mark (512 KiB by default, ``FLOW_CONTROL_HIGH_WATER_SSL_WRITE``);
- TLS -> raw: the raw transport pauses this protocol (``pause_writing``); the encrypted bytes
  then stay in the outgoing BIO, which counts against the app's limit above;
- raw -> TLS: the raw transport's reading is paused while the incoming BIO holds at least the
  read high-water mark (256 KiB) of undecrypted bytes, e.g. while the app paused reading.

Invariant: ``_write_buffer_size`` is the total length of the chunks in ``_write_backlog``.
Invariant: ``_transport`` is the raw transport from connection_made until connection_lost,
    else None. ``_app_transport`` is set from construction (by ``SSLProtocol``) until
    connection_lost. After connection_lost, ``_app_transport``, ``_app_protocol`` and
    ``_ssl_protocol`` are None (no reference cycle survives a connection, so a context or
    socket is freed by reference counting alone, as CPython's tests check).
Invariant: the user's connection_lost is called at most once, and only after its
    connection_made (``_app_state``).

Departures from asyncio's code, none observable: decrypted bytes go into the raw-read buffer
(free once buffer_updated() has copied it into the BIO) and are copied out once, instead of a
fresh 256 KiB ``bytes`` per TLS record; reading stops when neither the BIO nor the SSL object
holds anything, instead of always making the extra read that raises SSLWantReadError; the
bound methods of the SSL object, the BIOs and the raw transport are looked up once.

Version differences kept: 3.11's abort calls the raw transport's ``abort()`` where 3.12 calls
``_force_close(None)``; both end in ``connection_lost(None)`` on the next pass. From 3.14 on
(as asyncio there) the ``ssl_shutdown_timeout`` timer stays on after the TLS shutdown
completed, until connection_lost, and starts then if the peer began the shutdown (EOF or
close_notify): the raw transport's close() waits for its buffer to drain, forever if the peer
does not read. Before 3.14 the timer stops when the TLS shutdown completes, as asyncio's does.
"""

from __future__ import annotations

import collections
import ssl
import sys
from asyncio import constants as _constants
from asyncio import exceptions as _exceptions
from asyncio import log as _log
from asyncio import protocols as _protocols
from typing import Any

from .base import _water_mark

_SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)
_SSLError = ssl.SSLError
_CertificateError = ssl.CertificateError
_MemoryBIO = ssl.MemoryBIO
_BufferedProtocol = _protocols.BufferedProtocol
_LOG_THRESHOLD_FOR_CONNLOST_WRITES = _constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES
_MAX_SIZE = 256 * 1024  # buffer size passed to read(), as asyncio's SSLProtocol.max_size
# True in the compiled build, which copies decrypted bytes out through a C shim of tls_core.pxd.
_NATIVE = not __file__.endswith(".py")
# asyncio 3.14 keeps ssl_shutdown_timeout running while the raw transport flushes on
# close(), also after the peer's EOF, and its app transport is closing once the raw one is.
_PY314 = sys.version_info >= (3, 14)


def _no_stale_errors() -> None:
    """Nothing to do: CPython's ssl empties OpenSSL's (per-thread) error queue when it
    raises an SSLError."""


# PyPy's ssl (cffi) leaves the error that an SSLError reports in OpenSSL's per-thread queue.
# SSL_get_error() looks at that queue first, so the next connection of the thread whose
# SSL_read meets the peer's close_notify got SSL_ERROR_SSL and raised the stale error (say
# "application data after close notify" of a connection cut earlier) instead of a clean
# EOF. _fatal_error() empties the queue after every SSLError here.
try:
    from _cffi_ssl._stdssl import lib as _pypy_openssl  # type: ignore[import-not-found]

    _clear_openssl_errors = _pypy_openssl.ERR_clear_error
except (ImportError, AttributeError):
    _clear_openssl_errors = _no_stale_errors

# TLS states (ints, so that the compiled build compares C ints).
TLS_UNWRAPPED = 0
TLS_DO_HANDSHAKE = 1
TLS_WRAPPED = 2
TLS_FLUSHING = 3
TLS_SHUTDOWN = 4
_STATE_NAMES = ("UNWRAPPED", "DO_HANDSHAKE", "WRAPPED", "FLUSHING", "SHUTDOWN")

# The user protocol's states.
APP_INIT = 0
APP_CON_MADE = 1
APP_EOF = 2
APP_CON_LOST = 3


def _logger() -> Any:
    # Looked up at call time, so that a patched asyncio.log.logger is the one used.
    return _log.logger


class TLSCore:
    """The working half of a TLS connection; see the module docstring."""

    __slots__ = (
        "_loop",
        "_ssl_protocol",
        "_app_protocol",
        "_app_protocol_is_buffer",
        "_app_protocol_get_buffer",
        "_app_protocol_buffer_updated",
        "_ssl_buffer",
        "_ssl_buffer_view",
        "_server_side",
        "_server_hostname",
        "_sslcontext",
        "_extra",
        "_write_backlog",
        "_write_buffer_size",
        "_waiter",
        "_app_transport",
        "_transport",
        "_transport_write",
        "_ssl_handshake_timeout",
        "_ssl_shutdown_timeout",
        "_incoming",
        "_outgoing",
        "_state",
        "_conn_lost",
        "_app_state",
        "_sslobj",
        "_sslobj_read",
        "_sslobj_write",
        "_sslobj_pending",
        "_incoming_write",
        "_outgoing_read",
        "_ssl_writing_paused",
        "_app_reading_paused",
        "_ssl_reading_paused",
        "_incoming_high_water",
        "_incoming_low_water",
        "_read_limits",
        "_eof_received",
        "_protocol_paused",
        "_outgoing_high_water",
        "_outgoing_low_water",
        "_write_limits",
        "_handshake_start_time",
        "_handshake_timeout_handle",
        "_shutdown_timeout_handle",
    )

    def __init__(
        self,
        loop: Any,
        app_protocol: Any,
        sslcontext: Any,
        waiter: Any,
        server_side: bool,
        server_hostname: Any,
        call_connection_made: bool,
        ssl_handshake_timeout: Any,
        ssl_shutdown_timeout: Any,
    ) -> None:
        # The arguments come checked, with defaults filled in, from SSLProtocol (tls.py).
        self._ssl_buffer = bytearray(_MAX_SIZE)
        self._ssl_buffer_view = memoryview(self._ssl_buffer)

        self._server_side = server_side
        if server_hostname and not server_side:
            self._server_hostname = server_hostname
        else:
            self._server_hostname = None
        self._sslcontext = sslcontext
        # SSL-specific extra info; more is added when the handshake completes.
        self._extra = {"sslcontext": sslcontext}

        # App data write buffering
        self._write_backlog = collections.deque()
        self._write_buffer_size = 0

        self._waiter = waiter
        self._loop = loop
        self._ssl_protocol = None
        self._set_app_protocol(app_protocol)
        self._app_transport = None
        self._transport = None  # the raw transport
        self._transport_write = None  # its write(), looked up once
        self._ssl_handshake_timeout = ssl_handshake_timeout
        self._ssl_shutdown_timeout = ssl_shutdown_timeout
        self._handshake_start_time = None
        self._handshake_timeout_handle = None
        self._shutdown_timeout_handle = None
        # SSL and state machine
        self._incoming = _MemoryBIO()
        self._outgoing = _MemoryBIO()
        self._state = TLS_UNWRAPPED
        self._conn_lost = 0  # counts writes after the connection was lost, as asyncio
        self._app_state = APP_INIT if call_connection_made else APP_CON_MADE
        self._sslobj = sslcontext.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=self._server_hostname,
        )
        # Bound methods of the C-level object behind the ssl.SSLObject (the wrapper's own
        # methods only forward to it: same results, same exceptions; there on 3.11-3.13), and
        # of the BIOs, looked up once: the per-message path then makes no attribute lookups.
        sslobj_c = getattr(self._sslobj, "_sslobj", self._sslobj)
        self._sslobj_read = sslobj_c.read
        self._sslobj_write = sslobj_c.write
        self._sslobj_pending = sslobj_c.pending
        self._incoming_write = self._incoming.write
        self._outgoing_read = self._outgoing.read

        # Flow control
        self._ssl_writing_paused = False
        self._app_reading_paused = False
        self._ssl_reading_paused = False
        self._incoming_high_water = 0
        self._incoming_low_water = 0
        self._read_limits = (0, 0)  # (low, high) as set; the fields are their doubles
        self._eof_received = False
        self._protocol_paused = False  # asyncio's _app_writing_paused
        self._outgoing_high_water = 0
        self._outgoing_low_water = 0
        self._write_limits = (0, 0)  # both limits are set by SSLProtocol, after this

    def _set_app_protocol(self, app_protocol: Any) -> None:
        self._app_protocol = app_protocol
        # Make fast hasattr check first
        if hasattr(app_protocol, "get_buffer") and isinstance(app_protocol, _BufferedProtocol):
            self._app_protocol_get_buffer = app_protocol.get_buffer
            self._app_protocol_buffer_updated = app_protocol.buffer_updated
            self._app_protocol_is_buffer = True
        else:
            self._app_protocol_get_buffer = self._app_protocol_buffer_updated = None
            self._app_protocol_is_buffer = False

    def _wakeup_waiter(self, exc: Any = None) -> None:
        waiter = self._waiter
        if waiter is None:
            return
        if not waiter.cancelled():
            if exc is not None:
                waiter.set_exception(exc)
            else:
                waiter.set_result(None)
        self._waiter = None

    # ------------------------------------------------------------------ raw transport side

    def connection_made(self, transport: Any) -> None:
        """The raw connection is up: start the handshake."""
        self._transport = transport
        self._transport_write = transport.write
        self._start_handshake()

    def connection_lost(self, exc: Any) -> None:
        """The raw connection is gone (closed, aborted or lost)."""
        self._write_backlog.clear()
        self._outgoing.read()
        self._conn_lost += 1

        # Mark the app transport closed so that its __del__ does not complain.
        app_transport = self._app_transport
        if app_transport is not None:
            app_transport._closed = True

        if self._state != TLS_DO_HANDSHAKE:
            if self._app_state == APP_CON_MADE or self._app_state == APP_EOF:
                self._app_state = APP_CON_LOST
                self._loop.call_soon(self._app_protocol.connection_lost, exc)
        self._set_state(TLS_UNWRAPPED)
        self._transport = self._transport_write = None
        self._app_transport = None
        self._app_protocol = None
        self._app_protocol_get_buffer = self._app_protocol_buffer_updated = None
        self._ssl_protocol = None
        self._wakeup_waiter(exc)

        if self._shutdown_timeout_handle is not None:
            self._shutdown_timeout_handle.cancel()
            self._shutdown_timeout_handle = None
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None

    def get_buffer(self, n: int) -> Any:
        want = n
        if want <= 0 or want > _MAX_SIZE:
            want = _MAX_SIZE
        if len(self._ssl_buffer) < want:
            self._ssl_buffer = bytearray(want)
            self._ssl_buffer_view = memoryview(self._ssl_buffer)
        return self._ssl_buffer_view

    def buffer_updated(self, nbytes: int) -> None:
        self._incoming_write(self._ssl_buffer_view[:nbytes])
        state = self._state
        if state == TLS_WRAPPED:
            self._do_read()
        elif state == TLS_DO_HANDSHAKE:
            self._do_handshake()
        elif state == TLS_FLUSHING:
            self._do_flush()
        elif state == TLS_SHUTDOWN:
            self._do_shutdown()

    def eof_received(self) -> Any:
        """The raw stream was half-closed by the peer (no close_notify, or after it)."""
        self._eof_received = True
        try:
            if self._loop.get_debug():
                _logger().debug("%r received EOF", self._ssl_protocol)

            if self._state == TLS_DO_HANDSHAKE:
                self._on_handshake_complete(ConnectionResetError)

            elif self._state == TLS_WRAPPED:
                self._set_state(TLS_FLUSHING)
                if self._app_reading_paused:
                    return True
                else:
                    self._do_flush()

            elif self._state == TLS_FLUSHING:
                self._do_write()
                self._set_state(TLS_SHUTDOWN)
                self._do_shutdown()

            elif self._state == TLS_SHUTDOWN:
                self._do_shutdown()

        except Exception:
            self._transport.close()
            raise
        return None

    def _set_state(self, new_state: int) -> None:
        """The one place ``_state`` changes; raises RuntimeError on a move the grammar
        does not allow."""
        state = self._state
        if (
            new_state == TLS_UNWRAPPED
            or (state == TLS_UNWRAPPED and new_state == TLS_DO_HANDSHAKE)
            or (state == TLS_DO_HANDSHAKE and new_state == TLS_WRAPPED)
            or (state == TLS_WRAPPED and new_state == TLS_FLUSHING)
            or (state == TLS_FLUSHING and new_state == TLS_SHUTDOWN)
        ):
            self._state = new_state
        else:
            raise RuntimeError(
                f"cannot switch state from SSLProtocolState.{_STATE_NAMES[state]} "
                f"to SSLProtocolState.{_STATE_NAMES[new_state]}"
            )

    # ------------------------------------------------------------------ handshake

    def _start_handshake(self) -> None:
        if self._loop.get_debug():
            _logger().debug("%r starts SSL handshake", self._ssl_protocol)
            self._handshake_start_time = self._loop.time()
        else:
            self._handshake_start_time = None

        self._set_state(TLS_DO_HANDSHAKE)

        # start handshake timeout count down
        self._handshake_timeout_handle = self._loop.call_later(
            self._ssl_handshake_timeout, self._check_handshake_timeout
        )
        self._do_handshake()

    def _check_handshake_timeout(self) -> None:
        if self._state == TLS_DO_HANDSHAKE:
            msg = (
                f"SSL handshake is taking longer than "
                f"{self._ssl_handshake_timeout} seconds: "
                f"aborting the connection"
            )
            self._fatal_error(ConnectionAbortedError(msg))

    def _do_handshake(self) -> None:
        try:
            self._sslobj.do_handshake()
        except _SSLAgainErrors:
            self._process_outgoing()
        except _SSLError as exc:
            self._on_handshake_complete(exc)
        else:
            self._on_handshake_complete(None)

    def _on_handshake_complete(self, handshake_exc: Any) -> None:
        if self._handshake_timeout_handle is not None:
            self._handshake_timeout_handle.cancel()
            self._handshake_timeout_handle = None

        sslobj = self._sslobj
        try:
            if handshake_exc is None:
                self._set_state(TLS_WRAPPED)
            else:
                raise handshake_exc
            peercert = sslobj.getpeercert()
        except Exception as exc:
            handshake_exc = None
            self._set_state(TLS_UNWRAPPED)
            if isinstance(exc, _CertificateError):
                msg = "SSL handshake failed on verifying the certificate"
            else:
                msg = "SSL handshake failed"
            self._fatal_error(exc, msg)
            self._wakeup_waiter(exc)
            return

        if self._loop.get_debug():
            dt = self._loop.time() - self._handshake_start_time
            _logger().debug("%r: SSL handshake took %.1f ms", self._ssl_protocol, dt * 1e3)

        # Add extra info that becomes available after handshake.
        extra = self._extra
        extra["peercert"] = peercert
        extra["cipher"] = sslobj.cipher()
        extra["compression"] = sslobj.compression()
        extra["ssl_object"] = sslobj
        if self._app_state == APP_INIT:
            self._app_state = APP_CON_MADE
            app_transport = self._app_transport
            if app_transport is None:  # gone: connection_lost has run (asyncio's message)
                raise RuntimeError("Creating _SSLProtocolTransport twice")
            self._app_protocol.connection_made(app_transport)
        self._wakeup_waiter()
        self._do_read()

    # ------------------------------------------------------------------ shutdown

    def _start_shutdown(self) -> None:
        state = self._state
        if state >= TLS_FLUSHING or state == TLS_UNWRAPPED:  # FLUSHING, SHUTDOWN, UNWRAPPED
            return
        if self._app_transport is not None:
            self._app_transport._closed = True
        if state == TLS_DO_HANDSHAKE:
            self._abort(None)
        else:
            self._set_state(TLS_FLUSHING)
            self._shutdown_timeout_handle = self._loop.call_later(
                self._ssl_shutdown_timeout, self._check_shutdown_timeout
            )
            self._do_flush()

    def _check_shutdown_timeout(self) -> None:
        if self._state == TLS_FLUSHING or self._state == TLS_SHUTDOWN:
            _force_close(self._transport, _exceptions.TimeoutError("SSL shutdown timed out"))

    def _do_flush(self) -> None:
        self._do_read()
        self._set_state(TLS_SHUTDOWN)
        self._do_shutdown()

    def _do_shutdown(self) -> None:
        try:
            if not self._eof_received:
                self._sslobj.unwrap()
        except _SSLAgainErrors:
            self._process_outgoing()
        except _SSLError as exc:
            self._on_shutdown_complete(exc)
        else:
            self._process_outgoing()
            self._call_eof_received()
            self._on_shutdown_complete(None)

    def _on_shutdown_complete(self, shutdown_exc: Any) -> None:
        if shutdown_exc or not _PY314:
            if self._shutdown_timeout_handle is not None:
                self._shutdown_timeout_handle.cancel()
                self._shutdown_timeout_handle = None

        if shutdown_exc:
            self._fatal_error(shutdown_exc)
        else:
            if _PY314 and self._shutdown_timeout_handle is None:
                # 3.14: the raw transport's close() flushes its buffer first, which a peer
                # that does not read can delay forever. Keep the timer (or start it, if the
                # peer began the shutdown) until connection_lost.
                self._shutdown_timeout_handle = self._loop.call_later(
                    self._ssl_shutdown_timeout, self._check_shutdown_timeout
                )
            self._loop.call_soon(self._transport.close)

    def _abort(self, exc: Any) -> None:
        self._set_state(TLS_UNWRAPPED)
        if self._transport is not None:
            _force_close(self._transport, exc)

    # ------------------------------------------------------------------ outgoing

    def write(self, data: Any) -> None:
        """The app transport's write(): encrypt now when nothing is queued before it."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data: expecting a bytes-like instance, got {type(data).__name__}")
        if not data:
            return
        if self._state != TLS_WRAPPED or self._write_backlog:
            self._write_appdata((data,))
            return
        # _write_appdata((data,)) without the queue round trip.
        try:
            try:
                count = self._sslobj_write(data)
            except _SSLAgainErrors:
                count = 0
            data_len = len(data)
            if count < data_len:
                self._write_backlog.append(data[count:])
                self._write_buffer_size += data_len - count
            self._process_outgoing()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _write_appdata(self, list_of_data: Any) -> None:
        state = self._state
        if state >= TLS_FLUSHING or state == TLS_UNWRAPPED:  # FLUSHING, SHUTDOWN, UNWRAPPED
            if self._conn_lost >= _LOG_THRESHOLD_FOR_CONNLOST_WRITES:
                _logger().warning("SSL connection is closed")
            self._conn_lost += 1
            return

        for data in list_of_data:
            self._write_backlog.append(data)
            self._write_buffer_size += len(data)

        try:
            if self._state == TLS_WRAPPED:
                self._do_write()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    def _do_write(self) -> None:
        backlog = self._write_backlog
        sslobj_write = self._sslobj_write
        try:
            while backlog:
                data = backlog[0]
                count = sslobj_write(data)
                data_len = len(data)
                if count < data_len:
                    backlog[0] = data[count:]
                    self._write_buffer_size -= count
                else:
                    backlog.popleft()
                    self._write_buffer_size -= data_len
        except _SSLAgainErrors:
            pass
        self._process_outgoing()

    def _process_outgoing(self) -> None:
        if not self._ssl_writing_paused:
            if self._outgoing.pending:
                self._transport_write(self._outgoing_read())
            # The outgoing BIO is empty now, so the buffer size is the backlog's: below the
            # high-water mark with the app not paused, _control_app_writing() has nothing to
            # do (a shortcut on the per-message path; same outcome).
            if not self._protocol_paused and self._write_buffer_size < self._outgoing_high_water:
                return
        self._control_app_writing()

    # ------------------------------------------------------------------ incoming

    def _do_read(self) -> None:
        state = self._state
        if state != TLS_WRAPPED and state != TLS_FLUSHING:
            return
        try:
            if not self._app_reading_paused:
                if self._app_protocol_is_buffer:
                    self._do_read__buffered()
                else:
                    self._do_read__copied()
                if self._write_backlog:
                    self._do_write()
                else:
                    self._process_outgoing()
            self._control_ssl_reading()
        except Exception as ex:
            self._fatal_error(ex, "Fatal error on SSL protocol")

    # Both readers stop as soon as neither the incoming BIO nor the SSL object holds anything
    # more: the read that would follow could only raise SSLWantReadError, which costs more
    # than the rest of a small message's path. A close_notify still in the BIO keeps
    # ``incoming.pending`` non-zero, so it is always read (and returns 0 / b"").

    def _do_read__buffered(self) -> None:
        offset = 0
        count = 1

        # One memoryview of the protocol's buffer, sliced for each further record: slicing a
        # bytearray itself would decrypt into a copy, and the bytes counted would never reach
        # the protocol (asyncio 3.11's bug, CPython gh-156275). Released before
        # buffer_updated(), which may resize a bytearray. Counted in bytes, whatever the
        # buffer's item size.
        view = memoryview(self._app_protocol_get_buffer(self._get_read_buffer_size()))
        try:
            if view.itemsize != 1 or view.ndim != 1:
                view = view.cast("B")
            wants = len(view)
            sslobj_read = self._sslobj_read
            incoming = self._incoming
            try:
                count = sslobj_read(wants, view)

                if count > 0:
                    offset = count
                    while offset < wants:
                        if not incoming.pending and not self._sslobj_pending():
                            break
                        rest = view[offset:]
                        try:
                            count = sslobj_read(wants - offset, rest)
                        finally:
                            rest.release()  # now, not when collected (PyPy)
                        if count > 0:
                            offset += count
                        else:
                            break
                    else:
                        self._loop.call_soon(self._do_read)
            except _SSLAgainErrors:
                pass
        finally:
            view.release()
        if offset > 0:
            self._app_protocol_buffer_updated(offset)
        if not count:
            # close_notify
            self._call_eof_received()
            self._start_shutdown()

    def _do_read__copied(self) -> None:
        # Decrypt into the raw-read buffer, which is free here (buffer_updated() copied its
        # bytes into the incoming BIO before any read), then copy out exactly what came:
        # asyncio's read(256 KiB) allocates 256 KiB per record and shrinks it, and joins
        # several records with one more copy.
        view = self._ssl_buffer_view
        size = len(view)
        offset = 0
        count = 1
        sslobj_read = self._sslobj_read
        incoming = self._incoming
        try:
            while True:
                count = sslobj_read(size - offset, view[offset:] if offset else view)
                if not count:
                    break
                offset += count
                if offset == size:
                    # Full: deliver this much, read the rest on the next pass.
                    self._loop.call_soon(self._do_read)
                    break
                if not incoming.pending and not self._sslobj_pending():
                    break
        except _SSLAgainErrors:
            pass
        if offset:
            if _NATIVE:
                data = tideloop_bytearray_head(self._ssl_buffer, offset)  # noqa: F821
            else:
                data = view[:offset].tobytes()
            self._app_protocol.data_received(data)
        if not count:
            # close_notify
            self._call_eof_received()
            self._start_shutdown()

    def _call_eof_received(self) -> None:
        try:
            if self._app_state == APP_CON_MADE:
                self._app_state = APP_EOF
                keep_open = self._app_protocol.eof_received()
                if keep_open:
                    _logger().warning(
                        "returning true from eof_received() has no effect when using ssl"
                    )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as ex:
            self._fatal_error(ex, "Error calling eof_received()")

    # ------------------------------------------------------------------ flow control

    def _control_app_writing(self) -> None:
        size = self._get_write_buffer_size()
        if size >= self._outgoing_high_water and not self._protocol_paused:
            self._protocol_paused = True
            self._call_app_flow("pause_writing")
        elif size <= self._outgoing_low_water and self._protocol_paused:
            self._protocol_paused = False
            self._call_app_flow("resume_writing")

    def _call_app_flow(self, name: str) -> None:
        """The app protocol's pause_writing() or resume_writing(); its errors are reported."""
        try:
            getattr(self._app_protocol, name)()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": f"protocol.{name}() failed",
                    "exception": exc,
                    "transport": self._app_transport,
                    "protocol": self._ssl_protocol,
                }
            )

    def _get_write_buffer_size(self) -> int:
        return self._outgoing.pending + self._write_buffer_size

    def _set_write_buffer_limits(self, high: Any, low: Any) -> None:
        # high >= low >= 0, as checked by the facade (add_flowcontrol_defaults in tls.py).
        self._write_limits = (low, high)
        self._outgoing_high_water = _water_mark(high)
        self._outgoing_low_water = _water_mark(low)

    def _pause_reading(self) -> None:
        self._app_reading_paused = True

    def _resume_reading(self) -> None:
        if self._app_reading_paused:
            self._app_reading_paused = False
            self._loop.call_soon(self._resume)

    def _resume(self) -> None:
        state = self._state
        if state == TLS_WRAPPED:
            self._do_read()
        elif state == TLS_FLUSHING:
            self._do_flush()
        elif state == TLS_SHUTDOWN:
            self._do_shutdown()

    def _control_ssl_reading(self) -> None:
        size = self._get_read_buffer_size()
        if size >= self._incoming_high_water and not self._ssl_reading_paused:
            self._ssl_reading_paused = True
            self._transport.pause_reading()
        elif size <= self._incoming_low_water and self._ssl_reading_paused:
            self._ssl_reading_paused = False
            self._transport.resume_reading()

    def _set_read_buffer_limits(self, high: Any, low: Any) -> None:
        # As _set_write_buffer_limits.
        self._read_limits = (low, high)
        self._incoming_high_water = _water_mark(high)
        self._incoming_low_water = _water_mark(low)

    def _get_read_buffer_size(self) -> int:
        return self._incoming.pending

    def pause_writing(self) -> None:
        """The raw transport's buffer went over its high-water mark."""
        assert not self._ssl_writing_paused
        self._ssl_writing_paused = True

    def resume_writing(self) -> None:
        """The raw transport's buffer drained to its low-water mark."""
        assert self._ssl_writing_paused
        self._ssl_writing_paused = False
        self._process_outgoing()

    # ------------------------------------------------------------------ errors

    def _fatal_error(self, exc: Any, message: str = "Fatal error on transport") -> None:
        if isinstance(exc, _SSLError):
            _clear_openssl_errors()  # PyPy: see _clear_openssl_errors
        transport = self._transport
        if transport is not None:
            _force_close(transport, exc)

        if isinstance(exc, OSError):
            if self._loop.get_debug():
                _logger().debug("%r: %s", self._ssl_protocol, message, exc_info=True)
        elif not isinstance(exc, _exceptions.CancelledError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": transport,
                    "protocol": self._ssl_protocol,
                }
            )


def _force_close(transport: Any, exc: Any) -> None:
    """Close the raw transport now, dropping its buffer; connection_lost(exc) follows."""
    force_close = getattr(transport, "_force_close", None)
    if force_close is not None:
        force_close(exc)
    else:
        transport.abort()
