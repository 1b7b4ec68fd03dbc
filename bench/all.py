#!/usr/bin/env python3
"""Every benchmark in one command: micro.py, echo.py and idle.py, then one report and chart.

    python bench/all.py                 # full: about 12 minutes on this 2-core machine
    python bench/all.py --quick         # about 3 minutes, for a smoke check
    python bench/all.py --report-only   # rebuild the report and chart from the saved JSON

Each benchmark runs as its own process with ``--json`` (see bench/README.md for how each one
measures); this script only sequences them and summarises. Results go to ``--out``
(default bench/results/latest/): micro.json, echo.json, idle.json, summary.md (one table:
every workload, cost per operation for each row, ratios to uvloop and asyncio, and the
issue-7 target) and chart.svg (cost relative to uvloop's, per workload; the README shows it).

Cost per operation everywhere, lower is better: micro = ns per op, echo = server CPU us per
request, idle = RSS bytes per idle connection. Ratios are ``row / uvloop`` (0.80x = 20 % less).

``--instructions`` also runs instructions.py (user-space instructions per request of the echo
servers under valgrind's callgrind, about 5 more minutes) into instructions.json; whenever
that file is in ``--out``, summary.md gets a second table with those counts.

``--python PATH`` is passed to every benchmark (the interpreter their venvs are made from).
On PyPy the default ``--out`` is bench/results/latest-pypy/ (so a PyPy run never replaces the
CPython results the top-level README shows), uvloop and tide-c are n/a, and the chart is
relative to asyncio instead of uvloop.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROWS = ["tide-c", "tide-py", "uvloop", "asyncio", "c-epoll"]
CHART_ROWS = {"tide-c": "#1f6fb4", "tide-py": "#7fb3e0", "asyncio": "#c9a227"}

# workload -> the issue-7 checks of the compiled build: (text, row, ratio ceiling, against row)
# each; "met" when every check holds.
TARGETS: dict[str, list[tuple[str, str, float, str]]] = {
    "proto-1k-c10": [("<= 0.88x uvloop", "tide-c", 0.88, "uvloop"),
                     ("<= 1.10x C", "tide-c", 1.10, "c-epoll")],
    "proto-1k-c1": [("<= 0.88x uvloop", "tide-c", 0.88, "uvloop")],
    "proto-1k-c100": [("<= 0.88x uvloop", "tide-c", 0.88, "uvloop")],
    "buf-1k-c10": [("<= 0.90x uvloop", "tide-c", 0.90, "uvloop")],
    "streams-1k-c10": [("<= 0.65x uvloop (asyncio streams)", "tide-c", 0.65, "uvloop")],
    "proto-100k-c10": [("<= 1.0x uvloop", "tide-c", 1.0, "uvloop")],
    "http-c10": [("<= 0.90x uvloop", "tide-c", 0.90, "uvloop")],
    "udp-1k-c10": [("<= 1.0x uvloop", "tide-c", 1.0, "uvloop")],
    "tls-1k-c10": [("<= 1.0x uvloop", "tide-c", 1.0, "uvloop")],
    "tls-100k-c10": [("<= 1.0x uvloop", "tide-c", 1.0, "uvloop")],
    "idle-rss": [("<= 1.0x uvloop", "tide-c", 1.0, "uvloop")],
}
MICRO_TARGET = [("<= 1.0x uvloop", "tide-c", 1.0, "uvloop")]
# The pure build's targets: Protocol echo <= 0.65x asyncio's, every other workload <= 1.0x.
PURE_CEILING = {"proto-1k-c10": 0.65}
# Workloads that are only there to explain others (no target of their own).
NO_TARGET = {"taskfloor-1k-c10", "aiostreams-1k-c10"}


def run(cmd: list[str]) -> int:
    print("\n$ " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.call(cmd, cwd=BENCH)


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def collect(out: Path) -> tuple[dict[str, dict[str, float]], dict[str, str], dict]:
    """-> ({workload: {row: cost}}, {workload: unit}, meta)."""
    costs: dict[str, dict[str, float]] = {}
    units: dict[str, str] = {}
    meta: dict = {}
    micro = load(out / "micro.json")
    if micro:
        meta["micro"] = micro.get("meta", {})
        for name, w in micro["workloads"].items():
            costs[name] = {i: c["median_ns"] for i, c in w["impls"].items() if "median_ns" in c}
            units[name] = "ns/op"
    echo = load(out / "echo.json")
    if echo:
        meta["echo"] = echo.get("meta", {})
        for name, w in echo["workloads"].items():
            costs[name] = {i: c["us_per_req"] for i, c in w["impls"].items()
                           if c.get("us_per_req")}
            units[name] = "us/req"
    idle = load(out / "idle.json")
    if idle:
        costs["idle-rss"] = dict(idle["median"])
        units["idle-rss"] = "B/conn"
        meta["idle"] = {"conns": idle["conns"]}
    return costs, units, meta


def target_of(name: str, units: dict[str, str]) -> list[tuple[str, str, float, str]]:
    if name in TARGETS:
        return TARGETS[name]
    if units.get(name) == "ns/op":
        return MICRO_TARGET
    return []


def _verdict(row: dict[str, float], checks: list[tuple[str, str, float, str]]) -> str:
    """"yes" / "no" if every check could be evaluated, else "-"."""
    if not checks or not all(row.get(impl) and row.get(against)
                             for _, impl, _, against in checks):
        return "-"
    ok = all(row[impl] / row[against] <= ceiling for _, impl, ceiling, against in checks)
    return "yes" if ok else "no"


def _cell(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}" if v >= 100 else f"{v:.2f}")


def _ratio(row: dict[str, float], a: str, b: str) -> str:
    return f"{row[a] / row[b]:.2f}x" if row.get(a) and row.get(b) else "-"


def summary_md(costs, units, meta) -> str:
    echo_meta = meta.get("echo", {})
    lines = [
        "# tideloop benchmarks",
        "",
        f"Machine: {echo_meta.get('cpu_model', platform.processor() or '?')}, "
        f"{echo_meta.get('ncpu', '?')} CPUs; git {echo_meta.get('git_head', '?')}; "
        f"{echo_meta.get('date', '')}; "
        f"{echo_meta.get('interpreter') or meta.get('micro', {}).get('interpreter') or '?'}. "
        f"Command: `{meta.get('command', 'python bench/all.py')}`.",
        "Cost per operation (lower is better): micro ns/op, echo server CPU us per request, "
        "idle RSS bytes per connection. Ratios are to uvloop's cost.",
        "",
        "| workload | unit | tide-c | tide-py | uvloop | asyncio | C | tide-c / uvloop "
        "| tide-py / asyncio | issue-7 target | met | pure target | pure met |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- |",
    ]
    for name, row in costs.items():
        checks = [] if name in NO_TARGET else target_of(name, units)
        pure = [] if name in NO_TARGET else [
            (f"<= {PURE_CEILING.get(name, 1.0)}x asyncio", "tide-py",
             PURE_CEILING.get(name, 1.0), "asyncio")]
        cells = " | ".join(_cell(row.get(i)) for i in ROWS)
        lines.append(
            f"| {name} | {units[name]} | {cells} | {_ratio(row, 'tide-c', 'uvloop')} | "
            f"{_ratio(row, 'tide-py', 'asyncio')} | {', '.join(c[0] for c in checks)} | "
            f"{_verdict(row, checks)} | {', '.join(c[0] for c in pure)} | "
            f"{_verdict(row, pure)} |"
        )
    return "\n".join(lines) + "\n"


def instructions_md(data: dict) -> str:
    """The second table of summary.md: instructions.py's user-space instructions per request."""
    meta = data.get("meta", {})
    lines = [
        "",
        "## user-space instructions per request (callgrind)",
        "",
        "`bench/instructions.py`: instructions each echo server executes in user space per "
        "request under valgrind's callgrind (kernel work not counted; bench/README.md says "
        f"how). git {meta.get('git_head', '?')}; {meta.get('date', '')}; "
        f"{meta.get('valgrind', '')}.",
        "",
        "| workload | tide-c | tide-py | uvloop | asyncio | C | tide-c / uvloop "
        "| tide-py / asyncio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    notes = []
    for name, w in data.get("workloads", {}).items():
        row = {i: c["instr_per_req"] for i, c in w["impls"].items() if c.get("instr_per_req")}
        cells = " | ".join(f"{row[i]:,.0f}" if row.get(i) else "-" for i in ROWS)
        lines.append(f"| {name} | {cells} | {_ratio(row, 'tide-c', 'uvloop')} | "
                     f"{_ratio(row, 'tide-py', 'asyncio')} |")
        copies = []
        for impl, c in w["impls"].items():
            shares = [s.get("memcpy_share", 0) for s in c.get("samples", [])]
            if shares and max(shares) > 0.5:
                copies.append(f"{impl} {100 * max(shares):.0f} %")
        if copies:
            notes.append(f"- {name}: memcpy is {', '.join(copies)} of the count (callgrind "
                         "counts a large copy about one instruction per byte)")
    if notes:
        lines += [""] + notes
    return "\n".join(lines) + "\n"


def chart_svg(costs, units, ref: str = "uvloop") -> str:
    """Horizontal grouped bars: each row's cost / ref's (uvloop's), per workload; a line at
    1.0."""
    names = [n for n, row in costs.items() if row.get(ref)]
    bar, gap, left, width = 9, 10, 150, 480
    group = bar * len(CHART_ROWS) + gap
    top = 40
    height = top + group * len(names) + 40
    ratios = [costs[n][i] / costs[n][ref] for n in names for i in CHART_ROWS
              if costs[n].get(i)]
    xmax = max([1.6, *ratios]) * 1.05
    scale = width / xmax
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" '
        f'height="{height}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">'
        f"cost per operation relative to {ref} (lower is better)</text>",
    ]
    for k, (impl, color) in enumerate(CHART_ROWS.items()):
        x = left + k * 110
        out.append(f'<rect x="{x}" y="24" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{x + 14}" y="33">{impl}</text>')
    for j, name in enumerate(names):
        y0 = top + j * group
        out.append(f'<text x="{left - 6}" y="{y0 + group / 2 + 1}" text-anchor="end">'
                   f"{name}</text>")
        for k, impl in enumerate(CHART_ROWS):
            v = costs[name].get(impl)
            if not v:
                continue
            r = v / costs[name][ref]
            y = y0 + k * bar
            out.append(f'<rect x="{left}" y="{y}" width="{r * scale:.1f}" height="{bar - 1}" '
                       f'fill="{CHART_ROWS[impl]}"/>')
            out.append(f'<text x="{left + r * scale + 3:.1f}" y="{y + bar - 1}" '
                       f'font-size="9">{r:.2f}</text>')
    x1 = left + scale
    out.append(f'<line x1="{x1:.1f}" y1="{top - 4}" x2="{x1:.1f}" y2="{height - 30}" '
               'stroke="black" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x1:.1f}" y="{height - 16}" text-anchor="middle">{ref} = 1.0</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs of every benchmark")
    ap.add_argument("--report-only", action="store_true", help="only rebuild the report")
    ap.add_argument("--instructions", action="store_true",
                    help="also run instructions.py (callgrind; needs valgrind)")
    ap.add_argument("--echo-rounds", type=int, metavar="N",
                    help="rounds of echo.py (its default: 4); more steadies the medians")
    ap.add_argument("--python", help="interpreter the benchmarks' venvs are made from (default: "
                    "this one); passed to each benchmark")
    ap.add_argument("--out", type=Path, help="where the results go (default "
                    "bench/results/latest/, for PyPy bench/results/latest-pypy/)")
    args = ap.parse_args(argv)
    pypy = args.python is not None and "pypy" in subprocess.run(
        [args.python, "-c", "import sys; print(sys.implementation.name)"],
        capture_output=True, text=True).stdout
    out = (args.out or BENCH / "results" / ("latest-pypy" if pypy else "latest")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rc = 0
    if not args.report_only:
        # The command that made the results, for the report (--report-only reads it back).
        (out / "command.txt").write_text(" ".join(["python bench/all.py", *sys.argv[1:]]))
        py = sys.executable
        target = ["--python", args.python] if args.python else []
        quick = ["--quick"] if args.quick else []
        idle = ["--conns", "2000", "--rounds", "1"] if args.quick else []
        rc |= run([py, "micro.py", *quick, *target, "--json", str(out / "micro.json")])
        rounds = ["--rounds", str(args.echo_rounds)] if args.echo_rounds else []
        rc |= run([py, "echo.py", *quick, *rounds, *target, "--json", str(out / "echo.json")])
        rc |= run([py, "idle.py", *idle, *target, "--json", str(out / "idle.json")])
        if args.instructions:
            short = ["--warmup", "2", "--duration", "4"] if args.quick else []
            rc |= run([py, "instructions.py", *short, *target, "--json",
                       str(out / "instructions.json")])
    costs, units, meta = collect(out)
    if (out / "command.txt").exists():
        meta["command"] = (out / "command.txt").read_text().strip()
    if not costs:
        print("no results to report", file=sys.stderr)
        return 1
    md = summary_md(costs, units, meta)
    instructions = load(out / "instructions.json")
    if instructions:
        md += instructions_md(instructions)
    (out / "summary.md").write_text(md)
    ref = "uvloop" if any(row.get("uvloop") for row in costs.values()) else "asyncio"
    (out / "chart.svg").write_text(chart_svg(costs, units, ref))
    print("\n" + md)
    print(f"wrote {out / 'summary.md'} and {out / 'chart.svg'}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
