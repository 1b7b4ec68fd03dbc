"""``python _tidestreams.py SCRIPT ARGS...``: ``python -m tideloop SCRIPT ARGS...`` with
tideloop's streams in place of asyncio's.

asyncio.open_connection, start_server, open_unix_connection, start_unix_server,
StreamReader and StreamWriter (and the same names in asyncio.streams) become tideloop's,
so a program written for asyncio's streams runs unchanged on tideloop's. The four
functions are wrapped to record that they were called: if the program ends without calling
any of them, a line on stderr says so (the seed tests require an empty stderr, so a
substitution that silently missed fails them).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import runpy
import sys
from typing import Any

import tideloop

FUNCTIONS = ("open_connection", "start_server", "open_unix_connection", "start_unix_server")
CLASSES = ("StreamReader", "StreamWriter")
called: set[str] = set()


def _recording(name: str) -> Any:
    target = getattr(tideloop, name)

    @functools.wraps(target)
    def call(*args: Any, **kwargs: Any) -> Any:
        called.add(name)
        return target(*args, **kwargs)

    return call


for _name in FUNCTIONS:
    setattr(asyncio, _name, _recording(_name))
    setattr(asyncio.streams, _name, getattr(asyncio, _name))
for _name in CLASSES:
    setattr(asyncio, _name, getattr(tideloop, _name))
    setattr(asyncio.streams, _name, getattr(tideloop, _name))


@atexit.register
def _report() -> None:
    if not called:
        print("_tidestreams: the program called none of tideloop's stream functions",
              file=sys.stderr)


sys.argv = ["tideloop", *sys.argv[1:]]
runpy.run_module("tideloop", run_name="__main__", alter_sys=True)
