"""Which CPython test_asyncio modules and classes run, and how each is adapted.

Every module of ``test.test_asyncio`` must appear in ``MODULES`` (the run fails on an
unclassified module, so a new Python version cannot silently add or drop coverage):

``RUN``      in scope: runs on the loop under test; its failures are accounted for in
             ``expected_failures.txt``.
``LATER``    black-box, but needs a tideloop feature that is not written yet (the issue is
             in the reason).  Not run by default; ``run.py --include-later`` runs them,
             which is how to check an issue before moving the module to ``RUN``.
``EXCLUDED`` out of scope for good (white-box, loop-free, or another platform).

A module's entry may carry a version spec (see ``_expected.version_matches``); a module
that does not exist in the running Python is simply absent.

``CLASS_EXCLUSIONS`` drops whole classes of an in-scope module, by design, with a reason.
Single tests that cannot pass on another loop (white-box) go in expected_failures.txt
instead, so that they show up as stale if they start passing.

``ADAPTERS`` rewrite a module after import and before its tests are collected, to point
its loop hooks at the loop under test.  They assert what they replace, so a change in a
new CPython fails loudly instead of running the stock loop.
"""

from __future__ import annotations

import unittest

RUN, LATER, EXCLUDED = "run", "later", "excluded"

# name: (status, version spec or None, one-line reason)
MODULES: dict[str, tuple[str, str | None, str]] = {
    # --- in scope -------------------------------------------------------------------
    "test_tasks": (
        RUN,
        None,
        "Task/gather/wait/shield on the loop; TestLoop fake-clock "
        "tests are skipped at run time (white-box)",
    ),
    "test_futures": (
        RUN,
        None,
        "Future callbacks, exception handler and debug tracebacks "
        "go through the loop; TestLoop fake-clock tests skipped at run time",
    ),
    "test_futures2": (RUN, None, "IsolatedAsyncioTestCase"),
    "test_locks": (RUN, None, "IsolatedAsyncioTestCase"),
    "test_queues": (RUN, None, "IsolatedAsyncioTestCase"),
    "test_timeouts": (RUN, None, "IsolatedAsyncioTestCase"),
    "test_taskgroups": (RUN, None, "IsolatedAsyncioTestCase"),
    "test_runners": (
        RUN,
        None,
        "asyncio.run/Runner; its mocked BaseEventLoop factory is "
        "replaced by the loop under test (adapter)",
    ),
    "test_waitfor": (RUN, None, "IsolatedAsyncioTestCase"),
    "test_pep492": (
        RUN,
        None,
        "its mocked BaseEventLoop is replaced by the loop under test (adapter)",
    ),
    "test_context": (RUN, None, "asyncio.run"),
    "test_threads": (RUN, None, "to_thread via the loop's default executor"),
    "test_sock_lowlevel": (
        RUN,
        None,
        "loop.sock_* API; the per-selector classes become one "
        "class on the loop under test (adapter)",
    ),
    "test_events": (
        RUN,
        None,
        "the loop API; the per-selector classes become one class per "
        "mixin on the loop under test (adapter)",
    ),
    "test_eager_task_factory": (
        RUN,
        "3.12+",
        "task factories and eager_start through loop.create_task",
    ),
    "test_staggered": (RUN, "3.13+", "IsolatedAsyncioTestCase"),
    "test_free_threading": (RUN, "3.14+", "tasks of the loop under test seen from other threads"),
    "test_graph": (
        RUN,
        "3.14+",
        "asyncio.capture_call_graph / print_call_graph over tasks of the loop under test",
    ),
    # --- black-box, waiting for a tideloop feature -----------------------------------
    "test_buffered_proto": (RUN, None, "BufferedProtocol over tideloop's TCP transport"),
    "test_server": (RUN, None, "Server objects, start_serving, unix server cleanup"),
    "test_sendfile": (RUN, None, "loop.sendfile / sock_sendfile"),
    "test_server_context": (
        RUN,
        "3.15+",
        "servers' protocol callbacks in the context of the server's creation (plain and TLS)",
    ),
    "test_streams": (
        RUN,
        None,
        "asyncio's streams over tideloop's transports (test_streams_tideloop runs tideloop's own)",
    ),
    "test_streams_tideloop": (
        RUN,
        None,
        "derived: test_streams with tideloop.streams in place of asyncio's streams (DERIVED)",
    ),
    "test_ssl": (RUN, None, "TLS over tideloop's transports (issue 5)"),
    "test_sslproto": (
        RUN,
        None,
        "start_tls (issue 5); its SslProtoHandshakeTests test asyncio.sslproto's own class",
    ),
    "test_subprocess": (
        RUN,
        None,
        "subprocess_exec/shell and asyncio.create_subprocess_*, once per child watcher class "
        "(tideloop watches children itself; a SIGCHLD watcher set explicitly is honoured)",
    ),
    # --- out of scope -----------------------------------------------------------------
    "test_base_events": (
        EXCLUDED,
        None,
        "white-box: BaseEventLoop internals (_run_once, _selector, _ready) with mocks and TestLoop",
    ),
    "test_selector_events": (
        EXCLUDED,
        None,
        "white-box: BaseSelectorEventLoop and "
        "_Selector*Transport internals with mocked selector/sockets",
    ),
    "test_proactor_events": (
        EXCLUDED,
        None,
        "white-box: Windows proactor loop/transport internals with a mocked proactor",
    ),
    "test_unix_events": (
        RUN,
        None,
        "black-box parts: Unix socket servers/connections, sock_sendfile, TestFunctional, "
        "TestFork; white-box classes excluded below",
    ),
    "test_windows_events": (EXCLUDED, None, "Windows only (ProactorEventLoop, IOCP)"),
    "test_windows_utils": (EXCLUDED, None, "Windows only (asyncio.windows_utils)"),
    "test_tools": (
        EXCLUDED,
        "3.14+",
        "loop-free: formats already-captured task data for python -m asyncio ps/pstree "
        "(tests/unit/test_py314_ecosystem.py runs ps/pstree on a tideloop program)",
    ),
    "test_protocols": (RUN, None, "asyncio's Protocol base classes (used on any loop)"),
    "test_transports": (RUN, None, "asyncio's transport base classes (tideloop's facades derive)"),
}

