"""A loop's metrics as OpenTelemetry observable instruments (extra: ``tideloop[opentelemetry]``).

    from opentelemetry import metrics
    from tideloop.contrib.opentelemetry import instrument

    registration = instrument(metrics.get_meter("my-service"), loop)

The instruments are read whenever the SDK collects (often from its exporter's thread; a
snapshot may be taken from any thread). Names, all under ``tideloop.loop.``:

- ``utilization`` (gauge, 1): active / (active + idle) since this instrument's previous
  reading (since the loop was made, for the first);
- ``lag`` (gauge, s): lag percentiles over the same interval, one observation per
  ``quantile`` attribute (0.5, 0.9, 0.99 and 1.0, the interval's maximum);
- ``active_time``, ``idle_time`` (counters, s); ``passes``, ``callbacks``, ``io_events``,
  ``timers``, ``slow_callbacks`` (counters; a rate of ``callbacks`` is callbacks/s);
  ``bytes_read``, ``bytes_written`` (counters, By);
- ``transports``, ``connections`` (up-down counters: open now).

Every observation carries ``attributes`` (say ``{"loop": "main"}``, to tell loops apart).
A closed loop, or a closed registration, reports nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from .._metrics import LoopMetrics, metrics

__all__ = ["LAG_QUANTILES", "Registration", "instrument"]

LAG_QUANTILES = (0.5, 0.9, 0.99, 1.0)
PREFIX = "tideloop.loop."

# (name, unit, description, LoopMetrics attribute) of the cumulative counters.
_COUNTERS = (
    ("active_time", "s", "time running callbacks and I/O", "active"),
    ("idle_time", "s", "time waiting for I/O or timers", "idle"),
    ("passes", "1", "loop iterations", "passes"),
    ("callbacks", "1", "call_soon-family callbacks run", "callbacks"),
    ("io_events", "1", "reader/writer callbacks and transport I/O dispatches run", "io_events"),
    ("timers", "1", "timer callbacks run", "timers"),
    ("slow_callbacks", "1", "callbacks that ran for slow_callback_duration or longer",
     "slow_callbacks"),
    ("bytes_read", "By", "bytes stream transports received", "bytes_read"),
    ("bytes_written", "By", "bytes stream transports sent", "bytes_written"),
)
_GAUGES = (
    ("transports", "1", "transports open", "transports"),
    ("connections", "1", "stream connections open", "connections"),
)


class Registration:
    """The instruments ``instrument()`` made; ``close()`` makes them report nothing more
    (OpenTelemetry has no way to remove an instrument from its meter)."""

    def __init__(self, loop: Any, attributes: Mapping[str, Any]) -> None:
        self.loop = loop
        self.attributes = dict(attributes)
        self.closed = False
        self.instruments: list[Any] = []

    def close(self) -> None:
        self.closed = True

    def _snapshot(self) -> LoopMetrics | None:
        if self.closed or self.loop.is_closed():
            return None
        return metrics(self.loop)

    def _interval(self) -> Callable[[], LoopMetrics | None]:
        """A reader of the figures since its own previous reading."""
        last: list[LoopMetrics] = []

        def read() -> LoopMetrics | None:
            now = self._snapshot()
            if now is None:
                return None
            interval = now - last[0] if last else now
            last[:] = [now]
            return interval

        return read

    def _counter(self, attr: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            m = self._snapshot()
            return [] if m is None else [Observation(getattr(m, attr), self.attributes)]

        return observe

    def _utilization(self) -> Callable[[CallbackOptions], Iterable[Observation]]:
        read = self._interval()

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            m = read()
            return [] if m is None else [Observation(m.utilization, self.attributes)]

        return observe

    def _lag(self) -> Callable[[CallbackOptions], Iterable[Observation]]:
        read = self._interval()

        def observe(options: CallbackOptions) -> Iterable[Observation]:
            m = read()
            if m is None:
                return []
            return [
                Observation(m.lag.percentile(q * 100.0), {**self.attributes, "quantile": q})
                for q in LAG_QUANTILES
            ]

        return observe


def instrument(
    meter: Meter, loop: Any, *, attributes: Mapping[str, Any] | None = None
) -> Registration:
    """Register ``loop``'s metrics (a tideloop loop) as observable instruments of ``meter``."""
    metrics(loop)  # TypeError now, not at the first collection, if it is not a tideloop loop
    reg = Registration(loop, attributes or {})
    add = reg.instruments.append
    add(meter.create_observable_gauge(
        PREFIX + "utilization", [reg._utilization()], unit="1",
        description="share of time the loop was busy since the previous reading"))
    add(meter.create_observable_gauge(
        PREFIX + "lag", [reg._lag()], unit="s",
        description="how late ready work started, percentiles since the previous reading"))
    for name, unit, description, attr in _COUNTERS:
        add(meter.create_observable_counter(
            PREFIX + name, [reg._counter(attr)], unit=unit, description=description))
    for name, unit, description, attr in _GAUGES:
        add(meter.create_observable_up_down_counter(
            PREFIX + name, [reg._counter(attr)], unit=unit, description=description))
    return reg
