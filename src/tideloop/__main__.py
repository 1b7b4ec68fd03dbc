"""Run any asyncio program on tideloop, unchanged.

    python -m tideloop app.py [args...]            like `python app.py [args...]`
    python -m tideloop -m package.module [args...] like `python -m package.module [args...]`
    python -m tideloop --stats app.py [args...]    and print each loop's metrics at exit
    python -m tideloop --version

The program runs as ``__main__`` exactly as the interpreter would run it: ``sys.argv`` is
what ``python`` would give (``argv[0]`` the script as typed, or for ``-m`` the module's file),
``sys.path[0]`` is the script's directory (or, for ``-m``, the current directory),
``if __name__ == "__main__":`` blocks run, the exit status is the program's (``SystemExit``
propagates untouched; an uncaught KeyboardInterrupt ends the process by SIGINT), and an
uncaught exception's traceback shows the program's frames, none of tideloop's or runpy's.

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
import builtins
import importlib.machinery
import importlib.util
import io
import marshal
import os
import runpy
import sys
import types
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
    """``tideloop VERSION (compiled)``, or ``(pure Python...)`` with why where we know it."""
    import tideloop

    if tideloop.COMPILED:
        mode = "compiled"
    elif sys.implementation.name == "pypy":
        mode = "pure Python: always on PyPy"
    else:
        # setup.py leaves this note when compiling failed and the install fell back.
        note = os.path.join(os.path.dirname(tideloop.__file__), "BUILD_FALLBACK.txt")
        try:
            with open(note, encoding="utf-8") as f:
                mode = f"pure Python: {f.read().strip()}"
        except OSError:
            mode = "pure Python"
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


def _user_traceback(tb: TracebackType | None, module: bool) -> TracebackType | None:
    """The traceback ``python`` itself would show: this file's frames and runpy's dropped.

    An uncaught exception's traceback starts with the launcher's frames (runpy's two for
    ``python -m tideloop``, the script's one for the ``tideloop`` command), then this file's,
    then, for ``-m module``, runpy's again, then the program's. ``python app.py`` shows none
    before the program's; ``python -m module`` shows runpy's two launcher frames, so those
    are kept for ``-m``. Frames are never edited, only relinked (new ``TracebackType``
    objects), so the program's part is exactly as raised.
    """
    entries: list[TracebackType] = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    here = _user_traceback.__code__.co_filename
    # Compare code objects' file names: runpy's may be "<frozen runpy>", not runpy.__file__.
    ours = {here, runpy.run_path.__code__.co_filename}
    files = [e.tb_frame.f_code.co_filename for e in entries]
    if here not in files:
        return entries[0] if entries else None
    first = files.index(here)
    end = first
    while end < len(entries) and files[end] in ours:
        end += 1
    launcher = entries[:first]
    kept = launcher if module and all(f in ours for f in files[:first]) else []
    result = entries[end] if end < len(entries) else None
    for e in reversed(kept):
        result = TracebackType(result, e.tb_frame, e.tb_lasti, e.tb_lineno)
    return result


def _trim_uncaught(module: bool) -> None:
    """Make the interpreter's report of the uncaught exception show the program's frames.

    The exception propagates (the interpreter prints it and picks the exit status, 1 or,
    for KeyboardInterrupt, death by SIGINT, as for ``python app.py``); this wraps whatever
    ``sys.excepthook`` the program leaves so that it gets the trimmed traceback. The default
    hook prints ``exc.__traceback__``, not its argument: that is trimmed in place too.
    """
    hook = sys.excepthook

    def excepthook(typ: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.excepthook = hook
        if tb is exc.__traceback__:
            tb = _user_traceback(tb, module)
            exc.with_traceback(tb)
        hook(typ, exc, tb)

    sys.excepthook = excepthook


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
        _exec_file(path)
    else:
        # A directory or zip file with __main__.py: run_path() puts it first on sys.path.
        if not sys.flags.safe_path:
            del sys.path[0]
        runpy.run_path(path, run_name="__main__")


def _exec_file(path: str) -> None:
    """Run a source (or .pyc) file as ``__main__``, as ``python path`` does.

    Not ``runpy.run_path()``: that sets ``sys.argv[0]`` to the absolute path, where
    ``python app.py`` keeps ``app.py`` as given, and it puts the previous ``__main__`` back
    afterwards, where ``python`` leaves the program's module there (for atexit handlers,
    pickle and multiprocessing, which look names up in ``sys.modules["__main__"]``).
    The code is compiled with ``dont_inherit``: this file's ``from __future__`` imports
    must not reach the program.
    """
    filename = os.path.abspath(path)
    with io.open_code(filename) as f:
        data = f.read()
    if data[:4] == importlib.util.MAGIC_NUMBER:
        code = marshal.loads(data[16:])  # a .pyc: 16-byte header (PEP 552), then the code
    else:
        code = compile(data, filename, "exec", dont_inherit=True)
    _exec_as_main(
        code,
        __file__=filename,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", filename),
        __spec__=None,
        __package__=None,
    )


def _exec_as_main(code: types.CodeType, **attributes: object) -> None:
    """Run ``code`` in a new module that becomes ``sys.modules["__main__"]`` and stays so."""
    module = types.ModuleType("__main__")
    module.__dict__.update(attributes, __builtins__=builtins)
    sys.modules["__main__"] = module
    exec(code, module.__dict__)


def _run_module(module: str, argv: list[str]) -> None:
    # `python -m module` puts the current directory first on sys.path. `python -m tideloop`
    # already did; the `tideloop` command put its bin directory there instead.
    if not sys.flags.safe_path:
        sys.path[0] = os.getcwd()

    # runpy's own lookup, as `python -m` uses it (pdb and cProfile use it too): the same
    # packages-run-their-__main__ rule and the same error messages. Not run_module(): that
    # puts the previous __main__ back afterwards, where `python -m` leaves the program's.
    class NotFound(Exception):
        pass

    try:
        _, spec, code = runpy._get_module_details(module, NotFound)  # type: ignore[attr-defined]
    except NotFound as exc:
        print(f"{sys.executable}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    sys.argv[:] = [spec.origin, *argv[1:]]
    _exec_as_main(
        code,
        __file__=spec.origin,
        __cached__=spec.cached,
        __doc__=None,
        __loader__=spec.loader,
        __package__=spec.parent,
        __spec__=spec,
    )


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
    except SystemExit:
        raise
    except BaseException:
        # The interpreter reports it, as for `python app.py`; only our frames go.
        _trim_uncaught(module=action == "module")
        raise
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
