"""The examples are the project's "main job": each runs unchanged on tideloop and checks itself.

Convention (examples/README.md): an example is a plain asyncio program that exits 0 only
when everything it did was verified, prints ``loop: <module>.<class>`` naming the loop it ran
on, and ends its output with ``OK``. Every examples/*.py is run here through
``python -m tideloop``; specific examples get extra checks below.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ALL_EXAMPLES = sorted(EXAMPLES.glob("*.py"))
TIMEOUT = 30  # a safety net only: each example takes well under a second


def run_example(path: Path, *, on_tideloop: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    launcher = ["-m", "tideloop"] if on_tideloop else []
    return subprocess.run(
        [sys.executable, *launcher, str(path)],
        # Not the repo root: nothing there may shadow the installed package.
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}--- stderr\n{result.stderr}"


def test_examples_exist() -> None:
    assert EXAMPLES / "echo_sock.py" in ALL_EXAMPLES


@pytest.mark.parametrize("path", ALL_EXAMPLES, ids=[p.stem for p in ALL_EXAMPLES])
def test_example_runs_on_tideloop(path: Path) -> None:
    result = run_example(path)
    assert result.returncode == 0, report(result)
    lines = result.stdout.splitlines()
    assert lines and lines[-1] == "OK", report(result)
    loop_lines = [line for line in lines if line.startswith("loop: ")]
    assert len(loop_lines) == 1, report(result)
    assert loop_lines[0].removeprefix("loop: ").startswith("tideloop."), report(result)
    assert result.stderr == "", report(result)


def test_echo_sock_report() -> None:
    result = run_example(EXAMPLES / "echo_sock.py")
    assert result.returncode == 0, report(result)
    out = result.stdout
    assert "server: 127.0.0.1:" in out, report(result)
    assert "8 connections" in out, report(result)
    assert "echoed and verified" in out, report(result)


def test_echo_sock_is_a_plain_asyncio_program() -> None:
    # The same file, run by plain python, runs on asyncio's own loop: it needs no tideloop.
    result = run_example(EXAMPLES / "echo_sock.py", on_tideloop=False)
    assert result.returncode == 0, report(result)
    assert "loop: asyncio." in result.stdout, report(result)
    assert "tideloop" not in (EXAMPLES / "echo_sock.py").read_text().split('"""', 2)[2]
