"""Proof that the substitution reaches the tests: run first, through the same machinery.

Each test checks that the loop the test code actually runs on is the implementation under
test (``type(asyncio.get_running_loop())``), for every way CPython's tests obtain a loop.
If any of these fails, the rest of the run would not be measuring the loop under test, so
run.py stops.
"""

import asyncio
import sys
import unittest

import _substitute
from test.test_asyncio import utils as test_utils


def _check(case, loop):
    impl = _substitute.IMPL
    case.assertTrue(
        impl.is_impl_loop(loop),
        f"running on {type(loop).__module__}.{type(loop).__qualname__}, not on {impl.name}",
    )
    if impl.name == "tideloop":
        case.assertIsInstance(loop, impl.mod.EventLoop)
        case.assertNotIsInstance(loop, asyncio.BaseEventLoop)


async def _running_loop():
    return asyncio.get_running_loop()


class IsolatedAsyncioCase(unittest.IsolatedAsyncioTestCase):
    async def test_running_loop_type(self):
        loop = asyncio.get_running_loop()
        _check(self, loop)
        # the brief's literal check: the type of the running loop
        if _substitute.IMPL.name == "tideloop":
            self.assertTrue(issubclass(type(loop), _substitute.IMPL.mod.EventLoop))
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 42)
        self.assertEqual(await fut, 42)


class EntryPoints(unittest.TestCase):
    def tearDown(self):
        asyncio.set_event_loop_policy(None)

    def test_asyncio_run(self):
        _check(self, asyncio.run(_running_loop()))

    def test_runner_default(self):
        with asyncio.Runner() as runner:
            _check(self, runner.run(_running_loop()))

    def test_new_event_loop(self):
        loop = asyncio.new_event_loop()
        try:
            _check(self, loop)
            self.assertIs(loop.run_until_complete(_running_loop()), loop)
        finally:
            loop.close()

    def test_policy(self):
        loop = asyncio.get_event_loop_policy().new_event_loop()
        loop.close()
        _check(self, loop)

    def test_policy_reset(self):
        # what tearDownModule / test_runners' tearDown do
        asyncio.set_event_loop_policy(None)
        _check(self, asyncio.run(_running_loop()))
        loop = asyncio.DefaultEventLoopPolicy().new_event_loop()
        loop.close()
        _check(self, loop)

    @unittest.skipIf(sys.version_info < (3, 12), "asyncio.run(loop_factory=) is 3.12+")
    def test_run_loop_factory(self):
        _check(self, asyncio.run(_running_loop(), loop_factory=_substitute.counted_factory))


class TestUtilsCase(test_utils.TestCase):
    def test_new_test_loop_without_clock(self):
        loop = self.new_test_loop()
        _check(self, loop)
        self.assertIs(loop.run_until_complete(_running_loop()), loop)

    def test_new_test_loop_with_fake_clock_is_skipped(self):
        def gen():
            yield

        with self.assertRaises(unittest.SkipTest) as cm:
            self.new_test_loop(gen)
        self.assertTrue(str(cm.exception).startswith(_substitute.WHITEBOX_PREFIX))
