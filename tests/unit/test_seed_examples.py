"""The asyncio documentation's example programs, run unchanged on tideloop and on asyncio.

tests/seeds/ holds every example program of the seed documents (the asyncio pages
"Transports and Protocols", "Streams" and "Low-level API Index"), copied byte for byte;
tests/seeds/MANIFEST.md says where each one comes from. Each test here runs one of them (or
a server and a client) in a subprocess of this interpreter, either through
``python -m tideloop`` (id ``tide``) or with plain ``python`` (id ``aio``: the control, which
must meet the same expectations on the reference loop), and checks what it printed, line by
line, plus its exit status and stderr. The streams examples also run with id ``tidestreams``:
tideloop's loop with tideloop's own streams swapped in for asyncio's (``_tidestreams.py``).

Features tideloop does not have yet: a ``tide`` case whose example needs a loop method that
tideloop still inherits, unimplemented, from ``asyncio.AbstractEventLoop`` is a strict xfail
naming the issue. That is decided at collection by looking at the loop class
(``_tideloop_lacks``), so when the method lands the xfail goes away by itself and the test
must pass. ``loop.start_tls`` stands for TLS as a whole (``ssl=`` comes with it, issue 5).

Fixed addresses: the examples hard-code 127.0.0.1:8888 (TCP), 127.0.0.1:9999 (UDP) and port
80/443 (the HTTP headers example). Every test that binds one takes an exclusive flock first,
so that concurrent runs on one machine (build modes, interpreters, a colleague's run) take
turns rather than talk to each other's servers. The HTTP test serves on a random 127/8
address, which the example reaches through the URL it takes on its command line.

Servers are started in the background and are known to be ready when the server *process*
owns a socket bound to the port (read from /proc, which is why those tests need Linux);
connecting to find out would add a connection to the output being checked. They are stopped
the way a user stops them, with SIGINT, and must then exit through KeyboardInterrupt.

The environment passes through unchanged (a PYTHONPATH pointing at a source tree keeps
working), plus PYTHONUNBUFFERED=1 so that a server's output can be awaited line by line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import functools
import os
import random
import re
import shutil
import signal
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

import pytest

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
# Seconds: a safety net for each step (start, run, stop); every example takes well under one.
# A server test has up to four steps, which must fit in pytest-timeout's 60 s, so that a
# hang fails here, with the output, and the fixture still reaps the processes.
TIMEOUT = 14
HAVE_PROC_NET = Path("/proc/self/net/tcp").exists()
needs_proc_net = pytest.mark.skipif(
    not HAVE_PROC_NET, reason="readiness of a server is read from /proc/PID/net (Linux)"
)

# A loop method an example needs -> (what it is, the issue that brings it to tideloop).
FEATURES: dict[str, tuple[str, int]] = {
    "call_soon": ("loop.call_soon", 2),
    "call_later": ("loop.call_later", 2),
    "add_reader": ("loop.add_reader", 2),
    "add_signal_handler": ("loop.add_signal_handler", 2),
    "create_connection": ("loop.create_connection", 3),
    "create_server": ("loop.create_server", 3),
    "create_datagram_endpoint": ("loop.create_datagram_endpoint", 3),
    "start_tls": ("TLS (ssl=, loop.start_tls)", 5),
    "subprocess_exec": ("loop.subprocess_exec", 6),
}


@functools.cache
def _tideloop_lacks(method: str) -> bool:
    """True while tideloop's loop still inherits *method* unimplemented from asyncio."""
    import tideloop

    loop = tideloop.new_event_loop()
    try:
        cls = type(loop)
    finally:
        loop.close()
    return getattr(cls, method) is getattr(asyncio.AbstractEventLoop, method)


