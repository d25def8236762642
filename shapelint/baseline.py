"""Baselines: record today's findings, fail only on new ones.

A baseline is JSON: for each model (its path relative to the baseline
file's folder, so the file can be committed), the findings as
``{rule, node, tensor, count}``, plus a ``fingerprint`` of those three.
Messages are left out on purpose: the numbers in them change when a model
is re-exported, and the finding is still the same one.

>>> from shapelint.diagnostics import Diagnostic, FileReport, RunReport
>>> d = Diagnostic("SL103", "matmul-inner-dim", "error", "/fc/MatMul", "MatMul", "x", "8 vs 4")
>>> run = RunReport([FileReport("m.onnx", [d])])
>>> data = baseline_from(run, base_dir=".")
>>> data["files"]["m.onnx"][0]["count"]
1
>>> filter_report(run, data, base_dir=".").dropped
1
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .diagnostics import Diagnostic, RunReport

__all__ = [
    "BaselineError",
    "BaselineResult",
    "baseline_from",
    "filter_report",
    "fingerprint",
    "read_baseline",
    "write_baseline",
]

logger = logging.getLogger(__name__)

VERSION = 1


class BaselineError(Exception):
    """A baseline file that cannot be read; ``str()`` is one line."""


@dataclass
class BaselineResult:
    """What applying a baseline did."""

    dropped: int = 0  # findings the baseline already held
    stale: int = 0  # baseline entries that no longer occur (fixed since)


def key_of(d: Diagnostic) -> tuple[str, str | None, str | None]:
    return (d.rule, d.node, d.tensor)


def fingerprint(rule: str, node: str | None, tensor: str | None, path: str | None = None) -> str:
    """A short stable hash of what identifies a finding (never its message).

    >>> fingerprint("SL103", "/fc/MatMul", "x") == fingerprint("SL103", "/fc/MatMul", "x")
    True
    """
    parts = [rule, node or "", tensor or ""] + ([path] if path is not None else [])
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def relative_key(path: str, base_dir: str | os.PathLike) -> str:
    """``path`` relative to ``base_dir`` in posix form (absolute when on another drive)."""
    p = Path(path).resolve()
    try:
        return Path(os.path.relpath(p, Path(base_dir).resolve())).as_posix()
    except ValueError:
        return p.as_posix()


def baseline_from(report: RunReport, base_dir: str | os.PathLike) -> dict:
    """The baseline document for ``report``; paths relative to ``base_dir``."""
    files: dict[str, list[dict]] = {}
    for f in report.files:
        if not f.diagnostics:
            continue
        counts = Counter(key_of(d) for d in f.diagnostics)
        entries = [
            {"rule": r, "node": n, "tensor": t, "count": c, "fingerprint": fingerprint(r, n, t)}
            for (r, n, t), c in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or ""))
        ]
        files.setdefault(relative_key(f.path, base_dir), []).extend(entries)
    return {"version": VERSION, "tool": {"name": "shapelint", "version": __version__}, "files": dict(sorted(files.items()))}


def write_baseline(report: RunReport, path: str | os.PathLike, protect=None) -> dict:
    """Write the baseline of ``report`` to ``path`` atomically; returns the document.

    Raises
    ------
    BaselineError
        ``path`` is one of the files in ``protect`` (the checked models), or
        it cannot be written (missing folder, full device); the old baseline
        is then left whole.
    """
    from .safeio import atomic_write

    p = Path(path)
    if protect is not None and p in protect:
        raise BaselineError(f"{p}: is one of the checked models: --write-baseline never overwrites an input; choose another path")
    data = baseline_from(report, p.parent if str(p.parent) else ".")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(p, json.dumps(data, indent=2) + "\n")
    except OSError as exc:
        raise BaselineError(f"{p}: cannot write the baseline: {exc.strerror or exc}") from None
    return data


#: a baseline larger than this is not read (``--baseline /dev/zero`` must not read forever)
MAX_BASELINE_BYTES = 64 * 2**20
#: counts above this are not counts of findings
MAX_COUNT = 2**31


def read_baseline(path: str | os.PathLike) -> dict:
    """Load and check a baseline file: every entry's ``rule``, ``node``, ``tensor`` and ``count``.

    A FIFO, a device or a file over :data:`MAX_BASELINE_BYTES` is refused
    without blocking; JSON nested too deep or with numbers too long to
    convert is an error like any other malformed file.
    """
    from .safeio import UnsafeFile, read_regular

    p = Path(path)
    try:
        data = json.loads(read_regular(p, MAX_BASELINE_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{p}: no such baseline file (write one with --write-baseline)") from None
    except UnsafeFile as exc:
        raise BaselineError(f"{p}: cannot be a baseline: {exc}") from None
    except RecursionError:
        raise BaselineError(f"{p}: not a shapelint baseline: JSON nested too deep") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, a 5,000-digit number
        why = "a number too long to convert" if "integer string conversion" in str(exc) else " ".join(str(exc).split())[:200]
        raise BaselineError(f"{p}: not a shapelint baseline: {why}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), dict):
        raise BaselineError(f"{p}: not a shapelint baseline (version {VERSION} with a 'files' table expected)")
    for name, entries in data["files"].items():
        name = name if name.isprintable() else repr(name)  # one line, whatever the key holds
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "rule" in e for e in entries):
            raise BaselineError(f"{p}: files.{name}: expected a list of {{rule, node, tensor, count}}")
        for k, e in enumerate(entries):
            where = f"{p}: files.{name}[{k}]"
            if not isinstance(e["rule"], str):
                raise BaselineError(f"{where}.rule: expected a rule code (a string), got {type(e['rule']).__name__}")
            for key in ("node", "tensor"):
                if e.get(key) is not None and not isinstance(e[key], str):
                    raise BaselineError(f"{where}.{key}: expected a string or null, got {type(e[key]).__name__}")
            count = e.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
                raise BaselineError(f"{where}.count: expected an integer from 0 to {MAX_COUNT}, got {str(count)[:40]!r}")
    return data


def filter_report(report: RunReport, data: dict, base_dir: str | os.PathLike) -> BaselineResult:
    """Drop, in place, the findings ``data`` already holds (up to each entry's count)."""
    result = BaselineResult()
    seen_files = set()
    for f in report.files:
        name = relative_key(f.path, base_dir)
        entries = data["files"].get(name)
        if not entries:
            continue
        seen_files.add(name)
        budget = Counter()
        for e in entries:
            budget[(e["rule"], e.get("node"), e.get("tensor"))] += int(e.get("count", 1))
        kept = []
        for d in f.diagnostics:
            k = key_of(d)
            if budget[k] > 0:
                budget[k] -= 1
                result.dropped += 1
            else:
                kept.append(d)
        f.diagnostics = kept
        result.stale += sum(budget.values())
    return result