# In-scope modules allowed to run tests without creating a loop under test (run.py fails a
# module that does, because it means the substitution missed it): name -> reason.  Empty:
# every in-scope module creates loops.
LOOP_FREE: dict[str, str] = {
    "test_protocols": "tests asyncio's Protocol classes' default methods; makes no loop",
    "test_transports": "tests asyncio's transport base classes with mocks; makes no loop",
}

# Derived modules: a CPython test module run again with something of tideloop's swapped in.
# name -> (base module, adapter run after the base module's own adapter).  A derived
# module's test ids carry its own name, so its expected failures are its own.
DERIVED: dict[str, tuple[str, object]] = {}

# Not test modules.
NON_TEST = {"__init__", "__main__", "echo", "echo2", "echo3", "functional", "utils"}

# (pattern over "module.Class", version spec or None, reason)
CLASS_EXCLUSIONS: list[tuple[str, str | None, str]] = [
    # Loop-free classes: they create no loop at all (measured: 0 loops on every version),
    # so their passes would only inflate the count.  Whole classes that need TestLoop's
    # fake clock do not exist in the in-scope modules; single tests that do are skipped at
    # run time (the "wb" column).
    (
        "test_events.TimerTests",
        None,
        "loop-free: asyncio.TimerHandle objects with a mock loop (tideloop has its own)",
    ),
    (
        "test_tasks.PyIntrospectionTests",
        None,
        "loop-free: asyncio's task registry (_register_task/_enter_task) with mock loops",
    ),
    (
        "test_tasks.CIntrospectionTests",
        None,
        "loop-free: asyncio's task registry (_register_task/_enter_task) with mock loops",
    ),
    (
        "test_tasks.GenericTaskTests",
        None,
        "loop-free: Task subclasses Future; the _asyncio C module imports",
    ),
    (
        "test_unix_events.SelectorEventLoopSignalTests",
        None,
        "white-box: patches asyncio.unix_events.signal under _UnixSelectorEventLoop",
    ),
    (
        "test_unix_events.UnixReadPipeTransportTests",
        None,
        "white-box: builds asyncio's _UnixReadPipeTransport on a mock loop and pipe",
    ),
    (
        "test_unix_events.UnixWritePipeTransportTests",
        None,
        "white-box: builds asyncio's _UnixWritePipeTransport on a mock loop and pipe",
    ),
    (
        "test_unix_events.*ChildWatcher*",
        None,
        "white-box: asyncio's child watcher classes with mocked os.waitpid / TestLoop",
    ),
    (
        "test_unix_events.PolicyTests",
        None,
        "asyncio's own default policy and its child watcher (not the loop under test)",
    ),
]


