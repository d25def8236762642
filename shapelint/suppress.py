"""Suppressions that live in the model: the ONNX counterpart of ``# noqa``.

A ``metadata_props`` entry ``shapelint.ignore`` holds codes or prefixes,
separated by commas or spaces (``"SL501"``, ``"SL501, SL204"``, ``"ALL"``):

- on the **model** (``ModelProto.metadata_props``) it drops those findings
  anywhere in the model;
- on a **node** (``NodeProto.metadata_props``, ONNX IR 10 / onnx 1.16 and
  later) it drops the findings anchored on that node.

A suppression that drops nothing, or names a code no installed rule has, is
itself reported as SL009 ``unused-suppression`` (ruff's RUF100), when SL009
is selected.  Codes of rules that did not run (not selected) are not counted
as unused.  The model file is never written.

>>> parse_codes(" sl501,SL204  SL1 ")
['SL501', 'SL204', 'SL1']
"""

from __future__ import annotations

import logging
import re

from .diagnostics import Diagnostic

__all__ = ["KEY", "UNUSED_CODE", "apply_suppressions", "parse_codes"]

KEY = "shapelint.ignore"
UNUSED_CODE = "SL009"
logger = logging.getLogger(__name__)
_CODE = re.compile(r"^(ALL|[A-Z]{1,8}[0-9]{0,3})\Z")


def parse_codes(text) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    return [c.strip().upper() for c in re.split(r"[,\s]+", str(text)) if c.strip()]


def _entries(props) -> list[str] | None:
    out = None
    for p in props:
        key = p.key.decode("utf-8", "replace") if isinstance(p.key, bytes) else p.key
        if key == KEY:
            out = (out or []) + parse_codes(p.value)
    return out


def _matches(code: str, sel: str) -> bool:
    return sel == "ALL" or code.startswith(sel)


def apply_suppressions(diags: list[Diagnostic], mg, rules, anchor: dict[int, int],
                       severity_overrides: dict | None = None) -> list[Diagnostic]:
    """``diags`` without the suppressed findings, plus SL009 for each suppression that suppressed nothing.

    ``anchor`` maps ``id(diagnostic)`` to ``id(node)`` for findings anchored
    on a node; ``rules`` are the rule classes that ran.
    """
    model_codes = _entries(getattr(mg.model, "metadata_props", ()))
    node_codes: dict[int, tuple[object, list[str]]] = {}
    for info in mg._info.values():
        codes = _entries(getattr(info.node, "metadata_props", ()))
        if codes is not None:
            node_codes[id(info.node)] = (info.node, codes)
    if model_codes is None and not node_codes:
        return diags
    ran = [cls.code for cls in rules]
    installed = set(ran)
    from .plugins import load_rules

    try:
        installed |= {cls.code for cls in load_rules()}
    except Exception as exc:  # noqa: BLE001 - a broken plugin set is reported elsewhere; the rules that ran are known
        logger.debug("installed rules unknown for suppressions: %s", exc)
    used: set[tuple[int | None, str]] = set()
    kept = []
    for d in diags:
        if d.rule == UNUSED_CODE:
            kept.append(d)
            continue
        hit = None
        node_id = anchor.get(id(d))
        if node_id is not None and node_id in node_codes:
            hit = next(((node_id, s) for s in node_codes[node_id][1] if _matches(d.rule, s)), None)
        if hit is None and model_codes:
            hit = next(((None, s) for s in model_codes if _matches(d.rule, s)), None)
        if hit is None:
            kept.append(d)
        else:
            used.add(hit)
    unused_cls = next((cls for cls in rules if cls.code == UNUSED_CODE), None)
    if unused_cls is None:
        return kept
    severity = (severity_overrides or {}).get(UNUSED_CODE) or unused_cls.severity.value

    def report(node, where: str, codes: list[str], key) -> None:
        stale, unknown = [], []
        for s in dict.fromkeys(codes):
            if not _CODE.match(s) or not any(_matches(c, s) for c in installed):
                unknown.append(s)
            elif (key, s) not in used and any(_matches(c, s) for c in ran):
                stale.append(s)
        parts = []
        if stale:
            parts.append(f"{', '.join(stale)} reported nothing here")
        if unknown:
            parts.append(f"{', '.join(s[:40] for s in unknown)} matches no installed rule")
        if not parts:
            return
        kept.append(Diagnostic(
            rule=UNUSED_CODE, name=unused_cls.slug, severity=severity,
            node=(node.name or None) if node is not None else None,
            op_type=node.op_type if node is not None else None, tensor=None,
            message=f"{KEY} on {where} suppresses nothing: {'; '.join(parts)}",
            fix=f"remove {'them' if len(stale) + len(unknown) > 1 else 'it'} from the {KEY!r} metadata_props entry",
            source=mg.source(node) if node is not None else None,
        ))

    if model_codes is not None:
        report(None, "the model", model_codes, None)
    for node_id, (node, codes) in node_codes.items():
        report(node, f"node {node.name!r}" if node.name else f"a {node.op_type} node", codes, node_id)
    return kept
