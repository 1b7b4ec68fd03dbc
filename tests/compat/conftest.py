"""Fixtures of the compat tests: real libraries and real servers, on tideloop and on asyncio.

Every scenario runs twice through the ``run`` fixture (built on ``loop_impl`` from
tests/conftest.py): on tideloop (id ``tide``) and, as the control, on asyncio's own loop (id
``aio``). ``run`` checks which loop is running and fails the scenario if the loop's
exception handler was called. A scenario that fails only on ``tide`` is a tideloop bug.

Servers (PostgreSQL, redis-server) are started once per session by the fixtures below, each
in its own temporary directory, on a free loopback port, and stopped at the end of the
session. Invariant: no server outlives the test session. Teardown stops each one (and kills
its process group if it does not stop in time); if pytest itself dies, the kernel sends each
server a signal (``PR_SET_PDEATHSIG``), so even then none is left behind.

A missing server binary fails the tests that need it (a skip could hide a broken install in
CI); ``TIDELOOP_COMPAT_SKIP_MISSING=1`` turns that into a skip, for local runs only.

Tests marked ``tls`` need TLS on the loop. While tideloop had none (issue 5) they were strict
xfails on ``tide`` (passing on ``aio``), expecting NotImplementedError or what the library
makes of it (``tls(raises=...)``); ``TLS_PENDING`` is computed from the loop class, so with
TLS present they simply run on both loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: Upper bound on one scenario (a safety net: each takes well under a second).
TIMEOUT = 20.0


def _tls_pending() -> bool:
    """True while tideloop's loop still inherits start_tls unimplemented from asyncio."""
    import tideloop

    return tideloop.EventLoop.start_tls is asyncio.AbstractEventLoop.start_tls


#: True until TLS (issue 5) lands: ``tls`` tests are then strict xfails on tideloop.
TLS_PENDING = _tls_pending()
TLS_PENDING_REASON = "TLS: issue 5"

COMPAT_DIR = Path(__file__).resolve().parent