def impls(*methods: str, streams: bool = False) -> list[Any]:
    """The ``impl`` parameters: ``tide`` (a strict xfail while a needed method is missing)
    and ``aio``; with *streams*, also ``tidestreams``: tideloop's loop and tideloop's
    streams in place of asyncio's (_tidestreams.py)."""
    for method in methods:
        assert method in FEATURES, method
    missing = [method for method in methods if _tideloop_lacks(method)]
    marks: list[pytest.MarkDecorator] = []
    if missing:
        needs = ", ".join(FEATURES[method][0] for method in missing)
        issues = ", ".join(str(n) for n in sorted({FEATURES[method][1] for method in missing}))
        label = "issue" if "," not in issues else "issues"
        marks.append(pytest.mark.xfail(reason=f"needs {needs}: {label} {issues}", strict=True))
    params = [pytest.param("tide", marks=marks, id="tide"), pytest.param("aio", id="aio")]
    if streams:
        params.append(pytest.param("tidestreams", marks=marks, id="tidestreams"))
    return params


# ------------------------------------------------------------------------------- running


@dataclass
class Result:
    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}---"
        )


def command(impl: str, name: str, *args: str) -> list[str]:
    if impl == "tidestreams" and not name.endswith("_streams"):
        impl = "tide"  # a Protocol example beside a streams one: tideloop's loop alone
    launcher = {
        "tide": ["-m", "tideloop"],
        "tidestreams": [str(Path(__file__).with_name("_tidestreams.py"))],
        "aio": [],
    }[impl]
    return [sys.executable, *launcher, str(SEEDS / f"{name}.py"), *args]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def run(impl: str, name: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    argv = command(impl, name, *args)
    try:
        done = subprocess.run(
            argv,
            cwd=cwd,  # an empty directory: nothing in it can shadow a module
            env=env or environment(),
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # killed: show what it had printed by then
        partial = Result(argv, -signal.SIGKILL, _text(exc.stdout), _text(exc.stderr))
        raise AssertionError(f"still running after {TIMEOUT} s:\n{partial}") from None
    return Result(argv, done.returncode, done.stdout, done.stderr)


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):  # TimeoutExpired may hold bytes even in text mode
        return output.decode("utf-8", "replace")
    return output or ""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Background:
    """An example running in the background, its output collected as it comes."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            # It is stopped with SIGINT, as a user stops it: make sure SIGINT is not ignored
            # (a test run started in the background of a non-interactive shell ignores it,
            # and a Python child keeps an inherited SIG_IGN).
            preexec_fn=_default_sigint,
        )
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._output = threading.Condition()  # notified at each line and at each EOF
        self._eof = 0
        self._readers = [
            threading.Thread(target=self._drain, args=(stream, sink), daemon=True)
            for stream, sink in ((self.proc.stdout, self._stdout), (self.proc.stderr, self._stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _drain(self, stream: IO[str], sink: list[str]) -> None:
        for line in stream:
            with self._output:
                sink.append(line)
                self._output.notify_all()
        with self._output:
            self._eof += 1
            self._output.notify_all()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_for_lines(self, count: int) -> None:
        """Wait until the program has printed *count* lines (or has exited)."""
        deadline = time.monotonic() + TIMEOUT
        with self._output:
            while (
                len("".join(self._stdout).splitlines()) < count
                and self._eof < len(self._readers)
                and self.running()
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # Woken by each line and by the EOFs; the 0.5 s slices only re-check
                # running(), for an exit that leaves the pipes open (no event for that).
                self._output.wait(min(left, 0.5))
            else:
                return
        raise AssertionError(f"no {count} lines of output in {TIMEOUT} s:\n{self.stop()}")

    def stop(self, signum: int = signal.SIGINT) -> Result:
        """Send *signum* if it is still running; wait for it; return what it did."""
        if self.running():
            self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self._result()

    def kill(self) -> None:
        if self.running():
            self.proc.kill()
        self.proc.wait()
        self._result()

    def _result(self) -> Result:
        for reader in self._readers:
            reader.join(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return Result(self.argv, self.proc.returncode, "".join(self._stdout), "".join(self._stderr))


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Callable[..., Background]]:
    """Start an example in the background: ``background(impl, name, *args)``.

    Whatever is still running at teardown is killed."""
    started: list[Background] = []

    def start(impl: str, name: str, *args: str) -> Background:
        started.append(Background(command(impl, name, *args), tmp_path))
        return started[-1]

    yield start
    for bg in started:
        bg.kill()


@contextlib.contextmanager
def fixed_ports() -> Iterator[None]:
    """Hold the machine-wide lock of the examples' hard-coded addresses."""
    path = Path(tempfile.gettempdir()) / "tideloop-seed-examples.lock"
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _bound(pid: int, kind: str, port: int) -> bool:
    """Does process *pid* own a *kind* ("tcp": listening, "udp": bound) socket on *port*?"""
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        tables = [Path(f"/proc/{pid}/net/{kind}{v}").read_text() for v in ("", "6")]
    except OSError:  # it has exited
        return False
    for table in tables:
        for row in table.splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) != port or inode not in inodes:
                continue
            if kind == "udp" or state == "0A":  # 0A: TCP_LISTEN
                return True
    return False


