"""Framework servers on each loop: the server's CPU time (or instructions) per request.

    python bench/frameworks.py                 # 5 workloads x 5 rows, 5 rounds, about 6 min
    python bench/frameworks.py --quick         # 2 rounds, 1 s windows, about 1.5 minutes
    python bench/frameworks.py --only uvicorn,aiohttp --impls tide-c,uvloop --json out.json
    python bench/frameworks.py --instructions  # callgrind instructions per request instead

Rows are echo.py's, from the same venvs (_envs.py): asyncio, uvloop, tide-c, tide-c-uring
(tide-c with TIDELOOP_POLLER=io_uring; n/a where that build of tideloop does not have the
io_uring backend or falls back to epoll) and tide-py. The frameworks, pinned in
bench/frameworks-requirements.txt (the versions tests/compat tests tideloop with), are
pip-installed into those venvs on first use.

Workloads (servers in _fw_server.py; every HTTP answer is "200 OK" with a 13-byte body,
keep-alive):

    uvicorn-httptools  uvicorn.Server(Config(app, loop="none", http="httptools")).serve() on
                       the row's loop, a minimal ASGI app
    uvicorn-h11        the same, http="h11" (pure-Python HTTP parsing)
    aiohttp            aiohttp.web.Application with one route, web.AppRunner + web.TCPSite
    websockets         the websockets library's asyncio server (websockets.asyncio.server),
                       echoing each message; no compression
    twowrite           a plain asyncio.Protocol + httptools server like _http_server.py, but
                       each response is two transport.write() calls (headers, then body), as
                       many frameworks write

HTTP workloads are driven by `wrk -t1 -c10 -d<duration>s` after echo.py's 300-request
warm-up on one connection. websockets is driven by _ws_client.py, a Python client (the C
load generator speaks no WebSocket): 10 connections, closed loop, one pre-built masked
13-byte binary frame per round trip, plain non-blocking sockets and epoll in one thread on
the other CPU. One "request" is one HTTP request/response or one WebSocket round trip.

Method (echo.py's): every run is a fresh server pinned to --server-cpu (default 1), the load
generator pinned to --client-cpu (default 0); the figure is the server's utime+stime from
/proc/PID/stat across the load window divided by the requests completed in it; rounds
interleave the rows; the table shows medians over rounds, with ratios of us/req to uvloop's
and asyncio's (< 1 = cheaper). This is a measurement: nothing compares to a threshold.

--instructions: instead of CPU time, each server runs under `valgrind --tool=callgrind` and
the figure is user-space instructions per request: the callgrind counters are zeroed while no
load runs (after wrk's 300-request warm-up; websockets: after --warmup seconds of load, once
_ws_client.py --hold has stopped sending and every echo is in), the load runs --duration
seconds, and the counters are dumped once it has ended and the server is idle (its CPU time
stopped moving). The divisor is the number of requests the SERVER handled between the zero
and the dump: _fw_server.py counts them and prints the count on SIGUSR1, read just before
the zero and just before the dump. Under callgrind the server is ~50x slower, so a window
holds only ~100-2000 requests, and the client's own count (wrk's, which misses the requests
in flight when it stops) can be off by 10-25 %; the client's count is kept in the JSON
("client_requests") and shown when the two differ by more than 2 %. The window also holds
wrk's 10 connects and closes (not the WebSocket handshakes, done before the zero).
Repeatable across runs to about 1 %, unlike CPU time, but it does not count the kernel's
share (the syscalls themselves). The CPU-time mode divides by the client's count (its
windows are long enough for the difference not to matter).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _envs
import echo
import instructions
import micro
from echo import RunFailed

BENCH = Path(__file__).resolve().parent
FW_SERVER = BENCH / "_fw_server.py"
WS_CLIENT = BENCH / "_ws_client.py"
REQUIREMENTS = BENCH / "frameworks-requirements.txt"

IMPLS = [i for i in echo.IMPLS if i != "c-epoll"]  # round-robin order


@dataclasses.dataclass(frozen=True)
class FwWorkload:
    """Quacks like echo.Workload (kind, size, conns, name) for echo's and instructions'
    load functions: kind "http" is driven by wrk, anything else by the loadgen given."""

    label: str
    app: str  # _fw_server.py --app
    kind: str  # "http" (wrk) or "ws" (_ws_client.py)
    size: int
    conns: int

    @property
    def name(self) -> str:
        return self.label


WORKLOADS = {
    w.name: w
    for w in (
        FwWorkload("uvicorn-httptools", "uvicorn-httptools", "http", 0, 10),
        FwWorkload("uvicorn-h11", "uvicorn-h11", "http", 0, 10),
        FwWorkload("aiohttp", "aiohttp", "http", 0, 10),
        FwWorkload("websockets", "websockets", "ws", 13, 10),
        FwWorkload("twowrite", "twowrite", "http", 0, 10),
    )
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Server CPU (or instructions) per request of uvicorn, aiohttp, websockets "
        "and a two-write Protocol server on asyncio, uvloop and tideloop.",
        epilog="workloads: " + ", ".join(WORKLOADS),
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="CPU: 2 rounds, 1 s windows; --instructions: 2 s warm-up, 2 s counted",
    )
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="callgrind user-space instructions per request instead of CPU time",
    )
    ap.add_argument("--only", help="comma-separated workloads or prefixes")
    ap.add_argument("--impls", help="comma-separated subset of " + ",".join(IMPLS))
    ap.add_argument(
        "--rounds", type=int, help="rounds (CPU: default 5, --quick 2; --instructions: 1)"
    )
    ap.add_argument(
        "--duration",
        type=float,
        help="measured seconds per run (CPU: default 2, --quick 1; --instructions: 4, "
        "--quick 2); wrk rounds it to whole seconds",
    )
    ap.add_argument(
        "--warmup",
        type=float,
        help="websockets: seconds of load before the window (CPU: default 0.3; "
        "--instructions: 3, --quick 2); HTTP warms up with 300 requests",
    )
    ap.add_argument(
        "--server-clock",
        choices=("stat", "sched"),
        default="stat",
        help="as echo.py: /proc/PID/stat (default) or schedstat",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=2,
        choices=(1, 2),
        help="--instructions: servers under valgrind at once (default 2)",
    )
    ap.add_argument("--server-cpu", default="1", help="CPU for the server, or 'none'")
    ap.add_argument("--client-cpu", default="0", help="CPU for the load generator, or 'none'")
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter the venvs are made from (default: this one)",
    )
    ap.add_argument("--rebuild", action="store_true", help="rebuild the venvs")
    ap.add_argument("--keep", metavar="DIR", help="--instructions: copy each callgrind dump here")
    ap.add_argument("--json", metavar="PATH", help="also write all samples and stats here")
    args = ap.parse_args(argv)
    if args.instructions:
        args.rounds = args.rounds or 1
        args.duration = args.duration or (2.0 if args.quick else 4.0)
        args.warmup = args.warmup if args.warmup is not None else 2.0 if args.quick else 3.0
    else:
        args.rounds = args.rounds or (2 if args.quick else 5)
        args.duration = args.duration or (1.0 if args.quick else 2.0)
        args.warmup = args.warmup if args.warmup is not None else 0.3
    names = micro._pick(args.only, list(WORKLOADS), "workload")
    args.workloads = [WORKLOADS[n] for n in names]
    args.impl_list = micro._pick(args.impls, IMPLS, "implementation", echo.IMPL_ALIASES)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        raise SystemExit("--rounds and --duration must be positive, --warmup not negative")
    return args


# --- environments ----------------------------------------------------------------------------


def pinned() -> dict[str, str]:
    """{distribution: version} from frameworks-requirements.txt."""
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[name.strip()] = version.strip()
    return out


def ensure_frameworks(env: _envs.Env) -> tuple[str, dict]:
    """pip install -r frameworks-requirements.txt into env unless the pinned versions are
    there; -> ("" or the reason it failed, {distribution: installed version})."""
    want = pinned()
    probe = (
        "import importlib.metadata as m, json\n"
        "def v(n):\n"
        "    try:\n"
        "        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        f"print(json.dumps({{n: v(n) for n in {sorted([*want, 'h11'])!r}}}))"
    )

    def have() -> dict:
        p = subprocess.run([env.python, "-I", "-c", probe], capture_output=True, text=True)
        return json.loads(p.stdout) if p.returncode == 0 else {}

    got = have()
    if all(got.get(n) == v for n, v in want.items()):
        return "", got
    logfile = Path(env.python).parents[2] / f"{env.name}.log"
    _envs.log(f"{env.name}: pip install -r {REQUIREMENTS.relative_to(_envs.REPO)}")
    rc, out = _envs._run([env.python, "-m", "pip", "install", "-r", REQUIREMENTS], logfile=logfile)
    got = have()
    if rc != 0 or not all(got.get(n) == v for n, v in want.items()):
        return f"pip install -r {REQUIREMENTS.name} failed: {_envs._tail(out, 1)}", got
    return "", got


def setup_rows(args) -> tuple[dict, dict, dict]:
    """(python per row, reason per dead row, metadata about the environments)."""
    modes = {echo.IMPL_ENV[i] for i in args.impl_list}
    envs, source_hash = _envs.prepare(args.python, modes, args.rebuild)
    python_of, dead, versions = {}, {}, {}
    for impl in args.impl_list:
        env = envs[echo.IMPL_ENV[impl]]
        if not env.ok:
            dead[impl] = env.reason
            continue
        if impl == "uvloop" and not env.info.get("uvloop"):
            dead[impl] = env.reason or "uvloop not installed"
            continue
        if env.name not in versions:
            versions[env.name] = ensure_frameworks(env)
        why, _ = versions[env.name]
        if why:
            dead[impl] = why
        else:
            python_of[impl] = env.python
    meta = {
        "envs": {
            k: {
                "python": e.python,
                "reason": e.reason,
                **e.info,
                "frameworks": versions.get(k, ("", {}))[1],
            }
            for k, e in envs.items()
        },
        "source_hash": source_hash,
        "interpreter": _envs.interpreter(args.python)["label"],
        "requirements": pinned(),
    }
    return python_of, dead, meta


def server_cmd(w: FwWorkload, impl: str, python_of: dict) -> list[str]:
    return [python_of[impl], "-I", str(FW_SERVER), "--app", w.app, *echo.LOOP_ARGS[impl]]


# --- report ----------------------------------------------------------------------------------


def format_cpu_table(report: dict) -> str:
    head = ("workload", "impl", "us/req", "min..max", "user", "req/s", "srv%", "cli%",
            "x uvloop", "x asyncio")  # fmt: skip
    rows, notes = [], []
    for name, entry in report.items():
        for impl, c in entry["impls"].items():
            if "na" in c:
                rows.append(micro.na_row(notes, name, impl, c["na"]))
                continue
            ratios = [
                f"{c[k]:.2f}x" if c[k] is not None else "-" for k in ("vs_uvloop", "vs_asyncio")
            ]
            user = c.get("user_us_per_req")
            rows.append(
                (
                    name,
                    impl,
                    f"{c['us_per_req']:.2f}",
                    f"{c['min_us']:.2f}..{c['max_us']:.2f}",
                    "-" if user is None else f"{user:.2f}",
                    micro._ops(c["req_s"]),
                    f"{100 * c['server_util']:.0f}%",
                    f"{100 * c['client_util']:.0f}%",
                    *ratios,
                )
            )
    return micro.layout(head, rows, notes)


def run_cpu(args, cmds: dict, na: dict) -> tuple[dict, bool]:
    pins = {
        "server": micro.pin_prefix(args.server_cpu),
        "client": micro.pin_prefix(args.client_cpu),
    }
    samples, interrupted = echo.run_rounds(args, cmds, na, pins, WS_CLIENT)
    report = echo.build_report(args, samples, na)
    for entry in report.values():
        for c in entry["impls"].values():
            c.pop("vs_c-epoll", None)
            c.pop("of_c", None)
    return report, interrupted


def _readline(f, timeout: float, what: str) -> str:
    ready, _, _ = select.select([f], [], [], timeout)
    line = f.readline().strip() if ready else ""
    if not line:
        raise RunFailed(f"no {what} within {timeout:.0f} s")
    return line


def handled(p: subprocess.Popen, pid: int, port: int) -> int:
    """The server's count of handled requests / messages (SIGUSR1 -> "HANDLED <n>").

    Under valgrind a signal sent while the server sleeps in io_uring_enter() (the
    tide-c-uring row) is only delivered when that call returns: if no answer comes within
    2 s, a TCP connect + close to the server's port wakes it (a few instructions more in
    the window, one accepted connection with no request: the count does not change)."""
    os.kill(pid, signal.SIGUSR1)
    ready, _, _ = select.select([p.stdout], [], [], 2)
    if not ready:
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
    line = _readline(p.stdout, 30, "HANDLED line from the server")
    if not line.startswith("HANDLED "):
        raise RunFailed(f"server answered SIGUSR1 with {line[:80]!r}")
    return int(line.split()[1])


def wait_idle(pid: int, interval: float = 0.25, timeout: float = 60) -> float:
    """Wait until the server's CPU time (utime+stime) stays put for two intervals in a row
    (so it has answered every request it got and handled the closes); -> seconds waited."""
    t0 = time.monotonic()
    last, quiet = echo.server_cpu(pid)[0], 0
    while quiet < 2 and time.monotonic() - t0 < timeout:
        time.sleep(interval)
        now = echo.server_cpu(pid)[0]
        quiet = quiet + 1 if now - last < 0.015 else 0
        last = now
    if quiet < 2:
        raise RunFailed(f"server not idle after {timeout:.0f} s")
    return time.monotonic() - t0


def counted_window(p, pid: int, port: int, flag: str) -> tuple[int, float, float]:
    """Wait for the server to go idle, read its count, then zero (-z) or dump (-d);
    -> (count, monotonic time of the callgrind_control call, seconds it took)."""
    wait_idle(pid)
    n = handled(p, pid, port)
    at, took = instructions.callgrind_control(flag, pid)
    if handled(p, pid, port) != n:  # read after the call, so it is not in the window
        raise RunFailed("the server handled requests while idle")
    return n, at, took


def load_wrk(w, p, pid: int, port: int, args, pin: list[str]) -> dict:
    """echo.py's warm-up, then zero (idle), wrk for --duration, dump (idle again)."""
    requests, elapsed, first, last = echo.run_wrk(
        w, port, args, pin, lambda: counted_window(p, pid, port, "-z"),
        lambda: counted_window(p, pid, port, "-d"),
    )  # fmt: skip
    return {
        "requests": last[0] - first[0],
        "client_requests": requests,
        "elapsed": elapsed,
        "lost": 0,
        "cg_window": last[1] - first[1],
        "zero_call_s": first[2],
        "dump_call_s": last[2],
    }


