"""Is the build under test the one we meant to test? (pydantic's "check compiled installation")

The import system prefers ``X.so`` over ``X.py``, so the build mode is fixed at install time,
and a failed compile falls back to pure Python with only a warning. scripts/test therefore
installs each mode and says which one it expects in ``TIDELOOP_EXPECT_COMPILED`` ("1"/"0");
these tests compare that with what is really imported:

- ``tideloop.COMPILED`` matches the expectation;
- every installed module with a sibling ``.pxd`` (setup.py compiles exactly those) is an
  extension module in compiled mode, and none is in pure mode (no partial builds);
- the ``.py`` source is installed beside every ``.so`` (tracebacks, pure fallback);
- the tideloop under test is the installed one, not ``src/`` put on sys.path by accident.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import sys
from pathlib import Path

import pytest

import tideloop

EXPECT = os.environ.get("TIDELOOP_EXPECT_COMPILED")
REPO_SRC = Path(__file__).resolve().parents[2] / "src"

needs_expectation = pytest.mark.skipif(
    EXPECT is None,
    reason="TIDELOOP_EXPECT_COMPILED is not set (scripts/test sets it to 1 or 0 per build mode)",
)


def _expected() -> bool:
    assert EXPECT in ("0", "1"), f"TIDELOOP_EXPECT_COMPILED must be 0 or 1, not {EXPECT!r}"
    return EXPECT == "1"


def _package_dir() -> Path:
    (path,) = tideloop.__path__
    return Path(path)


def _pxd_modules() -> list[tuple[str, Path]]:
    """(module name, .pxd path) for every installed X.py with a sibling X.pxd."""
    root = _package_dir()
    found = []
    for pxd in sorted(root.rglob("*.pxd")):
        if pxd.stem == "__init__" or not pxd.with_suffix(".py").is_file():
            continue
        parts = pxd.relative_to(root.parent).with_suffix("").parts
        found.append((".".join(parts), pxd))
    return found


# Longest first: "loop.cpython-311-x86_64-linux-gnu.so" also ends with plain ".so".
_EXTENSION_SUFFIXES = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)


def _is_extension(module_file: str | None) -> bool:
    return bool(module_file) and module_file.endswith(tuple(_EXTENSION_SUFFIXES))


def _installed_extensions() -> list[tuple[Path, str]]:
    """(path, module stem) of every extension module file in the installed package."""
    found = []
    for path in sorted(_package_dir().rglob("*")):
        for suffix in _EXTENSION_SUFFIXES:
            if path.name.endswith(suffix):
                found.append((path, path.name[: -len(suffix)]))
                break
    return found


@needs_expectation
def test_compiled_flag_matches_expectation() -> None:
    expected = _expected()
    assert tideloop.COMPILED is expected, (
        f"tideloop.COMPILED is {tideloop.COMPILED!r} but TIDELOOP_EXPECT_COMPILED={EXPECT}: "
        + ("the Cython build failed or was skipped" if expected else "a compiled build leaked in")
    )


@needs_expectation
def test_every_pxd_module_matches_build_mode() -> None:
    expected = _expected()
    modules = _pxd_modules()
    if expected:
        assert modules, f"compiled mode, but no .py/.pxd pair is installed in {_package_dir()}"
    wrong = []
    for name, _pxd in modules:
        module = importlib.import_module(name)
        if _is_extension(module.__file__) is not expected:
            wrong.append(f"{name}: {module.__file__}")
    mode = "compiled" if expected else "pure"
    assert not wrong, f"{mode} mode, but these modules are not {mode}:\n  " + "\n  ".join(wrong)


def test_sources_installed_beside_extensions() -> None:
    # Holds in both modes (trivially in pure mode): every .so has its .py.
    missing = [
        str(so) for so, stem in _installed_extensions() if not so.with_name(f"{stem}.py").is_file()
    ]
    assert not missing, "extension modules installed without their .py source: " + ", ".join(
        missing
    )


def test_no_extension_without_pxd() -> None:
    # setup.py compiles exactly the .py files that have a .pxd; anything else is stale.
    stray = [
        str(so) for so, stem in _installed_extensions() if not so.with_name(f"{stem}.pxd").is_file()
    ]
    assert not stray, "extension modules with no .pxd (stale build?): " + ", ".join(stray)


@needs_expectation
def test_runs_against_installed_package() -> None:
    # scripts/test installs tideloop into a venv; if src/ shadowed it, the build mode under
    # test would be whatever happened to be lying in the work tree.
    package = _package_dir().resolve()
    assert not package.is_relative_to(REPO_SRC.resolve()), (
        f"tideloop was imported from the source tree ({package}), not from the installed "
        "package; do not put src/ on sys.path when testing a build"
    )


def test_tracebacks_show_the_installed_source() -> None:
    """A frame in tideloop's code names a file that resolves to the installed source.

    Compiled frames are named relative to site-packages ("tideloop/_core/loop.py"), which
    linecache finds through sys.path; never by a build-tree path ("src/tideloop/...").
    """
    import linecache
    import traceback

    loop = tideloop.new_event_loop()
    loop.close()
    with pytest.raises(RuntimeError) as info:
        loop.call_soon(print)  # "Event loop is closed", from the loop core
    frames = [f for f in traceback.extract_tb(info.value.__traceback__) if "tideloop" in f.filename]
    assert frames
    package = _package_dir()
    for frame in frames:
        assert not frame.filename.startswith("src"), frame.filename
        path = Path(frame.filename)
        if not path.is_absolute():
            path = package.parent / path
        assert path.resolve().is_relative_to(package.resolve()), frame.filename
        line = linecache.getline(frame.filename, frame.lineno).strip()
        assert line, frame
        assert line == path.read_text().splitlines()[frame.lineno - 1].strip()
        if sys.version_info < (3, 13) or not tideloop.COMPILED:
            assert frame.line == line
        else:
            # 3.13+ print a frame's source only with its column positions, which Cython's
            # code objects do not carry: the file and line number are what there is.
            assert frame.line in ("", None, line)


def test_compiled_modules_give_their_source() -> None:
    """Each compiled module's loader returns the .py it was compiled from (for linecache)."""
    import sys

    compiled = {
        name: module
        for name, module in sys.modules.items()
        if name.startswith("tideloop.") and str(getattr(module, "__file__", "")).endswith(".so")
    }
    assert bool(compiled) == tideloop.COMPILED
    for name, module in compiled.items():
        source = Path(module.__file__).with_name(Path(module.__file__).name.split(".")[0] + ".py")
        assert module.__loader__.get_source(name) == source.read_text(), name
        assert module.__spec__.loader is module.__loader__
