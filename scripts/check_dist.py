"""Build tideloop's release files as a user's tools would, and check them.

    python scripts/check_dist.py TREE OUTDIR [--compiled]

TREE is a clean copy of the project (scripts/test makes one). With ``python -m build``
(isolated build environments: setuptools and Cython come from the build requirements, not
from this venv), this makes:

1. the sdist, and from it the pure wheel (``TIDELOOP_NO_EXTENSIONS=1``), which must be
   tagged ``py3-none-any``;
2. with ``--compiled``, a wheel compiled from that sdist (``TIDELOOP_REQUIRE_EXTENSIONS=1``),
   proving the sdist builds where no Cython is installed: it must be tagged for this
   interpreter and hold one extension module per ``.pxd`` that has a ``.py``.

Then ``twine check --strict`` on every file, and the sdist's and wheels' contents: the
``.py``, ``.pxd`` and ``py.typed`` files ship, generated C never does, the sdist has the
README, LICENSE, pyproject.toml and setup.py. Exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, env={**os.environ, **(env or {})})


def fail(message: str) -> None:
    sys.exit(f"check_dist: {message}")


def one(outdir: Path, pattern: str) -> Path:
    found = sorted(outdir.glob(pattern))
    if len(found) != 1:
        fail(f"expected one {pattern} in {outdir}, found {[p.name for p in found]}")
    return found[0]


def check_members(names: list[str], where: str, *, compiled: bool) -> None:
    """The package's files are all there, with no generated C (and .so only if compiled)."""
    package = [n.split("tideloop/", 1)[1] for n in names if "/tideloop/" in f"/{n}"]
    for required in ("__init__.py", "py.typed", "_core/loop.py", "_core/loop.pxd"):
        if required not in package:
            fail(f"{where}: no tideloop/{required}")
    if any(n.endswith(".c") for n in package):
        fail(f"{where}: generated C shipped: {[n for n in package if n.endswith('.c')]}")
    pxd_modules = {n[: -len(".pxd")] for n in package if n.endswith(".pxd")}
    py_modules = {n[: -len(".py")] for n in package if n.endswith(".py")}
    so_modules = {n.split(".", 1)[0] for n in package if n.endswith(".so")}
    expected = (pxd_modules & py_modules) - {"__init__"} if compiled else set()
    if so_modules != expected:
        fail(f"{where}: extension modules {sorted(so_modules)}, expected {sorted(expected)}")


def main() -> None:
    args = sys.argv[1:]
    compiled = "--compiled" in args
    args = [a for a in args if a != "--compiled"]
    if len(args) != 2:
        sys.exit(__doc__)
    tree, outdir = Path(args[0]).resolve(), Path(args[1]).resolve()

    # sdist, then the pure wheel built from it (build's default order)
    run(
        sys.executable, "-m", "build", "--outdir", outdir, tree, env={"TIDELOOP_NO_EXTENSIONS": "1"}
    )
    sdist = one(outdir, "tideloop-*.tar.gz")
    pure = one(outdir, "tideloop-*-py3-none-any.whl")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    root = sdist.name[: -len(".tar.gz")]
    for required in ("README.md", "LICENSE", "pyproject.toml", "setup.py", "PKG-INFO"):
        if f"{root}/{required}" not in names:
            fail(f"{sdist.name}: no {required}")
    check_members(names, sdist.name, compiled=False)
    with zipfile.ZipFile(pure) as whl:
        check_members(whl.namelist(), pure.name, compiled=False)
    files = [sdist, pure]

    if compiled:
        wheels = outdir / "compiled"
        run(
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--outdir",
            wheels,
            sdist,
            env={"TIDELOOP_REQUIRE_EXTENSIONS": "1"},
        )
        platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
        wheel = one(wheels, f"tideloop-*-{tag}-*{platform}*.whl")
        with zipfile.ZipFile(wheel) as whl:
            check_members(whl.namelist(), wheel.name, compiled=True)
        files.append(wheel)

    run(sys.executable, "-m", "twine", "check", "--strict", *files)
    print("check_dist: OK:", ", ".join(p.name for p in files))


if __name__ == "__main__":
    main()
