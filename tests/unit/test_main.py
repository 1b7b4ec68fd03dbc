"""``python -m tideloop``: runs asyncio programs unchanged, on tideloop, as ``python`` would.

Each test runs the installed tideloop in a subprocess of this interpreter, from a temporary
directory with a clean PYTHONPATH, so nothing in the work tree can shadow the package.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tideloop

TIMEOUT = 30


def run_python(*args: str | os.PathLike[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python *args`` (this interpreter), with no PYTHONPATH or PYTHONSTARTUP."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def run_tideloop(
    *args: str | os.PathLike[str], cwd: Path, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return run_python(*python_flags, "-m", "tideloop", *args, cwd=cwd)


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


# Prints what the program sees, then exits with status 3 from inside asyncio.run().
PROGRAM = """\
    import asyncio, sys

    async def main():
        loop = asyncio.get_running_loop()
        print("loop", type(loop).__module__, type(loop).__qualname__)
        print("is_asyncio_loop", isinstance(loop, asyncio.AbstractEventLoop))
        print("argv", sys.argv)
        print("name", __name__)
        sys.exit(3)

    if __name__ == "__main__":
        asyncio.run(main())
"""


def parse(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines() if " " in line)


def tideloop_loop_class() -> str:
    loop = tideloop.new_event_loop()
    try:
        return f"{type(loop).__module__} {type(loop).__qualname__}"
    finally:
        loop.close()


def assert_tideloop_loop(loop_line: str) -> None:
    assert loop_line.startswith("tideloop"), loop_line
    assert loop_line == tideloop_loop_class()


def test_script_runs_on_tideloop_with_argv_and_exit_code(tmp_path: Path) -> None:
    script = write(tmp_path / "app.py", PROGRAM)
    result = run_tideloop(script, "a", "--flag", "-m", "x", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    seen = parse(result.stdout)
    assert_tideloop_loop(seen["loop"])
    assert seen["is_asyncio_loop"] == "True"
    assert seen["argv"] == repr([str(script), "a", "--flag", "-m", "x"])
    assert seen["name"] == "__main__"
    assert result.stderr == ""


def test_module_runs_on_tideloop(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    module_file = write(tmp_path / "pkg" / "tool.py", PROGRAM)
    result = run_tideloop("-m", "pkg.tool", "x", "-v", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    seen = parse(result.stdout)
    assert_tideloop_loop(seen["loop"])
    # As with `python -m`: argv[0] is the module's file, __name__ is __main__.
    assert seen["argv"] == repr([str(module_file), "x", "-v"])
    assert seen["name"] == "__main__"


def test_package_main_and_attached_module_option(tmp_path: Path) -> None:
    write(tmp_path / "app" / "__init__.py", "")
    write(tmp_path / "app" / "__main__.py", PROGRAM)
    result = run_tideloop("-mapp", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert_tideloop_loop(parse(result.stdout)["loop"])


def test_every_asyncio_entry_point_makes_tideloop_loops(tmp_path: Path) -> None:
    script = write(
        tmp_path / "entry_points.py",
        """\
        import asyncio

        async def kind():
            return type(asyncio.get_running_loop()).__module__.split(".")[0]

        print("run", asyncio.run(kind()))
        with asyncio.Runner() as runner:
            print("runner", runner.run(kind()))
        loop = asyncio.new_event_loop()
        try:
            print("new_event_loop", loop.run_until_complete(kind()))
        finally:
            loop.close()
        # A program that chooses its own loop keeps it.
        with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
            print("own_factory", runner.run(kind()))
        """,
    )
    result = run_tideloop(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout) == {
        "run": "tideloop",
        "runner": "tideloop",
        "new_event_loop": "tideloop",
        "own_factory": "asyncio",
    }


def test_no_deprecation_warning_from_policy_install(tmp_path: Path) -> None:
    script = write(tmp_path / "quiet.py", "import asyncio\nasyncio.run(asyncio.sleep(0))\n")
    result = run_tideloop(script, cwd=tmp_path, python_flags=("-W", "error"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.skipif(
    not hasattr(asyncio.events, "set_event_loop_policy"),
    reason="this asyncio has no event loop policies (3.16+): see test_py314_ecosystem.py",
)
def test_policy_is_installed_where_asyncio_has_policies(tmp_path: Path) -> None:
    # Code that asks the policy for a loop gets tideloop too (3.14+: through the private
    # getter, which does not warn; the public one is the program's own business).
    script = write(
        tmp_path / "ask_policy.py",
        """\
        import asyncio

        get = getattr(asyncio.events, "_get_event_loop_policy", None)
        policy = (get or asyncio.get_event_loop_policy)()
        print("policy", type(policy).__module__, type(policy).__qualname__)
        loop = policy.new_event_loop()
        print("loop", type(loop).__module__, type(loop).__qualname__)
        loop.close()
        """,
    )
    result = run_tideloop(script, cwd=tmp_path, python_flags=("-W", "error"))
    assert result.returncode == 0, result.stderr
    seen = parse(result.stdout)
    assert seen["policy"] == "tideloop.policy EventLoopPolicy"
    assert_tideloop_loop(seen["loop"])


def test_script_directory_is_first_on_sys_path(tmp_path: Path) -> None:
    write(tmp_path / "proj" / "helper.py", "VALUE = 'from helper'\n")
    script = write(
        tmp_path / "proj" / "main.py",
        """\
        import sys, helper
        print("path0", sys.path[0])
        print("value", helper.VALUE)
        print("file", __file__)
        """,
    )
    result = run_tideloop("proj/main.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    seen = parse(result.stdout)
    assert seen["path0"] == str((tmp_path / "proj").resolve())
    assert seen["value"] == "from helper"
    assert seen["file"] == str(script)


def test_uncaught_exception_exits_1_with_the_programs_traceback(tmp_path: Path) -> None:
    script = write(
        tmp_path / "boom.py",
        """\
        import asyncio

        async def main():
            raise ValueError("boom")

        asyncio.run(main())
        """,
    )
    result = run_tideloop(script, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last):" in result.stderr
    assert 'boom.py", line 6, in <module>' in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: boom")
    assert "runpy" not in result.stderr
    assert "__main__.py" not in result.stderr


# Programs that end in each way a program can; each prints what it sees first.
ENDINGS = {
    "returns": "print('done')",
    "exit-3": "sys.exit(3)",
    "exit-message": "sys.exit('bye')",
    "raises-chained": """\
        def f():
            try:
                {}['key']
            except KeyError:
                raise ValueError('boom')
        f()""",
    "sigint": """\
        import os, signal, time
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)""",
    "raises-keyboardinterrupt": "raise KeyboardInterrupt",
    "os-exit": "sys.stdout.flush(); os._exit(4)",
    "atexit-sees-main": """\
        import atexit
        VALUE = 5
        atexit.register(lambda: print('atexit', sys.modules['__main__'].VALUE))
        raise RuntimeError('after registering')""",
    "syntax-error": "def f(:",
}


@pytest.mark.parametrize("how", ["script", "module"])
@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_ends_as_python_does(tmp_path: Path, ending: str, how: str) -> None:
    """stdout, stderr (tracebacks included) and exit status match plain ``python``'s."""
    if how == "module" and ending == "syntax-error":
        pytest.skip("python -m reports a module's syntax error through runpy's frames")
    body = textwrap.dedent(ENDINGS[ending])
    write(
        tmp_path / "app.py",
        f"import os, sys\nprint(sys.argv, __file__, __name__, __loader__ is None)\n{body}\n",
    )
    target = ("app.py",) if how == "script" else ("-m", "app")
    plain = run_python(*target, "x", cwd=tmp_path)
    ours = run_tideloop(*target, "x", cwd=tmp_path)
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert "tideloop" not in ours.stderr


