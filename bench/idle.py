#!/usr/bin/env python3
"""Memory per idle TCP connection: the server's RSS growth per open, silent connection.

    python bench/idle.py                      # 10,000 connections, 3 rounds, every row
    python bench/idle.py --conns 2000 --rounds 1 --impls tide-c,uvloop

Each row's Protocol echo server (bench/_echo_server.py, the same program echo.py measures)
starts in its own process; its RSS is read from /proc/PID/status once it is ready (and has
served one echo on one connection, so lazily built state exists), then this process opens
``--conns`` connections to it, says nothing on them, waits until the server holds them all
(its count of socket fds), lets it settle, and reads the RSS again.
Reported per row: (RSS after - RSS before) / conns, in bytes, median over rounds, and the
ratio to uvloop's. Rows are interleaved within a round, as in echo.py. The C epoll server
(c-epoll) is the floor: what the kernel-facing part of a connection costs in user space.

What it counts: everything the server allocates per connection in user space: the socket
object, the transport, the protocol, the loop's registration, buffers kept while idle.
The kernel's socket memory is not in RSS and not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

import _envs
import echo
import micro


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def socket_fds(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise echo.RunFailed(f"timed out waiting for {what}")
        time.sleep(0.05)


def measure(cmd: list[str], conns: int, pin: list[str]) -> dict:
    """One server, one measurement: RSS before and after `conns` idle connections."""
    p, pid, port, _info = echo.start_server(cmd, pin)
    socks: list[socket.socket] = []
    try:
        # One echo first: whatever the server builds lazily on its first connection is
        # not per-connection cost.
        base_fds = socket_fds(pid)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"x" * 64)
            got = b""
            while len(got) < 64:
                got += s.recv(64)
        # The server closes its end of that connection when it sees EOF, which a slow server
        # (PyPy's, still warming up) may not have done yet: counting now would expect one
        # socket too many below and wait for it in vain.
        wait_for(lambda: socket_fds(pid) <= base_fds, 10, "the first connection to close")
        time.sleep(0.2)
        before = rss_bytes(pid)
        for _ in range(conns):
            s = socket.socket()
            s.connect(("127.0.0.1", port))
            socks.append(s)
        wait_for(lambda: socket_fds(pid) >= base_fds + conns, 60, f"{conns} accepted sockets")
        time.sleep(0.5)  # let the accept loop and any deferred work finish
        after = rss_bytes(pid)
    finally:
        for s in socks:
            s.close()
        echo.stop_server(p)
    return {"before": before, "after": after, "per_conn": (after - before) / conns}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--impls", help="comma-separated subset of " + ",".join(echo.IMPLS))
    ap.add_argument("--server-cpu", default="1", help="CPU for the server, or 'none'")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)
    impls = echo.IMPLS if not args.impls else [
        echo.IMPL_ALIASES.get(i, i) for i in args.impls.split(",")]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.conns + 100
    if hard < need:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} < {need}: lower --conns")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # inherited by servers

    # echo.setup_rows wants echo's argument names.
    setup = argparse.Namespace(impl_list=impls, python=args.python, rebuild=args.rebuild,
                               workloads=[])
    python_of, dead, extra, _meta = echo.setup_rows(setup)
    w = echo.Workload("protocol", 1024, 1)
    cmds = {i: echo.server_cmd(w, i, python_of, extra["binaries"], False)
            for i in impls if i not in dead}
    pin = micro.pin_prefix(args.server_cpu)
    samples: dict[str, list[dict]] = {i: [] for i in cmds}
    for r in range(args.rounds):
        for impl, cmd in cmds.items():
            try:
                samples[impl].append(measure(cmd, args.conns, pin))
            except (echo.RunFailed, echo.NotApplicable) as exc:
                dead[impl] = str(exc)
            echo.log(f"round {r + 1}/{args.rounds} {impl}: "
                     f"{samples[impl][-1]['per_conn'] if samples[impl] else 'n/a'}")
    med = {i: statistics.median(s["per_conn"] for s in v) for i, v in samples.items() if v}
    print(f"\nRSS per idle TCP connection, {args.conns} connections, median of {args.rounds} "
          f"rounds  (git {micro._git('rev-parse', '--short', 'HEAD')}, "
          f"{_envs.interpreter(args.python)['label']})\n")
    print(f"{'impl':8} {'bytes/conn':>10} {'min..max':>15}  {'x uvloop':>8}")
    for impl in impls:
        if impl not in med:
            print(f"{impl:8} {'n/a':>10}  {dead.get(impl, '')}")
            continue
        vals = [s["per_conn"] for s in samples[impl]]
        ratio = f"{med[impl] / med['uvloop']:.2f}x" if med.get("uvloop") else "-"
        print(f"{impl:8} {med[impl]:10.0f} {min(vals):7.0f}..{max(vals):<7.0f}  {ratio:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"conns": args.conns, "samples": samples, "median": med}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
