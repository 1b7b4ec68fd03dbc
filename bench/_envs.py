"""Interpreter environments for side-by-side benchmarks, cached under bench/.build/.

An import finds `.so` before `.py`, so tideloop's build mode is fixed at install time and
the compiled and pure builds cannot share a site-packages. Each benchmark row therefore runs
in the venv that matches it:

    base      uvloop only                        rows: asyncio, uvloop
    compiled  TIDELOOP_REQUIRE_EXTENSIONS=1 pip install <repo>     row: tide-c
    pure      TIDELOOP_NO_EXTENSIONS=1 pip install <repo>          row: tide-py

The venvs live in bench/.build/<cache_tag>-<hash of the interpreter path>/ so that
`--python` can point at other interpreters without clobbering each other; the snapshot and
stage copies of the tree live there too, so runs on two interpreters at once do not clobber
each other's build either.

PyPy (`--python .../pypy3.11`): tideloop is pure Python there (setup.py installs pure by
itself), so the compiled env is not applicable and its rows are n/a with that reason (not a
failed build); uvloop is not even tried (no wheel for PyPy's ABI, and packages with compiled
parts do not build for it here), so the base env holds nothing but asyncio. An interpreter
without ensurepip (Debian strips it from its CPython and PyPy builds) gets its venvs made
with `--without-pip`, and pip then installs itself from its own wheel, fetched once into
bench/.build/pip-wheel/ by the running script's pip (or python3's). A tideloop venv is
rebuilt from scratch (new venv, fresh copy of the tree) whenever the hash of the files that
go into the build changes (taken from one snapshot per run, see snapshot()); a failed build
is cached too, keyed by the same hash, so a broken tree costs one attempt, not one per run
(`rebuild=True` retries).

Each build gets its own fresh copy of the tree (bench/.build/stage-<mode>/) because pip
builds in-tree: building pure next to a leftover build/ of the compiled one could ship the
compiled .so files in the "pure" wheel, and building in the work tree would litter src/
with generated .c files.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BUILD = BENCH / ".build"

# Top-level entries of the repo that never go into the wheel; leaving them out of the copy
# keeps edits to tests and docs from triggering a rebuild.
NOT_BUILD_INPUTS = {".git", ".ci", "bench", "tests", "docs", "examples"}
JUNK = shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.so", "*.c", "*.html", "build",
                              "dist", "*.egg-info", ".venv*", ".pytest_cache", ".ruff_cache",
                              ".mypy_cache")

MODES = {
    # mode: (environment for pip, expected tideloop.COMPILED)
    "compiled": ({"TIDELOOP_REQUIRE_EXTENSIONS": "1"}, True),
    "pure": ({"TIDELOOP_NO_EXTENSIONS": "1"}, False),
}


@dataclasses.dataclass
class Env:
    name: str
    python: str | None  # the venv's interpreter, None when unusable
    reason: str = ""  # why unusable
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.python is not None


def log(msg: str) -> None:
    print(f"[envs] {msg}", file=sys.stderr, flush=True)


def _run(cmd, *, env=None, logfile: Path | None = None, timeout=1200) -> tuple[int, str]:
    full_env = dict(os.environ)
    for k in list(full_env):
        # A TIDELOOP_* switch left in the caller's shell must not leak into the other mode.
        if k.startswith("TIDELOOP_") or k in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
                                              "PIP_REQUIRE_VIRTUALENV"):
            del full_env[k]
    full_env.update(env or {})
    try:
        p = subprocess.run([str(c) for c in cmd], env=full_env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") + "\n[timed out]", -1
    if logfile is not None:
        with open(logfile, "a") as f:
            f.write(f"$ {' '.join(map(str, cmd))}\n{out}\n[exit {rc}]\n")
    return rc, out


def _tail(text: str, n: int = 3) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-300:]


@functools.cache
def interpreter(python: str) -> dict:
    """Facts about `python`: cache_tag, implementation ("cpython", "pypy"), version (e.g.
    "3.11.17"), label (e.g. "PyPy 8.0.1 (Python 3.11.17)"), ensurepip (importable?)."""
    code = ("import importlib.util as u, json, platform, sys; i = sys.implementation; "
            "pypy = getattr(sys, 'pypy_version_info', None); "
            "print(json.dumps({'cache_tag': i.cache_tag, 'implementation': i.name, "
            "'version': platform.python_version(), "
            "'pypy': '.'.join(map(str, pypy[:3])) if pypy else None, "
            "'ensurepip': u.find_spec('ensurepip') is not None}))")
    rc, out = _run([python, "-c", code])
    if rc != 0:
        raise SystemExit(f"cannot run --python {python}: {_tail(out)}")
    info = json.loads(out.strip().splitlines()[-1])
    info["label"] = (f"PyPy {info['pypy']} (Python {info['version']})" if info["pypy"]
                     else f"Python {info['version']}")
    return info


def is_pypy(python: str) -> bool:
    return interpreter(python)["implementation"] == "pypy"


def interpreter_tag(python: str) -> str:
    real = os.path.realpath(shutil.which(python) or python)
    return f"{interpreter(python)['cache_tag']}-{hashlib.sha1(real.encode()).hexdigest()[:8]}"


# Why a row cannot exist at all on PyPy (not a failure: nothing to build).
PYPY_NO_COMPILED = "not applicable on PyPy: tideloop is pure Python there (setup.py)"
PYPY_NO_UVLOOP = ("not applicable on PyPy: uvloop has no wheel for this PyPy's ABI and "
                  "packages with compiled parts do not build for it")


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _pip_wheel(logfile: Path) -> tuple[Path | None, str]:
    """pip's own wheel in bench/.build/pip-wheel/, fetched by the first working pip among
    the running script's interpreter's and python3's; -> (wheel, "") or (None, why)."""
    where = BUILD / "pip-wheel"
    found = sorted(where.glob("pip-*.whl"))
    if found:
        return found[-1], ""
    out = "no pip to download pip's wheel with"
    for other in (sys.executable, "python3", "/usr/bin/python3"):
        if _run([other, "-m", "pip", "--version"], timeout=60)[0] != 0:
            continue
        rc, out = _run([other, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "-d", where, "pip"], logfile=logfile)
        found = sorted(where.glob("pip-*.whl"))
        if rc == 0 and found:
            return found[-1], ""
    return None, f"cannot fetch pip's wheel: {_tail(out, 1)}"