def prepare_interpreter() -> None:
    """Make ``test.support`` importable where the interpreter's packaging broke it.

    Debian's PyPy test suite ships ``_testcapi.py``, which builds ``_testcapimodule.c`` at
    import, but not that file: the import raises FileNotFoundError where ``test.support``
    only catches ImportError.  Marking the module absent (``sys.modules[name] = None``) makes
    the import raise ImportError, which is what an interpreter without it does.  Called
    before anything imports ``test.support`` (run.py and each worker).
    """
    import sys

    if sys.implementation.name != "pypy" or "_testcapi" in sys.modules:
        return
    try:
        import _testcapi  # noqa: F401
    except ImportError:
        pass
    except Exception:
        sys.modules["_testcapi"] = None


# --------------------------------------------------------------------------- adapters


class AdapterError(RuntimeError):
    pass


def _need(mod, *names):
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        raise AdapterError(
            f"{mod.__name__}: expected {missing} (CPython changed; update "
            f"tests/conformance/_scope.py)"
        )
    return [getattr(mod, n) for n in names]


def _drop_concrete(mod, names, hook):
    """Delete the stock per-selector TestCase classes that define ``hook``."""
    dropped = []
    for name in names:
        cls = getattr(mod, name, None)
        if cls is None:
            continue
        if not (isinstance(cls, type) and issubclass(cls, unittest.TestCase) and hook in vars(cls)):
            raise AdapterError(f"{mod.__name__}.{name} is not a TestCase defining {hook}")
        delattr(mod, name)
        dropped.append(name)
    if not dropped:
        raise AdapterError(f"{mod.__name__}: none of {names} found")
    leftovers = [
        n
        for n, v in vars(mod).items()
        if isinstance(v, type)
        and issubclass(v, unittest.TestCase)
        and hook in vars(v)
        and v.__module__ == mod.__name__
    ]
    if leftovers:
        raise AdapterError(f"{mod.__name__}: unexpected classes with {hook}: {leftovers}")
    return dropped


def _generate(mod, name, bases, namespace):
    cls = type(name, tuple(bases), dict(namespace, __module__=mod.__name__, __qualname__=name))
    setattr(mod, name, cls)
    return cls


STOCK_SELECTOR_CLASSES = [
    "SelectEventLoopTests",
    "EPollEventLoopTests",
    "PollEventLoopTests",
    "KqueueEventLoopTests",
    "ProactorEventLoopTests",
]


