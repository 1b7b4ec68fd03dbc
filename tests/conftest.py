"""Shared pytest configuration for every test under tests/.

The ini settings (filterwarnings = error, xfail_strict, --strict-markers, the 60 s default
timeout of pytest-timeout, the marker list) live in pyproject.toml under
[tool.pytest.ini_options]. This file adds what needs code:

- the ``pure_only(reason=...)`` / ``compiled_only(reason=...)`` markers: a test that cannot
  run in one build mode says so and is *skipped* there, visibly, with its reason (black's
  ``incompatible_with_mypyc``), instead of silently returning;
- the ``loop_impl`` fixture: a loop factory, ``tideloop.new_event_loop`` (id ``tide``) or
  ``asyncio.new_event_loop`` (id ``aio``), so a black-box test is written once and run on
  both, like uvloop's ``Test_UV_*`` / ``Test_AIO_*`` twins;
- a report header saying which tideloop is under test (version, build mode, location);
- ``test_ca``: a test certificate authority, trustme's, or one made with the ``openssl``
  command where trustme cannot be installed (PyPy: no ``cryptography`` wheel).

Tests run against the *installed* tideloop: nothing here touches sys.path (scripts/test
installs the package into a venv and runs pytest with --import-mode=importlib).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

_BUILD_MARKERS = ("pure_only", "compiled_only")


def _tideloop_compiled() -> bool:
    import tideloop

    return bool(tideloop.COMPILED)


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        import tideloop

        mode = "compiled" if tideloop.COMPILED else "pure Python"
        where = os.path.dirname(tideloop.__file__ or "?")
        line = f"tideloop {tideloop.__version__} ({mode}) from {where}"
    except Exception as exc:  # the header must never hide the real error behind its own
        line = f"tideloop: cannot import: {type(exc).__name__}: {exc}"
    expect = os.environ.get("TIDELOOP_EXPECT_COMPILED")
    if expect is not None:
        line += f"; TIDELOOP_EXPECT_COMPILED={expect}"
    return [line]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Skips are added at collection, so the report points at the test, not at this file.
    compiled: bool | None = None  # import tideloop only if some test is marked
    for item in items:
        for name in _BUILD_MARKERS:
            mark = item.get_closest_marker(name)
            if mark is None:
                continue
            reason = mark.kwargs.get("reason")
            if not isinstance(reason, str) or mark.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: use @pytest.mark.{name}(reason='why') "
                    "with a reason= keyword and nothing else"
                )
            if compiled is None:
                compiled = _tideloop_compiled()
            if compiled == (name == "pure_only"):
                item.add_marker(pytest.mark.skip(reason=f"{name}: {reason}"))


def _asyncio_factory() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def _tideloop_factory() -> asyncio.AbstractEventLoop:
    import tideloop

    return tideloop.new_event_loop()


@pytest.fixture(params=["tide", "aio"])
def loop_impl(request: pytest.FixtureRequest) -> Iterator[LoopFactory]:
    """A loop factory: tideloop's (id ``tide``) or asyncio's default (id ``aio``).

    Use it wherever asyncio takes a factory::

        def test_sleep(loop_impl):
            with asyncio.Runner(loop_factory=loop_impl) as runner:
                runner.run(asyncio.sleep(0))

    ``loop_impl.impl`` is ``"tide"`` or ``"aio"``. Every loop made through the factory
    must be closed by the test: one left open is closed here and fails the test at
    teardown (an unclosed loop would otherwise warn in some later test).
    """
    make = _tideloop_factory if request.param == "tide" else _asyncio_factory
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        loop = make()
        made.append(loop)
        return loop

    factory.impl = request.param  # type: ignore[attr-defined]
    factory.__name__ = factory.__qualname__ = f"loop_impl[{request.param}]"
    yield factory

    left_open = [loop for loop in made if not loop.is_closed()]
    if left_open:
        described = repr(left_open)
        for loop in left_open:
            if not loop.is_running():
                loop.close()
        pytest.fail(f"{len(left_open)} event loop(s) left open by the test: {described}")


# --------------------------------------------------------------------------- TLS
class _OpensslCert:
    def __init__(self, cert_pem: str, key_pem: str) -> None:
        self.cert_pem, self.key_pem = cert_pem, key_pem

    def configure_cert(self, ctx: ssl.SSLContext) -> None:
        ctx.load_cert_chain(self.cert_pem, self.key_pem)


class OpensslCA:
    """The part of ``trustme.CA`` the tests use, made with the ``openssl`` command.

    For interpreters with no ``cryptography`` wheel (PyPy here), so that the TLS tests still
    run there instead of skipping. Keys and certificates live in a temporary directory that
    lives until ``close()``; nothing is committed.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="tideloop-ca-")
        d = Path(self._dir.name)
        self.cert_pem, self._key = str(d / "ca.pem"), str(d / "ca.key")
        self._openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", self._key, "-out", self.cert_pem, "-days", "2",
            "-subj", "/O=tideloop tests/CN=tideloop test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self._serial = 1

    @staticmethod
    def _openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def issue_cert(self, *names: str) -> _OpensslCert:
        """A leaf certificate for DNS names and IP addresses, signed by this CA."""
        d = Path(self._dir.name)
        self._serial += 1
        stem = d / f"leaf{self._serial}"
        san = ",".join(
            f"IP:{n}" if n.replace(".", "").isdigit() or ":" in n else f"DNS:{n}" for n in names
        )
        ext = d / f"leaf{self._serial}.ext"
        ext.write_text(
            f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
        )
        self._openssl(
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={names[0]}",
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", f"{stem}.csr", "-CA", self.cert_pem, "-CAkey", self._key,
            "-set_serial", str(self._serial), "-days", "2", "-extfile", str(ext),
            "-out", f"{stem}.pem",
        )  # fmt: skip
        return _OpensslCert(f"{stem}.pem", f"{stem}.key")

    def configure_trust(self, ctx: ssl.SSLContext) -> None:
        ctx.load_verify_locations(cafile=self.cert_pem)

    def close(self) -> None:
        """Remove the directory (left to the GC, it warns "Implicitly cleaning up")."""
        self._dir.cleanup()


def make_test_ca() -> Any:
    """A test certificate authority: ``trustme.CA()``, or ``OpensslCA()`` where trustme
    (which needs ``cryptography``) is not installed."""
    try:
        import trustme
    except ImportError:
        return OpensslCA()
    return trustme.CA()


@pytest.fixture(scope="session")
def test_ca() -> Iterator[Any]:
    """A test CA (see ``make_test_ca``), shared by the session's TLS tests."""
    ca = make_test_ca()
    yield ca
    if isinstance(ca, OpensslCA):
        ca.close()
