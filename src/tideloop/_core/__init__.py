"""The loop core: the pass (``loop.Loop``), handles, the timer heap, the waker, IOWatcher and the
exception-handler API. Imports nothing above it but ``_poll`` and ``_compat``; knows fds,
handles and watchers, not what owns them."""
