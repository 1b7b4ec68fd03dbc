"""Differential tests: tideloop's StreamReader against asyncio's, on generated programs.

A program is a list of operations: feed_data / feed_eof / set_exception, read calls
(read(n), readline, readexactly(n), readuntil(sep or tuple of seps), one async-iteration
step), at_eof / exception() probes and the cancellation of a pending read. Each program runs
on a fresh reader of each implementation, both on the same loop (tideloop's or asyncio's:
``loop_impl``), with a fake transport that records pause_reading/resume_reading. After each
operation the loop is given a few passes; every result, every exception (type, args,
.partial/.expected/.consumed), every probe and the transport's flow-control calls go into a
trace. The two traces must be identical.

At most one read is pending at a time unless the program starts another one on purpose
(that must raise RuntimeError in both). tideloop's readuntil offers the 3.13 tuple semantics
on every version, so tuple separators are compared only where asyncio has them.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tideloop import streams

_HAS_TUPLE_SEP = sys.version_info >= (3, 13)
_SETTLE = 4  # loop passes after each operation (a woken read needs one or two)


class FakeTransport:
    """Records the reader's flow-control calls into the shared trace."""

    def __init__(self, trace: list[Any], pausable: bool) -> None:
        self.trace = trace
        self.pausable = pausable

    def pause_reading(self) -> None:
        if not self.pausable:
            raise NotImplementedError
        self.trace.append(("pause_reading",))

    def resume_reading(self) -> None:
        self.trace.append(("resume_reading",))


def _describe(exc: BaseException) -> tuple[Any, ...]:
    return (
        "raised",
        type(exc).__name__,
        exc.args,
        getattr(exc, "partial", None),
        getattr(exc, "expected", None),
        getattr(exc, "consumed", None),
    )


def _outcome(task: asyncio.Task) -> tuple[Any, ...]:
    if task.cancelled():
        return ("cancelled",)
    exc = task.exception()
    if exc is not None:
        return _describe(exc)
    return ("ok", task.result())


async def _anext_step(reader: Any) -> Any:
    try:
        return await reader.__anext__()
    except StopAsyncIteration:
        return "StopAsyncIteration"


async def _run(reader_cls: Any, limit: int, pausable: bool, ops: list[Any]) -> list[Any]:
    trace: list[Any] = []
    reader = reader_cls(limit=limit, loop=asyncio.get_running_loop())
    reader.set_transport(FakeTransport(trace, pausable))
    pending: list[tuple[int, asyncio.Task]] = []
    eof_fed = False

    async def settle() -> None:
        for _ in range(_SETTLE):
            await asyncio.sleep(0)
        still = []
        for i, task in pending:
            if task.done():
                trace.append((i, *_outcome(task)))
            else:
                still.append((i, task))
        pending[:] = still

    for i, op in enumerate(ops):
        kind = op[0]
        if kind == "feed":
            try:
                reader.feed_data(op[1])
            except AssertionError as exc:  # feed_data after feed_eof
                trace.append((i, *_describe(exc)))
        elif kind == "eof":
            reader.feed_eof()
            eof_fed = True
        elif kind == "exc":
            reader.set_exception(ValueError(op[1]))
        elif kind == "at_eof":
            trace.append((i, "at_eof", reader.at_eof()))
        elif kind == "exception":
            exc = reader.exception()
            trace.append((i, "exception", None if exc is None else _describe(exc)))
        elif kind == "cancel":
            for _, task in pending:
                task.cancel()
        else:
            if kind == "read":
                coro = reader.read(op[1])
            elif kind == "readline":
                coro = reader.readline()
            elif kind == "readexactly":
                coro = reader.readexactly(op[1])
            elif kind == "readuntil":
                coro = reader.readuntil(op[1])
            elif kind == "anext":
                coro = _anext_step(reader)
            else:  # pragma: no cover
                raise AssertionError(op)
            pending.append((i, asyncio.ensure_future(coro)))
        await settle()

    # Drain: end the stream so every pending read finishes, then look at what is left.
    if not eof_fed:
        reader.feed_eof()
    await settle()
    for i, task in pending:
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        trace.append((i, "left", _outcome(task)))
    try:
        trace.append(("rest", await reader.read()))
    except Exception as exc:
        trace.append(("rest", *_describe(exc)))
    trace.append(("final_at_eof", reader.at_eof()))
    return trace


