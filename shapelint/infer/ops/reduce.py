"""Reductions and arg-reductions (axes from the attribute or, from opset 13/18, an input)."""

from __future__ import annotations

from ...dims import fresh_symbol, product
from ..registry import NodeContext, register
from ._common import INT64, norm_axis

REDUCE = (
    "ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum "
    "ReduceLogSumExp ReduceSumSquare"
).split()


@register(*REDUCE)
def reduce(ctx: NodeContext):
    x = ctx.input(0)
    keep = ctx.attr("keepdims", 1)
    axes = ctx.attr("axes")
    from_input = axes is None and ctx.has_input(1)
    if from_input:
        axes = ctx.ints(1)
        if axes is None:
            if x.shape is None:
                return None
            a = ctx.input(1)
            if keep and a.shape is not None and len(a.shape) == 1 and a.shape[0] == len(x.shape):
                return [ctx.out(x.dtype, (1,) * len(x.shape))]  # unique axes, all of them
            if keep:
                return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in x.shape))]
            if a.shape is not None and len(a.shape) == 1 and isinstance(a.shape[0], int):
                if a.shape[0] == len(x.shape):
                    return [ctx.out(x.dtype, ())]
                return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in range(len(x.shape) - a.shape[0])))]
            return [ctx.out(x.dtype, None)]
    if x.shape is None:
        return None
    r = len(x.shape)
    axes = list(axes or [])
    if not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            return [ctx.out(x.dtype, x.shape, x.value)]
        axes = list(range(r))
    norm = set()
    for a in axes:
        if not isinstance(a, int) or norm_axis(a, r) is None:
            ctx.conflict("op", f"axis {a} is out of range for {x}", "-rank <= axis < rank")
            return [ctx.out(x.dtype, None)]
        norm.add(norm_axis(a, r))
    if keep:
        out = tuple(1 if i in norm else d for i, d in enumerate(x.shape))
    else:
        out = tuple(d for i, d in enumerate(x.shape) if i not in norm)
    value = None
    if ctx.node.op_type == "ReduceProd" and x.value is not None and r == 1:
        value = (product(x.value),)
    elif ctx.node.op_type == "ReduceSum" and x.value is not None and r == 1:
        from .shape_ops import _sum

        value = (_sum(x.value),)
    return [ctx.out(x.dtype, out, value)]


@register("ArgMax", "ArgMin")
def argreduce(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    axis = ctx.attr("axis", 0)
    a = norm_axis(axis, r)
    if a is None:
        ctx.conflict("op", f"axis {axis} is out of range for {x}", "-rank <= axis < rank")
        return [ctx.out(INT64, None)]
    keep = ctx.attr("keepdims", 1)
    out = tuple(1 if i == a else d for i, d in enumerate(x.shape)) if keep else tuple(d for i, d in enumerate(x.shape) if i != a)
    return [ctx.out(INT64, out)]
