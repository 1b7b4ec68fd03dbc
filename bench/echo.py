"""Echo, HTTP and UDP server benchmarks: the server's CPU time per request, side by side.

    python bench/echo.py                  # default matrix, about 5 minutes
    python bench/echo.py --quick          # about 1 minute
    python bench/echo.py --full           # every size x connection count, both protocols
    python bench/echo.py --only proto-1k,http --impls asyncio,uvloop,c --json out.json

Rows (implementations), in the order they take turns:
    asyncio   stock asyncio loop                  (venv "base", from _envs.py)
    uvloop    uvloop                              (venv "base")
    tide-c    tideloop, compiled build            (venv "compiled")
    tide-c-eager  tide-c with TIDELOOP_DEFER_WRITES=0: each write sent at once (no flush list)
    tide-c-uring  tide-c with TIDELOOP_POLLER=io_uring (n/a where tideloop falls back to epoll)
    tide-py   tideloop, pure-Python build         (venv "pure")
    c-epoll   bench/c/echo_server.c, epoll level-triggered: the ceiling (no HTTP or TLS row)
    c-uring   bench/c/uring_echo_server.c, io_uring (multishot accept and recv, provided
              buffers, SINGLE_ISSUER|DEFER_TASKRUN): the io_uring ceiling (TCP echo only)

Method. The server runs in its own process pinned to one CPU (--server-cpu, default 1), the
load generator in another pinned to the other (--client-cpu, default 0). For echo workloads
the load generator is bench/c/loadgen.c (built with gcc into bench/.build/c/): CONNS
connections, each sending SIZE bytes and waiting for the whole echo before the next (closed
loop); after a warm-up it reads the server's utime+stime from /proc/PID/stat at both ends of
a DURATION-second window. HTTP is driven by `wrk -t1 -cCONNS -dDURATIONs` after a short
warm-up, the server's CPU read just before and after. TLS echo ("tls": asyncio.Protocol echo
behind create_server(ssl=...)) is driven by bench/c/tls_loadgen.c (OpenSSL, one blocking
thread per connection, handshakes outside the window) against a throwaway self-signed
certificate that the `openssl` command makes for the run. The figure of merit is server CPU
time per request (us/req); requests/s and the CPU use of both sides over the window (srv%,
cli%; README.md says how to read them) are reported beside it.
Every run is a fresh server process; one round runs every workload for every row,
interleaved round-robin; the table shows medians over rounds. Identical runs (the C server
is the same for Protocol and BufferedProtocol workloads; asyncio streams are the same for
"streams" and "aiostreams" on asyncio and uvloop) are run once per round and shared.

Python servers start by allocating and freeing 1 MiB so that glibc's mmap threshold is where
it is in any server that has run a while (--cold-malloc: not; asyncio's Protocol and UDP
rows then pay mmap+munmap per read, see README.md).

Ratios are of CPU per request: "x uvloop" 0.88x means 12 % less server CPU per request than
uvloop (lower is better); "of C" is the C server's CPU per request divided by this row's
(100 % = as cheap as the ceiling). This is a measurement: nothing compares to a threshold.

PyPy (--python .../pypy3.11): rows asyncio, tide-py, c-epoll and c-uring (uvloop, tide-c and
the HTTP row, which needs httptools, are n/a there). A fresh PyPy server keeps getting cheaper per
request for seconds (asyncio's 1 KiB Protocol echo, in 1 s windows from the start: 18, 11,
10.7, 9.9, 9.7 us per request; streams take longer), so there the default warm-up before
the window is 5 s and the window 2 s (--warmup, --duration).
"""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _envs
import micro

BENCH = Path(__file__).resolve().parent
CBUILD = _envs.BUILD / "c"
ECHO_SERVER, HTTP_SERVER = BENCH / "_echo_server.py", BENCH / "_http_server.py"

IMPLS = ["asyncio", "uvloop", "tide-c", "tide-c-eager", "tide-c-uring", "tide-py",
         "c-epoll"]  # round-robin
# echo.py's own rows: IMPLS (which instructions.py, idle.py, soak.py and frameworks.py take)
# plus the io_uring C server, TCP echo only.
ROWS = [*IMPLS, "c-uring"]
C_SERVERS = {"c-epoll": "echo_server", "c-uring": "uring_echo_server"}  # row -> bench/c/*.c
C_KINDS = {"c-epoll": ("protocol", "buffered", "streams", "aiostreams", "taskfloor", "udp"),
           "c-uring": ("protocol", "buffered", "streams", "aiostreams", "taskfloor")}
