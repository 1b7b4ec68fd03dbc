"""The subprocess transport: what loop.subprocess_exec/subprocess_shell build.

The transport is asyncio's ``BaseSubprocessTransport`` + ``_UnixSubprocessTransport``
(base_subprocess.py, unix_events.py), method for method and name for name, because the
order of the protocol's callbacks is observable and CPython's tests check it:

    start -> connection_made
          [-> pipe_data_received(fd, data)* | pipe_connection_lost(fd, exc) | process_exited]*
          -> connection_lost(None) -> end

- connection_made runs only once every pipe (stdin, then stdout, then stderr) is connected
  (by the Net layer's task, see below: each connect_*_pipe takes a pass or two). Until then, pipe
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

Children are watched by ``_net/children.py`` (the loop's layer), which calls
``_process_exited``; the pipes are connected by ``_net/subprocess.py`` through the loop's
``connect_read_pipe`` / ``connect_write_pipe`` (CPython's tests replace those on the loop and
expect the subprocess transport to use them), which hands them over with
``_pipe_connected`` and ``_pipes_connected``.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import warnings
from asyncio import protocols as _protocols
from asyncio import transports as _transports
from typing import Any

# _PY314: wait() returns at the exit (gh-119710), the reap and the exit are published in one
# step (gh-127049), send_signal() does nothing once the exit is known, and a failed start
# closes the pipes it had opened, and close() after the loop closed leaves the pipes alone.
from .._compat import PY314 as _PY314
from .._compat import logger as _logger

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
        extra: dict | None = None,
        **kwargs: Any,
    ) -> None:
        """Start the child (Popen). Its pipes are connected by the caller, through the loop
        (see the module docstring), and it is watched by the loop's child watcher."""
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

    # The pipes, connected by the loop's layer (_net/subprocess.py, connect_subprocess_pipes).

    def _pipes_to_connect(self) -> list[tuple[int, Any, Any]]:
        """(fd, pipe object, protocol factory) for each of stdin, stdout, stderr piped, in
        the order asyncio connects them."""
        proc = self._proc
        assert proc is not None
        pipes = []
        if proc.stdin is not None:
            pipes.append((0, proc.stdin, lambda: WriteSubprocessPipeProto(self, 0)))
        if proc.stdout is not None:
            pipes.append((1, proc.stdout, lambda: ReadSubprocessPipeProto(self, 1)))
        if proc.stderr is not None:
            pipes.append((2, proc.stderr, lambda: ReadSubprocessPipeProto(self, 2)))
        return pipes

    def _pipe_connected(self, fd: int, pipe_protocol: Any) -> None:
        self._pipes[fd] = pipe_protocol

    def _pipes_connected(self) -> None:
        """Every pipe is connected: connection_made, then what happened meanwhile."""
        assert self._pending_calls is not None
        loop = self._loop
        loop.call_soon(self._protocol.connection_made, self)
        for callback, data in self._pending_calls:
            loop.call_soon(callback, *data)
        self._pending_calls = None

    def _pipes_failed(self) -> None:
        """Connecting the pipes failed or was cancelled."""
        if _PY314:
            # Close any pipes that were already connected before the
            # error/cancellation to avoid leaking file descriptors.
            for proto in self._pipes.values():
                if proto is not None:
                    proto.pipe.close()
            proc = self._proc
            assert proc is not None
            for raw_pipe in (proc.stdin, proc.stdout, proc.stderr):
                if raw_pipe is not None:
                    raw_pipe.close()

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
