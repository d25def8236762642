"""A recurrent op uses ``layout=1`` (batch-major), which onnxruntime's CPU kernels reject.

## What it does
Reports every LSTM, GRU and RNN with ``layout=1`` (``X`` is
``[batch, seq, input]``, ``Y`` is ``[batch, seq, num_directions, hidden]``).
The finding carries a machine-applicable fix: Transposes around a
``layout=0`` op, with the original output names kept so consumers are
untouched.

## Why is this bad?
The ONNX spec allows it since opset 14, but onnxruntime's CPU LSTM, GRU and
RNN kernels refuse it when the session is created ("Batchwise recurrent
operations (layout == 1) are not supported"), so the model cannot be loaded
at all.  Exporters never write it; it comes from converters and graph
"optimisations" that fold the Transposes of ``batch_first`` layers into the
op.

## Example
```python
# a graph edit that "saves" the Transposes torch.onnx writes for batch_first=True
lstm = onnx.helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=8, layout=1)
```

## Use instead
Keep the op time-major and transpose around it, as ``torch.onnx`` does for
``nn.LSTM(batch_first=True)`` and tf2onnx for Keras layers:
``Transpose(perm=[1, 0, 2])`` on ``X`` (and on ``initial_h``/``initial_c``),
``layout=0``, then ``Transpose(perm=[2, 0, 1, 3])`` on ``Y`` and
``Transpose(perm=[1, 0, 2])`` on ``Y_h``/``Y_c``.  The attached fix does
exactly that.

## Options
None.

## Limitations
The fix is offered for main-graph ops only (not inside Loop/If bodies).
"""

from __future__ import annotations

import onnx
from onnx import helper

from shapelint.rule import Fix, Rule, Severity

#: perm per input/output index, for layout=1 -> layout=0 (inputs) and back (outputs)
IN_PERMS = {0: [1, 0, 2], 5: [1, 0, 2], 6: [1, 0, 2]}
OUT_PERMS = {0: [2, 0, 1, 3], 1: [1, 0, 2], 2: [1, 0, 2]}


class BatchwiseRecurrentLayout(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL205", "batchwise-recurrent-layout", Severity.WARNING
    op_types = ("LSTM", "GRU", "RNN")

    def check(self, node, ctx):
        if _layout(node) != 1:
            return
        name = node.name or node.op_type
        edit = None
        info = ctx.graph.info(node)
        if not info.scope:
            edit = Fix(
                f"make {name!r} time-major: Transpose X{' and initial states' if _has_states(node) else ''}, "
                "set layout=0, transpose the outputs back under their original names",
                lambda model, index=info.index, op=node.op_type, name=node.name: to_time_major(model, index, op, name),
                preserves_outputs=True,
            )
        x = ctx.fmt(node.input[0]) if node.input and node.input[0] else "(?)"
        msg = (
            f"{node.op_type} {name!r} has layout=1 (batch-major X {x} read as [batch, seq, input]); onnxruntime's "
            "CPU kernels refuse it at session creation: \"Batchwise recurrent operations (layout == 1) are not "
            "supported\""
        )
        fix = (
            "keep the op time-major: Transpose(perm=[1, 0, 2]) on X, layout=0, Transpose(perm=[2, 0, 1, 3]) on Y "
            "(what torch.onnx writes for nn.LSTM(batch_first=True) and tf2onnx for a Keras LSTM); the attached edit "
            "does this"
        )
        yield ctx.finding(node, msg, fix=fix, tensor=node.input[0] if node.input else None, edit=edit)


def _layout(node: onnx.NodeProto) -> int:
    for a in node.attribute:
        if a.name == "layout":
            return a.i
    return 0


def _has_states(node: onnx.NodeProto) -> bool:
    return any(i < len(node.input) and node.input[i] for i in (5, 6))


def to_time_major(model: onnx.ModelProto, index: int, op_type: str, name: str = "") -> None:
    """Rewrite a ``layout=1`` recurrent op (found by name, else at ``graph.node[index]``) as Transposes
    around a ``layout=0`` one.

    Output tensor names are kept (they now come from the Transposes), so
    every consumer and graph output is untouched.
    """
    graph = model.graph
    named = [n for n in graph.node if name and n.name == name]
    node = named[0] if len(named) == 1 else graph.node[index]
    if node.op_type != op_type or _layout(node) != 1:
        raise ValueError(f"node {index} is not the layout=1 {op_type} the finding was about")
    taken = {t for n in graph.node for t in (*n.input, *n.output)} | {n.name for n in graph.node}
    taken |= {t.name for t in graph.initializer} | {v.name for v in graph.input} | {v.name for v in graph.output}
    base = node.name or f"{op_type}_{index}"

    def fresh(stem: str) -> str:
        name, k = stem, 1
        while name in taken:
            name, k = f"{stem}_{k}", k + 1
        taken.add(name)
        return name

    before, after = [], []
    for i, perm in IN_PERMS.items():
        if i < len(node.input) and node.input[i]:
            src = node.input[i]
            dst = fresh(f"{src}__time_major")
            before.append(helper.make_node("Transpose", [src], [dst], name=fresh(f"{base}/Transpose_in{i}"), perm=perm))
            node.input[i] = dst
    for i, perm in OUT_PERMS.items():
        if i < len(node.output) and node.output[i]:
            out = node.output[i]
            inner = fresh(f"{out}__time_major")
            node.output[i] = inner
            after.append(helper.make_node("Transpose", [inner], [out], name=fresh(f"{base}/Transpose_out{i}"), perm=perm))
    for a in list(node.attribute):
        if a.name == "layout":
            node.attribute.remove(a)
    nodes = list(graph.node)
    pos = nodes.index(node)
    nodes[pos:pos + 1] = before + [node] + after
    del graph.node[:]
    graph.node.extend(nodes)
