"""User-space instructions per request of each echo server, counted by valgrind's callgrind.

    python bench/instructions.py              # 6 workloads x 5 rows, about 5 minutes
    python bench/instructions.py --only proto-1k-c10,buf-1k-c10 --impls tide-c,uvloop
    python bench/instructions.py --json out.json --keep cg/   # also keep the callgrind files

The servers, rows and workload names are echo.py's (same venvs from _envs.py, same server
commands, same C load generator), but the figure is the number of instructions the server
process executes in user space per request, not its CPU time. On this machine echo.py's server
CPU per request is mostly kernel time (TCP loopback), and wall or CPU time on a shared 2-core
VM moves by several percent from run to run; an instruction count of the same code path
repeats within about 1 % and shows the loop's own cost.

Method. Each server runs under `valgrind --tool=callgrind`, pinned to one CPU; after it prints
READY, bench/c/loadgen.c (or wrk, for http) loads it from the other CPU. After --warmup seconds
of load `callgrind_control -z` zeroes the counters, --duration seconds later
`callgrind_control -d` dumps them, and the dump's "summary:" line (instructions executed since
the zero) divided by the requests the load generator completed in its own window of the same
length is the figure. The two windows start and end within the latency of a callgrind_control
call (0.1-0.25 s, in the JSON) of each other, and these offsets mostly cancel: on the C
server a 6 s window held 0.5 % fewer requests than the load generator counted. Under valgrind a
server runs several times slower, so it finds more events ready per epoll_wait than it would
natively; that batching can move a row by a few percent. Up to --jobs servers run at once
(valgrind is single-threaded): the second with the CPUs swapped (its server on --client-cpu).

Ratios are of instructions per request ("x uvloop" 0.70x = 30 % fewer than uvloop).
Instructions are not cycles: kernel work (the syscalls themselves, TCP) is not counted at all
(that is the point), a cache miss counts no more than an add, and callgrind counts each
iteration of a `rep movsb` as one instruction, so a copy above a few KiB (glibc's memcpy uses
it) counts about one per byte. The copy% column is the share of a figure spent in
memcpy/memmove: in proto-100k nearly all of it for the rows that copy the data in user space.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import glob
import json
import os
import platform
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import echo
import micro
from echo import NotApplicable, RunFailed, Workload

IMPLS = echo.IMPLS
DEFAULT = ["proto-1k-c10", "buf-1k-c10", "streams-1k-c10", "proto-100k-c10", "udp-1k-c10",
           "http-c10"]
# Every echo.py workload but TLS (its load generator and certificate are not wired up here).
WORKLOADS = {name: w for name, w in echo.WORKLOADS.items() if w.kind != "tls"}
TOOLS = ("valgrind", "callgrind_control")
START_TIMEOUT = 120  # seconds until READY; start-up under valgrind takes 10-30 s


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="User-space instructions per request (callgrind) of the echo servers: "
                    "tideloop compiled/pure, asyncio, uvloop and the C epoll server.",
        epilog=f"workloads (default {', '.join(DEFAULT)}): {', '.join(WORKLOADS)}")
    ap.add_argument("--only", help="comma-separated workloads or prefixes")
    ap.add_argument("--impls", help="comma-separated subset of " + ",".join(IMPLS))
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of load before the counters are zeroed (default 3)")
    ap.add_argument("--duration", type=float, default=8.0,
                    help="counted seconds (default 8; wrk rounds it to whole seconds)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="runs per cell, the table shows the median (default 1)")
    ap.add_argument("--jobs", type=int, default=2, choices=(1, 2),
                    help="servers under valgrind at once (default 2)")
    ap.add_argument("--server-cpu", default="1", help="CPU for the (first) server, or 'none'")
    ap.add_argument("--client-cpu", default="0", help="CPU for its load generator, or 'none'")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter the venvs are made from (default: this one)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the venvs")
    ap.add_argument("--keep", metavar="DIR", help="copy each run's callgrind dump here "
                    "(for callgrind_annotate)")
    ap.add_argument("--json", metavar="PATH", help="also write every figure and metadata here")
    args = ap.parse_args(argv)
    names = micro._pick(args.only, list(WORKLOADS), "workload")
    pool = names if args.only else [n for n in DEFAULT if n in names]
    args.workloads = [WORKLOADS[n] for n in pool]
    args.impl_list = micro._pick(args.impls, IMPLS, "implementation", echo.IMPL_ALIASES)
    if args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        raise SystemExit("--rounds and --duration must be positive, --warmup not negative")
    return args


# --- one run -------------------------------------------------------------------------------


def callgrind_control(flag: str, pid: int) -> tuple[float, float]:
    """Run `callgrind_control FLAG PID`; return (monotonic start, seconds it took)."""
    t0 = time.monotonic()
    p = subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, text=True,
                       timeout=60)
    if p.returncode != 0 or "OK" not in p.stdout:
        raise RunFailed(f"callgrind_control {flag}: {(p.stderr or p.stdout).strip()[-160:]}")
    return t0, time.monotonic() - t0


def read_dump(tmp: Path, pid: int, timeout: float = 30) -> tuple[Path, int, int]:
    """The newest dump of pid: (file, Ir of its "summary:" line, Ir of its "totals:" line).

    "summary:" is callgrind's own instruction counter since the zero; "totals:" adds up the
    cost lines of the dump, which count a little too much when the counters were zeroed while
    the program ran (README.md: checked against the C server's exact count)."""
    deadline = time.monotonic() + timeout
    while True:
        parts = sorted(glob.glob(str(tmp / f"cg.{pid}.out.*")),
                       key=lambda f: int(f.rsplit(".", 1)[1]))
        if parts:
            text = Path(parts[-1]).read_text(errors="replace")
            events = re.search(r"^events:\s*(.*)$", text, re.M)
            totals = re.search(r"^totals:\s*(.*)$", text, re.M)  # the last line written
            if events and totals:
                ir = events[1].split().index("Ir")
                summary = re.search(r"^summary:\s*(.*)$", text, re.M) or totals
                return (Path(parts[-1]), int(summary[1].split()[ir]),
                        int(totals[1].split()[ir]))
        if time.monotonic() > deadline:
            raise RunFailed(f"no complete callgrind dump for pid {pid} in {tmp}")
        time.sleep(0.2)


COPY_FN = re.compile(r"mem(cpy|move)")


def copy_share(dump: Path) -> float:
    """Share of the dump's self cost spent in memcpy/memmove (any glibc variant).

    Callgrind counts every iteration of a `rep movsb` as one instruction, and glibc copies
    blocks above a few KiB with it, so a large copy counts about one instruction per byte:
    far more than its cycles. This share says how much of a row's figure that is."""
    names: dict[str, str] = {}  # callgrind's name compression: "(id) name" once, then "(id)"
    by_copy = total = 0
    in_copy = skip_next = False
    with open(dump, errors="replace") as f:
        for line in f:
            m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m[3]:
                    names[m[2]] = m[3].strip()
                if not m[1]:
                    in_copy = bool(COPY_FN.search(names.get(m[2], "")))
            elif line.startswith("calls="):
                skip_next = True  # the cost line after calls= is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if skip_next or len(parts) < 2:
                    skip_next = False
                    continue
                total += int(parts[1])
                by_copy += int(parts[1]) if in_copy else 0
    return by_copy / total if total else 0.0


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def load_loadgen(w: Workload, pid: int, port: int, args, loadgen: Path,
                 pin: list[str]) -> dict:
    """Load with the C loadgen; zero at --warmup, dump at --warmup + --duration."""
    cmd = pin + [str(loadgen), "-p", str(port), "-c", str(w.conns), "-s", str(w.size),
                 "-w", str(args.warmup), "-d", str(args.duration), "-P", str(pid)]
    if w.kind == "udp":
        cmd.append("-u")
    t0 = time.monotonic()
    lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _sleep_until(t0 + args.warmup)
        zero_at, zero_s = callgrind_control("-z", pid)
        _sleep_until(t0 + args.warmup + args.duration)
        dump_at, dump_s = callgrind_control("-d", pid)
        out, err = lg.communicate(timeout=60)
    finally:
        if lg.poll() is None:
            lg.kill()
            lg.wait()
    if lg.returncode != 0:
        raise RunFailed(f"loadgen: {(err.strip() or f'exit {lg.returncode}')[-160:]}")
    kv = dict(item.split("=", 1) for item in out.split())
    return {"requests": int(kv["requests"]), "elapsed": float(kv["elapsed"]),
            "lost": int(kv.get("lost", 0)), "cg_window": dump_at - zero_at,
            "zero_call_s": zero_s, "dump_call_s": dump_s}


def load_wrk(w: Workload, pid: int, port: int, args, pin: list[str]) -> dict:
    """Load with wrk after echo.py's warm-up; zero just before wrk, dump just after (the
    server is idle at both points, so the window also holds wrk's connects and closes)."""
    requests, elapsed, (zero_at, zero_s), (dump_at, dump_s) = echo.run_wrk(
        w, port, args, pin, lambda: callgrind_control("-z", pid),
        lambda: callgrind_control("-d", pid))
    return {"requests": requests, "elapsed": elapsed, "lost": 0,
            "cg_window": dump_at - zero_at, "zero_call_s": zero_s, "dump_call_s": dump_s}


def run_one(w: Workload, cmd: list[str], args, pins: dict, loadgen: Path, tag: str) -> dict:
    """Start cmd under callgrind, load it, return the sample."""
    tmp = Path(tempfile.mkdtemp(prefix="tideloop-cg-"))
    valgrind = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p.out"]
    try:
        p, pid, port, info = echo.start_server(cmd, pins["server"] + valgrind,
                                               timeout=START_TIMEOUT)
        try:
            if w.kind == "http":
                sample = load_wrk(w, pid, port, args, pins["client"])
            else:
                sample = load_loadgen(w, pid, port, args, loadgen, pins["client"])
            dump, total, totals = read_dump(tmp, pid)
            share = copy_share(dump)
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
    sample.update(instructions=total, totals_line=totals, memcpy_share=share,
                  instr_per_req=total / sample["requests"], info=info)
    return sample


# --- all runs ------------------------------------------------------------------------------


def run_all(args, cmds: dict, na: dict, loadgen: Path) -> tuple[dict, bool]:
    """Every (round, workload, row), --jobs at a time; return (samples, interrupted).
    Runs that would be identical (the C server under proto/buf/streams) run once per round."""
    slots: queue.Queue = queue.Queue()
    cpus = [(args.server_cpu, args.client_cpu), (args.client_cpu, args.server_cpu)]
    for server, client in cpus[:args.jobs]:
        slots.put({"server": micro.pin_prefix(server), "client": micro.pin_prefix(client)})
    tasks: dict[tuple, list[tuple[str, str]]] = {}
    for rnd in range(args.rounds):
        for w in args.workloads:
            for impl in args.impl_list:
                cmd = cmds.get((w.name, impl))
                if cmd is not None and impl not in na[w.name]:
                    key = (rnd, tuple(cmd), w.kind in ("udp", "http"), w.size, w.conns)
                    tasks.setdefault(key, []).append((w.name, impl))
    samples = {w.name: {i: [] for i in args.impl_list} for w in args.workloads}
    stop = threading.Event()
    done = [0]

    def work(key, cells):
        if stop.is_set():
            return
        name, impl = cells[0]
        if impl in na[name]:
            return
        pins = slots.get()
        try:
            sample = run_one(WORKLOADS[name], list(key[1]), args, pins, loadgen,
                             f"{name}.{impl}.{key[0] + 1}")
            for n, i in cells:
                samples[n][i].append(sample)
            msg = (f"{sample['instr_per_req']:,.0f} instr/req, {sample['requests']} requests"
                   + (f", {sample['lost']} lost" if sample["lost"] else ""))
        except NotApplicable as e:
            for n, i in cells:
                na[n][i] = str(e)
            msg = f"n/a ({e})"
        except (RunFailed, subprocess.TimeoutExpired, OSError) as e:
            for n, i in cells:
                na[n][i] = f"failed: {e}"
            msg = f"failed: {e}"
        finally:
            slots.put(pins)
        done[0] += 1
        log(f"  [{done[0]}/{len(tasks)}] {' '.join(f'{n}/{i}' for n, i in cells)}"
            f" (round {key[0] + 1}): {msg}")

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs)
    futures = [pool.submit(work, key, cells) for key, cells in tasks.items()]
    try:
        for f in futures:
            f.result()
    except KeyboardInterrupt:
        stop.set()
        log("interrupted: finishing the runs in progress, then reporting")
        pool.shutdown(wait=True, cancel_futures=True)
        return samples, True
    pool.shutdown()
    return samples, False


