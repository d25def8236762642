"""A declared graph output or value_info shape disagrees with the computed one.

## What it does
Compares the shapes the file declares (``graph.output`` and
``graph.value_info``) with the shapes shapelint infers from the graph
inputs, and reports dims proven different or a different rank.  A graph
output declared with a literal size where the graph computes a dynamic dim
(``6`` vs ``tgt_seq``) is reported too; for ``value_info`` it is not, since
exporters record the example input's sizes there.  Declared
symbolic dims that only differ in name (``batch_size`` vs ``batch``) are
not reported.

## Why is this bad?
The graph itself runs (onnxruntime only logs "Expected shape from model of
{..} does not match actual shape"), hence a warning, but tools downstream (TensorRT, onnxruntime's memory planner, serving
signatures) trust the declared shape.  A declaration that disagrees with the
graph usually comes from graph surgery, a stale ``value_info`` after an
edit, or an exporter that recorded the example input's size (a static 6
where the graph computes ``tgt_seq``).

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
    code, slug, severity = "SL106", "declared-shape-mismatch", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        g = ctx.graph.graph
        inputs = {vi.name for vi in g.input}
        for where, vis in (("output", g.output), ("value_info", g.value_info)):
            for vi in vis:
                with ctx.isolated(ctx.producer(vi.name)):
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
                    bad, conditions = [], []
                    for i, (d, s) in enumerate(zip(declared, inferred)):
                        if not isinstance(d, int):
                            continue
                        cmp = compare(d, s)
                        if cmp.relation == Relation.DIFFERENT:
                            bad.append(i)
                        elif cmp.relation == Relation.ONLY_WHEN and where == "output":
                            # value_info from exporters records example sizes everywhere: only outputs count
                            # a size recorded from the example input, for a dim that is dynamic
                            bad.append(i)
                            conditions.append(cmp.describe())
                    if bad:
                        when = f"; they agree only when {' and '.join(conditions)}" if conditions else ""
                        yield ctx.finding(
                            producer,
                            f"{label} {vi.name!r} is declared {format_shape(declared)} but the graph computes "
                            f"{format_shape(inferred)} (axis {', '.join(map(str, bad))}){when}",
                            fix="update the declared shape (or re-run shape inference after editing the graph)",
                            tensor=vi.name,
                        )