IMPL_ENV = {"asyncio": "base", "uvloop": "base", "tide-c": "compiled",
            "tide-c-eager": "compiled", "tide-c-uring": "compiled", "tide-py": "pure"}
IMPL_ALIASES = {"c": "c-epoll", "compiled": "tide-c", "pure": "tide-py", "tideloop": "tide-c",
                "aio": "asyncio", "uv": "uvloop", "uring": "tide-c-uring"}
LOOP_ARGS = {"asyncio": ["--loop", "asyncio"], "uvloop": ["--loop", "uvloop"],
             "tide-c": ["--loop", "tideloop", "--compiled", "1"],
             # TIDELOOP_DEFER_WRITES=0: each write sent at once, as before the flush list
             "tide-c-eager": ["--loop", "tideloop", "--compiled", "1", "--eager-writes"],
             # the server sets TIDELOOP_POLLER=io_uring before it makes the loop, and says NA
             # (row n/a) if the build does not know io_uring or falls back to epoll
             "tide-c-uring": ["--loop", "tideloop", "--compiled", "1", "--poller", "io_uring"],
             "tide-py": ["--loop", "tideloop", "--compiled", "0"]}


@dataclasses.dataclass(frozen=True)
class Workload:
    kind: str  # protocol, buffered, streams (each loop's own), aiostreams, taskfloor, http,
    # udp, tls
    size: int  # message bytes (0 for http)
    conns: int

    @property
    def name(self) -> str:
        short = {"protocol": "proto", "buffered": "buf"}.get(self.kind, self.kind)
        size = f"-{self.size // 1024}k" if self.size else ""
        return f"{short}{size}-c{self.conns}"


def _matrix(kinds, sizes, conns) -> list[Workload]:
    return [Workload(k, s * 1024, c) for k in kinds for s in sizes for c in conns]


FULL = (_matrix(("protocol", "buffered"), (1, 10, 100), (1, 10, 100))
        + _matrix(("protocol",), (1,), (1000,))
        + _matrix(("streams", "aiostreams", "taskfloor"), (1,), (10,))
        + [Workload("http", 0, 10)]
        + _matrix(("udp",), (1,), (1, 10)) + _matrix(("tls",), (1, 100), (10,)))
DEFAULT = (_matrix(("protocol",), (1,), (1, 10, 100, 1000))
           + _matrix(("protocol",), (10, 100), (10,))
           + _matrix(("buffered",), (1, 100), (10,))
           + _matrix(("streams", "aiostreams", "taskfloor"), (1,), (10,))
           + [Workload("http", 0, 10)]
           + _matrix(("udp",), (1,), (10,)) + _matrix(("tls",), (1, 100), (10,)))
QUICK = [Workload(*w) for w in (("protocol", 1024, 10), ("buffered", 1024, 10),
                                ("protocol", 102400, 10), ("streams", 1024, 10),
                                ("http", 0, 10), ("udp", 1024, 10))]
WORKLOADS = {w.name: w for w in FULL}

# Allocator settings change the asyncio rows a lot (its Protocol echo allocates 256 KiB per
# read), so none leak in from the caller's shell; nor does a TIDELOOP_POLLER, which would turn
# tide-c into another backend's row (tide-c-uring's server sets its own).
SERVER_ENV = {k: v for k, v in os.environ.items()
              if not k.startswith(("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD", "PYTHON",
                                   "TIDELOOP_"))}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class NotApplicable(Exception):
    """The row cannot run this workload (the server said NA): n/a for the rest of the run."""


class RunFailed(Exception):
    """This one run failed (server died, load generator error): n/a for this workload."""


