"""What a loop counts about itself, always: the state behind ``tideloop.metrics()``.

The loop core updates a ``LoopStats`` from its pass (``_core/loop.py``); the transports add
their bytes and their opening and closing; ``tideloop/metrics.py`` turns it into immutable
snapshots. Everything here is a C field in the compiled build (``metrics.pxd``).

Time. The loop reads its clock (``loop.time()``'s) after each callback, I/O dispatch or timer
it runs, after a poll that could block, and where asyncio does (due timers); never per
call_soon, and not at all for a pass that only runs ready callbacks.

- ``t_last`` is the end of the last thing the loop ran (or of its last blocking poll);
  ``t_item`` the start of the last thing it ran (-1 before a pass's first).
- A callback or dispatch runs from ``t_last`` to the reading after it: that is its duration,
  compared with the loop's ``slow_callback_duration``.
- ``idle`` sums the polls that could block (timeout not 0), each from ``t_last`` to its return.
  ``elapsed`` sums the time in completed ``run_forever`` calls, ``t_run`` is when the current
  one began; active time is elapsed time less idle (``_metrics.metrics``).

Lag. One sample per pass that ran anything: how long the pass's most delayed item waited,
i.e. the later of (the start of its last item minus the pass's start) and, for each timer it
fired, (the timer's start minus its deadline). See docs/metrics.md for what that does and does
not see.

The lag histogram has fixed buckets over integer nanoseconds: 0-15 ns one each, then 8 per
power of two (a bucket is at most 1/8 of its lower bound wide); values from 2**40 ns (about
18 minutes) up share the last bucket. ``lag_bucket`` is the one mapping, used by both builds.

Invariant: ``lag_count`` is the sum of ``lag_counts``; ``lag_sum_ns`` the sum of the recorded
(clamped) samples; ``lag_max_ns`` the largest. Samples of 0 (the common case: a pass whose one
item waited for nothing) are only counted, in ``lag_zeros``, not in ``lag_counts[0]``:
``lag_state()`` adds them back.
Invariant: ``transports`` counts transport cores made on this loop that have not yet called
their protocol's ``connection_lost`` (``connections``: those that are stream connections).
"""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any

LAG_SUB_BITS = 3  # 8 buckets per power of two
LAG_TOP_BITS = 40  # samples of 2**40 ns and more go to the last bucket
LAG_BUCKETS = (LAG_TOP_BITS - 4) * 8 + 16  # 304: the last is lag_bucket(LAG_CAP_NS)
LAG_CAP_NS = (1 << LAG_TOP_BITS) - 1
SLOW_KEEP = 8  # how many recent slow callbacks a loop remembers
# C copies for record_lag (the public names above stay importable Python ints).
_LAG_CAP = LAG_CAP_NS
_LAG_CAP_SECONDS = LAG_CAP_NS * 1e-9


def lag_bucket(ns: int) -> int:
    """The histogram bucket of a sample of ``ns`` nanoseconds (0 <= ns <= LAG_CAP_NS)."""
    if ns < 16:
        return ns
    # bits = ns.bit_length(), by halving (Cython compiles this to a few C comparisons).
    bits = 1
    v = ns
    if v >> 32:
        v >>= 32
        bits += 32
    if v >> 16:
        v >>= 16
        bits += 16
    if v >> 8:
        v >>= 8
        bits += 8
    if v >> 4:
        v >>= 4
        bits += 4
    if v >> 2:
        v >>= 2
        bits += 2
    if v >> 1:
        bits += 1
    shift = bits - 4  # ns >> shift is 8..15: the bucket within its power of two
    return shift * 8 + (ns >> shift)


def lag_bucket_bounds(index: int) -> tuple[int, int]:
    """The nanoseconds bucket ``index`` holds: ``lo <= ns < hi``."""
    if index < 16:
        return index, index + 1
    shift = index // 8 - 1
    lo = (index % 8 + 8) << shift
    return lo, lo + (1 << shift)


class LoopStats:
    """A loop's counters (see the module docstring). Only the loop's thread writes them."""

    __slots__ = (
        "elapsed",
        "t_run",
        "idle",
        "t_last",
        "t_item",
        "in_poll",
        "passes",
        "callbacks",
        "io_events",
        "timers",
        "lag_count",
        "lag_zeros",
        "lag_sum_ns",
        "lag_max_ns",
        "lag_counts",
        "lag_array",
        "slow_count",
        "slow_recent",
        "slow_hook",
        "transports",
        "connections",
        "bytes_read",
        "bytes_written",
    )

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.t_run = 0.0
        self.idle = 0.0
        self.t_last = 0.0
        self.t_item = 0.0
        self.in_poll = False
        self.passes = 0
        self.callbacks = 0
        self.io_events = 0
        self.timers = 0
        self.lag_count = 0
        self.lag_zeros = 0
        self.lag_sum_ns = 0
        self.lag_max_ns = 0
        # One array, seen through a typed memoryview in the compiled build (lag_counts).
        self.lag_array = array("Q", bytes(8 * LAG_BUCKETS))
        self.lag_counts = self.lag_array
        self.slow_count = 0
        self.slow_recent: deque[tuple[str, float, float]] = deque(maxlen=SLOW_KEEP)
        self.slow_hook: Any = None
        self.transports = 0
        self.connections = 0
        self.bytes_read = 0
        self.bytes_written = 0

    def record_lag(self, seconds: float) -> None:
        """Add one lag sample (negative and NaN count as 0, huge ones as LAG_CAP_NS)."""
        if not seconds > 0.0:
            self.lag_zeros += 1
            return
        if seconds >= _LAG_CAP_SECONDS:
            ns = _LAG_CAP
        else:
            ns = int(seconds * 1e9)
        self.lag_counts[lag_bucket(ns)] += 1
        self.lag_count += 1
        self.lag_sum_ns += ns
        if ns > self.lag_max_ns:
            self.lag_max_ns = ns

    def lag_state(self) -> tuple[tuple[int, ...], int, int, int]:
        """(counts per bucket, number of samples, their sum and max in ns), zeros included."""
        counts = list(self.lag_array)
        counts[0] += self.lag_zeros
        return tuple(counts), self.lag_count + self.lag_zeros, self.lag_sum_ns, self.lag_max_ns
