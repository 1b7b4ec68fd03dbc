"""Subprocess transports and child watching: what loop.subprocess_exec/subprocess_shell build.

The transport is asyncio's ``BaseSubprocessTransport`` + ``_UnixSubprocessTransport``
(base_subprocess.py, unix_events.py), method for method and name for name, because the
order of the protocol's callbacks is observable and CPython's tests check it:

    start -> connection_made
          [-> pipe_data_received(fd, data)* | pipe_connection_lost(fd, exc) | process_exited]*
          -> connection_lost(None) -> end

- connection_made runs only once every pipe (stdin, then stdout, then stderr) is connected
  (``_connect_pipes``, a task: each connect_*_pipe takes a pass or two). Until then, pipe
  data, pipe closes and the exit are queued in ``_pending_calls`` and replayed, in order,
  right after connection_made.
- process_exited comes when the child is reaped, which may be before, between or after the
  pipe callbacks: the child may exit while a grandchild still holds its stdout.
- connection_lost(None) comes once the child is reaped *and* every pipe is disconnected
  (``_try_finish``); then the transport drops loop, protocol and Popen. ``wait()`` resolves
  then on 3.11-3.13, and as soon as the child is reaped on 3.14+ (gh-119710: a grandchild
  holding a pipe open no longer keeps it waiting).

Invariant: ``_pending_calls`` is a deque until connection_made is scheduled, then None.
Invariant: ``_finished`` becomes True exactly once, when ``_call_connection_lost`` is
scheduled; ``_returncode`` is not None from then on.

Deliberate differences from asyncio, all bug fixes invisible to correct programs:
- send_signal/terminate/kill use ``os.kill`` on every Python version (3.13's fix for
  CPython gh-87744): 3.11/3.12's ``Popen.send_signal`` calls ``Popen.poll()`` first, which
  can reap the child behind the watcher's back, which then reports returncode 255.
- close() tolerates PermissionError from kill (a setuid child) on 3.11 too, as 3.12+ do.
- When the child was reaped behind our back by ``Popen.poll()`` (``close()`` calls it), the
  returncode Popen read is reported instead of 255 with a warning.

Child watching
--------------
A child is watched without SIGCHLD handlers: ``os.pidfd_open(pid)`` gives an fd that turns
readable when the child terminates (Linux 5.3+); the loop watches it like any reader (an
``add_reader``-style Handle, as asyncio's PidfdChildWatcher does) and reaps the child with
``waitpid(pid, WNOHANG)``. This works in any thread, costs one fd per running child, and
never touches children that are not ours. Where pidfd_open is missing (not Linux, old
kernel) or refused (seccomp, EMFILE), one daemon thread per child blocks until it exits and
reports through call_soon_threadsafe (asyncio's ThreadedChildWatcher).

The transport learns of the exit as on the running Python's asyncio: on 3.14+ in the callback
that reaps the child, so no pass ever sees a reaped child whose exit is unknown (gh-127049:
send_signal() would signal a freed, maybe reused, pid); on 3.12 and 3.13 on the pass after the
reap (``call_soon``); on 3.11 one pass later (3.11's watcher callback "skips one iteration for
callbacks to be executed"). A waitpid thread never reaps while the loop is open, on any
version: it waits with ``waitid(WEXITED | WNOWAIT)``, which leaves the child a zombie (its pid
reserved), and the loop's thread reaps it (3.14's ThreadedChildWatcher does the same; where
``os.waitid`` is missing the thread reaps, as asyncio's did before).

When the loop closes with children still running, their pidfds are closed and each child is
handed to a reaper thread: it reaps the child when it exits (the transport's finalizer kills
a child whose transport was never closed, as asyncio's does) and records the returncode on
the Popen object, so no zombie and no "subprocess is still running" warning remain.

Things that don't work: SIGCHLD handlers (main thread only, and they reap everything:
asyncio deprecated them in 3.12); ``waitpid(-1)`` (steals other code's children);
``os.waitid(P_PIDFD)`` instead of waitpid (subprocess.Popen would not see the status).

Invariant: a pid is in ``ChildWatcher._children`` iff its pidfd is open and watched by the
loop; the pidfd is closed exactly once, after the reader is removed.
Invariant: a thread-watched child is reaped exactly once, by whoever pops it from
``_waiting`` / ``_exited`` (dict pops are atomic): the loop's thread while the loop is open,
else its waitpid thread or ``close()``.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import warnings
from asyncio import base_events as _base_events
from asyncio import protocols as _protocols
from asyncio import transports as _transports
from typing import Any

from .._core.handles import Handle

_PY311 = sys.version_info < (3, 12)
# 3.14: wait() returns at the exit (gh-119710), the reap and the exit are published in one
# step (gh-127049), send_signal() does nothing once the exit is known, and a failed start
# closes the pipes it had opened, and close() after the loop closed leaves the pipes alone.
_PY314 = sys.version_info >= (3, 14)
_HAVE_WAITID = hasattr(os, "waitid")

# Tests set this to False to exercise the thread fallback.
USE_PIDFD = True
_pidfd_works: bool | None = None  # probed once per process


def _logger() -> Any:
    # Looked up at call time: asyncio's tests patch ``asyncio.base_events.logger``.
    return _base_events.logger


def can_use_pidfd() -> bool:
    """True if os.pidfd_open works here (it may exist but be refused by a seccomp policy)."""
    global _pidfd_works
    if not USE_PIDFD or not hasattr(os, "pidfd_open"):
        return False
    if _pidfd_works is None:
        try:
            os.close(os.pidfd_open(os.getpid(), 0))
        except OSError:
            _pidfd_works = False
        else:
            _pidfd_works = True
    return _pidfd_works


# ------------------------------------------------------------------------------- transport


class SubprocessTransport(_transports.SubprocessTransport):
    """tideloop's subprocess transport (asyncio's BaseSubprocessTransport semantics)."""

    def __init__(
        self,
        loop: Any,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        waiter: Any = None,
        extra: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(extra)
        self._closed = False
        self._protocol = protocol
        self._loop = loop
        self._proc: subprocess.Popen | None = None
        self._pid: int | None = None
        self._returncode: int | None = None
        self._exit_waiters: list | None = []  # None once woken (3.14) or finished
        self._pending_calls: collections.deque | None = collections.deque()
        # fd (0, 1, 2) -> its pipe protocol; None until the pipe is connected.
        self._pipes: dict[int, Any] = {}
        self._finished = False

        if stdin == subprocess.PIPE:
            self._pipes[0] = None
        if stdout == subprocess.PIPE:
            self._pipes[1] = None
        if stderr == subprocess.PIPE:
            self._pipes[2] = None

        # Create the child process: set the _proc attribute
        try:
            self._start(
                args=args,
                shell=shell,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                bufsize=bufsize,
                **kwargs,
            )
        except:  # noqa: E722 (asyncio's bare except: close on anything, re-raise)
            self.close()
            raise

        self._pid = self._proc.pid
        self._extra["subprocess"] = self._proc

        if self._loop.get_debug():
            program = args if isinstance(args, (bytes, str)) else args[0]
            _logger().debug("process %r created: pid %s", program, self._pid)

        self._loop.create_task(self._connect_pipes(waiter))

    def _start(
        self,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        **kwargs: Any,
    ) -> None:
        """Create the Popen (asyncio's _UnixSubprocessTransport._start)."""
        stdin_w = None
        if stdin == subprocess.PIPE and sys.platform.startswith("aix"):
            # Use a socket pair for stdin on AIX, since it does not support selecting read
            # events on the write end of a socket (which we use in order to detect closing
            # of the other end).
            import socket

            stdin, stdin_w = socket.socketpair()
        try:
            self._proc = subprocess.Popen(
                args,
                shell=shell,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                universal_newlines=False,
                bufsize=bufsize,
                **kwargs,
            )
            if stdin_w is not None:
                stdin.close()
                self._proc.stdin = open(stdin_w.detach(), "wb", buffering=bufsize)  # noqa: SIM115
                stdin_w = None
        finally:
            if stdin_w is not None:
                stdin.close()
                stdin_w.close()

    def __repr__(self) -> str:
        info = [self.__class__.__name__]
        if self._closed:
            info.append("closed")
        if self._pid is not None:
            info.append(f"pid={self._pid}")
        if self._returncode is not None:
            info.append(f"returncode={self._returncode}")
        elif self._pid is not None:
            info.append("running")
        else:
            info.append("not started")

        stdin = self._pipes.get(0)
        if stdin is not None:
            info.append(f"stdin={stdin.pipe}")

        stdout = self._pipes.get(1)
        stderr = self._pipes.get(2)
        if stdout is not None and stderr is stdout:
            info.append(f"stdout=stderr={stdout.pipe}")
        else:
            if stdout is not None:
                info.append(f"stdout={stdout.pipe}")
            if stderr is not None:
                info.append(f"stderr={stderr.pipe}")

        return "<{}>".format(" ".join(info))

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the pipes; kill the child if it still runs (it is reaped by the watcher)."""
        if self._closed:
            return
        self._closed = True

        for proto in self._pipes.values():
            if proto is None:
                continue
            if _PY314 and (self._loop is None or self._loop.is_closed()):
                # gh-114177: the loop closed (e.g. just after the child was killed); closing
                # a pipe transport would raise "Event loop is closed".
                continue
            proto.pipe.close()

        if (
            self._proc is not None
            # has the child process finished?
            and self._returncode is None
            # the child process has finished, but the transport hasn't been notified yet?
            and self._proc.poll() is None
        ):
            if self._loop is not None and self._loop.get_debug():
                _logger().warning("Close running child process: kill %r", self)

            try:
                self._proc.kill()
            except (ProcessLookupError, PermissionError):
                # the process may have already exited or may be running setuid
                pass

            # Don't clear the _proc reference yet: _post_init() may still run

    def __del__(self, _warn: Any = warnings.warn) -> None:
        if not self._closed:
            _warn(f"unclosed transport {self!r}", ResourceWarning, source=self)
            self.close()

    def get_pid(self) -> int | None:
        return self._pid

    def get_returncode(self) -> int | None:
        return self._returncode

    def get_pipe_transport(self, fd: int) -> Any:
        if fd in self._pipes:
            return self._pipes[fd].pipe
        return None

    def _check_proc(self) -> None:
        if self._proc is None:
            raise ProcessLookupError()

    def send_signal(self, signal: int) -> None:
        self._check_proc()
        if _PY314 and self._returncode is not None:
            # The process already exited: its pid may be reused.
            return
        try:
            os.kill(self._proc.pid, signal)  # type: ignore[union-attr]
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def _connect_pipes(self, waiter: Any) -> None:
        try:
            proc = self._proc
            loop = self._loop

            if proc.stdin is not None:
                _, pipe = await loop.connect_write_pipe(
                    lambda: WriteSubprocessPipeProto(self, 0), proc.stdin
                )
                self._pipes[0] = pipe

            if proc.stdout is not None:
                _, pipe = await loop.connect_read_pipe(
                    lambda: ReadSubprocessPipeProto(self, 1), proc.stdout
                )
                self._pipes[1] = pipe

            if proc.stderr is not None:
                _, pipe = await loop.connect_read_pipe(
                    lambda: ReadSubprocessPipeProto(self, 2), proc.stderr
                )
                self._pipes[2] = pipe

            assert self._pending_calls is not None

            loop.call_soon(self._protocol.connection_made, self)
            for callback, data in self._pending_calls:
                loop.call_soon(callback, *data)
            self._pending_calls = None
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            if _PY314:
                # Close any pipes that were already connected before the
                # error/cancellation to avoid leaking file descriptors.
                for proto in self._pipes.values():
                    if proto is not None:
                        proto.pipe.close()
                for raw_pipe in (proc.stdin, proc.stdout, proc.stderr):
                    if raw_pipe is not None:
                        raw_pipe.close()
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)

    def _call(self, cb: Any, *data: Any) -> None:
        if self._pending_calls is not None:
            self._pending_calls.append((cb, data))
        else:
            self._loop.call_soon(cb, *data)

    def _pipe_connection_lost(self, fd: int, exc: BaseException | None) -> None:
        self._call(self._protocol.pipe_connection_lost, fd, exc)
        self._try_finish()

    def _pipe_data_received(self, fd: int, data: bytes) -> None:
        self._call(self._protocol.pipe_data_received, fd, data)

    def _process_exited(self, returncode: int) -> None:
        assert returncode is not None, returncode
        assert self._returncode is None, self._returncode
        if self._loop.get_debug():
            _logger().info("%r exited with return code %r", self, returncode)
        self._returncode = returncode
        if self._proc.returncode is None:
            # The watcher reaped the child: copy the status into the Popen object (else
            # Popen.__del__ warns that the process is still running).
            self._proc.returncode = returncode
        self._call(self._protocol.process_exited)

        self._try_finish()

        if _PY314:
            # gh-119710: Wake up futures waiting for wait() as soon as the process
            # exits.
            self._wake_exit_waiters()

    def _wake_exit_waiters(self) -> None:
        for waiter in self._exit_waiters:
            if not waiter.done():
                waiter.set_result(self._returncode)
        self._exit_waiters = None

    async def _wait(self) -> int:
        """Wait until the process exit and return the process return code."""
        if self._returncode is not None:
            return self._returncode

        waiter = self._loop.create_future()
        waiters = self._exit_waiters
        waiters.append(waiter)
        try:
            return await waiter
        finally:
            # A cancelled wait() leaves nothing behind (3.14 does the same with its set).
            if self._exit_waiters is not None:
                waiters.remove(waiter)

    def _try_finish(self) -> None:
        assert not self._finished
        if self._returncode is None:
            return
        if all(p is not None and p.disconnected for p in self._pipes.values()):
            self._finished = True
            self._call(self._call_connection_lost, None)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            if self._exit_waiters is not None:
                # wake up futures waiting for wait() (3.11-3.13; 3.14 did at the exit)
                self._wake_exit_waiters()
            self._loop = None
            self._proc = None
            self._protocol = None


class WriteSubprocessPipeProto(_protocols.BaseProtocol):
    """The protocol of the child's stdin pipe: forwards flow control and the close."""

    def __init__(self, proc: SubprocessTransport, fd: int) -> None:
        self.proc: Any = proc
        self.fd = fd
        self.pipe: Any = None
        self.disconnected = False

    def connection_made(self, transport: Any) -> None:
        self.pipe = transport

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} fd={self.fd} pipe={self.pipe!r}>"

    def connection_lost(self, exc: BaseException | None) -> None:
        self.disconnected = True
        self.proc._pipe_connection_lost(self.fd, exc)
        self.proc = None

    def pause_writing(self) -> None:
        self.proc._protocol.pause_writing()

    def resume_writing(self) -> None:
        self.proc._protocol.resume_writing()