# Mostly bytes rich in separators (random binary seldom holds one).
_data = st.binary(max_size=12) | st.lists(
    st.sampled_from([b"a", b"b", b"\n", b"ab", b"\r\n", b"xyz", b"aaa"]), max_size=8
).map(b"".join)
_sep = st.sampled_from([b"\n", b"ab", b"b", b"\r\n", b"xyz", b"a\nb", b""])
_seps = st.one_of(_sep, st.lists(_sep, max_size=3).map(tuple)) if _HAS_TUPLE_SEP else _sep
_op = st.one_of(
    st.tuples(st.just("feed"), _data),
    st.tuples(st.just("feed"), _data.map(bytearray)),
    st.tuples(st.just("eof")),
    st.tuples(st.just("exc"), st.sampled_from(["boom", "bang"])),
    st.tuples(st.just("read"), st.integers(-2, 14)),
    st.tuples(st.just("readline")),
    st.tuples(st.just("readexactly"), st.integers(-1, 14)),
    st.tuples(st.just("readuntil"), _seps),
    st.tuples(st.just("anext")),
    st.tuples(st.just("at_eof")),
    st.tuples(st.just("exception")),
    st.tuples(st.just("cancel")),
)
# Programs are mostly feeds and reads; set_exception ends most of the interesting behaviour,
# so it is drawn rarely (one_of above weighs every branch alike: bias by repetition).
_program = st.lists(
    st.one_of(_op, st.tuples(st.just("feed"), _data), st.tuples(st.just("readline"))),
    max_size=25,
)


def _compare(loop_impl: Any, limit: int, pausable: bool, ops: list[Any]) -> None:
    async def both() -> tuple[list[Any], list[Any]]:
        ours = await _run(streams.StreamReader, limit, pausable, ops)
        theirs = await _run(asyncio.StreamReader, limit, pausable, ops)
        return ours, theirs

    with asyncio.Runner(loop_factory=loop_impl) as runner:
        ours, theirs = runner.run(both())
    assert ours == theirs


@settings(
    max_examples=1500,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        # loop_impl is a factory: every example makes (and closes) its own loop with it.
        HealthCheck.function_scoped_fixture,
    ],
)
@given(limit=st.integers(1, 6), pausable=st.booleans(), ops=_program)
def test_reader_matches_asyncio(loop_impl: Any, limit: int, pausable: bool, ops: list[Any]) -> None:
    _compare(loop_impl, limit, pausable, ops)


@pytest.mark.parametrize(
    "ops",
    [
        # A line longer than the limit, then a short one.
        [("feed", b"aaaaaaaaaaaa\nbb\n"), ("readline",), ("readline",)],
        # The separator split across feeds.
        [("readuntil", b"xyz"), ("feed", b"12x"), ("feed", b"y"), ("feed", b"z3")],
        # EOF in the middle of readexactly.
        [("readexactly", 5), ("feed", b"abc"), ("eof",)],
        # set_exception wakes the waiting reader; later reads raise it too.
        [("read", 3), ("exc", "boom"), ("readline",), ("at_eof",)],
        # Two readers at once: RuntimeError for the second.
        [("read", 3), ("readline",), ("feed", b"x\n")],
        # Cancelled read leaves the data for the next one.
        [("read", 3), ("cancel",), ("feed", b"abc"), ("read", 1)],
        # Flow control: over 2*limit pauses, reading down to the limit resumes.
        [("feed", b"abcdefghijk"), ("read", 3), ("read", 4), ("read", 10)],
        # read(-1) over several feeds.
        [("read", -1), ("feed", b"ab"), ("feed", b"cd"), ("eof",)],
        # async iteration.
        [("feed", b"a\nb"), ("anext",), ("anext",), ("eof",), ("anext",)],
        # A line of exactly limit + 1 bytes before its newline is over the limit.
        [("feed", b"aaaaa\n"), ("readline",), ("feed", b"aaaa\n"), ("readline",)],
        # Resume exactly at the limit, not below it.
        [("feed", b"abcdefghijk"), ("read", 7), ("read", 1)],
        # Empty separator.
        [("readuntil", b"")],
    ],
)
@pytest.mark.parametrize("pausable", [True, False])
def test_reader_examples(loop_impl: Any, ops: list[Any], pausable: bool) -> None:
    _compare(loop_impl, 4, pausable, ops)


@pytest.mark.skipif(not _HAS_TUPLE_SEP, reason="asyncio has tuple separators from 3.13")
@pytest.mark.parametrize(
    "ops",
    [
        [("feed", b"xx\r\nyy\n"), ("readuntil", (b"\n", b"\r\n")), ("readuntil", (b"\n",))],
        [("feed", b"abxyz\n"), ("readuntil", (b"xyz", b"b"))],
        [("readuntil", ())],
        [("feed", b"aaaaaaaaaaaaa"), ("readuntil", (b"\n", b"xyz"))],
    ],
)
def test_reader_tuple_examples(loop_impl: Any, ops: list[Any]) -> None:
    _compare(loop_impl, 4, True, ops)
