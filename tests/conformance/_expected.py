"""The expected-failures file: grammar, matching, and --write-expected.

One entry per line::

    <pattern>  [<tags>]  # <reason>

``pattern``  a test id ``module.Class.test_method`` (module without ``test.test_asyncio.``),
             ``fnmatch`` wildcards allowed: ``test_events.EventLoopTests.test_create_server*``.
             A class-level error (``setUpClass``) has the id ``module.Class.setUpClass``.
``tags``     optional, comma separated, all of which must hold for the entry to apply:
             versions  ``3.12``, ``3.12+``, ``3.11-3.12``, ``<3.13`` (several: any of them)
             loop      ``tideloop`` (the default), ``asyncio`` (control run only),
                       ``both`` (fails on the stock loop too)
             build     ``compiled`` / ``pure`` (tideloop's build mode)
             impl      ``cpython`` / ``pypy`` (the interpreter; default: any)
             ``skip``  do not run it at all (it hangs or kills the worker); counted as excluded
             ``flaky`` may pass or fail; never reported as stale
``reason``   required.  Conventions: ``transports: issue 3``, ``white-box: ...``,
             ``fails on asyncio too: ...``, ``BUG: ...`` (a tideloop bug, temporary),
             ``TODO`` (written by --write-expected; a human must replace it).

Entries that match a test which passes are "stale" (reported; fatal with --strict-stale).
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import re
import sys

LOOPS = {"tideloop", "asyncio", "both"}
BUILDS = {"compiled", "pure"}
IMPLS = {"cpython", "pypy"}
IMPL = sys.implementation.name
FLAGS = {"skip", "flaky"}

_LINE = re.compile(r"^(?P<pattern>\S+)(?:\s+\[(?P<tags>[^\]]*)\])?\s*(?:#(?P<reason>.*))?$")
_VERSION = re.compile(r"^(?:(?P<lt><)?(?P<a>\d+\.\d+)(?:(?P<plus>\+)|-(?P<b>\d+\.\d+))?)$")


def _ver(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def version_matches(spec: str | None, version: tuple[int, int]) -> bool:
    """``spec`` is a comma-separated list of ``3.12``, ``3.12+``, ``3.11-3.12``, ``<3.13``."""
    if not spec:
        return True
    for token in (t.strip() for t in spec.split(",")):
        m = _VERSION.match(token)
        if not m:
            raise ValueError(f"bad version spec {token!r}")
        a = _ver(m["a"])
        if m["lt"]:
            ok = version < a
        elif m["plus"]:
            ok = version >= a
        elif m["b"]:
            ok = a <= version <= _ver(m["b"])
        else:
            ok = version == a
        if ok:
            return True
    return False


@dataclasses.dataclass
class Entry:
    pattern: str
    versions: list[str]
    loop: str
    builds: set[str]
    impls: set[str]
    flags: set[str]
    reason: str
    lineno: int
    used: int = 0

    def applies(self, version, loop, compiled) -> bool:
        if self.versions and not version_matches(",".join(self.versions), version):
            return False
        if self.loop != "both" and self.loop != loop:
            return False
        if self.impls and IMPL not in self.impls:
            return False
        if self.builds and loop == "tideloop" and compiled is not None:
            if ("compiled" if compiled else "pure") not in self.builds:
                return False
        return True

    def matches(self, test_id: str) -> bool:
        return fnmatch.fnmatchcase(test_id, self.pattern)

    def tags_text(self) -> str:
        tags = list(self.versions)
        if self.loop != "tideloop":
            tags.append(self.loop)
        tags += sorted(self.builds) + sorted(self.impls) + sorted(self.flags)
        return f"[{', '.join(tags)}]" if tags else ""


class ExpectedFileError(ValueError):
    pass


def parse(path) -> list[Entry]:
    entries, errors = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if not m:
                errors.append(f"{path}:{lineno}: cannot parse: {line}")
                continue
            reason = (m["reason"] or "").strip()
            if not reason:
                errors.append(f"{path}:{lineno}: every entry needs a reason after '#': {line}")
                continue
            versions, loop, builds, impls, flags = [], "tideloop", set(), set(), set()
            for tag in filter(None, (t.strip() for t in (m["tags"] or "").split(","))):
                if tag in LOOPS:
                    loop = tag
                elif tag in BUILDS:
                    builds.add(tag)
                elif tag in IMPLS:
                    impls.add(tag)
                elif tag in FLAGS:
                    flags.add(tag)
                else:
                    try:
                        version_matches(tag, (3, 0))
                    except ValueError:
                        errors.append(f"{path}:{lineno}: unknown tag {tag!r}")
                        continue
                    versions.append(tag)
            entries.append(
                Entry(m["pattern"], versions, loop, builds, impls, flags, reason, lineno)
            )
    if errors:
        raise ExpectedFileError("\n".join(errors))
    return entries


def applicable(entries, version, loop, compiled=None) -> list[Entry]:
    return [e for e in entries if e.applies(version, loop, compiled)]


def find(entries, test_id: str) -> Entry | None:
    for e in entries:
        if e.matches(test_id):
            return e
    return None


def write_failures(path, failures, version, loop) -> int:
    """Add entries for ``failures`` ([(test_id, first_line)]), reason TODO.

    An existing TODO entry with the same pattern and loop gets this version added to its
    tags instead of a new line."""
    vtag = f"{version[0]}.{version[1]}"
    loop_tag = "both" if loop == "asyncio" else "tideloop"
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    entries = parse(path)
    added = 0
    new_lines = []
    for test_id, first_line in failures:
        for e in entries:
            if e.pattern == test_id and e.loop == loop_tag and e.reason.startswith("TODO"):
                if e.versions and not version_matches(",".join(e.versions), version):
                    e.versions.append(vtag)
                    lines[e.lineno - 1] = _format(e.pattern, e.tags_text(), e.reason)
                break
        else:
            reason = "TODO " + (first_line or "").replace("#", "").strip()[:120]
            tags = [vtag] + ([loop_tag] if loop_tag != "tideloop" else [])
            tags += ["pypy"] if IMPL == "pypy" else []
            new_lines.append(_format(test_id, f"[{', '.join(tags)}]", reason))
            added += 1
    if new_lines:
        stamp = datetime.date.today().isoformat()
        lines += [
            "",
            f"# --- added by run.py --write-expected on {stamp} "
            f"(python {vtag}, --loop {loop}); replace every TODO with a reason ---",
        ]
        lines += new_lines
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return added


def _format(pattern, tags, reason):
    left = f"{pattern}  {tags}".rstrip() if tags else pattern
    return f"{left}  # {reason}"
