"""Black-box: timers at NaN, infinite and out-of-range times, on tideloop and on asyncio.

asyncio is the reference on the running Python; what it does (3.11.7, 3.12.1, 3.13.0):

- a NaN deadline compares false with everything, so it stays where heapq's sifts leave it
  (pushed first it tops the heap, pushed later it sinks) and it is due as soon as it tops the
  heap (``when >= end_time`` is false). 3.11/3.12 then poll with timeout 0
  (``min(max(0, nan), MAX)`` is 0) and run it at once. 3.13 rewrote that line as two ``if``
  tests that NaN fails, so the selector gets ``select(nan)`` and every pass raises
  ``ValueError: cannot convert float NaN to integer`` while the NaN timer tops an idle heap.
  tideloop runs it at once on every version (3.13's ValueError wedges the loop, and nothing
  can rely on it), so on 3.13+ ``tide`` and ``aio`` differ there, and only there.
- ``asyncio.sleep(nan)`` is asyncio's own code: 3.13 raises ValueError, 3.11/3.12 sleep 0.
- ``call_later(inf)`` never fires (the poll is capped at a day); ``call_at(-inf)`` fires at once.
- ``call_later(2**1100)``: ``time() + 2**1100`` raises OverflowError in the call.
  ``call_at(2**1100)``: asyncio stores the int and raises OverflowError from the pass that
  finds it at the heap's top; tideloop stores floats (C doubles when compiled) and raises the
  same OverflowError in ``call_at``, in both build modes.

Every run here is bounded by a watchdog thread that stops the loop (a timer would change the
heap under test), so a loop that blocks fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

NAN = float("nan")
INF = float("inf")
HUGE = 2**1100  # no float can hold it: float(HUGE) raises OverflowError
PY313 = sys.version_info >= (3, 13)
WATCHDOG = 10.0  # seconds; only reached by a loop that would block forever

pytestmark = pytest.mark.timeout(60)


class _Watchdog:
    """Stops ``loop`` from another thread after WATCHDOG seconds unless cancelled first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.fired = False
        self._loop = loop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if not self._done.wait(WATCHDOG):
            self.fired = True
            self._loop.call_soon_threadsafe(self._loop.stop)

    def cancel(self) -> None:
        self._done.set()
        self._thread.join()


def _run_forever(loop: asyncio.AbstractEventLoop) -> str:
    """Run until something stops the loop: "stopped", "hung" (watchdog) or the exception."""
    dog = _Watchdog(loop)
    try:
        loop.run_forever()
    except Exception as exc:
        return type(exc).__name__
    finally:
        dog.cancel()
    return "hung" if dog.fired else "stopped"


def _run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]) -> Any:
    """run_until_complete, bounded: the result, or "hung", or the exception's type name."""
    dog = _Watchdog(loop)
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except Exception as exc:
        if dog.fired:
            task.cancel()
            loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
            return "hung"
        if not task.done():  # the loop raised (asyncio 3.13+ on NaN): no "destroyed" log
            task._log_destroy_pending = False  # type: ignore[attr-defined]
        return type(exc).__name__
    finally:
        dog.cancel()


def _nan_on_top_outcome(impl: str, tideloop_outcome: Any) -> Any:
    """A NaN timer alone on top of an idle heap: asyncio 3.13+ raises ValueError per pass."""
    return "ValueError" if impl == "aio" and PY313 else tideloop_outcome


@pytest.mark.parametrize("method", ["call_later", "call_at"])
def test_nan_timer_alone_fires_at_once(loop_impl: Callable[[], Any], method: str) -> None:
    loop = loop_impl()
    fired: list[str] = []
    try:
        handle = getattr(loop, method)(NAN, lambda: (fired.append("nan"), loop.stop()))
        assert handle.when() != handle.when()  # kept as NaN, as asyncio keeps it
        outcome = _run_forever(loop)
    finally:
        loop.close()
    want = _nan_on_top_outcome(loop_impl.impl, ("stopped", ["nan"]))
    assert (outcome, fired) == (want if want != "ValueError" else ("ValueError", []))


def test_nan_timer_with_ready_callbacks_runs_in_the_same_pass(
    loop_impl: Callable[[], Any],
) -> None:
    # Callbacks ready: the poll's timeout is 0 on every version, so 3.13 does not raise here.
    loop = loop_impl()
    order: list[str] = []
    try:
        loop.call_later(NAN, lambda: (order.append("nan"), loop.stop()))
        loop.call_soon(order.append, "soon")
        outcome = _run_forever(loop)
    finally:
        loop.close()
    assert (outcome, order) == ("stopped", ["soon", "nan"])


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # (delay or "nan", name) in call order; the last one stops the loop.
        ([(NAN, "nan"), (0.02, "a")], ["nan", "a"]),  # pushed first: tops the heap
        ([(0.01, "a"), (NAN, "nan"), (0.05, "b")], ["a", "nan", "b"]),  # due when it tops it
        ([(0.0, "zero"), (NAN, "nan"), (0.03, "a")], ["zero", "nan", "a"]),
        # heapq's pop of "b" sifts the NaN up past "a" (``not a < nan``): it fires next.
        ([(0.02, "a"), (0.01, "b"), (NAN, "nan"), (0.04, "c")], ["b", "nan", "a", "c"]),
    ],
    ids=["nan-first", "nan-between", "after-zero", "nan-third"],
)
def test_nan_timer_heap_order(
    loop_impl: Callable[[], Any], schedule: list[tuple[float, str]], expected: list[str]
) -> None:
    loop = loop_impl()
    order: list[str] = []
    try:
        for delay, name in schedule[:-1]:
            loop.call_later(delay, order.append, name)
        delay, name = schedule[-1]
        loop.call_later(delay, lambda: (order.append(name), loop.stop()))
        outcome = _run_forever(loop)
    finally:
        loop.close()
    want: Any = ("stopped", expected)
    if schedule[0][0] != schedule[0][0]:  # the NaN timer tops an idle heap from the start
        want = _nan_on_top_outcome(loop_impl.impl, want)
        if want == "ValueError":
            want = ("ValueError", [])
    assert (outcome, order) == want


