"""Convolution and pooling: output sizes as ``floor((H + pads - dilation*(k-1) - 1)/stride) + 1``."""

from __future__ import annotations

from ...dims import Relation, add, ceildiv, compare, floordiv, format_dim, mul, sub
from ..registry import NodeContext, register

_CHANNELS = "the input's channels (axis 1) equal the weight's in-channels times group"


def _spatial(ctx: NodeContext, x_spatial, kernel, transposed=False, out_pad=None):
    n = len(x_spatial)
    strides = list(ctx.attr("strides", [1] * n))
    dil = list(ctx.attr("dilations", [1] * n))
    pads = list(ctx.attr("pads", [0] * (2 * n)))
    auto_pad = ctx.attr("auto_pad", "NOTSET") or "NOTSET"
    ceil_mode = ctx.attr("ceil_mode", 0)
    if len(strides) != n or len(dil) != n or len(pads) != 2 * n or len(kernel) != n:
        return None
    out = []
    for i in range(n):
        d, k, s, dl = x_spatial[i], kernel[i], strides[i], dil[i]
        if d is None or k is None:
            out.append(None)
            continue
        eff = add(mul(sub(k, 1), dl), 1)
        if transposed:
            op = out_pad[i] if out_pad else 0
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                out.append(mul(d, s))
            else:
                out.append(sub(add(add(mul(s, sub(d, 1)), op), eff), pads[i] + pads[i + n]))
            continue
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out.append(ceildiv(d, s))
        elif auto_pad == "VALID":
            out.append(ceildiv(sub(d, sub(eff, 1)), s))
        else:
            span = sub(add(d, pads[i] + pads[i + n]), eff)
            q = ceildiv(span, s) if ceil_mode else floordiv(span, s)
            o = add(q, 1)
            if ceil_mode and isinstance(o, int) and isinstance(d, int):
                # the last window must start inside the input or left padding
                if (o - 1) * s >= d + pads[i]:
                    o -= 1
            out.append(o)
    if not all(isinstance(o, int) for o in out):
        from ..constraints import require_positive

        for i, o in enumerate(out):
            if o is not None and not isinstance(o, int):
                require_positive(ctx, o, f"{ctx.node.op_type}'s window must fit spatial axis {i}")
    for o in out:
        if isinstance(o, int) and o <= 0:
            ctx.conflict(
                "op",
                f"the window is larger than the padded input: spatial dims {[format_dim(d) for d in x_spatial]} "
                f"with kernel {[format_dim(k) for k in kernel]} give output size {o}",
                "the (dilated) kernel fits inside the padded input",
            )
            return None
    return out


@register("Conv", "ConvInteger", "QLinearConv")
def conv(ctx: NodeContext):
    op = ctx.node.op_type
    xi, wi = (0, 3) if op == "QLinearConv" else (0, 1)
    x, w = ctx.input(xi), ctx.input(wi)
    dtype = 6 if op == "ConvInteger" else (ctx.dtype(7) if op == "QLinearConv" else x.dtype or w.dtype)
    if x.shape is None:
        return [ctx.out(dtype, None)] if dtype is not None else None
    if len(x.shape) < 3:
        ctx.conflict("op", f"{op} needs an input of rank >= 3 (N, C, spatial...), got {x}", "X is (N, C, D1, ..., Dn)", inputs=[xi])
        return [ctx.out(dtype, None)]
    n = len(x.shape) - 2
    if w.shape is not None and len(w.shape) != len(x.shape):
        ctx.conflict(
            "op",
            f"input {x} (rank {len(x.shape)}) and weight {w} (rank {len(w.shape)}) have different ranks: "
            f"a {len(w.shape) - 2}-D convolution cannot take a rank-{len(x.shape)} input",
            "X and W have the same rank",
            inputs=[xi, wi],
        )
        return [ctx.out(dtype, None)]
    group = ctx.attr("group", 1)
    kernel = ctx.attr("kernel_shape")
    kernel = list(kernel) if kernel is not None else (list(w.shape[2:]) if w.shape is not None else [None] * n)
    m = w.shape[0] if w.shape is not None else None
    if w.shape is not None:
        cmp = compare(x.shape[1], mul(w.shape[1], group))
        if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
            ctx.conflict(
                "op",
                f"input has {format_dim(x.shape[1])} channels but the weight {w} expects "
                f"{format_dim(mul(w.shape[1], group))}" + (f" (group={group})" if group != 1 else ""),
                _CHANNELS,
                cmp,
                inputs=[xi, wi],
            )
    spatial = _spatial(ctx, list(x.shape[2:]), kernel)
    if spatial is None:
        return [ctx.out(dtype, (x.shape[0], m) + (None,) * n)]
    return [ctx.out(dtype, (x.shape[0], m, *spatial))]


@register("ConvTranspose")
def conv_transpose(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    dtype = x.dtype or w.dtype
    if x.shape is None or w.shape is None or len(x.shape) < 3 or len(w.shape) != len(x.shape):
        return None
    n = len(x.shape) - 2
    group = ctx.attr("group", 1)
    ctx.require_equal(x.shape[1], w.shape[0], "op", "input channels differ from the weight's first axis", "X's channels equal W's axis 0", inputs=[0, 1])
    m = mul(w.shape[1], group)
    output_shape = ctx.attr("output_shape")
    if output_shape is not None and len(output_shape) == n:
        return [ctx.out(dtype, (x.shape[0], m, *output_shape))]
    kernel = list(ctx.attr("kernel_shape", w.shape[2:]))
    out_pad = list(ctx.attr("output_padding", [0] * n))
    if (ctx.attr("auto_pad", "NOTSET") or "NOTSET") in ("SAME_UPPER", "SAME_LOWER") and ctx.attr("pads") is None:
        spatial = [mul(d, s) for d, s in zip(x.shape[2:], ctx.attr("strides", [1] * n))]
    else:
        spatial = _spatial(ctx, list(x.shape[2:]), kernel, transposed=True, out_pad=out_pad)
    if spatial is None:
        return None
    return [ctx.out(dtype, (x.shape[0], m, *spatial))]


@register("MaxPool", "AveragePool", "LpPool")
def pool(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None or len(x.shape) < 3:
        return None
    kernel = ctx.attr("kernel_shape")
    if kernel is None:
        return None
    if ctx.node.op_type == "MaxPool" and ctx.attr("storage_order", 0) and len(ctx.node.output) > 1:
        pass
    spatial = _spatial(ctx, list(x.shape[2:]), list(kernel))
    if spatial is None:
        return None
    y = ctx.out(x.dtype, (x.shape[0], x.shape[1], *spatial))
    outs = [y]
    if len(ctx.node.output) > 1:
        outs.append(ctx.out(7, y.shape))
    return outs


@register("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def global_pool(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None or len(x.shape) < 2:
        return None
    return [ctx.out(x.dtype, (x.shape[0], x.shape[1]) + (1,) * (len(x.shape) - 2))]
