"""The tools around asyncio of 3.14+, and asyncio's policy deprecation, on tideloop.

- Task inspection (3.14+, skipped below): ``python -m asyncio ps PID`` / ``pstree PID`` read
  a running program's tasks from outside (``_remote_debugging``), and
  ``asyncio.capture_call_graph()`` / ``print_call_graph()`` walk the await chain from inside.
  Both work on asyncio's own ``Task`` objects and on the thread's running loop/task, so
  tideloop must create real ``asyncio.Task`` objects and enter/leave them like asyncio does.
  The remote tests run a child program whose named tasks await each other (root -> middle
  -> leaf, plus a TaskGroup sibling), on tideloop and, as the control, on asyncio's own loop,
  and want the same table and tree from both.
- No DeprecationWarning (all versions): ``import tideloop``, ``tideloop.run()``,
  ``asyncio.run(..., loop_factory=tideloop.new_event_loop)``, ``asyncio.Runner(...)``,
  ``python -m tideloop``, and a program using signal handlers in debug mode run under
  ``-W error`` (the last beside the same program on asyncio's loop, the control).
- Policies: ``tideloop.EventLoopPolicy`` works where asyncio has policies (3.11-3.15; on
  3.14+ installing it warns exactly as asyncio's own policies do) and is absent, with an
  error saying what to use, where asyncio removed them (3.16). 3.16 is not released, so that
  case runs on this interpreter's asyncio stripped of its policies (``NO_POLICIES``).

Remote inspection reads another process's memory (process_vm_readv), which needs ptrace
access to it: the same user and a permissive ``kernel.yama.ptrace_scope``, or
CAP_SYS_PTRACE. Those tests skip only when the tool failed *and* this process is refused
reading the child's memory the same way (EPERM/EACCES), and the reason says what the machine
allows. (The tool does not always say so itself: a refused /proc/PID/maps comes out as
"Failed to find the PyRuntime section".)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import tideloop

TIMEOUT = 30

needs_314 = pytest.mark.skipif(
    sys.version_info < (3, 14),
    reason="task inspection (python -m asyncio ps/pstree, asyncio.capture_call_graph) "
    "is new in Python 3.14",
)


def python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with args; the result, whatever the exit status."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def parse(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)


# ------------------------------------------------------------------ remote task inspection
# Named tasks awaiting each other: tl-root awaits tl-middle, which waits in a TaskGroup for
# tl-worker and tl-leaf. "ready" is printed once every task is suspended, with the loop's
# package. argv[1]: "tideloop" (loop_factory), "asyncio" (the control) or "default" (what
# asyncio.run() makes: tideloop under python -m tideloop).
TASKS_PROGRAM = """\
import asyncio, sys

async def worker_coro():
    await asyncio.sleep(120)

async def leaf_coro():
    loop = asyncio.get_running_loop()
    # Runs after this task and all the others are suspended.
    kind = type(loop).__module__.split(".")[0]
    loop.call_soon(lambda: print("ready", kind, flush=True))
    await asyncio.sleep(120)

async def middle_coro():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(worker_coro(), name="tl-worker")
        tg.create_task(leaf_coro(), name="tl-leaf")

async def root_coro():
    asyncio.current_task().set_name("tl-root")
    await asyncio.create_task(middle_coro(), name="tl-middle")

if sys.argv[1] == "tideloop":
    import tideloop
    asyncio.run(root_coro(), loop_factory=tideloop.new_event_loop)
else:
    asyncio.run(root_coro())
