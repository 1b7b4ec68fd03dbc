"""Shared pytest configuration for every test under tests/.

The ini settings (filterwarnings = error, xfail_strict, --strict-markers, the 60 s default
timeout of pytest-timeout, the marker list) live in pyproject.toml under
[tool.pytest.ini_options]. This file adds what needs code:

- the ``pure_only(reason=...)`` / ``compiled_only(reason=...)`` markers: a test that cannot
  run in one build mode says so and is *skipped* there, visibly, with its reason (black's
  ``incompatible_with_mypyc``), instead of silently returning;
- the ``loop_impl`` fixture: a loop factory, ``tideloop.new_event_loop`` (id ``tide``) or
  ``asyncio.new_event_loop`` (id ``aio``), so a black-box test is written once and run on
  both, like uvloop's ``Test_UV_*`` / ``Test_AIO_*`` twins;
- a report header saying which tideloop is under test (version, build mode, location).

Tests run against the *installed* tideloop: nothing here touches sys.path (scripts/test
installs the package into a venv and runs pytest with --import-mode=importlib).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_BUILD_MARKERS = ("pure_only", "compiled_only")


def _tideloop_compiled() -> bool:
    import tideloop

    return bool(tideloop.COMPILED)


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        import tideloop

        mode = "compiled" if tideloop.COMPILED else "pure Python"
        where = os.path.dirname(tideloop.__file__ or "?")
        line = f"tideloop {tideloop.__version__} ({mode}) from {where}"
    except Exception as exc:  # the header must never hide the real error behind its own
        line = f"tideloop: cannot import: {type(exc).__name__}: {exc}"
    expect = os.environ.get("TIDELOOP_EXPECT_COMPILED")
    if expect is not None:
        line += f"; TIDELOOP_EXPECT_COMPILED={expect}"
    return [line]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Skips are added at collection, so the report points at the test, not at this file.
    compiled: bool | None = None  # import tideloop only if some test is marked
    for item in items:
        for name in _BUILD_MARKERS:
            mark = item.get_closest_marker(name)
            if mark is None:
                continue
            reason = mark.kwargs.get("reason")
            if not isinstance(reason, str) or mark.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: use @pytest.mark.{name}(reason='why') "
                    "with a reason= keyword and nothing else"
                )
            if compiled is None:
                compiled = _tideloop_compiled()
            if compiled == (name == "pure_only"):
                item.add_marker(pytest.mark.skip(reason=f"{name}: {reason}"))


def _asyncio_factory() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def _tideloop_factory() -> asyncio.AbstractEventLoop:
    import tideloop

    return tideloop.new_event_loop()


@pytest.fixture(params=["tide", "aio"])
def loop_impl(request: pytest.FixtureRequest) -> Iterator[LoopFactory]:
    """A loop factory: tideloop's (id ``tide``) or asyncio's default (id ``aio``).

    Use it wherever asyncio takes a factory::

        def test_sleep(loop_impl):
            with asyncio.Runner(loop_factory=loop_impl) as runner:
                runner.run(asyncio.sleep(0))

    ``loop_impl.impl`` is ``"tide"`` or ``"aio"``. Every loop made through the factory
    must be closed by the test: one left open is closed here and fails the test at
    teardown (an unclosed loop would otherwise warn in some later test).
    """
    make = _tideloop_factory if request.param == "tide" else _asyncio_factory
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        loop = make()
        made.append(loop)
        return loop

    factory.impl = request.param  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = f"loop_impl[{request.param}]"
    yield factory

    left_open = [loop for loop in made if not loop.is_closed()]
    if left_open:
        described = repr(left_open)
        for loop in left_open:
            if not loop.is_running():
                loop.close()
        pytest.fail(f"{len(left_open)} event loop(s) left open by the test: {described}")
