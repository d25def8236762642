"""onnx's own per-node inference, for every op without a shapelint handler.

Symbolic dims travel as ``dim_param`` strings (``batch*64``) and come back
parsed, so onnx's propagation keeps shapelint's algebra intact.
"""

from __future__ import annotations

import logging

import onnx
from onnx import numpy_helper

from ..dims import format_dim, fresh_symbol, parse_dim
from .table import TensorInfo

__all__ = ["infer_with_onnx", "to_type_proto", "from_type_proto", "FallbackError"]

logger = logging.getLogger(__name__)


class FallbackError(Exception):
    """onnx rejected the node: the message says why (a shape or type conflict)."""


def to_type_proto(info: TensorInfo) -> onnx.TypeProto | None:
    tp = onnx.TypeProto()
    if info.kind == "sequence":
        if info.elem is None or info.elem.dtype is None:
            return None
        inner = to_type_proto(info.elem)
        if inner is None:
            return None
        tp.sequence_type.elem_type.CopyFrom(inner)
        return tp
    if info.kind == "optional":
        if info.elem is None:
            return None
        inner = to_type_proto(info.elem)
        if inner is None:
            return None
        tp.optional_type.elem_type.CopyFrom(inner)
        return tp
    if info.dtype is None:
        return None
    tt = tp.tensor_type
    tt.elem_type = info.dtype
    if info.shape is not None:
        shp = tt.shape
        shp.SetInParent()
        for d in info.shape:
            dim = shp.dim.add()
            if isinstance(d, int):
                if d >= 0:
                    dim.dim_value = d
            elif d is not None:
                dim.dim_param = format_dim(d)
    return tp


def from_type_proto(tp: onnx.TypeProto) -> TensorInfo:
    which = tp.WhichOneof("value")
    if which == "tensor_type" or which == "sparse_tensor_type":
        tt = getattr(tp, which)
        shape = None
        if tt.HasField("shape"):
            dims = []
            for d in tt.shape.dim:
                if d.HasField("dim_value") and d.dim_value >= 0:
                    dims.append(int(d.dim_value))
                elif d.HasField("dim_param") and d.dim_param:
                    dims.append(parse_dim(d.dim_param))
                else:
                    dims.append(fresh_symbol())  # no dim, or a negative dim_value (paddle2onnx's "dynamic"): unknown
            shape = tuple(dims)
        return TensorInfo(dtype=tt.elem_type or None, shape=shape)
    if which == "sequence_type":
        return TensorInfo(kind="sequence", elem=from_type_proto(tp.sequence_type.elem_type))
    if which == "optional_type":
        return TensorInfo(kind="optional", elem=from_type_proto(tp.optional_type.elem_type))
    if which == "map_type":
        return TensorInfo(kind="map")
    return TensorInfo()


def infer_with_onnx(
    node: onnx.NodeProto,
    inputs: list[TensorInfo],
    opset_imports,
    ir_version: int,
) -> list[TensorInfo] | None:
    """Run onnx's inference for one node; None when onnx has no schema for it.

    Raises :class:`FallbackError` when onnx reports an inconsistency.
    """
    domain = node.domain or ""
    version = None
    for imp in opset_imports:
        if (imp.domain or "") == domain or (domain == "" and imp.domain == "ai.onnx"):
            version = imp.version
    if version is None:
        return None
    try:
        schema = onnx.defs.get_schema(node.op_type, version, domain)
    except onnx.defs.SchemaError:
        return None
    types = {}
    data = {}
    for name, info in zip(node.input, inputs):
        if not name:
            continue
        tp = to_type_proto(info)
        if tp is None:
            continue
        types[name] = tp
        if info.const is not None and info.const.size <= 4096 and info.kind == "tensor":
            try:
                data[name] = numpy_helper.from_array(info.const, name)
            except Exception:  # noqa: BLE001
                pass
    try:
        result = onnx.shape_inference.infer_node_outputs(
            schema, node, types, input_data=data or None, opset_imports=list(opset_imports), ir_version=ir_version
        )
    except onnx.shape_inference.InferenceError as exc:
        raise FallbackError(_clean(str(exc))) from None
    except Exception as exc:  # noqa: BLE001 - onnx raises several types on odd input
        logger.debug("onnx fallback failed on %s: %s", node.op_type, exc)
        return [TensorInfo() for _ in node.output]
    return [from_type_proto(result[o]) if o in result else TensorInfo() for o in node.output]


def _clean(msg: str) -> str:
    # "[ShapeInferenceError] (op_type:Concat, node name: x): axis ..." -> the last clause
    msg = msg.strip().splitlines()[0] if msg.strip() else msg
    if ")" in msg and msg.startswith("["):
        head, _, tail = msg.partition("): ")
        if tail:
            msg = tail
    for tag in ("[ShapeInferenceError] ", "[TypeInferenceError] "):
        msg = msg.replace(tag, "")
    return msg.strip()
