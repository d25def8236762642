"""MatMul and Gemm: the inner dimensions must agree."""

from __future__ import annotations

from ...dims import format_shape
from ..registry import NodeContext, register
from ._common import broadcast_dims

INNER = "the inner dimensions must match: A[..., k] @ B[..., k, n]"


@register("MatMul", "MatMulInteger", "QLinearMatMul")
def matmul(ctx: NodeContext):
    qlinear = ctx.node.op_type == "QLinearMatMul"
    ia, ib = (0, 3) if qlinear else (0, 1)
    a, b = ctx.input(ia), ctx.input(ib)
    if ctx.node.op_type == "MatMul":
        dtype = a.dtype or b.dtype
    elif ctx.node.op_type == "MatMulInteger":
        dtype = 6  # int32
    else:
        dtype = ctx.dtype(7)
    if a.shape is None or b.shape is None:
        return [ctx.out(dtype, None)] if dtype is not None else None
    return [ctx.out(dtype, matmul_dims(ctx, tuple(a.shape), tuple(b.shape), ia, ib))]


def matmul_dims(ctx: NodeContext, sa: tuple, sb: tuple, ia: int, ib: int) -> tuple | None:
    """numpy.matmul's result shape for operand shapes ``sa`` @ ``sb`` (inputs ``ia``, ``ib`` of the node),
    reporting an inner-dimension or batch-broadcast conflict; None when a scalar makes it undefined."""
    shown_a, shown_b = sa, sb
    if len(sa) == 0 or len(sb) == 0:
        ctx.conflict("matmul", f"MatMul of a scalar: {format_shape(sa)} @ {format_shape(sb)}", "operands have rank >= 1", inputs=[ia, ib])
        return None
    drop_a = len(sa) == 1
    drop_b = len(sb) == 1
    if drop_a:
        sa = (1,) + sa
    if drop_b:
        sb = sb + (1,)
    ctx.require_equal(
        sa[-1],
        sb[-2],
        "matmul",
        lambda: f"inner dimensions differ, {format_shape(shown_a)} @ {format_shape(shown_b)}",
        INNER,
        inputs=[ia, ib],
    )
    ba, bb = sa[:-2], sb[:-2]
    rank = max(len(ba), len(bb))
    ba = (1,) * (rank - len(ba)) + ba
    bb = (1,) * (rank - len(bb)) + bb
    batch = tuple(
        broadcast_dims(ctx, [x, y], rank - k + 2, "broadcast", "batch dimensions of MatMul broadcast (numpy rules)", [ia, ib])
        for k, (x, y) in enumerate(zip(ba, bb))
    )
    return batch + ((sa[-2],) if not drop_a else ()) + ((sb[-1],) if not drop_b else ())


@register("Gemm")
def gemm(ctx: NodeContext):
    a, b = ctx.input(0), ctx.input(1)
    dtype = a.dtype or b.dtype
    if a.shape is None or b.shape is None:
        return None
    if len(a.shape) != 2 or len(b.shape) != 2:
        if ctx.opset >= 7 or len(a.shape) > 2:
            ctx.conflict("op", f"Gemm takes rank-2 operands, got {format_shape(a.shape)} and {format_shape(b.shape)}", "A and B are 2-D matrices", inputs=[0, 1])
            return [ctx.out(dtype, None)]
        return None
    ta, tb = ctx.attr("transA", 0), ctx.attr("transB", 0)
    m, ka = (a.shape[1], a.shape[0]) if ta else (a.shape[0], a.shape[1])
    kb, n = (b.shape[1], b.shape[0]) if tb else (b.shape[0], b.shape[1])
    ctx.require_equal(
        ka,
        kb,
        "matmul",
        lambda: f"inner dimensions differ, A{format_shape(a.shape)}{'ᵀ' if ta else ''} @ B{format_shape(b.shape)}{'ᵀ' if tb else ''}",
        "Gemm computes op(A) @ op(B): op(A) is (M, K) and op(B) is (K, N)",
        inputs=[0, 1],
    )
    if ctx.has_input(2):
        c = ctx.input(2)
        if c.shape is not None and len(c.shape) <= 2:
            cs = (1,) * (2 - len(c.shape)) + tuple(c.shape)
            for axis, (want, got) in enumerate(zip((m, n), cs)):
                if isinstance(got, int) and got == 1:
                    continue
                from ...dims import Relation, compare

                cmp = compare(want, got)
                if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
                    ctx.conflict(
                        "broadcast",
                        f"bias C{format_shape(c.shape)} cannot broadcast to the ({m}, {n}) result".replace("(", "(", 1),
                        "C broadcasts to (M, N)",
                        cmp,
                        inputs=[0, 1, 2],
                    )
                    break
    return [ctx.out(dtype, (m, n))]
