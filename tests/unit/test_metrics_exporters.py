"""tideloop.contrib.opentelemetry and .prometheus against the real libraries: an in-memory
OpenTelemetry reader, and prometheus_client's own exposition text, parsed back."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import tideloop
from tideloop.contrib.opentelemetry import LAG_QUANTILES, instrument
from tideloop.contrib.prometheus import LAG_BOUNDS_NS, LoopCollector


@pytest.fixture
def loop():
    loop = tideloop.new_event_loop()
    yield loop
    loop.close()


def workload(loop, n_callbacks=30):
    """n quick callbacks, then one that blocks 120 ms (slow at the 50 ms threshold used)."""
    loop.slow_callback_duration = 0.05
    for _ in range(n_callbacks):
        loop.call_soon(lambda: None)
    loop.call_soon(time.sleep, 0.12)
    loop.call_soon(loop.stop)
    loop.run_forever()


def otel_points(reader):
    """{metric name: [(attributes, value), ...]} of one collection."""
    out = {}
    data = reader.get_metrics_data()  # None when no instrument observed anything
    for rm in data.resource_metrics if data is not None else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = [(dict(p.attributes), p.value) for p in metric.data.data_points]
    return out


def test_opentelemetry_instruments_report_the_loop(loop):
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("tideloop-test")
    reg = instrument(meter, loop, attributes={"loop": "main"})
    workload(loop)
    snap = tideloop.metrics(loop)
    points = otel_points(reader)

    def value(name):
        ((attrs, v),) = points["tideloop.loop." + name]
        assert attrs == {"loop": "main"}
        return v

    assert value("callbacks") == snap.callbacks == 32
    assert value("slow_callbacks") == snap.slow_callbacks == 1
    assert value("passes") == snap.passes
    assert value("timers") == 0 and value("io_events") == 0
    assert value("active_time") == pytest.approx(snap.active, abs=0.05)
    assert value("active_time") >= 0.12
    assert value("transports") == 0 and value("connections") == 0
    assert 0.0 < value("utilization") <= 1.0
    lag = {attrs["quantile"]: v for attrs, v in points["tideloop.loop.lag"]}
    assert sorted(lag) == sorted(LAG_QUANTILES)
    assert lag[1.0] >= 0.12  # stop() waited behind the sleep
    assert lag[0.5] <= lag[0.9] <= lag[0.99] <= lag[1.0]

    # The gauges cover the interval since their previous reading: nothing ran since.
    points = otel_points(reader)
    assert {a["quantile"]: v for a, v in points["tideloop.loop.lag"]}[1.0] == 0.0

    reg.close()
    points = otel_points(reader)
    assert not any(name.startswith("tideloop.loop.") and pts for name, pts in points.items())


def test_opentelemetry_refuses_a_foreign_loop():
    import asyncio

    aio = asyncio.new_event_loop()
    try:
        meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("t")
        with pytest.raises(TypeError):
            instrument(meter, aio)
    finally:
        aio.close()


def test_prometheus_exposition_matches_the_snapshot(loop):
    registry = CollectorRegistry()
    registry.register(LoopCollector(loop, labels={"loop": "main"}))
    workload(loop, n_callbacks=10)
    snap = tideloop.metrics(loop)
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert s.labels.get("loop") == "main"
            key = (s.name, s.labels.get("le"))
            samples[key] = s.value

    assert samples[("tideloop_loop_callbacks_total", None)] == snap.callbacks == 12
    assert samples[("tideloop_loop_slow_callbacks_total", None)] == 1
    assert samples[("tideloop_loop_passes_total", None)] == snap.passes
    assert samples[("tideloop_loop_active_seconds_total", None)] >= 0.12
    assert samples[("tideloop_loop_connections", None)] == 0
    assert samples[("tideloop_loop_slow_callback_duration_seconds", None)] == 0.05
    # The histogram: cumulative counts below each bound, exact against the snapshot's samples.
    assert samples[("tideloop_loop_lag_seconds_count", None)] == snap.lag.count
    assert samples[("tideloop_loop_lag_seconds_sum", None)] == pytest.approx(snap.lag.total)
    previous = 0.0
    for bound in LAG_BOUNDS_NS:
        below = sum(n for lo, hi, n in snap.lag.buckets() if hi <= bound * 1e-9 * (1 + 1e-12))
        got = samples[("tideloop_loop_lag_seconds_bucket", repr(bound * 1e-9))]
        assert got == below
        assert got >= previous
        previous = got
    assert samples[("tideloop_loop_lag_seconds_bucket", "+Inf")] == snap.lag.count
    # The 120 ms wait of stop() is above 67 ms (4**13 ns) and below 268 ms (4**14 ns).
    assert (samples[("tideloop_loop_lag_seconds_bucket", repr(4**14 * 1e-9))]
            > samples[("tideloop_loop_lag_seconds_bucket", repr(4**13 * 1e-9))])


def test_prometheus_closed_loop_exposes_nothing():
    loop = tideloop.new_event_loop()
    registry = CollectorRegistry()
    registry.register(LoopCollector(loop))
    loop.close()
    assert "tideloop_loop" not in generate_latest(registry).decode()