# --- report --------------------------------------------------------------------------------


def build_report(args, samples: dict, na: dict) -> dict:
    report = {}
    for w in args.workloads:
        cells = {}
        for impl in args.impl_list:
            runs = samples[w.name][impl]
            if impl in na[w.name] and not runs:
                cells[impl] = {"na": na[w.name][impl]}
            elif runs:
                per = sorted(s["instr_per_req"] for s in runs)
                cells[impl] = {"instr_per_req": statistics.median(per), "min": per[0],
                               "max": per[-1], "rounds": len(runs),
                               "lost": sum(s["lost"] for s in runs),
                               "samples": [{k: v for k, v in s.items() if k != "info"}
                                           for s in runs]}
        echo.add_ratios(cells, "instr_per_req")
        report[w.name] = {"kind": w.kind, "size": w.size, "conns": w.conns, "impls": cells}
    return report


def format_table(report: dict, rounds: int) -> str:
    head = ["workload", "impl", "instr/req", "requests", "copy%", "x uvloop", "x asyncio"]
    if rounds > 1:
        head.insert(3, "min..max")
    rows, notes = [], []
    for name, entry in report.items():
        for impl, c in entry["impls"].items():
            if "na" in c:
                rows.append(micro.na_row(notes, name, impl, c["na"]))
                continue
            ratios = [f"{c[k]:.2f}x" if c[k] is not None else "-"
                      for k in ("vs_uvloop", "vs_asyncio")]
            reqs = statistics.median(s["requests"] for s in c["samples"])
            copy = statistics.median(s["memcpy_share"] for s in c["samples"])
            row = [name, impl, f"{c['instr_per_req']:,.0f}", f"{reqs:,.0f}",
                   f"{100 * copy:.0f}%", *ratios]
            if rounds > 1:
                row.insert(3, f"{c['min']:,.0f}..{c['max']:,.0f}")
            rows.append(row)
            if c["lost"]:
                notes.append(f"{name}/{impl}: {c['lost']} datagrams lost (the server's work "
                             "on them counts, the request does not)")
    return micro.layout(head, rows, notes)