def _make_venv(python: str, venv: Path, logfile: Path) -> str | None:
    """(Re)create venv with pip in it; return an error string or None.

    Without ensurepip: `-m venv --without-pip`, then pip installs itself from its wheel
    (`python pip-X.whl/pip install pip-X.whl`, the documented bootstrap)."""
    if venv.exists():
        shutil.rmtree(venv)
    if interpreter(python)["ensurepip"]:
        rc, out = _run([python, "-m", "venv", venv], logfile=logfile)
        return None if rc == 0 else f"venv creation failed: {_tail(out)}"
    rc, out = _run([python, "-m", "venv", "--without-pip", venv], logfile=logfile)
    if rc != 0:
        return f"venv creation failed: {_tail(out)}"
    wheel, why = _pip_wheel(logfile)
    if wheel is None:
        return why
    rc, out = _run([_venv_python(venv), wheel / "pip", "install", "--quiet", wheel],
                   logfile=logfile)
    return None if rc == 0 else f"pip bootstrap from {wheel.name} failed: {_tail(out)}"


def _build_inputs() -> list[Path]:
    """Files that go into `pip install <repo>`, relative to REPO, sorted."""
    files = []
    for top in sorted(REPO.iterdir()):
        if top.name in NOT_BUILD_INPUTS or top.name.startswith(".venv"):
            continue
        if top.is_file():
            if not top.name.endswith((".pyc", ".so")):
                files.append(top.relative_to(REPO))
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            ignored = JUNK(dirpath, dirnames + filenames)
            dirnames[:] = sorted(d for d in dirnames if d not in ignored)
            for fn in sorted(filenames):
                if fn not in ignored:
                    files.append((Path(dirpath) / fn).relative_to(REPO))
    return files


