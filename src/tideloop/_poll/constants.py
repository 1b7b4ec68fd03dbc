"""Readiness bits shared by every backend (the values of EPOLLIN and EPOLLOUT)."""

READ = 0x001
WRITE = 0x004
