"""The JSON contract of ``shapelint check --format json`` (see DESIGN.md)."""

from __future__ import annotations

import json

from .. import __version__
from ..diagnostics import RunReport

__all__ = ["render_json", "to_json"]


def to_json(report: RunReport) -> dict:
    s = report.summary()
    return {
        "tool": {"name": "shapelint", "version": __version__},
        "files": [f.to_json() for f in report.files],
        "summary": {"files": s["files"], "errors": s["errors"], "warnings": s["warnings"], "infos": s["infos"],
                    "failed_files": s["failed_files"], "recurrences": s["recurrences"],
                    "undecided_recurrences": s["undecided_recurrences"]},
    }


def render_json(report: RunReport) -> str:
    return json.dumps(to_json(report), indent=2)
