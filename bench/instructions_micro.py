"""User-space instructions per operation of micro.py's workloads, counted by valgrind's callgrind.

    python bench/instructions_micro.py                 # call_soon, call_soon_chain; 3 rows
    python bench/instructions_micro.py --only call_soon_chain --impls tide-c,asyncio

The companion of instructions.py (echo servers, per request) for the loop's own paths, per
operation: micro.py's workloads (one `call_soon()` and its callback run, one callback that
schedules the next, ...) in the same venvs (_envs.py) and the same child (_micro_child.py).

Method. Each (workload, row) runs `_micro_child.py IMPL WORKLOAD N 1` under `valgrind
--tool=callgrind` twice, at N and at 11 N, with PYTHONHASHSEED=0 (both runs build the same
dicts). The child runs the workload once at N/2 (its warm-up) and once at N, so the difference
of the two runs' instruction totals, over 1.5 x 10 N operations, is the cost of one operation:
interpreter start-up, imports and loop creation cancel out. A figure repeats within a few
instructions; it counts what the loop and the interpreter execute in user space (the syscalls'
kernel side, and the vDSO's clock reads, which valgrind turns into syscalls, are not seen).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import _envs
import micro

DEFAULT = ["call_soon", "call_soon_chain"]
DEFAULT_IMPLS = ["asyncio", "uvloop", "tide-c"]
SCALE = 0.2  # N = 20% of micro.py's default n: 30,000 call_soon, 12,000 chained callbacks


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated workloads of micro.py "
                                   f"(default {','.join(DEFAULT)})")
    ap.add_argument("--impls", help="comma-separated subset of " + ",".join(micro.IMPLS)
                                    + f" (default {','.join(DEFAULT_IMPLS)})")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter the venvs are made from (default: this one)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the venvs")
    args = ap.parse_args(argv)
    args.workloads = micro._pick(args.only, list(micro.WORKLOADS), "workload") \
        if args.only else DEFAULT
    args.impl_list = micro._pick(args.impls, micro.IMPLS, "implementation") \
        if args.impls else DEFAULT_IMPLS
    return args


def instructions(python: str, impl: str, workload: str, n: int) -> int:
    """Instructions callgrind counted for one child run of ``n`` operations (plus n/2)."""
    with tempfile.TemporaryDirectory(prefix="tideloop-cgm-") as tmp:
        out = Path(tmp) / "cg.out"
        cmd = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out}",
               python, "-I", str(micro.CHILD), impl, workload, str(n), "1"]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           cwd=str(micro.CHILD.parent), timeout=1800)
        if p.returncode != 0:
            raise RuntimeError(f"{impl}/{workload} n={n}: "
                               f"{(p.stderr.strip().splitlines() or ['?'])[-1][:160]}")
        text = out.read_text(errors="replace")
        events = re.search(r"^events:\s*(.*)$", text, re.M)
        summary = re.search(r"^summary:\s*(.*)$", text, re.M) or re.search(
            r"^totals:\s*(.*)$", text, re.M)
        if not (events and summary):
            raise RuntimeError(f"{impl}/{workload}: no summary in the callgrind output")
        return int(summary[1].split()[events[1].split().index("Ir")])


def main(argv=None) -> int:
    args = parse_args(argv)
    envs: dict[str, _envs.Env] = {}
    python_of: dict[str, str] = {}
    snap = None
    for impl in args.impl_list:
        mode = micro.IMPL_ENV[impl]
        if mode not in envs:
            if mode == "base":
                envs[mode] = _envs.base_env(args.python, args.rebuild)
            else:
                snap = snap or _envs.snapshot(args.python)
                envs[mode] = _envs.tideloop_env(args.python, mode, snap, args.rebuild)
        env = envs[mode]
        if env.ok and (impl != "uvloop" or env.info.get("uvloop")):
            python_of[impl] = env.python
        else:
            print(f"{impl}: n/a ({env.reason or 'uvloop not installed'})", file=sys.stderr)
    print(f"{'workload':<18} {'impl':<8} {'instr/op':>9}  {'x asyncio':>9}")
    for workload in args.workloads:
        n = max(2, round(micro.WORKLOADS[workload][0] * SCALE))
        per_op: dict[str, float] = {}
        for impl, python in python_of.items():
            small = instructions(python, impl, workload, n)
            large = instructions(python, impl, workload, 11 * n)
            per_op[impl] = (large - small) / (1.5 * 10 * n)
        for impl, value in per_op.items():
            ratio = f"{value / per_op['asyncio']:.2f}x" if "asyncio" in per_op else "-"
            print(f"{workload:<18} {impl:<8} {value:>9,.0f}  {ratio:>9}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