def snapshot(python: str | None = None) -> tuple[Path, str]:
    """Copy the build inputs once to bench/.build/<interpreter>/snapshot/ (no python:
    bench/.build/snapshot/) and return (it, its hash).

    Both modes build from copies of this one snapshot, so the compiled and the pure rows of a
    run always come from the same source even while someone edits the tree meanwhile.
    """
    snap = (BUILD / interpreter_tag(python) if python else BUILD) / "snapshot"
    if snap.exists():
        shutil.rmtree(snap)
    snap.mkdir(parents=True)
    h = hashlib.sha256()
    for rel in _build_inputs():
        data = (REPO / rel).read_bytes()
        h.update(str(rel).encode() + b"\0" + data + b"\0")
        dst = snap / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        shutil.copymode(REPO / rel, dst)
    return snap, h.hexdigest()[:16]


def _stage(snap: Path, mode: str) -> Path:
    stage = snap.parent / f"stage-{mode}"
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(snap, stage)
    return stage


def _probe_tideloop(py: Path) -> tuple[dict | None, str]:
    code = ("import json, tideloop; l = tideloop.new_event_loop(); l.close(); "
            "print(json.dumps({'compiled': tideloop.COMPILED, 'file': tideloop.__file__, "
            "'version': getattr(tideloop, '__version__', '?')}))")
    rc, out = _run([py, "-I", "-c", code], timeout=60)
    if rc != 0:
        return None, f"tideloop not usable: {_tail(out, 1)}"
    return json.loads(out.strip().splitlines()[-1]), ""


def base_env(python: str, rebuild: bool = False) -> Env:
    """Venv with uvloop, for the asyncio and uvloop rows (on PyPy: without uvloop)."""
    root = BUILD / interpreter_tag(python)
    root.mkdir(parents=True, exist_ok=True)
    venv, stamp, logfile = root / "base", root / "base.stamp.json", root / "base.log"
    py = _venv_python(venv)
    if not rebuild and stamp.exists() and py.exists():
        info = json.loads(stamp.read_text())
        return Env("base", str(py), info.get("reason", ""), info)
    log(f"creating {venv.relative_to(REPO)} (log: {logfile.relative_to(REPO)})")
    logfile.write_text("")
    err = _make_venv(python, venv, logfile)
    if err:
        return Env("base", None, err)
    info = {"uvloop": None}
    if is_pypy(python):
        info["reason"] = PYPY_NO_UVLOOP
        stamp.write_text(json.dumps(info))
        return Env("base", str(py), info["reason"], info)
    rc, out = _run([py, "-m", "pip", "install", "uvloop"], logfile=logfile)
    if rc == 0:
        rc, out = _run([py, "-I", "-c", "import uvloop; print(uvloop.__version__)"])
        info["uvloop"] = out.strip() if rc == 0 else None
    if info["uvloop"] is None:
        # asyncio still works without it; the uvloop row says why it is missing.
        info["reason"] = f"uvloop install failed: {_tail(out, 1)}"
    stamp.write_text(json.dumps(info))
    return Env("base", str(py), info.get("reason", ""), info)


