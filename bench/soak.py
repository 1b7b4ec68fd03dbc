#!/usr/bin/env python3
"""Soak: does a long-running server's memory stay flat and its fd count return to where it was?

    python bench/soak.py                          # 1,000,000 echoes over 100 conns + 100,000
                                                  # sequential connections, tide-c and uvloop
    python bench/soak.py --requests 200000 --sequential 20000 --impls tide-c

Per row, one server process (bench/_echo_server.py's Protocol echo, as echo.py measures):

1. Echo soak: bench/c/loadgen.c drives 100 connections with 1 KiB messages in segments of
   ``--segment`` seconds (each segment opens and closes its own connections) until
   ``--requests`` echoes are done; the server's RSS (/proc/PID/status VmRSS) is read after each
   segment. The first ``--warmup-segments`` segments are warm-up (allocator and caches
   settling). Reported: RSS after warm-up and at the end, and the largest deviation of any
   later sample from the first post-warm-up one, in percent ("flat" means within 5%).
2. Sequential connections: this process opens ``--sequential`` connections one after the
   other, each sending 64 bytes, reading the echo and closing. Reported: the server's socket
   fd count before and after (once it has seen every close): it must be unchanged, and its RSS.

Not a CI test (it takes minutes); its figures go in docs/design.md ("Soak").
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _envs  # noqa: E402
import echo  # noqa: E402
import micro  # noqa: E402
from idle import rss_bytes, socket_fds, wait_for  # noqa: E402

CONNS = 100
SIZE = 1024


def echo_segment(loadgen: Path, pid: int, port: int, seconds: float, pin: list[str]) -> int:
    """Run the load generator for ``seconds`` on CONNS connections; the echoes done."""
    cmd = pin + [str(loadgen), "-p", str(port), "-c", str(CONNS), "-s", str(SIZE),
                 "-w", "0", "-d", str(seconds), "-P", str(pid)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if p.returncode != 0:
        raise echo.RunFailed(f"loadgen: {(p.stderr.strip() or f'exit {p.returncode}')[-160:]}")
    kv = dict(item.split("=") for item in p.stdout.split())
    return int(kv["requests"])


def sequential(port: int, n: int) -> None:
    """n connections, one after the other: send 64 bytes, read the echo, close."""
    payload = b"s" * 64
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = s.recv(4096)
                if not chunk:
                    raise echo.RunFailed("server closed a sequential connection early")
                got += chunk


def soak(cmd: list[str], args, loadgen: Path, pins: dict) -> dict:
    p, pid, port, _info = echo.start_server(cmd, pins["server"])
    try:
        idle_fds = socket_fds(pid)  # the listener and whatever the loop keeps for itself
        samples: list[tuple[int, int]] = []  # (echoes so far, RSS)
        done = 0
        start = time.monotonic()
        while done < args.requests:
            done += echo_segment(loadgen, pid, port, args.segment, pins["client"])
            samples.append((done, rss_bytes(pid)))
            echo.log(f"  {done:>9} echoes  RSS {samples[-1][1] / 2**20:7.1f} MiB")
        echo_seconds = time.monotonic() - start
        settled = samples[args.warmup_segments:] or samples[-1:]
        ref = settled[0][1]
        drift = max(abs(rss - ref) for _, rss in settled) / ref * 100

        wait_for(lambda: socket_fds(pid) <= idle_fds, 30, "the soak's connections to close")
        fds_before = socket_fds(pid)
        rss_before = rss_bytes(pid)
        start = time.monotonic()
        sequential(port, args.sequential)
        seq_seconds = time.monotonic() - start
        try:
            wait_for(lambda: socket_fds(pid) <= fds_before, 30, "every sequential close")
        except echo.RunFailed:
            pass  # reported below as a changed count
        fds_after = socket_fds(pid)
        rss_after = rss_bytes(pid)
    finally:
        echo.stop_server(p)
    return {
        "echoes": done, "echo_seconds": echo_seconds, "rss_samples": samples,
        "rss_settled_start": ref, "rss_end": samples[-1][1], "rss_drift_pct": drift,
        "sequential": args.sequential, "sequential_seconds": seq_seconds,
        "socket_fds_before": fds_before, "socket_fds_after": fds_after,
        "rss_before_sequential": rss_before, "rss_after_sequential": rss_after,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--sequential", type=int, default=100_000)
    ap.add_argument("--segment", type=float, default=2.0, help="seconds per load segment")
    ap.add_argument("--warmup-segments", type=int, default=2)
    ap.add_argument("--impls", default="tide-c,uvloop",
                    help="comma-separated subset of " + ",".join(echo.IMPLS))
    ap.add_argument("--server-cpu", default="1", help="CPU for the server, or 'none'")
    ap.add_argument("--client-cpu", default="0", help="CPU for the load generator, or 'none'")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    impls = [echo.IMPL_ALIASES.get(i, i) for i in args.impls.split(",")]

    setup = argparse.Namespace(impl_list=impls, python=args.python, rebuild=args.rebuild,
                               workloads=[])
    python_of, dead, extra, _meta = echo.setup_rows(setup)
    loadgen = extra["binaries"]["loadgen"]
    if not isinstance(loadgen, Path):
        raise SystemExit(f"cannot build bench/c/loadgen.c: {loadgen}")
    w = echo.Workload("protocol", SIZE, CONNS)
    pins = {"server": micro.pin_prefix(args.server_cpu),
            "client": micro.pin_prefix(args.client_cpu)}
    results: dict[str, dict] = {}
    for impl in impls:
        if impl in dead:
            continue
        echo.log(f"{impl}:")
        try:
            results[impl] = soak(echo.server_cmd(w, impl, python_of, extra["binaries"], False),
                                 args, loadgen, pins)
        except (echo.RunFailed, echo.NotApplicable) as exc:
            dead[impl] = str(exc)

    print(f"\nSoak: {args.requests} echoes of {SIZE} B over {CONNS} connections, then "
          f"{args.sequential} sequential connections  (git "
          f"{micro._git('rev-parse', '--short', 'HEAD')}, "
          f"{_envs.interpreter(args.python)['label']})\n")
    print(f"{'impl':8} {'RSS settled':>11} {'RSS end':>9} {'drift':>7}  "
          f"{'sock fds before/after':>21} {'RSS seq before/after':>21}")
    for impl in impls:
        r = results.get(impl)
        if r is None:
            print(f"{impl:8} n/a  {dead.get(impl, '')}")
            continue
        mib = {k: r[k] / 2**20 for k in ("rss_settled_start", "rss_end", "rss_before_sequential",
                                        "rss_after_sequential")}
        print(f"{impl:8} {mib['rss_settled_start']:9.1f}Mi {mib['rss_end']:7.1f}Mi "
              f"{r['rss_drift_pct']:6.1f}%  {r['socket_fds_before']:>10}/"
              f"{r['socket_fds_after']:<10} {mib['rss_before_sequential']:9.1f}Mi/"
              f"{mib['rss_after_sequential']:.1f}Mi")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
