"""The loop core: handles, timers, a poller and a waker. Imports nothing above it."""
