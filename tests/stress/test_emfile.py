"""Out of file descriptors on accept (EMFILE): clients queue, and all are served later.

In a child process (so that the lowered RLIMIT_NOFILE cannot hurt the test process), a
server is started, the process's fds are exhausted, and CLIENTS clients connect (their
sockets made beforehand). While at the limit no client is served, and the loop reports
"socket.accept() out of system resource" (EMFILE) through its exception handler, as
asyncio does. Then exactly one fd is freed: the server serves the queued clients one at a
time (each served connection frees its fd when the client hangs up), so every client must
eventually get its echo. Finally the limit is restored and one more client is served.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest

CLIENTS = 25

SCRIPT = textwrap.dedent(
    """
    import asyncio, asyncio.constants, errno, json, os, resource, socket, sys

    asyncio.constants.ACCEPT_RETRY_DELAY = 0.05  # both loops read it when they back off
    CLIENTS = int(sys.argv[2])
    if sys.argv[1] == "tide":
        import tideloop
        loop = tideloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

    async def main():
        reports = []
        reported = asyncio.Event()

        def handler(_loop, ctx):
            reports.append((ctx["message"], getattr(ctx.get("exception"), "errno", None)))
            reported.set()

        loop.set_exception_handler(handler)
        server = await loop.create_server(Echo, "127.0.0.1", 0, backlog=CLIENTS + 5)
        addr = server.sockets[0].getsockname()
        clients = [socket.socket() for _ in range(CLIENTS + 1)]
        for c in clients:
            c.setblocking(False)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        fillers = []
        try:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard)
            )
            while True:
                try:
                    fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError as exc:
                    assert exc.errno == errno.EMFILE, exc
                    break
            for c in clients[:CLIENTS]:
                await loop.sock_connect(c, addr)  # queued in the kernel's backlog

            async def talk(i, c):
                await loop.sock_sendall(c, b"%d;" % i)
                got = b""
                while not got.endswith(b";"):
                    chunk = await loop.sock_recv(c, 100)
                    assert chunk, f"client {i}: EOF"
                    got += chunk
                c.close()
                return got.decode()

            talks = [asyncio.create_task(talk(i, c)) for i, c in enumerate(clients[:CLIENTS])]
            await reported.wait()  # the server hit the limit
            for _ in range(10):  # some loop iterations: nobody can be served
                await asyncio.sleep(0)
            served_at_limit = sum(t.done() for t in talks)
            os.close(fillers.pop())  # exactly one fd free from now on
            echoes = await asyncio.gather(*talks)
        finally:
            for fd in fillers:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        last = clients[CLIENTS]
        await loop.sock_connect(last, addr)
        await loop.sock_sendall(last, b"last")
        assert await loop.sock_recv(last, 100) == b"last"
        last.close()
        server.close()
        await server.wait_closed()
        return {
            "served_at_limit": served_at_limit,
            "echoes": echoes,
            "reports": sorted(set(map(tuple, reports))),
            "n_reports": len(reports),
        }

    try:
        print(json.dumps(loop.run_until_complete(asyncio.wait_for(main(), 40))))
    finally:
        loop.close()
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc/self/fd")
@pytest.mark.timeout(60)
def test_emfile_queue_then_serve_all(loop_impl: Any) -> None:
    env = dict(os.environ, PYTHONASYNCIODEBUG="")
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT, loop_impl.impl, str(CLIENTS)],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = json.loads(proc.stdout)
    assert out["served_at_limit"] == 0, out
    assert out["echoes"] == [f"{i};" for i in range(CLIENTS)]
    assert out["reports"] == [["socket.accept() out of system resource", errno.EMFILE]], out
    assert out["n_reports"] >= 1
