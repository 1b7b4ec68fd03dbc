"""The public API's type hints, as a user's mypy sees them (``py.typed`` ships).

mypy --strict checks two programs against the installed tideloop: one that uses the public
API as documented must pass; one that misuses it must get exactly the errors marked in it
(so tideloop's hints are really read, not skipped as an untyped package's would be).
The hints are the ``.py`` files', the same in both builds: checked once, in compiled mode.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).parent / "typing_programs"

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("TIDELOOP_EXPECT_COMPILED") != "1",
        reason="the hints are the same .py files in both builds: checked in compiled mode",
    ),
    pytest.mark.timeout(180),
]


def mypy(program: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy", reason="no mypy in this venv (PyPy has none)")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(program),
        ],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")},
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )


def test_documented_use_passes_mypy_strict(tmp_path: Path) -> None:
    result = mypy(PROGRAMS / "uses_public_api.py", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_misuse_is_reported(tmp_path: Path) -> None:
    program = PROGRAMS / "misuses_public_api.py"
    expected = {
        (n, m.group(1))
        for n, line in enumerate(program.read_text().splitlines(), 1)
        if (m := re.search(r"# E: ([\w-]+)$", line))
    }
    result = mypy(program, tmp_path)
    reported = {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^[^:\n]+:(\d+): error: .*\[([\w-]+)\]$", result.stdout, re.M)
    }
    assert result.returncode == 1, result.stdout + result.stderr
    assert reported == expected, result.stdout
