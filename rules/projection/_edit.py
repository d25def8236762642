"""Graph edits behind the projection family's machine-applicable fixes.

Each ``Fix.apply`` gets a fresh copy of the model; nodes are found again by
their first output (unique in a valid graph), never by object identity.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["Editor"]

logger = logging.getLogger(__name__)


class Editor:
    """Small, name-safe edits of one model's main graph."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        g = self.graph
        self.taken = {t for n in g.node for t in (*n.input, *n.output)} | {n.name for n in g.node}
        self.taken |= {t.name for t in g.initializer} | {v.name for v in g.input} | {v.name for v in g.output}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)

    def fresh(self, stem: str) -> str:
        name, k = stem, 1
        while name in self.taken:
            name, k = f"{stem}_{k}", k + 1
        self.taken.add(name)
        return name

    def node(self, output: str, op_type: str) -> onnx.NodeProto:
        for n in self.graph.node:
            if n.output and n.output[0] == output and n.op_type == op_type:
                return n
        raise ValueError(f"no {op_type} node writes {output!r}")

    def ints(self, stem: str, values) -> str:
        """A new int64 initializer; returns its name."""
        name = self.fresh(stem)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(values, dtype=np.int64), name))
        return name

    def insert_before(self, anchor: str, new_nodes) -> None:
        """Insert ``new_nodes`` just before the node whose first output is ``anchor``.

        The node list is rebuilt: NodeProto objects held before the call are
        stale afterwards; look nodes up again with :meth:`node`.
        """
        nodes = list(self.graph.node)
        pos = next(i for i, n in enumerate(nodes) if n.output and n.output[0] == anchor)
        nodes[pos:pos] = list(new_nodes)
        del self.graph.node[:]
        self.graph.node.extend(nodes)

    def set_attr(self, node: onnx.NodeProto, name: str, value) -> None:
        for a in list(node.attribute):
            if a.name == name:
                node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(name, value))

    def drop_attr(self, node: onnx.NodeProto, name: str) -> None:
        for a in list(node.attribute):
            if a.name == name:
                node.attribute.remove(a)

    def squeeze(self, anchor: str, tensor: str, axes, base: str) -> str:
        out = self.fresh(f"{tensor}__squeezed")
        if self.opset >= 13:
            n = helper.make_node("Squeeze", [tensor, self.ints(f"{base}/axes", axes)], [out], name=self.fresh(f"{base}/Squeeze"))
        else:
            n = helper.make_node("Squeeze", [tensor], [out], name=self.fresh(f"{base}/Squeeze"), axes=list(axes))
        self.insert_before(anchor, [n])
        return out

    def transpose(self, anchor: str, tensor: str, perm, base: str) -> str:
        out = self.fresh(f"{tensor}__transposed")
        self.insert_before(anchor, [helper.make_node("Transpose", [tensor], [out], name=self.fresh(f"{base}/Transpose"), perm=list(perm))])
        return out

    def reshape(self, anchor: str, tensor: str, target, base: str) -> str:
        out = self.fresh(f"{tensor}__merged")
        n = helper.make_node("Reshape", [tensor, self.ints(f"{base}/shape", target)], [out], name=self.fresh(f"{base}/Reshape"))
        self.insert_before(anchor, [n])
        return out

    def forget_shapes(self, tensors) -> None:
        """Re-derive declared shapes of tensors an edit changed (value_info dropped, graph outputs re-inferred)."""
        names = set(tensors)
        for vi in list(self.graph.value_info):
            if vi.name in names:
                self.graph.value_info.remove(vi)
        outs = [vi for vi in self.graph.output if vi.name in names and vi.type.HasField("tensor_type")]
        if not outs:
            return
        from shapelint.dims import format_dim
        from shapelint.graph import ModelGraph
        from shapelint.infer import infer

        table = infer(ModelGraph.from_model(self.model))
        for vi in outs:
            shape = table.shape(vi.name)
            if shape is None:
                continue
            vi.type.tensor_type.ClearField("shape")
            dims = vi.type.tensor_type.shape.dim
            for d in shape:
                dim = dims.add()
                if isinstance(d, int):
                    dim.dim_value = d
                elif d is not None and not format_dim(d).startswith("unk__"):
                    dim.dim_param = format_dim(d)

    def downstream(self, tensor: str) -> set:
        """Every tensor computed from ``tensor`` (main graph)."""
        out, frontier = {tensor}, [tensor]
        users: dict = {}
        for n in self.graph.node:
            for i in n.input:
                users.setdefault(i, []).append(n)
        while frontier:
            t = frontier.pop()
            for n in users.get(t, ()):
                for o in n.output:
                    if o and o not in out:
                        out.add(o)
                        frontier.append(o)
        return out


def keeps_shapes_consistent(ctx, fix) -> bool:
    """True when ``fix`` applied to a copy leaves no more refuted shapes than the model had.

    An edit that changes a tensor's shape (another axis reduced, a rank
    dropped) is only offered when everything downstream still fits: a head
    sized for the wrong axis would otherwise fail where the original ran.
    """
    from shapelint.graph import ModelGraph
    from shapelint.infer import infer

    copy = onnx.ModelProto()
    copy.CopyFrom(ctx.graph.model)
    try:
        fix.apply(copy)
        table = infer(ModelGraph.from_model(copy))
    except Exception:  # noqa: BLE001 - an edit that cannot be applied is not offered
        logger.debug("trial edit failed", exc_info=True)
        return False
    before = sum(1 for c in ctx.table.conflicts if c.relation == "different")
    after = sum(1 for c in table.conflicts if c.relation == "different")
    return after <= before
