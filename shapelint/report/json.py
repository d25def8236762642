"""The JSON contract of ``shapelint check --format json`` (the README's "JSON output" section).

``schema_version`` is 1; it changes only when a key is removed or changes
meaning (keys may be added in any version).
"""

from __future__ import annotations

import json

from .. import __version__
from ..diagnostics import RunReport

__all__ = ["SCHEMA_VERSION", "render_json", "to_json"]

SCHEMA_VERSION = 1


def to_json(report: RunReport) -> dict:
    s = report.summary()
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "shapelint", "version": __version__},
        "files": [f.to_json() for f in report.files],
        "summary": {"files": s["files"], "errors": s["errors"], "warnings": s["warnings"], "infos": s["infos"],
                    "failed_files": s["failed_files"], "recurrences": s["recurrences"],
                    "undecided_recurrences": s["undecided_recurrences"]},
    }


def render_json(report: RunReport) -> str:
    return json.dumps(to_json(report), indent=2)
