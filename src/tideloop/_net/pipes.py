"""connect_read_pipe and connect_write_pipe, as asyncio's base_events (3.11-3.13).

The transports are in ``_transports/pipes.py``; ``_make_read_pipe_transport`` and
``_make_write_pipe_transport`` keep asyncio's private loop API for code that calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._compat import logger as _logger
from .._transports.pipes import (
    ReadPipeTransport,
    WritePipeTransport,
    make_read_pipe_transport,
    make_write_pipe_transport,
)

if TYPE_CHECKING:
    from .._api import LoopAPI


class PipesMixin:
    """Pipe transports on the loop: ``connect_read_pipe`` / ``connect_write_pipe``."""

    __slots__ = ()

    async def connect_read_pipe(self: LoopAPI, protocol_factory: Any, pipe: Any) -> tuple[Any, Any]:
        """Wrap the read end ``pipe`` (file object or socket) in a transport.

        Return (transport, protocol) once connection_made has run; if waiting is interrupted
        (cancelled), the transport is closed and the exception propagates.
        """
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = make_read_pipe_transport(self, pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            # The fd as a transport knows it: asyncio calls pipe.fileno() here, which raises
            # ValueError if connection_made already closed the transport (and the pipe).
            _logger().debug(
                "Read pipe %r connected: (%r, %r)", transport._core._sock_fd, transport, protocol
            )
        return transport, protocol

    async def connect_write_pipe(
        self: LoopAPI, protocol_factory: Any, pipe: Any
    ) -> tuple[Any, Any]:
        """Wrap the write end ``pipe`` (file object or socket) in a transport.

        Return (transport, protocol) once connection_made has run; if waiting is interrupted
        (cancelled), the transport is closed and the exception propagates.
        """
        protocol = protocol_factory()
        waiter = self.create_future()
        transport = make_write_pipe_transport(self, pipe, protocol, waiter)
        try:
            await waiter
        except BaseException:
            transport.close()
            raise
        if self._debug:
            # The fd as a transport knows it: asyncio calls pipe.fileno() here, which raises
            # ValueError if connection_made already closed the transport (and the pipe).
            _logger().debug(
                "Write pipe %r connected: (%r, %r)", transport._core._sock_fd, transport, protocol
            )
        return transport, protocol

    def _make_read_pipe_transport(
        self, pipe: Any, protocol: Any, waiter: Any = None, extra: dict | None = None
    ) -> ReadPipeTransport:
        return make_read_pipe_transport(self, pipe, protocol, waiter, extra)

    def _make_write_pipe_transport(
        self, pipe: Any, protocol: Any, waiter: Any = None, extra: dict | None = None
    ) -> WritePipeTransport:
        return make_write_pipe_transport(self, pipe, protocol, waiter, extra)
