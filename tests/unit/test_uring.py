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
from typing import Any

import pytest

import tideloop

uring = pytest.importorskip("tideloop._poll.uring")
REFUSAL = uring.uring_refusal() if sys.platform.startswith("linux") else OSError("not Linux")
# Kernel ABI numbers (the module's own are C constants in the compiled build).
OP_POLL_ADD = 6
OP_ASYNC_CANCEL = 14
OP_SEND = 26
OP_RECV = 27
POLLIN = 0x001
SQE_BUFFER_SELECT = 1 << 5
RECV_MULTISHOT = 1 << 1  # in the SQE's ioprio
CQE_F_BUFFER = 1 << 0
CQE_F_MORE = 1 << 1
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


@needs_uring
def test_a_timer_only_wait_over_two_seconds_ends() -> None:
    # The compiled wait turns the loop's ms into ns; in a C int that overflowed past 2.1 s and
    # the wait had no end. Nothing but the timer may wake this loop, hence the child process.
    code = textwrap.dedent(
        """
        import asyncio, time, tideloop
        loop = tideloop.new_event_loop(poller="io_uring")
        t = time.monotonic()
        loop.run_until_complete(asyncio.sleep(2.2))
        print(round(time.monotonic() - t, 1) >= 2.2)
        loop.close()
        """
    )
    result = _run(code)
    assert (result.returncode, result.stdout) == (0, "True\n"), result.stderr


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
        assert sorted(ud for ud, _, _ in seen) == list(range(100, 110))
        assert all(res & POLLIN for _, res, _ in seen)
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


def _wait_for(ring: Any, n: int) -> list:
    """Reap until n CQEs came; fail if one second passes with none."""
    seen: list = []
    while len(seen) < n:
        ring.enter(1, 1_000_000_000)
        got = ring.reap()
        assert got, f"no completion within 1 s; have {seen}"
        seen += got
    return seen


@needs_uring
def test_send_and_multishot_recv_into_a_buffer_ring() -> None:
    """The completion-mode operations the stream transports are to use: a send from memory
    the caller keeps alive, and one multishot receive whose completions each name a buffer
    of the group, which goes back to the kernel once copied out."""
    import ctypes

    ring = uring.Ring(8)
    bufs = uring.BufferRing(ring, group=7, count=4, size=64)
    a, b = socket.socketpair()
    try:
        ring.prep(OP_RECV, b.fileno(), 0, 0, 0, 0, 1, SQE_BUFFER_SELECT, RECV_MULTISHOT, 7)
        payload = ctypes.create_string_buffer(b"hello ring", 10)
        ring.prep(OP_SEND, a.fileno(), 0, ctypes.addressof(payload), 10, 0, 2)
        got = {ud: (res, flags) for ud, res, flags in _wait_for(ring, 2)}
        assert got[2] == (10, 0)  # all sent
        res, flags = got[1]
        assert res == 10 and flags & CQE_F_BUFFER and flags & CQE_F_MORE  # still armed
        assert bufs.take(flags >> 16, res) == b"hello ring"
        # More data: the same request completes again, into a buffer of the group.
        for i in range(6):  # more messages than buffers: taking each returns it
            a.send(b"m%d" % i)
            ((ud, res, flags),) = _wait_for(ring, 1)
            assert (ud, flags & CQE_F_MORE) == (1, CQE_F_MORE)
            assert bufs.take(flags >> 16, res) == b"m%d" % i
        # Buffers not given back run out: the request ends with ENOBUFS (no F_MORE).
        for _ in range(4):
            a.send(b"x" * 64)
            ((ud, res, flags),) = _wait_for(ring, 1)
            assert res == 64  # kept (not taken): the kernel has one buffer fewer each time
        a.send(b"y")
        ((ud, res, flags),) = _wait_for(ring, 1)
        assert (ud, res, flags & CQE_F_MORE) == (1, -errno.ENOBUFS, 0)
        for bid in range(4):
            bufs.give(bid)
        # Re-armed, it reads what waited; then a cancel ends it.
        ring.prep(OP_RECV, b.fileno(), 0, 0, 0, 0, 3, SQE_BUFFER_SELECT, RECV_MULTISHOT, 7)
        ((ud, res, flags),) = _wait_for(ring, 1)
        assert (ud, bufs.take(flags >> 16, res)) == (3, b"y")
        ring.prep(OP_ASYNC_CANCEL, -1, 0, 3, 0, 0, 4)
        got = {ud: res for ud, res, _ in _wait_for(ring, 2)}
        assert got == {3: -errno.ECANCELED, 4: 0}
    finally:
        bufs.close()
        bufs.close()  # idempotent
        ring.close()
        a.close()
        b.close()


@needs_uring
def test_buffer_ring_count_must_be_a_power_of_two() -> None:
    ring = uring.Ring(2)
    try:
        for count in (0, 3, 65536):
            with pytest.raises(ValueError):
                uring.BufferRing(ring, group=1, count=count, size=16)
    finally:
        ring.close()