class ReadSubprocessPipeProto(WriteSubprocessPipeProto, _protocols.Protocol):
    """The protocol of the child's stdout or stderr pipe."""

    def data_received(self, data: bytes) -> None:
        self.proc._pipe_data_received(self.fd, data)


# ----------------------------------------------------------------------------- child watcher


def _notify_exit(loop: Any, transp: SubprocessTransport, returncode: int) -> None:
    """From the loop's thread, just after the reap: deliver the exit as the running Python's
    asyncio would (see the module docstring)."""
    if _PY314:
        transp._process_exited(returncode)
    elif _PY311:
        loop.call_soon(loop.call_soon, transp._process_exited, returncode)
    else:
        loop.call_soon(transp._process_exited, returncode)


def _wait_exited(pid: int) -> None:
    """Block until ``pid`` has terminated, without reaping it (it stays a zombie).

    Returns at once if the child was reaped by someone else (ChildProcessError).
    """
    try:
        while True:
            res = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            # On macOS, waitid() with WEXITED also reports stopped children (CLD_STOPPED):
            # consume the stop notification and wait for the real termination.
            if res is not None and res.si_code == os.CLD_STOPPED:
                os.waitid(os.P_PID, pid, os.WSTOPPED | os.WNOHANG)
                continue
            return
    except ChildProcessError:
        return


