"""``infer_shapes``: a drop-in for ``onnx.shape_inference.infer_shapes``.

Returns a copy of the model with ``graph.value_info`` and the graph outputs
filled from shapelint's symbolic inference; symbolic dims are written as
``dim_param`` strings such as ``batch`` or ``batch*64``.
"""

from __future__ import annotations

import logging
import os

import onnx

from .dims import format_dim
from .graph import ModelGraph
from .infer import ShapeTable, TensorInfo, infer
from .infer.fallback import to_type_proto
from .load import load_model

__all__ = ["infer_shapes", "shape_rows", "write_shapes"]

logger = logging.getLogger(__name__)


def infer_shapes(model_or_path: onnx.ModelProto | str | os.PathLike, bindings: dict[str, int] | None = None) -> onnx.ModelProto:
    """Infer every tensor's shape, like ``onnx.shape_inference.infer_shapes``.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''
    ... <ir_version: 8, opset_import: ["" : 17]>
    ... g (float[batch, 64] x) => (y) { s = Shape(x)  y = Reshape(x, s) }''')
    >>> out = infer_shapes(m)
    >>> [d.dim_param or d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim]
    ['batch', 64]
    """
    if isinstance(model_or_path, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(model_or_path)
    else:
        model = load_model(model_or_path)
    mg = ModelGraph.from_model(model)
    table = infer(mg, bindings)
    write_shapes(model, table)
    return model


def _fill(vi: onnx.ValueInfoProto, info: TensorInfo) -> bool:
    tp = to_type_proto(info)
    if tp is None:
        return False
    old = vi.type
    if old.HasField("tensor_type") and tp.HasField("tensor_type"):
        if not tp.tensor_type.elem_type and old.tensor_type.elem_type:
            tp.tensor_type.elem_type = old.tensor_type.elem_type
        if not tp.tensor_type.HasField("shape") and old.tensor_type.HasField("shape"):
            return True
    vi.type.CopyFrom(tp)
    return True


def write_shapes(model: onnx.ModelProto, table: ShapeTable) -> None:
    g = model.graph
    skip = {vi.name for vi in g.input} | {t.name for t in g.initializer}
    outputs = {vi.name for vi in g.output}
    for vi in g.output:
        info = table.tensors.get(vi.name)
        if info is not None:
            _fill(vi, info)
    del g.value_info[:]
    for node in g.node:
        for name in node.output:
            if not name or name in skip or name in outputs:
                continue
            info = table.tensors.get(name)
            if info is None:
                continue
            vi = onnx.ValueInfoProto(name=name)
            if _fill(vi, info):
                g.value_info.append(vi)


def shape_rows(model: onnx.ModelProto, table: ShapeTable, mg: ModelGraph):
    """Rows for ``shapelint shapes``: one per node, with its outputs' shapes."""
    from .dims import format_shape

    for node in mg.topological_order():
        outs = []
        for name in node.output:
            if not name:
                continue
            info = table.get(name)
            outs.append({"tensor": name, "dtype": onnx.helper.tensor_dtype_to_string(info.dtype) if info.dtype else None, "shape": None if info.shape is None else [format_dim(d) for d in info.shape], "text": format_shape(info.shape)})
        yield {"node": node.name or None, "op_type": node.op_type, "source": mg.source(node), "outputs": outs}


def input_conditions(table: ShapeTable) -> dict:
    """What ``shapes`` reports beside the rows: the sizes the model accepts and how inference read its inputs.

    ``input_sizes`` is the one-line summary (``H, W multiples of 32; seq ≤ 512``, empty when nothing
    restricts the inputs), ``constraints`` every condition with the node that needed it, ``notes`` the
    departures from the file's words (a ``dim_value: -1`` axis read as dynamic).
    """
    from .infer.constraints import summary

    return {
        "input_sizes": summary(table.constraints),
        "constraints": [c.to_json() for c in table.constraints],
        "notes": list(table.notes),
    }