def wait_bound(bg: Background, kind: str, port: int) -> None:
    # Another process binding a socket has no event we could wait on: polls /proc (bounded).
    deadline = time.monotonic() + TIMEOUT
    while not _bound(bg.pid, kind, port):
        if not bg.running():
            raise AssertionError(f"the server exited before binding {kind} {port}:\n{bg.stop()}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the server did not bind {kind} {port} in {TIMEOUT} s:\n{bg.stop()}"
            )
        time.sleep(0.01)


# ------------------------------------------------------------------------------- checking

# asyncio's debug mode (the PYTHONASYNCIODEBUG=1 pass of scripts/test) may log slow steps.
_DEBUG_NOISE = re.compile(r"Executing <.*> took \d+\.\d+ seconds")


def clean_stderr(result: Result) -> None:
    noise = [line for line in result.stderr.splitlines() if not _DEBUG_NOISE.fullmatch(line)]
    assert noise == [], result


def assert_lines(result: Result, patterns: Sequence[str]) -> list[re.Match[str]]:
    """Each stdout line fully matches its regex; returns the matches."""
    assert len(result.lines) == len(patterns), result
    matches = []
    for line, pattern in zip(result.lines, patterns, strict=True):
        match = re.fullmatch(pattern, line)
        assert match, f"{line!r} does not match {pattern!r}\n{result}"
        matches.append(match)
    return matches


def assert_ok(result: Result, lines: Sequence[str]) -> None:
    """Exit status 0, nothing on stderr, exactly these lines on stdout."""
    assert result.returncode == 0, result
    clean_stderr(result)
    assert result.lines == list(lines), result


def assert_interrupted(result: Result) -> None:
    """Stopped by SIGINT: asyncio.run() cancelled main() and raised KeyboardInterrupt."""
    assert result.returncode == -signal.SIGINT, result
    assert result.stderr.splitlines()[-1:] == ["KeyboardInterrupt"], result


def between(before: dt.datetime, text: str, after: dt.datetime, result: Result) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AssertionError(f"{text!r} is not a datetime\n{result}") from None
    assert before <= when <= after, result
    return when


def q(text: str) -> str:
    return re.escape(text)


PEER = r"\('127\.0\.0\.1', (\d+)\)"  # a client's address as the servers print it

# ------------------------------------------------------------------------------- TCP echo

TCP_SERVERS = {
    "tcp_echo_server_protocol": [
        f"Connection from {PEER}",
        q("Data received: 'Hello World!'"),
        q("Send: 'Hello World!'"),
        q("Close the client socket"),
    ],
    "tcp_echo_server_protocol_001": [
        f"Connection from {PEER}",
        q("Data received: 'Hello World!'"),
        q("Send: 'Hello World!'"),
        q("Close the client socket"),
    ],
    "tcp_echo_server_streams": [
        q("Serving on ('127.0.0.1', 8888)"),
        f"Received {q(repr('Hello World!'))} from {PEER}",
        q("Send: 'Hello World!'"),
        q("Close the connection"),
    ],
}
TCP_CLIENTS = {
    "tcp_echo_client_protocol": [
        "Data sent: 'Hello World!'",
        "Data received: 'Hello World!'",
        "The server closed the connection",
    ],
    "tcp_echo_client_streams": [
        "Send: 'Hello World!'",
        "Received: 'Hello World!'",
        "Close the connection",
    ],
}


