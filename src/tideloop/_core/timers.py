"""The timer heap: a binary min-heap of TimerHandles in a list, keyed by ``_when``.

The algorithm is heapq's, step for step (``_siftdown`` / ``_siftup``, including its
"bottom-up" pop), so timers due at the same instant come out in exactly the order asyncio's
``heapq`` gives. The difference is the comparison: heapq calls ``TimerHandle.__lt__`` through
the rich-comparison protocol for every step; here the compiled build compares two C doubles.

Invariant: ``heap[k]._when <= heap[2k+1]._when`` and ``<= heap[2k+2]._when`` for every k.
Invariant: a handle is in the heap iff its ``_scheduled`` is True (maintained by the loop).
"""

from __future__ import annotations

from .handles import TimerHandle


def heap_push(heap: list, timer: TimerHandle) -> None:
    """Push timer, keeping the heap invariant (heapq.heappush)."""
    heap.append(timer)
    _siftdown(heap, 0, len(heap) - 1)


def heap_pop(heap: list) -> TimerHandle:
    """Pop and return the earliest timer (heapq.heappop). The heap must not be empty."""
    last = heap.pop()
    if heap:
        first = heap[0]
        heap[0] = last
        _siftup(heap, 0)
        return first
    return last


def _siftdown(heap: list, startpos: int, pos: int) -> None:
    newitem = heap[pos]
    when = newitem._when
    while pos > startpos:
        parentpos = (pos - 1) >> 1
        parent = heap[parentpos]
        if when < parent._when:
            heap[pos] = parent
            pos = parentpos
            continue
        break
    heap[pos] = newitem


def _siftup(heap: list, pos: int) -> None:
    endpos = len(heap)
    startpos = pos
    newitem = heap[pos]
    # Bubble up the smaller child until hitting a leaf.
    childpos = 2 * pos + 1
    while childpos < endpos:
        rightpos = childpos + 1
        if rightpos < endpos:
            left = heap[childpos]
            right = heap[rightpos]
            if not left._when < right._when:
                childpos = rightpos
        heap[pos] = heap[childpos]
        pos = childpos
        childpos = 2 * pos + 1
    # The leaf at pos is empty now. Put newitem there, and bubble it up
    # to its final resting place (by sifting its parents down).
    heap[pos] = newitem
    _siftdown(heap, startpos, pos)