"""


@contextlib.contextmanager
def running_tasks_program(tmp_path: Path, how: str) -> Iterator[int]:
    """Start TASKS_PROGRAM (how: tideloop | asyncio | python -m tideloop); yield its pid once
    all its tasks wait, after checking it runs on the loop meant; kill it on exit."""
    script = tmp_path / "tasks_program.py"
    script.write_text(TASKS_PROGRAM)
    args = {
        "tideloop": [str(script), "tideloop"],
        "asyncio": [str(script), "asyncio"],
        "python -m tideloop": ["-m", "tideloop", str(script), "default"],
    }[how]
    # The pid must be the interpreter's own (no shell in between): the tools read its memory.
    proc = subprocess.Popen(
        [sys.executable, *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        readable, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        line = proc.stdout.readline() if readable else ""
        if not line:
            proc.kill()
            pytest.fail(f"the program did not get ready: {proc.stderr.read()}")
        assert line.split() == ["ready", "asyncio" if how == "asyncio" else "tideloop"]
        yield proc.pid
        assert proc.poll() is None, "the program ended while being inspected"
    finally:
        proc.kill()
        proc.wait(TIMEOUT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _ptrace_facts() -> str:
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
    except OSError:
        scope = "unset (no Yama)"
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
        status = dict(line.split(":", 1) for line in lines if ":" in line)
        cap = "yes" if int(status["CapEff"], 16) & (1 << 19) else "no"  # CAP_SYS_PTRACE = 19
    except (OSError, KeyError, ValueError):
        cap = "unknown"
    return f"euid {os.geteuid()}, kernel.yama.ptrace_scope {scope}, CAP_SYS_PTRACE {cap}"


def memory_access_error(pid: int) -> OSError | None:
    """Why this process may not read pid's memory as the tools do (process_vm_readv of a
    readable mapping), or None if it may."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    except OSError as exc:
        return exc
    start = next(int(line.split("-", 1)[0], 16) for line in maps if line.split()[1][0] == "r")

    class IOVec(ctypes.Structure):
        _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8)
    local, remote = IOVec(ctypes.addressof(buf), 8), IOVec(start, 8)
    if libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) == 8:
        return None
    err = ctypes.get_errno()
    return OSError(err, os.strerror(err))


def inspect_tasks(command: str, pid: int) -> str:
    """``python -m asyncio <command> <pid>``'s output. Skips the test when, and only when, the
    tool failed and this process is denied reading pid's memory (EPERM/EACCES)."""
    result = python("-m", "asyncio", command, str(pid))
    output = result.stdout + result.stderr
    if result.returncode != 0:
        denied = memory_access_error(pid)
        if isinstance(denied, PermissionError):
            pytest.skip(
                f"python -m asyncio {command} may not read another process here: {denied} "
                f"({_ptrace_facts()})"
            )
    assert result.returncode == 0, output
    assert result.stderr == ""
    return result.stdout


def ps_rows(stdout: str) -> list[tuple[str, ...]]:
    """The table of ``asyncio ps`` without thread and task ids (they differ per run):
    (task name, coroutine stack, awaiter chain, awaiter name) per row, sorted.

    Columns are padded to fixed widths but a long value pushes the rest along, so a row is
    read as tokens: ids, the task name, then frame names joined by "->" (a chain ends where
    two names meet without an arrow), then the awaiter's name. No name here has a space.
    """
    header, rule, *rows = stdout.splitlines()
    assert header.split()[:3] == ["tid", "task", "id"] and set(rule) == {"-"}
    table = []
    for row in rows:
        _tid, task_id, name, *middle, awaiter_id = row.split()
        assert task_id.startswith("0x") and awaiter_id.startswith("0x"), row
        chains: list[list[str]] = []
        arrow = False
        for token in middle:
            if token == "->":
                arrow = True
            elif arrow:
                chains[-1].append(token)
                arrow = False
            else:
                chains.append([token])
        fields = [" -> ".join(chain) for chain in chains]
        if awaiter_id == "0x0":
            assert len(fields) == 1, row  # the coroutine stack, no awaiter
            fields += ["", ""]
        else:
            assert len(fields) == 3 and " " not in fields[2], row
        table.append((name, *fields))
    return sorted(table)


Tree = tuple[str, tuple["Tree", ...]]


