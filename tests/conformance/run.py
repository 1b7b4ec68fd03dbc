#!/usr/bin/env python3
"""Run CPython's own test_asyncio with tideloop substituted for the event loop.

    python tests/conformance/run.py                    # tideloop, all in-scope modules
    python tests/conformance/run.py --loop asyncio     # control run on the stock loop
    python tests/conformance/run.py --module test_tasks -k gather -v
    PYTHONPATH=src python tests/conformance/run.py     # or --src: the checkout, not the install
    python tests/conformance/run.py --selftest         # the harness's own timeout/crash checks

It tests whatever ``import tideloop`` finds in the interpreter that runs it (a venv with a
compiled or a pure install); ``--src`` puts this checkout's ``src/`` first instead.

How the loop is substituted: ``_substitute.py``.  Which modules and classes run, and the
adapters that point their loop hooks at the loop under test: ``_scope.py``.  The accepted
failures, each with its reason: ``expected_failures.txt`` (grammar in ``_expected.py``).

Each module runs in its own worker process (``_worker.py``), two at a time.  Every test has a
time limit (``--timeout``): a test that hangs, or crashes the interpreter, is killed with a
traceback of every thread, reported as an error, and the module carries on from the next
test in a new worker.  The first module is ``_sanity.py``, which proves that the tests really
run on the loop under test; the loops each module creates are counted and shown in the
table, and a module that ran tests without creating one is an error.

Exit status: 0 if every test passed or failed as expected; 1 if a test failed or errored
unexpectedly, a module crashed or created no loop under test, a module is unclassified, the
sanity check failed, or (with --strict-stale) an expected failure passed; 2 for bad usage
or a bad expected-failures file.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import _expected  # noqa: E402
import _scope  # noqa: E402

VERSION = sys.version_info[:2]
# The interpreter's key in control_counts.json: "3.14", "pypy3.11".
PYKEY = ("pypy" if sys.implementation.name == "pypy" else "") + "{}.{}".format(*VERSION)
CONTROL_COUNTS = HERE / "control_counts.json"
# A full run on the loop under test must run (pass, fail or xfail: not skip) at least this
# share of the tests that asyncio's own loop passes on the same interpreter.
MIN_RUN_SHARE = 0.98
SANITY = "_sanity"
MAX_RESTARTS = 40
# Rough relative cost, to start the longest modules first.
WEIGHT = {
    "test_tasks": 30,
    "test_events": 20,
    "test_taskgroups": 12,
    "test_sock_lowlevel": 6,
    "test_eager_task_factory": 4,
    "test_waitfor": 3,
    "test_locks": 3,
}


# ----------------------------------------------------------------------------- model


class ModuleRun:
    def __init__(self, name):
        self.name = name
        self.results = {}  # test id -> result event
        self.excluded = {}  # test id -> reason
        self.hello = None
        self.fatal = None  # (phase, detail) if the module could not run
        self.crashes = []  # test ids that timed out or crashed the worker
        self.impl_loops = 0
        self.stock_loops = 0
        self.attempts = 0
        self.seconds = 0.0


def _read_new_events(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return events, offset + end


def run_module(name, args, workdir, exclude, on_event):
    """Run one module to completion, restarting its worker after a hang or crash."""
    mr = ModuleRun(name)
    t0 = time.monotonic()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO / "src"), env.get("PYTHONPATH")])
        )
    env.setdefault("PYTHONFAULTHANDLER", "1")
    done_ids: list[str] = []
    while True:
        mr.attempts += 1
        tag = f"{name}.{mr.attempts}"
        paths = {k: workdir / f"{tag}.{k}" for k in ("spec", "events", "watchdog", "out")}
        spec = {
            "module": name,
            "loop": args.loop,
            "timeout": args.timeout,
            "events": str(paths["events"]),
            "watchdog": str(paths["watchdog"]),
            "skip_ids": done_ids,
            "select": args.k or [],
            "exclude": exclude,
        }
        paths["spec"].write_text(json.dumps(spec))
        with open(paths["out"], "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(HERE / "_worker.py"), str(paths["spec"])],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=str(workdir),
            )
            offset, current, finished, last_progress = 0, None, False, time.monotonic()
            while True:
                rc = proc.poll()
                events, offset = _read_new_events(paths["events"], offset)
                for ev in events:
                    last_progress = time.monotonic()
                    kind = ev["ev"]
                    if kind == "start":
                        current = ev["id"]
                    elif kind == "result":
                        current = None if current == ev["id"] else current
                        mr.results[ev["id"]] = ev
                        done_ids.append(ev["id"])
                        on_event(mr, ev)
                    elif kind == "collected":
                        for tid, reason in ev["excluded"]:
                            mr.excluded[tid] = reason
                    elif kind == "hello":
                        mr.hello = ev
                    elif kind == "fatal":
                        mr.fatal = (ev["phase"], ev["detail"])
                    elif kind == "done":
                        finished = True
                        mr.impl_loops += ev["impl_loops"]
                        mr.stock_loops += ev["stock_loops"]
                if rc is not None:
                    break
                if time.monotonic() - last_progress > args.timeout * 2 + 60:
                    proc.kill()  # faulthandler's watchdog did not fire: last resort
                time.sleep(0.05)
        if finished or mr.fatal:
            break
        # The worker died without finishing: a timeout or a crash inside a test.
        out_tail = _tail(paths["out"], 3000)
        dump = paths["watchdog"].read_text(errors="replace") if paths["watchdog"].exists() else ""
        if current is None:
            mr.fatal = (
                "worker",
                f"worker exited with status {rc} outside any test\n"
                f"{dump}\n--- output tail ---\n{out_tail}",
            )
            break
        timed_out = "Timeout (" in dump
        what = (
            f"TIMEOUT: killed after {args.timeout:g}s"
            if timed_out
            else f"CRASH: worker died with status {rc}"
        )
        ev = {
            "ev": "result",
            "id": current,
            "outcome": "error",
            "duration": None,
            "detail": f"{what}\n{dump.strip()}\n--- worker output tail ---\n{out_tail}",
            "skip_reason": None,
            "impl_loops": 0,
            "stock_loops": 0,
            "crash": "timeout" if timed_out else "crash",
        }
        mr.results[current] = ev
        mr.crashes.append(current)
        done_ids.append(current)
        on_event(mr, ev)
        if mr.attempts > MAX_RESTARTS:
            mr.fatal = ("worker", f"gave up after {MAX_RESTARTS} restarts")
            break
    # loop counts of the attempts that died are in the per-test results
    mr.impl_loops = max(mr.impl_loops, sum(r.get("impl_loops", 0) for r in mr.results.values()))
    mr.stock_loops = max(mr.stock_loops, sum(r.get("stock_loops", 0) for r in mr.results.values()))
    mr.seconds = time.monotonic() - t0
    return mr


def _tail(path, n):
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return ""
    return data[-n:].decode(errors="replace")


# ------------------------------------------------------------------------ classification


class Report:
    COLS = ("pass", "fail", "error", "skip", "wb", "xfail", "stale", "excl")

    def __init__(self, entries, loop, compiled):
        self.entries = _expected.applicable(entries, VERSION, loop, compiled)
        self.rows = {}
        self.unexpected = []  # (module, test id, outcome, detail)
        self.stale = []  # (test id, entry)
        self.xfails = []  # (test id, entry)

    def add(self, mr: ModuleRun):
        row = dict.fromkeys(self.COLS, 0)
        row["excl"] = len(mr.excluded)
        for tid, ev in sorted(mr.results.items()):
            entry = _expected.find(self.entries, tid)
            if entry is not None:
                entry.used += 1
            outcome = ev["outcome"]
            if outcome == "skip":
                reason = ev.get("skip_reason") or ""
                row["wb" if reason.startswith("white-box (harness):") else "skip"] += 1
            elif outcome in ("pass", "xfail_t"):
                if entry is not None and "flaky" not in entry.flags:
                    row["stale"] += 1
                    self.stale.append((tid, entry))
                else:
                    row["pass"] += 1
            else:
                if entry is not None:
                    row["xfail"] += 1
                    self.xfails.append((tid, entry))
                else:
                    row[outcome] += 1
                    self.unexpected.append((mr.name, tid, outcome, ev.get("detail") or ""))
        self.rows[mr.name] = row
        return row


def first_lines(detail, n):
    """The exception line(s) of a traceback, plus its innermost frame."""
    lines = [ln for ln in detail.strip().splitlines() if ln.strip()]
    if lines and lines[0].startswith(("TIMEOUT", "CRASH")):
        # faulthandler lists the innermost frame first; show where the test was stuck
        frames = [ln.strip() for ln in lines if ln.lstrip().startswith("File ")]
        return lines[:1] + frames[:n]
    # last "Traceback" block: its last frame and the exception message
    try:
        start = max(i for i, ln in enumerate(lines) if ln.startswith("Traceback"))
    except ValueError:
        return lines[:n]
    block = lines[start:]
    for i, ln in enumerate(block):
        if i > 0 and not ln.startswith(" "):
            frame = [x for x in block[:i] if x.lstrip().startswith("File ")][-1:]
            return (frame + block[i : i + n])[: n + 1]
    return block[-n:]


def _todo_hint(detail):
    """'ExcType: message (in function)' for a TODO reason."""
    lines = first_lines(detail, 1)
    if not lines:
        return ""
    where = ""
    if len(lines) > 1 and ", in " in lines[0]:
        where = f" (in {lines[0].rsplit(', in ', 1)[1].strip()})"
    return lines[-1].strip() + where


# ---------------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--loop",
        choices=("tideloop", "asyncio"),
        default="tideloop",
        help="loop under test (asyncio: control run on the stock loop)",
    )
    p.add_argument(
        "--module",
        "-m",
        action="append",
        default=[],
        help="run only this module (repeatable, comma separated ok)",
    )
    p.add_argument(
        "-k",
        action="append",
        help="run only tests whose id contains this substring or matches this "
        "fnmatch pattern (repeatable)",
    )
    p.add_argument("-j", "--jobs", type=int, default=2, help="parallel workers (default 2)")
    p.add_argument(
        "--timeout", type=float, default=60.0, help="per-test time limit in seconds (default 60)"
    )
    p.add_argument(
        "--expected",
        type=Path,
        default=HERE / "expected_failures.txt",
        help="expected-failures file",
    )
    p.add_argument(
        "--include-later",
        action="store_true",
        help="also run the LATER modules (waiting for a tideloop issue)",
    )
    p.add_argument(
        "--list-expected",
        action="store_true",
        help="print the entries that apply to this Python and loop, and exit",
    )
    p.add_argument(
        "--write-expected",
        action="store_true",
        help="add the unexpected failures to the expected file with reason TODO "
        "(for a human to edit; never in CI)",
    )
    p.add_argument(
        "--strict-stale", action="store_true", help="an expected failure that passes fails the run"
    )
    p.add_argument(
        "--src",
        action="store_true",
        help="test this checkout's src/ instead of the installed tideloop",
    )
    p.add_argument("--json", type=Path, help="also write all results to this JSON file")
    p.add_argument(
        "--record-control",
        action="store_true",
        help="with --loop asyncio and a full run: store the number of tests asyncio passed "
        f"in {CONTROL_COUNTS.name}, the yardstick of later tideloop runs",
    )
    p.add_argument("--keep", type=Path, help="keep worker logs in this directory")
    p.add_argument(
        "--selftest",
        action="store_true",
        help="check the harness itself (timeouts, crashes, subtests) and exit",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: print failures as they happen and full tracebacks at the end; "
        "-vv: print every test",
    )
    return p.parse_args(argv)


def select_modules(args):
    """-> (modules to run, {module: why not run}, [unclassified])"""
    _scope.prepare_interpreter()
    import test.test_asyncio as pkg

    present = sorted(
        p.stem for p in Path(pkg.__path__[0]).glob("*.py") if p.stem not in _scope.NON_TEST
    )
    present += sorted(d for d, (base, _) in _scope.DERIVED.items() if base in present)
    wanted = {m for arg in args.module for m in arg.split(",") if m}
    unknown = wanted - set(present) - {SANITY}
    if unknown:
        sys.exit(f"no such module in this Python's test_asyncio: {sorted(unknown)}")
    run, skipped, unclassified = [], {}, []
    for name in present:
        if name not in _scope.MODULES:
            unclassified.append(name)
            continue
        status, versions, reason = _scope.MODULES[name]
        if not _expected.version_matches(versions, VERSION):
            continue
        if wanted and name not in wanted:
            continue
        if status == _scope.RUN or (
            status == _scope.LATER and (args.include_later or name in wanted)
        ):
            run.append(name)
        else:
            skipped[name] = f"{status}: {reason}"
    run.sort(key=lambda n: -WEIGHT.get(n, 1))
    return run, skipped, unclassified


def exclusions_for(name, entries):
    out = []
    for pattern, versions, reason in _scope.CLASS_EXCLUSIONS:
        if pattern.split(".")[0] == name and _expected.version_matches(versions, VERSION):
            out.append([pattern + ".*", "class excluded: " + reason, None])
    for e in entries:
        if "skip" in e.flags and e.pattern.split(".")[0] in (name, "*"):
            builds = sorted(e.builds) or [None]
            for b in builds:
                out.append([e.pattern, "skip-listed: " + e.reason, b])
    return out


def selftest(args):
    """Run _selftest.py with a 3 s limit and check what the harness reports."""
    import _selftest

    args.timeout, args.k = 3.0, None
    with tempfile.TemporaryDirectory(prefix="tideloop-conformance-selftest-") as tmp:
        mr = run_module("_selftest", args, Path(tmp), [], lambda mr, ev: None)
    problems = []
    for tid, want in _selftest.EXPECTED.items():
        got = mr.results.get(tid, {}).get("outcome")
        if got != want:
            problems.append(f"{tid}: expected {want}, got {got}")
    for tid in ("_selftest.Harness.test_2_hang", "_selftest.Harness.test_8_loop_hang"):
        detail = mr.results.get(tid, {}).get("detail", "")
        if not detail.startswith("TIMEOUT") or "test_" not in detail:
            problems.append(f"{tid}: no TIMEOUT traceback in {detail[:200]!r}")
    if "CRASH" not in mr.results.get("_selftest.Harness.test_4_crash", {}).get("detail", ""):
        problems.append("test_4_crash: not reported as CRASH")
    if mr.impl_loops < 1:
        problems.append(f"no {args.loop} loop counted")
    if mr.fatal:
        problems.append(f"module fatal: {mr.fatal}")
    for p in problems:
        print("SELFTEST:", p)
    print(
        f"selftest ({args.loop}): {len(mr.results)} results, {mr.attempts} worker starts, "
        f"{mr.seconds:.1f}s: " + ("FAIL" if problems else "OK")
    )
    return 1 if problems else 0


def main(argv=None):
    args = parse_args(argv)
    try:
        entries = _expected.parse(args.expected)
    except (OSError, _expected.ExpectedFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.list_expected:
        loop_entries = [e for e in entries if e.applies(VERSION, args.loop, None)]
        print(
            f"# {len(loop_entries)} entries apply to Python {VERSION[0]}.{VERSION[1]}, "
            f"--loop {args.loop} ({args.expected})"
        )
        for e in loop_entries:
            print(_expected._format(e.pattern, e.tags_text(), e.reason))
        return 0

    if args.selftest:
        return selftest(args)

    modules, not_run, unclassified = select_modules(args)
    # -k applies to the sanity module too, so keep it unfiltered: it is the proof.
    lock = threading.Lock()
    status = {"done": 0}

    def on_event(mr, ev):
        if args.verbose >= 2 or (args.verbose and ev["outcome"] in ("fail", "error")):
            with lock:
                print(f"    {ev['outcome'].upper():5} {ev['id']}", flush=True)

    with tempfile.TemporaryDirectory(prefix="tideloop-conformance-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        saved_k, args.k = args.k, None
        sanity = run_module(SANITY, args, workdir, [], lambda mr, ev: None)
        args.k = saved_k
        hello = sanity.hello or {}
        print(f"python {sys.version.split()[0]} ({sys.executable})")
        print(
            f"loop under test: {args.loop} {hello.get('impl_version', '?')}"
            + (f" compiled={hello.get('compiled')}" if args.loop == "tideloop" else "")
            + f"  class {hello.get('loop_class', '?')}  from {hello.get('origin', '?')}"
        )
        bad = [(t, r) for t, r in sanity.results.items() if r["outcome"] not in ("pass", "skip")]
        if sanity.fatal or bad or not sanity.results:
            print("\nSANITY CHECK FAILED: the tests would not run on the loop under test.")
            if sanity.fatal:
                print(f"[{sanity.fatal[0]}]\n{sanity.fatal[1]}")
            if sanity.fatal and "No module named 'tideloop'" in sanity.fatal[1]:
                print(
                    "tideloop is not importable by this interpreter: install it, or pass "
                    "--src (or PYTHONPATH=src) to test the checkout"
                )
            for tid, r in bad:
                print(f"{r['outcome'].upper()} {tid}\n{r.get('detail') or r.get('skip_reason')}")
            return 1
        expect = os.environ.get("TIDELOOP_EXPECT_COMPILED")
        if (
            args.loop == "tideloop"
            and expect in ("0", "1")
            and hello.get("compiled") is not (expect == "1")
        ):
            print(
                f"\nBUILD MODE MISMATCH: TIDELOOP_EXPECT_COMPILED={expect} but "
                f"tideloop.COMPILED is {hello.get('compiled')}"
            )
            return 1
        print(
            f"sanity: {len(sanity.results)} checks passed; tests run on "
            f"{hello.get('loop_class')} ({sanity.impl_loops} loops created)\n"
        )

        results = {}
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            futs = {
                pool.submit(
                    run_module,
                    name,
                    args,
                    workdir,
                    exclusions_for(name, _expected.applicable(entries, VERSION, args.loop, None)),
                    on_event,
                ): name
                for name in modules
            }
            for fut in concurrent.futures.as_completed(futs):
                mr = fut.result()
                results[mr.name] = mr
                status["done"] += 1
                with lock:
                    n = len(mr.results)
                    bad_n = sum(r["outcome"] in ("fail", "error") for r in mr.results.values())
                    print(
                        f"[{status['done']:2}/{len(modules)}] {mr.name:24} {n:5} tests "
                        f"{bad_n:4} failing  {mr.seconds:6.1f}s"
                        + (f"  ({len(mr.crashes)} timeouts/crashes)" if mr.crashes else "")
                        + ("  MODULE CRASHED" if mr.fatal else ""),
                        flush=True,
                    )
        wall = time.monotonic() - t0

    compiled = hello.get("compiled")
    report = Report(entries, args.loop, compiled)
    for name in sorted(results):
        report.add(results[name])
    failed = print_report(args, report, results, not_run, unclassified, wall)

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "python": sys.version.split()[0],
                    "loop": args.loop,
                    "hello": hello,
                    "modules": {
                        n: {
                            "row": report.rows[n],
                            "impl_loops": mr.impl_loops,
                            "stock_loops": mr.stock_loops,
                            "fatal": mr.fatal,
                            "results": mr.results,
                            "excluded": mr.excluded,
                        }
                        for n, mr in results.items()
                    },
                    "unexpected": [[m, t, o] for m, t, o, _ in report.unexpected],
                    "stale": [t for t, _ in report.stale],
                },
                indent=1,
            )
        )

    if args.write_expected and report.unexpected:
        added = _expected.write_failures(
            args.expected,
            [(t, _todo_hint(d)) for _, t, _, d in report.unexpected],
            VERSION,
            args.loop,
        )
        print(f"\n--write-expected: {added} new entries with reason TODO in {args.expected}")
    return 1 if failed else 0


def check_run_count(args, total) -> bool:
    """Compare the tests run on the loop under test with asyncio's passes on this Python.

    The sanity module proves that the substitution works for every way tests get a loop;
    this proves it at scale: if a new Python adds a way that the harness misses, those tests
    run on asyncio's loop (or are skipped) and the count drops below asyncio's.  Returns
    True if the run fails the check.
    """
    if args.k or args.module:
        return False
    ran = total["pass"] + total["fail"] + total["error"] + total["xfail"] + total["stale"]
    counts = json.loads(CONTROL_COUNTS.read_text()) if CONTROL_COUNTS.exists() else {}
    if args.loop == "asyncio":
        if args.record_control:
            counts[PYKEY] = {"passed": total["pass"], "python": sys.version.split()[0]}
            CONTROL_COUNTS.write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
            print(f"\nrecorded in {CONTROL_COUNTS.name}: asyncio passes {total['pass']} here")
        return False
    control = counts.get(PYKEY)
    if control is None:
        print(
            f"\nNO CONTROL COUNT for {PYKEY} in {CONTROL_COUNTS.name}: run "
            "`run.py --loop asyncio --record-control` on this interpreter"
        )
        return True
    share = ran / control["passed"] if control["passed"] else 0.0
    short = share < MIN_RUN_SHARE
    print(
        f"\ntests run on {args.loop}: {ran}; asyncio passes {control['passed']} on Python "
        f"{control['python']} ({share:.1%}; at least {MIN_RUN_SHARE:.0%} needed)"
        + ("  TOO FEW: tests escaped the loop under test" if short else "")
    )
    return short


def print_report(args, report, results, not_run, unclassified, wall):
    failed = False
    loopcol = "tide" if args.loop == "tideloop" else "aio"
    head = (
        f"{'module':24} {'pass':>6} {'fail':>5} {'error':>5} {'skip':>5} {'wb':>4} "
        f"{'xfail':>5} {'stale':>5} {'excl':>5} {loopcol + '-loops':>10} "
        f"{'stock':>6} {'secs':>6}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    total = dict.fromkeys(Report.COLS, 0)
    total_loops = total_stock = 0
    zero_loop = []
    for name in sorted(results):
        mr, row = results[name], report.rows[name]
        for c in Report.COLS:
            total[c] += row[c]
        total_loops += mr.impl_loops
        total_stock += mr.stock_loops
        ran = row["pass"] + row["fail"] + row["error"] + row["xfail"] + row["stale"]
        flag = ""
        if mr.fatal:
            flag = "  CRASHED"
        elif ran and mr.impl_loops == 0 and name not in _scope.LOOP_FREE:
            zero_loop.append(name)
            flag = "  NO LOOP UNDER TEST"
        print(
            f"{name:24} {row['pass']:6} {row['fail']:5} {row['error']:5} {row['skip']:5} "
            f"{row['wb']:4} {row['xfail']:5} {row['stale']:5} {row['excl']:5} "
            f"{mr.impl_loops:10} {mr.stock_loops:6} {mr.seconds:6.1f}{flag}"
        )
    print("-" * len(head))
    print(
        f"{'TOTAL':24} {total['pass']:6} {total['fail']:5} {total['error']:5} "
        f"{total['skip']:5} {total['wb']:4} {total['xfail']:5} {total['stale']:5} "
        f"{total['excl']:5} {total_loops:10} {total_stock:6} {wall:6.1f}"
    )
    failed |= check_run_count(args, total)
    print(
        "columns: fail/error = unexpected; wb = skipped at run time as white-box (TestLoop "
        "fake clock); xfail = failed as listed; stale = listed but passed; excl = not run "
        f"(class exclusions, [skip] entries); {loopcol}-loops = loops of the loop under "
        "test created; stock = other asyncio loops created"
    )

    if not_run:
        print("\nmodules not run:")
        for name, why in sorted(not_run.items()):
            print(f"  {name:24} {why}")
    if unclassified:
        failed = True
        print("\nUNCLASSIFIED MODULES (add them to _scope.MODULES): " + ", ".join(unclassified))
    crashed = [mr for mr in results.values() if mr.fatal]
    for mr in crashed:
        failed = True
        print(f"\nMODULE CRASHED: {mr.name} [{mr.fatal[0]}]\n{mr.fatal[1].rstrip()}")
    if zero_loop:
        failed = True
        print(
            "\nNO LOOP UNDER TEST CREATED (the substitution missed these modules): "
            + ", ".join(zero_loop)
        )

    if report.unexpected:
        failed = True
        print(f"\nUNEXPECTED FAILURES ({len(report.unexpected)}):")
        for _, tid, outcome, detail in report.unexpected:
            print(f"  {outcome.upper():5} {tid}")
            body = detail.rstrip() if args.verbose else "\n".join(first_lines(detail, 2))
            for ln in body.splitlines():
                print(f"        {ln}")
    if report.stale:
        if args.strict_stale:
            failed = True
        fatal = " [fatal: --strict-stale]" if args.strict_stale else ""
        print(f"\nSTALE EXPECTED FAILURES (listed, but passed){fatal} ({len(report.stale)}):")
        for tid, e in report.stale:
            print(f"  {tid}  <- line {e.lineno}: {e.pattern}  # {e.reason}")
    if args.verbose and report.xfails:
        print(f"\nexpected failures ({len(report.xfails)}):")
        for tid, e in report.xfails:
            print(f"  {tid}  # {e.reason}")
    todo = [e for e in report.entries if e.reason.startswith("TODO")]
    if todo:
        print(f"\n{len(todo)} applicable entries still have a TODO reason: give each a real one")
    if not args.k and not args.module:
        unused = [e for e in report.entries if not e.used and "skip" not in e.flags]
        if unused:
            print(f"\nentries that matched no test ({len(unused)}):")
            for e in unused:
                print(f"  line {e.lineno}: {e.pattern} {e.tags_text()}  # {e.reason}")
    print("\nRESULT: " + ("FAIL" if failed else "OK"))
    return failed


if __name__ == "__main__":
    sys.exit(main())
