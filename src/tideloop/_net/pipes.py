"""connect_read_pipe and connect_write_pipe."""

from __future__ import annotations


class PipesMixin:
    """Pipe transports. (Being written: issue 3.)"""
