"""Black-box tests of the loop core where asyncio changed in 3.13/3.14, on tideloop and asyncio.

- ``create_task``'s keywords reach the task factory as the running Python's asyncio passes
  them (3.14: all of them, so an eager task runs its first step with its name);
- ``call_soon_threadsafe``'s handle may be cancelled from any thread (3.14's
  ``_ThreadSafeHandle``: cancel() and cancelled() wait while the callback runs);
- ``create_task`` / ``create_future`` use ``asyncio.tasks.Task`` / ``asyncio.futures.Future``
  as they are when called, so Python tasks stay visible to Python ``all_tasks()``.
"""

from __future__ import annotations

import asyncio
import asyncio.futures
import asyncio.tasks
import concurrent.futures
import contextvars
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from _support import run

PY313 = sys.version_info >= (3, 13)
# 3.13.3 began passing create_task's extra keywords to Task and the task factory.
PY3133 = sys.version_info >= (3, 13, 3)
PY314 = sys.version_info >= (3, 14)
TIMEOUT = 20.0


async def noop() -> None:
    pass


# ---------------------------------------------------------------------- create_task keywords


def test_create_task_keywords_reach_the_factory_as_asyncio_passes_them(loop_impl: Any) -> None:
    seen: list[dict] = []

    def factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task:
        seen.append(dict(kwargs))
        return asyncio.Task(coro, loop=loop, **kwargs)

    ctx = contextvars.copy_context()

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)
        tasks = [
            loop.create_task(noop()),
            loop.create_task(noop(), name="n"),
            loop.create_task(noop(), context=ctx),
            loop.create_task(noop(), name=None, context=None),
        ]
        loop.set_task_factory(None)
        await asyncio.gather(*tasks)
        return [t.get_name() for t in tasks]

    names = run(loop_impl, main)
    if PY314:  # every keyword, unchanged; the factory names the task
        assert seen == [{}, {"name": "n"}, {"context": ctx}, {"name": None, "context": None}]
    else:  # context only when given; then set_name(name)
        assert seen == [{}, {}, {"context": ctx}, {}]
    assert names[1] == "n"
    unnamed = [names[0], names[2], names[3]]
    if PY313 and not PY314:
        # 3.13 calls task.set_name(name) even when name is None
        assert unnamed == ["None", "None", "None"]
    else:
        assert all(n.startswith("Task-") for n in unnamed), unnamed


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are 3.12+")
def test_eager_task_runs_its_first_step_with_its_name(loop_impl: Any) -> None:
    # CPython's test_taskgroups TestEagerTaskTaskGroup.test_name, plus the loop's own call.
    names: list[str] = []

    async def record() -> None:
        names.append(asyncio.current_task().get_name())  # type: ignore[union-attr]

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(asyncio.eager_task_factory)
        task = loop.create_task(record(), name="by loop")
        async with asyncio.TaskGroup() as tg:
            tg.create_task(record(), name="by group")
        return [task.get_name(), *names]

    final, first_by_loop, first_by_group = run(loop_impl, main)
    assert final == "by loop"
    if PY314:
        assert (first_by_loop, first_by_group) == ("by loop", "by group")
    else:  # the name is set after the eager first step
        assert first_by_loop.startswith("Task-") and first_by_group.startswith("Task-")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager_start is 3.12+")
def test_create_task_extra_keywords(loop_impl: Any) -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        coro = noop()
        try:
            task = loop.create_task(coro, eager_start=True)
        except TypeError:
            coro.close()
            raise
        done = task.done()  # an eager task that never awaits is done at once
        await task
        return done

    if PY3133:
        assert run(loop_impl, main) is True
    else:  # (coro, *, name=None, context=None)
        with pytest.raises(TypeError, match="eager_start"):
            run(loop_impl, main)