def test_asyncio_sleep_nan(loop_impl: Callable[[], Any]) -> None:
    async def main() -> str:
        await asyncio.sleep(NAN)
        return "slept"

    loop = loop_impl()
    try:
        outcome = _run(loop, main())
    finally:
        loop.close()
    # 3.13's asyncio.sleep checks for NaN itself ("Invalid delay: NaN (not a number)").
    assert outcome == ("ValueError" if PY313 else "slept")


@pytest.mark.parametrize("how", ["timeout", "wait_for"])
def test_timeout_computed_as_nan_expires_at_once(loop_impl: Callable[[], Any], how: str) -> None:
    delay = INF - INF  # a computed NaN, as 0.0 / 0.0 would be if Python allowed it

    async def main() -> str:
        try:
            if how == "timeout":
                async with asyncio.timeout(delay):
                    await asyncio.sleep(WATCHDOG * 2)
            else:
                await asyncio.wait_for(asyncio.sleep(WATCHDOG * 2), delay)
        except TimeoutError:
            return "TimeoutError"
        return "completed"

    loop = loop_impl()
    try:
        outcome = _run(loop, main())
    finally:
        loop.close()
    assert outcome == _nan_on_top_outcome(loop_impl.impl, "TimeoutError")


@pytest.mark.parametrize("method", ["call_later", "call_at"])
def test_infinite_timer_never_fires(loop_impl: Callable[[], Any], method: str) -> None:
    loop = loop_impl()
    fired: list[str] = []
    try:
        handle = getattr(loop, method)(INF, fired.append, "inf")
        assert handle.when() == INF
        loop.call_later(0.01, loop.stop)
        outcome = _run_forever(loop)
        left = len(loop._scheduled)  # both loops keep asyncio's attribute name
    finally:
        loop.close()
    assert (outcome, fired, left) == ("stopped", [], 1)


def test_sleep_inf_is_cancelled_by_a_timeout(loop_impl: Callable[[], Any]) -> None:
    async def main() -> str:
        try:
            await asyncio.wait_for(asyncio.sleep(INF), 0.01)
        except TimeoutError:
            return "TimeoutError"
        return "completed"

    loop = loop_impl()
    try:
        outcome = _run(loop, main())
    finally:
        loop.close()
    assert outcome == "TimeoutError"


@pytest.mark.parametrize("method", ["call_later", "call_at"])
def test_minus_infinity_fires_at_once(loop_impl: Callable[[], Any], method: str) -> None:
    loop = loop_impl()
    order: list[str] = []
    try:
        loop.call_later(WATCHDOG * 2, order.append, "later")  # would be first if -inf waited
        getattr(loop, method)(-INF, lambda: (order.append("-inf"), loop.stop()))
        outcome = _run_forever(loop)
    finally:
        loop.close()
    assert (outcome, order) == ("stopped", ["-inf"])


@pytest.mark.parametrize("value", [HUGE, -HUGE], ids=["2**1100", "-2**1100"])
def test_call_later_huge_int_raises_overflow(loop_impl: Callable[[], Any], value: int) -> None:
    loop = loop_impl()
    try:
        with pytest.raises(OverflowError):
            loop.call_later(value, print)
        assert len(loop._scheduled) == 0
    finally:
        loop.close()


@pytest.mark.parametrize(
    ("value", "error"),
    [(HUGE, "OverflowError"), (-HUGE, "OverflowError"), ("soon", "TypeError")],
    ids=["2**1100", "-2**1100", "str"],
)
def test_call_at_without_a_float_form_raises(
    loop_impl: Callable[[], Any], value: Any, error: str
) -> None:
    # asyncio raises from the first pass that finds the timer on top; tideloop in call_at.
    loop = loop_impl()
    fired: list[str] = []
    try:
        try:
            loop.call_at(value, lambda: (fired.append("x"), loop.stop()))
        except Exception as exc:
            where, outcome = "call_at", type(exc).__name__
        else:
            where, outcome = "run", _run_forever(loop)
    finally:
        loop.close()
    assert (outcome, fired) == (error, [])
    if loop_impl.impl == "tide":
        assert where == "call_at"


def test_call_at_huge_int_behind_an_earlier_timer(loop_impl: Callable[[], Any]) -> None:
    # Where asyncio accepts it (not on top, never compared as a float) tideloop refuses it.
    loop = loop_impl()
    try:
        loop.call_later(0.01, loop.stop)
        try:
            loop.call_at(HUGE, print)
        except OverflowError:
            outcome = "OverflowError"
        else:
            outcome = _run_forever(loop)
    finally:
        loop.close()
    assert outcome == ("OverflowError" if loop_impl.impl == "tide" else "stopped")


def test_call_at_int_is_kept_as_a_float_in_both_build_modes(
    loop_impl: Callable[[], Any],
) -> None:
    loop = loop_impl()
    try:
        handle = loop.call_at(10**9, print)
    finally:
        loop.close()
    assert handle.when() == 10**9
    if loop_impl.impl == "tide":
        assert type(handle.when()) is float
