"""A declared graph output or value_info shape disagrees with the computed one.

## What it does
Compares the shapes the file declares (``graph.output`` and
``graph.value_info``) with the shapes shapelint infers from the graph
inputs, and reports dims proven different or a different rank.  Declared
symbolic dims that only differ in name (``batch_size`` vs ``batch``) are
not reported.

## Why is this bad?
Tools downstream (TensorRT, onnxruntime's memory planner, serving
signatures) trust the declared shape.  A declaration that disagrees with the
graph usually comes from graph surgery or a stale ``value_info`` after an
edit, and fails at run time with "Expected shape from model of {..} does
not match actual shape".

## Example
```python
# after editing the classifier to 5 classes, the output still says 10
model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 10
```

## Use instead
Re-run shape inference after editing (``shapelint.infer_shapes(model)``),
or fix the declared output.

## Options
None.
"""

from __future__ import annotations

from shapelint.dims import Relation, compare, format_shape
from shapelint.infer.fallback import from_type_proto
from shapelint.rule import Rule, Severity


class DeclaredShapeMismatch(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL106", "declared-shape-mismatch", Severity.ERROR
    op_types = ()

    def check(self, node, ctx):
        g = ctx.graph.graph
        inputs = {vi.name for vi in g.input}
        for where, vis in (("output", g.output), ("value_info", g.value_info)):
            for vi in vis:
                if vi.name in inputs:
                    continue
                declared = from_type_proto(vi.type).shape
                inferred = ctx.shape(vi.name)
                if declared is None or inferred is None:
                    continue
                producer = ctx.producer(vi.name)
                label = "graph output" if where == "output" else "value_info"
                if len(declared) != len(inferred):
                    yield ctx.finding(
                        producer,
                        f"{label} {vi.name!r} is declared rank {len(declared)} {format_shape(declared)} "
                        f"but the graph computes rank {len(inferred)} {format_shape(inferred)}",
                        fix="update the declared shape (or re-run shape inference after editing the graph)",
                        tensor=vi.name,
                    )
                    continue
                bad = [
                    i
                    for i, (d, s) in enumerate(zip(declared, inferred))
                    if isinstance(d, int) and compare(d, s).relation == Relation.DIFFERENT
                ]
                if bad:
                    yield ctx.finding(
                        producer,
                        f"{label} {vi.name!r} is declared {format_shape(declared)} but the graph computes "
                        f"{format_shape(inferred)} (axis {', '.join(map(str, bad))})",
                        fix="update the declared shape (or re-run shape inference after editing the graph)",
                        tensor=vi.name,
                    )