def tideloop_env(python: str, mode: str, snap: tuple[Path, str] | None,
                 rebuild: bool = False) -> Env:
    """Venv with tideloop installed in `mode` ("compiled" or "pure"), built if stale.

    snap is snapshot()'s result, taken once per run (None: take one now). On PyPy the
    compiled mode is not applicable: an unusable Env with that reason, nothing built.
    """
    pip_env, want_compiled = MODES[mode]
    if want_compiled and is_pypy(python):
        return Env(mode, None, PYPY_NO_COMPILED, {"not_applicable": True})
    if not (REPO / "src" / "tideloop" / "__init__.py").exists():
        return Env(mode, None, "src/tideloop/__init__.py does not exist yet")
    if not any((REPO / f).exists() for f in ("setup.py", "pyproject.toml")):
        return Env(mode, None, "no setup.py/pyproject.toml yet")
    root = BUILD / interpreter_tag(python)
    root.mkdir(parents=True, exist_ok=True)
    venv, stamp = root / mode, root / f"{mode}.stamp.json"
    logfile = root / f"{mode}.log"
    py = _venv_python(venv)
    snap_dir, digest = snap or snapshot(python)
    if not rebuild and stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("hash") == digest:
            if info.get("reason"):
                return Env(mode, None, info["reason"] + " (cached for this source hash; "
                           f"--rebuild retries; log {logfile.relative_to(REPO)})", info)
            if py.exists():
                return Env(mode, str(py), "", info)

    log(f"building tideloop {mode} for source {digest} (log: {logfile.relative_to(REPO)})")
    logfile.write_text("")
    info = {"hash": digest}

    def fail(reason: str) -> Env:
        info["reason"] = reason
        stamp.write_text(json.dumps(info))
        log(f"{mode}: {reason}")
        return Env(mode, None, f"{reason} (log {logfile.relative_to(REPO)})", info)

    err = _make_venv(python, venv, logfile)
    if err:
        return fail(err)
    stage = _stage(snap_dir, mode)
    rc, out = _run([py, "-m", "pip", "install", "-v", stage], env=pip_env, logfile=logfile)
    if rc != 0:
        return fail(f"pip install failed: {_tail(out, 2)}")
    probe, err = _probe_tideloop(py)
    if probe is None:
        return fail(err)
    if probe["compiled"] is not want_compiled:
        return fail(f"installed with {' '.join(pip_env)} but tideloop.COMPILED is "
                    f"{probe['compiled']!r}")
    info.update(probe)
    stamp.write_text(json.dumps(info))
    log(f"{mode}: ok, tideloop {probe['version']} COMPILED={probe['compiled']}")
    return Env(mode, str(py), "", info)


# --- helpers for benchmark drivers (echo.py) ----------------------------------------------


def prepare(python: str, modes, rebuild: bool = False) -> tuple[dict[str, Env], str | None]:
    """The Envs for `modes` (a subset of "base", "compiled", "pure") and the source hash
    the tideloop ones were built from (None when none was needed or src/ is missing)."""
    envs: dict[str, Env] = {}
    if "base" in modes:
        envs["base"] = base_env(python, rebuild)
    snap = None
    for mode in ("compiled", "pure"):
        if mode in modes:
            if snap is None and (REPO / "src" / "tideloop" / "__init__.py").exists():
                snap = snapshot(python)
            envs[mode] = tideloop_env(python, mode, snap, rebuild)
    return envs, snap[1] if snap else None


def ensure_packages(env: Env, packages: dict[str, str]) -> str:
    """pip install into env whatever of {import name: pip name} does not import yet.

    Returns "" when all import afterwards, else the reason. A tideloop venv is made anew on
    every rebuild, so this runs again after one (pip's wheel cache keeps that quick)."""
    if not env.ok:
        return env.reason
    probe = "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in %r))"
    if _run([env.python, "-I", "-c", probe % list(packages)], timeout=60)[0] == 0:
        return ""
    logfile = Path(env.python).parents[2] / f"{env.name}.log"
    log(f"{env.name}: pip install {' '.join(packages.values())}")
    rc, out = _run([env.python, "-m", "pip", "install", *packages.values()], logfile=logfile)
    return "" if rc == 0 else f"pip install {' '.join(packages.values())} failed: {_tail(out, 1)}"
