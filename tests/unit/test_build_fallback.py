"""setup.py without a working compiler: a pure wheel that says why it is pure.

Builds this checkout's source (not the installed package) with pip, Cython hidden, and
installs the wheel into a scratch directory: the wheel must be ``py3-none-any`` (it holds no
compiled code), and ``python -m tideloop --version`` run on it must give the reason.
One build per interpreter: run in the pure mode's session only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("TIDELOOP_EXPECT_COMPILED") != "0",
        reason="one build per interpreter: in the pure mode's run",
    ),
    pytest.mark.skipif(sys.implementation.name == "pypy", reason="PyPy never compiles"),
    pytest.mark.timeout(300),
]


def test_failed_compile_falls_back_to_a_pure_wheel(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(
        REPO / "src",
        tree / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.egg-info", "build"),
    )
    # "import Cython" fails in the build, as where Cython is not installed.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "Cython.py").write_text("raise ImportError('hidden by the test')\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIDELOOP_", "PIP_")) and k != "PYTHONPATH"
    }
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(tmp_path / "wheels"),
            str(tree),
        ],
        env={**env, "PYTHONPATH": str(hide)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "wheels").glob("tideloop-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        note = whl.read("tideloop/BUILD_FALLBACK.txt").decode()
    assert not [n for n in names if n.endswith((".so", ".c"))]
    assert "Cython is not installed" in note

    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    version = subprocess.run(
        [sys.executable, "-m", "tideloop", "--version"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert version.stdout.startswith("tideloop ")
    assert "(pure Python: compiling failed at install: " in version.stdout
    assert "Cython is not installed" in version.stdout
