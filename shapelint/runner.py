"""Run the selected rules over one model; a crashing rule becomes a finding."""

from __future__ import annotations

import logging
import traceback

from .diagnostics import Diagnostic
from .graph import ModelGraph
from .infer import ShapeTable
from .rule import Context, Rule, Severity

__all__ = ["select_rules", "run_rules", "matches"]

logger = logging.getLogger(__name__)


def matches(code: str, patterns) -> bool:
    """ruff-style selection: ``SL2`` matches ``SL201``; ``ALL`` matches everything."""
    return any(p == "ALL" or code.startswith(p) for p in patterns)


def select_rules(rules, select=None, ignore=None) -> list[type[Rule]]:
    chosen = []
    for cls in rules:
        if select and not matches(cls.code, select):
            continue
        if ignore and matches(cls.code, ignore):
            continue
        chosen.append(cls)
    return chosen


def run_rules(rules: list[type[Rule]], mg: ModelGraph, table: ShapeTable, path: str = "", options: dict | None = None, severity_overrides: dict | None = None, rule_options: dict[str, dict] | None = None, skipped: list | None = None) -> list[Diagnostic]:
    """Findings of ``rules``; ``ctx.options`` is ``options`` updated with ``rule_options[code]``.

    ``skipped``, when given, receives what the rules could not decide (``ctx.skip``), once each.
    """
    out: list[Diagnostic] = []
    by_op: dict[str, list[type[Rule]]] = {}
    whole: list[type[Rule]] = []
    for cls in rules:
        if cls.op_types:
            for op in cls.op_types:
                by_op.setdefault(op, []).append(cls)
        else:
            whole.append(cls)
    instances = {cls: cls() for cls in rules}
    ctx = Context(graph=mg, table=table, path=path, options=options or {})
    seen = set()
    anchor: dict[int, int] = {}  # id(diagnostic) -> id(node): superseding works for unnamed nodes too

    def emit(cls, finding):
        node = finding.node
        sev = finding.severity or cls.severity
        if severity_overrides and cls.code in severity_overrides:
            sev = Severity(severity_overrides[cls.code])
        d = Diagnostic(
            rule=cls.code,
            name=cls.slug,
            severity=Severity(sev).value,
            node=(node.name or None) if node is not None else None,
            op_type=node.op_type if node is not None else None,
            tensor=finding.tensor,
            message=finding.message,
            fix=finding.fix,
            source=mg.source(node) if node is not None else None,
            edit=finding.edit,
            fixable=finding.edit is not None,
        )
        key = (d.rule, id(node) if node is not None else None, d.tensor, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
            if node is not None:
                anchor[id(d)] = id(node)

    def call(cls, node):
        ctx.rule = cls
        if rule_options:
            ctx.options = {**(options or {}), **rule_options.get(cls.code, {})}
        try:
            for finding in instances[cls].check(node, ctx) or ():
                emit(cls, finding)
        except Exception as exc:  # noqa: BLE001 - a plugin bug is reported, not fatal
            crash(cls, node, exc)
        for where, exc in ctx.crashes:  # caught per node inside a whole-graph rule (ctx.isolated)
            crash(cls, where, exc)
        ctx.crashes.clear()

    def crash(cls, node, exc):
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
        out.append(
            Diagnostic(
                rule=cls.code,
                name=cls.slug,
                severity="error",
                node=(node.name or None) if node is not None else None,
                op_type=node.op_type if node is not None else None,
                tensor=None,
                message=f"internal error in rule {cls.code} ({cls.origin or 'unknown origin'}): "
                f"{type(exc).__name__}: {exc}{where}",
            )
        )

    for cls in whole:
        call(cls, None)

    if by_op:
        for info in mg._info.values():  # main graph and subgraphs
            if not any(info.node.output):
                continue  # malformed (no outputs): SL002's business, not the op rules'
            for cls in by_op.get(info.node.op_type, ()):
                call(cls, info.node)
    superseded = {(code, anchor[id(d)]) for d in out if id(d) in anchor
                  for cls in rules if cls.code == d.rule for code in cls.supersedes}
    if superseded:
        out = [d for d in out if id(d) not in anchor or (d.rule, anchor[id(d)]) not in superseded]
    from .suppress import apply_suppressions  # shapelint.ignore in the model's or a node's metadata_props

    out = apply_suppressions(out, mg, rules, anchor, severity_overrides)
    position = {}
    for i, node in enumerate(mg.topological_order()):
        if node.name:
            position.setdefault(node.name, i)
    out.sort(key=lambda d: (position.get(d.node, -1 if d.node is None else len(position)), d.rule))
    if skipped is not None:
        skipped.extend({"rule": code, "reason": reason} for code, reason in dict.fromkeys(ctx.skipped))
    return out
