"""GitHub Actions workflow commands (``shapelint check --format github``).

One ``::error``/``::warning``/``::notice`` line per finding, titled with the
rule code.  Paths are relative to the repository root (as SARIF's, see
:mod:`shapelint.report.locations`); the annotation sits on the exporter's
source line when that file exists in the repository (the model's path then
goes in the message), otherwise on the .onnx file (the recorded source goes
in the message).  Escaping follows
``@actions/core``: ``%``, CR and LF in the message; additionally ``:`` and
``,`` in properties.

>>> from shapelint.diagnostics import Diagnostic, FileReport, RunReport
>>> d = Diagnostic("SL103", "matmul-inner-dim", "error", "/fc/MatMul", "MatMul", None, "8 != 4, 100%")
>>> print(render_github(RunReport([FileReport("m,1.onnx", [d])])))
::error file=m%2C1.onnx,title=SL103::/fc/MatMul: 8 != 4, 100%25
"""

from __future__ import annotations

from ..diagnostics import RunReport
from .locations import Locator, repository_root

__all__ = ["escape_data", "escape_property", "render_github"]

_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}


def escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(s: str) -> str:
    return escape_data(s).replace(":", "%3A").replace(",", "%2C")


def _command(kind: str, props: dict[str, str], message: str) -> str:
    head = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items())
    return f"::{kind} {head}::{escape_data(message)}"


def render_github(report: RunReport, root=None) -> str:
    locator = Locator(root if root is not None else repository_root([f.path for f in report.files[:1]]))
    lines = []
    for f in report.files:
        path = locator.relative(f.path) or f.path.replace("\\", "/")
        if f.error is not None:
            lines.append(_command("error", {"file": path, "title": "shapelint"}, f"could not be checked: {f.error}"))
            continue
        for d in f.diagnostics:
            text = f"{d.node}: {d.message}" if d.node else d.message
            if d.fix:
                text += f"\nfix: {d.fix}"
            where = locator.source_in_repo(d.source, f.path)
            if where is not None:
                text += f"\nmodel: {path}"
                props = {"file": where[0], "line": where[1], "title": d.rule}
            else:
                if d.source:
                    text += f"\nsource: {d.source}"
                props = {"file": path, "title": d.rule}
            lines.append(_command(_COMMAND[d.severity], props, text))
    return "\n".join(lines)