def load_ws(w, p, pid: int, port: int, args, pin: list[str]) -> dict:
    """_ws_client.py --hold: --warmup s of load, pause; zero (idle); --duration s of load,
    pause (every echo in); dump (idle); then the client closes its connections."""
    cmd = pin + [sys.executable, str(WS_CLIENT), "-p", str(port), "-c", str(w.conns),
                 "-s", str(w.size), "-w", str(args.warmup), "-d", str(args.duration),
                 "-P", str(pid), "--hold"]  # fmt: skip
    lg = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = _readline(lg.stdout, args.warmup + 120, "PAUSED from _ws_client.py")
        if line != "PAUSED":
            raise RunFailed(f"_ws_client.py: {line[:160]}")
        first = counted_window(p, pid, port, "-z")
        lg.stdin.write("go\n")
        lg.stdin.flush()
        out = _readline(lg.stdout, args.duration + 120, "result from _ws_client.py")
        last = counted_window(p, pid, port, "-d")
        _, err = lg.communicate(timeout=60)  # closes its stdin: it closes its sockets
    except RunFailed as e:
        lg.kill()
        err = lg.communicate()[1].strip()
        raise RunFailed(f"{e}" + (f" (_ws_client.py: {err[-160:]})" if err else "")) from None
    finally:
        if lg.poll() is None:
            lg.kill()
            lg.wait()
    if lg.returncode != 0:
        raise RunFailed(f"_ws_client.py: {(err.strip() or f'exit {lg.returncode}')[-160:]}")
    kv = dict(item.split("=", 1) for item in out.split())
    return {
        "requests": last[0] - first[0],
        "client_requests": int(kv["requests"]),
        "elapsed": float(kv["elapsed"]),
        "lost": 0,
        "cg_window": last[1] - first[1],
        "zero_call_s": first[2],
        "dump_call_s": last[2],
    }