def _adapt_test_events(mod, sub):
    from test.test_asyncio import utils as test_utils

    EventLoopTestsMixin, SubprocessTestsMixin = _need(
        mod, "EventLoopTestsMixin", "SubprocessTestsMixin"
    )
    _drop_concrete(mod, STOCK_SELECTOR_CLASSES, "create_event_loop")
    # The stock classes mix in UnixEventLoopTestsMixin, which attaches a (deprecated)
    # asyncio SafeChildWatcher to the loop; a loop's subprocess support must not need it,
    # so the generated classes leave it out (asyncio then uses the policy's default).
    _generate(
        mod,
        "EventLoopTests",
        [EventLoopTestsMixin, test_utils.TestCase],
        {"create_event_loop": lambda self: sub.counted_factory()},
    )
    # SubprocessTestsMixin relies on EventLoopTestsMixin's setUp/tearDown (which use
    # super(), so they cannot be borrowed): inherit both and hide the loop tests, which
    # EventLoopTests runs.
    hidden = {
        n: None
        for n in dir(EventLoopTestsMixin)
        if n.startswith("test") and not hasattr(SubprocessTestsMixin, n)
    }
    _generate(
        mod,
        "SubprocessTests",
        [SubprocessTestsMixin, EventLoopTestsMixin, test_utils.TestCase],
        dict(hidden, create_event_loop=lambda self: sub.counted_factory()),
    )


def _adapt_test_sock_lowlevel(mod, sub):
    from test.test_asyncio import utils as test_utils

    (BaseSockTestsMixin,) = _need(mod, "BaseSockTestsMixin")
    _drop_concrete(mod, STOCK_SELECTOR_CLASSES, "create_event_loop")
    _generate(
        mod,
        "SockTests",
        [BaseSockTestsMixin, test_utils.TestCase],
        {"create_event_loop": lambda self: sub.counted_factory()},
    )


def _adapt_test_runners(mod, sub):
    """BaseTest.new_loop builds a BaseEventLoop with mocked _selector/_process_events and
    a fake shutdown_asyncgens that sets ``loop.shutdown_ag_run``; tearDown asserts it.
    Use a real loop under test whose shutdown_asyncgens records the call and then does
    the real work."""
    (BaseTest,) = _need(mod, "BaseTest")
    if "new_loop" not in vars(BaseTest):
        raise AdapterError("test_runners.BaseTest.new_loop not found")

    async def shutdown_asyncgens(self):
        self.shutdown_ag_run = True
        await sub.IMPL.loop_class.shutdown_asyncgens(self)

    factory = sub.make_loop_subclass(
        "RunnersTestLoop", {"shutdown_ag_run": False, "shutdown_asyncgens": shutdown_asyncgens}
    )
    BaseTest.new_loop = lambda self: factory()


def _adapt_test_pep492(mod, sub):
    """BaseTest.setUp builds a BaseEventLoop with a mocked selector; use the loop under
    test instead."""
    from test.test_asyncio import utils as test_utils

    (BaseTest,) = _need(mod, "BaseTest")
    if "setUp" not in vars(BaseTest):
        raise AdapterError("test_pep492.BaseTest.setUp not found")

    def setUp(self):
        test_utils.TestCase.setUp(self)
        self.loop = sub.counted_factory()
        self.set_event_loop(self.loop)

    BaseTest.setUp = setUp


def _adapt_new_loop_hooks(*class_names):
    """functional.FunctionalTestCaseMixin classes: new_loop() returns the loop under
    test.  Used by LATER modules."""

    def adapt(mod, sub):
        for name in class_names:
            cls = getattr(mod, name, None)
            if cls is not None:
                cls.new_loop = lambda self: sub.counted_factory()

    return adapt


def _adapt_test_sendfile(mod, sub):
    from test.test_asyncio import utils as test_utils

    (SendfileTestsBase,) = _need(mod, "SendfileTestsBase")
    _drop_concrete(mod, STOCK_SELECTOR_CLASSES, "create_event_loop")
    _generate(
        mod,
        "SendfileTests",
        [SendfileTestsBase, test_utils.TestCase],
        {"create_event_loop": lambda self: sub.counted_factory()},
    )