# --- arguments -----------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Server CPU per request: tideloop compiled/pure, asyncio, uvloop and C "
                    "epoll and io_uring servers, side by side.",
        epilog="workloads (--full): " + ", ".join(WORKLOADS))
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about 1 minute: 6 workloads, "
                      "3 rounds, 0.5 s windows")
    size.add_argument("--full", action="store_true", help="every workload (see below)")
    ap.add_argument("--only", help="comma-separated workloads or prefixes, from the full list")
    ap.add_argument("--impls", help="comma-separated subset of " + ",".join(ROWS))
    ap.add_argument("--rounds", type=int, help="rounds (default 4, --quick 3)")
    ap.add_argument("--duration", type=float, help="measured seconds per run (default 1.0, "
                    "--quick 0.5; PyPy 2.0; wrk rounds it up to whole seconds)")
    ap.add_argument("--warmup", type=float, help="seconds of load before the window "
                    "(default 0.3, --quick 0.2; PyPy 5.0, its JIT's warm-up)")
    ap.add_argument("--server-clock", choices=("stat", "sched"), default="stat",
                    help="server CPU from /proc/PID/stat utime+stime (default; 10 ms ticks) "
                         "or summed /proc/PID/task/*/schedstat (ns); the JSON keeps both")
    ap.add_argument("--cold-malloc", action="store_true",
                    help="start Python servers without warming glibc's allocator first (see "
                         "_echo_server.warm_malloc; asyncio's Protocol and UDP rows then pay "
                         "mmap+munmap for every read)")
    ap.add_argument("--server-cpu", default="1", help="CPU for the server, or 'none'")
    ap.add_argument("--client-cpu", default="0", help="CPU for the load generator, or 'none'")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter the venvs are made from (default: this one)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the venvs")
    ap.add_argument("--json", metavar="PATH", help="also write all samples and stats here")
    args = ap.parse_args(argv)
    args.rounds = args.rounds or (3 if args.quick else 4)
    pypy = _envs.is_pypy(args.python)
    args.duration = args.duration or (0.5 if args.quick else 2.0 if pypy else 1.0)
    if args.warmup is None:
        args.warmup = 5.0 if pypy else 0.2 if args.quick else 0.3
    pool = FULL if args.full or args.only else QUICK if args.quick else DEFAULT
    names = micro._pick(args.only, [w.name for w in FULL], "workload")
    args.workloads = [w for w in pool if w.name in names]
    args.impl_list = micro._pick(args.impls, ROWS, "implementation", IMPL_ALIASES)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        raise SystemExit("--rounds and --duration must be positive, --warmup not negative")
    return args


# --- building and starting things ----------------------------------------------------------


def build_c() -> dict[str, Path | str]:
    """gcc the load generators and the C servers if their sources changed; name -> binary,
    or -> the reason it could not be built."""
    CBUILD.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path | str] = {}
    for name in ("loadgen", "echo_server", "uring_echo_server", "tls_loadgen"):
        src, exe = BENCH / "c" / f"{name}.c", CBUILD / name
        if exe.exists() and exe.stat().st_mtime >= src.stat().st_mtime:
            out[name] = exe
            continue
        if not shutil.which("gcc"):
            out[name] = "gcc not found"
            continue
        libs = ["-pthread", "-lssl", "-lcrypto"] if name == "tls_loadgen" else []
        p = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(src), *libs],
                           capture_output=True, text=True)
        out[name] = exe if p.returncode == 0 else f"gcc failed: {p.stderr.strip()[-200:]}"
    return out


def server_cmd(w: Workload, impl: str, python_of: dict, binaries: dict,
               cold_malloc: bool = False) -> list[str] | None:
    """The command that starts impl's server for w (None: no such row, e.g. C and HTTP)."""
    if impl in C_SERVERS:  # the same server for every TCP echo kind: runs are shared
        return None if w.kind not in C_KINDS[impl] else [str(binaries[C_SERVERS[impl]])] + (
            ["-u"] if w.kind == "udp" else []) + ["0"]
    py = [python_of[impl], "-I"]
    loop = LOOP_ARGS[impl] + (["--cold-malloc"] if cold_malloc else [])
    if w.kind == "http":
        return py + [str(HTTP_SERVER)] + loop
    cmd = py + [str(ECHO_SERVER)] + loop
    if w.kind == "udp":
        return cmd + ["--udp"]
    if w.kind == "tls":
        return cmd + ["--proto", "protocol", "--tls", *binaries["tls_cert"]]
    if w.kind in ("streams", "aiostreams"):
        own = w.kind == "streams" and impl.startswith("tide")
        return cmd + ["--proto", "streams", "--streams-impl", "tideloop" if own else "asyncio"]
    return cmd + ["--proto", w.kind]


