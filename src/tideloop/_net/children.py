"""Child watching for subprocess transports: which child exited, and with what status.

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

import os
import threading
from typing import Any

from .._compat import PY311 as _PY311
from .._compat import PY314 as _PY314
from .._compat import logger as _logger
from .._core.handles import Handle
from .._transports.subprocess import SubprocessTransport

_HAVE_WAITID = hasattr(os, "waitid")

# Tests set this to False to exercise the thread fallback.
USE_PIDFD = True
_pidfd_works: bool | None = None  # probed once per process


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
