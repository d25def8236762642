"""Ops that move, reshape or compute shapes.

These carry symbolic *values* as well as shapes: exporters build a Reshape's
target from ``Shape → Gather → Unsqueeze → Concat``, and the target's
elements must stay ``batch``, ``seq*12`` … for the Reshape to be exact.
"""

from __future__ import annotations

import numpy as np
import onnx

from ...dims import (
    Relation,
    add,
    ceildiv,
    compare,
    floordiv,
    format_dim,
    format_shape,
    fresh_symbol,
    has_floor,
    is_sympy,
    product,
    ratio,
    simplify,
    sub,
)
from ..registry import AttributeTypeError, NodeContext, int_values, register, values_of
from ..table import TensorInfo
from ._common import INT64, norm_axis, unknown_dims


@register("Constant")
def constant(ctx: NodeContext):
    from ...graph import constant_node_value

    a = ctx.node.attribute[0] if ctx.node.attribute else None
    if a is None:
        return None
    if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
        t = a.t
        # read lazily, like an initializer: most Constants of an export are never looked into
        lazy = t if t.data_location != onnx.TensorProto.EXTERNAL else None
        return [TensorInfo(dtype=t.data_type, shape=tuple(int(d) for d in t.dims), proto=lazy)]
    v = constant_node_value(ctx.node)
    if v is None:
        return None
    from onnx.helper import np_dtype_to_tensor_dtype

    return [TensorInfo(dtype=np_dtype_to_tensor_dtype(v.dtype), shape=tuple(v.shape), const=v)]


