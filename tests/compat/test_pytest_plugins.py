"""pytest-asyncio and anyio's pytest plugin running tests on tideloop.

Each case writes a conftest.py that selects the loop the way the plugin documents, copies
plugin_tests/test_on_loop.py beside it, and runs pytest on them in a child process (its own
rootdir and ini, so this repository's pytest settings do not apply). The inner tests assert
which loop they run on; the ``aio`` control selects asyncio's loop the same way.

- pytest-asyncio 1.5: the ``pytest_asyncio_loop_factories`` hook (the documented way), and
  the ``event_loop_policy`` fixture (deprecated in 1.5, still common, so checked too);
- anyio: the ``anyio_backend`` fixture returning ``("asyncio", {"loop_factory": ...})``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INNER = Path(__file__).resolve().parent / "plugin_tests" / "test_on_loop.py"

INI = """\
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
filterwarnings =
    error
    ignore:.*event_loop_policy.*:DeprecationWarning
    ignore:'asyncio.DefaultEventLoopPolicy' is deprecated:DeprecationWarning
"""

FACTORY = {"tide": "tideloop.new_event_loop", "aio": "asyncio.new_event_loop"}
POLICY = {"tide": "tideloop.EventLoopPolicy()", "aio": "asyncio.DefaultEventLoopPolicy()"}

CONFTESTS = {
    "loop_factories_hook": """\
import asyncio, pytest, tideloop

def pytest_asyncio_loop_factories(config, item):
    return {{"loop": {factory}}}

@pytest.fixture
def anyio_backend():
    return "asyncio", {{"loop_factory": {factory}}}
""",
    "event_loop_policy_fixture": """\
import asyncio, pytest, tideloop

@pytest.fixture(scope="session")
def event_loop_policy():
    return {policy}

@pytest.fixture
def anyio_backend():
    return "asyncio", {{"loop_factory": {factory}}}
""",
}


@pytest.mark.parametrize("how", sorted(CONFTESTS))
def test_plugins(loop_impl: Any, how: str, tmp_path: Path) -> None:
    impl = loop_impl.impl
    conftest = CONFTESTS[how].format(factory=FACTORY[impl], policy=POLICY[impl])
    (tmp_path / "conftest.py").write_text(conftest)
    (tmp_path / "pytest.ini").write_text(INI)
    shutil.copy(INNER, tmp_path / INNER.name)
    env = dict(os.environ, EXPECT_TIDELOOP="1" if impl == "tide" else "0")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", INNER.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "5 passed" in result.stdout.splitlines()[-1], report
