"""SARIF 2.1.0 for code scanning (``shapelint check --format sarif``).

- ``ruleId`` is the rule code; each rule's descriptor carries its summary,
  its doc (markdown, the ``shapelint explain`` text) and its origin.
- Artifact URIs are relative to the repository root (``uriBaseId``
  ``%SRCROOT%``, declared in ``originalUriBaseIds``): the git top level of
  the first model, else the configuration file's folder, else the working
  directory (:mod:`shapelint.report.locations`).  A file outside the root
  gets an absolute ``file://`` URI.
- A result sits on the exporter's source line (``file.py:LINE`` in the
  diagnostic's ``source``) when that file exists inside the root, with the
  .onnx file as a related location; otherwise on the .onnx file, with the
  recorded source line as a related location.  The ONNX node is the
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
from .locations import Locator, repository_root, source_line

__all__ = ["SCHEMA_URI", "artifact_uri", "render_sarif", "source_line", "to_sarif"]

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT_KEY = "shapelintFingerprint/v1"
SRCROOT = "%SRCROOT%"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def _quote(posix: str) -> str:
    from urllib.parse import quote

    return quote(os.fsencode(posix))  # bytes: a name that is not UTF-8 (b"\xff" as "\udcff") is %FF


def artifact_uri(path: str, locator: Locator | None = None) -> str:
    """The URI of ``path``: relative to the root when inside it (to be read against ``%SRCROOT%``), else ``file://``.

    >>> artifact_uri("models/a b.onnx", Locator(os.getcwd()))
    'models/a%20b.onnx'
    """
    locator = locator or Locator(os.getcwd())
    rel = locator.relative(path)
    if rel is not None:
        return _quote(rel)
    p = Path(os.path.abspath(path))
    try:
        return p.resolve().as_uri()
    except (OSError, ValueError, RuntimeError):
        return _quote(p.as_posix())


def _artifact(path: str, locator: Locator) -> dict:
    uri = artifact_uri(path, locator)
    return {"uri": uri, "uriBaseId": SRCROOT} if locator.relative(path) is not None else {"uri": uri}


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


def _location(artifact: dict, line: int | None = None, message: str | None = None) -> dict:
    phys = {"artifactLocation": artifact}
    if line is not None:
        phys["region"] = {"startLine": line}
    loc = {"physicalLocation": phys}
    if message:
        loc["message"] = {"text": message}
    return loc


def _recorded_source(file: str) -> dict:
    """The artifact of a source file the exporter recorded that is not in the repository."""
    file = file.replace("\\", "/")
    if os.path.isabs(file):
        try:
            return {"uri": Path(file).as_uri()}
        except ValueError:
            pass
    return {"uri": _quote(file)}


def to_sarif(report: RunReport, rules=(), root: str | os.PathLike | None = None) -> dict:
    """The SARIF log of ``report``; ``rules`` are the rule classes that ran (for descriptors).

    ``root`` is the repository root the URIs are relative to (default:
    :func:`~shapelint.report.locations.repository_root` of the first file).
    """
    locator = Locator(root if root is not None else repository_root([f.path for f in report.files[:1]]))
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
        model = _artifact(f.path, locator)
        uri = model["uri"]
        if f.error is not None:
            notifications.append(
                {"level": "error", "message": {"text": f"{f.path}: could not be checked: {f.error}"}, "locations": [_location(model)]}
            )
            continue
        seen: Counter = Counter()
        for d in f.diagnostics:
            k = (d.rule, d.node, d.tensor)
            ordinal = seen[k]
            seen[k] += 1
            where = locator.source_in_repo(d.source, f.path)
            recorded = source_line(d.source) if where is None else None
            result = {
                "ruleId": d.rule,
                "ruleIndex": index[d.rule],
                "level": _LEVEL[d.severity],
                "message": {"text": _message(d)},
                "partialFingerprints": {FINGERPRINT_KEY: _fingerprint(d, uri, ordinal)},
                "properties": {k: v for k, v in (("model", f.path), ("node", d.node), ("opType", d.op_type), ("tensor", d.tensor)) if v},
            }
            if where is not None:
                result["locations"] = [_location({"uri": _quote(where[0]), "uriBaseId": SRCROOT}, where[1])]
                result["relatedLocations"] = [{"id": 0, **_location(model, message=f"the model: {f.path}")}]
            else:
                result["locations"] = [_location(model)]
                if recorded is not None:
                    result["relatedLocations"] = [{"id": 0, **_location(
                        _recorded_source(recorded[0]), recorded[1],
                        message=f"the exporter's source line (not in the repository): {recorded[0]}:{recorded[1]}")}]
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
                "originalUriBaseIds": {SRCROOT: {"uri": locator.root.as_uri() + "/"}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def render_sarif(report: RunReport, rules=(), root=None) -> str:
    return json.dumps(to_sarif(report, rules, root=root), indent=2)
