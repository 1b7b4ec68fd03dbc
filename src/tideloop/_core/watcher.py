"""IOWatcher: what the loop calls straight from the poller, without a Handle.

Readers and writers added as Handles (the public add_reader/add_writer) are queued on
readiness and run with the other ready callbacks, as asyncio does. An IOWatcher is instead
called *inline*, while the pass processes poller events: no Handle, no queue, no context switch
per event (uvloop's model). Whatever owns an fd in the layers above subclasses IOWatcher and
registers itself with ``Loop._add_reader``/``_add_writer``. A watcher therefore must:

- never let an exception escape ``_on_readable``/``_on_writable`` (the loop reports one that
  does through the exception handler, but the watcher's state is then unknown);
- tolerate spurious readiness (EAGAIN), since the kernel and level-triggering allow it;
- run user callbacks in its own context (``contextvars``), as asyncio runs a reader's callback
  in the context copied when the reader was added.
"""

from __future__ import annotations


class IOWatcher:
    """Base class of what the loop calls inline on fd readiness (see the module docstring)."""

    # _flush_next: the next watcher in the loop's end-of-pass chain (Loop._flush_writes), or
    # None; set by whoever chains the watcher.
    __slots__ = ("_flush_next",)
    _flush_next: IOWatcher | None

    def _on_readable(self) -> None:
        raise NotImplementedError

    def _on_writable(self) -> None:
        raise NotImplementedError

    def _on_flush(self) -> None:
        """End of the pass, for a watcher that chained itself to the loop's
        ``_flush_head``..``_flush_tail``: send the writes it deferred (see
        ``Loop._flush_writes``); the same rules as above."""
