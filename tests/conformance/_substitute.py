"""Put the loop under test in place of asyncio's loop, and count the loops made.

This module is imported by the worker process (``_worker.py``) before any CPython test
module is imported.  ``install(name)`` patches, process-wide:

``asyncio.DefaultEventLoopPolicy``
    replaced by a counting subclass of the implementation's policy class.  asyncio itself
    instantiates this name whenever the policy is reset (``set_event_loop_policy(None)``,
    which nearly every test module does in ``tearDownModule`` and ``test_runners`` does in
    ``tearDown``), and tests that build "the default policy" by name get ours too.
the current policy
    an instance of that class is installed with ``asyncio.set_event_loop_policy``.
``asyncio.new_event_loop`` / ``asyncio.events.new_event_loop``
    ask the current policy, exactly as asyncio does, so a test's own policy is still
    honoured (``test_runners.TestPolicy``); but if the current policy is one of asyncio's
    stock policies, the loop under test is returned instead.  ``asyncio.Runner`` and
    ``asyncio.run`` without ``loop_factory`` (and therefore ``IsolatedAsyncioTestCase`` on
    3.11-3.13) build their loop through ``events.new_event_loop``.
    ``IsolatedAsyncioTestCase.loop_factory`` (3.13) is deliberately left ``None``: with a
    factory, ``Runner`` skips ``set_event_loop``, which would change what the tests see.
    ``_sanity.py`` proves that IsolatedAsyncioTestCase runs on the loop under test anyway.
``asyncio.EventLoop`` (3.14+) and ``unix_events._DefaultEventLoopPolicy``
    3.14 tests build loops with ``asyncio.EventLoop()`` and ``loop_factory=asyncio.EventLoop``,
    and asyncio rebuilds its policy after a reset from the private
    ``_DefaultEventLoopPolicy``: both point at the loop under test (a counted subclass of its
    loop class, and the counting policy class).
``test_utils.TestCase.new_test_loop``
    ``TestLoop`` is a white-box ``BaseEventLoop`` subclass with a fake clock.  Called
    without a time generator the test only needs "a loop" (no timers can fire on the
    frozen clock), so it gets a real loop under test.  Called with a generator the test
    depends on the fake clock: it is skipped at run time with a reason that starts with
    ``WHITEBOX_PREFIX``, and the report counts those skips in their own column.
``test_utils.TestCase.close_loop``
    the stock cleanup reads ``loop._default_executor`` and ``policy.get_child_watcher()``;
    for a loop that is not a ``BaseEventLoop`` it uses the public
    ``shutdown_default_executor()`` instead, and a policy without child watchers is fine.
``asyncio.BaseEventLoop.__init__``
    wrapped to count *stock* loops, so the report shows loops that did not come from the
    implementation under test (e.g. tests that construct ``asyncio.SelectorEventLoop``
    explicitly).

Counting: ``STATS.impl`` counts loops of the implementation under test made through any of
the factories above, ``STATS.stock`` counts every other ``BaseEventLoop`` constructed.
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import os
import sys
import threading
import unittest
import warnings

WHITEBOX_PREFIX = "white-box (harness):"
TESTLOOP_SKIP = (
    WHITEBOX_PREFIX + " uses test_utils.TestLoop's fake clock "
    "(BaseEventLoop subclass; cannot run on another loop)"
)


class _Stats:
    __slots__ = ("impl", "stock")

    def __init__(self) -> None:
        self.impl = 0
        self.stock = 0


STATS = _Stats()
_tls = threading.local()

IMPL = None  # the installed _Impl, for _sanity.py and the adapters
counted_factory = None  # () -> new loop of the implementation under test, counted


class _Impl:
    """What the harness needs to know about a loop implementation."""

    name: str
    loop_class: type
    policy_class: type
    version: str = ""
    compiled: bool | None = None
    origin: str = ""

    def raw_new_event_loop(self):
        raise NotImplementedError

    def is_impl_loop(self, loop) -> bool:
        raise NotImplementedError


class _TideloopImpl(_Impl):
    name = "tideloop"

    def __init__(self) -> None:
        import tideloop  # the installed package, unless --src put src/ first

        self.mod = tideloop
        self.loop_class = tideloop.EventLoop
        self.policy_class = tideloop.EventLoopPolicy
        self.version = getattr(tideloop, "__version__", "?")
        self.compiled = getattr(tideloop, "COMPILED", None)
        self.origin = os.path.dirname(getattr(tideloop, "__file__", "") or "?")
        if issubclass(self.loop_class, asyncio.base_events.BaseEventLoop):
            raise RuntimeError(
                "tideloop.EventLoop subclasses asyncio.BaseEventLoop: the "
                "harness could not tell it from stock loops"
            )

    def raw_new_event_loop(self):
        return self.mod.new_event_loop()

    def is_impl_loop(self, loop) -> bool:
        return isinstance(loop, self.loop_class) and not isinstance(
            loop, asyncio.base_events.BaseEventLoop
        )


class _AsyncioImpl(_Impl):
    """The control: asyncio's own default loop, through the same machinery."""

    name = "asyncio"

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.14
            self.policy_class = asyncio.DefaultEventLoopPolicy
        self.loop_class = self.policy_class._loop_factory
        self.version = sys.version.split()[0]
        self.origin = os.path.dirname(asyncio.__file__)

    def raw_new_event_loop(self):
        return self.loop_class()

    def is_impl_loop(self, loop) -> bool:
        return isinstance(loop, self.loop_class)