def run_one_instructions(w, cmd: list[str], args, pins: dict, loadgen, tag: str) -> dict:
    """instructions.run_one with the server's count of handled requests as the divisor."""
    tmp = Path(tempfile.mkdtemp(prefix="tideloop-cg-"))
    valgrind = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p.out"]
    try:
        p, pid, port, info = echo.start_server(
            cmd, pins["server"] + valgrind, timeout=instructions.START_TIMEOUT
        )
        try:
            load = load_wrk if w.kind == "http" else load_ws
            sample = load(w, p, pid, port, args, pins["client"])
            dump, total, totals = instructions.read_dump(tmp, pid)
            share = instructions.copy_share(dump)
            if p.poll() is not None:
                raise RunFailed(f"server exited during the run: {echo.stop_server(p)}")
        finally:
            echo.stop_server(p)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(dump, Path(args.keep) / f"callgrind.{tag}.out")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if sample["requests"] <= 0 or total <= 0:
        raise RunFailed(f"nothing measured: {sample}")
    sample.update(
        instructions=total,
        totals_line=totals,
        memcpy_share=share,
        instr_per_req=total / sample["requests"],
        instr_per_client_req=total / sample["client_requests"]
        if sample["client_requests"]
        else None,
        info=info,
    )
    return sample


def count_notes(report: dict) -> list[str]:
    """Runs where the client's count of its window is over 2 % off the server's."""
    out = []
    for name, entry in report.items():
        for impl, c in entry["impls"].items():
            for s in c.get("samples", []):
                srv, cli = s["requests"], s["client_requests"]
                if abs(cli - srv) > 0.02 * srv:
                    per = s["instr_per_client_req"]
                    out.append(
                        f"{name}/{impl}: server handled {srv}, client counted {cli} "
                        f"({100 * (cli - srv) / srv:+.1f} %): {s['instr_per_req']:,.0f} "
                        f"instr/req by the server's count, "
                        + (f"{per:,.0f} by the client's" if per else "none by the client's")
                    )
    return out


