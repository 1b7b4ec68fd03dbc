"""The I/O backends: the switch that picks one, the contract each keeps, and a loop on each.

(a) ``TIDELOOP_POLLER`` and the ``poller=`` argument of ``new_event_loop``/``EventLoop``
    (the argument wins; an unknown name is a ValueError naming the valid ones), and the
    loop's repr naming its backend;
(b) one contract test, run on every backend class of ``tideloop._poll.POLLERS`` directly;
(c) a TCP echo and a subprocess on a loop made with each backend.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import tideloop
from tideloop._poll import POLLERS, READ, WRITE, default_poller_class
from tideloop._poll.uring import uring_refusal

BACKENDS = sorted(POLLERS)
ENV = "TIDELOOP_POLLER"
# Where the kernel refuses io_uring, asking for it gives epoll (tests/unit/test_uring.py):
# the tests below that expect the backend asked for skip it there.
_URING_REFUSAL = uring_refusal() if sys.platform.startswith("linux") else OSError("not Linux")
USABLE = [name for name in BACKENDS if name != "io_uring" or _URING_REFUSAL is None]
EACH = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            name not in USABLE, reason=f"io_uring refused here: {_URING_REFUSAL}"
        ),
    )
    for name in BACKENDS
]


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The test starts with TIDELOOP_POLLER unset (the suite may run under it)."""
    monkeypatch.delenv(ENV, raising=False)
    return monkeypatch


def _backend_of(loop: Any) -> type:
    try:
        return type(loop._poller)
    finally:
        loop.close()


# ----------------------------------------------------------------------------- (a) the switch


def test_table_names_match_the_classes() -> None:
    assert {"epoll", "select", "io_uring"} <= set(POLLERS)
    for name, cls in POLLERS.items():
        assert cls.name == name


def test_the_suite_runs_on_the_backend_it_names() -> None:
    """CI runs the suites with TIDELOOP_POLLER set (e.g. io_uring): a loop made without an
    argument must then be on that backend, not on a fall-back."""
    name = os.environ.get(ENV) or None
    loop = tideloop.new_event_loop()
    try:
        assert loop._poller.name == (name or default_poller_class().name)  # type: ignore[attr-defined]
    finally:
        loop.close()


def test_default_is_the_platform_default(no_env: pytest.MonkeyPatch) -> None:
    assert _backend_of(tideloop.new_event_loop()) is default_poller_class()
    no_env.setenv(ENV, "")  # empty counts as unset
    assert _backend_of(tideloop.new_event_loop()) is default_poller_class()


@pytest.mark.parametrize("name", EACH)
def test_environment_variable_picks_the_backend(no_env: pytest.MonkeyPatch, name: str) -> None:
    no_env.setenv(ENV, name)
    assert _backend_of(tideloop.new_event_loop()) is POLLERS[name]
    assert _backend_of(tideloop.EventLoop()) is POLLERS[name]


def test_environment_variable_is_read_when_a_loop_is_created(
    no_env: pytest.MonkeyPatch,
) -> None:
    for name in [*USABLE, *reversed(USABLE)]:
        no_env.setenv(ENV, name)
        assert _backend_of(tideloop.new_event_loop()) is POLLERS[name]


@pytest.mark.parametrize("name", EACH)
def test_argument_picks_the_backend(no_env: pytest.MonkeyPatch, name: str) -> None:
    assert _backend_of(tideloop.new_event_loop(poller=name)) is POLLERS[name]
    assert _backend_of(tideloop.EventLoop(poller=name)) is POLLERS[name]
    assert _backend_of(tideloop.new_event_loop(name)) is POLLERS[name]


@pytest.mark.parametrize("name", EACH)
def test_argument_wins_over_the_environment(no_env: pytest.MonkeyPatch, name: str) -> None:
    other = next(n for n in USABLE if n != name)
    no_env.setenv(ENV, other)
    assert _backend_of(tideloop.new_event_loop(poller=name)) is POLLERS[name]
    no_env.setenv(ENV, "no-such-backend")  # not even read when the argument is given
    assert _backend_of(tideloop.EventLoop(poller=name)) is POLLERS[name]


@pytest.mark.parametrize("where", ["env", "argument"])
def test_unknown_name_raises_value_error_naming_the_valid_ones(
    no_env: pytest.MonkeyPatch, where: str
) -> None:
    if where == "env":
        no_env.setenv(ENV, "kqueue")
    with pytest.raises(ValueError) as info:
        if where == "env":
            tideloop.new_event_loop()
        else:
            tideloop.EventLoop(poller="kqueue")
    message = str(info.value)
    assert "'kqueue'" in message
    assert all(f"'{name}'" in message for name in BACKENDS), message
    assert (ENV in message) == (where == "env")
    # The half-made loop goes quietly (no "unclosed event loop" warning, no error in __del__;
    # the suite turns either into a failure).
    del info
    gc.collect()


def test_core_still_takes_a_poller_object(no_env: pytest.MonkeyPatch) -> None:
    poller = POLLERS["select"]()
    loop = tideloop.EventLoop(poller=poller)  # type: ignore[arg-type]
    try:
        assert loop._poller is poller
        assert loop.run_until_complete(asyncio.sleep(0, "ok")) == "ok"
    finally:
        loop.close()