def _note(loop) -> None:
    """Count a loop returned by one of the substituted factories."""
    if IMPL.is_impl_loop(loop):
        STATS.impl += 1
    else:  # a factory of ours returned something else: the substitution leaked
        STATS.stock += 1


def _make_counted_factory(impl: _Impl):
    def new_event_loop():
        _tls.depth = getattr(_tls, "depth", 0) + 1
        try:
            loop = impl.raw_new_event_loop()
        finally:
            _tls.depth -= 1
        _note(loop)
        return loop

    new_event_loop.__qualname__ = new_event_loop.__name__ = f"{impl.name}_new_event_loop"
    return new_event_loop


def _make_policy_class(impl: _Impl) -> type:
    base = impl.policy_class

    def new_event_loop(self):
        _tls.depth = getattr(_tls, "depth", 0) + 1
        try:
            loop = base.new_event_loop(self)
        finally:
            _tls.depth -= 1
        _note(loop)
        return loop

    try:
        return type(
            base.__name__,
            (base,),
            {
                "new_event_loop": new_event_loop,
                "__module__": __name__,
                "__doc__": f"{base.__module__}.{base.__qualname__}, counting the loops it makes",
            },
        )
    except TypeError:  # a final (compiled) class: delegate instead of inheriting
        pass

    class DelegatingPolicy(asyncio.AbstractEventLoopPolicy):
        def __init__(self):
            self._inner = base()

        def __getattr__(self, name):
            return getattr(self._inner, name)

        def get_event_loop(self):
            return self._inner.get_event_loop()

        def set_event_loop(self, loop):
            return self._inner.set_event_loop(loop)

        def new_event_loop(self):
            loop = self._inner.new_event_loop()
            _note(loop)
            return loop

    DelegatingPolicy.__name__ = DelegatingPolicy.__qualname__ = base.__name__
    return DelegatingPolicy


def _is_stock_policy(policy) -> bool:
    return type(policy).__module__.split(".")[0] == "asyncio"


def _patch_base_event_loop_init() -> None:
    cls = asyncio.base_events.BaseEventLoop
    orig = cls.__init__

    def __init__(self, *args, **kwargs):
        orig(self, *args, **kwargs)
        if not getattr(_tls, "depth", 0):
            STATS.stock += 1

    __init__.__wrapped__ = orig
    cls.__init__ = __init__


def _patch_test_utils(test_utils) -> None:
    """Adapt CPython's test_asyncio.utils.TestCase (see the module docstring)."""
    from test import support

    TestCase = test_utils.TestCase

    def new_test_loop(self, gen=None):
        if gen is not None:
            raise unittest.SkipTest(TESTLOOP_SKIP)
        loop = counted_factory()
        self.set_event_loop(loop)
        return loop

    missing = object()

    def close_loop(loop):
        executor = getattr(loop, "_default_executor", missing)
        if executor is missing:
            # A loop without asyncio's private attribute: use the public API.  (Only
            # here: the stock path must not run the loop when there is no executor,
            # e.g. test_tasks' test_error_in_call_soon breaks loop.call_soon.)
            if not loop.is_closed():
                loop.run_until_complete(loop.shutdown_default_executor())
        elif executor is not None:
            if not loop.is_closed():
                loop.run_until_complete(loop.shutdown_default_executor())
            else:
                executor.shutdown(wait=True)
        loop.close()

        policy = support.maybe_get_event_loop_policy()
        get_watcher = getattr(policy, "get_child_watcher", None)
        if get_watcher is None:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                watcher = get_watcher()
        except NotImplementedError:
            return
        threaded = getattr(asyncio, "ThreadedChildWatcher", None)
        if threaded is not None and isinstance(watcher, threaded):
            for thread in list(watcher._threads.values()):
                thread.join(timeout=support.SHORT_TIMEOUT)
                if thread.is_alive():
                    raise RuntimeError(f"thread {thread} still alive: subprocess still running")

    TestCase.new_test_loop = new_test_loop
    TestCase.close_loop = staticmethod(close_loop)


