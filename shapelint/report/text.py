"""Terminal output: one finding a line, then its fix and source.

``path: node [CODE] severity: message``, with ``[*]`` after the code when
``shapelint fix`` can repair the finding (the rule attached a
machine-applicable edit).  The severity is written out, so piped output
without colour says as much as the terminal's.

>>> from shapelint.diagnostics import Diagnostic, FileReport, RunReport
>>> d = Diagnostic("SL205", "batchwise-recurrent-layout", "warning", "/lstm", "LSTM", None, "batch-first input", fixable=True)
>>> print(render_text(RunReport([FileReport("m.onnx", [d])]), quiet=True))
m.onnx: /lstm [SL205] [*] warning: batch-first input
"""

from __future__ import annotations

import click

from ..diagnostics import RunReport

__all__ = ["render_text"]

_COLORS = {"error": "red", "warning": "yellow", "info": "blue"}


def render_text(report: RunReport, color: bool = False, show_fix: bool = True, quiet: bool = False,
                verbose: int = 0) -> str:
    style = click.style if color else (lambda s, **_: s)
    lines = []
    for f in report.files:
        if f.error is not None:
            lines.append(f"{style(f.path, bold=True)}: {style('error', fg='red', bold=True)}: {f.error}")
            continue
        for d in f.diagnostics:
            where = d.node or (f"<{d.op_type}>" if d.op_type else "<graph>")
            code = style(f"[{d.rule}]", fg=_COLORS[d.severity], bold=True)
            fixable = f" {style('[*]', fg='cyan')}" if getattr(d, "fixable", False) else ""
            severity = style(f"{d.severity}:", fg=_COLORS[d.severity])
            lines.append(f"{style(f.path, bold=True)}: {where} {code}{fixable} {severity} {d.message}")
            if show_fix and d.fix:
                lines.append(f"    fix: {d.fix}")
            if d.source:
                lines.append(f"    source: {d.source}")
            if d.runtime:
                lines.append(f"    runtime: {d.runtime['summary']}")
        if f.runtime:
            lines.extend(runtime_lines(f, style))
        if verbose:
            for sk in f.skipped:
                lines.append(f"{style(f.path, bold=True)}: undecided [{sk['rule']}] {sk['reason']}")
    if not quiet:
        s = report.summary()
        parts = [f"{s['errors']} error{'s' if s['errors'] != 1 else ''}", f"{s['warnings']} warning{'s' if s['warnings'] != 1 else ''}"]
        if s["infos"]:
            parts.append(f"{s['infos']} info")
        tail = f", {s['failed_files']} could not be checked" if s["failed_files"] else ""
        if s.get("undecided_recurrences"):
            parts.append(f"sequence rules undecided on {s['undecided_recurrences']} of {s['recurrences']} "
                         f"recurrence{'s' if s['recurrences'] != 1 else ''}" + ("" if verbose else " (-v says why)"))
        summary = f"Checked {s['files']} file{'s' if s['files'] != 1 else ''}{tail}: {', '.join(parts)} ({report.seconds:.2f}s)"
        lines.append(style(summary, bold=True))
    return "\n".join(lines)


def runtime_lines(f, style=lambda s, **_: s) -> list[str]:
    """What ``verify`` ran: one line per file, then its notes."""
    rt = f.runtime
    runs = []
    for b in rt["bindings"]:
        label = ", ".join(f"{k}={v}" for k, v in b["dims"].items()) or "static shapes"
        label = f"({label})" if len(b["dims"]) > 1 else label
        if b["status"] == "ok":
            runs.append(f"{label} runs")
        elif b.get("node"):
            runs.append(f"{label} fails in {b['node']!r}")
        else:
            runs.append(f"{label} {b['status']}")
    head = f"onnxruntime ({rt['provider']}, weights {rt['weights'].split(':')[0]})"
    body = "; ".join(runs) if runs else "not run"
    tail = f"{rt['tensors_compared']} tensor shapes compared, {rt['disagreements']} disagree ({rt['seconds']:.2f}s)"
    out = [f"{style(f.path, bold=True)}: {head}: {body}; {tail}"]
    for b in rt["bindings"]:  # why verify chose each size
        if b.get("why"):
            label = ", ".join(f"{k}={v}" for k, v in b["dims"].items()) or "static shapes"
            out.append(f"    binding {label}: {'; '.join(b['why'])}")
    out.extend(f"    note: {n}" for n in rt.get("notes", ()))
    return out
