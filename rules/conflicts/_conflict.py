"""Shared shape of the conflict rules: report inference's conflicts of some kinds."""

from __future__ import annotations

from shapelint.rule import Rule


class ConflictRule(Rule):
    """Base for rules that report what inference found inconsistent."""

    kinds: tuple[str, ...] = ()
    fix_hint: str = ""

    def check(self, node, ctx):
        for c in ctx.conflicts(*self.kinds):
            message = c.message
            if c.requirement:
                message += f" ({c.node.op_type} requires: {c.requirement})"
            yield ctx.finding(c.node, message, fix=self.fix_for(c, ctx), tensor=c.tensor or (c.inputs[0][0] if c.inputs else None))

    def fix_for(self, conflict, ctx) -> str | None:
        return self.fix_hint or None
