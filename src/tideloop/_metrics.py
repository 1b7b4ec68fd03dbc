"""``tideloop.metrics()``: immutable snapshots of what a loop counts about itself.

A snapshot holds figures since the loop was made; ``b - a`` (or ``b.since(a)``) gives those of
the interval between two snapshots of one loop, as Node's ``eventLoopUtilization(a, b)``.
What each figure means, precisely, is in docs/metrics.md; how the loop gathers them, in
``_core/metrics.py``. Plain Python (never compiled): a snapshot is taken rarely, and costs
one copy of the lag histogram's 304 counters.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from typing import Any

from ._core.metrics import LAG_BUCKETS, LoopStats, lag_bucket_bounds

__all__ = ["LagHistogram", "LoopMetrics", "SlowCallback", "metrics", "summary"]


@dataclass(frozen=True)
class LagHistogram:
    """How late ready work started: one sample per loop pass that ran anything.

    ``counts[i]`` is the number of samples in bucket ``i`` (``bucket_bounds``); ``total`` their
    sum and ``max`` the largest, in seconds. Percentiles are read from the buckets: each is the
    largest value its bucket holds (whole nanoseconds), at most 1/8 above the true sample and
    never above ``max``.
    """

    counts: tuple[int, ...]
    count: int
    total: float
    max: float

    @property
    def mean(self) -> float:
        """The mean sample in seconds (0.0 with no samples)."""
        return self.total / self.count if self.count else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0 <= p <= 100) in seconds; 0.0 with no samples."""
        if not 0.0 <= p <= 100.0:  # also refuses NaN
            raise ValueError(f"percentile must be between 0 and 100, got {p!r}")
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return min((lag_bucket_bounds(index)[1] - 1) * 1e-9, self.max)
        return self.max  # unreachable while count == sum(counts)

    def buckets(self) -> list[tuple[float, float, int]]:
        """The non-empty buckets as ``(low, high, count)``: ``count`` samples in [low, high) s."""
        out = []
        for index, n in enumerate(self.counts):
            if n:
                lo, hi = lag_bucket_bounds(index)
                out.append((lo * 1e-9, hi * 1e-9, n))
        return out

    @staticmethod
    def bucket_bounds(index: int) -> tuple[float, float]:
        """The seconds bucket ``index`` holds, ``[low, high)``."""
        if not 0 <= index < LAG_BUCKETS:
            raise IndexError(f"lag histogram bucket index out of range: {index!r}")
        lo, hi = lag_bucket_bounds(index)
        return lo * 1e-9, hi * 1e-9

    def __sub__(self, earlier: LagHistogram) -> LagHistogram:
        """The samples taken between ``earlier`` and this one (of the same loop).

        Counts and the total subtract exactly; an interval's ``max`` is the largest value of its
        highest non-empty bucket, capped by this histogram's ``max`` (the exact one is not kept).
        """
        if not isinstance(earlier, LagHistogram):
            return NotImplemented
        counts = tuple(a - b for a, b in zip(self.counts, earlier.counts, strict=True))
        if any(n < 0 for n in counts):
            raise ValueError("the subtracted histogram is not an earlier one of the same loop")
        top = 0.0
        for index in range(len(counts) - 1, -1, -1):
            if counts[index]:
                top = min((lag_bucket_bounds(index)[1] - 1) * 1e-9, self.max)
                break
        return LagHistogram(counts, self.count - earlier.count, self.total - earlier.total, top)


@dataclass(frozen=True)
class SlowCallback:
    """A callback (or a transport's I/O dispatch) that ran for at least the threshold."""

    callback: str  # its repr, as asyncio's debug mode prints it
    duration: float  # seconds
    when: float  # loop.time() when it ended