def pstree(stdout: str) -> tuple[Tree, ...]:
    """The forest printed by ``asyncio pstree`` as nested (label, children) tuples, children
    sorted, so that sibling order (the order tasks were listed in) does not matter."""
    stack: list[tuple[int, str, list[Tree]]] = [(-1, "", [])]

    def close() -> None:
        _, label, kids = stack.pop()
        stack[-1][2].append((label, tuple(sorted(kids))))

    for line in stdout.splitlines():
        branch = max(line.find("└── "), line.find("├── "))
        assert branch >= 0 and branch % 4 == 0, line
        depth = branch // 4
        while stack[-1][0] >= depth:
            close()
        stack.append((depth, line[branch + 4 :].strip(), []))
    while len(stack) > 1:
        close()
    return tuple(sorted(stack[0][2]))


def find(forest: tuple[Tree, ...], label: str) -> Tree:
    for node in forest:
        if node[0] == label:
            return node
        with contextlib.suppress(LookupError):
            return find(node[1], label)
    raise LookupError(label)


@needs_314
@pytest.mark.parametrize("how", ["tideloop", "python -m tideloop"])
def test_asyncio_ps_lists_the_tasks_of_a_tideloop_program(tmp_path: Path, how: str) -> None:
    with running_tasks_program(tmp_path, how) as pid:
        rows = ps_rows(inspect_tasks("ps", pid))
    by_name = {row[0]: row for row in rows}
    assert set(by_name) == {"tl-root", "tl-middle", "tl-worker", "tl-leaf"}
    # Each row: (name, coroutine stack innermost first, awaiter chain, awaiter name).
    assert by_name["tl-root"][1:] == ("root_coro", "", "")
    assert by_name["tl-middle"][1].endswith("middle_coro")
    assert by_name["tl-middle"][2:] == ("root_coro", "tl-root")
    assert by_name["tl-leaf"][1] == "sleep -> leaf_coro"
    assert by_name["tl-leaf"][3] == "tl-middle"
    assert by_name["tl-worker"][1] == "sleep -> worker_coro"
    assert by_name["tl-worker"][3] == "tl-middle"
    with running_tasks_program(tmp_path, "asyncio") as pid:
        assert ps_rows(inspect_tasks("ps", pid)) == rows


@needs_314
@pytest.mark.parametrize("how", ["tideloop", "python -m tideloop"])
def test_asyncio_pstree_shows_the_await_tree_of_a_tideloop_program(
    tmp_path: Path, how: str
) -> None:
    with running_tasks_program(tmp_path, how) as pid:
        forest = pstree(inspect_tasks("pstree", pid))
    script = tmp_path / "tasks_program.py"
    (root,) = forest
    assert root[0] == "(T) tl-root"
    (root_frame,) = root[1]
    assert root_frame[0].startswith(f"root_coro {script}:")
    assert [kid[0] for kid in root_frame[1]] == ["(T) tl-middle"]
    middle = find(forest, "(T) tl-middle")
    for name in ("leaf", "worker"):
        task = find(middle[1], f"(T) tl-{name}")  # tl-middle awaits it (TaskGroup frames)
        ((frame, (sleep,)),) = task[1]
        assert frame.startswith(f"{name}_coro {script}:")
        assert sleep[0].startswith("sleep ") and sleep[0].endswith(tuple("0123456789"))
    with running_tasks_program(tmp_path, "asyncio") as pid:
        assert pstree(inspect_tasks("pstree", pid)) == forest