def test_create_task_and_future_use_asyncio_classes_as_they_are_now(
    loop_impl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class MyTask(asyncio.Task):  # type: ignore[type-arg]
        pass

    class MyFuture(asyncio.Future):  # type: ignore[type-arg]
        pass

    loop = loop_impl()
    try:
        monkeypatch.setattr(asyncio.tasks, "Task", MyTask)
        monkeypatch.setattr(asyncio.futures, "Future", MyFuture)
        task = loop.create_task(noop())
        fut = loop.create_future()
        assert type(task) is MyTask and type(fut) is MyFuture
        loop.run_until_complete(task)
    finally:
        loop.close()


def test_python_tasks_seen_by_python_all_tasks_from_another_thread(
    loop_impl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CPython's test_free_threading TestPyFreeThreading: with asyncio's pure-Python Task in
    # place, tasks the loop creates register where the pure-Python all_tasks() looks.
    monkeypatch.setattr(asyncio.tasks, "Task", asyncio.tasks._PyTask)
    monkeypatch.setattr(asyncio.futures, "Future", asyncio.futures._PyFuture)
    loop = loop_impl()
    stop = asyncio.Event()

    async def wait_forever() -> None:
        await stop.wait()

    async def setup() -> Any:
        return loop.create_task(wait_forever(), name="NORMAL")

    async def teardown() -> None:
        stop.set()
        await held

    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        held = asyncio.run_coroutine_threadsafe(setup(), loop).result(TIMEOUT)
        assert type(held) is asyncio.tasks._PyTask
        # the pure-Python all_tasks(): 3.14 keeps it beside a C one; before 3.14 it is the only one
        py_all_tasks = getattr(asyncio.tasks, "_py_all_tasks", asyncio.tasks.all_tasks)
        names = {t.get_name() for t in py_all_tasks(loop)}
        assert "NORMAL" in names
    finally:
        asyncio.run_coroutine_threadsafe(teardown(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


# ------------------------------------------------------------- call_soon_threadsafe handles


def _run_with_thread(loop: asyncio.AbstractEventLoop, target: Callable[[], None]) -> None:
    """Run ``target`` in a thread while the loop runs; re-raise what it raised; stop the loop
    when it is done."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            loop.call_soon_threadsafe(loop.stop)

    thread = threading.Thread(target=body)
    thread.start()
    try:
        loop.run_forever()
    finally:
        thread.join(TIMEOUT)
    if errors:
        raise errors[0]


@pytest.mark.skipif(not PY314, reason="3.14's call_soon_threadsafe handle holds a lock")
@pytest.mark.parametrize("method", ["cancel", "cancelled"])
def test_threadsafe_handle_waits_for_its_running_callback(loop_impl: Any, method: str) -> None:
    loop = loop_impl()
    started = threading.Event()
    finished = threading.Event()
    ran: list[str] = []

    def callback() -> None:
        started.set()
        # Not a wait for an event: the callback keeps running a while, so that the other
        # thread's cancel()/cancelled() comes while it runs.
        time.sleep(0.2)
        ran.append("hello")
        finished.set()

    def other_thread() -> None:
        handle = loop.call_soon_threadsafe(callback)
        assert started.wait(TIMEOUT)
        result = getattr(handle, method)()  # blocks until the callback returned
        assert finished.is_set()
        if method == "cancelled":
            assert result is False  # it ran: the cancel check came after

    try:
        _run_with_thread(loop, other_thread)
    finally:
        loop.close()
    assert ran == ["hello"]


@pytest.mark.skipif(not PY314, reason="3.14's call_soon_threadsafe handle holds a lock")
def test_threadsafe_handle_cancelled_by_its_own_callback(loop_impl: Any) -> None:
    loop = loop_impl()
    handle_fut: concurrent.futures.Future = concurrent.futures.Future()
    ran: list[bool] = []

    def callback() -> None:
        handle = handle_fut.result(TIMEOUT)
        handle.cancel()  # same thread, lock held: no deadlock, no effect on this run
        ran.append(handle.cancelled())

    def other_thread() -> None:
        handle = loop.call_soon_threadsafe(callback)
        handle_fut.set_result(handle)

    try:
        _run_with_thread(loop, other_thread)
    finally:
        loop.close()
    assert ran == [True]


def test_threadsafe_handle_cancelled_from_another_thread_before_it_runs(loop_impl: Any) -> None:
    loop = loop_impl()
    gate = threading.Event()
    ran: list[str] = []

    def other_thread() -> None:
        handle = loop.call_soon_threadsafe(ran.append, "never")
        handle.cancel()
        assert handle.cancelled()
        gate.set()

    loop.call_soon(gate.wait, TIMEOUT)  # the loop is busy until the handle is cancelled
    try:
        _run_with_thread(loop, other_thread)
    finally:
        loop.close()
    assert ran == []
