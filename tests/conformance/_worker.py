"""Run one test module in this process, with the loop substituted; report as JSON lines.

Started by run.py as ``python _worker.py SPEC.json`` (one process per module, restarted
after a hang or crash).  SPEC holds:

    module    "test_tasks" (from test.test_asyncio) or "_sanity" (from this folder)
    loop      "tideloop" | "asyncio"
    timeout   seconds per test; a test that takes longer is killed by faulthandler
              (which dumps every thread's traceback into the watchdog file and exits),
              and run.py restarts the worker after that test
    events    file to append the JSON events to
    watchdog  file faulthandler writes into (truncated at every test start)
    skip_ids  test ids already done by an earlier attempt
    select    -k patterns (any must match), empty for all
    exclude   [pattern, reason, build-or-null]: tests not to run, reported as excluded

Events: hello, collected, start, result, fatal, done (see run.py).
"""

from __future__ import annotations

import faulthandler
import fnmatch
import importlib
import json
import os
import re
import signal
import sys
import time
import traceback
import unittest

PID = os.getpid()
PREFIX = "test.test_asyncio."
_events = None


def emit(**event) -> None:
    if os.getpid() != PID:  # a forked child that fell back into the test runner
        return
    _events.write(json.dumps(event) + "\n")
    _events.flush()


def short_id(test) -> str:
    tid = test.id()
    if tid.startswith(PREFIX):
        tid = tid[len(PREFIX) :]
    # unittest's _ErrorHolder: "setUpClass (test.test_asyncio.test_x.Class)"
    m = re.match(r"^(\w+) \((?:test\.test_asyncio\.)?([\w.]+)\)$", tid)
    if m:
        tid = f"{m[2]}.{m[1]}"
    return tid


def selected(tid: str, patterns) -> bool:
    if not patterns:
        return True
    for p in patterns:
        if any(c in p for c in "*?["):
            if fnmatch.fnmatchcase(tid, p if p.startswith("*") else f"*{p}*"):
                return True
        elif p in tid:
            return True
    return False


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


class Result(unittest.TestResult):
    """Aggregates the parts of each test (subtests included) into one event."""

    def __init__(self, timeout, watchdog, stats):
        super().__init__()
        self.buffer = True
        self.timeout = timeout
        self.watchdog = watchdog
        self.stats = stats
        self.cur = None

    def _arm(self):
        self.watchdog.seek(0)
        self.watchdog.truncate()
        faulthandler.dump_traceback_later(self.timeout, exit=True, file=self.watchdog)

    def startTest(self, test):
        tid = short_id(test)
        self.cur = {
            "id": tid,
            "parts": [],
            "t0": time.monotonic(),
            "impl0": self.stats.impl,
            "stock0": self.stats.stock,
        }
        emit(ev="start", id=tid)
        self._arm()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        cur, self.cur = self.cur, None
        self._arm()  # the next class's setUpClass, module teardown...
        if cur is None:
            return
        kinds = [k for k, _ in cur["parts"]]
        for outcome in ("error", "fail", "skip", "xfail_t", "pass"):
            if outcome in kinds:
                break
        else:
            outcome = "pass"
        emit(
            ev="result",
            id=cur["id"],
            outcome=outcome,
            detail="\n".join(d for k, d in cur["parts"] if k in ("error", "fail"))[:20000],
            skip_reason=next((d for k, d in cur["parts"] if k == "skip"), None),
            impl_loops=self.stats.impl - cur["impl0"],
            stock_loops=self.stats.stock - cur["stock0"],
            duration=round(time.monotonic() - cur["t0"], 3),
        )

    def _part(self, test, kind, detail):
        if self.cur is None or self.cur["id"] != short_id(test):
            # class/module fixture errors arrive without startTest
            emit(
                ev="result",
                id=short_id(test),
                outcome=kind,
                detail=detail[:20000],
                skip_reason=detail if kind == "skip" else None,
                impl_loops=0,
                stock_loops=0,
                duration=0,
            )
            return
        self.cur["parts"].append((kind, detail))

    def addSuccess(self, test):
        super().addSuccess(test)
        self._part(test, "pass", "")

    def addError(self, test, err):
        super().addError(test, err)
        self._part(test, "error", self.errors[-1][1])

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._part(test, "fail", self.failures[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._part(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._part(test, "xfail_t", "")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._part(test, "fail", "unexpected success of a test marked @expectedFailure")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            return
        if issubclass(err[0], test.failureException):
            kind, text = "fail", self.failures[-1][1]
        else:
            kind, text = "error", self.errors[-1][1]
        self._part(test, kind, f"[subtest {subtest._subDescription()}]\n{text}")


def main(spec_path: str) -> int:
    global _events
    with open(spec_path) as f:
        spec = json.load(f)
    # Both stay open for the life of the process (faulthandler writes into the watchdog
    # file from C when a test hangs or crashes), so no context manager.
    _events = open(spec["events"], "a", encoding="utf-8")  # noqa: SIM115
    watchdog = open(spec["watchdog"], "w+", encoding="utf-8")  # noqa: SIM115
    faulthandler.enable(file=watchdog, all_threads=True)
    # A run started in the background by a non-interactive shell inherits SIGINT ignored,
    # and Python keeps it so; asyncio.Runner then installs no SIGINT handler and
    # test_runners' interrupt tests hang.  Tests expect an interpreter's usual SIGINT.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    timeout = float(spec["timeout"])
    faulthandler.dump_traceback_later(timeout, exit=True, file=watchdog)

    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import _scope

    _scope.prepare_interpreter()
    import _substitute

    try:
        impl = _substitute.install(spec["loop"])
        _substitute.cap_support_timeouts(timeout)
    except BaseException:
        emit(ev="fatal", phase="install", detail=traceback.format_exc())
        return 3
    emit(
        ev="hello",
        python=sys.version.split()[0],
        impl=impl.name,
        impl_version=impl.version,
        compiled=impl.compiled,
        origin=impl.origin,
        loop_class=f"{impl.loop_class.__module__}.{impl.loop_class.__qualname__}",
    )

    name = spec["module"]
    try:
        base, derived_adapter = _scope.DERIVED.get(name, (name, None))
        mod = importlib.import_module(base if base.startswith("_") else PREFIX + base)
        adapter = _scope.ADAPTERS.get(base)
        if adapter is not None:
            adapter(mod, _substitute)
        if derived_adapter is not None:
            derived_adapter(mod, _substitute)
        tests = list(flatten(unittest.defaultTestLoader.loadTestsFromModule(mod)))
    except BaseException:
        emit(ev="fatal", phase="import", detail=traceback.format_exc())
        return 3

    skip_ids = set(spec["skip_ids"])
    build = None if impl.compiled is None else ("compiled" if impl.compiled else "pure")
    run, excluded = [], []
    for test in tests:
        tid = short_id(test)
        if tid in skip_ids or not selected(tid, spec["select"]):
            continue
        for pattern, reason, only_build in spec["exclude"]:
            if fnmatch.fnmatchcase(tid, pattern) and only_build in (None, build):
                excluded.append([tid, reason])
                break
        else:
            run.append(test)
    emit(ev="collected", n=len(run), excluded=excluded)

    result = Result(timeout, watchdog, _substitute.STATS)
    try:
        unittest.TestSuite(run).run(result)
    except BaseException:
        emit(ev="fatal", phase="run", detail=traceback.format_exc())
        return 3
    faulthandler.cancel_dump_traceback_later()
    emit(ev="done", impl_loops=_substitute.STATS.impl, stock_loops=_substitute.STATS.stock)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for non-daemon threads a broken test may have left