def start_server(cmd: list[str], pin: list[str], timeout: float = 60):
    """Start a server; return (Popen, pid, port, info). NotApplicable / RunFailed otherwise."""
    # stderr goes to a file: a pipe nobody reads could fill up and stall a chatty server.
    errfile = tempfile.TemporaryFile()  # noqa: SIM115 (stop_server closes it)
    p = subprocess.Popen(pin + cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=errfile, text=True, cwd=str(BENCH), env=SERVER_ENV)
    p.errfile = errfile
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    line = p.stdout.readline().strip() if ready else ""
    words = line.split(" ", 3)
    if words[0] == "READY" and len(words) >= 3:
        info = json.loads(words[3]) if len(words) > 3 else {}
        return p, int(words[1]), int(words[2]), info
    why = stop_server(p)
    if words[0] == "NA":
        raise NotApplicable(line[3:])
    raise RunFailed(f"server did not start: {line or why}"[:200])


def stop_server(p: subprocess.Popen) -> str:
    """Stop the server (again: no-op); return the last line it wrote to stderr."""
    if p.errfile.closed:
        return ""
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    p.stdin.close()
    p.stdout.close()
    p.errfile.seek(0)
    lines = p.errfile.read().decode(errors="replace").strip().splitlines()
    p.errfile.close()
    return lines[-1] if lines else f"exit {p.returncode}, nothing on stderr"