def _reap(pid: int, proc: Any) -> int:
    """Reap ``pid``, which has terminated; return its returncode."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return _returncode_after_echild(proc, pid)
    return os.waitstatus_to_exitcode(status)


def _returncode_after_echild(proc: Any, pid: int) -> int:
    """The child was reaped by someone else: Popen's status if it was Popen, else 255."""
    if proc is not None and proc.returncode is not None:
        return proc.returncode  # Popen.poll() (called by close()) reaped it
    _logger().warning(
        "child process pid %d exit status already read:  will report returncode 255", pid
    )
    return 255


class ChildWatcher:
    """One loop's running children, each watched by a pidfd or by a waitpid thread.

    ``add`` must be called in the loop's thread; ``close`` after the loop closed.
    """

    __slots__ = ("_loop", "_children", "_waiting", "_exited", "_threads")

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        # pid -> (transport, pidfd); see the module docstring's invariant.
        self._children: dict[int, tuple[SubprocessTransport, int]] = {}
        # pid -> transport, for thread-watched children still running while the loop is open.
        self._waiting: dict[int, SubprocessTransport] = {}
        # pid -> transport, for thread-watched children that terminated and wait, unreaped,
        # for the loop's thread to reap them (_reap_and_notify).
        self._exited: dict[int, SubprocessTransport] = {}
        self._threads: set[threading.Thread] = set()

    def add(self, transp: SubprocessTransport) -> None:
        """Start watching transp's child; its exit reaches transp._process_exited."""
        pid = transp._pid
        assert pid is not None and pid not in self._children, pid
        pidfd = -1
        if can_use_pidfd():
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # EMFILE, or refused: fall back to a thread
                pidfd = -1
        if pidfd < 0:
            self._start_thread(pid, transp._proc, transp)
            return
        self._children[pid] = (transp, pidfd)
        try:
            self._loop._add_reader(pidfd, Handle(self._on_pidfd_readable, (pid,), self._loop, None))
        except OSError:  # the poller refused it (epoll's max_user_watches): use a thread
            del self._children[pid]
            os.close(pidfd)
            self._start_thread(pid, transp._proc, transp)
        except BaseException:
            del self._children[pid]
            os.close(pidfd)
            raise

    def _on_pidfd_readable(self, pid: int) -> None:
        entry = self._children.get(pid)
        if entry is None:
            return
        transp, pidfd = entry
        try:
            wpid, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            returncode = _returncode_after_echild(transp._proc, pid)
        else:
            if wpid == 0:
                return  # not terminated yet (a spurious wakeup): keep watching
            returncode = os.waitstatus_to_exitcode(status)
            if self._loop.get_debug():
                _logger().debug("process %s exited with returncode %s", pid, returncode)
        del self._children[pid]
        self._loop._remove_reader(pidfd)
        os.close(pidfd)
        _notify_exit(self._loop, transp, returncode)

    def _start_thread(self, pid: int, proc: Any, transp: SubprocessTransport | None) -> None:
        """Reap pid in a daemon thread; report to the loop while transp is in ``_waiting``.

        The thread itself holds only the Popen: once the loop closed (``close`` empties
        ``_waiting``) nothing here keeps the transport alive, so that its finalizer can kill
        the child, as with pidfd watching.
        """
        if transp is not None:
            self._waiting[pid] = transp
        thread = threading.Thread(
            target=self._wait_in_thread,
            name=f"tideloop-waitpid-{pid}",
            args=(pid, proc),
            daemon=True,
        )
        self._threads.add(thread)
        thread.start()

    def _wait_in_thread(self, pid: int, proc: Any) -> None:
        loop = self._loop
        try:
            if not _HAVE_WAITID:
                self._wait_and_reap_in_thread(pid, proc)
                return
            _wait_exited(pid)
            transp = self._waiting.pop(pid, None)
            if transp is not None:
                # The loop's thread reaps it: the pid stays reserved until the exit is known.
                self._exited[pid] = transp
                try:
                    loop.call_soon_threadsafe(self._reap_and_notify, pid)
                    return
                except RuntimeError:  # the loop closed meanwhile
                    if self._exited.pop(pid, None) is None:
                        return  # close() reaped it
            returncode = _reap(pid, proc)
            if proc.returncode is None:
                proc.returncode = returncode
        finally:
            self._threads.discard(threading.current_thread())

    def _reap_and_notify(self, pid: int) -> None:
        """In the loop's thread: reap a terminated thread-watched child, publish its exit."""
        transp = self._exited.pop(pid, None)
        if transp is None:
            return
        returncode = _reap(pid, transp._proc)
        if self._loop.get_debug():
            _logger().debug("process %s exited with returncode %s", pid, returncode)
        _notify_exit(self._loop, transp, returncode)

    def _wait_and_reap_in_thread(self, pid: int, proc: Any) -> None:
        """Where waitid() is missing: reap in the thread, then tell the loop (asyncio's way,
        with a pass in which the pid is already free)."""
        loop = self._loop
        returncode = _reap(pid, proc)
        transp = self._waiting.pop(pid, None)
        if transp is not None:
            if loop.get_debug():
                _logger().debug("process %s exited with returncode %s", pid, returncode)
            try:
                loop.call_soon_threadsafe(_notify_exit, loop, transp, returncode)
                return
            except RuntimeError:  # the loop closed meanwhile
                pass
        if proc.returncode is None:
            proc.returncode = returncode

    def close(self) -> None:
        """The loop closed: stop watching; reap the children still running in threads."""
        self._waiting.clear()
        # Terminated children whose reap was queued on the loop, which dropped the callback.
        while self._exited:
            try:
                pid, transp = self._exited.popitem()
            except KeyError:  # a thread popped the last one meanwhile
                break
            proc = transp._proc
            if proc is not None:
                returncode = _reap(pid, proc)
                if proc.returncode is None:
                    proc.returncode = returncode
        children = list(self._children.items())
        self._children.clear()
        for pid, (transp, pidfd) in children:
            os.close(pidfd)
            self._start_thread(pid, transp._proc, None)