@pytest.mark.parametrize("name", EACH)
def test_repr_names_the_backend(no_env: pytest.MonkeyPatch, name: str) -> None:
    loop = tideloop.new_event_loop(poller=name)
    debug = loop.get_debug()  # True under PYTHONASYNCIODEBUG=1

    async def running() -> str:
        return repr(asyncio.get_running_loop())

    try:
        assert repr(loop) == f"<EventLoop running=False closed=False debug={debug} poller={name}>"
        seen = loop.run_until_complete(running())
    finally:
        loop.close()
    assert seen == f"<EventLoop running=True closed=False debug={debug} poller={name}>"
    assert repr(loop) == f"<EventLoop running=False closed=True debug={debug} poller={name}>"


# ----------------------------------------------------------------------------- (b) the contract


@pytest.fixture(params=EACH)
def poller(request: pytest.FixtureRequest) -> Iterator[Any]:
    p = POLLERS[request.param]()
    yield p
    p.close()


def _events(poller: Any, timeout: float | None = 0) -> dict[int, int]:
    result = poller.poll(timeout)
    as_dict = dict(result)
    assert len(as_dict) == len(result), f"an fd reported twice: {result}"
    return as_dict


def test_poller_contract(poller: Any) -> None:
    assert isinstance(poller.fileno(), int)
    a, b = socket.socketpair()
    r, w = os.pipe()
    r2, w2 = os.pipe()
    closed: list[Any] = []
    try:
        fa = a.fileno()
        # Nothing ready: timeout 0 returns at once, a positive one waits at least that long.
        poller.register(fa, READ)
        assert _events(poller, 0) == {}
        t0 = time.monotonic()
        assert _events(poller, 0.02) == {}
        assert time.monotonic() - t0 >= 0.02  # rounded up, never down

        # Level-triggered READ; None blocks until something is ready (a thread writes).
        writer = threading.Timer(0.01, b.send, (b"x",))
        writer.start()
        try:
            assert _events(poller, None) == {fa: READ}
        finally:
            writer.join()
        assert _events(poller, 0) == {fa: READ}
        assert _events(poller, 5.0) == {fa: READ}  # ready: returns without waiting

        # modify changes the mask; a socket with room in its buffer is writable.
        poller.modify(fa, READ | WRITE)
        assert _events(poller) == {fa: READ | WRITE}
        poller.modify(fa, WRITE)
        assert _events(poller) == {fa: WRITE}
        a.recv(1)
        poller.modify(fa, READ)
        assert _events(poller) == {}

        # unregister: no more events, even when ready.
        b.send(b"y")
        poller.unregister(fa)
        assert _events(poller) == {}
        # register again after unregister; register on a registered fd acts as modify, and
        # modify on an unregistered fd as register (a closed-and-reused fd number).
        poller.register(fa, WRITE)
        poller.register(fa, READ | WRITE)
        assert _events(poller) == {fa: READ | WRITE}
        poller.unregister(fa)
        poller.modify(fa, READ)
        assert _events(poller) == {fa: READ}
        poller.unregister(fa)

        # Error / hang-up: reported with every event the fd is registered for.
        poller.register(w, READ)  # a pipe's write end: EPOLLERR once the read end closes
        assert _events(poller) == {}
        os.close(r)
        closed.append(r)
        assert _events(poller).get(w, 0) & READ
        poller.unregister(w)
        poller.register(r2, WRITE)  # a pipe's read end: EPOLLHUP once the write end closes
        assert _events(poller) == {}
        os.close(w2)
        closed.append(w2)
        assert _events(poller).get(r2, 0) & WRITE
        poller.unregister(r2)
        poller.register(fa, READ | WRITE)
        b.close()
        assert _events(poller) == {fa: READ | WRITE}
        poller.unregister(fa)

        # Closed fds: registering one is an OSError; one closed while registered is forgotten
        # (nothing reported, poll does not fail) and unregistering it is not an error.
        c, d = socket.socketpair()
        fc = c.fileno()
        d.send(b"z")
        poller.register(fc, READ)
        assert _events(poller) == {fc: READ}
        c.close()
        assert fc not in _events(poller)
        poller.unregister(fc)
        d.close()
        with pytest.raises(OSError):
            poller.register(fc, READ)
    finally:
        a.close()
        b.close()
        for fd in (r, w, r2, w2):
            if fd not in closed:
                os.close(fd)

    # close: idempotent; a closed poller refuses to poll.
    poller.close()
    poller.close()
    with pytest.raises(ValueError):
        poller.poll(0)


# ----------------------------------------------------------------------------- (c) a loop on each


@pytest.mark.parametrize("name", EACH)
def test_tcp_echo_and_subprocess_on_each_backend(no_env: pytest.MonkeyPatch, name: str) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> tuple[type, bytes, bytes, int | None]:
        backend = type(asyncio.get_running_loop()._poller)  # type: ignore[attr-defined]
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        payload = os.urandom(256 * 1024)  # more than one socket buffer: WRITE is needed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        await writer.drain()
        echoed = await reader.readexactly(len(payload))
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await proc.communicate(b"tideloop")
        return backend, b"ok" if echoed == payload else b"mismatch", out, proc.returncode

    with asyncio.Runner(loop_factory=lambda: tideloop.new_event_loop(poller=name)) as runner:
        result = runner.run(asyncio.wait_for(main(), 30))
    assert result == (POLLERS[name], b"ok", b"TIDELOOP", 0)