# ------------------------------------------------------------ call graph from inside
@needs_314
def test_capture_call_graph_follows_the_await_chain(loop_impl: object) -> None:
    # tl-root awaits tl-middle, which awaits tl-leaf; tl-observer looks at tl-leaf from
    # outside while it waits, then lets it finish.
    seen: dict[str, object] = {}

    async def leaf_coro(done: asyncio.Event) -> None:
        seen["inside"] = asyncio.capture_call_graph()
        seen["printed"] = asyncio.format_call_graph()
        await done.wait()

    async def middle_coro(done: asyncio.Event) -> None:
        await asyncio.create_task(leaf_coro(done), name="tl-leaf")

    async def observer_coro(done: asyncio.Event) -> None:
        while "inside" not in seen:
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # tl-leaf is now suspended in done.wait()
        (leaf,) = [t for t in asyncio.all_tasks() if t.get_name() == "tl-leaf"]
        seen["outside"] = asyncio.capture_call_graph(leaf)
        done.set()

    async def root_coro() -> None:
        asyncio.current_task().set_name("tl-root")  # type: ignore[union-attr]
        done = asyncio.Event()
        observer = asyncio.create_task(observer_coro(done), name="tl-observer")
        await asyncio.create_task(middle_coro(done), name="tl-middle")
        await observer

    with asyncio.Runner(loop_factory=loop_impl) as runner:  # type: ignore[arg-type]
        runner.run(root_coro())

    def chain(graph: object) -> list[tuple[str, list[str]]]:
        assert isinstance(graph, asyncio.FutureCallGraph)
        links = []
        while True:
            frames = [entry.frame.f_code.co_name for entry in graph.call_stack]
            links.append((graph.future.get_name(), frames))  # type: ignore[attr-defined]
            if not graph.awaited_by:
                return links
            (graph,) = graph.awaited_by

    awaiters = [("tl-middle", ["middle_coro"]), ("tl-root", ["root_coro"])]
    assert chain(seen["inside"]) == [("tl-leaf", ["leaf_coro"]), *awaiters]
    # A suspended task seen from outside: its stack runs down to what it awaits.
    assert chain(seen["outside"]) == [("tl-leaf", ["wait", "leaf_coro"]), *awaiters]
    printed = seen["printed"]
    assert isinstance(printed, str)
    assert printed.startswith("* Task(name='tl-leaf', id=0x")
    assert printed.index("name='tl-middle'") < printed.index("name='tl-root'")


@needs_314
def test_print_call_graph_on_tideloop(capsys: pytest.CaptureFixture[str]) -> None:
    async def leaf_coro() -> None:
        asyncio.print_call_graph()

    async def main() -> None:
        await asyncio.create_task(leaf_coro(), name="tl-leaf")

    tideloop.run(main())
    out = capsys.readouterr().out
    assert out.startswith("* Task(name='tl-leaf', id=0x")
    assert re.search(r"in async \S*leaf_coro\(\)\n  \+ Awaited by:\n", out), out
    assert re.search(r"\* Task\(name='Task-\d+'.*\n.*\n.* in async \S*main\(\)\n$", out), out


# ------------------------------------------------------------------ no DeprecationWarning
KIND = """\
import asyncio, tideloop

async def kind():
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__.split(".")[0]
"""

QUIET_ENTRY_POINTS = {
    "import tideloop": "import tideloop\nprint('loop', 'tideloop')",
    "tideloop.run": KIND + "print('loop', tideloop.run(kind()))",
    "asyncio.run(loop_factory)": KIND
    + "print('loop', asyncio.run(kind(), loop_factory=tideloop.new_event_loop))",
    "asyncio.Runner(loop_factory)": KIND
    + "with asyncio.Runner(loop_factory=tideloop.new_event_loop) as runner:\n"
    + "    print('loop', runner.run(kind()))",
}


@pytest.mark.parametrize("entry_point", sorted(QUIET_ENTRY_POINTS))
def test_no_warning_from(entry_point: str) -> None:
    if entry_point == "asyncio.run(loop_factory)" and sys.version_info < (3, 12):
        pytest.skip("asyncio.run() takes loop_factory from Python 3.12")
    result = python("-W", "error", "-c", QUIET_ENTRY_POINTS[entry_point])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "loop tideloop\n"


