"""tideloop.metrics(): counters against known workloads, time accounting, lag, slow callbacks.

Workloads are virtual: callbacks that block for a known time (time.sleep), known numbers of
callbacks, timers, I/O events and bytes. Time figures are checked against what the workload
did with wide margins (a blocked callback is at least as long as its sleep); no check is on
how fast anything is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import socket
import threading
import time
from typing import Any

import pytest
from _support import Recorder, no_fd_leak, run_on

import tideloop
from tideloop._core.handles import Handle
from tideloop._core.metrics import LAG_BUCKETS, LAG_CAP_NS, LoopStats, lag_bucket, lag_bucket_bounds

__all__ = ["no_fd_leak"]


@pytest.fixture
def loop():
    loop = tideloop.new_event_loop()
    yield loop
    loop.close()


def run_callbacks(loop: Any, *callbacks: Any) -> None:
    """Queue ``callbacks`` and run the loop until the last has run (stop() queued after)."""
    for cb in callbacks:
        loop.call_soon(cb)
    loop.call_soon(loop.stop)
    loop.run_forever()


# ------------------------------------------------------------------------ counters


def test_counts_callbacks_and_skips_cancelled(loop):
    a = tideloop.metrics(loop)
    calls = []
    for i in range(50):
        loop.call_soon(calls.append, i)
    for _ in range(7):
        loop.call_soon(calls.append, None).cancel()
    loop.call_soon(loop.stop)
    loop.run_forever()
    d = tideloop.metrics(loop) - a
    assert len(calls) == 50
    assert d.callbacks == 51  # and stop's
    assert d.timers == 0
    assert d.io_events == 0
    assert d.passes >= 1


def test_counts_timers_fired_not_cancelled(loop):
    a = tideloop.metrics(loop)
    fired = []
    for i in range(20):
        loop.call_later(0.001 * (i % 3), fired.append, i)
    for _ in range(5):
        loop.call_later(0.001, fired.append, None).cancel()
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    d = tideloop.metrics(loop) - a
    assert len(fired) == 20
    assert d.timers == 21
    assert d.callbacks == 0


def test_counts_io_events_of_a_reader(loop):
    r, w = socket.socketpair()
    try:
        r.setblocking(False)
        got = []

        def on_readable():
            got.append(r.recv(100))
            loop.stop()

        loop.add_reader(r.fileno(), on_readable)
        a = tideloop.metrics(loop)
        for i in range(3):
            w.send(b"x" * (i + 1))
            loop.run_forever()
        d = tideloop.metrics(loop) - a
        loop.remove_reader(r.fileno())
        assert got == [b"x", b"xx", b"xxx"]
        assert d.io_events == 3
        assert d.callbacks == 0
    finally:
        r.close()
        w.close()


def test_bytes_and_connections_of_stream_transports(loop):
    payload = b"0123456789" * 10_000  # 100 kB each way

    async def main():
        made = loop.create_future()
        lost = loop.create_future()

        class Echo(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                made.set_result(self)

            def data_received(self, data):
                self.transport.write(data)

            def connection_lost(self, exc):
                lost.set_result(exc)

        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        a = tideloop.metrics(loop)
        transport, client = await loop.create_connection(Recorder, "127.0.0.1", port)
        await made
        during = tideloop.metrics(loop)
        transport.write(payload)
        await client.wait_for_bytes(len(payload))
        transport.close()
        await client.lost
        await lost  # the server side saw the close and closed too
        server.close()
        await server.wait_closed()
        return a, during, tideloop.metrics(loop)

    a, during, after = run_on(loop, main())
    assert during.connections - a.connections == 2  # the client's and the server's side
    assert during.transports - a.transports == 2
    assert after.connections == a.connections
    assert after.transports == a.transports
    d = after - a
    assert d.bytes_written == 2 * len(payload)  # client sends, server echoes
    assert d.bytes_read == 2 * len(payload)


def test_datagram_transport_is_a_transport_not_a_connection(loop):
    async def main():
        a = tideloop.metrics(loop)
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
        )
        during = tideloop.metrics(loop)
        transport.close()
        await asyncio.sleep(0)
        return a, during, tideloop.metrics(loop)

    a, during, after = run_on(loop, main())
    assert (during.transports - a.transports, during.connections - a.connections) == (1, 0)
    assert after.transports == a.transports


# ------------------------------------------------------------------------ time


def test_idle_loop_utilization_near_zero(loop):
    async def main():
        a = tideloop.metrics()
        await asyncio.sleep(0.3)
        return tideloop.metrics() - a

    d = run_on(loop, main())
    assert d.idle >= 0.25
    assert d.utilization < 0.1


def test_busy_loop_utilization_near_one(loop):
    def spin(until):
        # Busy for ~2 ms, then again in the next pass, until the deadline.
        end = time.monotonic() + 0.002
        while time.monotonic() < end:
            pass
        if time.monotonic() < until:
            loop.call_soon(spin, until)
        else:
            loop.stop()

    a = tideloop.metrics(loop)
    loop.call_soon(spin, time.monotonic() + 0.3)
    loop.run_forever()
    d = tideloop.metrics(loop) - a
    assert d.active >= 0.25
    assert d.utilization > 0.9


def test_active_plus_idle_is_time_in_run_forever(loop):
    loop.call_later(0.05, time.sleep, 0.05)
    loop.call_later(0.15, loop.stop)
    t0 = loop.time()
    loop.run_forever()
    t1 = loop.time()
    m = tideloop.metrics(loop)
    # Everything from run_forever's start to its end is one or the other.
    assert 0.0 <= (t1 - t0) - (m.active + m.idle) < 0.05  # only run_forever's own edges
    assert m.active >= 0.05  # the sleeping callback
    assert m.idle >= 0.05  # the waits before each timer


def test_interval_subtraction_is_exact(loop):
    snaps = []

    def step(n):
        snaps.append(tideloop.metrics(loop))
        time.sleep(0.001)
        if n:
            loop.call_later(0.002, step, n - 1)
        else:
            loop.stop()

    loop.call_soon(step, 4)
    loop.run_forever()
    a, b = snaps[1], snaps[3]
    d = b - a
    assert d == b.since(a)
    for name in ("active", "idle", "passes", "callbacks", "io_events", "timers",
                 "slow_callbacks", "bytes_read", "bytes_written"):
        assert getattr(d, name) == getattr(b, name) - getattr(a, name), name
    assert d.lag.count == b.lag.count - a.lag.count
    assert d.lag.counts == tuple(x - y for x, y in zip(b.lag.counts, a.lag.counts, strict=True))
    assert d.lag.total == b.lag.total - a.lag.total
    assert d.time == b.time
    assert d.timers == 2


def test_snapshot_from_another_thread_sees_the_current_wait(loop):
    seen = []

    def sample():
        time.sleep(0.2)  # while the loop waits on its timer
        seen.append(tideloop.metrics(loop))

    def start():
        seen.append(tideloop.metrics(loop))
        threading.Thread(target=sample).start()

    loop.call_soon(start)
    loop.call_later(0.4, loop.stop)
    loop.run_forever()
    a, b = seen
    assert b.idle - a.idle >= 0.15
    assert b.active - a.active < 0.1


# ------------------------------------------------------------------------ slow callbacks and lag


def test_blocking_callback_is_slow_and_delays_those_behind_it(loop):
    loop.slow_callback_duration = 0.1
    hooked = []
    loop.set_slow_callback_hook(lambda handle, seconds: hooked.append((handle, seconds)))
    ran_at = []
    a = tideloop.metrics(loop)
    run_callbacks(loop, lambda: time.sleep(0.2), lambda: ran_at.append(loop.time()))
    d = tideloop.metrics(loop) - a
    assert d.slow_callbacks == 1
    (slow,) = d.recent_slow_callbacks
    assert slow.duration >= 0.2
    assert "lambda" in slow.callback
    assert slow.when <= ran_at[0]
    (handle, seconds), = hooked
    assert isinstance(handle, Handle) and seconds == slow.duration
    # The callback queued behind it started at least 200 ms after the pass did.
    assert d.lag.max >= 0.2
    assert d.lag.percentile(100) >= 0.2


def test_timer_due_during_a_blocking_callback_is_late(loop):
    loop.slow_callback_duration = 10.0  # lag, not slowness, is under test
    a = tideloop.metrics(loop)
    fired = []
    loop.call_later(0.05, lambda: fired.append(loop.time()))
    loop.call_soon(time.sleep, 0.25)
    loop.call_later(0.3, loop.stop)
    loop.run_forever()
    d = tideloop.metrics(loop) - a
    assert fired and d.slow_callbacks == 0
    assert d.lag.max >= 0.15  # due at +50 ms, run after the 250 ms sleep


def test_quick_callbacks_are_not_slow_and_lag_stays_small(loop):
    a = tideloop.metrics(loop)
    run_callbacks(loop, *[(lambda: None)] * 100)
    d = tideloop.metrics(loop) - a
    assert d.slow_callbacks == 0
    assert d.recent_slow_callbacks == ()
    assert d.lag.count >= 1
    assert d.lag.max < 0.1


def test_slow_io_dispatch_names_the_transport(loop):
    loop.slow_callback_duration = 0.1
    hooked = []
    loop.set_slow_callback_hook(lambda subject, seconds: hooked.append(subject))

    class Slow(Recorder):
        def data_received(self, data):
            time.sleep(0.15)
            super().data_received(data)

    async def main():
        server = await loop.create_server(Slow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        a = tideloop.metrics()
        writer.write(b"ping")
        while not hooked:
            await asyncio.sleep(0.01)  # bounded by run_on's timeout; the dispatch is 150 ms
        d = tideloop.metrics() - a
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return d

    d = run_on(loop, main())
    assert d.slow_callbacks == 1
    assert isinstance(hooked[0], asyncio.Transport)
    assert d.recent_slow_callbacks[0].duration >= 0.15


def test_hook_errors_go_to_the_exception_handler(loop):
    loop.slow_callback_duration = 0.05
    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

    def hook(handle, seconds):
        raise ZeroDivisionError

    loop.set_slow_callback_hook(hook)
    assert loop.get_slow_callback_hook() is hook
    ran = []
    run_callbacks(loop, lambda: time.sleep(0.1), lambda: ran.append(1))
    assert ran == [1]  # the pass went on
    # One report per slow callback: the sleeping one (and, on a starved machine, maybe more).
    assert errors and all(isinstance(c["exception"], ZeroDivisionError) for c in errors)
    assert "slow callback hook" in errors[0]["message"]
    assert "lambda" in repr(errors[0]["handle"])  # the sleeping callback's Handle
    loop.set_slow_callback_hook(None)
    assert loop.get_slow_callback_hook() is None
    with pytest.raises(TypeError):
        loop.set_slow_callback_hook(42)


def test_recent_slow_callbacks_keep_the_last_few(loop):
    loop.slow_callback_duration = 0.0  # everything is slow
    run_callbacks(loop, *[(lambda: None)] * 20)
    m = tideloop.metrics(loop)
    assert m.slow_callbacks == 21
    assert 1 <= len(m.recent_slow_callbacks) < 21
    whens = [s.when for s in m.recent_slow_callbacks]
    assert whens == sorted(whens)


# ------------------------------------------------------------------------ the histogram


def test_histogram_buckets_cover_every_value():
    for ns in [*range(0, 3000), *(2**k + d for k in range(4, 41) for d in (-1, 0, 1))]:
        ns = min(ns, LAG_CAP_NS)
        index = lag_bucket(ns)
        lo, hi = lag_bucket_bounds(index)
        assert 0 <= index < LAG_BUCKETS
        assert lo <= ns < hi
        assert hi - lo <= max(1, lo / 8)


def test_recorded_samples_land_in_their_buckets_and_percentiles_bound_them():
    # record_lag is the compiled C path in the compiled build; the snapshot reads its array.
    stats = LoopStats()
    samples = [0.0, -1.0, math.nan, 3e-9, 1e-6, 2.5e-5, 1e-3, 0.0123, 0.2, 1.5, 1e6]
    for s in samples:
        stats.record_lag(s)
    loop = tideloop.new_event_loop()
    try:
        loop._stats = stats
        h = tideloop.metrics(loop).lag
    finally:
        loop.close()
    clamped = [0 if not s > 0 else min(int(s * 1e9), LAG_CAP_NS) for s in samples]
    expected = [0] * LAG_BUCKETS
    for ns in clamped:
        expected[lag_bucket(ns)] += 1
    assert list(h.counts) == expected
    assert h.count == len(samples)
    assert h.max == LAG_CAP_NS * 1e-9
    assert h.total == pytest.approx(sum(clamped) * 1e-9)
    for p in (0, 10, 50, 90, 99, 100):
        true = sorted(clamped)[max(1, math.ceil(len(clamped) * p / 100)) - 1] * 1e-9
        got = h.percentile(p)
        assert true <= got <= true * 1.125
        assert got <= h.max
    assert sum(n for _, _, n in h.buckets()) == len(samples)


def test_percentile_refuses_bad_input_and_empty_is_zero(loop):
    h = tideloop.metrics(loop).lag
    assert h.count == 0 and h.percentile(99) == 0.0 and h.mean == 0.0
    for bad in (-1, 100.5, math.nan):
        with pytest.raises(ValueError):
            h.percentile(bad)


# ------------------------------------------------------------------------ the API


def test_snapshots_are_immutable_and_checked(loop):
    m = tideloop.metrics(loop)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.passes = 3
    other = tideloop.new_event_loop()
    try:
        with pytest.raises(ValueError):
            tideloop.metrics(other) - m
    finally:
        other.close()
    later = tideloop.metrics(loop)
    with pytest.raises(ValueError):
        m - later
    with pytest.raises(TypeError):
        m - 1


def test_metrics_needs_a_tideloop_loop():
    with pytest.raises(RuntimeError):
        tideloop.metrics()  # no running loop
    aio = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError):
            tideloop.metrics(aio)
    finally:
        aio.close()


def test_fresh_loop_reports_zeros(loop):
    m = tideloop.metrics(loop)
    assert (m.active, m.idle, m.utilization, m.passes, m.callbacks) == (0.0, 0.0, 0.0, 0, 0)
    assert m.slow_callback_duration == loop.slow_callback_duration