def window_notes(report: dict) -> list[str]:
    """Runs whose zero or dump call took over 5 % of the window (usually 0.1-0.25 s): a slow
    call can put the callgrind window and the load generator's apart by up to that much
    (http zeroes and dumps an idle server, so it is not affected)."""
    out = []
    for name, entry in report.items():
        for impl, c in entry["impls"].items():
            for s in c.get("samples", []) if entry["kind"] != "http" else []:
                slow = max(s["zero_call_s"], s["dump_call_s"])
                if slow > 0.05 * s["elapsed"]:
                    out.append(f"{name}/{impl}: a callgrind_control call took {slow:.2f} s of "
                               f"a {s['elapsed']:.1f} s window")
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        print(f"instructions.py needs {' and '.join(missing)} (apt-get install valgrind); "
              "nothing measured", file=sys.stderr)
        return 2
    started = time.monotonic()
    vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
    meta = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "host": platform.node(), "cpu_model": micro._cpu_model(), "ncpu": os.cpu_count(),
            "valgrind": vg.stdout.strip(), "tool": "callgrind", "metric": "Ir (summary:)",
            "warmup": args.warmup, "duration": args.duration, "rounds": args.rounds,
            "jobs": args.jobs, "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
            "git_head": micro._git("rev-parse", "--short", "HEAD"),
            "git_dirty": bool(micro._git("status", "--porcelain", "--", "src")),
            "loadavg_start": micro._loadavg()}
    python_of, dead, extra, env_meta = echo.setup_rows(args)
    meta.update(env_meta)
    na = {w.name: dict(dead) for w in args.workloads}
    for w in args.workloads:
        if w.kind == "http":
            na[w.name].update(extra["http_dead"])
    cmds = {(w.name, i): echo.server_cmd(w, i, python_of, extra["binaries"])
            for w in args.workloads for i in args.impl_list if i not in na[w.name]}
    log(f"instructions: {len(args.workloads)} workloads x {len(args.impl_list)} impls x "
        f"{args.rounds} rounds under callgrind, {args.warmup} s warm-up + {args.duration} s "
        f"counted, {args.jobs} at a time")
    for impl, why in dead.items():
        log(f"  {impl}: n/a ({why})")
    samples, interrupted = run_all(args, cmds, na, extra["binaries"]["loadgen"])

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_end"] = micro._loadavg()
    versions: dict = {}
    for cells in samples.values():
        for impl, runs in cells.items():
            if runs:
                versions.setdefault(impl, runs[0]["info"])
    meta["impl_info"] = versions
    report = build_report(args, samples, na)
    print()
    dirty = " (src dirty)" if meta["git_dirty"] else ""
    print(f"tideloop user-space instructions per request  {meta['date']}  {meta['valgrind']}")
    print(f"warmup={args.warmup}s duration={args.duration}s rounds={args.rounds} "
          f"jobs={args.jobs}  git {meta['git_head']}{dirty}  "
          f"load {meta['loadavg_start']} -> {meta['loadavg_end']}  {meta['elapsed_s']} s")
    print("instr/req = instructions the server executed in user space (callgrind Ir) / "
          "requests completed;\ncopy% = share of them in memcpy/memmove (a large copy counts "
          "~1 per byte: rep movsb);\nx uvloop, x asyncio = ratio of instr/req (<1 = fewer)\n")
    print(format_table(report, args.rounds))
    skews = window_notes(report)
    if skews:
        print("\nslow callgrind_control calls (the windows may be apart by up to that):\n"
              + "\n".join(skews))
    if interrupted:
        print("\n(interrupted: partial results)")
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "workloads": report}, indent=1)
                                   + "\n")
        log(f"wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
