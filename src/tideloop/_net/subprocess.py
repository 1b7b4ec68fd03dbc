"""subprocess_exec and subprocess_shell, as asyncio's base_events and unix_events (3.11+).

Arguments are checked exactly as asyncio checks them (ValueError for universal_newlines,
text, encoding, errors, a bufsize other than 0, and shell= contradicting the method); every
other keyword goes to ``subprocess.Popen`` untouched, so whatever Popen accepts on this
Python (cwd, env, start_new_session, process_group, user, group, extra_groups, umask,
pass_fds, close_fds, preexec_fn, ...) works, and what it rejects raises Popen's exception.

Children are watched by the loop itself (``children.py``: pidfd, else a
thread), not by asyncio's policy child watcher, so subprocesses work in any thread and
need no SIGCHLD handler. One exception keeps tideloop a drop-in on 3.11-3.13: a watcher
that the program installed explicitly with ``asyncio.set_child_watcher()`` (a SIGCHLD
watcher such as SafeChildWatcher or FastChildWatcher, which reap children themselves, or
one of its own) is used as asyncio's loop uses it. asyncio's PidfdChildWatcher and
ThreadedChildWatcher are not needed: tideloop's own watching does what they do.
"""

from __future__ import annotations

import subprocess
from asyncio import base_events as _aio_base_events
from asyncio import events as _events
from asyncio import tasks as _tasks
from typing import TYPE_CHECKING, Any

from .._compat import PY311 as _PY311
from .._compat import PY314 as _PY314
from .._compat import logger as _logger
from .._transports.subprocess import SubprocessTransport
from .children import ChildWatcher

if TYPE_CHECKING:
    from .._api import LoopAPI

# asyncio's private helper (not in typeshed, so reached through an untyped name).
_base_events: Any = _aio_base_events
_format_pipe = _base_events._format_pipe


def _explicit_child_watcher() -> Any:
    """The child watcher the program set on asyncio's policy, if it needs honouring, else None.

    Reads the policy's attribute instead of calling get_child_watcher(), which would create
    a default watcher (and warns on 3.12+). Always None where asyncio has no watchers (3.14+).
    """
    policy = getattr(_events, "_event_loop_policy", None)
    watcher = getattr(policy, "_watcher", None)
    if watcher is None:
        return None
    from asyncio import unix_events

    own = tuple(
        getattr(unix_events, name)
        for name in ("PidfdChildWatcher", "ThreadedChildWatcher")
        if hasattr(unix_events, name)
    )
    if isinstance(watcher, own):
        return None
    return watcher


def _check_popen_args(
    universal_newlines: Any,
    shell: Any,
    want_shell: bool,
    bufsize: Any,
    text: Any,
    encoding: Any,
    errors: Any,
) -> None:
    """asyncio's checks, in asyncio's order (the first failing one names the error)."""
    if universal_newlines:
        raise ValueError("universal_newlines must be False")
    if want_shell and not shell:
        raise ValueError("shell must be True")
    if not want_shell and shell:
        raise ValueError("shell must be False")
    if bufsize != 0:
        raise ValueError("bufsize must be 0")
    if text:
        raise ValueError("text must be False")
    if encoding is not None:
        raise ValueError("encoding must be None")
    if errors is not None:
        raise ValueError("errors must be None")


