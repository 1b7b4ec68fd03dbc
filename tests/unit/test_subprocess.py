"""Black-box tests of loop.subprocess_exec / subprocess_shell and asyncio's subprocess API.

Every test taking ``loop_impl`` runs unchanged on tideloop and asyncio (ids ``tide`` / ``aio``):
asyncio's base_subprocess/unix_events are the spec. Tests of tideloop's child watching
(pidfd, the thread fallback, reaping after the loop closed, the leak check) are tideloop only.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from _support import open_fds, run

import tideloop
from tideloop._net import children as tsub

TIMEOUT = 20.0
PY = sys.executable
PY314 = sys.version_info >= (3, 14)
LINUX = sys.platform == "linux"
needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc")
TRUE = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"


class Proto(asyncio.SubprocessProtocol):
    """Records the protocol calls in order (consecutive data on one fd merged)."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.data: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.transport: Any = None
        self.done = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append("made")

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        assert self.events[0] == "made"
        if self.events[-1] != ("data", fd):
            self.events.append(("data", fd))
        self.data[fd] += data

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self) -> None:
        self.events.append("exited")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        self.done.set_result(None)


def children_of_us() -> list[tuple[int, str]]:
    """(pid, state) of this process's children, from /proc (zombies have state 'Z')."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found.append((int(name), fields[0]))
    return found



# --------------------------------------------------------------------- protocol sequence


def test_exec_callback_order(loop_impl: Any) -> None:
    code = "import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('E')"

    async def main() -> Proto:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(Proto, PY, "-c", code)
        assert proto.events == ["made"]  # connection_made ran before subprocess_exec returned
        stdin = transport.get_pipe_transport(0)
        stdin.write(b"abc")
        stdin.close()
        await proto.done
        assert transport.get_returncode() == 0
        transport.close()
        return proto

    proto = run(loop_impl, main)
    assert proto.data == {1: b"ABC", 2: b"E"}
    events = proto.events
    assert events[0] == "made" and events[-1] == ("lost", None)
    middle = events[1:-1]
    assert middle.count("exited") == 1
    assert sorted(e[1] for e in middle if e[0] == "pipe_lost") == [0, 1, 2]
    assert all(e[2] is None for e in middle if e[0] == "pipe_lost")
    # a pipe's data comes before that pipe's close
    for fd in (1, 2):
        assert middle.index(("data", fd)) < middle.index(("pipe_lost", fd, None))


def test_exit_before_pipe_closes(loop_impl: Any) -> None:
    # The child exits while a grandchild still holds its stdout: process_exited comes
    # first, connection_lost only after the pipe closed too. (The grandchild's sleep is not
    # a wait for anything: it keeps the pipe open after the child exited.)
    code = (
        "import subprocess, sys; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.5); print(1)'])"
    )

    async def main() -> Proto:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Proto, PY, "-c", code, stdin=None, stderr=None
        )
        await proto.done
        transport.close()
        return proto

    proto = run(loop_impl, main)
    assert proto.events == ["made", "exited", ("data", 1), ("pipe_lost", 1, None), ("lost", None)]


def test_shell_and_wait_returncode(loop_impl: Any) -> None:
    async def main() -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_shell(Proto, "echo hi; exit 7", stdin=None)
        rc = await transport._wait()
        await proto.done
        transport.close()
        return rc, bytes(proto.data[1])

    assert run(loop_impl, main) == (7, b"hi\n")


# ---------------------------------------------------------------------- argument checking

BAD_EXEC = [
    ({"universal_newlines": True}, "universal_newlines must be False"),
    ({"shell": True}, "shell must be False"),
    ({"bufsize": 1}, "bufsize must be 0"),
    ({"text": True}, "text must be False"),
    ({"encoding": "utf-8"}, "encoding must be None"),
    ({"errors": "strict"}, "errors must be None"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_EXEC)
def test_exec_rejects(loop_impl: Any, kwargs: dict, message: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match=message):
            await loop.subprocess_exec(Proto, TRUE, **kwargs)

    run(loop_impl, main)


@pytest.mark.parametrize(
    ("cmd", "kwargs", "message"),
    [
        (["true"], {}, "cmd must be a string"),
        ("true", {"shell": False}, "shell must be True"),
        ("true", {"universal_newlines": True}, "universal_newlines must be False"),
        ("true", {"bufsize": 1}, "bufsize must be 0"),
        ("true", {"text": True}, "text must be False"),
        ("true", {"encoding": "utf-8"}, "encoding must be None"),
        ("true", {"errors": "strict"}, "errors must be None"),
    ],
)
def test_shell_rejects(loop_impl: Any, cmd: Any, kwargs: dict, message: str) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match=message):
            await loop.subprocess_shell(Proto, cmd, **kwargs)

    run(loop_impl, main)


def test_popen_errors_propagate(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(FileNotFoundError):
            await loop.subprocess_exec(Proto, "/nonexistent/program")
        with pytest.raises(TypeError):  # Popen's own check
            await loop.subprocess_exec(Proto, TRUE, no_such_popen_keyword=1)
        with pytest.raises(ValueError):  # Popen: a negative fd in pass_fds
            await loop.subprocess_exec(Proto, TRUE, pass_fds=(-5,))

    before = open_fds()
    run(loop_impl, main)
    gc.collect()
    assert open_fds() <= before


# ------------------------------------------------------------------- stdio and Popen keywords


def test_stdio_variants(loop_impl: Any, tmp_path: Any) -> None:
    out_path = tmp_path / "out.txt"
    code = "import sys; print('out'); print('err', file=sys.stderr)"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # stderr=STDOUT: both on the stdout pipe
        transport, proto = await loop.subprocess_exec(
            Proto, PY, "-c", code, stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        await proto.done
        assert transport.get_pipe_transport(0) is None
        assert transport.get_pipe_transport(2) is None
        assert proto.data[1].split() == [b"out", b"err"]
        transport.close()
        # a file object and a raw fd
        with open(out_path, "wb") as f:
            transport, proto = await loop.subprocess_exec(
                Proto, PY, "-c", code, stdin=None, stdout=f, stderr=f.fileno()
            )
            await proto.done
            transport.close()
        assert sorted(out_path.read_bytes().split()) == [b"err", b"out"]
        assert proto.events == ["made", "exited", ("lost", None)]
        # DEVNULL everywhere: no pipe at all
        transport, proto = await loop.subprocess_exec(
            Proto,
            PY,
            "-c",
            code,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await proto.done
        assert [transport.get_pipe_transport(fd) for fd in (0, 1, 2)] == [None, None, None]
        transport.close()

    run(loop_impl, main)


def test_popen_keywords(loop_impl: Any, tmp_path: Any) -> None:
    r, w = os.pipe()
    code = (
        "import os, sys; "
        "print(os.getcwd(), os.environ.get('TIDE_X'), os.getsid(0) == os.getpid(), "
        "oct(os.umask(0)), os.getpgrp() == os.getpid()); "
        f"os.write({w}, b'passed')"
    )
    seen: list[int] = []

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Proto,
            PY,
            "-c",
            code,
            stdin=None,
            cwd=str(tmp_path),
            env={**os.environ, "TIDE_X": "x"},
            start_new_session=True,
            umask=0o027,
            pass_fds=(w,),
            close_fds=True,
            preexec_fn=lambda: seen.append(1),  # runs in the child: seen stays empty here
        )
        await proto.done
        transport.close()
        assert transport.get_returncode() == 0, bytes(proto.data[2])
        return bytes(proto.data[1])

    try:
        out = run(loop_impl, main)
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"passed"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert out.split() == [str(tmp_path).encode(), b"x", b"True", b"0o27", b"True"]
    assert seen == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="process_group is 3.11+")
def test_process_group_and_ids(loop_impl: Any) -> None:
    code = "import os; print(os.getpgrp() == os.getpid(), os.getuid(), os.getgid())"
    uid, gid = os.getuid(), os.getgid()
    kwargs: dict[str, Any] = {"process_group": 0, "user": uid, "group": gid}
    if uid == 0:
        kwargs["extra_groups"] = [gid]

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(Proto, PY, "-c", code, stdin=None, **kwargs)
        await proto.done
        transport.close()
        return bytes(proto.data[1])

    assert run(loop_impl, main).split() == [b"True", str(uid).encode(), str(gid).encode()]


# ------------------------------------------------------------------------ transport methods


def test_transport_methods(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Proto, PY, "-c", "import time; time.sleep(30)", stderr=None
        )
        pid = transport.get_pid()
        popen = transport.get_extra_info("subprocess")
        assert isinstance(popen, subprocess.Popen) and popen.pid == pid
        assert transport.get_returncode() is None
        assert isinstance(transport.get_pipe_transport(0), asyncio.WriteTransport)
        assert isinstance(transport.get_pipe_transport(1), asyncio.ReadTransport)
        assert transport.get_pipe_transport(2) is None
        assert transport.get_pipe_transport(3) is None
        assert f"pid={pid}" in repr(transport) and "running" in repr(transport)
        assert isinstance(transport, asyncio.SubprocessTransport)
        assert transport.get_protocol() is proto and not transport.is_closing()
        transport.send_signal(signal.SIGTERM)
        assert await transport._wait() == -signal.SIGTERM
        await proto.done
        assert transport.get_returncode() == -signal.SIGTERM
        # the child is gone: signalling is a no-op, not an error
        transport.close()
        assert transport.is_closing()

    run(loop_impl, main)


@pytest.mark.parametrize(("method", "sig"), [("terminate", signal.SIGTERM), ("kill", 9)])
def test_terminate_kill(loop_impl: Any, method: str, sig: int) -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Proto, PY, "-c", "import time; time.sleep(30)", stdin=None
        )
        getattr(transport, method)()
        await proto.done
        transport.close()
        return transport.get_returncode()

    assert run(loop_impl, main) == -sig


def test_close_kills_running_child(loop_impl: Any) -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Proto, PY, "-c", "import time; time.sleep(30)"
        )
        transport.close()
        await proto.done
        assert transport.get_returncode() == -signal.SIGKILL
        with pytest.raises(ProcessLookupError):  # connection_lost dropped the Popen
            transport.kill()
        return proto.events

    events = run(loop_impl, main)
    assert events[0] == "made" and events[-1] == ("lost", None) and "exited" in events


def test_cancelled_while_starting_kills_and_reaps(loop_impl: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(
            loop.subprocess_exec(Proto, PY, "-c", "import time; time.sleep(30)")
        )
        await asyncio.sleep(0)  # Popen runs; the pipes are being connected
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    t0 = time.monotonic()
    run(loop_impl, main)
    assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------- asyncio's subprocess API


def test_create_subprocess_exec_communicate_wait_lines(loop_impl: Any) -> None:
    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            "import sys; sys.stdout.write(sys.stdin.read()[::-1])",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(b"olleh")
        assert (out, err, proc.returncode) == (b"hello", None, 0)

        proc = await asyncio.create_subprocess_shell(
            "for i in 1 2 3; do echo line$i; done; exit 4", stdout=asyncio.subprocess.PIPE
        )
        lines = [line async for line in proc.stdout]
        assert lines == [b"line1\n", b"line2\n", b"line3\n"]
        assert await proc.wait() == 4

        proc = await asyncio.create_subprocess_exec(PY, "-c", "import sys; sys.exit(3)")
        assert await proc.wait() == 3

    run(loop_impl, main)


def test_many_concurrent_outputs(loop_impl: Any) -> None:
    async def one(i: int) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", f"print({i})", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        return out.strip()

    async def main() -> list[bytes]:
        return await asyncio.gather(*(one(i) for i in range(10)))

    assert run(loop_impl, main) == [str(i).encode() for i in range(10)]


def test_in_non_main_thread(loop_impl: Any) -> None:
    result: list[Any] = []

    def target() -> None:
        try:

            async def main() -> tuple[bytes, int]:
                proc = await asyncio.create_subprocess_exec(
                    PY, "-c", "print('thread')", stdout=asyncio.subprocess.PIPE
                )
                out, _ = await proc.communicate()
                return out, proc.returncode

            result.append(run(loop_impl, main))
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(TIMEOUT + 5)
    assert result == [(b"thread\n", 0)]


def test_debug_mode(loop_impl: Any, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> bytes:
        asyncio.get_running_loop().set_debug(True)
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", "print('dbg')", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        return out

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        assert run(loop_impl, main) == b"dbg\n"
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("execute program") and "stdout=<pipe>" in m for m in messages)
    assert any("exited with return code 0" in m for m in messages)


# ------------------------------------- 3.14: wait() at the exit, exit published at the reap

GRANDCHILD_HOLDS_PIPES = (
    "import subprocess, sys; subprocess.run([sys.executable, '-c', "
    "\"import sys; sys.stdout.write('ready'); sys.stdout.flush(); sys.stdin.read()\"])"
)


@pytest.mark.skipif(not PY314, reason="gh-119710: wait() returns at the exit on 3.14+")
def test_wait_returns_at_exit_though_a_grandchild_holds_the_pipes(loop_impl: Any) -> None:
    # The grandchild inherits stdin and stdout and keeps them open after the child is
    # killed, so stdout never reaches EOF; wait() still returns (CPython's
    # test_wait_even_if_pipe_is_open).
    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(
            PY, "-c", GRANDCHILD_HOLDS_PIPES,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            waiting = asyncio.create_task(proc.wait())
            await proc.stdout.readexactly(5)  # the grandchild holds the pipes
            proc.kill()
            return await asyncio.wait_for(waiting, TIMEOUT / 2)
        finally:
            proc.stdin.close()  # let the grandchild exit
            await proc.stdout.read()

    assert run(loop_impl, main) == -signal.SIGKILL


@pytest.mark.skipif(not PY314, reason="gh-127049: reap and exit are one step on 3.14+")
def test_send_signal_never_signals_a_reaped_pid(loop_impl: Any) -> None:
    # Once the child is reaped its pid may be reused: from then on send_signal() must not
    # call os.kill. CPython's test_send_signal_never_targets_reaped_pid, which watches the
    # loop's os.waitpid and os.kill calls.
    reaped: set[int] = set()
    stale_kills: list[int] = []
    real_waitpid, real_kill = os.waitpid, os.kill

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        res = real_waitpid(pid, options)
        if res[0] != 0:
            reaped.add(res[0])
        return res

    def kill(pid: int, sig: int) -> None:
        if pid in reaped:
            stale_kills.append(pid)
            return
        real_kill(pid, sig)

    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)")
        proc.kill()
        while proc.returncode is None:
            proc.kill()
            await asyncio.sleep(0)
        return await proc.wait()

    from unittest import mock

    with mock.patch("os.waitpid", waitpid), mock.patch("os.kill", kill):
        assert run(loop_impl, main) == -signal.SIGKILL
    assert reaped and stale_kills == []


@pytest.mark.skipif(not PY314, reason="3.14 closes the pipes a failed start had opened")
@pytest.mark.parametrize("failing", ["read", "write", "both"])
def test_start_cancelled_while_connecting_pipes(loop_impl: Any, failing: str) -> None:
    # connect_*_pipe cancelled: the child is killed and reaped, its pipes closed, and the
    # start raises CancelledError instead of waiting for a connection_lost that never comes.
    from unittest import mock

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if failing in ("read", "both"):
            loop.connect_read_pipe = mock.AsyncMock(  # type: ignore[method-assign]
                side_effect=asyncio.CancelledError
            )
        if failing in ("write", "both"):
            loop.connect_write_pipe = mock.AsyncMock(  # type: ignore[method-assign]
                side_effect=asyncio.CancelledError
            )
        with pytest.raises(asyncio.CancelledError):
            await asyncio.create_subprocess_exec(
                PY, "-c", "import time; time.sleep(30)",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip

    procfs = os.path.isdir("/proc/self/fd")
    fds_before = open_fds() if procfs else set()
    children_before = set(children_of_us()) if procfs else set()
    t0 = time.monotonic()
    run(loop_impl, main)
    assert time.monotonic() - t0 < TIMEOUT / 2
    gc.collect()
    if procfs:
        assert open_fds() <= fds_before
        assert set(children_of_us()) <= children_before


def test_close_after_the_loop_closed(loop_impl: Any) -> None:
    # 3.14 (gh-114177) leaves the pipes alone once the loop is closed; before, closing a
    # pipe transport raised "Event loop is closed".
    loop = loop_impl()
    try:

        async def main() -> Any:
            transport, _ = await loop.subprocess_exec(
                asyncio.SubprocessProtocol, PY, "-c", "import time; time.sleep(30)"
            )
            return transport

        transport = loop.run_until_complete(main())
        transport.kill()
    finally:
        loop.close()
    if PY314:
        transport.close()
    else:
        with pytest.raises(RuntimeError, match="Event loop is closed"):
            transport.close()
    assert transport.is_closing()
    # With the loop closed nothing reaps the child or closes the pipes: do both here. The pipe
    # transports still warn when collected, and would do so in whatever test runs then (on
    # PyPy, or on CPython where a cycle holds them), so they are collected now, quietly.
    transport.get_extra_info("subprocess").wait()
    for fd in (0, 1, 2):
        transport.get_pipe_transport(fd).get_extra_info("pipe").close()
    del transport
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        for _ in range(5):  # PyPy may need more than one pass per level of __del__
            gc.collect()


# ------------------------------------------------------------- tideloop's child watching


@pytest.fixture(params=["pidfd", "thread"])
def watching(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a tideloop test with pidfd watching, then with the waitpid-thread fallback."""
    if request.param == "pidfd" and not tsub.can_use_pidfd():
        pytest.skip("os.pidfd_open unavailable")
    if request.param == "thread":
        monkeypatch.setattr(tsub, "USE_PIDFD", False)
    yield request.param


