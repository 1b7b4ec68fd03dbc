"""A ``prometheus_client`` collector of a loop's metrics (``pip install tideloop[prometheus]``).

    from prometheus_client import REGISTRY
    from tideloop.contrib.prometheus import LoopCollector

    REGISTRY.register(LoopCollector(loop, labels={"loop": "main"}))

Each scrape takes one snapshot (from the scraping thread; that is safe). Exposed, under the
``namespace`` (default ``tideloop_loop``):

- counters ``_active_seconds_total``, ``_idle_seconds_total`` (utilization over a range is
  ``rate(active) / (rate(active) + rate(idle))``), ``_passes_total``, ``_callbacks_total``,
  ``_io_events_total``, ``_timers_total``, ``_slow_callbacks_total``,
  ``_read_bytes_total``, ``_written_bytes_total``;
- histogram ``_lag_seconds``: the lag histogram, with ``le`` bounds at powers of two
  nanoseconds (4**k ns, from about 1 us to 69 s), which are edges of tideloop's own buckets,
  so the counts are exact; a bucket counts the samples below its bound;
- gauges ``_transports``, ``_connections`` (open now) and ``_slow_callback_duration_seconds``.

A closed loop exposes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .._core.metrics import lag_bucket
from .._metrics import metrics

__all__ = ["LAG_BOUNDS_NS", "LoopCollector"]

LAG_BOUNDS_NS = tuple(4**k for k in range(5, 19))  # 1.024 us .. 68.7 s

# (suffix, documentation, LoopMetrics attribute) of the counters.
_COUNTERS = (
    ("active_seconds", "Time the loop spent running callbacks and I/O.", "active"),
    ("idle_seconds", "Time the loop spent waiting for I/O or timers.", "idle"),
    ("passes", "Loop iterations.", "passes"),
    ("callbacks", "call_soon-family callbacks run.", "callbacks"),
    ("io_events", "Reader/writer callbacks and transport I/O dispatches run.", "io_events"),
    ("timers", "Timer callbacks run.", "timers"),
    ("slow_callbacks", "Callbacks that ran for slow_callback_duration or longer.",
     "slow_callbacks"),
    ("read_bytes", "Bytes stream transports received.", "bytes_read"),
    ("written_bytes", "Bytes stream transports sent.", "bytes_written"),
)


class LoopCollector(Collector):
    """Collects ``loop``'s metrics (a tideloop loop) at each scrape, labelled with ``labels``."""

    def __init__(
        self, loop: Any, *, namespace: str = "tideloop_loop",
        labels: Mapping[str, str] | None = None,
    ) -> None:
        metrics(loop)  # TypeError now, not at the first scrape, if it is not a tideloop loop
        self.loop = loop
        self.namespace = namespace
        self.labels = dict(labels or {})

    def collect(self) -> Iterator[Any]:
        if self.loop.is_closed():
            return
        m = metrics(self.loop)
        names = list(self.labels)
        values = list(self.labels.values())
        ns = self.namespace + "_"
        for suffix, doc, attr in _COUNTERS:
            family = CounterMetricFamily(ns + suffix, doc, labels=names)
            family.add_metric(values, getattr(m, attr))
            yield family
        # Cumulative counts below each bound: every bound is the low edge of a bucket.
        cumulative = []
        seen = 0
        index = 0
        counts = m.lag.counts
        for bound in LAG_BOUNDS_NS:
            edge = lag_bucket(bound)
            while index < edge:
                seen += counts[index]
                index += 1
            cumulative.append((repr(bound * 1e-9), seen))
        cumulative.append(("+Inf", m.lag.count))
        lag = HistogramMetricFamily(
            ns + "lag_seconds",
            "How late ready work started: one sample per loop pass that ran anything.",
            labels=names,
        )
        lag.add_metric(values, cumulative, m.lag.total)
        yield lag
        for suffix, doc, value in (
            ("transports", "Transports open.", m.transports),
            ("connections", "Stream connections open.", m.connections),
            ("slow_callback_duration_seconds", "The slow-callback threshold.",
             m.slow_callback_duration),
        ):
            gauge = GaugeMetricFamily(ns + suffix, doc, labels=names)
            gauge.add_metric(values, value)
            yield gauge
