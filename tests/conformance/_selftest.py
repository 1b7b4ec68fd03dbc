"""Tests of the harness itself (``run.py --selftest``): a hang, a crash, subtests.

run.py runs this module in a worker with a short time limit and checks that each test
is reported as ``EXPECTED`` says, and that the tests after a hang or a crash still run.
"""

import asyncio
import os
import time
import unittest

EXPECTED = {
    "_selftest.Harness.test_1_pass": "pass",
    "_selftest.Harness.test_2_hang": "error",  # TIMEOUT, with a traceback
    "_selftest.Harness.test_3_after_hang": "pass",
    "_selftest.Harness.test_4_crash": "error",  # CRASH (SIGABRT)
    "_selftest.Harness.test_5_after_crash": "pass",
    "_selftest.Harness.test_6_subtest_fails": "fail",
    "_selftest.Harness.test_7_skip": "skip",
    "_selftest.Harness.test_8_loop_hang": "error",  # TIMEOUT inside the loop under test
}


class Harness(unittest.TestCase):
    def test_1_pass(self):
        asyncio.run(asyncio.sleep(0))

    def test_2_hang(self):
        time.sleep(3600)

    def test_3_after_hang(self):
        pass

    def test_4_crash(self):
        os.abort()

    def test_5_after_crash(self):
        pass

    def test_6_subtest_fails(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)

    def test_7_skip(self):
        self.skipTest("skipped on purpose")

    def test_8_loop_hang(self):
        async def forever():
            await asyncio.get_running_loop().create_future()

        asyncio.run(forever())