def server_cpu(pid: int) -> tuple[float, float, float]:
    """(utime+stime from /proc/PID/stat, summed schedstat of its threads, utime), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime = int(fields[11]), int(fields[12])
    sched = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                sched += int(f.read().split()[0]) * 1e-9
        except OSError:
            pass
    return (utime + stime) / tick, sched, utime / tick


# --- one run -------------------------------------------------------------------------------


def make_tls_cert() -> tuple[str, str] | str:
    """A throwaway self-signed certificate for the TLS rows: (certfile, keyfile) in a fresh
    temporary directory, or the reason it could not be made. No key is ever committed."""
    if not shutil.which("openssl"):
        return "the openssl command is missing"
    where = Path(tempfile.mkdtemp(prefix="tideloop-bench-tls-"))
    atexit.register(shutil.rmtree, where, True)
    cert, key = where / "cert.pem", where / "key.pem"
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"openssl req failed: {p.stderr.strip()[-160:]}"
    return str(cert), str(key)


def load_echo(w: Workload, pid: int, port: int, args, loadgen: Path, pin: list[str]) -> dict:
    cmd = pin + [str(loadgen), "-p", str(port), "-c", str(w.conns), "-s", str(w.size),
                 "-w", str(args.warmup), "-d", str(args.duration), "-P", str(pid)]
    if w.kind == "udp":
        cmd.append("-u")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60)
    if p.returncode != 0:
        raise RunFailed(f"loadgen: {(p.stderr.strip() or f'exit {p.returncode}')[-160:]}")
    kv = dict(item.split("=") for item in p.stdout.split())
    return {"requests": int(kv["requests"]), "elapsed": float(kv["elapsed"]),
            "client_cpu": float(kv["client_cpu"]), "server_cpu": float(kv["server_cpu"]),
            "server_sched": float(kv["server_sched"]),
            "server_user": float(kv.get("server_user", -1)), "lost": int(kv["lost"])}


def _http_warmup(port: int, requests: int = 300) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(requests):
            s.sendall(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
            got = b""
            while not got.endswith(b"Hello, World!"):
                chunk = s.recv(65536)
                if not chunk:
                    raise RunFailed("HTTP warm-up: server closed the connection")
                got += chunk


def run_wrk(w: Workload, port: int, args, pin: list[str], before: Callable[[], Any],
            after: Callable[[], Any]) -> tuple[int, float, Any, Any]:
    """Warm the server up, then run wrk for --duration (whole seconds), calling before()
    just before it and after() just after; -> (requests, elapsed s, before(), after())."""
    if not shutil.which("wrk"):
        raise NotApplicable("wrk not found (apt-get install wrk)")
    _http_warmup(port)
    secs = max(1, round(args.duration))
    cmd = pin + ["wrk", "-t1", f"-c{w.conns}", f"-d{secs}s", f"http://127.0.0.1:{port}/"]
    first = before()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    last = after()
    m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", p.stdout)
    if p.returncode != 0 or not m:
        raise RunFailed(f"wrk: {(p.stderr.strip() or p.stdout.strip())[-160:]}")
    if "Socket errors" in p.stdout or "Non-2xx" in p.stdout:
        raise RunFailed("wrk: " + " ".join(ln.strip() for ln in p.stdout.splitlines()
                                           if "errors" in ln or "Non-2xx" in ln))
    elapsed = float(m[2]) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m[3]]
    return int(m[1]), elapsed, first, last


def load_http(w: Workload, pid: int, port: int, args, pin: list[str]) -> dict:
    def cpu() -> tuple:
        return resource.getrusage(resource.RUSAGE_CHILDREN), server_cpu(pid)

    requests, elapsed, (ru0, cpu0), (ru1, cpu1) = run_wrk(w, port, args, pin, cpu, cpu)
    client = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {"requests": requests, "elapsed": elapsed, "client_cpu": client,
            "server_cpu": cpu1[0] - cpu0[0], "server_sched": cpu1[1] - cpu0[1],
            "server_user": cpu1[2] - cpu0[2], "lost": 0}


def run_one(w: Workload, cmd: list[str], args, pins: dict, loadgen: Path) -> dict:
    p, pid, port, info = start_server(cmd, pins["server"])
    try:
        if w.kind == "http":
            sample = load_http(w, pid, port, args, pins["client"])
        elif w.kind == "tls":
            sample = load_echo(w, pid, port, args, args.tls_loadgen, pins["client"])
        else:
            sample = load_echo(w, pid, port, args, loadgen, pins["client"])
        if p.poll() is not None:
            raise RunFailed(f"server exited during the run: {stop_server(p)}")
    finally:
        stop_server(p)
    cpu = sample["server_cpu" if args.server_clock == "stat" else "server_sched"]
    if sample["requests"] <= 0 or cpu <= 0:
        raise RunFailed(f"nothing measured: {sample}")
    user = sample.get("server_user", -1)
    sample.update(us_per_req=cpu / sample["requests"] * 1e6,
                  user_us_per_req=user / sample["requests"] * 1e6 if user >= 0 else None,
                  req_s=sample["requests"] / sample["elapsed"], info=info)
    return sample


# --- statistics and the table -------------------------------------------------------------


def summarize(samples: list[dict]) -> dict:
    us = sorted(s["us_per_req"] for s in samples)

    def med(key):
        return statistics.median(s[key] for s in samples)
    user = [s["user_us_per_req"] for s in samples if s.get("user_us_per_req") is not None]
    return {"us_per_req": statistics.median(us), "min_us": us[0], "max_us": us[-1],
            "user_us_per_req": statistics.median(user) if user else None,
            "req_s": med("req_s"), "server_util": med("server_cpu") / med("elapsed"),
            "client_util": med("client_cpu") / med("elapsed"),
            "lost": sum(s["lost"] for s in samples), "rounds": len(samples)}


def add_ratios(cells: dict, key: str) -> None:
    """Set each cell's vs_uvloop / vs_asyncio / vs_c-epoll: its ``key`` over that row's
    (None where either is missing)."""
    for c in cells.values():
        for ref in ("uvloop", "asyncio", "c-epoll"):
            r = cells.get(ref, {})
            c[f"vs_{ref}"] = c[key] / r[key] if key in c and key in r else None


def build_report(args, samples, na) -> dict:
    report = {}
    for w in args.workloads:
        cells = {}
        for impl in args.impl_list:
            if impl in na[w.name]:
                cells[impl] = {"na": na[w.name][impl]}
            elif samples[w.name].get(impl):
                cells[impl] = summarize(samples[w.name][impl])
                cells[impl]["samples"] = samples[w.name][impl]
        add_ratios(cells, "us_per_req")
        for c in cells.values():
            c["of_c"] = 1 / c["vs_c-epoll"] if c.get("vs_c-epoll") else None
        report[w.name] = {"kind": w.kind, "size": w.size, "conns": w.conns, "impls": cells}
    return report


def format_table(report: dict) -> str:
    head = ("workload", "impl", "us/req", "min..max", "user", "req/s", "srv%", "cli%",
            "x uvloop", "x asyncio", "of C")
    rows, notes = [], []
    for name, entry in report.items():
        for impl, c in entry["impls"].items():
            if "na" in c:
                rows.append(micro.na_row(notes, name, impl, c["na"]))
                continue
            ratios = [f"{c[k]:.2f}x" if c[k] is not None else "-"
                      for k in ("vs_uvloop", "vs_asyncio")]
            rows.append((name, impl, f"{c['us_per_req']:.2f}",
                         f"{c['min_us']:.2f}..{c['max_us']:.2f}",
                         "-" if c.get("user_us_per_req") is None
                         else f"{c['user_us_per_req']:.2f}", micro._ops(c["req_s"]),
                         f"{100 * c['server_util']:.0f}%", f"{100 * c['client_util']:.0f}%",
                         *ratios, f"{100 * c['of_c']:.0f}%" if c["of_c"] else "-"))
            if c["lost"]:
                notes.append(f"{name}/{impl}: {c['lost']} datagrams lost (retried)")
    return micro.layout(head, rows, notes)


# --- main ----------------------------------------------------------------------------------


def setup_rows(args) -> tuple[dict, dict, dict, dict]:
    """(python per row, reason per dead row, C binaries, metadata about the environments)."""
    binaries = build_c()
    if not isinstance(binaries["loadgen"], Path):
        raise SystemExit(f"cannot build bench/c/loadgen.c: {binaries['loadgen']}")
    modes = {IMPL_ENV[i] for i in args.impl_list if i in IMPL_ENV}
    envs, source_hash = _envs.prepare(args.python, modes, args.rebuild)
    need_http = any(w.kind == "http" for w in args.workloads)
    no_httptools = "httptools (compiled) does not install on PyPy" if _envs.is_pypy(
        args.python) else ""
    python_of, dead, http_dead, tls_dead = {}, {}, {}, {}
    if any(w.kind == "tls" for w in args.workloads):
        cert = make_tls_cert()
        if not isinstance(binaries["tls_loadgen"], Path):
            tls_dead = {i: f"cannot build bench/c/tls_loadgen.c: {binaries['tls_loadgen']}"
                        for i in args.impl_list}
        elif isinstance(cert, str):
            tls_dead = {i: cert for i in args.impl_list}
        else:
            binaries["tls_cert"] = cert
    for impl in args.impl_list:
        if impl in C_SERVERS:
            name = C_SERVERS[impl]
            if not isinstance(binaries[name], Path):
                dead[impl] = f"cannot build bench/c/{name}.c: {binaries[name]}"
            continue
        env = envs[IMPL_ENV[impl]]
        if not env.ok:
            dead[impl] = env.reason
        elif impl == "uvloop" and not env.info.get("uvloop"):
            dead[impl] = env.reason or "uvloop not installed"
        else:
            python_of[impl] = env.python
            if need_http:
                why = no_httptools or _envs.ensure_packages(env, {"httptools": "httptools"})
                if why:
                    http_dead[impl] = why
    meta = {"envs": {k: {"python": e.python, "reason": e.reason, **e.info}
                     for k, e in envs.items()}, "source_hash": source_hash,
            "interpreter": _envs.interpreter(args.python)["label"]}
    return (python_of, dead,
            {"binaries": binaries, "http_dead": http_dead, "tls_dead": tls_dead}, meta)


def run_rounds(args, cmds, na, pins, loadgen) -> tuple[dict, bool]:
    """All rounds, rows interleaved; return (samples[workload][impl], interrupted).
    Marks rows n/a in `na` as they fail."""
    samples = {w.name: {i: [] for i in args.impl_list} for w in args.workloads}
    try:
        for rnd in range(1, args.rounds + 1):
            t_round, done = time.monotonic(), {}
            for w in args.workloads:
                for impl in args.impl_list:
                    cmd = cmds.get((w.name, impl))
                    if impl in na[w.name] or cmd is None:
                        continue
                    key = (tuple(cmd), w.kind == "udp", w.size, w.conns)
                    try:
                        if key not in done:
                            done[key] = run_one(w, cmd, args, pins, loadgen)
                        samples[w.name][impl].append(done[key])
                    except NotApplicable as e:  # this row never runs this kind of server
                        for ww in args.workloads:
                            if cmds.get((ww.name, impl)) == cmd:
                                na[ww.name][impl] = str(e)
                        log(f"  {w.name}/{impl}: n/a ({e})")
                    except (RunFailed, subprocess.TimeoutExpired, OSError) as e:
                        na[w.name][impl] = f"failed: {e}"
                        log(f"  {w.name}/{impl}: failed: {e}")
            spent = time.monotonic() - t_round
            log(f"round {rnd}/{args.rounds} took {spent:.1f} s"
                + (f", about {spent * (args.rounds - rnd):.0f} s to go"
                   if rnd < args.rounds else ""))
    except KeyboardInterrupt:
        log("interrupted: reporting the rounds completed so far")
        return samples, True
    return samples, False


def print_report(args, meta, report, versions) -> None:
    print()
    print(f"tideloop server benchmarks  {meta['date']}  {meta['interpreter']}  "
          f"{meta['cpu_model']}")
    dirty = " (src dirty)" if meta["git_dirty"] else ""
    print(f"rounds={args.rounds} warmup={args.warmup}s duration={args.duration}s "
          f"server-cpu={args.server_cpu} client-cpu={args.client_cpu} "
          f"clock={args.server_clock} malloc={'cold' if args.cold_malloc else 'warm'}  "
          f"git {meta['git_head']}{dirty}  "
          f"load {meta['loadavg_start']} -> {meta['loadavg_end']}  {meta['elapsed_s']} s")
    def label(k: str, v: dict) -> str:
        if k in C_SERVERS:  # c-uring says which io_uring_setup flags the kernel took
            return f"{k}: setup={v['setup']}"
        return f"{k}: {v.get('python', '')} {v.get('uvloop') or v.get('tideloop') or ''}".rstrip()
    print("  ".join(label(k, v) for k, v in versions.items()
                    if k not in C_SERVERS or "setup" in v))
    print("us/req = server CPU time per request (median over rounds); user = its user-space "
          "part (utime, the\nrest is the kernel's); srv%/cli% = CPU use of server / load "
          "generator;\nx uvloop, x asyncio = ratio of us/req (<1 = cheaper); "
          "of C = C server's us/req / this row's\n")
    print(format_table(report))


def main(argv=None) -> int:
    args = parse_args(argv)
    pins = {"server": micro.pin_prefix(args.server_cpu),
            "client": micro.pin_prefix(args.client_cpu)}
    started = time.monotonic()
    meta = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "host": platform.node(), "cpu_model": micro._cpu_model(), "ncpu": os.cpu_count(),
            "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
            "server_clock": args.server_clock, "cold_malloc": args.cold_malloc,
            "rounds": args.rounds, "duration": args.duration, "warmup": args.warmup,
            "git_head": micro._git("rev-parse", "--short", "HEAD"),
            "git_dirty": bool(micro._git("status", "--porcelain", "--", "src")),
            "loadavg_start": micro._loadavg()}
    python_of, dead, extra, env_meta = setup_rows(args)
    meta.update(env_meta)
    na = {w.name: dict(dead) for w in args.workloads}
    for w in args.workloads:
        if w.kind == "http":
            na[w.name].update(extra["http_dead"])
        if w.kind == "tls":
            na[w.name].update(extra["tls_dead"])
    cmds = {(w.name, i): server_cmd(w, i, python_of, extra["binaries"], args.cold_malloc)
            for w in args.workloads for i in args.impl_list if i not in na[w.name]}
    log(f"echo: {len(args.workloads)} workloads x {len(args.impl_list)} impls x {args.rounds} "
        f"rounds, {args.warmup} s warm-up + {args.duration} s per run, server on cpu "
        f"{args.server_cpu}, load generator on cpu {args.client_cpu}")
    for impl, why in dead.items():
        log(f"  {impl}: n/a ({why})")
    args.tls_loadgen = extra["binaries"].get("tls_loadgen")
    samples, interrupted = run_rounds(args, cmds, na, pins, extra["binaries"]["loadgen"])

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_end"] = micro._loadavg()
    report = build_report(args, samples, na)
    versions = {}
    for cells in samples.values():
        for impl, runs in cells.items():
            if runs:
                versions.setdefault(impl, runs[0]["info"])
    meta["impl_info"] = versions
    print_report(args, meta, report, versions)
    if interrupted:
        print("\n(interrupted: partial results)")
    if args.json:
        for entry in report.values():
            for c in entry["impls"].values():
                for sample in c.get("samples", []):
                    sample.pop("info", None)
        out = {"meta": meta, "workloads": report}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
