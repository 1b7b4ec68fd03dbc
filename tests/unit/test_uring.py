"""The io_uring backend's own behaviour (its poller contract is test_poller.py's, on every backend).

(a) where the kernel refuses io_uring (here: a seccomp filter, as container runtimes install),
    asking for it gives an epoll loop and one log line saying why;
(b) a signal ends the ring's wait and its Python handler runs, even when the signal lands on
    another thread;
(c) the ring itself: submit, complete, and the fact that decided the design (an armed
    request keeps a closed socket open, so readiness stays in epoll).
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

import tideloop

uring = pytest.importorskip("tideloop._poll.uring")
REFUSAL = uring.uring_refusal() if sys.platform.startswith("linux") else OSError("not Linux")
# Kernel ABI numbers (the module's own are C constants in the compiled build).
OP_POLL_ADD = 6
POLLIN = 0x001
needs_uring = pytest.mark.skipif(REFUSAL is not None, reason=f"no io_uring here: {REFUSAL}")

# Installs a seccomp filter that fails io_uring_setup (syscall 425 on every Linux
# architecture) with EPERM and allows everything else: Docker's and podman's default profiles
# do the same. Irreversible, so only ever in a child process.
DENY_IO_URING = textwrap.dedent(
    """
    import ctypes, struct
    libc = ctypes.CDLL(None, use_errno=True)
    def ins(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)
    prog = b"".join([
        ins(0x20, 0, 0, 0),              # ld  [0]: the syscall number
        ins(0x15, 0, 1, 425),            # jeq io_uring_setup ? next : skip one
        ins(0x06, 0, 0, 0x00050000 | 1), # ret ERRNO(EPERM)
        ins(0x06, 0, 0, 0x7FFF0000),     # ret ALLOW
    ])
    buf = ctypes.create_string_buffer(prog, len(prog))
    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fprog = Fprog(len(prog) // 8, ctypes.addressof(buf))
    assert libc.prctl(38, 1, 0, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS"
    assert libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0, "PR_SET_SECCOMP"
    """
)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TIDELOOP_POLLER"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environ
    )


# ------------------------------------------------------------------------- (a) refusal


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp and io_uring: Linux")
def test_refused_io_uring_falls_back_to_epoll_with_one_log_line() -> None:
    code = DENY_IO_URING + textwrap.dedent(
        """
        import asyncio, tideloop
        from tideloop._poll.uring import uring_refusal
        print(repr(uring_refusal()))
        by_arg = tideloop.new_event_loop(poller="io_uring")
        import os; os.environ["TIDELOOP_POLLER"] = "io_uring"
        by_env = tideloop.new_event_loop()
        print(by_arg._poller.name, by_env._poller.name)
        print(by_arg.run_until_complete(asyncio.sleep(0.01, "ran")))
        print(repr(by_env))
        by_arg.close(); by_env.close()
        """
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "PermissionError(1, 'io_uring_setup: Operation not permitted')"
    assert out[1:] == [
        "epoll epoll",
        "ran",
        f"<EventLoop running=False closed=False debug={_debug()} poller=epoll>",
    ]
    # One line for the process, however many loops asked.
    assert result.stderr.splitlines() == [
        "tideloop: io_uring is unavailable here ([Errno 1] io_uring_setup: Operation not "
        "permitted); using epoll"
    ]


def _debug() -> bool:
    loop = tideloop.new_event_loop(poller="select")
    try:
        return loop.get_debug()
    finally:
        loop.close()


# ------------------------------------------------------------------------- (b) signals


@needs_uring
def test_sigint_ends_the_ring_wait_from_another_thread() -> None:
    # The signal is sent by a helper thread, which the kernel may pick to run the C handler:
    # the loop's thread, blocked in io_uring_enter, must still run the Python handler.
    code = textwrap.dedent(
        """
        import asyncio, os, signal, threading, time, tideloop
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        t = time.monotonic()
        try:
            tideloop.run(asyncio.sleep(30))
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t < 10)
        """
    )
    for _ in range(3):
        result = _run(code, TIDELOOP_POLLER="io_uring")
        assert (result.returncode, result.stdout) == (0, "interrupted True\n"), result.stderr


@needs_uring
def test_signal_handler_wakes_the_ring_wait() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        got = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, got.set_result, "handled")
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGUSR1)
        try:
            return await asyncio.wait_for(got, 10)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    with asyncio.Runner(loop_factory=lambda: tideloop.new_event_loop(poller="io_uring")) as r:
        assert r.run(main()) == "handled"


# ------------------------------------------------------------------------- (c) the ring


@needs_uring
def test_ring_submits_and_completes_in_order() -> None:
    ring = uring.Ring(4)
    a, b = socket.socketpair()
    try:
        for i in range(10):  # more than the queue holds: prep submits a full queue itself
            ring.prep(OP_POLL_ADD, b.fileno(), 0, 0, 0, POLLIN, 100 + i)
        assert ring.enter(0, 0) >= 0
        assert ring.reap() == []  # nothing to read yet
        a.send(b"x")
        seen: list = []
        while len(seen) < 10:
            ring.enter(1, 1_000_000_000)
            seen += ring.reap()
        assert sorted(ud for ud, _ in seen) == list(range(100, 110))
        assert all(res & POLLIN for _, res in seen)
        # A timed-out wait says so instead of raising.
        assert ring.enter(1, 1_000_000) == -errno.ETIME
    finally:
        ring.close()
        ring.close()  # idempotent
        a.close()
        b.close()


@needs_uring
def test_an_armed_request_keeps_a_closed_socket_open() -> None:
    """Why readiness stays in epoll: closing an fd does not end an io_uring request on it,
    and the request's file reference keeps the socket open (the peer sees no EOF) until the
    request is cancelled, here by closing the ring. epoll drops a closed fd by itself."""
    ring = uring.Ring(4)
    a, b = socket.socketpair()
    try:
        ring.prep(OP_POLL_ADD, a.fileno(), 0, 0, 0, POLLIN, 1)
        ring.enter(0, 0)
        a.close()
        b.settimeout(0.2)
        with pytest.raises(TimeoutError):
            b.recv(1)  # no EOF: the socket is still open inside the ring
    finally:
        ring.close()
    b.settimeout(5)
    assert b.recv(1) == b""  # the ring let go: now the peer sees the close
    b.close()
