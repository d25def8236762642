"""An op shapelint cannot infer: its outputs' shapes are unknown from here on.

## What it does
Reports, as information, each node of a custom domain (``com.acme``,
``com.microsoft`` contrib ops) or an op the model's opset does not define.
Shapes after it are unknown, so rules downstream skip what they cannot
decide instead of guessing.

## Why is this bad?
It is not a bug in the model: it says where static checking stops.  A
custom op also needs its own kernel registered in onnxruntime.

## Example
A model exported with ``torch.onnx.export(..., custom_opsets={"com.acme": 1})``.

## Use instead
Nothing to fix.  Declaring the custom op's output shapes in
``graph.value_info`` does not help inference today.

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity


class UnsupportedOp(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL001", "unsupported-op", Severity.INFO
    op_types = ()

    def check(self, node, ctx):
        for c in ctx.conflicts("unsupported"):
            yield ctx.finding(c.node, c.message)
