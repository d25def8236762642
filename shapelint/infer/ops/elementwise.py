"""Elementwise ops: same-shape unary ops and broadcasting n-ary ops.

Integer arithmetic on small value tensors (the shape sub-graphs exporters
emit: ``Shape → Gather → Mul → Concat``) is carried out symbolically.
"""

from __future__ import annotations

from ...dims import Relation, add, compare, floordiv, mod, mul, sub, sympy_call
from ..registry import NodeContext, register, values_of
from ..table import TensorInfo
from ._common import BOOL, broadcast, norm_axis

UNARY_SAME = (
    "Relu Sigmoid Tanh Neg Abs Exp Log Sqrt Reciprocal Floor Ceil Round Erf Sin Cos Tan Asin Acos Atan "
    "Sinh Cosh Asinh Acosh Atanh LeakyRelu Elu Selu Gelu HardSigmoid HardSwish Softplus Softsign Celu Mish "
    "Sign ThresholdedRelu Shrink Clip LpNormalization MeanVarianceNormalization Trilu CumSum BitwiseNot "
    "Swish IsNaN IsInf Not"
).split()
_BOOL_UNARY = {"IsNaN", "IsInf", "Not"}


@register(*UNARY_SAME)
def unary(ctx: NodeContext):
    x = ctx.input(0)
    if x.kind != "tensor":
        return None
    dtype = BOOL if ctx.node.op_type in _BOOL_UNARY else x.dtype
    value = None
    v = values_of(x)
    if v is not None and ctx.node.op_type in ("Neg", "Abs", "Identity", "Floor", "Ceil", "Round"):
        if ctx.node.op_type == "Neg":
            value = tuple(mul(-1, d) for d in v)
        elif ctx.node.op_type == "Abs":
            value = tuple(d if not isinstance(d, int) else abs(d) for d in v)
        else:
            value = v
    if x.dtype is None and ctx.node.op_type not in _BOOL_UNARY:
        return [ctx.out(None, x.shape, value)] if x.shape is not None else None
    return [ctx.out(dtype, x.shape, value)]


@register("Identity")
def identity(ctx: NodeContext):
    x = ctx.input(0)
    if x.kind != "tensor":
        return [TensorInfo(kind=x.kind, elem=x.elem)] if x.kind != "tensor" and x.elem is not None else None
    # the value passes through as it is: a weight's proto is still read only if someone asks
    return [TensorInfo(dtype=x.dtype, shape=x.shape, value=x.value, const=x._const, proto=x.proto)]


