"""White-box: tideloop's timer heap pops in exactly heapq's order, ties included."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from tideloop._core.handles import TimerHandle, new_timer_handle
from tideloop._core.timers import heap_pop, heap_push


class _FakeLoop:
    _debug = False

    def get_debug(self) -> bool:
        return False


_LOOP = _FakeLoop()

# An op is ("push", when) or ("pop", None); few distinct times so that ties are common.
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from([0.0, 1.0, 1.0, 2.5, 1e9])),
        st.tuples(st.just("push"), st.floats(0, 10, allow_nan=False)),
        st.tuples(st.just("pop"), st.none()),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_same_order_as_heapq(ops: list) -> None:
    ours: list[TimerHandle] = []
    ref: list[TimerHandle] = []
    popped_ours, popped_ref = [], []
    for i, (op, when) in enumerate(ops):
        if op == "push":
            timer = new_timer_handle(when, print, (i,), _LOOP, None, False)
            heap_push(ours, timer)
            heapq.heappush(ref, timer)  # TimerHandle.__lt__ orders by _when, as asyncio's
        elif ref:
            popped_ours.append(heap_pop(ours))
            popped_ref.append(heapq.heappop(ref))
    while ref:
        popped_ours.append(heap_pop(ours))
        popped_ref.append(heapq.heappop(ref))
    assert not ours
    assert [t._args for t in popped_ours] == [t._args for t in popped_ref]


def test_timer_handle_fields() -> None:
    timer = new_timer_handle(5.0, print, ("x",), _LOOP, None, False)
    assert timer.when() == 5.0
    assert not timer._scheduled and not timer.cancelled()
    assert timer.get_context() is not None
