"""IOWatcher: what the loop calls straight from the poller, without a Handle.

add_reader/add_writer callbacks are Handles: on readiness the loop queues them and runs them
with the other ready callbacks, as asyncio does. Transports instead subclass IOWatcher and
are called *inline*, while the pass processes poller events: no Handle, no queue, no context
switch per event (uvloop's model). A transport therefore must:

- never let an exception escape ``_on_readable``/``_on_writable`` (the loop reports one that
  does through the exception handler, but the transport's state is then unknown);
- tolerate spurious readiness (EAGAIN), since the kernel and level-triggering allow it;
- run protocol callbacks in its own context (``contextvars``), as asyncio's transports run
  theirs in the context copied when the reader was added.
"""

from __future__ import annotations


class IOWatcher:
    """Base class of transports' cores: the loop calls these on fd readiness."""

    __slots__ = ()

    def _on_readable(self) -> None:
        raise NotImplementedError

    def _on_writable(self) -> None:
        raise NotImplementedError