def test_version(tmp_path: Path) -> None:
    result = run_tideloop("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    if tideloop.COMPILED:
        mode = "compiled"
    elif sys.implementation.name == "pypy":
        mode = "pure Python: always on PyPy"
    else:
        # scripts/test installs the pure build on request: no fallback note.
        mode = "pure Python"
    assert result.stdout == f"tideloop {tideloop.__version__} ({mode})\n"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help(tmp_path: Path, flag: str) -> None:
    result = run_tideloop(flag, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m tideloop")
    assert "-m module" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "a script or -m module is required"),
        (("--bogus",), "unknown option: --bogus"),
        (("-m",), "expected a module name"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_tideloop(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ")
    assert message in result.stderr


def test_missing_script_exits_2(tmp_path: Path) -> None:
    result = run_tideloop("nope.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "can't open file" in result.stderr


def test_missing_module_exits_1(tmp_path: Path) -> None:
    result = run_tideloop("-m", "no_such_module_here", cwd=tmp_path)
    assert result.returncode == 1
    assert "No module named no_such_module_here" in result.stderr


STATS_PROGRAM = """\
import asyncio, sys, time

async def main():
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = 0.05
    loop.call_soon(time.sleep, 0.08)
    for _ in range(5):
        await asyncio.sleep(0.001)
    print("done")

asyncio.run(main())
sys.exit(3)
"""


def test_stats_prints_each_loops_summary_at_exit(tmp_path: Path) -> None:
    script = write(tmp_path / "app.py", STATS_PROGRAM)
    result = run_tideloop("--stats", script, "arg", cwd=tmp_path)
    assert result.returncode == 3  # the program's own exit status, stats or not
    assert result.stdout == "done\n"  # the summary goes to stderr
    err = result.stderr
    assert "--stats: loop 1 of 1" in err
    assert "utilization" in err and "p99" in err
    assert "1 callbacks of 50 ms or more" in err
    assert "<Handle sleep(" in err  # the args and "created at" vary by version and debug mode
    assert "timers 5" in err


def test_stats_with_no_loop(tmp_path: Path) -> None:
    script = write(tmp_path / "app.py", "print('no loop')\n")
    result = run_tideloop("--stats", script, cwd=tmp_path)
    assert result.returncode == 0
    assert "no tideloop loop ran" in result.stderr
