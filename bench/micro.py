"""Micro benchmarks of the loop core, four implementations side by side in one run.

    python bench/micro.py                  # full run, about 2-4 minutes
    python bench/micro.py --quick          # about 30 s, for a smoke check
    python bench/micro.py --only sock --impls asyncio,tide-c --rounds 5 --json out.json
    python bench/micro.py --profile --only pingpong --impls tide-py,asyncio   # cProfile

Rows (implementations), in the order they take turns:
    asyncio   the stock loop, asyncio.new_event_loop()        (venv "base", with uvloop)
    uvloop    uvloop.new_event_loop()                         (venv "base")
    tide-c    tideloop.new_event_loop(), tideloop.COMPILED    (venv "compiled")
    tide-py   tideloop.new_event_loop(), not COMPILED         (venv "pure")
The venvs are built and cached by _envs.py under bench/.build/ and rebuilt when the tree
changes. A row that cannot run (tideloop not installable yet, build failed, uvloop missing;
on PyPy uvloop and tide-c, which do not exist there) prints "n/a (reason)" and the others
still run.

Method. Every sample is one fresh process (`taskset -c CPU python -I _micro_child.py ...`),
so implementations never share a process, allocator or interpreter warm state. The child
creates the loop, checks that it is the implementation its row claims (a tideloop row also
checks tideloop.COMPILED), runs the workload once at half size as a warm-up (plus WARMUP more
at full size), then INNER timed runs; the sample is the median of those (--sample-stat). A
run is timed by the CPU time of the sample process (--clock cpu, the default: user + system
time, so time spent preempted by other work on this shared machine does not count; both
socket ends live in the one process) or by wall time.
One round runs every workload once for every implementation, implementations interleaved
round-robin (asyncio, uvloop, tide-c, tide-py, asyncio, ...), so slow drift hits all rows
alike. The table reports, per cell, the median over rounds and the spread (min..max and the
interquartile range as a percentage of the median). Ratios are of ops/s (speed): 1.25x vs
asyncio means 25 % more operations per second than asyncio, i.e. 0.8x its time per op.

PyPy (--python .../pypy3.11): rows asyncio and tide-py. The JIT has to trace the hot loops
first, so the defaults there are 5 full-size warm-up runs and 6 timed runs per sample, and the
sample is their mean: a major collection of PyPy's GC lands in some timed runs and not in
others (sock_1k alternates between two levels run after run), and the mean charges that
work to every run alike where a median would pick one phase.

This is a measurement, not a test: nothing here compares against a threshold.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _envs

CHILD = Path(__file__).resolve().parent / "_micro_child.py"

IMPLS = ["asyncio", "uvloop", "tide-c", "tide-py"]  # also the round-robin order
IMPL_ENV = {"asyncio": "base", "uvloop": "base", "tide-c": "compiled", "tide-py": "pure"}
IMPL_ALIASES = {"compiled": "tide-c", "pure": "tide-py", "tideloop": "tide-c",
                "aio": "asyncio", "uv": "uvloop"}

# name: (operations per timed run, what one operation is). The counts are sized so that one
# timed run takes about 0.1 s on the stock asyncio loop on the reference machine.
WORKLOADS = {
    "call_soon": (150_000, "call_soon() of a trivial callback + running it (N queued, then run)"),
    "call_soon_chain": (60_000, "a callback that call_soon()s the next one: one loop pass each"),
    "timers": (50_000, "call_later() with random delay; half cancelled, half fire (~0 delay)"),
    "pingpong": (25_000, "round trip between two tasks via futures (await fut; new fut)"),
    "sock_64": (3_000, "64 B echo round trip, socketpair, sock_sendall/sock_recv"),
    "sock_1k": (3_000, "1 KiB echo round trip, socketpair, sock_sendall/sock_recv"),
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- arguments -----------------------------------------------------------------------------


def _pick(text: str | None, names: list[str], what: str, aliases=None) -> list[str]:
    if not text:
        return list(names)
    picked = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        word = (aliases or {}).get(word, word)
        hits = [n for n in names if n == word] or [n for n in names if n.startswith(word)]
        if not hits:
            raise SystemExit(f"unknown {what} {word!r}; choose from {', '.join(names)}")
        picked += [h for h in hits if h not in picked]
    return [n for n in names if n in picked]  # keep the canonical order


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Side-by-side micro benchmarks: tideloop compiled, tideloop pure, "
                    "asyncio, uvloop.",
        epilog="workloads: " + "; ".join(f"{k}: {v[1]}" for k, v in WORKLOADS.items()))
    ap.add_argument("--quick", action="store_true",
                    help="about 30 s: 5 rounds, 2 timed runs per sample, half-size runs")
    ap.add_argument("--rounds", type=int, help="rounds (default 15, --quick 5)")
    ap.add_argument("--inner", type=int,
                    help="timed runs per sample (default 3, --quick 2; PyPy 6, --quick 4)")
    ap.add_argument("--warmup", type=int, help="full-size warm-up runs per sample after the "
                    "half-size one (default 0; PyPy 5: its JIT needs them)")
    ap.add_argument("--sample-stat", choices=("median", "mean"),
                    help="how a sample sums up its timed runs (default median; PyPy mean)")
    ap.add_argument("--scale", type=float, help="multiply every N (default 1, --quick 0.5)")
    ap.add_argument("--only", help="comma-separated workloads or prefixes (e.g. sock,timers)")
    ap.add_argument("--impls", help="comma-separated subset of " + ",".join(IMPLS))
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter the venvs are made from (default: this one)")
    ap.add_argument("--cpu", default="0",
                    help="CPU to pin every sample to with taskset, or 'none' (default 0)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="what a sample measures: CPU time of the sample process (default; "
                         "immune to preemption by other work on the core) or wall time")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per sample process")
    ap.add_argument("--rebuild", action="store_true",
                    help="rebuild the venvs even if their cache looks current")
    ap.add_argument("--json", metavar="PATH", help="also write all samples and stats here")
    ap.add_argument("--profile", action="store_true",
                    help="instead of benchmarking, run one sample per selected cell under "
                         "cProfile and print the top functions (useful for asyncio, tide-py)")
    args = ap.parse_args(argv)
    pypy = _envs.is_pypy(args.python)
    args.rounds = args.rounds or (5 if args.quick else 15)
    args.inner = args.inner or ((4 if args.quick else 6) if pypy else (2 if args.quick else 3))
    args.warmup = args.warmup if args.warmup is not None else (5 if pypy else 0)
    args.sample_stat = args.sample_stat or ("mean" if pypy else "median")
    args.scale = args.scale or (0.5 if args.quick else 1.0)
    args.workloads = _pick(args.only, list(WORKLOADS), "workload")
    args.impl_list = _pick(args.impls, IMPLS, "implementation", IMPL_ALIASES)
    if args.rounds < 1 or args.inner < 1 or args.scale <= 0 or args.warmup < 0:
        raise SystemExit("--rounds, --inner and --scale must be positive, --warmup not "
                         "negative")
    return args


# --- running samples -----------------------------------------------------------------------


def pin_prefix(cpu: str) -> list[str]:
    if cpu.lower() == "none":
        return []
    if not shutil.which("taskset"):
        log("warning: taskset not found; samples run unpinned")
        return []
    if int(cpu) not in os.sched_getaffinity(0):
        raise SystemExit(f"--cpu {cpu} is not in this process's CPU set "
                         f"{sorted(os.sched_getaffinity(0))}")
    return ["taskset", "-c", cpu]


def run_sample(python: str, pin: list[str], impl: str, workload: str, n: int, inner: int,
               timeout: float, profile: bool = False,
               warmup: int = 0) -> tuple[dict | None, str, bool]:
    """Run one sample; return (result, error, wrong_impl)."""
    cmd = pin + [python, "-I", str(CHILD), impl, workload, str(n), str(inner)]
    if warmup:
        cmd.append(f"warmup={warmup}")
    if profile:
        cmd.append("profile")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=str(CHILD.parent))
    except subprocess.TimeoutExpired:
        return None, f"sample timed out after {timeout:.0f} s", False
    last = (p.stdout.strip().splitlines() or [""])[-1]
    try:
        out = json.loads(last)
    except ValueError:
        out = None
    if p.returncode == 0 and out and "cpu" in out:
        if profile:
            print(p.stderr)
        return out, "", False
    if out and out.get("wrong_impl"):
        return None, out["error"], True
    err = (p.stderr.strip().splitlines() or [f"exit {p.returncode}, no output"])[-1]
    return None, f"{err[:160]}", False


# --- statistics and the table -------------------------------------------------------------


def summarize(samples_ns: list[float]) -> dict:
    s = sorted(samples_ns)
    med = statistics.median(s)
    if len(s) >= 2:
        q1, _, q3 = statistics.quantiles(s, n=4, method="inclusive")
    else:
        q1 = q3 = med
    return {"median_ns": med, "ops_s": 1e9 / med, "min_ns": s[0], "max_ns": s[-1],
            "q1_ns": q1, "q3_ns": q3, "iqr_pct": 100 * (q3 - q1) / med, "rounds": len(s)}


def _ops(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def _ns(x: float) -> str:
    return f"{x:,.0f}" if x >= 1000 else f"{x:.1f}"


def build_report(args, ns_samples, na) -> dict:
    report = {}
    for w in args.workloads:
        cells = {}
        for impl in args.impl_list:
            if impl in na.get(w, {}) or not ns_samples[w][impl]:
                cells[impl] = {"na": na.get(w, {}).get(impl, "no samples")}
            else:
                cells[impl] = summarize(ns_samples[w][impl])
                cells[impl]["samples_ns"] = ns_samples[w][impl]
        for c in cells.values():
            for ref in ("asyncio", "uvloop"):
                r = cells.get(ref)
                ok = "median_ns" in c and r is not None and "median_ns" in r
                c[f"vs_{ref}"] = r["median_ns"] / c["median_ns"] if ok else None
        report[w] = {"n": round(WORKLOADS[w][0] * args.scale), "what": WORKLOADS[w][1],
                     "impls": cells}
    return report


def format_table(report: dict) -> str:
    head = ("workload", "impl", "ops/s", "ns/op", "min..max ns/op", "IQR", "vs asyncio",
            "vs uvloop")
    rows, notes = [], []
    for w, entry in report.items():
        for impl, c in entry["impls"].items():
            if "na" in c:
                rows.append(na_row(notes, w, impl, c["na"]))
                continue
            ratio = [f"{c[k]:.2f}x" if c[k] is not None else "-"
                     for k in ("vs_asyncio", "vs_uvloop")]
            rows.append((w, impl, _ops(c["ops_s"]), _ns(c["median_ns"]),
                         f"{_ns(c['min_ns'])}..{_ns(c['max_ns'])}", f"{c['iqr_pct']:.1f}%",
                         *ratio))
    return layout(head, rows, [f"n/a: {why}" for why in notes])


def na_row(notes: list[str], workload: str, impl: str, reason: str) -> tuple:
    """The row of a cell that could not run: "n/a [k]", its reason the k-th note (once)."""
    if reason not in notes:
        notes.append(reason)
    return (workload, impl, "n/a", f"[{notes.index(reason) + 1}]")


def layout(head: tuple, rows: list, notes: list[str]) -> str:
    """The benchmark scripts' text table: two left-aligned columns (workload, impl) then
    right-aligned ones, a blank line between workloads, each workload named once, then the
    numbered notes. A row shorter than the head (an na_row) is padded with blanks."""
    rows = [(*r, *("",) * (len(head) - len(r))) for r in rows]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def fmt(r) -> str:
        return "  ".join(str(v).ljust(widths[i]) if i < 2 else str(v).rjust(widths[i])
                         for i, v in enumerate(r)).rstrip()

    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    prev = None
    for r in rows:
        if prev is not None and r[0] != prev:
            lines.append("")
        lines.append(fmt(r) if r[0] != prev else fmt(("", *r[1:])))
        prev = r[0]
    if notes:
        lines.append("")
        lines += [f"[{i}] {why}" for i, why in enumerate(notes, 1)]
    return "\n".join(lines)


# --- metadata ------------------------------------------------------------------------------


def _git(*a) -> str:
    try:
        return subprocess.run(["git", "-C", str(_envs.REPO), *a], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# --- main ----------------------------------------------------------------------------------


def main(argv=None) -> int:
    args = parse_args(argv)
    pin = pin_prefix(args.cpu)
    started = time.monotonic()
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": platform.node(), "cpu_model": _cpu_model(), "ncpu": os.cpu_count(),
        "clock": args.clock, "pinned_cpu": args.cpu if pin else None,
        "rounds": args.rounds, "inner": args.inner, "warmup": args.warmup,
        "sample_stat": args.sample_stat, "interpreter": _envs.interpreter(args.python)["label"],
        "scale": args.scale, "git_head": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "src")),
        "loadavg_start": _loadavg(),
    }

    # Environments: one per build mode; a row whose venv is unusable becomes n/a.
    envs: dict[str, _envs.Env] = {}
    wanted = {IMPL_ENV[i] for i in args.impl_list}
    if "base" in wanted:
        envs["base"] = _envs.base_env(args.python, args.rebuild)
    snap = None
    for mode in ("compiled", "pure"):
        if mode in wanted:
            if snap is None and (_envs.REPO / "src" / "tideloop" / "__init__.py").exists():
                snap = _envs.snapshot(args.python)
                meta["source_hash"] = snap[1]
            envs[mode] = _envs.tideloop_env(args.python, mode, snap, args.rebuild)
    python_of, dead = {}, {}
    for impl in args.impl_list:
        env = envs[IMPL_ENV[impl]]
        if not env.ok:
            dead[impl] = env.reason
        elif impl == "uvloop" and not env.info.get("uvloop"):
            dead[impl] = env.reason or "uvloop not installed"
        else:
            python_of[impl] = env.python
    meta["envs"] = {k: {"python": e.python, "reason": e.reason, **e.info}
                    for k, e in envs.items()}
    meta["python_version"] = subprocess.run(
        [args.python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True, text=True).stdout.strip()

    if args.profile:
        for w in args.workloads:
            n = max(1, round(WORKLOADS[w][0] * args.scale))
            for impl in args.impl_list:
                if impl in dead:
                    print(f"{w}/{impl}: n/a ({dead[impl]})")
                    continue
                res, err, _ = run_sample(python_of[impl], pin, impl, w, n, 1, args.timeout,
                                         profile=True, warmup=args.warmup)
                if res is None:
                    print(f"{w}/{impl}: failed: {err}")
        return 0

    ns_samples = {w: {i: [] for i in args.impl_list} for w in args.workloads}
    raw = {w: {i: [] for i in args.impl_list} for w in args.workloads}
    na: dict[str, dict[str, str]] = {w: dict(dead) for w in args.workloads}
    facts: dict[str, dict] = {}
    log(f"micro ({meta['interpreter']}): {len(args.workloads)} workloads x "
        f"{len(args.impl_list)} impls x {args.rounds} rounds, {args.warmup} full warm-up + "
        f"{args.inner} timed runs per sample ({args.sample_stat}), pinned to "
        f"{'cpu ' + args.cpu if pin else 'nothing'}")
    for impl, why in dead.items():
        log(f"  {impl}: n/a ({why})")
    interrupted = False
    try:
        for rnd in range(1, args.rounds + 1):
            t_round = time.monotonic()
            for w in args.workloads:
                n = max(1, round(WORKLOADS[w][0] * args.scale))
                for impl in args.impl_list:
                    if impl in na[w]:
                        continue
                    res, err, wrong = run_sample(python_of[impl], pin, impl, w, n,
                                                 args.inner, args.timeout, warmup=args.warmup)
                    if wrong:  # the row is not what it claims: drop it everywhere
                        log(f"  {impl}: ABORTED, wrong implementation: {err}")
                        for ww in args.workloads:
                            na[ww][impl] = f"aborted: {err}"
                            ns_samples[ww][impl] = []
                        continue
                    if res is None:
                        log(f"  {w}/{impl}: failed: {err}")
                        na[w][impl] = f"failed: {err}"
                        continue
                    facts.setdefault(impl, {k: v for k, v in res.items()
                                            if k not in ("wall", "cpu", "workload", "n", "impl")})
                    raw[w][impl].append({"wall": res["wall"], "cpu": res["cpu"]})
                    stat = getattr(statistics, args.sample_stat)
                    ns_samples[w][impl].append(stat(res[args.clock]) / n * 1e9)
            spent = time.monotonic() - t_round
            log(f"round {rnd}/{args.rounds} took {spent:.1f} s"
                + (f", about {spent * (args.rounds - rnd):.0f} s to go"
                   if rnd < args.rounds else ""))
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: reporting the rounds completed so far")

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_end"] = _loadavg()
    meta["impl_facts"] = facts
    report = build_report(args, ns_samples, na)

    print()
    print(f"tideloop micro benchmarks  {meta['date']}  {meta['interpreter']}  "
          f"{meta['cpu_model']}")
    dirty = " (src dirty)" if meta["git_dirty"] else ""
    warm = f" warmup={args.warmup}" if args.warmup else ""
    stat = f" sample={args.sample_stat}" if args.sample_stat != "median" else ""
    print(f"clock={args.clock} rounds={args.rounds}{warm} inner={args.inner}{stat} "
          f"scale={args.scale} pinned="
          f"{meta['pinned_cpu']}  git {meta['git_head']}{dirty}"
          f"  load {meta['loadavg_start']} -> {meta['loadavg_end']}  {meta['elapsed_s']} s")
    uv = envs.get("base").info.get("uvloop") if "base" in envs else None
    tl = next((e.info.get("version") for e in envs.values() if e.info.get("version")), None)
    print(f"uvloop {uv or '-'}  tideloop {tl or '-'}")
    for w, entry in report.items():
        print(f"  {w:<16} N={entry['n']:<7} op = {entry['what']}")
    print(f"ops/s and ns/op ({args.clock} time) are medians over rounds; ratios are ops/s vs "
          "the reference (>1 = faster)\n")
    print(format_table(report))
    if interrupted:
        print("\n(interrupted: partial results)")

    if args.json:
        out = {"meta": meta, "workloads": report, "raw_seconds": raw}
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
        log(f"wrote {args.json}")
    aborted = any(v.startswith("aborted:") for d in na.values() for v in d.values())
    return 2 if aborted else (130 if interrupted else 0)


if __name__ == "__main__":
    sys.exit(main())