def run_instructions(args, cmds: dict, na: dict) -> tuple[dict, bool]:
    # instructions.run_all looks the workload of each run up by name in its module's table,
    # and calls its module's run_one: this module's divides by the server's own count.
    instructions.WORKLOADS = dict(WORKLOADS)
    instructions.run_one = run_one_instructions
    samples, interrupted = instructions.run_all(args, cmds, na, WS_CLIENT)
    report = instructions.build_report(args, samples, na)
    for entry in report.values():
        for c in entry["impls"].values():
            c.pop("vs_c-epoll", None)
    return report, interrupted


def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which("wrk") and any(w.kind == "http" for w in args.workloads):
        log("warning: wrk not found (apt-get install wrk): the HTTP workloads are n/a")
    if args.instructions:
        missing = [t for t in instructions.TOOLS if not shutil.which(t)]
        if missing:
            log(f"--instructions needs {' and '.join(missing)} (apt-get install valgrind)")
            return 2
    started = time.monotonic()
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu_model": micro._cpu_model(),
        "ncpu": os.cpu_count(),
        "mode": "instructions" if args.instructions else "cpu",
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "server_clock": args.server_clock,
        "rounds": args.rounds,
        "duration": args.duration,
        "warmup": args.warmup,
        "ws_client": "bench/_ws_client.py (Python, plain sockets, epoll, one thread)",
        "git_head": micro._git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(micro._git("status", "--porcelain", "--", "src")),
        "loadavg_start": micro._loadavg(),
    }
    if args.instructions:
        vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
        meta.update(valgrind=vg.stdout.strip(), tool="callgrind", metric="Ir (summary:)")
    python_of, dead, env_meta = setup_rows(args)
    meta.update(env_meta)
    na = {w.name: dict(dead) for w in args.workloads}
    cmds = {
        (w.name, i): server_cmd(w, i, python_of)
        for w in args.workloads
        for i in args.impl_list
        if i not in na[w.name]
    }
    what = "callgrind instructions" if args.instructions else "server CPU"
    log(
        f"frameworks ({what}): {len(args.workloads)} workloads x {len(args.impl_list)} impls"
        f" x {args.rounds} rounds, {args.duration} s windows, server on cpu "
        f"{args.server_cpu}, load on cpu {args.client_cpu}"
    )
    for impl, why in dead.items():
        log(f"  {impl}: n/a ({why})")
    if args.instructions:
        report, interrupted = run_instructions(args, cmds, na)
    else:
        report, interrupted = run_cpu(args, cmds, na)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_end"] = micro._loadavg()

    print()
    dirty = " (src dirty)" if meta["git_dirty"] else ""
    print(f"tideloop framework benchmarks ({what})  {meta['date']}  {meta['interpreter']}  "
          f"{meta['cpu_model']}")  # fmt: skip
    print(f"rounds={args.rounds} warmup={args.warmup}s duration={args.duration}s "
          f"server-cpu={args.server_cpu} client-cpu={args.client_cpu}  "
          f"git {meta['git_head']}{dirty}  load {meta['loadavg_start']} -> "
          f"{meta['loadavg_end']}  {meta['elapsed_s']} s")  # fmt: skip
    fw = next((e["frameworks"] for e in meta["envs"].values() if e.get("frameworks")), {})
    print("  ".join(f"{k} {v}" for k, v in sorted(fw.items())))
    if args.instructions:
        print("instr/req = user-space instructions of the server (callgrind Ir) / requests; "
              "copy% = share in memcpy/memmove;\nx uvloop, x asyncio = ratio of instr/req "
              "(<1 = fewer)\n")  # fmt: skip
        print(instructions.format_table(report, args.rounds))
        notes = count_notes(report)
        if notes:
            print("\nclient's count of the window off the server's by more than 2 %:\n"
                  + "\n".join(notes))  # fmt: skip
    else:
        print("us/req = server CPU time per request (median over rounds); user = its utime "
              "part; srv%/cli% = CPU use of\nserver / load generator; x uvloop, x asyncio = "
              "ratio of us/req (<1 = cheaper)\n")  # fmt: skip
        print(format_cpu_table(report))
    if interrupted:
        print("\n(interrupted: partial results)")
    if args.json:
        for entry in report.values():
            for c in entry["impls"].values():
                for sample in c.get("samples", []):
                    sample.pop("info", None)
        Path(args.json).write_text(json.dumps({"meta": meta, "workloads": report}, indent=1) + "\n")
        log(f"wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