@needs_proc_net
@pytest.mark.parametrize(
    ("impl", "server", "client"),
    [
        pytest.param(p.values[0], server, client, marks=p.marks, id=f"{p.id}-{server}-{client}")
        for p in impls("create_server", "create_connection", streams=True)
        for server in TCP_SERVERS
        for client in TCP_CLIENTS
        # tidestreams: only pairs with a streams example (the others are the tide case)
        if p.id != "tidestreams" or "streams" in server + client
    ],
)
def test_tcp_echo(
    impl: str, server: str, client: str, background: Callable[..., Background], tmp_path: Path
) -> None:
    # Every client against every server: the streams examples and the protocol examples are
    # documented as equivalents, so they must interoperate.
    with fixed_ports():
        srv = background(impl, server)
        wait_bound(srv, "tcp", 8888)
        done = run(impl, client, cwd=tmp_path)
        if done.returncode == 0:  # else its output tells, and the server's won't come
            srv.wait_for_lines(len(TCP_SERVERS[server]))
        served = srv.stop(signal.SIGINT)
    assert_ok(done, TCP_CLIENTS[client])
    assert_interrupted(served)
    assert_lines(served, TCP_SERVERS[server])


# ------------------------------------------------------------------------------- UDP echo


@needs_proc_net
@pytest.mark.parametrize("server", ["udp_echo_server_protocol", "udp_echo_server_protocol_001"])
@pytest.mark.parametrize("impl", impls("create_datagram_endpoint"))
def test_udp_echo(
    impl: str, server: str, background: Callable[..., Background], tmp_path: Path
) -> None:
    expected = [
        q("Starting UDP server"),
        f"Received {q(repr('Hello World!'))} from {PEER}",
        f"Send {q(repr('Hello World!'))} to {PEER}",
    ]
    with fixed_ports():
        srv = background(impl, server)
        wait_bound(srv, "udp", 9999)
        done = run(impl, "udp_echo_client_protocol", cwd=tmp_path)
        if done.returncode == 0:  # else its output tells, and the server's won't come
            srv.wait_for_lines(len(expected))
        served = srv.stop(signal.SIGINT)
    assert_ok(
        done,
        ["Send: Hello World!", "Received: Hello World!", "Close the socket", "Connection closed"],
    )
    assert_interrupted(served)
    _, received, sent = assert_lines(served, expected)
    assert received.group(1) == sent.group(1), served  # answered to where it came from


# ------------------------------------------------------------------------------- one-shot examples


@pytest.mark.parametrize(
    ("impl", "name"),
    [
        pytest.param(p.values[0], name, marks=p.marks, id=f"{p.id}-{name}")
        for p in impls("create_connection", streams=True)
        for name in ("create_connection_existing_socket", "open_connection_existing_socket_streams")
        if p.id != "tidestreams" or name.endswith("_streams")
    ],
)
def test_existing_socket(impl: str, name: str, tmp_path: Path) -> None:
    # A socketpair() end registered with the loop (protocol or streams), fed 'abc' by the other.
    assert_ok(run(impl, name, cwd=tmp_path), ["Received: abc"])


@pytest.mark.parametrize(
    "name", ["subprocess_exec_date_protocol", "subprocess_exec_date_protocol_001"]
)
@pytest.mark.parametrize("impl", impls("subprocess_exec"))
def test_subprocess_date(impl: str, name: str, tmp_path: Path) -> None:
    # The child prints datetime.now(); the example collects it through pipe_data_received().
    before = dt.datetime.now()
    result = run(impl, name, cwd=tmp_path)
    after = dt.datetime.now()
    assert result.returncode == 0, result
    clean_stderr(result)
    (match,) = assert_lines(result, [r"Current date: (.+)"])
    between(before, match.group(1), after, result)


