"""An Identity node copies a tensor for nothing.

## What it does
Reports each ``Identity`` node whose output is read by other nodes: it copies
a tensor without changing its shape or values.

## Why is this bad?
It is a left-over of export (``torch.onnx`` emits one for ``x.clone()``, or for
a parameter used twice) or of a graph edit.  It costs a copy at run time on
some providers and hides the real producer from anyone reading the graph.

## Example
```python
def forward(self, x):
    y = x.clone()           # exported as Identity
    return self.fc(y)
```

## Use instead
```python
def forward(self, x):
    return self.fc(x)
```
or run ``onnxsim`` / ``onnxoptimizer``'s ``eliminate_identity`` on the export.

## Options
- ``allow-graph-outputs`` (bool, default ``true``): an Identity that writes a
  graph output only renames it, which is often on purpose; set to ``false``
  to report those as well.

## Limitations
An Identity inside an ``If`` branch that returns an outer tensor is needed
(a branch must produce its outputs); this rule does not look into subgraphs'
outputs and may report it.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity

__all__ = ["UselessIdentity"]


class UselessIdentity(Rule):
    __doc__ = __doc__
    code, slug, severity = "ACME101", "useless-identity", Severity.WARNING
    op_types = ("Identity",)

    def check(self, node, ctx):
        allow_outputs = ctx.options.get("allow-graph-outputs", True)
        if not isinstance(allow_outputs, bool):
            raise TypeError(f"option allow-graph-outputs must be true or false, got {allow_outputs!r}")
        outputs = {o.name for o in ctx.graph.graph.output}
        if allow_outputs and node.output[0] in outputs:
            return
        source = node.input[0]
        yield ctx.finding(
            node,
            f"Identity copies {source!r} {ctx.fmt(source)} unchanged",
            fix="read the input directly (drop the .clone()), or simplify the export with onnxsim",
            tensor=source,
        )
