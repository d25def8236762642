"""GitHub Actions workflow commands (``shapelint check --format github``).

One ``::error``/``::warning``/``::notice`` line per finding, on the .onnx
file (a path that exists in the repository; the exporter's source line goes
in the message), titled with the rule code.  Escaping follows
``@actions/core``: ``%``, CR and LF in the message; additionally ``:`` and
``,`` in properties.

>>> from shapelint.diagnostics import Diagnostic, FileReport, RunReport
>>> d = Diagnostic("SL103", "matmul-inner-dim", "error", "/fc/MatMul", "MatMul", None, "8 != 4, 100%")
>>> print(render_github(RunReport([FileReport("m,1.onnx", [d])])))
::error file=m%2C1.onnx,title=SL103::/fc/MatMul: 8 != 4, 100%25
"""

from __future__ import annotations

from ..diagnostics import RunReport

__all__ = ["escape_data", "escape_property", "render_github"]

_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, props: dict[str, str], message: str) -> str:
    head = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items())
    return f"::{kind} {head}::{escape_data(message)}"


def render_github(report: RunReport) -> str:
    lines = []
    for f in report.files:
        path = f.path.replace("\\", "/")
        if f.error is not None:
            lines.append(_command("error", {"file": path, "title": "shapelint"}, f"could not be checked: {f.error}"))
            continue
        for d in f.diagnostics:
            text = f"{d.node}: {d.message}" if d.node else d.message
            if d.fix:
                text += f"\nfix: {d.fix}"
            if d.source:
                text += f"\nsource: {d.source}"
            lines.append(_command(_COMMAND[d.severity], {"file": path, "title": d.rule}, text))
    return "\n".join(lines)
