"""create_server, create_unix_server and the Server object."""

from __future__ import annotations


class ServerMixin:
    """Listening stream sockets. (Being written: issue 3.)"""
