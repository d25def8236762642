"""Normalisations, Pad, Resize, TopK, OneHot: ops whose sizes need symbolic arithmetic."""

from __future__ import annotations

import math

from ...dims import Relation, add, compare, format_dim, fresh_symbol, mul
from ..registry import NodeContext, register, values_of
from ._common import INT64, norm_axis


@register("BatchNormalization", "InstanceNormalization", "GroupNormalization", "LRN")
def same_as_input(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    if ctx.node.op_type == "BatchNormalization" and len(ctx.node.output) > 1:
        return [ctx.out(x.dtype, x.shape)] + [None] * (len(ctx.node.output) - 1)
    if ctx.node.op_type == "BatchNormalization" and len(x.shape) >= 2:
        scale = ctx.input(1)
        if scale.shape is not None and len(scale.shape) == 1:
            cmp = compare(x.shape[1], scale.shape[0])
            if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
                ctx.conflict(
                    "op",
                    f"input has {format_dim(x.shape[1])} channels but scale has {format_dim(scale.shape[0])}",
                    "scale, bias, mean and var have one entry per channel (axis 1)",
                    cmp,
                    inputs=[0, 1],
                )
    return [ctx.out(x.dtype, x.shape)]


@register("LayerNormalization", "RMSNormalization")
def layer_norm(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    axis = ctx.attr("axis", -1)
    a = norm_axis(axis, r)
    if a is None:
        ctx.conflict("op", f"axis {axis} is out of range for {x}", "-rank <= axis < rank")
        return [ctx.out(x.dtype, None) for _ in ctx.node.output]
    scale = ctx.input(1)
    if scale.shape is not None:
        norm_shape = x.shape[a:]
        s = tuple(scale.shape)
        if len(s) <= len(norm_shape):
            for got, want in zip(reversed(s), reversed(norm_shape)):
                if isinstance(got, int) and got == 1:
                    continue
                cmp = compare(got, want)
                if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
                    ctx.conflict(
                        "op",
                        f"scale {scale} does not match the normalised axes {tuple(map(format_dim, norm_shape))} of {x}",
                        "scale (and bias) broadcast to the normalised trailing axes",
                        cmp,
                        inputs=[0, 1],
                    )
                    break
    outs = [ctx.out(x.dtype, x.shape)]
    stat = tuple(d if i < a else 1 for i, d in enumerate(x.shape))
    stash = ctx.attr("stash_type", 1)
    for _ in ctx.node.output[1:]:
        outs.append(ctx.out(stash if ctx.node.op_type == "LayerNormalization" else x.dtype, stat))
    return outs


@register("Pad")
def pad(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    pads = ctx.attr("pads") if ctx.opset < 11 else ctx.ints(1)
    if ctx.opset < 11 and pads is None:
        pads = ctx.attr("paddings")
    if pads is None:
        return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in range(r)))]
    axes = ctx.ints(3) if ctx.opset >= 18 and ctx.has_input(3) else None
    if ctx.opset >= 18 and ctx.has_input(3) and axes is None:
        return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in range(r)))]
    if axes is None:
        axes = list(range(r))
    axes = [norm_axis(a, r) if isinstance(a, int) else None for a in axes]
    if None in axes or len(pads) != 2 * len(axes):
        return None
    out = list(x.shape)
    n = len(axes)
    for k, a in enumerate(axes):
        out[a] = add(add(x.shape[a], pads[k]), pads[k + n])
    return [ctx.out(x.dtype, tuple(out))]


@register("TopK")
def topk(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    a = norm_axis(ctx.attr("axis", -1), r)
    if a is None:
        return None
    if ctx.opset < 10:
        k = ctx.attr("k")
    else:
        kv = values_of(ctx.input(1))
        k = kv[0] if kv else fresh_symbol()
    if isinstance(k, int) and isinstance(x.shape[a], int) and k > x.shape[a]:
        ctx.conflict("op", f"k={k} is larger than axis {a} of {x}", "k <= the axis length")
    shape = tuple(k if i == a else d for i, d in enumerate(x.shape))
    return [ctx.out(x.dtype, shape), ctx.out(INT64, shape)]


@register("OneHot")
def one_hot(ctx: NodeContext):
    idx = ctx.input(0)
    if idx.shape is None:
        return None
    depth = values_of(ctx.input(1))
    d = depth[0] if depth and len(depth) == 1 else fresh_symbol()
    if not isinstance(d, int) and ctx.input(1).const is not None:
        import numpy as np

        d = int(np.asarray(ctx.input(1).const).reshape(-1)[0])
    r = len(idx.shape) + 1
    a = norm_axis(ctx.attr("axis", -1), r)
    if a is None:
        return None
    shape = list(idx.shape)
    shape.insert(a, d)
    return [ctx.out(ctx.dtype(2), tuple(shape))]


@register("Resize", "Upsample")
def resize(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    op = ctx.node.op_type
    if op == "Upsample":
        scales = ctx.attr("scales") if ctx.opset < 9 else _floats(ctx, 1)
        sizes = None
    elif ctx.opset < 11:
        scales, sizes = _floats(ctx, 1), None
    else:
        scales = _floats(ctx, 2) if ctx.has_input(2) else None
        sizes = ctx.ints(3) if ctx.has_input(3) else None
    if ctx.attr("coordinate_transformation_mode") == "tf_crop_and_resize":
        return None
    axes = ctx.attr("axes")
    axes = [norm_axis(a, r) for a in axes] if axes is not None else list(range(r))
    if None in axes:
        return None
    out = list(x.shape)
    if sizes is not None and len(sizes) == len(axes):
        if ctx.attr("keep_aspect_ratio_policy", "stretch") not in ("stretch", None):
            return None
        for a, s in zip(axes, sizes):
            out[a] = s
        return [ctx.out(x.dtype, tuple(out))]
    if scales is not None and len(scales) == len(axes) and ctx.attr("keep_aspect_ratio_policy", "stretch") == "stretch":
        for a, s in zip(axes, scales):
            d = x.shape[a]
            if isinstance(d, int):
                out[a] = int(math.floor(d * s))
            elif float(s).is_integer():
                out[a] = mul(d, int(s))
            else:
                out[a] = fresh_symbol()
        return [ctx.out(x.dtype, tuple(out))]
    if (scales is None and sizes is None) and (ctx.has_input(2) or ctx.has_input(3) or op == "Upsample"):
        return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in range(r)))]
    return None


def _floats(ctx: NodeContext, i: int):
    if not ctx.has_input(i):
        return None
    c = ctx.input(i).const
    if c is None:
        return None
    vals = [float(v) for v in c.reshape(-1)]
    return vals or None
