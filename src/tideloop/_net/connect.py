"""create_connection (Happy Eyeballs), create_unix_connection, connect_accepted_socket."""

from __future__ import annotations


class ConnectMixin:
    """Outgoing stream connections. (Being written: issue 3.)"""
