"""Build tideloop: pure Python, with the hot modules compiled by Cython when possible.

One source, two modes. Every module is a plain ``.py`` file. A module that has a sibling
``.pxd`` file (``src/tideloop/_core/loop.py`` + ``loop.pxd``) is compiled by Cython in
pure-Python mode: the ``.pxd`` carries all the C typing, the ``.py`` stays importable as is.
The list of such modules is discovered, not kept by hand, and printed by every build, so
adding a ``.pxd`` is the whole of opting a module in (zeroconf keeps the same list by hand
as ``TO_CYTHONIZE``; pydantic v1 cythonized every ``.py`` blindly, which we avoid).

The ``.py`` files are installed next to the ``.so`` files: the import system prefers the
extension module, so the mode is fixed at install time, and tracebacks still show source.

Switches (environment variables; "1", "true", "yes" or "on" turn them on):

``TIDELOOP_NO_EXTENSIONS``
    Install pure Python. Cython is not even imported. Always the case on PyPy.
``TIDELOOP_REQUIRE_EXTENSIONS``
    Any failure to compile (no Cython, no C compiler, a Cython or C error, no module to
    compile at all) fails the install. CI sets it. Without it a failure prints a warning and
    the install goes on in pure Python; partial builds are never installed, because a
    compiled module that cimports a pure one would not import.
``TIDELOOP_CYTHON_TRACE``
    Compile with line tracing (``linetrace`` directive, ``CYTHON_TRACE`` macros) so that
    coverage.py with the ``Cython.Coverage`` plugin can measure compiled code. Slow.
``TIDELOOP_CYTHON_ANNOTATE``
    Also write Cython's HTML annotation (yellow lines = Python API calls) beside the
    generated C, under ``build/temp.*/cython/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py
from setuptools.extension import Extension

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
PACKAGE_DIR = SRC / "tideloop"
# Written into the built package when compiling fails and the build falls back to pure
# Python (its one line says why); tideloop.__main__.version_string() reads it.
FALLBACK_NOTE = ("tideloop", "BUILD_FALLBACK.txt")


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


REQUIRE_EXTENSIONS = _env_flag("TIDELOOP_REQUIRE_EXTENSIONS")
# PyPy always gets the pure build: a Cython module there runs through cpyext, which is slower
# than PyPy's JIT on the same pure source, and ours does not even import (cpyext lacks
# PyContext_Enter/Exit). So a plain `pip install .` on PyPy must not try.
IS_PYPY = sys.implementation.name == "pypy"
NO_EXTENSIONS = _env_flag("TIDELOOP_NO_EXTENSIONS") or IS_PYPY

if IS_PYPY and REQUIRE_EXTENSIONS:
    sys.exit("setup.py: TIDELOOP_REQUIRE_EXTENSIONS=1 on PyPy: tideloop is pure Python on PyPy")
CYTHON_TRACE = _env_flag("TIDELOOP_CYTHON_TRACE")
CYTHON_ANNOTATE = _env_flag("TIDELOOP_CYTHON_ANNOTATE")

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    sys.exit("setup.py: TIDELOOP_NO_EXTENSIONS and TIDELOOP_REQUIRE_EXTENSIONS are both set")

# Kept at Cython's defaults on purpose, except:
# - language_level=3: Python 3 semantics (Cython 3's default, stated anyway);
# - annotation_typing=False: annotations in the .py files are for mypy and readers only;
#   every C type lives in the .pxd. With annotation typing on, `x: int` would silently
#   become a C long in compiled mode and overflow where pure mode does not.
# boundscheck/wraparound stay on: correctness over a few nanoseconds; a module that has
# proven an index safe can say so locally with @cython.boundscheck(False) in its .pxd.
COMPILER_DIRECTIVES: dict[str, object] = {
    "language_level": 3,
    "annotation_typing": False,
}


def _rel(path: Path) -> str:
    # setuptools wants source paths relative to setup.py, with forward slashes.
    return path.relative_to(HERE).as_posix()


def find_cython_modules() -> list[tuple[str, Path]]:
    """Every ``src/tideloop/**/X.py`` with a sibling ``X.pxd``, as (module name, .py path).

    A package's ``__init__`` is never compiled, even if an ``__init__.pxd`` were added to make
    the package cimportable. A ``.pxd`` with no ``.py`` (C declarations such as
    ``_poll/_libc.pxd`` and ``_transports/_sockio.pxd``) is cimported by others and compiles
    to nothing by itself. Modules without a ``.pxd`` (``_compat.py``, ``_api.py``, the
    ``_executor``/``_asyncgens``/``_signals`` mixins, ``_core/errors.py``, most of ``_net/``)
    stay Python in both builds.
    """
    modules = []
    for pxd in sorted(PACKAGE_DIR.rglob("*.pxd")):
        py = pxd.with_suffix(".py")
        if pxd.stem == "__init__" or not py.is_file():
            continue
        parts = py.relative_to(SRC).with_suffix("").parts
        modules.append((".".join(parts), py))
    return modules


TO_CYTHONIZE = [] if NO_EXTENSIONS else find_cython_modules()

if REQUIRE_EXTENSIONS and not TO_CYTHONIZE:
    # Checked here: with no extension modules setuptools would never run build_ext at all.
    sys.exit(
        "setup.py: TIDELOOP_REQUIRE_EXTENSIONS=1 but no module under src/tideloop has a "
        "sibling .pxd; there is nothing to compile"
    )


def _extensions() -> list[Extension]:
    macros = [("CYTHON_TRACE", "1"), ("CYTHON_TRACE_NOGIL", "1")] if CYTHON_TRACE else []
    return [Extension(name, [_rel(py)], define_macros=macros) for name, py in TO_CYTHONIZE]


class BuildExt(build_ext):
    """Cythonize, then compile; fall back to pure Python unless extensions are required."""

    def finalize_options(self) -> None:
        super().finalize_options()
        if self.parallel is None:
            # Compile the C files in parallel (setuptools runs one compiler per thread).
            self.parallel = os.cpu_count() or 1

    def run(self) -> None:
        mode = "required" if REQUIRE_EXTENSIONS else "optional; falls back to pure Python"
        if not self.extensions:
            return
        print(f"tideloop: compiling {len(self.extensions)} modules with Cython ({mode}):")
        for name, py in TO_CYTHONIZE:
            print(f"tideloop:   {name:<40} {_rel(py)}")
        if CYTHON_TRACE:
            print("tideloop: line tracing is ON (TIDELOOP_CYTHON_TRACE=1)")
        try:
            self._cythonize(self.extensions)
            super().run()
        except SystemExit:
            raise
        except Exception as exc:
            # Anything: Cython missing (RuntimeError below), a Cython CompileError, a C
            # CompileError/LinkError, no compiler at all (ExecError, PlatformError, OSError).
            if REQUIRE_EXTENSIONS:
                print(f"tideloop: compiling failed and TIDELOOP_REQUIRE_EXTENSIONS=1: {exc!r}")
                raise
            self._fall_back_to_pure(exc)

    def _cythonize(self, extensions: list[Extension]) -> None:
        """Turn each extension's .py source into generated C, in place.

        In place, because finalize_options() has already annotated these very Extension
        objects (setuptools keeps private per-extension state on them).
        """
        try:
            from Cython.Build import cythonize
        except ImportError as exc:
            raise RuntimeError(f"Cython is not installed ({exc})") from exc
        directives = dict(COMPILER_DIRECTIVES)
        if CYTHON_TRACE:
            directives.update(linetrace=True, profile=False)
        # Keep generated C out of the source tree (other people work in it) and apart for
        # each interpreter and build; timestamps there make rebuilds incremental. Cython
        # decides by timestamps alone, so traced C gets its own directory.
        build_dir = os.path.abspath(
            os.path.join(self.build_temp, "cython-trace" if CYTHON_TRACE else "cython")
        )
        # Cython names each source in tracebacks by its path relative to the working
        # directory. Run from src/, that is "tideloop/_core/loop.py": the installed file's
        # path relative to site-packages, which linecache resolves through sys.path, so a
        # compiled frame shows the installed source line (from the project root it would be
        # "src/tideloop/...", a path that exists on no user's machine).
        for ext in extensions:
            ext.sources = [os.path.relpath(HERE / src, SRC) for src in ext.sources]
        here = os.getcwd()
        os.chdir(SRC)
        try:
            cythonized = cythonize(
                extensions,
                compiler_directives=directives,
                # .pxd files cimport each other as `tideloop._core.handles`
                include_path=["."],
                build_dir=build_dir,
                annotate=CYTHON_ANNOTATE,
                force=bool(self.force),
                nthreads=min(len(extensions), os.cpu_count() or 1),
                quiet=not self.verbose,
            )
        finally:
            os.chdir(here)
        sources = {ext.name: ext.sources for ext in cythonized}
        for ext in extensions:
            ext.sources = [os.path.join(SRC, src) for src in sources[ext.name]]

    def _fall_back_to_pure(self, exc: BaseException) -> None:
        # Never leave a partial build: a compiled module cimporting a pure one cannot import.
        for ext in self.extensions:
            try:
                os.unlink(self.get_ext_fullpath(ext.name))
            except FileNotFoundError:
                pass
        self.extensions = []
        self.distribution.ext_modules = []
        # The wheel being built (if any) is now pure: tag it py3-none-any, installed to
        # purelib. bdist_wheel decided before the build; it reads the flag again after it.
        wheel = self.distribution.command_obj.get("bdist_wheel")
        if wheel is not None:
            wheel.root_is_pure = True  # type: ignore[attr-defined]
        # pip shows a successful build's output only with -v: leave the reason in the
        # package, where `python -m tideloop --version` prints it.
        note = Path(self.build_lib, *FALLBACK_NOTE)
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"compiling failed at install: {_reason(exc)}\n", encoding="utf-8")
        message = (
            f"tideloop: WARNING: could not compile the Cython modules ({exc!r}); installing "
            "the pure-Python build instead. Set TIDELOOP_REQUIRE_EXTENSIONS=1 to make this an "
            "error, or TIDELOOP_NO_EXTENSIONS=1 to skip compiling."
        )
        print(message, file=sys.stderr)

    def get_outputs(self) -> list[str]:
        # After a fallback there are no outputs to install or record.
        return super().get_outputs() if self.extensions else []


def _reason(exc: BaseException) -> str:
    """One short line saying why compiling failed (a compiler's command line is long)."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, subprocess.CalledProcessError):
        command = cause.cmd[0] if isinstance(cause.cmd, (list, tuple)) else cause.cmd
        text = f"{type(exc).__name__}: {command} exited with status {cause.returncode}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


class BuildPy(build_py):
    """Copy the sources; drop a fallback note an earlier build left in build/."""

    def run(self) -> None:
        super().run()
        Path(self.build_lib, *FALLBACK_NOTE).unlink(missing_ok=True)


setup(
    ext_modules=_extensions(),
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