# Run by test_pytest_plugins.py in a pytest of their own, with their own conftest.
collect_ignore = ["plugin_tests"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tls(raises=NotImplementedError): the test needs TLS on the loop (a strict xfail on"
        " tideloop while TLS_PENDING, failing with the exception given)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        mark = item.get_closest_marker("tls")
        if mark is None or not TLS_PENDING:
            continue
        callspec = getattr(item, "callspec", None)
        if callspec is None or "loop_impl" not in callspec.params:
            raise pytest.UsageError(f"{item.nodeid}: a tls test must use the run fixture")
        if callspec.params["loop_impl"] == "tide":
            # What the library makes of tideloop's NotImplementedError("TLS: issue 5").
            raises = mark.kwargs.get("raises", NotImplementedError)
            xfail = pytest.mark.xfail(raises=raises, strict=True, reason=TLS_PENDING_REASON)
            item.add_marker(xfail)


def on_tideloop() -> bool:
    """True when the running loop is tideloop's."""
    return type(asyncio.get_running_loop()).__module__.startswith("tideloop")


class Runner:
    """Runs a scenario (a coroutine function) on one loop, checking which loop it is."""

    def __init__(self, loop_factory: LoopFactory, impl: str) -> None:
        self.loop_factory = loop_factory
        self.impl = impl  # "tide" | "aio"

    def __call__(self, scenario: Callable[[], Awaitable[T]]) -> T:
        """Run the scenario; fail if the loop's exception handler was called meanwhile."""
        errors: list[dict[str, Any]] = []

        async def checked() -> T:
            loop = asyncio.get_running_loop()
            assert on_tideloop() == (self.impl == "tide"), loop
            loop.set_exception_handler(lambda loop, context: errors.append(context))
            async with asyncio.timeout(TIMEOUT):
                return await scenario()

        with asyncio.Runner(loop_factory=self.loop_factory) as runner:
            result = runner.run(checked())
        assert not errors, f"the loop reported errors: {errors}"
        return result


@pytest.fixture
def run(loop_impl: Any) -> Runner:
    """``run(scenario)``: run ``await scenario()`` on the loop under test, bounded in time."""
    return Runner(loop_impl, loop_impl.impl)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int | str, proc: subprocess.Popen[Any] | None, timeout: float = 20.0
) -> None:
    """Return once 127.0.0.1:port (or the Unix socket at path ``port``) accepts connections;
    fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode} before listening")
        try:
            if isinstance(port, str):
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(port)
            else:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"nothing listens on {port} after {timeout} s")
            time.sleep(0.05)


def wait_for_log(log: Path, text: str, proc: subprocess.Popen[Any], timeout: float = 20.0) -> None:
    """Return once ``text`` appears in the file ``log``; fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited with {proc.returncode}: {log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {text!r} in {log} after {timeout} s: {log.read_text()}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- processes
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child, after any setuid (which would clear it)
        _libc.prctl(_PR_SET_PDEATHSIG, sig)
        # A shell that started pytest in the background may have it ignore SIGINT; the
        # programs must see Ctrl+C as a terminal would deliver it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if os.getppid() == 1:  # the parent died before prctl: nobody would signal us
            os._exit(1)

    return preexec


def spawn(
    args: list[str], *, log: Path, death_signal: int = signal.SIGTERM, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a server process in its own session; it gets ``death_signal`` if we die."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(death_signal),
            **kwargs,
        )


def stop(proc: subprocess.Popen[Any], sig: int, timeout: float = 10.0) -> None:
    """Signal ``proc`` and wait; then kill its whole process group, whatever happened."""
    try:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def find_binary(name: str, *patterns: str) -> str:
    """The path of a server binary, or fail (skip with TIDELOOP_COMPAT_SKIP_MISSING=1)."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(
            (p for pattern in patterns for p in glob.glob(pattern)),
            key=lambda p: [int(x) if x.isdigit() else x for x in Path(p).parts],
        )
        found = candidates[-1] if candidates else None
    if found is None:
        message = f"{name} not found (.ci/run installs it with apt-get)"
        if os.environ.get("TIDELOOP_COMPAT_SKIP_MISSING") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return found


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """A temporary directory for the servers, readable by other users (postgres runs as one)."""
    root = Path(tempfile.mkdtemp(prefix="tideloop-compat-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- TLS
@dataclass
class TLS:
    """A test CA and a certificate for localhost / 127.0.0.1 signed by it."""

    ca: Any  # trustme.CA
    cert: Any  # trustme.LeafCert

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="session")
def tls() -> TLS:
    import trustme

    ca = trustme.CA()
    return TLS(ca, ca.issue_cert("localhost", "127.0.0.1"))


# --------------------------------------------------------------------------- PostgreSQL
@dataclass
class Postgres:
    host: str
    port: int
    socket_dir: str
    user: str
    database: str

    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


@pytest.fixture(scope="session")
def postgres(server_root: Path, tls: TLS) -> Iterator[Postgres]:
    """A PostgreSQL server (trust auth, TLS on), run as the postgres user when we are root."""
    patterns = ("/usr/lib/postgresql/*/bin/{}",)
    initdb = find_binary("initdb", *(p.format("initdb") for p in patterns))
    postgres_bin = str(Path(initdb).with_name("postgres"))
    if not os.path.exists(postgres_bin):
        postgres_bin = find_binary("postgres", *(p.format("postgres") for p in patterns))

    run_as: dict[str, Any] = {}
    owner = os.getuid(), os.getgid()
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        pw = pwd.getpwnam("postgres")
        run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        owner = pw.pw_uid, pw.pw_gid
    base = server_root / "postgres"
    data, sockets = base / "data", base / "sockets"
    for d in (base, sockets):
        d.mkdir(mode=0o700)
        os.chown(d, *owner)
    log = base / "log"
    log.touch()
    os.chown(log, *owner)

    subprocess.run(
        [initdb, "-D", str(data), "-U", "tideloop", "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        **run_as,
    )
    # The server's key must be owned by the server's user, mode 0600.
    cert, key = data / "server.crt", data / "server.key"
    tls.cert.cert_chain_pems[0].write_to_path(str(cert))
    tls.cert.private_key_pem.write_to_path(str(key))
    for path in (cert, key):
        path.chmod(0o600)
        os.chown(path, *owner)

    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(sockets),
        "ssl": "on",
        "ssl_cert_file": str(cert),
        "ssl_key_file": str(key),
        "fsync": "off",
        "full_page_writes": "off",
        "synchronous_commit": "off",
        "max_connections": "30",
    }
    args = [postgres_bin, "-D", str(data)]
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    # SIGINT: fast shutdown. If we die, SIGQUIT: immediate shutdown, backends included.
    proc = spawn(args, log=log, death_signal=signal.SIGQUIT, **run_as)
    try:
        # The port opens before the server accepts sessions ("starting up"): wait for both.
        wait_for_port(port, proc)
        wait_for_log(log, "ready to accept connections", proc)
        yield Postgres("127.0.0.1", port, str(sockets), "tideloop", "postgres")
    finally:
        stop(proc, signal.SIGINT)


# --------------------------------------------------------------------------- redis
@dataclass
class Redis:
    host: str
    port: int
    unix_socket: str
    tls_port: int


@pytest.fixture(scope="session")
def redis_server(server_root: Path, tls: TLS) -> Iterator[Redis]:
    """A redis-server with no persistence, on TCP, TLS over TCP and a Unix socket."""
    binary = find_binary("redis-server")
    base = server_root / "redis"
    base.mkdir()
    cert, key = base / "server.crt", base / "server.key"
    tls.cert.cert_chain_pems[0].write_to_path(str(cert))
    tls.cert.private_key_pem.write_to_path(str(key))
    port, tls_port, unix_socket = free_port(), free_port(), str(base / "redis.sock")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", unix_socket,
            "--unixsocketperm", "700", "--dir", str(base), "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--tls-port", str(tls_port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-auth-clients", "no"]  # fmt: skip
    proc = spawn(args, log=base / "log")
    try:
        wait_for_port(port, proc)
        wait_for_port(tls_port, proc)
        yield Redis("127.0.0.1", port, unix_socket, tls_port)
    finally:
        stop(proc, signal.SIGTERM)


# --------------------------------------------------------------------------- apps
APPS_DIR = COMPAT_DIR / "apps"


def load_app(name: str) -> types.ModuleType:
    """Import tests/compat/apps/<name>.py (test modules cannot import it: importlib mode)."""
    qualified = f"tideloop_compat_apps.{name}"
    module = sys.modules.get(qualified)
    if module is None:
        spec = importlib.util.spec_from_file_location(qualified, APPS_DIR / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def aiohttp_app() -> types.ModuleType:
    return load_app("aiohttp_app")


@dataclass
class Program:
    """A Python program run as a server by a test: started, waited for, stopped."""

    proc: subprocess.Popen[bytes]
    port: int
    uds: str  # a Unix socket path the program may listen on instead
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the program, wait for it to exit; return its exit status."""
        stop(self.proc, sig)
        return self.proc.returncode


@pytest.fixture
def program(tmp_path: Path) -> Iterator[Callable[[list[str]], Program]]:
    """``program(args)``: start ``python *args`` in APPS_DIR and wait for it to listen.

    ``{port}`` in args is replaced by a free port, ``{uds}`` by a Unix socket path; the
    program must listen on the one it is given (``Program.port`` / ``Program.uds``).
    Whatever is still running at the end of the test is killed.
    """
    started: list[Program] = []

    def start(args: list[str]) -> Program:
        port, uds = free_port(), str(tmp_path / f"program-{len(started)}.sock")
        log = tmp_path / f"program-{len(started)}.log"
        argv = [sys.executable]
        argv += (arg.replace("{port}", str(port)).replace("{uds}", uds) for arg in args)
        prog = Program(spawn(argv, log=log, cwd=APPS_DIR), port, uds, log)
        started.append(prog)
        wait_for_port(uds if "{uds}" in args else port, prog.proc)
        return prog

    yield start
    for prog in started:
        prog.stop(signal.SIGKILL)
