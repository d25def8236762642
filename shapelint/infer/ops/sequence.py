"""Sequences where their number of elements matters: a scripted loop that collects one tensor per iteration
(``outs.append(h)`` in TorchScript is SequenceEmpty, a SequenceInsert in the Loop body, ConcatFromSequence).

Only what these handlers can state exactly is returned; anything else (a position input, an element type that
disagrees) is left to onnx's own inference (``None``).
"""

from __future__ import annotations

import onnx

from ...dims import Relation, compare, fresh_symbol, mul
from ..registry import NodeContext, register
from ..subgraphs import _merge
from ..table import TensorInfo


@register("SequenceEmpty")
def sequence_empty(ctx: NodeContext):
    dtype = ctx.attr("dtype", onnx.TensorProto.FLOAT)
    if not isinstance(dtype, int):
        return None
    return [TensorInfo(kind="sequence", elem=TensorInfo(dtype=dtype), length=0)]


@register("SequenceConstruct")
def sequence_construct(ctx: NodeContext):
    ins = [ctx.input(i) for i in range(len(ctx.node.input)) if ctx.has_input(i)]
    if not ins or any(t.kind != "tensor" or t.shape is None for t in ins):
        return None
    elem = ins[0]
    for t in ins[1:]:
        elem = _merge(elem, t)
    return [TensorInfo(kind="sequence", elem=TensorInfo(dtype=elem.dtype, shape=elem.shape), length=len(ins))]


@register("SequenceInsert")
def sequence_insert(ctx: NodeContext):
    seq, t = ctx.input(0), ctx.input(1)
    if seq.kind != "sequence" or t.kind != "tensor" or t.shape is None:
        return None
    if seq.elem is not None and seq.elem.dtype is not None and t.dtype is not None and seq.elem.dtype != t.dtype:
        return None  # a type error: onnx's inference says so
    empty = seq.length is not None and compare(seq.length, 0).relation == Relation.EQUAL
    if empty or ctx.node.input[0] in ctx.table.appended:
        elem = TensorInfo(dtype=t.dtype, shape=t.shape)  # nothing else in it
    else:
        elem = _merge(seq.elem, t) if seq.elem is not None else TensorInfo()
        if elem.shape is None:
            return None  # elements of unknown shape: onnx's inference
    length = seq.length + 1 if seq.length is not None else None
    return [TensorInfo(kind="sequence", elem=elem, length=length)]


@register("SequenceLength")
def sequence_length(ctx: NodeContext):
    seq = ctx.input(0)
    if seq.kind != "sequence" or seq.length is None:
        return None
    return [ctx.out(onnx.TensorProto.INT64, (), value=(seq.length,))]


@register("ConcatFromSequence")
def concat_from_sequence(ctx: NodeContext):
    seq = ctx.input(0)
    elem = seq.elem
    if seq.kind != "sequence" or elem is None or elem.shape is None:
        return None
    axis, new_axis = ctx.attr("axis"), ctx.attr("new_axis", 0)
    if not isinstance(axis, int) or new_axis not in (0, 1):
        return None
    r = len(elem.shape) + new_axis
    if not -r <= axis < r:
        return None  # out of range: onnx's inference reports it
    a = axis + r if axis < 0 else axis
    n = seq.length if seq.length is not None else fresh_symbol()
    dims = list(elem.shape)
    if new_axis:
        dims.insert(a, n)
    else:
        if seq.length is None:
            dims[a] = fresh_symbol()
        else:
            dims[a] = mul(dims[a], n)
    return [ctx.out(elem.dtype, tuple(dims))]