def test_watching_modes(watching: str) -> None:
    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import sys; sys.exit(5)")
        # pidfd: the child is in the watcher's table (its pidfd watched by the loop) while
        # it runs; thread: never
        watched = len(loop._child_watcher._children)  # type: ignore[attr-defined]
        rc = await proc.wait()
        return rc, watched, len(loop._child_watcher._children)  # type: ignore[attr-defined]

    assert run(tideloop.new_event_loop, main) == (5, 1 if watching == "pidfd" else 0, 0)


@needs_proc
def test_loop_closed_with_child_running_reaps_it(watching: str) -> None:
    # asyncio's contract: the unclosed transport warns and kills the child when collected.
    # tideloop also reaps it then (no zombie), though the loop is closed.
    holder: list[Any] = []

    async def main() -> int:
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)")
        holder.append(proc)
        return proc.pid

    loop = tideloop.new_event_loop()
    try:
        pid = loop.run_until_complete(main())
    finally:
        loop.close()
    (state,) = [state for p, state in children_of_us() if p == pid]
    assert state != "Z"  # still running, not yet reaped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        holder.clear()
        gc.collect()
    assert any("unclosed transport" in str(w.message) for w in caught), caught
    # Until tideloop has reaped it: a child's state has no event we could wait on without
    # reaping it ourselves, so this polls /proc (bounded).
    deadline = time.monotonic() + 10
    while any(p == pid for p, _ in children_of_us()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(p == pid for p, _ in children_of_us())


@needs_proc
@pytest.mark.timeout(120)
def test_no_zombies_no_fd_leaks(watching: str) -> None:
    """1,000 short children in sequence, then 100 at once: nothing left behind."""
    sequential = 1000 if watching == "pidfd" else 200

    async def one() -> int:
        proc = await asyncio.create_subprocess_exec(
            TRUE, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        await proc.communicate()
        return proc.returncode

    async def main() -> None:
        for _ in range(sequential):
            assert await one() == 0
        assert await asyncio.gather(*(one() for _ in range(100))) == [0] * 100

    run(tideloop.new_event_loop, lambda: one())  # warm up lazily opened fds
    gc.collect()
    fds_before = open_fds()
    threads_before = threading.active_count()
    old_threads = set(threading.enumerate())
    with asyncio.Runner(loop_factory=tideloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(main(), 100))
    gc.collect()
    for thread in set(threading.enumerate()) - old_threads:
        thread.join(5)  # fallback threads finish just after reporting
    assert children_of_us() == []
    assert open_fds() == fds_before
    assert threading.active_count() == threads_before


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid()")
def test_waitpid_thread_leaves_the_reap_to_the_loop() -> None:
    # Thread watching: the thread sees the exit without reaping; the child stays a zombie
    # (its pid reserved, safe to signal) until the loop's thread reaps it and publishes the
    # exit in the same step (CPython's test_pid_not_reaped_before_exit_published).
    async def main() -> tuple[Any, int]:
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)")
        (thread,) = [
            t
            for t in loop._child_watcher._threads  # type: ignore[attr-defined]
            if t.name == f"tideloop-waitpid-{proc.pid}"
        ]
        proc.kill()
        thread.join(TIMEOUT)  # blocks the loop: the exit cannot be published yet
        assert not thread.is_alive()
        returncode_before = proc.returncode
        # still an unreaped zombie: waitid(WNOWAIT) would raise ChildProcessError otherwise
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        proc.kill()  # harmless: the pid is still ours
        return returncode_before, await proc.wait()

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tsub, "USE_PIDFD", False)
        assert run(tideloop.new_event_loop, main) == (None, -signal.SIGKILL)


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid()")
@needs_proc
def test_loop_closed_before_a_queued_reap_ran() -> None:
    # The thread saw the exit and queued the reap, then the loop closed (dropping the
    # queued callback): close() reaps the child, so no zombie is left.
    async def main() -> tuple[Any, threading.Thread]:
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import time; time.sleep(30)")
        (thread,) = [
            t
            for t in loop._child_watcher._threads  # type: ignore[attr-defined]
            if t.name == f"tideloop-waitpid-{proc.pid}"
        ]
        return proc, thread

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tsub, "USE_PIDFD", False)
        loop = tideloop.new_event_loop()
        try:
            proc, thread = loop.run_until_complete(main())
            proc.kill()
            thread.join(TIMEOUT)  # the reap is queued; the loop does not run again
            assert not thread.is_alive()
            assert (proc.pid, "Z") in children_of_us()
        finally:
            loop.close()
    assert not any(p == proc.pid for p, _ in children_of_us())
    assert proc.returncode is None  # the exit was never published to the transport
    transport = proc._transport  # type: ignore[attr-defined]
    assert transport._proc.returncode == -signal.SIGKILL  # Popen knows: no warning later
    transport.close()


