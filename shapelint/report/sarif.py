"""SARIF 2.1.0 for code scanning (``shapelint check --format sarif``).

- ``ruleId`` is the rule code; each rule's descriptor carries its summary,
  its doc (markdown, the ``shapelint explain`` text) and its origin.
- A result sits on the exporter's source line when the model recorded one
  (``file.py:LINE`` in the diagnostic's ``source``), with the .onnx file as a
  related location; otherwise on the .onnx file.  The ONNX node is the
  result's logical location.
- ``partialFingerprints["shapelintFingerprint/v1"]`` hashes rule, path, node
  and tensor (never the message, whose numbers change between exports), plus
  an ordinal when one file holds several such findings.
- A file that could not be checked is a ``toolExecutionNotification`` (and
  makes ``executionSuccessful`` false).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

from .. import __version__
from ..diagnostics import Diagnostic, RunReport

__all__ = ["SCHEMA_URI", "artifact_uri", "render_sarif", "source_line", "to_sarif"]

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "shapelintFingerprint/v1"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_SOURCE_LINE = re.compile(r"([\w./\\-]+\.py):(\d+)")


def source_line(source: str | None) -> tuple[str, int] | None:
    """The ``file.py:LINE`` an exporter recorded, if ``source`` holds one.

    >>> source_line("encoder.lstm (model.py:42)")
    ('model.py', 42)
    >>> source_line("encoder.lstm") is None
    True
    """
    if not source:
        return None
    m = _SOURCE_LINE.search(source)
    if m is None or int(m.group(2)) < 1:
        return None
    return m.group(1), int(m.group(2))


def artifact_uri(path: str) -> str:
    """A relative posix URI for paths under the working directory, else a ``file://`` URI.

    >>> artifact_uri("models/a b.onnx")
    'models/a%20b.onnx'
    """
    from urllib.parse import quote

    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            return p.resolve().as_uri()
    return quote(os.fsencode(p.as_posix()))  # bytes: a name that is not UTF-8 (b"\xff" as "\udcff") is %FF


def _fingerprint(d: Diagnostic, path: str, ordinal: int) -> str:
    from ..baseline import fingerprint

    base = fingerprint(d.rule, d.node, d.tensor, path)
    return base if ordinal == 0 else f"{base}:{ordinal}"


def _descriptor(cls) -> dict:
    doc = cls.doc()
    summary = cls.summary() or cls.slug
    out = {
        "id": cls.code,
        "name": cls.slug,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": _what_it_does(doc) or summary},
        "help": {"text": doc or summary, "markdown": doc or summary},
        "defaultConfiguration": {"level": _LEVEL[cls.severity.value]},
        "properties": {"origin": cls.origin or "unknown", "tags": ["shapes", "onnx"]},
    }
    uri = getattr(cls, "help_uri", None)
    if uri:
        out["helpUri"] = uri
    return out


def _what_it_does(doc: str) -> str:
    """The "## What it does" section of a ruff-style doc, as one paragraph."""
    m = re.search(r"^## What it does\s*\n(.*?)(?=^## |\Z)", doc, flags=re.DOTALL | re.MULTILINE)
    return " ".join(m.group(1).split()) if m else ""


def _message(d: Diagnostic) -> str:
    text = f"{d.node}: {d.message}" if d.node else d.message
    if d.fix:
        text += f"\nFix: {d.fix}"
    if d.source:
        text += f"\nSource: {d.source}"
    return text


def _location(uri: str, line: int | None = None, message: str | None = None) -> dict:
    phys = {"artifactLocation": {"uri": uri}}
    if line is not None:
        phys["region"] = {"startLine": line}
    loc = {"physicalLocation": phys}
    if message:
        loc["message"] = {"text": message}
    return loc


def to_sarif(report: RunReport, rules=()) -> dict:
    """The SARIF log of ``report``; ``rules`` are the rule classes that ran (for descriptors)."""
    descriptors = {cls.code: _descriptor(cls) for cls in rules}
    for d in report.diagnostics:  # a finding of a rule not passed in still gets a descriptor
        descriptors.setdefault(
            d.rule,
            {"id": d.rule, "name": d.name, "shortDescription": {"text": d.name}, "properties": {"origin": "unknown"}},
        )
    order = sorted(descriptors)
    index = {code: i for i, code in enumerate(order)}
    results, notifications = [], []
    for f in report.files:
        uri = artifact_uri(f.path)
        if f.error is not None:
            notifications.append(
                {"level": "error", "message": {"text": f"{f.path}: could not be checked: {f.error}"}, "locations": [_location(uri)]}
            )
            continue
        seen: Counter = Counter()
        for d in f.diagnostics:
            k = (d.rule, d.node, d.tensor)
            ordinal = seen[k]
            seen[k] += 1
            where = source_line(d.source)
            result = {
                "ruleId": d.rule,
                "ruleIndex": index[d.rule],
                "level": _LEVEL[d.severity],
                "message": {"text": _message(d)},
                "partialFingerprints": {FINGERPRINT_KEY: _fingerprint(d, uri, ordinal)},
                "properties": {k: v for k, v in (("model", f.path), ("node", d.node), ("opType", d.op_type), ("tensor", d.tensor)) if v},
            }
            if where is not None:
                result["locations"] = [_location(where[0].replace(os.sep, "/"), where[1])]
                result["relatedLocations"] = [{"id": 0, **_location(uri, message=f"the model: {f.path}")}]
            else:
                result["locations"] = [_location(uri)]
            if d.node:
                result["locations"][0]["logicalLocations"] = [
                    {"name": d.node, "fullyQualifiedName": f"{f.path}::{d.node}", "kind": "function"}
                ]
            results.append(result)
    invocation = {"executionSuccessful": not notifications}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "shapelint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": [descriptors[c] for c in order],
                    }
                },
                "invocations": [invocation],
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render_sarif(report: RunReport, rules=()) -> str:
    return json.dumps(to_sarif(report, rules), indent=2)
