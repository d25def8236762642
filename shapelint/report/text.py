"""Terminal output: one finding a line, then its fix and source."""

from __future__ import annotations

import click

from ..diagnostics import RunReport

__all__ = ["render_text"]

_COLORS = {"error": "red", "warning": "yellow", "info": "blue"}


def render_text(report: RunReport, color: bool = False, show_fix: bool = True, quiet: bool = False) -> str:
    style = click.style if color else (lambda s, **_: s)
    lines = []
    for f in report.files:
        if f.error is not None:
            lines.append(f"{style(f.path, bold=True)}: {style('error', fg='red', bold=True)}: {f.error}")
            continue
        for d in f.diagnostics:
            where = d.node or (f"<{d.op_type}>" if d.op_type else "<graph>")
            code = style(f"[{d.rule}]", fg=_COLORS[d.severity], bold=True)
            lines.append(f"{style(f.path, bold=True)}: {where} {code} {d.message}")
            if show_fix and d.fix:
                lines.append(f"    fix: {d.fix}")
            if d.source:
                lines.append(f"    source: {d.source}")
    if not quiet:
        s = report.summary()
        parts = [f"{s['errors']} error{'s' if s['errors'] != 1 else ''}", f"{s['warnings']} warning{'s' if s['warnings'] != 1 else ''}"]
        if s["infos"]:
            parts.append(f"{s['infos']} info")
        tail = f", {s['failed_files']} could not be checked" if s["failed_files"] else ""
        summary = f"Checked {s['files']} file{'s' if s['files'] != 1 else ''}{tail}: {', '.join(parts)} ({report.seconds:.2f}s)"
        lines.append(style(summary, bold=True))
    return "\n".join(lines)