class SubprocessMixin:
    """Subprocesses on the loop: ``subprocess_exec`` / ``subprocess_shell``."""

    __slots__ = ()

    _child_watcher: ChildWatcher | None = None  # made on the first subprocess

    async def subprocess_shell(
        self: LoopAPI,
        protocol_factory: Any,
        cmd: Any,
        *,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = True,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run ``cmd`` in the shell; return (transport, protocol) once connection_made ran."""
        if not isinstance(cmd, (bytes, str)):
            raise ValueError("cmd must be a string")
        _check_popen_args(universal_newlines, shell, True, bufsize, text, encoding, errors)
        return await self._start_subprocess(
            protocol_factory, cmd, True, f"run shell command {cmd!r}",
            stdin, stdout, stderr, bufsize, kwargs,
        )  # fmt: skip

    async def subprocess_exec(
        self: LoopAPI,
        protocol_factory: Any,
        program: Any,
        *args: Any,
        stdin: Any = subprocess.PIPE,
        stdout: Any = subprocess.PIPE,
        stderr: Any = subprocess.PIPE,
        universal_newlines: bool = False,
        shell: bool = False,
        bufsize: int = 0,
        encoding: Any = None,
        errors: Any = None,
        text: Any = None,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """Run ``program`` with ``args``; return (transport, protocol) once connection_made ran."""
        _check_popen_args(universal_newlines, shell, False, bufsize, text, encoding, errors)
        return await self._start_subprocess(
            protocol_factory, (program, *args), False, f"execute program {program!r}",
            stdin, stdout, stderr, bufsize, kwargs,
        )  # fmt: skip

    async def _start_subprocess(
        self: LoopAPI,
        protocol_factory: Any,
        popen_args: Any,
        shell: bool,
        debug_log: str,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        kwargs: dict,
    ) -> tuple[Any, Any]:
        """The common tail of subprocess_shell/subprocess_exec (asyncio's, with its logging)."""
        protocol = protocol_factory()
        debug = self._debug
        if debug:
            # don't log parameters: they may contain sensitive information
            # (password) and may be too long
            self._log_subprocess(debug_log, stdin, stdout, stderr)
        transport = await self._make_subprocess_transport(
            protocol, popen_args, shell, stdin, stdout, stderr, bufsize, **kwargs
        )
        if debug:
            _logger().info("%s: %r", debug_log, transport)
        return transport, protocol

    def _log_subprocess(self, msg: str, stdin: Any, stdout: Any, stderr: Any) -> None:
        info = [msg]
        if stdin is not None:
            info.append(f"stdin={_format_pipe(stdin)}")
        if stdout is not None and stderr == subprocess.STDOUT:
            info.append(f"stdout=stderr={_format_pipe(stdout)}")
        else:
            if stdout is not None:
                info.append(f"stdout={_format_pipe(stdout)}")
            if stderr is not None:
                info.append(f"stderr={_format_pipe(stderr)}")
        _logger().debug(" ".join(info))

    async def _make_subprocess_transport(
        self: LoopAPI,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict | None = None,
        **kwargs: Any,
    ) -> SubprocessTransport:
        """Start the child and watch it; return the transport once connection_made ran.

        If waiting is interrupted (cancelled) or connecting the pipes fails, the transport is
        closed (the child killed) and reaped before the exception propagates.
        """
        watcher = _explicit_child_watcher()
        if watcher is not None:
            return await self._make_subprocess_transport_watched(
                watcher, protocol, args, shell, stdin, stdout, stderr, bufsize, extra, **kwargs
            )
        waiter = self.create_future()
        transp = SubprocessTransport(
            self, protocol, args, shell, stdin, stdout, stderr, bufsize, extra=extra, **kwargs
        )
        self.create_task(self._connect_subprocess_pipes(transp, waiter))
        child_watcher = self._child_watcher
        if child_watcher is None:
            child_watcher = self._child_watcher = ChildWatcher(self)
        child_watcher.add(transp)
        try:
            await waiter
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException:
            transp.close()
            if _PY314:
                # The exit wakes _wait() on 3.14, even if the pipes never connected.
                await _tasks.shield(transp._wait())
            else:
                await transp._wait()
            raise
        return transp

    async def _make_subprocess_transport_watched(
        self: LoopAPI,
        watcher: Any,
        protocol: Any,
        args: Any,
        shell: bool,
        stdin: Any,
        stdout: Any,
        stderr: Any,
        bufsize: int,
        extra: dict | None,
        **kwargs: Any,
    ) -> SubprocessTransport:
        """asyncio's _make_subprocess_transport, with the program's own watcher."""
        with watcher as entered:
            if _PY311:
                watcher = entered  # 3.11 uses what __enter__ returns; 3.12+ the watcher
            if not watcher.is_active():
                # Check early.
                # Raising exception before process creation
                # prevents subprocess execution if the watcher
                # is not ready to handle it.
                raise RuntimeError(
                    "asyncio.get_child_watcher() is not activated, "
                    "subprocess support is not installed."
                )
            waiter = self.create_future()
            transp = SubprocessTransport(
                self, protocol, args, shell, stdin, stdout, stderr, bufsize, extra=extra, **kwargs
            )
            self.create_task(self._connect_subprocess_pipes(transp, waiter))
            watcher.add_child_handler(transp.get_pid(), self._child_watcher_callback, transp)
            try:
                await waiter
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                transp.close()
                await transp._wait()
                raise
        return transp

    async def _connect_subprocess_pipes(
        self: LoopAPI, transp: SubprocessTransport, waiter: Any
    ) -> None:
        """Connect the child's pipes through connect_write_pipe / connect_read_pipe (asyncio's
        _connect_pipes: CPython's tests replace those methods on the loop), then resolve
        ``waiter`` once connection_made is scheduled (with the error if one failed)."""
        try:
            for fd, pipe, protocol_factory in transp._pipes_to_connect():
                if fd == 0:
                    _, protocol = await self.connect_write_pipe(protocol_factory, pipe)
                else:
                    _, protocol = await self.connect_read_pipe(protocol_factory, pipe)
                transp._pipe_connected(fd, protocol)
            transp._pipes_connected()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            transp._pipes_failed()
            if waiter is not None and not waiter.cancelled():
                waiter.set_exception(exc)
        else:
            if waiter is not None and not waiter.cancelled():
                waiter.set_result(None)

    def _child_watcher_callback(self: LoopAPI, pid: int, returncode: int, transp: Any) -> None:
        """What asyncio's child watchers call, from any thread (asyncio's private API)."""
        if _PY314:
            transp._process_exited(returncode)
        elif _PY311:
            # Skip one iteration for callbacks to be executed
            self.call_soon_threadsafe(self.call_soon, transp._process_exited, returncode)
        else:
            self.call_soon_threadsafe(transp._process_exited, returncode)

    def _close_subprocesses(self) -> None:
        """After the loop closed: hand the children still running to reaper threads."""
        child_watcher = self._child_watcher
        if child_watcher is not None:
            child_watcher.close()
