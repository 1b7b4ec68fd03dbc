"""Run any asyncio program on tideloop, unchanged.

    python -m tideloop app.py [args...]            like `python app.py [args...]`
    python -m tideloop -m package.module [args...] like `python -m package.module [args...]`
    python -m tideloop --stats app.py [args...]    and print each loop's metrics at exit
    python -m tideloop --version

The program runs as ``__main__`` exactly as the interpreter would run it (``runpy``, the
same machinery ``python`` uses): ``sys.argv`` is the program's own, ``sys.path[0]`` is the
script's directory (or, for ``-m``, the current directory), ``if __name__ == "__main__":``
blocks run, and the exit code is the program's (``SystemExit`` propagates untouched).

How the loop is swapped in, before the program starts, so that every loop asyncio creates on
the program's behalf -- ``asyncio.run()``, ``asyncio.Runner()``, ``asyncio.new_event_loop()``
-- is a tideloop loop (a program that passes its own ``loop_factory`` keeps it):

- Where asyncio has event loop policies (3.11-3.15), ``tideloop.EventLoopPolicy`` is installed,
  so code that asks the policy (``asyncio.get_event_loop_policy().new_event_loop()``) gets
  tideloop too. Python 3.14 deprecates the public ``asyncio.set_event_loop_policy()`` but
  keeps loop creation going through the policy; there the private
  ``asyncio.events._set_event_loop_policy()`` is used, so that the program sees no
  DeprecationWarning it did not cause itself.
- Where asyncio removed policies (3.16), ``asyncio.new_event_loop`` and
  ``asyncio.events.new_event_loop`` are replaced by ``tideloop.new_event_loop``:
  ``asyncio.Runner`` (and so ``asyncio.run()``) calls ``events.new_event_loop()`` when it is
  given no ``loop_factory``, as it does in 3.11-3.15, and ``asyncio.get_event_loop()`` no
  longer creates loops (3.14). Assumed, not yet seen: 3.16 is unreleased, and
  tests/unit/test_py314_ecosystem.py runs this path on an asyncio stripped of its policies.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import sys
from collections.abc import Sequence
from types import TracebackType

PROG = "python -m tideloop"

USAGE = f"""\
usage: {PROG} [-h] [--version] [--stats] (script.py | -m module) [args ...]

Run an asyncio program on the tideloop event loop, unchanged: asyncio.run(),
asyncio.Runner() and asyncio.new_event_loop() create tideloop loops.

arguments:
  script.py      run a Python file (or a directory or zip file with __main__.py)
  -m module      run a library module as a script, like python -m
  args ...       passed to the program as sys.argv[1:]

options:
  -h, --help     show this help and exit
  --version      show tideloop's version and build mode, and exit
  --stats        at exit, print a summary of each loop's metrics to stderr
                 (utilization, lag percentiles, slowest callbacks)