@dataclass(frozen=True)
class LoopMetrics:
    """One loop's figures since it was made, as of ``time`` (its ``loop.time()``).

    ``active`` and ``idle`` are seconds inside ``run_forever``: idle is time waiting in a poll
    that could block, active everything else. Counters: ``passes`` (loop iterations),
    ``callbacks`` (call_soon-family handles run), ``io_events`` (reader/writer callbacks and
    transport dispatches run), ``timers`` (timer handles fired), ``slow_callbacks`` (any of
    these that ran for ``slow_callback_duration`` or longer; the last few are in
    ``recent_slow_callbacks``, oldest first). ``transports`` and ``connections`` are open now;
    ``bytes_read``/``bytes_written`` count what stream transports moved through their sockets.
    """

    time: float
    active: float
    idle: float
    passes: int
    callbacks: int
    io_events: int
    timers: int
    lag: LagHistogram
    slow_callbacks: int
    slow_callback_duration: float
    recent_slow_callbacks: tuple[SlowCallback, ...]
    transports: int
    connections: int
    bytes_read: int
    bytes_written: int
    _loop_id: int = field(default=0, repr=False, compare=False)

    @property
    def utilization(self) -> float:
        """active / (active + idle): 0.0 for a loop that never ran, 1.0 for one never idle."""
        total = self.active + self.idle
        return self.active / total if total > 0.0 else 0.0

    def since(self, earlier: LoopMetrics) -> LoopMetrics:
        """The figures of the interval from ``earlier`` (a snapshot of the same loop) to this.

        Times, counters and the lag histogram subtract; ``transports`` and ``connections``
        (open now) and ``slow_callback_duration`` are this snapshot's; only the slow callbacks
        that ended after ``earlier`` was taken stay in ``recent_slow_callbacks``.
        """
        if not isinstance(earlier, LoopMetrics):
            raise TypeError(f"expected a LoopMetrics snapshot, got {type(earlier).__name__}")
        if earlier._loop_id != self._loop_id:
            raise ValueError("the two snapshots are of different loops")
        if earlier.time > self.time:
            raise ValueError("the snapshot subtracted must be the earlier one")
        return replace(
            self,
            active=self.active - earlier.active,
            idle=self.idle - earlier.idle,
            passes=self.passes - earlier.passes,
            callbacks=self.callbacks - earlier.callbacks,
            io_events=self.io_events - earlier.io_events,
            timers=self.timers - earlier.timers,
            lag=self.lag - earlier.lag,
            slow_callbacks=self.slow_callbacks - earlier.slow_callbacks,
            recent_slow_callbacks=tuple(
                s for s in self.recent_slow_callbacks if s.when > earlier.time
            ),
            bytes_read=self.bytes_read - earlier.bytes_read,
            bytes_written=self.bytes_written - earlier.bytes_written,
        )

    def __sub__(self, earlier: LoopMetrics) -> LoopMetrics:
        if not isinstance(earlier, LoopMetrics):
            return NotImplemented
        return self.since(earlier)


def metrics(loop: Any = None) -> LoopMetrics:
    """A snapshot of ``loop``'s figures (the running loop's if None), from any thread.

    RuntimeError if ``loop`` is None and no loop runs in this thread (as
    ``asyncio.get_running_loop()``); TypeError if the loop is not a tideloop loop.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    stats = getattr(loop, "_stats", None)
    if not isinstance(stats, LoopStats):
        raise TypeError(f"tideloop.metrics() needs a tideloop event loop, got {loop!r}")
    now = loop.time()
    elapsed = stats.elapsed
    idle = stats.idle
    if loop.is_running():
        elapsed += now - stats.t_run
        if stats.in_poll:  # waiting now, since the end of the last item
            idle += now - stats.t_last
    active = max(0.0, elapsed - idle)  # rounding, or a wait just ended seen from a thread
    counts, count, total_ns, max_ns = stats.lag_state()
    return LoopMetrics(
        time=now,
        active=active,
        idle=idle,
        passes=stats.passes,
        callbacks=stats.callbacks,
        io_events=stats.io_events,
        timers=stats.timers,
        lag=LagHistogram(counts, count, total_ns * 1e-9, max_ns * 1e-9),
        slow_callbacks=stats.slow_count,
        slow_callback_duration=loop.slow_callback_duration,
        recent_slow_callbacks=tuple(SlowCallback(*s) for s in list(stats.slow_recent)),
        transports=stats.transports,
        connections=stats.connections,
        bytes_read=stats.bytes_read,
        bytes_written=stats.bytes_written,
        _loop_id=id(loop),
    )


def _seconds(value: float) -> str:
    """A duration for people: 850 ns, 12.3 us, 4.56 ms, 1.23 s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.0f} ns"


def summary(m: LoopMetrics, title: str = "loop") -> str:
    """A one-screen summary of a snapshot (what ``python -m tideloop --stats`` prints)."""
    lag = m.lag
    lines = [
        f"{title}: {_seconds(m.active + m.idle)} in run_forever",
        f"  utilization  {m.utilization:.1%}  (active {_seconds(m.active)}, "
        f"idle {_seconds(m.idle)})",
        f"  passes       {m.passes:,}  callbacks {m.callbacks:,}  I/O events {m.io_events:,}"
        f"  timers {m.timers:,}",
        f"  lag          p50 {_seconds(lag.percentile(50))}  p90 {_seconds(lag.percentile(90))}"
        f"  p99 {_seconds(lag.percentile(99))}  max {_seconds(lag.max)}"
        f"  (mean {_seconds(lag.mean)} over {lag.count:,} passes)",
        f"  slow         {m.slow_callbacks:,} callbacks of {_seconds(m.slow_callback_duration)}"
        " or more" + ("; the last ones, slowest first:" if m.recent_slow_callbacks else ""),
    ]
    for s in sorted(m.recent_slow_callbacks, key=lambda s: -s.duration):
        what = s.callback if len(s.callback) <= 90 else s.callback[:87] + "..."
        lines.append(f"    {_seconds(s.duration):>9}  {what}")
    lines.append(
        f"  transports   {m.transports:,} open ({m.connections:,} connections);"
        f" read {m.bytes_read:,} B, written {m.bytes_written:,} B"
    )
    return "\n".join(lines)