def test_no_warning_from_python_m_tideloop(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import asyncio\n"
        "async def kind():\n"
        "    return type(asyncio.get_running_loop()).__module__.split('.')[0]\n"
        "print('run', asyncio.run(kind()))\n"
        "with asyncio.Runner() as runner:\n"
        "    print('runner', runner.run(kind()))\n"
    )
    result = python("-W", "error", "-m", "tideloop", str(script), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert parse(result.stdout) == {"run": "tideloop", "runner": "tideloop"}


# Signal handlers and debug mode's callback checks: asyncio 3.14 deprecates
# asyncio.iscoroutinefunction and checks callbacks with a private twin that does not warn.
LOOP_API_PROGRAM = """\
import asyncio, signal, sys

async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, print, "signal")
    loop.remove_signal_handler(signal.SIGUSR1)
    loop.call_soon(print, "call_soon")
    await asyncio.sleep(0)
    return type(loop).__module__.split(".")[0]

if sys.argv[1] == "tideloop":
    import tideloop
    factory = tideloop.new_event_loop
else:
    factory = asyncio.new_event_loop
with asyncio.Runner(debug=True, loop_factory=factory) as runner:
    print("loop", runner.run(main()))
"""


@pytest.mark.parametrize("impl", ["tideloop", "asyncio"])
def test_no_warning_from_signal_handlers_and_debug_mode(impl: str) -> None:
    result = python("-W", "error", "-c", LOOP_API_PROGRAM, impl)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"call_soon\nloop {impl}\n"


# ------------------------------------------------------------------------------ policies
def _asyncio_has_policies() -> bool:
    return hasattr(asyncio.events, "set_event_loop_policy")


@pytest.mark.skipif(not _asyncio_has_policies(), reason="this asyncio has no policies (3.16+)")
def test_event_loop_policy_is_an_asyncio_policy() -> None:
    base = getattr(asyncio.events, "_AbstractEventLoopPolicy", None)  # 3.14+: no warning
    if base is None:
        base = asyncio.events.AbstractEventLoopPolicy
    assert "EventLoopPolicy" in tideloop.__all__
    policy = tideloop.EventLoopPolicy()
    assert isinstance(policy, base)
    loop = policy.new_event_loop()
    try:
        assert isinstance(loop, tideloop.EventLoop)
    finally:
        loop.close()


# Installs tideloop's policy with asyncio's public API and reports the warnings that gives
# (compared with installing asyncio's own default policy) and which loops asyncio then makes.
POLICY_PROGRAM = (
    KIND
    + """\
import warnings

def install(policy):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.set_event_loop_policy(policy)
    return [f"{w.category.__name__}: {w.message}" for w in caught]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    default = asyncio.DefaultEventLoopPolicy()
print("stock", install(default))
print("tideloop", install(tideloop.EventLoopPolicy()))
print("run", asyncio.run(kind()))
with asyncio.Runner() as runner:
    print("runner", runner.run(kind()))
loop = asyncio.new_event_loop()
print("new_event_loop", loop.run_until_complete(kind()))
loop.close()
"""
)


@pytest.mark.skipif(not _asyncio_has_policies(), reason="this asyncio has no policies (3.16+)")
def test_event_loop_policy_installed_warns_only_as_asyncios_own_policies_do() -> None:
    result = python("-W", "error", "-c", POLICY_PROGRAM)
    assert (result.returncode, result.stderr) == (0, "")
    seen = parse(result.stdout)
    assert seen["tideloop"] == seen["stock"]
    if sys.version_info >= (3, 14):
        assert seen["tideloop"].startswith("[\"DeprecationWarning: 'asyncio.set_event_loop_policy'")
    else:
        assert seen["tideloop"] == "[]"
    assert (seen["run"], seen["runner"], seen["new_event_loop"]) == ("tideloop",) * 3


# Makes this interpreter's asyncio look like one without event loop policies, as CPython 3.16
# removes them: no policy classes, no get/set_event_loop_policy (public or private), and
# get/set/new_event_loop that need no policy. Runs before tideloop is imported.
NO_POLICIES = """\
import asyncio, threading
from asyncio import events, unix_events

POLICY_NAMES = {
    "AbstractEventLoopPolicy", "BaseDefaultEventLoopPolicy", "DefaultEventLoopPolicy",
    "_AbstractEventLoopPolicy", "_BaseDefaultEventLoopPolicy", "_DefaultEventLoopPolicy",
    "_UnixDefaultEventLoopPolicy", "get_event_loop_policy", "set_event_loop_policy",
    "_get_event_loop_policy", "_set_event_loop_policy", "_init_event_loop_policy",
    "_event_loop_policy",
}
for module in (asyncio, events, unix_events):
    for name in POLICY_NAMES:
        module.__dict__.pop(name, None)

_current = threading.local()

def get_event_loop():
    loop = events._get_running_loop() or getattr(_current, "loop", None)
    if loop is None:
        raise RuntimeError("There is no current event loop")
    return loop

def set_event_loop(loop):
    _current.loop = loop

def new_event_loop():
    return unix_events.SelectorEventLoop()

for module in (asyncio, events):
    module.get_event_loop = get_event_loop
    module.set_event_loop = set_event_loop
    module.new_event_loop = new_event_loop

_asyncio_getattr = asyncio.__dict__.get("__getattr__")  # 3.14+: deprecated aliases

def _getattr(name):
    if name in POLICY_NAMES or _asyncio_getattr is None:
        raise AttributeError(f"module 'asyncio' has no attribute {name!r}")
    return _asyncio_getattr(name)

asyncio.__getattr__ = _getattr
assert not hasattr(asyncio, "DefaultEventLoopPolicy")
assert not hasattr(asyncio, "set_event_loop_policy")
"""


def test_event_loop_policy_absent_where_asyncio_has_no_policies() -> None:
    program = (
        NO_POLICIES
        + KIND
        + """\
try:
    tideloop.EventLoopPolicy
except AttributeError as exc:
    print("error", exc)
print("hasattr", hasattr(tideloop, "EventLoopPolicy"))
print("in_all", "EventLoopPolicy" in tideloop.__all__)
exec("from tideloop import *")
print("run", tideloop.run(kind()))
loop = tideloop.new_event_loop()
print("new_event_loop", loop.run_until_complete(kind()))
loop.close()
with asyncio.Runner(loop_factory=tideloop.new_event_loop) as runner:
    print("runner", runner.run(kind()))
print("asyncio.run", asyncio.run(kind()))  # the control: asyncio's own loop
"""
    )
    result = python("-W", "error", "-c", program)
    assert (result.returncode, result.stderr) == (0, "")
    assert parse(result.stdout) == {
        "error": "tideloop.EventLoopPolicy: asyncio 3.16 removed event loop policies; use "
        "tideloop.run() or asyncio.run(..., loop_factory=tideloop.new_event_loop)",
        "hasattr": "False",
        "in_all": "False",
        "run": "tideloop",
        "new_event_loop": "tideloop",
        "runner": "tideloop",
        "asyncio.run": "asyncio",
    }


def test_python_m_tideloop_where_asyncio_has_no_policies(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """\
            import asyncio

            async def kind():
                return type(asyncio.get_running_loop()).__module__.split(".")[0]

            print("policies", hasattr(asyncio, "set_event_loop_policy"))
            print("run", asyncio.run(kind()))
            with asyncio.Runner() as runner:
                print("runner", runner.run(kind()))
            loop = asyncio.new_event_loop()
            print("new_event_loop", loop.run_until_complete(kind()))
            loop.close()
            # A program that chooses its own loop keeps it.
            with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
                print("own_factory", runner.run(kind()))
            """
        )
    )
    # python -m tideloop app.py, on the stripped asyncio.
    launch = NO_POLICIES + "import runpy\nrunpy.run_module('tideloop', run_name='__main__')\n"
    result = python("-W", "error", "-c", launch, str(script), cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert parse(result.stdout) == {
        "policies": "False",
        "run": "tideloop",
        "runner": "tideloop",
        "new_event_loop": "tideloop",
        "own_factory": "asyncio",
    }
