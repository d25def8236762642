"""onnxruntime's contrib ops (domain ``com.microsoft``): what its transformer optimizer, its quantizers and
its saved session graphs are made of.

Each handler follows the op's documented semantics (onnxruntime's ``docs/ContribOperators.md`` and the
op schemas it registers): fused attention, layer norms and GELUs, quantized matmuls and convolutions,
the QLinear* family.  An optional output that is present gets its shape too.  A handler never returns
"unknown op": when its inputs are unknown its outputs are unknown (no SL001), the reason lying upstream.
"""

from __future__ import annotations

import functools

import onnx

from ...dims import (Relation, add, compare, floordiv, format_dim, format_shape, fresh_symbol, has_floor, mul, product,
                     sub)
from ..registry import NodeContext, register, values_of
from ..table import TensorInfo
from ._common import BOOL, INT32, INT64, broadcast, norm_axis

MS = "com.microsoft"
FLOAT = onnx.TensorProto.FLOAT
UINT8 = onnx.TensorProto.UINT8

__all__: list[str] = []


def contrib(*op_types: str, domain: str = MS):
    """Register a com.microsoft handler; outputs it leaves out or returns as None are unknown tensors."""

    def deco(fn):
        @functools.wraps(fn)
        def handler(ctx: NodeContext):
            got = fn(ctx)
            got = list(got) if got is not None else []
            got += [None] * (len(ctx.node.output) - len(got))
            return [g if g is not None else TensorInfo() for g in got[: len(ctx.node.output)]]

        return register(*op_types, domain=domain)(handler)

    return deco


def _head_size(ctx: NodeContext, hidden, heads):
    """hidden / heads, reporting a hidden size the heads do not divide."""
    if not isinstance(heads, int) or heads <= 0 or hidden is None:
        return None
    if isinstance(hidden, int):
        if hidden % heads:
            ctx.conflict("op", f"hidden size {hidden} is not a multiple of num_heads={heads}", "the hidden size splits into num_heads heads")
            return None
        return hidden // heads
    q = floordiv(hidden, heads)
    return q if q is not None and not has_floor(q) else None


def _same_as(ctx: NodeContext, i: int = 0, dtype=None) -> TensorInfo | None:
    x = ctx.input(i)
    if x.shape is None and x.dtype is None:
        return None
    return ctx.out(dtype if dtype is not None else x.dtype, x.shape)


def _last_dim_matches(ctx: NodeContext, x_index: int, v_index: int, what: str) -> None:
    """A 1-D parameter (gamma, beta, bias) must have one entry per element of x's last axis."""
    x, v = ctx.input(x_index), ctx.input(v_index)
    if not ctx.has_input(v_index) or x.shape is None or v.shape is None or not x.shape or len(v.shape) != 1:
        return
    cmp = compare(x.shape[-1], v.shape[0])
    if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
        ctx.conflict(
            "op",
            f"{what} {format_shape(v.shape)} does not match the last axis of the input {format_shape(x.shape)}",
            f"{what} has one entry per element of the normalised (last) axis",
            cmp,
            inputs=[x_index, v_index],
        )


# ------------------------------------------------------------------ elementwise
@contrib("Gelu", "QuickGelu", "Inverse", "Trilu", "ScaledSiLU", "RotaryEmbedding", "GemmaRotaryEmbedding",
         "QuantizeWithOrder", "DequantizeWithOrder", "QOrderedGelu", "LongformerAttention")
def same_shape(ctx: NodeContext):
    op = ctx.node.op_type
    dtype = None
    if op == "QuantizeWithOrder":
        dtype = onnx.TensorProto.INT8
    elif op == "DequantizeWithOrder":
        dtype = ctx.attr("to", FLOAT)
    if op == "RotaryEmbedding":
        _rotary_checks(ctx)
    return [_same_as(ctx, 0, dtype)]


def _rotary_checks(ctx: NodeContext) -> None:
    x, cos = ctx.input(0), ctx.input(2)
    if x.shape is None or cos.shape is None or len(cos.shape) != 2:
        return
    dim = ctx.attr("rotary_embedding_dim", 0)
    if dim:
        half = dim // 2
    elif len(x.shape) == 4:
        half = floordiv(x.shape[3], 2)
    elif len(x.shape) == 3 and ctx.attr("num_heads", 0):
        hs = _head_size(ctx, x.shape[2], ctx.attr("num_heads", 0))
        half = floordiv(hs, 2) if hs is not None else None
    else:
        return
    cmp = compare(cos.shape[1], half)
    if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
        ctx.conflict("op", f"cos_cache {format_shape(cos.shape)} has {format_dim(cos.shape[1])} columns; the rotary "
                     f"dimension needs {format_dim(half)}", "cos_cache and sin_cache are (max_sequence_length, rotary_dim / 2)",
                     cmp, inputs=[0, 2])


@contrib("FastGelu", "BiasGelu", "BiasAdd", "ComplexMul", "ComplexMulConj")
def biased_elementwise(ctx: NodeContext):
    idx = [i for i in range(len(ctx.node.input)) if ctx.has_input(i)]
    if not idx or any(ctx.input(i).shape is None for i in idx):
        return [_same_as(ctx, 0)]
    return [ctx.out(ctx.dtype(0), broadcast(ctx, idx))]


