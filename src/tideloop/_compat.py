"""One home for the small facts every layer asks about the running Python and asyncio.

A leaf module: it imports only the standard library and has no ``.pxd``, so it stays Python
in both builds. A compiled module that wants a flag as a C ``bint`` declares it in its own
``.pxd`` (``cdef bint _PY314``) and imports it here (``from .._compat import PY314 as
_PY314``): Cython assigns the imported object to the C global once, at import.

``_NATIVE`` (is *this* module compiled?) is not here on purpose: only the module itself can
tell, from its own ``__file__``.
"""

from __future__ import annotations

import logging
import sys
from asyncio import base_events as _base_events

#: 3.11 (and older, unsupported): what changed in 3.12 is not there yet.
PY311 = sys.version_info < (3, 12)
PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
#: 3.13.3 began passing create_task's extra keywords to the task factory (3.13.4 settled which).
PY3133 = sys.version_info >= (3, 13, 3)
PY314 = sys.version_info >= (3, 14)


def logger() -> logging.Logger:
    """asyncio's logger, ``asyncio.base_events.logger``, looked up at each call.

    Not cached: CPython's tests patch ``asyncio.base_events.logger`` and expect the loop's
    messages on the mock. (``_transports/tls.py`` logs through ``asyncio.log.logger``, as
    asyncio's sslproto does; it is the same logger unless a test patches one of them.)
    """
    log: logging.Logger = vars(_base_events)["logger"]
    return log