"""


class _UsageError(Exception):
    pass


def version_string() -> str:
    import tideloop

    mode = "compiled" if tideloop.COMPILED else "pure Python"
    return f"tideloop {tideloop.__version__} ({mode})"


def install() -> str:
    """Make asyncio create tideloop loops wherever it creates one on its own; say how.

    Returns "policy" (tideloop's policy installed) or "new_event_loop" (asyncio's factory
    replaced, where asyncio has no policies): see the module docstring.
    """
    import tideloop
    from tideloop import policy

    if policy.POLICIES:
        # 3.14+: the public setter warns (DeprecationWarning) and calls this private one.
        setter = getattr(asyncio.events, "_set_event_loop_policy", None)
        if setter is None:
            setter = asyncio.events.set_event_loop_policy
        setter(policy.EventLoopPolicy())
        return "policy"
    asyncio.events.new_event_loop = tideloop.new_event_loop
    asyncio.new_event_loop = tideloop.new_event_loop
    return "new_event_loop"


def _parse(argv: Sequence[str]) -> tuple[str, str | None, list[str]]:
    """Return (action, target, program argv); action is help|version|script|module.

    Options end at the first argument that is not one (the script), at ``-m MODULE``, or
    at ``--``: everything after belongs to the program, as with ``python``.
    """
    args = list(argv)
    arg = args.pop(0) if args else None
    if arg in ("-h", "--help"):
        return "help", None, []
    if arg == "--version":
        return "version", None, []
    if arg is not None and arg.startswith("-m"):
        module = arg[2:] or (args.pop(0) if args else "")
        if not module:
            raise _UsageError("argument -m: expected a module name")
        # python -m sets argv[0] to the module's file; runpy.run_module() does that.
        return "module", module, [module, *args]
    if arg == "--":
        arg = args.pop(0) if args else None
    elif arg == "-":
        raise _UsageError("reading the program from stdin is not supported")
    elif arg is not None and arg.startswith("-"):
        raise _UsageError(f"unknown option: {arg}")
    if arg is None:
        raise _UsageError("a script or -m module is required")
    return "script", arg, [arg, *args]


def _user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """Drop the leading frames of this file and runpy, as `python app.py` would show none."""
    # Compare code objects' file names: runpy's may be "<frozen runpy>", not runpy.__file__.
    skip = {_user_traceback.__code__.co_filename, runpy.run_path.__code__.co_filename}
    while tb is not None and tb.tb_frame.f_code.co_filename in skip:
        tb = tb.tb_next
    return tb


def _run_script(path: str, argv: list[str]) -> None:
    if not os.path.exists(path):
        print(
            f"{PROG}: can't open file {os.path.abspath(path)!r}: "
            "[Errno 2] No such file or directory",
            file=sys.stderr,
        )
        raise SystemExit(2)
    sys.argv[:] = argv
    if os.path.isfile(path):
        # What `python app.py` does: the script's directory (symlinks resolved) replaces
        # the entry `python -m tideloop` put first on sys.path (unless -P / PYTHONSAFEPATH
        # said to put none), and __file__ is absolute (3.9+).
        if not sys.flags.safe_path:
            sys.path[0] = os.path.dirname(os.path.realpath(path))
        runpy.run_path(os.path.abspath(path), run_name="__main__")
    else:
        # A directory or zip file with __main__.py: run_path() puts it first on sys.path.
        if not sys.flags.safe_path:
            del sys.path[0]
        runpy.run_path(path, run_name="__main__")


def _run_module(module: str, argv: list[str]) -> None:
    import importlib.util

    # `python -m module` puts the current directory first on sys.path. `python -m tideloop`
    # already did; the `tideloop` command put its bin directory there instead.
    if not sys.flags.safe_path:
        sys.path[0] = os.getcwd()

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        spec, error = None, f"{type(exc).__name__}: {exc}"
    else:
        error = f"No module named {module}"
    if spec is None:
        print(f"{sys.executable}: {error}", file=sys.stderr)
        raise SystemExit(1)
    sys.argv[:] = argv
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m tideloop`` (and of the ``tideloop`` command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    stats = bool(args) and args[0] == "--stats"
    if stats:
        del args[0]
    try:
        action, target, program_argv = _parse(args)
    except _UsageError as exc:
        print(USAGE.splitlines()[0], file=sys.stderr)
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if action == "help":
        print(USAGE, end="")
        return
    if action == "version":
        print(version_string())
        return
    assert target is not None
    install()
    loops = _track_loops() if stats else None
    try:
        if action == "script":
            _run_script(target, program_argv)
        else:
            _run_module(target, program_argv)
    except Exception as exc:
        # Report the program's own failure as the interpreter would: its traceback (through
        # sys.excepthook, which the program may have replaced) and exit status 1.
        # SystemExit and KeyboardInterrupt propagate to the interpreter unchanged.
        # The default hook prints exc.__traceback__ (not its tb argument): trim it in place.
        exc.with_traceback(_user_traceback(exc.__traceback__))
        sys.excepthook(type(exc), exc, exc.__traceback__)
        raise SystemExit(1) from None
    finally:
        if loops is not None:
            _print_stats(loops)


def _track_loops() -> list:
    """The list every tideloop loop made from now on is appended to (kept alive to report)."""
    from tideloop import _eventloop

    loops: list = []
    _eventloop._on_new_loop = loops.append
    return loops


def _print_stats(loops: list) -> None:
    """Print the summary of each loop that ran, to stderr (the program owns stdout)."""
    from tideloop._metrics import metrics, summary

    ran = [m for m in map(metrics, loops) if m.passes]
    if not ran:
        print(f"{PROG} --stats: no tideloop loop ran", file=sys.stderr)
    for n, m in enumerate(ran, 1):
        print(summary(m, f"{PROG} --stats: loop {n} of {len(ran)}"), file=sys.stderr)


if __name__ == "__main__":
    main()