@contrib("BiasSplitGelu")
def bias_split_gelu(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None or not x.shape:
        return [TensorInfo(dtype=x.dtype)]
    half = floordiv(x.shape[-1], 2)
    return [ctx.out(x.dtype, tuple(x.shape[:-1]) + (half,))]


@contrib("SwiGLU")
def swiglu(ctx: NodeContext):
    g = ctx.input(0)
    if ctx.has_input(1) or g.shape is None or not g.shape:
        return [_same_as(ctx, 0)]
    return [ctx.out(g.dtype, tuple(g.shape[:-1]) + (floordiv(g.shape[-1], 2),))]


@contrib("BiasDropout", "BitmaskBiasDropout")
def bias_dropout(ctx: NodeContext):
    y = _same_as(ctx, 0)
    mask = None
    if y is not None and len(ctx.node.output) > 1:
        mask = ctx.out(BOOL, y.shape) if ctx.node.op_type == "BiasDropout" else TensorInfo(dtype=onnx.TensorProto.UINT32)
    return [y, mask]


@contrib("BiasSoftmax")
def bias_softmax(ctx: NodeContext):
    return [_same_as(ctx, 0)]


@contrib("MurmurHash3")
def murmur(ctx: NodeContext):
    x = ctx.input(0)
    dtype = onnx.TensorProto.UINT32 if ctx.attr("positive", 1) else INT32
    return [ctx.out(dtype, x.shape) if x.shape is not None else TensorInfo(dtype=dtype)]


@contrib("IsAllFinite")
def is_all_finite(ctx: NodeContext):
    return [ctx.out(BOOL, ())]


# ------------------------------------------------------------------ normalisation
def _norm_outputs(ctx: NodeContext, x: TensorInfo, n_stats: int, stat_dtype, sum_index: int | None):
    """Y like x; ``n_stats`` statistics outputs with the last axis reduced to 1; the input+skip sum like x."""
    outs = [ctx.out(x.dtype, x.shape) if x.shape is not None else TensorInfo(dtype=x.dtype)]
    stat = None if x.shape is None else tuple(x.shape[:-1]) + (1,)
    for k in range(1, len(ctx.node.output)):
        if sum_index is not None and k == sum_index:
            outs.append(ctx.out(x.dtype, x.shape) if x.shape is not None else TensorInfo(dtype=x.dtype))
        elif k <= n_stats:
            outs.append(ctx.out(stat_dtype, stat) if stat is not None else TensorInfo(dtype=stat_dtype))
        else:
            outs.append(None)
    return outs


@contrib("SkipLayerNormalization", "SkipSimplifiedLayerNormalization")
def skip_layer_norm(ctx: NodeContext):
    x, skip = ctx.input(0), ctx.input(1)
    simplified = ctx.node.op_type == "SkipSimplifiedLayerNormalization"
    if x.shape is not None and skip.shape is not None:
        ok = len(skip.shape) <= len(x.shape) and all(
            compare(a, b).relation not in (Relation.DIFFERENT, Relation.ONLY_WHEN) or (isinstance(b, int) and b == 1 and k == 0)
            for k, (a, b) in enumerate(zip(x.shape[len(x.shape) - len(skip.shape):], skip.shape))
        )
        if not ok:
            ctx.conflict("broadcast", f"skip {format_shape(skip.shape)} does not match the input {format_shape(x.shape)}",
                         "skip is (batch, sequence, hidden), (1, sequence, hidden) or (sequence, hidden)", inputs=[0, 1])
    _last_dim_matches(ctx, 0, 2, "gamma")
    for i, what in ((3, "bias"),) if simplified else ((3, "beta"), (4, "bias")):
        _last_dim_matches(ctx, 0, i, what)
    stat = onnx.TensorProto.DOUBLE if x.dtype == onnx.TensorProto.DOUBLE else FLOAT  # U: float, or double for double
    return _norm_outputs(ctx, x, 2, stat, 3)


@contrib("SkipGroupNorm")
def skip_group_norm(ctx: NodeContext):
    y = _same_as(ctx, 0)
    return [y, y and ctx.out(y.dtype, y.shape)]


@contrib("GroupNorm", "BranchwiseRMSNorm", "GatedRMSNorm", "QOrderedLayerNormalization")
def group_norm(ctx: NodeContext):
    return [_same_as(ctx, 0)]


@register("SimplifiedLayerNormalization")
@contrib("SimplifiedLayerNormalization", "LayerNormalization")
def simplified_layer_norm(ctx: NodeContext):
    """onnxruntime's LayerNormalization before opset 17 and its RMS form: Y like X, saved statistics with the
    normalised axes (``axis``..) reduced to 1, of ``stash_type`` (float by default)."""
    x = ctx.input(0)
    if x.shape is None:
        return [TensorInfo(dtype=x.dtype)]
    r = len(x.shape)
    axis = ctx.attr("axis", -1)
    a = norm_axis(axis, r)
    if a is None:
        ctx.conflict("op", f"axis {axis} is out of range for {x}", "-rank <= axis < rank")
        return [TensorInfo(dtype=x.dtype)]
    if a == r - 1:
        _last_dim_matches(ctx, 0, 1, "scale")
    stash = ctx.attr("stash_type", 1)
    stat = tuple(d if i < a else 1 for i, d in enumerate(x.shape))
    return [ctx.out(x.dtype, x.shape)] + [ctx.out(stash, stat) for _ in ctx.node.output[1:]]


def _rows_needed(ctx: NodeContext, table_index: int, seq, what: str) -> None:
    """Positions 0..seq-1 index a table of ``rows`` rows: the model accepts ``seq <= rows`` only."""
    table = ctx.input(table_index)
    if table.shape is None or not table.shape or not isinstance(table.shape[0], int) or seq is None:
        return
    from ..constraints import require_at_most

    require_at_most(ctx, seq, table.shape[0], f"{what} has {table.shape[0]} rows")


@contrib("EmbedLayerNormalization")
def embed_layer_norm(ctx: NodeContext):
    ids, word = ctx.input(0), ctx.input(2)
    dtype = word.dtype or ctx.dtype(3)
    hidden = word.shape[1] if word.shape is not None and len(word.shape) == 2 else None
    if ids.shape is None or len(ids.shape) != 2:
        if ids.shape is not None:
            ctx.conflict("op", f"input_ids {format_shape(ids.shape)} is not (batch, sequence)", "input_ids is 2-D", inputs=[0])
        return [TensorInfo(dtype=dtype), TensorInfo(dtype=INT32), TensorInfo(dtype=dtype)]
    batch, seq = ids.shape
    for i in (1, 7):
        other = ctx.input(i)
        if ctx.has_input(i) and other.shape is not None and tuple(other.shape) != tuple(ids.shape):
            cmp = compare(product(other.shape), product(ids.shape))
            if len(other.shape) != 2 or cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
                ctx.conflict("op", f"{'segment_ids' if i == 1 else 'mask'} {format_shape(other.shape)} differs from "
                             f"input_ids {format_shape(ids.shape)}", "segment_ids and mask are (batch, sequence) like input_ids",
                             cmp, inputs=[0, i])
    if not ctx.has_input(8):
        _rows_needed(ctx, 3, seq, "position_embedding")
    _last_dim_matches(ctx, 2, 5, "gamma")
    y = ctx.out(dtype, (batch, seq, hidden))
    return [y, ctx.out(ids.dtype or INT32, (batch,)), ctx.out(dtype, (batch, seq, hidden))]


@contrib("QEmbedLayerNormalization")
def q_embed_layer_norm(ctx: NodeContext):
    ids, word = ctx.input(0), ctx.input(2)
    dtype = ctx.dtype(8) or FLOAT
    hidden = word.shape[1] if word.shape is not None and len(word.shape) == 2 else None
    if ids.shape is None or len(ids.shape) != 2:
        return [TensorInfo(dtype=dtype), TensorInfo(dtype=INT32)]
    batch, seq = ids.shape
    _rows_needed(ctx, 3, seq, "position_embedding")
    return [ctx.out(dtype, (batch, seq, hidden)), ctx.out(ids.dtype or INT32, (batch,))]


# ------------------------------------------------------------------ attention
def _seq_len_of(info: TensorInfo, axis: int):
    return info.shape[axis] if info.shape is not None and len(info.shape) > axis else None


@contrib("Attention")
def attention(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    dtype = x.dtype or w.dtype
    heads = ctx.attr("num_heads", 0)
    sizes = ctx.attr("qkv_hidden_sizes")
    if x.shape is None or len(x.shape) != 3:
        if x.shape is not None:
            ctx.conflict("op", f"Attention needs a (batch, sequence, hidden) input, got {format_shape(x.shape)}", "input is 3-D", inputs=[0])
        return [TensorInfo(dtype=dtype), TensorInfo(dtype=dtype)]
    batch, seq, _ = x.shape
    total = None
    if w.shape is not None and len(w.shape) == 2:
        ctx.require_equal(x.shape[2], w.shape[0], "matmul",
                          lambda: f"input {format_shape(x.shape)} and weights {format_shape(w.shape)} have different input hidden sizes",
                          "weights are (input_hidden_size, hidden_size + hidden_size + v_hidden_size)", inputs=[0, 1])
        total = w.shape[1]
    if sizes and len(sizes) == 3:
        q_hidden, v_hidden = sizes[0], sizes[2]
        if total is not None:
            ctx.require_equal(total, sum(sizes), "op", lambda: f"qkv_hidden_sizes {list(sizes)} do not add up to the weights' "
                              f"{format_dim(total)} columns", "the Q, K and V sizes add up to the weights' second axis", inputs=[1])
    else:
        q_hidden = v_hidden = floordiv(total, 3) if total is not None else None
        if isinstance(total, int) and total % 3:
            ctx.conflict("op", f"the weights' {total} columns do not split into Q, K and V", "weights' second axis divisible by 3", inputs=[1])
    out = ctx.out(dtype, (batch, seq, v_hidden))
    present = None
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        head = _head_size(ctx, q_hidden, heads)
        past = ctx.input(4)
        if ctx.attr("past_present_share_buffer", 0) and past.shape is not None:
            present = ctx.out(dtype, past.shape)
        else:
            past_len = _seq_len_of(past, 3) if ctx.has_input(4) else 0
            present = ctx.out(dtype, (2, batch, heads or None, add(past_len, seq) if past_len is not None else None, head))
    return [out, present]


@contrib("QAttention")
def q_attention(ctx: NodeContext):
    x, w = ctx.input(0), ctx.input(1)
    dtype = ctx.dtype(3) or FLOAT
    heads = ctx.attr("num_heads", 0)
    if x.shape is None or len(x.shape) != 3:
        return [TensorInfo(dtype=dtype), TensorInfo(dtype=dtype)]
    batch, seq, _ = x.shape
    hidden = None
    if w.shape is not None and len(w.shape) == 2:
        ctx.require_equal(x.shape[2], w.shape[0], "matmul",
                          lambda: f"input {format_shape(x.shape)} and weight {format_shape(w.shape)} have different input hidden sizes",
                          "weight is (input_hidden_size, 3 * hidden_size)", inputs=[0, 1])
        hidden = floordiv(w.shape[1], 3)
    present = None
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        past_len = _seq_len_of(ctx.input(8), 3) if ctx.has_input(8) else 0
        present = ctx.out(dtype, (2, batch, heads or None, add(past_len, seq) if past_len is not None else None,
                                  _head_size(ctx, hidden, heads)))
    return [ctx.out(dtype, (batch, seq, hidden)), present]


@contrib("MultiHeadAttention", "DecoderMaskedMultiHeadAttention")
def multi_head_attention(ctx: NodeContext):
    q, k, v = ctx.input(0), ctx.input(1), ctx.input(2)
    dtype = q.dtype
    heads = ctx.attr("num_heads", 0)
    if q.shape is None or len(q.shape) not in (3, 5):
        return [TensorInfo(dtype=dtype)] * 4
    batch, seq = q.shape[0], q.shape[1]
    has_k, has_v = ctx.has_input(1), ctx.has_input(2)
    if len(q.shape) == 5:  # packed QKV (batch, sequence, heads, 3, head_size)
        head = q.shape[4]
        v_hidden = mul(q.shape[2], q.shape[4])
        kv_len, cross = seq, False
    else:
        head = _head_size(ctx, q.shape[2], heads)
        kv_len, cross, v_hidden = None, False, None
        if has_k and k.shape is not None:
            if len(k.shape) == 5:  # packed KV (batch, kv_sequence, heads, 2, head_size)
                kv_len, v_hidden = k.shape[1], mul(k.shape[2], k.shape[4])
            elif len(k.shape) == 4:  # key already (batch, heads, kv_sequence, head_size): cross attention
                kv_len, cross = k.shape[2], True
            elif len(k.shape) == 3:
                kv_len = k.shape[1]
        elif not has_k:
            kv_len = seq
        if v_hidden is None and has_v and v.shape is not None:
            if len(v.shape) == 3:
                v_hidden = v.shape[2]
            elif len(v.shape) == 4:
                v_hidden = mul(v.shape[1], v.shape[3])
        if v_hidden is None and not has_v:
            v_hidden = q.shape[2]
    past_i = 6 if ctx.node.op_type == "MultiHeadAttention" else 5
    past = ctx.input(past_i)
    if ctx.has_input(past_i):
        past_len = _seq_len_of(past, 2)
        total = None if cross else add(past_len, kv_len) if past_len is not None and kv_len is not None else None
        if ctx.node.op_type == "DecoderMaskedMultiHeadAttention" and ctx.attr("past_present_share_buffer", 0):
            total = past_len
    else:
        total = kv_len
    present_shape = (batch, heads or None, total, head)
    outs = [ctx.out(dtype, (batch, seq, v_hidden))]
    for k_out in range(1, len(ctx.node.output)):
        if k_out in (1, 2):
            if cross and not ctx.has_input(past_i):
                src = k if k_out == 1 else v
                outs.append(ctx.out(dtype, src.shape) if src.shape is not None else TensorInfo(dtype=dtype))
            else:
                outs.append(ctx.out(dtype, present_shape))
        elif k_out == 3:
            outs.append(ctx.out(dtype, (batch, heads or None, seq, total)))
    return outs


@contrib("GroupQueryAttention")
def group_query_attention(ctx: NodeContext):
    q = ctx.input(0)
    dtype = q.dtype
    heads, kv_heads = ctx.attr("num_heads", 0), ctx.attr("kv_num_heads", 0)
    if q.shape is None or len(q.shape) != 3:
        return [TensorInfo(dtype=dtype)] * 4
    batch, seq, d = q.shape
    if ctx.has_input(1):
        hidden = d
        head = _head_size(ctx, d, heads)
    else:  # packed QKV: d = (heads + 2 * kv_heads) * head_size
        head = _head_size(ctx, d, heads + 2 * kv_heads) if heads and kv_heads else None
        hidden = mul(head, heads) if head is not None else None
    outs = [ctx.out(dtype, (batch, seq, hidden))]
    if len(ctx.node.output) > 1:
        past = ctx.input(3)
        total = values_of(ctx.input(6))
        total = total[0] if total is not None and len(total) == 1 else None
        if ctx.has_input(3) and past.shape is not None and len(past.shape) == 4:
            cache = past.shape[2]
            if total is None:
                length = None
            elif compare(cache, total).relation == Relation.EQUAL or ctx.attr("sliding_window_cache", 0):
                length = cache
            elif isinstance(cache, int) and isinstance(total, int):
                length = max(cache, total)
            else:
                length = None
            present = (past.shape[0], past.shape[1], length, past.shape[3])
        else:
            k = ctx.input(1)
            kv_len = k.shape[1] if ctx.has_input(1) and k.shape is not None and len(k.shape) == 3 else seq
            present = (batch, kv_heads or None, total if total is not None else kv_len, head)
        cache_dtype = ctx.dtype(3) or dtype
        outs += [ctx.out(cache_dtype, present), ctx.out(cache_dtype, present)]
    return outs


@contrib("RelativePositionBias")
def relative_position_bias(ctx: NodeContext):
    table = ctx.input(0)
    heads = table.shape[1] if table.shape is not None and len(table.shape) == 2 else None
    ql, kl = values_of(ctx.input(1)), values_of(ctx.input(2))
    ql = ql[0] if ql and len(ql) == 1 else None
    kl = kl[0] if kl and len(kl) == 1 else None
    return [ctx.out(table.dtype, (1, heads, ql, kl))]


# ------------------------------------------------------------------ matmuls
def _trans_last(shape: tuple, yes: bool) -> tuple:
    if not yes or len(shape) < 2:
        return shape
    return tuple(shape[:-2]) + (shape[-1], shape[-2])


def _trans_batch(shape: tuple, yes: bool) -> tuple:
    """transBatch: (d0, d1, ..., d_{r-2}, d_{r-1}) is read as (d1, ..., d_{r-2}, d0, d_{r-1})."""
    if not yes or len(shape) < 3:
        return shape
    return tuple(shape[1:-1]) + (shape[0], shape[-1])


@contrib("FusedMatMul", "TransposeMatMul", "FusedMatMulActivation")
def fused_matmul(ctx: NodeContext):
    from .linalg import matmul_dims

    a, b = ctx.input(0), ctx.input(1)
    dtype = a.dtype or b.dtype
    if a.shape is None or b.shape is None:
        return [TensorInfo(dtype=dtype)]
    sa = _trans_last(_trans_batch(tuple(a.shape), bool(ctx.attr("transBatchA", 0))), bool(ctx.attr("transA", 0)))
    sb = _trans_last(_trans_batch(tuple(b.shape), bool(ctx.attr("transBatchB", 0))), bool(ctx.attr("transB", 0)))
    return [ctx.out(dtype, matmul_dims(ctx, sa, sb, 0, 1))]


@contrib("MatMulIntegerToFloat", "DynamicQuantizeMatMul", "MatMulInteger16", "GemmFastGelu")
def quantized_matmul(ctx: NodeContext):
    from .linalg import matmul_dims

    op = ctx.node.op_type
    a, b = ctx.input(0), ctx.input(1)
    dtype = {"MatMulIntegerToFloat": ctx.dtype(2), "MatMulInteger16": INT32}.get(op, a.dtype)
    if a.shape is None or b.shape is None:
        return [TensorInfo(dtype=dtype)]
    return [ctx.out(dtype, matmul_dims(ctx, tuple(a.shape), tuple(b.shape), 0, 1))]


@contrib("MatMulFpQ4")
def matmul_fpq4(ctx: NodeContext):
    """B is a packed blob; its logical (K, N) shape is input 2."""
    a = ctx.input(0)
    kn = values_of(ctx.input(2))
    if a.shape is None or not a.shape or not kn or len(kn) != 2:
        return [TensorInfo(dtype=a.dtype)]
    ctx.require_equal(a.shape[-1], kn[0], "matmul", lambda: f"input {format_shape(a.shape)} has {format_dim(a.shape[-1])} "
                      f"features but B_shape says K={format_dim(kn[0])}", "A's last axis equals B_shape[0]", inputs=[0, 2])
    return [ctx.out(a.dtype, tuple(a.shape[:-1]) + (kn[1],))]


@contrib("MatMulNBits", "MatMulBnb4")
def matmul_nbits(ctx: NodeContext):
    """A @ W where W is (K, N) stored block-quantized: K and N are attributes."""
    a = ctx.input(0)
    k, n = ctx.attr("K"), ctx.attr("N")
    if a.shape is None or not isinstance(n, int):
        return [TensorInfo(dtype=a.dtype)]
    if not a.shape:
        ctx.conflict("matmul", f"{ctx.node.op_type} of a scalar {format_shape(a.shape)}", "A has rank >= 1", inputs=[0])
        return [TensorInfo(dtype=a.dtype)]
    if isinstance(k, int):
        ctx.require_equal(a.shape[-1], k, "matmul", lambda: f"input {format_shape(a.shape)} has {format_dim(a.shape[-1])} "
                          f"features but the quantized weight has K={k}", "A's last axis equals the attribute K", inputs=[0])
    return [ctx.out(a.dtype, tuple(a.shape[:-1]) + (n,))]


@contrib("FusedGemm")
def fused_gemm(ctx: NodeContext):
    from .linalg import gemm

    got = gemm(ctx)
    return got if got is not None else [TensorInfo(dtype=ctx.dtype(0))]


@contrib("QGemm")
def q_gemm(ctx: NodeContext):
    a, b = ctx.input(0), ctx.input(3)
    dtype = (ctx.dtype(8) or ctx.dtype(0)) if ctx.has_input(7) else (ctx.dtype(1) or FLOAT)
    if a.shape is None or b.shape is None:
        return [TensorInfo(dtype=dtype)]
    if len(a.shape) != 2 or len(b.shape) != 2:
        ctx.conflict("op", f"QGemm takes rank-2 operands, got {format_shape(a.shape)} and {format_shape(b.shape)}",
                     "A and B are 2-D matrices", inputs=[0, 3])
        return [TensorInfo(dtype=dtype)]
    ta, tb = ctx.attr("transA", 0), ctx.attr("transB", 0)
    m, ka = (a.shape[1], a.shape[0]) if ta else (a.shape[0], a.shape[1])
    kb, n = (b.shape[1], b.shape[0]) if tb else (b.shape[0], b.shape[1])
    ctx.require_equal(ka, kb, "matmul",
                      lambda: f"inner dimensions differ, A{format_shape(a.shape)}{'ᵀ' if ta else ''} @ B{format_shape(b.shape)}{'ᵀ' if tb else ''}",
                      "QGemm computes op(A) @ op(B): op(A) is (M, K) and op(B) is (K, N)", inputs=[0, 3])
    return [ctx.out(dtype, (m, n))]


@contrib("QOrderedMatMul")
def q_ordered_matmul(ctx: NodeContext):
    a, b = ctx.input(0), ctx.input(2)
    if a.shape is None or b.shape is None or len(b.shape) != 2 or not a.shape:
        return [TensorInfo(dtype=a.dtype)]
    order_b = ctx.attr("order_B", 1)
    n = b.shape[0] if order_b == 0 else b.shape[1]  # ORDER_COL (0): B is stored transposed, (N, K)
    return [ctx.out(a.dtype, tuple(a.shape[:-1]) + (n,))]


@contrib("CDist")
def cdist(ctx: NodeContext):
    a, b = ctx.input(0), ctx.input(1)
    if a.shape is None or b.shape is None or len(a.shape) != 2 or len(b.shape) != 2:
        return [TensorInfo(dtype=a.dtype)]
    ctx.require_equal(a.shape[1], b.shape[1], "matmul", lambda: f"A {format_shape(a.shape)} and B {format_shape(b.shape)} "
                      "have points of different sizes", "A is (M, N) and B is (K, N)", inputs=[0, 1])
    return [ctx.out(a.dtype, (a.shape[0], b.shape[0]))]


# ------------------------------------------------------------------ recurrence
@contrib("DynamicQuantizeLSTM")
def dynamic_quantize_lstm(ctx: NodeContext):
    """LSTM with int8 weights: X is [seq, batch, input]; W is [num_directions, input, 4*hidden] (transposed
    against LSTM's), R is [num_directions, hidden, 4*hidden]."""
    x, w = ctx.input(0), ctx.input(1)
    dtype = x.dtype or FLOAT
    num_dir = 2 if ctx.attr("direction", "forward") == "bidirectional" else 1
    hidden = ctx.attr("hidden_size")
    r = ctx.input(2)
    if hidden is None and r.shape is not None and len(r.shape) == 3:
        hidden = r.shape[1]
    if x.shape is None or len(x.shape) != 3:
        if x.shape is not None:
            ctx.conflict("rnn-rank", f"DynamicQuantizeLSTM needs a rank-3 input ([seq, batch, input]), got rank "
                         f"{len(x.shape)} {format_shape(x.shape)}", "X is [seq_length, batch_size, input_size]", inputs=[0])
        return [TensorInfo(dtype=dtype)] * 3
    seq, batch, feat = x.shape
    if w.shape is not None and len(w.shape) == 3:
        cmp = compare(feat, w.shape[1])
        if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
            ctx.conflict("rnn-input-size", f"DynamicQuantizeLSTM is fed {format_dim(feat)} features per step but its weight "
                         f"W{format_shape(w.shape)} expects input_size {format_dim(w.shape[1])}",
                         "X's last axis equals W's input_size (W is [num_directions, input_size, 4*hidden])", cmp, inputs=[0, 1])
    yh = (num_dir, batch, hidden)
    return [ctx.out(dtype, (seq, num_dir, batch, hidden)), ctx.out(dtype, yh), ctx.out(dtype, yh)]


# ------------------------------------------------------------------ quantized elementwise
@contrib("QLinearAdd", "QLinearMul")
def qlinear_binary(ctx: NodeContext):
    a, b = ctx.input(0), ctx.input(3)
    if a.shape is None or b.shape is None:
        return [TensorInfo(dtype=a.dtype)]
    return [ctx.out(a.dtype, broadcast(ctx, [0, 3]))]


@contrib("MulInteger")
def mul_integer(ctx: NodeContext):
    if ctx.shape(0) is None or ctx.shape(2) is None:
        return [TensorInfo(dtype=INT32)]
    return [ctx.out(INT32, broadcast(ctx, [0, 2]))]


@contrib("QLinearWhere")
def qlinear_where(ctx: NodeContext):
    if any(ctx.shape(i) is None for i in (0, 1, 4)):
        return [TensorInfo(dtype=ctx.dtype(1))]
    return [ctx.out(ctx.dtype(1), broadcast(ctx, [0, 1, 4]))]


@contrib("QLinearSigmoid", "QLinearLeakyRelu", "QLinearSoftmax")
def qlinear_unary(ctx: NodeContext):
    return [_same_as(ctx, 0)]


@contrib("QuantizeLinear", "DequantizeLinear", "QuantizeBFP", "DequantizeBFP")
def quantize_linear(ctx: NodeContext):
    op = ctx.node.op_type
    if op == "QuantizeLinear":
        dtype = ctx.dtype(2) if ctx.has_input(2) else UINT8
    elif op == "DequantizeLinear":
        dtype = ctx.dtype(1)
    else:
        return []
    return [_same_as(ctx, 0, dtype)]


@contrib("QLinearConcat")
def qlinear_concat(ctx: NodeContext):
    """Inputs: Y_scale, Y_zero_point, then (tensor, scale, zero_point) per concatenated tensor."""
    dtype = ctx.dtype(1)
    idx = [i for i in range(2, len(ctx.node.input), 3) if ctx.has_input(i)]
    shapes = [ctx.shape(i) for i in idx]
    if not shapes or any(s is None for s in shapes):
        return [TensorInfo(dtype=dtype)]
    r = len(shapes[0])
    axis = ctx.attr("axis", 0)
    a = norm_axis(axis, r) if r else None
    if a is None or any(len(s) != r for s in shapes):
        ctx.conflict("concat", "inputs " + ", ".join(format_shape(s) for s in shapes) + f" cannot be concatenated on axis {axis}",
                     "all inputs have the same rank; -rank <= axis < rank", inputs=idx)
        return [TensorInfo(dtype=dtype)]
    out = list(shapes[0])
    for k in range(r):
        if k == a:
            continue
        for s in shapes[1:]:
            c = compare(out[k], s[k])
            if c.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
                ctx.conflict("concat", f"inputs disagree on axis {k} (concatenating on axis {a}): "
                             + ", ".join(format_shape(s) for s in shapes), "all dims but the concat axis must match", c, inputs=idx)
                break
            if not isinstance(out[k], int) and isinstance(s[k], int):
                out[k] = s[k]
    total = 0
    for s in shapes:
        total = add(total, s[a])
    out[a] = total
    return [ctx.out(dtype, tuple(out))]


@contrib("QLinearReduceMean", "ReduceSumInteger")
def qlinear_reduce(ctx: NodeContext):
    x = ctx.input(0)
    dtype = INT32 if ctx.node.op_type == "ReduceSumInteger" else x.dtype
    if x.shape is None:
        return [TensorInfo(dtype=dtype)]
    r = len(x.shape)
    axes = ctx.attr("axes")
    axes = list(range(r)) if not axes else [norm_axis(a, r) for a in axes]
    if None in axes:
        ctx.conflict("op", f"axes {ctx.attr('axes')} are out of range for {x}", "-rank <= axis < rank", inputs=[0])
        return [TensorInfo(dtype=dtype)]
    keep = ctx.attr("keepdims", 1)
    out = tuple(1 if i in axes else d for i, d in enumerate(x.shape)) if keep else tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return [ctx.out(dtype, out)]


# ------------------------------------------------------------------ convolution and pooling
def _nhwc_to_nchw(shape):
    return (shape[0], shape[-1], *shape[1:-1])


def _nchw_to_nhwc(shape):
    return (shape[0], *shape[2:], shape[1])


def _conv_like(ctx: NodeContext, xi: int, wi: int, dtype, channels_last: bool):
    from .conv import _CHANNELS, _spatial

    x, w = ctx.input(xi), ctx.input(wi)
    if x.shape is None or len(x.shape) < 3:
        return TensorInfo(dtype=dtype)
    xs = _nhwc_to_nchw(tuple(x.shape)) if channels_last else tuple(x.shape)
    n = len(xs) - 2
    if w.shape is not None and len(w.shape) != len(xs):
        ctx.conflict("op", f"input {format_shape(x.shape)} and weight {format_shape(w.shape)} have different ranks",
                     "X and W have the same rank", inputs=[xi, wi])
        return TensorInfo(dtype=dtype)
    group = ctx.attr("group", 1)
    kernel = ctx.attr("kernel_shape")
    kernel = list(kernel) if kernel is not None else (list(w.shape[2:]) if w.shape is not None else [None] * n)
    m = w.shape[0] if w.shape is not None else None
    if w.shape is not None:
        cmp = compare(xs[1], mul(w.shape[1], group))
        if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
            ctx.conflict("op", f"input has {format_dim(xs[1])} channels but the weight {format_shape(w.shape)} expects "
                         f"{format_dim(mul(w.shape[1], group))}", _CHANNELS, cmp, inputs=[xi, wi])
    spatial = _spatial(ctx, list(xs[2:]), kernel)
    out = (xs[0], m, *(spatial if spatial is not None else [None] * n))
    return ctx.out(dtype, _nchw_to_nhwc(out) if channels_last else out)


@contrib("FusedConv")
def fused_conv(ctx: NodeContext):
    return [_conv_like(ctx, 0, 1, ctx.dtype(0), False)]


@contrib("NhwcConv", "NhwcFusedConv")
def nhwc_conv(ctx: NodeContext):
    """Conv with X and Y channels-last; W keeps ONNX's (M, C/group, k1, k2...) layout."""
    return [_conv_like(ctx, 0, 1, ctx.dtype(0), True)]


@contrib("QLinearConv")
def ms_qlinear_conv(ctx: NodeContext):
    return [_conv_like(ctx, 0, 3, ctx.dtype(7) or ctx.dtype(0), bool(ctx.attr("channels_last", 0)))]


def _pool_like(ctx: NodeContext, channels_last: bool, dtype=None):
    from .conv import _spatial

    x = ctx.input(0)
    dtype = dtype if dtype is not None else x.dtype
    kernel = ctx.attr("kernel_shape")
    if x.shape is None or len(x.shape) < 3 or kernel is None:
        return TensorInfo(dtype=dtype)
    xs = _nhwc_to_nchw(tuple(x.shape)) if channels_last else tuple(x.shape)
    spatial = _spatial(ctx, list(xs[2:]), list(kernel))
    out = (xs[0], xs[1], *(spatial if spatial is not None else [None] * (len(xs) - 2)))
    return ctx.out(dtype, _nchw_to_nhwc(out) if channels_last else out)


@contrib("QLinearAveragePool")
def qlinear_average_pool(ctx: NodeContext):
    return [_pool_like(ctx, bool(ctx.attr("channels_last", 0)))]


@contrib("NhwcMaxPool")
def nhwc_max_pool(ctx: NodeContext):
    return [_pool_like(ctx, True)]


@contrib("MaxpoolWithMask")
def maxpool_with_mask(ctx: NodeContext):
    return [_pool_like(ctx, False)]


@contrib("QLinearGlobalAveragePool")
def qlinear_global_average_pool(ctx: NodeContext):
    x = ctx.input(0)
    if x.shape is None or len(x.shape) < 3:
        return [TensorInfo(dtype=x.dtype)]
    ones = (1,) * (len(x.shape) - 2)
    if ctx.attr("channels_last", 0):
        return [ctx.out(x.dtype, (x.shape[0], *ones, x.shape[-1]))]
    return [ctx.out(x.dtype, (x.shape[0], x.shape[1], *ones))]


@contrib("GridSample")
def grid_sample(ctx: NodeContext):
    x, grid = ctx.input(0), ctx.input(1)
    if x.shape is None or grid.shape is None or len(x.shape) != 4 or len(grid.shape) != 4:
        return [TensorInfo(dtype=x.dtype)]
    return [ctx.out(x.dtype, (x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]))]


# ------------------------------------------------------------------ gathers and shapes
@contrib("GatherBlockQuantized")
def gather_block_quantized(ctx: NodeContext):
    """A Gather on a block-quantized table; 4-bit values packed two per uint8 widen the quantized axis."""
    data, idx = ctx.input(0), ctx.input(1)
    dtype = ctx.dtype(2)
    if data.shape is None or idx.shape is None or not data.shape:
        return [TensorInfo(dtype=dtype)]
    r = len(data.shape)
    g = norm_axis(ctx.attr("gather_axis", 0), r)
    qa = norm_axis(ctx.attr("quantize_axis", 1), r)
    if g is None or qa is None:
        return [TensorInfo(dtype=dtype)]
    dims = list(data.shape)
    bits = ctx.attr("bits", 4)
    if data.dtype == UINT8 and isinstance(bits, int) and bits in (2, 4):
        dims[qa] = mul(dims[qa], 8 // bits)
    return [ctx.out(dtype, tuple(dims[:g]) + tuple(idx.shape) + tuple(dims[g + 1:]))]


@contrib("TorchEmbedding")
def torch_embedding(ctx: NodeContext):
    w, idx = ctx.input(0), ctx.input(1)
    if w.shape is None or idx.shape is None or len(w.shape) != 2:
        return [TensorInfo(dtype=w.dtype)]
    return [ctx.out(w.dtype, tuple(idx.shape) + (w.shape[1],))]


@contrib("ExpandDims")
def expand_dims(ctx: NodeContext):
    x = ctx.input(0)
    axis = values_of(ctx.input(1))
    if x.shape is None or not axis or len(axis) != 1 or not isinstance(axis[0], int):
        return [TensorInfo(dtype=x.dtype)]
    r = len(x.shape) + 1
    a = norm_axis(axis[0], r)
    if a is None:
        return [TensorInfo(dtype=x.dtype)]
    dims = list(x.shape)
    dims.insert(a, 1)
    return [ctx.out(x.dtype, tuple(dims))]


@contrib("Unique")
def unique(ctx: NodeContext):
    x = ctx.input(0)
    n = fresh_symbol()
    return [ctx.out(x.dtype, (n,)), ctx.out(INT64, x.shape) if x.shape is not None else TensorInfo(dtype=INT64),
            ctx.out(INT64, (n,))]


@contrib("Range")
def ms_range(ctx: NodeContext):
    from .shape_ops import range_

    if not ctx.has_input(2):
        start, limit = values_of(ctx.input(0)), values_of(ctx.input(1))
        if start and limit and len(start) == len(limit) == 1:
            n = sub(limit[0], start[0])
            if isinstance(n, int):
                return [ctx.out(ctx.dtype(0), (max(n, 0),))]
        return [ctx.out(ctx.dtype(0), (fresh_symbol(),))]
    return range_(ctx)


@contrib("Pad")
def ms_pad(ctx: NodeContext):
    """onnxruntime's Pad takes its pads from input 1, like ONNX Pad-11."""
    from .misc import pad

    ctx.opset = 11
    got = pad(ctx)
    return got if got is not None else [TensorInfo(dtype=ctx.dtype(0))]