def cap_support_timeouts(per_test_timeout: float) -> None:
    """Like regrtest --timeout: the tests' own waits end before the harness kills them."""
    from test import support

    support.LONG_TIMEOUT = min(support.LONG_TIMEOUT, per_test_timeout * 0.75)
    support.SHORT_TIMEOUT = min(support.SHORT_TIMEOUT, per_test_timeout / 4)
    support.LOOPBACK_TIMEOUT = min(support.LOOPBACK_TIMEOUT, support.SHORT_TIMEOUT)


def install(name: str) -> _Impl:
    """Substitute loop implementation ``name`` ('tideloop' or 'asyncio')."""
    global IMPL, counted_factory
    impl = _TideloopImpl() if name == "tideloop" else _AsyncioImpl()
    IMPL = impl
    counted_factory = _make_counted_factory(impl)

    _patch_base_event_loop_init()
    policy_class = _make_policy_class(impl)
    if "DefaultEventLoopPolicy" in vars(asyncio):
        asyncio.DefaultEventLoopPolicy = policy_class
    # else (3.14+) asyncio's module __getattr__ serves the name, with its DeprecationWarning,
    # from unix_events._DefaultEventLoopPolicy, patched below.
    for modname in ("asyncio.unix_events", "asyncio.windows_events"):
        mod = sys.modules.get(modname)
        if mod is None:
            continue
        # 3.11-3.13 export DefaultEventLoopPolicy; 3.14+ rebuild the policy after a reset
        # from the private _DefaultEventLoopPolicy (events._init_event_loop_policy).
        for attr in ("DefaultEventLoopPolicy", "_DefaultEventLoopPolicy"):
            if attr in vars(mod):
                setattr(mod, attr, policy_class)
        # 3.14+: asyncio.EventLoop is the platform's loop class; tests call it and pass it
        # as loop_factory=.  It becomes a counted subclass of the loop under test.
        if "EventLoop" in vars(mod):
            mod.EventLoop = _make_loop_class(impl)
            if getattr(asyncio, "EventLoop", None) is not None:
                asyncio.EventLoop = mod.EventLoop

    def new_event_loop():
        """asyncio.new_event_loop, with the loop under test behind stock policies."""
        policy = asyncio.events.get_event_loop_policy()
        if isinstance(policy, policy_class) or not _is_stock_policy(policy):
            return policy.new_event_loop()
        return counted_factory()

    asyncio.events.new_event_loop = new_event_loop
    asyncio.new_event_loop = new_event_loop
    # 3.14 deprecates the public setter; its tests use the private one.
    setter = getattr(asyncio.events, "_set_event_loop_policy", None)
    if setter is not None:
        setter(policy_class())
    else:
        asyncio.set_event_loop_policy(policy_class())

    from test.test_asyncio import utils as test_utils

    _patch_test_utils(test_utils)
    return impl


def _make_loop_class(impl: _Impl) -> type:
    """``asyncio.EventLoop`` (3.14+) for the run: constructing it makes a counted loop.

    For tideloop, a Python subclass of ``tideloop.EventLoop``; for the asyncio control, a
    subclass of asyncio's own loop class.  Either way ``_note`` counts each instance.
    """
    base = impl.loop_class

    class EventLoop(base):
        def __init__(self, *args, **kwargs):
            _tls.depth = getattr(_tls, "depth", 0) + 1
            try:
                super().__init__(*args, **kwargs)
            finally:
                _tls.depth -= 1
            _note(self)

    EventLoop.__module__ = __name__
    return EventLoop


def make_loop_subclass(name: str, namespace: dict):
    """A Python subclass of the implementation's loop class (for tests that set
    attributes on their loop, which a compiled loop instance does not allow)."""
    cls = type(name, (IMPL.loop_class,), dict(namespace, __module__=__name__))

    def factory():
        _tls.depth = getattr(_tls, "depth", 0) + 1
        try:
            loop = cls()
        finally:
            _tls.depth -= 1
        _note(loop)
        return loop

    return factory