def _adapt_test_unix_events(mod, sub):
    """SelectorEventLoopUnixSocketTests builds ``asyncio.SelectorEventLoop()`` in setUp;
    build the loop under test instead. (The sendfile class uses asyncio.new_event_loop(),
    which is substituted everywhere.)"""
    from test.test_asyncio import utils as test_utils

    for name in ("SelectorEventLoopUnixSocketTests",):
        (cls,) = _need(mod, name)
        if "SelectorEventLoop()" not in _source_of(cls.setUp):
            raise AdapterError(f"test_unix_events.{name}.setUp changed; update _scope.py")

        def set_up(self, _base=test_utils.TestCase.setUp):
            _base(self)
            self.loop = sub.counted_factory()
            self.set_event_loop(self.loop)

        cls.setUp = set_up


def _source_of(func) -> str:
    import inspect

    return inspect.getsource(func)


STREAM_NAMES = (
    "StreamReader",
    "StreamWriter",
    "StreamReaderProtocol",
    "open_connection",
    "start_server",
    "open_unix_connection",
    "start_unix_server",
)


def _adapt_tideloop_streams(mod, sub):
    """test_streams with tideloop's streams: the module's global ``asyncio`` becomes a copy of
    asyncio whose stream names (and ``asyncio.streams``' ones) are tideloop.streams'; the
    test classes are renamed into the derived module so their ids are distinct."""
    import asyncio
    import types

    from tideloop import streams as tide_streams

    if getattr(mod, "asyncio", None) is not asyncio:
        raise AdapterError("test_streams no longer imports asyncio as a module global")
    proxy = types.ModuleType("asyncio")
    proxy.__dict__.update(asyncio.__dict__)
    sproxy = types.ModuleType("asyncio.streams")
    sproxy.__dict__.update(asyncio.streams.__dict__)
    for name in (*STREAM_NAMES, "FlowControlMixin"):
        setattr(sproxy, name, getattr(tide_streams, name))
        if name in STREAM_NAMES:
            setattr(proxy, name, getattr(tide_streams, name))
    proxy.streams = sproxy
    mod.asyncio = proxy
    for value in list(vars(mod).values()):
        if isinstance(value, type) and issubclass(value, unittest.TestCase):
            if value.__module__ == mod.__name__:
                value.__module__ = "test.test_asyncio.test_streams_tideloop"


def _adapt_test_subprocess(mod, sub):
    """3.14+: ``SubprocessThreadedWatcherTests`` forces asyncio's thread watcher by patching
    ``unix_events.can_use_pidfd``, which tideloop does not consult; make it force tideloop's
    thread fallback too (``tideloop._net.children.USE_PIDFD``), or the class would
    test pidfd watching a second time."""
    cls = getattr(mod, "SubprocessThreadedWatcherTests", None)
    if cls is None or "can_use_pidfd" not in _source_of(cls.setUp):
        return  # 3.11-3.13: the watcher classes are asyncio's child watchers
    if sub.IMPL.name != "tideloop":
        return
    from tideloop._net import children as tide_subprocess

    set_up, tear_down = cls.setUp, cls.tearDown

    def setUp(self):
        self._tideloop_use_pidfd = tide_subprocess.USE_PIDFD
        tide_subprocess.USE_PIDFD = False
        set_up(self)

    def tearDown(self):
        try:
            return tear_down(self)
        finally:
            tide_subprocess.USE_PIDFD = self._tideloop_use_pidfd

    cls.setUp, cls.tearDown = setUp, tearDown


DERIVED["test_streams_tideloop"] = ("test_streams", _adapt_tideloop_streams)

ADAPTERS = {
    "test_unix_events": _adapt_test_unix_events,
    "test_events": _adapt_test_events,
    "test_sock_lowlevel": _adapt_test_sock_lowlevel,
    "test_runners": _adapt_test_runners,
    "test_pep492": _adapt_test_pep492,
    # LATER modules (run only with --include-later)
    "test_buffered_proto": _adapt_new_loop_hooks("BufferedProtocolSelectorTests"),
    "test_server": _adapt_new_loop_hooks("SelectorStartServerTests"),
    "test_sslproto": _adapt_new_loop_hooks("SelectorStartTLSTests"),
    "test_sendfile": _adapt_test_sendfile,
    "test_subprocess": _adapt_test_subprocess,
}