@register("Shape")
def shape(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return [TensorInfo(dtype=INT64, shape=(fresh_symbol(),))]
    r = len(x.shape)
    start = ctx.attr("start", 0)
    end = ctx.attr("end", r)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    dims = tuple(x.shape[start:end]) if end > start else ()
    value = dims
    const = np.array(dims, dtype=np.int64) if all(isinstance(d, int) for d in dims) else None
    return [TensorInfo(dtype=INT64, shape=(len(dims),), value=value, const=const)]


@register("Size")
def size(ctx: NodeContext):
    n = ctx.input(0).numel
    const = np.array(n, dtype=np.int64) if isinstance(n, int) else None
    return [TensorInfo(dtype=INT64, shape=(), value=(n,) if n is not None else None, const=const)]


def _flatten_dims(dims):
    return product(dims)


@register("Reshape")
def reshape(ctx: NodeContext):
    x = ctx.input(0)
    if ctx.opset < 5:
        target = ctx.attr("shape")
    else:
        target = ctx.ints(1)
    if target is None:
        t = ctx.input(1)
        if t.shape is not None and len(t.shape) == 1 and isinstance(t.shape[0], int):
            return [ctx.out(x.dtype, unknown_dims(t.shape[0]))]
        return [TensorInfo(dtype=x.dtype)]
    allowzero = ctx.attr("allowzero", 0)
    out = []
    neg = []
    for i, d in enumerate(target):
        if isinstance(d, int) and d == 0 and not allowzero:
            if x.shape is None or i >= len(x.shape):
                if x.shape is not None:
                    ctx.conflict("reshape", f"target shape {format_shape(tuple(target))} copies axis {i} (0) but the input has rank {len(x.shape)}", "a 0 in the target copies an existing input axis")
                out.append(None)
            else:
                out.append(x.shape[i])
        elif isinstance(d, int) and d == -1:
            neg.append(i)
            out.append(None)
        elif isinstance(d, int) and d < -1:
            ctx.conflict("reshape", f"target shape {format_shape(tuple(target))} has an invalid dim {d}", "dims are >= -1")
            return [TensorInfo(dtype=x.dtype)]
        else:
            out.append(d)
    if len(neg) > 1:
        ctx.conflict("reshape", f"target shape {format_shape(tuple(target))} has more than one -1", "at most one -1")
        return [ctx.out(x.dtype, tuple(out))]
    total = x.numel
    known = product([d for i, d in enumerate(out) if i not in neg])
    if neg:
        if total is not None and known is not None:
            if isinstance(known, int) and known == 0:
                out[neg[0]] = None
            else:
                q = floordiv(total, known)
                if not (isinstance(total, int) and isinstance(known, int)):
                    r = ratio(total, known)
                    if r is not None and is_sympy(r) and r.is_Number and not r.is_Integer:  # 3N / 2N: a whole number for no N
                        ctx.conflict(
                            "reshape",
                            f"cannot reshape {x} ({format_dim(total)} elements) into {format_shape(tuple(target))}: "
                            f"{format_dim(total)} is never a multiple of {format_dim(known)}",
                            "the input's element count must be a multiple of the product of the known target dims",
                            tensor=ctx.node.input[0],
                        )
                        out[neg[0]] = None
                        return [ctx.out(x.dtype, tuple(out))]
                if isinstance(total, int) and isinstance(known, int) and total % known:
                    ctx.conflict(
                        "reshape",
                        f"cannot reshape {x} ({total} elements) into {format_shape(tuple(target))}: "
                        f"{total} is not divisible by {known}",
                        "the input's element count must be a multiple of the product of the known target dims",
                        tensor=ctx.node.input[0],
                    )
                    q = None
                elif has_floor(q):
                    # symbolic and not exactly divisible: equal only for some values
                    _check_count(ctx, x, target, total, known, divisible_only=True)
                out[neg[0]] = q
    elif total is not None and known is not None:
        _check_count(ctx, x, target, total, known)
    value = None
    v = values_of(x)
    if v is not None and len(out) <= 1 and (not out or out[0] == len(v)):
        value = v  # a shape vector reshaped to (n,) or a scalar keeps its elements
    return [ctx.out(x.dtype, tuple(out), value)]


def _check_count(ctx, x, target, total, known, divisible_only=False):
    cmp = compare(total, known)
    if divisible_only:
        return
    if cmp.relation == Relation.DIFFERENT:
        ctx.conflict(
            "reshape",
            f"cannot reshape {x} ({format_dim(total)} elements) into {format_shape(tuple(target))} "
            f"({format_dim(known)} elements)",
            "Reshape keeps the element count",
            cmp,
            tensor=ctx.node.input[0],
        )
    elif cmp.relation == Relation.ONLY_WHEN:
        ctx.conflict(
            "reshape",
            f"reshape of {x} ({format_dim(total)} elements) into {format_shape(tuple(target))} "
            f"({format_dim(known)} elements) is valid only when {cmp.describe()}",
            "Reshape keeps the element count",
            cmp,
            tensor=ctx.node.input[0],
        )


@register("Flatten")
def flatten(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return [TensorInfo(dtype=x.dtype, shape=(fresh_symbol(), fresh_symbol()))]
    r = len(x.shape)
    axis = ctx.attr("axis", 1)
    a = axis + r if axis < 0 else axis
    if a < 0 or a > r:
        ctx.conflict("op", f"axis {axis} is out of range for {x}", "-rank <= axis <= rank")
        return [TensorInfo(dtype=x.dtype)]
    return [ctx.out(x.dtype, (product(x.shape[:a]), product(x.shape[a:])))]


@register("Transpose")
def transpose(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    perm = ctx.attr("perm")
    if perm is None:
        perm = list(range(r - 1, -1, -1))
    perm = list(perm)
    if sorted(p + r if p < 0 else p for p in perm) != list(range(r)):
        ctx.conflict("op", f"perm {perm} is not a permutation of the {r} axes of {x}", "perm lists every axis once")
        return [TensorInfo(dtype=x.dtype)]
    perm = [p + r if p < 0 else p for p in perm]
    value = None
    return [ctx.out(x.dtype, tuple(x.shape[p] for p in perm), value)]


def _axes(ctx: NodeContext, input_index: int):
    axes = ctx.attr("axes")
    if axes is not None:
        return list(axes)
    if ctx.has_input(input_index):
        return ctx.ints(input_index)
    return []


@register("Squeeze")
def squeeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = _axes(ctx, 1)
    if axes is None or x.shape is None:
        if x.shape is not None and axes is None:
            n = ctx.shape(1)
            ones = [i for i, d in enumerate(x.shape) if isinstance(d, int) and d == 1]
            others_not_one = all(compare(d, 1).relation == Relation.DIFFERENT for i, d in enumerate(x.shape) if i not in ones)
            if n is not None and len(n) == 1 and n[0] == len(ones) and others_not_one:
                # as many axes as there are size-1 dims: it can only squeeze those
                return [ctx.out(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in ones))]
            return [TensorInfo(dtype=x.dtype)]
        return None
    r = len(x.shape)
    if not axes:
        keep = [d for d in x.shape if not (isinstance(d, int) and d == 1)]
        if any(not isinstance(d, int) for d in x.shape):
            return [TensorInfo(dtype=x.dtype)]  # which symbolic dims are 1 is unknown
        out = tuple(keep)
    else:
        norm = []
        for a in axes:
            if not isinstance(a, int) or norm_axis(a, r) is None:
                ctx.conflict("op", f"axis {a} is out of range for {x}", "-rank <= axis < rank")
                return [TensorInfo(dtype=x.dtype)]
            norm.append(norm_axis(a, r))
        for a in norm:
            d = x.shape[a]
            if compare(d, 1).relation == Relation.DIFFERENT:
                ctx.conflict("op", f"cannot squeeze axis {a} of {x}: it is {format_dim(d)}, not 1", "squeezed axes have size 1")
        out = tuple(d for i, d in enumerate(x.shape) if i not in norm)
    value = x.value if x.value is not None and len(out) <= 1 else None
    return [ctx.out(x.dtype, out, value)]


@register("Unsqueeze")
def unsqueeze(ctx: NodeContext):
    x = ctx.input(0)
    axes = _axes(ctx, 1)
    if axes is None or x.shape is None:
        return None
    r = len(x.shape) + len(axes)
    norm = []
    for a in axes:
        if not isinstance(a, int) or norm_axis(a, r) is None:
            ctx.conflict("op", f"axis {a} is out of range for the rank-{r} output", "-rank <= axis < rank")
            return [TensorInfo(dtype=x.dtype)]
        norm.append(norm_axis(a, r))
    if len(set(norm)) != len(norm):
        ctx.conflict("op", f"axes {axes} repeat an axis", "axes are unique")
        return [TensorInfo(dtype=x.dtype)]
    it = iter(x.shape)
    out = tuple(1 if i in norm else next(it) for i in range(r))
    value = values_of(x) if len(out) <= 1 else None
    return [ctx.out(x.dtype, out, value)]


@register("Concat")
def concat(ctx: NodeContext):
    idx = [i for i in range(len(ctx.node.input)) if ctx.has_input(i)]
    infos = [ctx.input(i) for i in idx]
    dtype = next((i.dtype for i in infos if i.dtype is not None), None)
    shapes = [i.shape for i in infos]
    known = [s for s in shapes if s is not None]
    if not known:
        return [TensorInfo(dtype=dtype)]
    r = len(known[0])
    axis = ctx.attr("axis", 0 if ctx.opset < 4 else None)
    if axis is None:
        return None
    if any(len(s) != r for s in known):
        ctx.conflict("concat", "inputs have different ranks: " + ", ".join(format_shape(s) for s in shapes), "all inputs have the same rank")
        return [TensorInfo(dtype=dtype)]
    a = norm_axis(axis, r)
    if a is None:
        ctx.conflict("concat", f"axis {axis} is out of range for rank-{r} inputs", "-rank <= axis < rank")
        return [TensorInfo(dtype=dtype)]
    out = list(known[0])
    bad_axes, worst = [], None
    for k in range(r):
        if k == a:
            continue
        for j, s in enumerate(shapes):
            if s is None:
                continue
            c = compare(out[k], s[k])
            if c.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
                bad_axes.append(k)
                if worst is None or c.relation == Relation.DIFFERENT:
                    worst = c
                if c.relation == Relation.ONLY_WHEN and isinstance(out[k], int):
                    out[k] = s[k]  # keep the symbol downstream
                break
            if not isinstance(out[k], int) and isinstance(s[k], int):
                out[k] = s[k]
    if bad_axes:
        ctx.conflict(
            "concat",
            f"inputs disagree on axis {', '.join(map(str, bad_axes))} (concatenating on axis {a}): "
            + ", ".join(format_shape(s) for s in shapes)
            + (f"; equal only when {worst.describe()}" if worst.relation == Relation.ONLY_WHEN else ""),
            "all dims but the concat axis must match",
            worst,
        )
    if any(s is None for s in shapes):
        out[a] = None
    else:
        out[a] = product(1 for _ in ()) if False else _sum([s[a] for s in shapes])
    value = None
    if r == 1:
        vals = [values_of(i) for i in infos]
        if all(v is not None for v in vals):
            value = tuple(d for v in vals for d in v)
    elif r == 0:
        pass
    return [ctx.out(dtype, tuple(out), value)]


def _sum(dims):
    total = 0
    for d in dims:
        total = add(total, d)
    return total


@register("Gather")
def gather(ctx: NodeContext):
    data, idx = ctx.input(0), ctx.input(1)
    if data.shape is None or idx.shape is None:
        if data.shape is not None and idx.shape is None:
            return [TensorInfo(dtype=data.dtype)]
        return None
    r = len(data.shape)
    axis = ctx.attr("axis", 0)
    a = norm_axis(axis, r)
    if a is None or r == 0:
        ctx.conflict("op", f"axis {axis} is out of range for {data}", "-rank <= axis < rank")
        return [TensorInfo(dtype=data.dtype)]
    out = tuple(data.shape[:a]) + tuple(idx.shape) + tuple(data.shape[a + 1 :])
    value = None
    dv, iv = values_of(data), values_of(idx)
    if r == 1 and dv is not None and iv is not None and len(idx.shape) <= 1:
        n = len(dv)
        try:
            picked = []
            for i in iv:
                if not isinstance(i, int) or not -n <= i < n:
                    picked = None
                    break
                picked.append(dv[i])
            value = tuple(picked) if picked is not None else None
        except (TypeError, IndexError):
            value = None
    ivs = values_of(idx)
    if ivs is not None and isinstance(data.shape[a], int):
        n = data.shape[a]
        bad = [i for i in ivs if isinstance(i, int) and not -n <= i < n]
        if bad:
            ctx.conflict("op", f"index {bad[0]} is out of range for axis {a} of {data}", f"indices lie in [-{n}, {n - 1}]")
    return [ctx.out(data.dtype, out, value)]


def _clamp_slice(start, end, step, dim):
    """Length of ``range(dim)[start:end:step]`` with ONNX's clamping; None if unknown."""
    if not all(isinstance(v, int) for v in (start, end, step)):
        return _symbolic_slice(start, end, step, dim)
    if step == 0:
        return None
    if not isinstance(dim, int):
        return _symbolic_slice(start, end, step, dim)
    return len(range(*slice(start, end, step).indices(dim)))


_BIG = 2**62


def _symbolic_slice(start, end, step, dim):
    if not (isinstance(start, int) and isinstance(step, int)) or step == 0:
        return None
    # common exporter forms on a symbolic dim: x[a:], x[:-k], x[a:b] with static a, b
    if step == 1 and start >= 0:
        if isinstance(end, int):
            if end >= _BIG // 4 or end == 2**63 - 1 or end >= 2**31 - 1:
                return sub(dim, start) if start == 0 or _nonneg(sub(dim, start)) else None
            if end < 0:
                # dim - start + end, valid when positive
                n = add(sub(dim, start), end)
                return n if _nonneg(n) else None
            if start == 0 and end == 1:
                return 1  # x[:1]: min(1, dim) is 1 for any dim >= 1
            return None  # min(end, dim) - start: unknown without dim
        # symbolic end, e.g. Shape-derived: assume it lies within the dim
        if compare(end, dim).relation == Relation.EQUAL:
            return sub(dim, start)
        return None
    if step == 1 and start < 0 and isinstance(end, int) and end >= 2**31 - 1:
        return 1 if start == -1 else None  # min(-start, dim): x[-1:] is one step long
    if step == -1 and isinstance(end, int) and end <= -(2**31) and start in (-1, 2**63 - 1) or (step == -1 and start >= 2**31 - 1 and isinstance(end, int) and end <= -(2**31)):
        return dim
    return None


def _prefix_of_a_table(ctx, start, end, step, dim, axis):
    """``table[s:seq]`` of a static axis (a positional table's first ``seq`` rows): ``seq - s`` long while
    ``seq <= dim``, a condition on the input recorded as such (beyond it onnxruntime clamps to ``dim``)."""
    if not (isinstance(dim, int) and isinstance(start, int) and isinstance(step, int)) or step != 1 or start < 0:
        return None
    if isinstance(end, int) or end is None or not 0 <= start <= dim:
        return None
    from ..constraints import require_at_most

    n = sub(end, start)
    if not _nonneg(n) or not require_at_most(ctx, end, dim, f"Slice takes rows {start}..{format_dim(end)} of axis {axis}, "
                                              f"{dim} long"):
        return None
    return n


def _nonneg(d) -> bool:
    if isinstance(d, int):
        return d >= 0
    try:
        return bool(d.is_nonnegative)
    except AttributeError:
        return False


@register("Slice")
def slice_(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    r = len(x.shape)
    if r == 0:
        ctx.conflict("op", f"Slice of a scalar {x}", "a tensor of rank >= 1")
        return [TensorInfo(dtype=x.dtype)]
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes = ctx.attr("axes")
        steps = None
    else:
        starts, ends = ctx.ints(1), ctx.ints(2)
        axes = ctx.ints(3) if ctx.has_input(3) else None
        steps = ctx.ints(4) if ctx.has_input(4) else None
        if ctx.has_input(3) and axes is None:
            return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in x.shape))]
    if starts is None or ends is None or (ctx.has_input(4) and steps is None):
        # rank is still known; which axes change is not
        if axes is not None and all(isinstance(a, int) for a in axes):
            touched = {norm_axis(a, r) for a in axes}
            return [ctx.out(x.dtype, tuple(fresh_symbol() if i in touched else d for i, d in enumerate(x.shape)))]
        return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in x.shape))]
    if axes is None:
        axes = list(range(len(starts)))
    if steps is None:
        steps = [1] * len(starts)
    if not (len(starts) == len(ends) == len(axes) == len(steps)):
        ctx.conflict("op", "starts, ends, axes and steps have different lengths", "one entry per sliced axis")
        return [TensorInfo(dtype=x.dtype)]
    out = list(x.shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        if not isinstance(a, int) or norm_axis(a, r) is None:
            ctx.conflict("op", f"axis {a} is out of range for {x}", "-rank <= axis < rank")
            return [TensorInfo(dtype=x.dtype)]
        a = norm_axis(a, r)
        if isinstance(st, int) and st == 0:
            ctx.conflict("op", "slice step is 0", "steps are non-zero")
            return [TensorInfo(dtype=x.dtype)]
        n = _clamp_slice(s, e, st, x.shape[a])
        if n is None:
            n = _prefix_of_a_table(ctx, s, e, st, x.shape[a], a)
        out[a] = n if n is not None else fresh_symbol()
    value = None
    v = values_of(x)
    if v is not None and r == 1 and all(isinstance(q, int) for q in (*starts, *ends, *steps)):
        value = tuple(v[slice(starts[0], ends[0], steps[0])]) if len(starts) == 1 else None
    return [ctx.out(x.dtype, tuple(out), value)]


@register("Expand")
def expand(ctx: NodeContext):
    x = ctx.input(0)
    target = ctx.ints(1)
    if target is None:
        t = ctx.input(1)
        if x.shape is not None and t.shape is not None and len(t.shape) == 1 and isinstance(t.shape[0], int):
            n = max(t.shape[0], len(x.shape))
            return [ctx.out(x.dtype, unknown_dims(n))]
        return [TensorInfo(dtype=x.dtype)]
    if x.shape is None:
        return [TensorInfo(dtype=x.dtype)]
    from ._common import broadcast_dims

    rank = max(len(x.shape), len(target))
    xs = (1,) * (rank - len(x.shape)) + tuple(x.shape)
    ts = (1,) * (rank - len(target)) + tuple(target)
    out = []
    for k in range(rank):
        out.append(broadcast_dims(ctx, [xs[k], ts[k]], rank - k, "broadcast", "Expand broadcasts the input to the shape (numpy rules)", [0]))
    value = None
    v = values_of(x)
    if v is not None and len(v) == 1 and all(d == 1 for d in out):
        value = v  # one element broadcast to one element: the same value (jax2onnx builds indices so)
    return [ctx.out(x.dtype, tuple(out), value)]


@register("Tile")
def tile(ctx: NodeContext):
    x = ctx.input(0)
    reps = ctx.ints(1)
    if x.shape is None:
        return None
    if reps is None:
        return [ctx.out(x.dtype, tuple(fresh_symbol() for _ in x.shape))]
    if len(reps) != len(x.shape):
        ctx.conflict("op", f"repeats has {len(reps)} entries for a rank-{len(x.shape)} input {x}", "one repeat per axis")
        return [TensorInfo(dtype=x.dtype)]
    from ...dims import mul

    return [ctx.out(x.dtype, tuple(mul(d, k) for d, k in zip(x.shape, reps)))]


@register("ConstantOfShape")
def constant_of_shape(ctx: NodeContext):
    dims = ctx.ints(0)
    value = ctx.attrs.get("value")
    if value is not None and not isinstance(value, onnx.TensorProto):
        raise AttributeTypeError(f"attribute 'value' is a {type(value).__name__}, the op needs a tensor")
    dtype = value.data_type if value is not None else 1
    if dims is None:
        t = ctx.input(0)
        if t.shape is not None and len(t.shape) == 1 and isinstance(t.shape[0], int):
            return [ctx.out(dtype, unknown_dims(t.shape[0]))]
        return [TensorInfo(dtype=dtype)]
    for d in dims:
        if isinstance(d, int) and d < 0:
            ctx.conflict("op", f"negative dim {d} in the requested shape", "dims are >= 0")
            return [TensorInfo(dtype=dtype)]
    out_value = None
    if len(dims) == 1 and isinstance(dims[0], int) and dims[0] <= 64 and value is not None:
        from onnx import numpy_helper

        fill = numpy_helper.to_array(value).reshape(-1)
        if fill.dtype.kind in "iu" and fill.size:
            out_value = tuple(int(fill[0]) for _ in range(dims[0]))
    return [ctx.out(dtype, tuple(dims), out_value)]


@register("Range")
def range_(ctx: NodeContext):
    dtype = ctx.dtype(0)
    s, l, d = (values_of(ctx.input(i)) for i in range(3))
    if None in (s, l, d) or not (len(s) == len(l) == len(d) == 1):
        return [ctx.out(dtype, (fresh_symbol(),))]
    s, l, d = s[0], l[0], d[0]
    if isinstance(d, int) and d != 0:
        span = sub(l, s)
        if isinstance(span, int):
            n = max(0, -(-span // d))
        elif d == 1:
            n = span if _nonneg(span) else fresh_symbol()
        elif d > 0:
            n = ceildiv(span, d) if _nonneg(span) else fresh_symbol()
        elif d == -1:
            n = sub(s, l) if _nonneg(sub(s, l)) else fresh_symbol()  # Range(n - 1, -1, -1): n values
        else:
            n = ceildiv(sub(s, l), -d) if _nonneg(sub(s, l)) else fresh_symbol()
        value = None
        if isinstance(n, int) and n <= 64 and isinstance(s, int):
            value = tuple(s + k * d for k in range(n))
        elif d == 1 and isinstance(s, int):
            value = None
        return [ctx.out(dtype, (n,), value)]
    return [ctx.out(dtype, (fresh_symbol(),))]


@register("Split")
def split(ctx: NodeContext):
    x = ctx.input(0)
    n = len(ctx.node.output)
    if x.shape is None:
        return None
    r = len(x.shape)
    axis = ctx.attr("axis", 0)
    a = norm_axis(axis, r)
    if a is None:
        ctx.conflict("op", f"axis {axis} is out of range for {x}", "-rank <= axis < rank")
        return [TensorInfo(dtype=x.dtype) for _ in range(n)]
    parts = ctx.attr("split")
    if parts is None and ctx.has_input(1):
        parts = ctx.ints(1)
        if parts is None:
            return [ctx.out(x.dtype, tuple(fresh_symbol() if i == a else d for i, d in enumerate(x.shape))) for _ in range(n)]
    dim = x.shape[a]
    if parts is None:
        num = ctx.attr("num_outputs", n)
        if isinstance(dim, int):
            size = -(-dim // num)
            parts = [size] * (num - 1) + [dim - size * (num - 1)]
            if parts[-1] < 0:
                parts = None
        else:
            q = floordiv(dim, num)
            parts = [q] * num if q is not None and not has_floor(q) else None
        if parts is None:
            return [ctx.out(x.dtype, tuple(fresh_symbol() if i == a else d for i, d in enumerate(x.shape))) for _ in range(n)]
    else:
        parts = list(parts)
        total = _sum(parts)
        c = compare(total, dim)
        if c.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
            ctx.conflict(
                "op",
                f"split sizes {list(map(format_dim, parts))} sum to {format_dim(total)} but axis {a} of {x} is {format_dim(dim)}"
                + (f" (equal only when {c.describe()})" if c.relation == Relation.ONLY_WHEN else ""),
                "split sizes add up to the axis length",
                c,
            )
    outs = []
    v = values_of(x) if r == 1 else None
    start = 0
    for k in range(n):
        p = parts[k] if k < len(parts) else fresh_symbol()
        value = None
        if v is not None and isinstance(p, int) and isinstance(start, int) and start + p <= len(v):
            value = tuple(v[start : start + p])  # a shape vector split into its dims (onnxruntime's Gather fusion)
        start = start + p if isinstance(p, int) and isinstance(start, int) else None
        outs.append(ctx.out(x.dtype, tuple(p if i == a else d for i, d in enumerate(x.shape)), value))
    return outs


@register("NonZero")
def nonzero(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return [TensorInfo(dtype=INT64)]
    return [ctx.out(INT64, (len(x.shape), fresh_symbol()))]


@register("GatherElements")
def gather_elements(ctx: NodeContext):
    data, idx = ctx.input(0), ctx.input(1)
    if idx.shape is None:
        return None
    if data.shape is not None and len(data.shape) != len(idx.shape):
        ctx.conflict("op", f"data {data} and indices {idx} have different ranks", "data and indices have the same rank")
    return [ctx.out(data.dtype, idx.shape)]


def simplify_all(dims):
    return tuple(simplify(d) for d in dims)
