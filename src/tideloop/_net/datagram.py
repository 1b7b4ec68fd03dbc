"""create_datagram_endpoint."""

from __future__ import annotations


class DatagramMixin:
    """Datagram endpoints. (Being written: issue 3.)"""
