"""Run by test_pytest_plugins.py in a pytest of its own (never collected directly).

EXPECT_TIDELOOP (from the environment) says which loop every test must find itself on.
The same checks run under pytest-asyncio (strict mode, ``asyncio`` marks) and under
anyio's plugin (``anyio`` marks, the ``anyio_backend`` fixture from conftest.py).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

EXPECT_TIDELOOP = os.environ["EXPECT_TIDELOOP"] == "1"


def check_loop() -> None:
    module = type(asyncio.get_running_loop()).__module__
    assert module.startswith("tideloop") == EXPECT_TIDELOOP, module


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write((await reader.readline()).upper())
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest_asyncio.fixture
async def echo_port() -> AsyncIterator[int]:
    check_loop()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.mark.asyncio
async def test_asyncio_mark() -> None:
    check_loop()
    await asyncio.sleep(0.001)


@pytest.mark.asyncio
async def test_asyncio_async_fixture(echo_port: int) -> None:
    check_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
    writer.write(b"hello\n")
    assert await reader.readline() == b"HELLO\n"
    writer.close()
    await writer.wait_closed()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop_first() -> None:
    check_loop()
    globals()["module_loop"] = asyncio.get_running_loop()


@pytest.mark.asyncio(loop_scope="module")
async def test_module_loop_second() -> None:
    assert asyncio.get_running_loop() is globals()["module_loop"]


@pytest.mark.anyio
async def test_anyio_mark() -> None:
    import anyio

    check_loop()
    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.sleep, 0.001)