@register("Softmax", "LogSoftmax", "Hardmax")
def softmax(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is not None:
        default = -1 if ctx.opset >= 13 else 1
        axis = ctx.attr("axis", default)
        if norm_axis(axis, len(x.shape)) is None:
            ctx.conflict("op", f"axis {axis} is out of range for a rank-{len(x.shape)} input {x}", "-rank <= axis < rank")
    return [ctx.out(x.dtype, x.shape)] if x.dtype is not None else None


@register("Dropout")
def dropout(ctx: NodeContext):
    x = ctx.input(0)
    outs = [ctx.out(x.dtype, x.shape) if x.dtype is not None else None]
    if len(ctx.node.output) > 1:
        outs.append(ctx.out(BOOL if ctx.opset >= 12 else x.dtype, x.shape) if x.shape is not None else None)
    return outs


@register("Cast")
def cast(ctx: NodeContext):
    x = ctx.input(0)
    to = ctx.attr("to")
    if not isinstance(to, int):
        return None
    value = values_of(x) if to in (6, 7, 12, 13) else None  # int32/int64/uint32/uint64
    if value is not None and x.dtype in (1, 10, 11, 16):  # float source: values may be fractional
        value = None
    return [ctx.out(to, x.shape, value)] if x.shape is not None else [TensorInfo(dtype=to)]


@register("CastLike")
def cast_like(ctx: NodeContext):
    x, target = ctx.input(0), ctx.input(1)
    if target.dtype is None:
        return None
    return [ctx.out(target.dtype, x.shape)] if x.shape is not None else [TensorInfo(dtype=target.dtype)]


_COMPARE = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"}
_ARITH = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor"}


@register(*sorted(_COMPARE | _ARITH))
def nary(ctx: NodeContext):
    if ctx.opset < 7:
        return None  # legacy broadcast attribute: onnx handles it
    idx = [i for i in range(len(ctx.node.input)) if ctx.has_input(i)]
    if not idx:
        ctx.conflict("op", f"{ctx.node.op_type} has no inputs", "at least one input")
        return None
    if any(ctx.input(i).kind != "tensor" for i in idx):
        return None
    shape = broadcast(ctx, idx)
    op = ctx.node.op_type
    dtype = BOOL if op in _COMPARE else ctx.dtype(0)
    value = _arith_values(op, [values_of(ctx.input(i)) for i in idx], shape, ctx) if shape is not None and len(shape) <= 1 else None
    if dtype is None and shape is None:
        return None
    return [ctx.out(dtype, shape, value)]


def _int_op(op: str, a, b):
    if op == "Add":
        return add(a, b)
    if op == "Sub":
        return sub(a, b)
    if op == "Mul":
        return mul(a, b)
    if op == "Div":
        if isinstance(a, int) and isinstance(b, int):
            if b == 0:
                return None
            q = abs(a) // abs(b)
            return q if (a >= 0) == (b >= 0) else -q
        return floordiv(a, b)
    if op == "Mod":
        return mod(a, b)
    if op == "Max":
        if isinstance(a, int) and isinstance(b, int):
            return max(a, b)
        c = compare(a, b)
        if c.relation == Relation.EQUAL:
            return a
        return sympy_call("Max", a, b)
    if op == "Min":
        if isinstance(a, int) and isinstance(b, int):
            return min(a, b)
        c = compare(a, b)
        if c.relation == Relation.EQUAL:
            return a
        return sympy_call("Min", a, b)
    if op == "Equal":
        c = compare(a, b)
        if c.relation == Relation.EQUAL:
            return 1
        if c.relation == Relation.DIFFERENT:
            return 0
        return None
    if op in ("Less", "Greater", "LessOrEqual", "GreaterOrEqual") and isinstance(a, int) and isinstance(b, int):
        return int({"Less": a < b, "Greater": a > b, "LessOrEqual": a <= b, "GreaterOrEqual": a >= b}[op])
    return None


def _arith_values(op, vals, shape, ctx):
    if op not in ("Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"):
        return None
    if len(vals) != 2 or any(v is None for v in vals):
        return None
    if any(ctx.input(i).dtype not in (6, 7, 9, None) and op not in ("Equal",) for i in range(2)):
        return None
    n = 1 if not shape else shape[0]
    if not isinstance(n, int):
        return None
    a, b = vals
    if len(a) not in (1, n) or len(b) not in (1, n):
        return None
    out = []
    for k in range(n):
        r = _int_op(op, a[k if len(a) > 1 else 0], b[k if len(b) > 1 else 0])
        if r is None:
            return None
        out.append(r)
    return tuple(out)


@register("Where")
def where(ctx: NodeContext):
    if ctx.opset < 9:
        return None
    shape = broadcast(ctx, [0, 1, 2])
    dtype = ctx.dtype(1) or ctx.dtype(2)
    value = None
    c, x, y = (values_of(ctx.input(i)) for i in range(3))
    if shape is not None and len(shape) <= 1 and None not in (c, x, y):
        n = shape[0] if shape else 1
        if isinstance(n, int):
            pick = lambda v, k: v[k if len(v) > 1 else 0]  # noqa: E731
            try:
                value = tuple(pick(x, k) if pick(c, k) else pick(y, k) for k in range(n))
            except IndexError:
                value = None
    if shape is None and dtype is None:
        return None
    return [ctx.out(dtype, shape, value)]


@register("PRelu")
def prelu(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None:
        return None
    shape = broadcast(ctx, [0, 1])
    return [ctx.out(x.dtype, shape if shape is not None else x.shape)]