def test_reaped_behind_our_back_reports_popen_status() -> None:
    # close() calls Popen.poll(), which may reap the child before the watcher does: the
    # status Popen read is reported, not asyncio's 255 (with a warning).
    async def main() -> int:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.subprocess_exec(
            Proto, PY, "-c", "import sys; sys.exit(9)", stdin=None, stdout=None, stderr=None
        )
        popen = transport.get_extra_info("subprocess")
        popen.wait(10)  # reaps it (blocking the loop: its watcher cannot reap it first)
        await proto.done
        transport.close()
        return transport.get_returncode()

    assert run(tideloop.new_event_loop, main) == 9


@pytest.mark.skipif(
    not hasattr(asyncio, "AbstractChildWatcher"), reason="asyncio has child watchers until 3.14"
)
def test_explicit_child_watcher_is_honoured(loop_impl: Any) -> None:
    # A watcher the program set with set_child_watcher() is used as asyncio uses it: an
    # inactive one refuses to start the child (CPython's GenericWatcherTests).
    from unittest import mock

    watcher = mock.create_autospec(asyncio.AbstractChildWatcher)
    watcher.is_active.return_value = False
    watcher.__enter__.return_value = watcher

    async def main() -> None:
        with pytest.raises(RuntimeError, match="not activated"):
            await asyncio.create_subprocess_exec(TRUE)

    policy = asyncio.get_event_loop_policy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        policy.set_child_watcher(watcher)
    try:
        run(loop_impl, main)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            policy.set_child_watcher(None)
    watcher.add_child_handler.assert_not_called()
    watcher.is_active.assert_called_once_with()


def test_poller_refusing_the_pidfd_falls_back_to_a_thread() -> None:
    # e.g. epoll's max_user_watches reached: the child is still watched (by a thread).
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        real = loop._add_reader  # type: ignore[attr-defined]

        def add_reader(fd: int, handle: Any) -> None:
            if getattr(getattr(handle, "_callback", None), "__name__", "") == "_on_pidfd_readable":
                raise OSError(28, "No space left on device")
            real(fd, handle)

        loop._add_reader = add_reader  # type: ignore[attr-defined]
        proc = await asyncio.create_subprocess_exec(PY, "-c", "import sys; sys.exit(4)")
        watched = len(loop._child_watcher._children)  # type: ignore[attr-defined]
        return await proc.wait(), watched

    before = open_fds() if os.path.isdir("/proc/self/fd") else set()
    assert run(tideloop.new_event_loop, main) == (4, 0)
    if before:
        assert open_fds() <= before
