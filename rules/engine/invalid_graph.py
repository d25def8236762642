"""The graph itself is malformed: a cycle, two producers of one tensor, a dangling input.

## What it does
Reports structural defects found while building the dataflow graph: a
cycle between nodes, a tensor written by two nodes, and a node input that no
node, graph input or initializer provides.

## Why is this bad?
ONNX graphs are single-assignment DAGs; onnxruntime refuses such a file
("This is an invalid model", "Duplicate definition", "Graph must be in
single static assignment form").  These files come from hand edits or buggy
converters.

## Example
Two nodes both writing ``/encoder/Add_output_0`` after a botched merge of
two exported graphs.

## Use instead
Rename one of the outputs, or remove the dangling edge; ``onnx.checker``
with ``full_check=True`` points at the same place.

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity


class InvalidGraph(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL002", "invalid-graph", Severity.ERROR
    op_types = ()

    def check(self, node, ctx):
        for problem in ctx.graph.problems:
            yield ctx.finding(problem.node, f"{problem.kind}: {problem.message}")
