"""Helpers shared by the op handlers: broadcasting, axes, dtypes."""

from __future__ import annotations

import onnx

from ...dims import Dim, Relation, compare, format_dim, format_shape, fresh_symbol, free_names, is_named
from ...poly import Poly
from ..registry import NodeContext

BOOL = onnx.TensorProto.BOOL
INT64 = onnx.TensorProto.INT64
INT32 = onnx.TensorProto.INT32
#: no real tensor has more axes; a longer shape vector is a hostile or broken file
MAX_RANK = 64


def unknown_dims(n) -> tuple | None:
    """``n`` anonymous dims, or unknown rank when ``n`` is not a plausible rank."""
    if not isinstance(n, int) or not 0 <= n <= MAX_RANK:
        return None
    return tuple(fresh_symbol() for _ in range(n))


def norm_axis(axis: int, rank: int) -> int | None:
    """Negative axes count from the end; None when out of range."""
    if axis < -rank or axis >= max(rank, 1) and not (rank == 0 and axis == 0):
        return None
    return axis + rank if axis < 0 else axis


def simpler(a: Dim, b: Dim) -> Dim:
    """Of two dims known equal, the one written with fewer operations (``H`` over ``ceil(ceil(H/2)/2)*4``)."""
    if type(a) in (int, Poly) and type(b) in (int, Poly):
        return a  # canonical forms: equal dims are the same polynomial
    import sympy

    try:
        return b if sympy.count_ops(b) < sympy.count_ops(a) else a
    except (TypeError, ValueError):
        return a


def broadcast_dims(ctx: NodeContext, dims: list[Dim], axis_from_end: int, kind: str, requirement: str, inputs) -> Dim:
    """Broadcast one axis across operands (numpy rules), reporting refuted pairs."""
    out: Dim = 1
    for d in dims:
        if d is None:
            if not (isinstance(out, int) and out > 1):
                out = None
            continue
        if isinstance(d, int) and d == 1:
            continue
        if isinstance(out, int) and out == 1:
            out = d
            continue
        if out is None:
            out = d if isinstance(d, int) else out
            continue
        cmp = compare(out, d)
        if cmp.relation == Relation.EQUAL:
            if isinstance(d, int):
                out = d
            continue
        if isinstance(out, int) and isinstance(d, int):
            ctx.conflict(
                kind,
                f"operands cannot broadcast: {format_dim(out)} vs {format_dim(d)} at axis -{axis_from_end}"
                f" of {' and '.join(format_shape(ctx.shape(i)) for i in inputs)}",
                requirement,
                cmp,
                inputs=inputs,
            )
            return None  # no size is right here: unknown downstream, no second finding
        # one or both symbolic: fine at run time only if the symbol is 1 or equal
        static = out if isinstance(out, int) else d if isinstance(d, int) else None
        sym = d if static is out else out
        if static is not None and free_names(sym) and not any(
            not s.name or not is_named(s) for s in sym.free_symbols
        ):
            cmp_k = compare(sym, static)
            cmp_1 = compare(sym, 1)
            shapes = " and ".join(format_shape(ctx.shape(i)) for i in inputs)
            if cmp_k.relation == Relation.DIFFERENT and cmp_1.relation == Relation.DIFFERENT:
                ctx.conflict(
                    kind,
                    f"operands cannot broadcast: {format_dim(sym)} vs {static} at axis -{axis_from_end} of {shapes}",
                    requirement,
                    cmp_k,
                    inputs=inputs,
                )
            elif cmp_k.relation == Relation.ONLY_WHEN:
                ctx.conflict(
                    kind,
                    f"operands broadcast only when {format_dim(sym)} is {static} (or 1): {shapes}",
                    requirement,
                    cmp_k,
                    inputs=inputs,
                )
                # when valid (sym is static or 1) the result is static: keep it, as onnxruntime does;
                # SL501 reports the consequences downstream once
            out = static
        elif static is not None:
            out = static
        else:
            if cmp.relation == Relation.UNKNOWN:
                # equal for some sizes only (an FPN's upsampled and lateral maps): a precondition, carried as one
                from ..constraints import require_equal_when

                if require_equal_when(ctx, out, d, f"{ctx.node.op_type} needs axis -{axis_from_end} of its operands equal"):
                    out = simpler(out, d)  # equal under the condition: carry the plainer form on
                    continue
            # two different symbols: keep the named/more informative one
            if free_names(d) and not free_names(out):
                out = d
    return out


def broadcast(ctx: NodeContext, idx: list[int], kind: str = "broadcast") -> tuple | None:
    shapes = [ctx.shape(i) for i in idx]
    if any(s is None for s in shapes):
        return None
    first = shapes[0]
    if all(s == first for s in shapes[1:]):
        return first  # identical shapes broadcast to themselves
    rank = max((len(s) for s in shapes), default=0)
    out = []
    req = "each axis must be equal across operands or 1 (numpy broadcasting)"
    for k in range(rank, 0, -1):
        dims = [s[len(s) - k] if len(s) >= k else 1 for s in shapes]
        out.append(broadcast_dims(ctx, dims, k, kind, req, idx))
    return tuple(d if d is not None else fresh_symbol() for d in out)


def unidirectional(target: tuple, source: tuple) -> bool:
    """True if ``source`` can broadcast to ``target`` (statically checkable part)."""
    if len(source) > len(target):
        return False
    for t, s in zip(reversed(target), reversed(source)):
        if isinstance(s, int) and s == 1:
            continue
        if compare(t, s).relation == Relation.DIFFERENT:
            return False
    return True
