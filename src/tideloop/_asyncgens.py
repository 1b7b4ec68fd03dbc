"""Asynchronous generator hooks: finalization of async generators and shutdown_asyncgens.

Semantics are asyncio's ``BaseEventLoop``: while the loop runs, ``sys.set_asyncgen_hooks``
points at this loop, so each async generator first iterated on it is tracked (weakly), and one
that is garbage-collected unfinished gets ``aclose()`` scheduled as a task on the loop.
``shutdown_asyncgens()`` closes those still alive; one first iterated after it warns.

Not part of the core, which never calls it: ``tideloop.EventLoop`` wraps the core's
``_run_forever_setup`` / ``_run_forever_cleanup`` with ``_install_asyncgen_hooks`` /
``_restore_asyncgen_hooks``.

Invariant: ``_old_agen_hooks`` is not None exactly while this loop's hooks are installed
(from run_forever's setup to its cleanup), and holds the hooks to put back.
"""

from __future__ import annotations

import sys
import warnings
import weakref
from asyncio import tasks as _tasks
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._api import LoopAPI


class AsyncGenMixin:
    """The async-generator methods of ``asyncio.AbstractEventLoop`` and the loop's hooks.

    Needs from the loop: ``is_closed``, ``call_soon_threadsafe``, ``create_task`` and
    ``call_exception_handler``. ``_init_asyncgens()`` must run in ``__init__``.
    """

    _asyncgens: weakref.WeakSet[Any]
    _asyncgens_shutdown_called: bool
    _old_agen_hooks: Any

    def _init_asyncgens(self) -> None:
        self._asyncgens = weakref.WeakSet()
        self._asyncgens_shutdown_called = False
        self._old_agen_hooks = None

    def _install_asyncgen_hooks(self: LoopAPI) -> None:
        """Point the interpreter's async-generator hooks at this loop (run_forever's setup)."""
        self._old_agen_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(
            firstiter=self._asyncgen_firstiter_hook, finalizer=self._asyncgen_finalizer_hook
        )

    def _restore_asyncgen_hooks(self) -> None:
        """Put back the hooks that were there before (run_forever's cleanup)."""
        if self._old_agen_hooks is not None:
            sys.set_asyncgen_hooks(*self._old_agen_hooks)
            self._old_agen_hooks = None

    def _asyncgen_finalizer_hook(self: LoopAPI, agen: Any) -> None:
        self._asyncgens.discard(agen)
        if not self.is_closed():
            self.call_soon_threadsafe(self.create_task, agen.aclose())

    def _asyncgen_firstiter_hook(self, agen: Any) -> None:
        if self._asyncgens_shutdown_called:
            warnings.warn(
                f"asynchronous generator {agen!r} was scheduled after "
                f"loop.shutdown_asyncgens() call",
                ResourceWarning,
                source=self,
            )
        self._asyncgens.add(agen)

    async def shutdown_asyncgens(self: LoopAPI) -> None:
        """Shutdown all active asynchronous generators."""
        self._asyncgens_shutdown_called = True
        if not len(self._asyncgens):
            # If Python version is <3.6 or we don't have any asynchronous
            # generators alive.
            return
        closing_agens = list(self._asyncgens)
        self._asyncgens.clear()
        results = await _tasks.gather(
            *[ag.aclose() for ag in closing_agens], return_exceptions=True
        )
        for result, agen in zip(results, closing_agens, strict=True):
            if isinstance(result, Exception):
                self.call_exception_handler(
                    {
                        "message": f"an error occurred during closing of "
                        f"asynchronous generator {agen!r}",
                        "exception": result,
                        "asyncgen": agen,
                    }
                )
