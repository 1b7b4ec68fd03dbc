"""Signals: SIGINT ends a running loop with KeyboardInterrupt, and no signal is lost.

Each case runs in a child process which first puts SIGINT back to Python's default handler
(a background test run may have started it with SIGINT ignored). The child prints "ready"
once it is where the signal must find it; the test then sends SIGINT and compares the
child's report with the one expected (asyncio's behaviour):

- ``loop.run_until_complete`` of a sleeping task: KeyboardInterrupt out of it, and the loop
  can run again (to cancel the task);
- ``asyncio.Runner.run``: the main task is cancelled, then ``run`` raises KeyboardInterrupt;
- the same two while data streams through a TCP echo connection;
- a signal handled by ``loop.add_signal_handler`` and raised before ``run_forever`` /
  ``run_until_complete``: its callback runs once the loop runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

PRELUDE = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if sys.argv[1] == "tide":
        import tideloop
        factory = tideloop.new_event_loop
    else:
        factory = asyncio.new_event_loop

    def say(*args):
        print(*args, flush=True)

    async def stream_forever():
        async def echo(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        block = bytes(range(256)) * 256
        first = True
        while True:
            writer.write(block)
            assert await reader.readexactly(len(block)) == block
            if first:
                say("ready")
                first = False
    """
)

SCRIPTS = {
    "run_until_complete": """
        async def main():
            say("ready")
            await asyncio.sleep(3600)

        loop = factory()
        task = loop.create_task(main())
        try:
            loop.run_until_complete(task)
        except KeyboardInterrupt:
            say("KeyboardInterrupt")
        # Where the signal lands decides whether the task saw it (done) or not: either way
        # the loop can run again and the task be ended.
        task.cancel()
        loop.run_until_complete(asyncio.wait([task]))
        say("task done:", task.done())
        loop.close()
    """,
    "runner": """
        async def main():
            try:
                say("ready")
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                say("main cancelled")
                raise

        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(main())
        except KeyboardInterrupt:
            say("KeyboardInterrupt")
    """,
    "runner_streaming": """
        async def main():
            try:
                await stream_forever()
            except asyncio.CancelledError:
                say("main cancelled")
                raise

        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(main())
        except KeyboardInterrupt:
            say("KeyboardInterrupt")
    """,
    "run_until_complete_streaming": """
        loop = factory()
        try:
            loop.run_until_complete(stream_forever())
        except KeyboardInterrupt:
            say("KeyboardInterrupt")
        os._exit(0)  # the interrupted loop holds open transports: leave without cleanup
    """,
    "before_run_forever": """
        loop = factory()
        loop.add_signal_handler(signal.SIGUSR1, lambda: (say("handler ran"), loop.stop()))
        os.kill(os.getpid(), signal.SIGUSR1)
        say("ready")
        guard = loop.call_later(20, lambda: (say("signal lost"), loop.stop()))
        loop.run_forever()
        guard.cancel()
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.close()
    """,
    "before_run_until_complete": """
        loop = factory()
        fut = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, fut.set_result, "handler ran")
        os.kill(os.getpid(), signal.SIGUSR1)
        say("ready")
        say(loop.run_until_complete(asyncio.wait_for(fut, 20)))
        loop.remove_signal_handler(signal.SIGUSR1)
        loop.close()
    """,
}

EXPECTED = {
    "run_until_complete": ["KeyboardInterrupt", "task done: True"],
    "runner": ["main cancelled", "KeyboardInterrupt"],
    "runner_streaming": ["main cancelled", "KeyboardInterrupt"],
    "run_until_complete_streaming": ["KeyboardInterrupt"],
    "before_run_forever": ["handler ran"],
    "before_run_until_complete": ["handler ran"],
}


@pytest.mark.parametrize("case", list(SCRIPTS))
def test_signal(loop_impl: Any, case: str) -> None:
    script = PRELUDE + textwrap.dedent(SCRIPTS[case])
    env = dict(os.environ, PYTHONASYNCIODEBUG="")
    with subprocess.Popen(
        [sys.executable, "-c", script, loop_impl.impl],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        try:
            assert proc.stdout is not None and proc.stderr is not None
            first = proc.stdout.readline()
            if first == "ready\n" and case not in (
                "before_run_forever",
                "before_run_until_complete",
            ):
                proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)  # the child writes a few lines: no pipe can fill up
            out, err = proc.stdout.read(), proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert first == "ready\n", (first, err)
    assert proc.returncode == 0, err
    assert out.splitlines() == EXPECTED[case], err
    if "streaming" not in case:  # an interrupted stream may leave callbacks that complain
        assert err == ""
