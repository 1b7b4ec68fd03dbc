"""Fixtures for the fault and abuse suite (tests/stress).

Every test here is black-box: it runs once on tideloop and once on asyncio (the reference)
through ``loop_impl`` from tests/conftest.py. This file adds:

- ``seed``: the random seed of a test (``TIDELOOP_STRESS_SEED`` or a fresh one), printed so
  that a failure can be replayed;
- ``server_ctx`` / ``client_ctx``: TLS contexts from the session's test CA (``test_ca``);
- ``run``: runs a coroutine function to completion on a fresh loop of ``loop_impl`` under a
  generous overall timeout, and fails the test if the loop's exception handler was called.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

HOST = "127.0.0.1"
TIMEOUT = 30.0  # upper bound of any one scenario: generous, never a performance threshold


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    value = os.environ.get("TIDELOOP_STRESS_SEED")
    s = int(value) if value else random.randrange(2**32)
    print(f"{request.node.nodeid}: seed {s} (replay with TIDELOOP_STRESS_SEED={s})")
    return s


@pytest.fixture(scope="session")
def server_ctx(test_ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("localhost", HOST).configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_ctx(test_ca: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    test_ca.configure_trust(ctx)
    return ctx


Runner = Callable[[Callable[[], Awaitable[Any]]], Any]


@pytest.fixture
def run(loop_impl: Any) -> Runner:
    """``run(main)``: ``main()`` on a new loop of ``loop_impl``, within TIMEOUT seconds.

    Any call of the loop's exception handler (an error the loop logged instead of raising)
    fails the test: the scenarios here must end cleanly on both loops.
    """

    def runner(main: Callable[[], Awaitable[Any]]) -> Any:
        reports: list[dict[str, Any]] = []

        async def wrapped() -> Any:
            asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: reports.append(ctx))
            async with asyncio.timeout(TIMEOUT):
                return await main()

        with asyncio.Runner(loop_factory=loop_impl) as r:
            result = r.run(wrapped())
        assert reports == [], f"{loop_impl.impl}: the loop reported errors: {reports}"
        return result

    return runner