@pytest.mark.parametrize("impl", impls("call_soon"))
def test_hello_world_call_soon(impl: str, tmp_path: Path) -> None:
    assert_ok(run(impl, "hello_world_call_soon", cwd=tmp_path), ["Hello World"])


@pytest.mark.parametrize("impl", impls("add_reader"))
def test_watch_fd_add_reader(impl: str, tmp_path: Path) -> None:
    assert_ok(run(impl, "watch_fd_add_reader", cwd=tmp_path), ["Received: abc"])


@pytest.mark.parametrize("impl", impls("call_later"))
def test_display_date_call_later(impl: str, tmp_path: Path) -> None:
    # Once at once, then every second while another second fits before the 5 s end: at
    # t = 0, 1, 2, 3, 4 (call_later never fires early, so never a sixth), then loop.stop().
    before = dt.datetime.now()
    result = run(impl, "display_date_call_later", cwd=tmp_path)
    after = dt.datetime.now()
    assert result.returncode == 0, result
    clean_stderr(result)
    assert len(result.lines) == 5, result
    dates = [between(before, line, after, result) for line in result.lines]
    assert dates == sorted(dates), result


# ------------------------------------------------------------------------------- signals


def _catches(pid: int, signum: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    raise AssertionError("no SigCgt in /proc/PID/status")


def _sleeping(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "S"


def wait_signal_handlers(bg: Background) -> None:
    """Wait until main() has installed both handlers and awaits its sleep.

    Python always catches SIGINT (default_int_handler), so SIGTERM tells: the example adds
    both handlers in one synchronous loop (set order, either first), so once SIGTERM is caught
    and the process sleeps (in the poller: nothing else blocks) both are in place."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        if not bg.running():
            raise AssertionError(f"it exited before any signal:\n{bg.stop()}")
        try:
            if _catches(bg.pid, signal.SIGTERM) and _sleeping(bg.pid):
                # Not a wait for an event: the process must still be asleep a moment later
                # (not a passing sleep in the middle of its start-up).
                time.sleep(0.05)
                if _sleeping(bg.pid):
                    return
        except OSError:  # exited meanwhile: the next round says so
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no SIGTERM handler after {TIMEOUT} s:\n{bg.stop()}")
        time.sleep(0.01)  # another process's state has no event: polls /proc (bounded)


@needs_proc_net
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("impl", impls("add_signal_handler"))
def test_signal_handlers(impl: str, signame: str, background: Callable[..., Background]) -> None:
    bg = background(impl, "signal_handlers")
    bg.wait_for_lines(2)
    wait_signal_handlers(bg)
    result = bg.stop(getattr(signal, signame))
    # ask_exit() stops the loop under asyncio.run(), which reports that main() never finished.
    assert result.returncode == 1, result
    assert result.lines == [
        "Event loop running for 1 hour, press Ctrl+C to interrupt.",
        f"pid {bg.pid}: send SIGINT or SIGTERM to exit.",
        f"got signal {signame}: exit",
    ], result
    assert result.stderr.splitlines()[-1:] == [
        "RuntimeError: Event loop stopped before Future completed."
    ], result


# ------------------------------------------------------------------------------- HTTP headers

HTTP_DATE = "Thu, 01 Jan 2026 00:00:00 GMT"


class _HeadHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_HEAD(self) -> None:
        self.server.requests.append((self.requestline, self.headers.get("Host")))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("X-Seed-Example", "HTTP headers")
        self.end_headers()

    def version_string(self) -> str:
        return "SeedTest/1.0"

    def date_time_string(self, timestamp: float | None = None) -> str:
        return HTTP_DATE

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HeadServer(socketserver.TCPServer):
    # socketserver, not http.server.HTTPServer: that one does a reverse DNS lookup on bind.
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext | None) -> None:
        super().__init__(address, _HeadHandler)
        self.requests: list[tuple[str, str | None]] = []
        if context is not None:
            self.socket = context.wrap_socket(self.socket, server_side=True)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=TIMEOUT)


def make_certificates(directory: Path, ip: str) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA and a server certificate for *ip*: (the CA file, the server's context)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=tideloop seed examples test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip
    _openssl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", f"/CN={ip}", cwd=directory)  # fmt: skip
    (directory / "server.ext").write_text(
        f"subjectAltName=IP:{ip}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\n"
        "subjectKeyIdentifier=hash\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-set_serial", str(random.getrandbits(63)), "-days", "2",
        "-extfile", "server.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "server.pem", directory / "server.key")
    return directory / "ca.pem", context


def _loopback_address() -> str:
    return f"127.{random.randrange(1, 255)}.{random.randrange(1, 255)}.{random.randrange(2, 255)}"


@contextlib.contextmanager
def head_server(
    port: int, tmp_path: Path, tls: bool
) -> Iterator[tuple[_HeadServer, str, dict[str, str]]]:
    """Serve HEAD on (a random 127/8 address, *port*): (server, address, env for the client)."""
    server = None
    last: OSError | None = None
    for _ in range(8):
        ip = _loopback_address()
        env = environment()
        context = None
        if tls:
            cafile, context = make_certificates(tmp_path, ip)
            env = environment(SSL_CERT_FILE=str(cafile))  # ssl=True's default context trusts it
        try:
            server = _HeadServer((ip, port), context)
            break
        except PermissionError:
            pytest.skip(f"binding port {port} needs root (or CAP_NET_BIND_SERVICE)")
        except OSError as exc:
            last = exc
    if server is None:
        pytest.skip(f"port {port} is taken on every loopback address tried ({last})")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server, ip, env
    finally:
        server.shutdown()
        thread.join(TIMEOUT)
        server.server_close()


@pytest.mark.parametrize(
    ("scheme", "impl"),
    [
        *(pytest.param("http", *p.values, marks=p.marks, id=f"http-{p.id}")
          for p in impls("create_connection", streams=True)),
        *(pytest.param("https", *p.values, marks=p.marks, id=f"https-{p.id}")
          for p in impls("create_connection", "start_tls", streams=True)),
    ],
)  # fmt: skip
def test_http_headers(impl: str, scheme: str, tmp_path: Path) -> None:
    # The example always connects to port 80 (443 for https), whatever the URL says; it takes
    # the host from the URL, so a local server on a loopback address stands in for the web.
    if scheme == "https" and shutil.which("openssl") is None:
        pytest.skip("the test CA is made with the openssl command, which is missing")
    port = 443 if scheme == "https" else 80
    with fixed_ports(), head_server(port, tmp_path, tls=scheme == "https") as (server, ip, env):
        url = f"{scheme}://{ip}/path/page.html"  # the URL of the docs' usage line, host aside
        result = run(impl, "http_headers_streams", url, cwd=tmp_path, env=env)
        requests = list(server.requests)
    assert_ok(
        result,
        [
            "HTTP header> HTTP/1.0 200 OK",
            "HTTP header> Server: SeedTest/1.0",
            f"HTTP header> Date: {HTTP_DATE}",
            "HTTP header> Content-Type: text/html",
            "HTTP header> X-Seed-Example: HTTP headers",
        ],
    )
    assert requests == [("HEAD /path/page.html HTTP/1.0", ip)], result


# ------------------------------------------------------------------------------- inventory

TESTED = {
    *TCP_SERVERS,
    *TCP_CLIENTS,
    "udp_echo_server_protocol",
    "udp_echo_server_protocol_001",
    "udp_echo_client_protocol",
    "create_connection_existing_socket",
    "open_connection_existing_socket_streams",
    "subprocess_exec_date_protocol",
    "subprocess_exec_date_protocol_001",
    "hello_world_call_soon",
    "watch_fd_add_reader",
    "display_date_call_later",
    "signal_handlers",
    "http_headers_streams",
}


def test_every_seed_example_is_tested_and_listed() -> None:
    files = {path.stem for path in SEEDS.glob("*.py")}
    assert files == TESTED
    manifest = (SEEDS / "MANIFEST.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"`([a-z0-9_]+)\.py`", manifest))
    assert listed == files
