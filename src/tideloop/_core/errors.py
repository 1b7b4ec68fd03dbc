"""asyncio's exception-handler API: get/set_exception_handler, default_exception_handler and
call_exception_handler, as one mixin of ``tideloop.EventLoop``.

Part of the core: the loop (``_core.loop.Loop``) reports what escapes a callback or an
IOWatcher through ``self.call_exception_handler``, and handles and the layers above do the
same through ``loop.call_exception_handler``. It lives apart from ``Loop`` because none of it is
on the hot path: this module has no ``.pxd`` and stays Python in both builds (a Cython
extension type cannot inherit from a Python class, so ``EventLoop`` joins them).

Semantics are asyncio's ``BaseEventLoop``: the same log text, the same protection layers
around a failing handler, and (3.12+) a custom handler runs in the context of the task,
future or handle the report is about.

Invariant: ``_exception_handler`` is None or a callable (``set_exception_handler`` checks).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from .._compat import PY312 as _PY312
from .._compat import logger as _logger


class ExceptionHandlerMixin:
    """The loop's exception handler; needs ``_current_handle`` (the core's debug-mode field)."""

    _exception_handler: Callable[[Any, dict[str, Any]], object] | None = None
    _current_handle: Any

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        if handler is not None and not callable(handler):
            raise TypeError(f"A callable object or None is expected, got {handler!r}")
        self._exception_handler = handler

    def default_exception_handler(self, context: dict) -> None:
        """Log the context the way asyncio does (message, then sorted keys, then traceback)."""
        message = context.get("message")
        if not message:
            message = "Unhandled exception in event loop"
        exception = context.get("exception")
        exc_info: Any
        if exception is not None:
            exc_info = (type(exception), exception, exception.__traceback__)
        else:
            exc_info = False
        if (
            "source_traceback" not in context
            and self._current_handle is not None
            and self._current_handle._source_traceback
        ):
            context["handle_traceback"] = self._current_handle._source_traceback
        log_lines = [message]
        for key in sorted(context):
            if key in {"message", "exception"}:
                continue
            value = context[key]
            if key == "source_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Object created at (most recent call last):\n"
                value += tb.rstrip()
            elif key == "handle_traceback":
                tb = "".join(traceback.format_list(value))
                value = "Handle created at (most recent call last):\n"
                value += tb.rstrip()
            else:
                value = repr(value)
            log_lines.append(f"{key}: {value}")
        _logger().error("\n".join(log_lines), exc_info=exc_info)

    def call_exception_handler(self, context: dict) -> None:
        """Call the handler set by set_exception_handler(), else the default one."""
        if self._exception_handler is None:
            try:
                self.default_exception_handler(context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException:
                # Second protection layer for unexpected errors
                # in the default implementation, as well as for subclassed
                # event loops with overloaded "default_exception_handler".
                _logger().error("Exception in default exception handler", exc_info=True)
        else:
            try:
                ctx = None
                if _PY312:
                    thing = context.get("task")
                    if thing is None:
                        thing = context.get("future")
                    if thing is None:
                        thing = context.get("handle")
                    if thing is not None and hasattr(thing, "get_context"):
                        ctx = thing.get_context()
                if ctx is not None and hasattr(ctx, "run"):
                    ctx.run(self._exception_handler, self, context)
                else:
                    self._exception_handler(self, context)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                # Exception in the user set custom exception handler.
                try:
                    # Let's try default handler.
                    self.default_exception_handler(
                        {
                            "message": "Unhandled error in exception handler",
                            "exception": exc,
                            "context": context,
                        }
                    )
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException:
                    # Guard 'default_exception_handler' in case it is
                    # overloaded.
                    _logger().error(
                        "Exception in default exception handler "
                        "while handling an unexpected error "
                        "in custom exception handler",
                        exc_info=True,
                    )
