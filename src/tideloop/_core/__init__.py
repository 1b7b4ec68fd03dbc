"""The loop core: the pass (``loop.Loop``), handles, the timer heap, the waker, IOWatcher,
the clock (``_clock.pxd``) and the exception-handler API. Imports nothing above it but
``_poll`` and ``_compat``; knows fds, handles and watchers, not what owns them."""
