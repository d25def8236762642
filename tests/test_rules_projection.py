"""Family 4, output projections (SL401-SL405): tiny inline models, their good twins, and the fixes.

Each bad model is built with ``onnx.parser`` (weights moved to initializers),
checked, and where the rule attaches a machine-applicable ``Fix`` the edited
copy is run under onnxruntime (CPU) and its output shape compared.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import numpy_helper

from shapelint.check import check
from shapelint.dims import symbol

B, T, H = 2, 5, 4
RNG = np.random.default_rng(0)


def build(text: str, opset: int = 17, **weights) -> onnx.ModelProto:
    """Parse ``text``; every name in ``weights`` becomes an initializer with that value."""
    model = onnx.parser.parse_model(text.replace("OPSET", str(opset)))
    for node in model.graph.node:
        node.name = node.name or f"/{node.op_type}_{node.output[0]}"  # exporters name every node
    for name, value in weights.items():
        for vi in list(model.graph.input):
            if vi.name == name:
                model.graph.input.remove(vi)
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    onnx.checker.check_model(model)
    return model


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def lstm_weights(nd=1, inp=3, hidden=H, gates=4):
    return {"W": w(nd, gates * hidden, inp), "R": w(nd, gates * hidden, hidden), "Bias": w(nd, 2 * gates * hidden)}


def findings(model, code):
    return [d for d in check(model, select=[code]).diagnostics if d.rule == code]


def run(model, feeds=None):
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    if feeds is None:
        feeds = {}
        for i in sess.get_inputs():
            dims = [{"batch": B, "seq": T}.get(d, d) if isinstance(d, str) else d for d in i.shape]
            feeds[i.name] = (RNG.standard_normal(dims).astype(np.float32) if "float" in i.type
                             else RNG.integers(0, 3, dims).astype(np.int64))
    return sess.run(None, feeds)


def fixed(model, diag):
    assert diag.edit is not None, diag
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    diag.edit.apply(copy)
    onnx.checker.check_model(copy)
    return copy


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- SL401

BI_Y = """
<ir_version: 8, opset_import: ["" : OPSET]>
g (float[seq, batch, 3] x, float[2, 16, 3] W, float[2, 16, 4] R, float[2, 32] Bias, float[K, 5] P) => (float[seq, batch, 5] y) {
    Y = LSTM <hidden_size = 4, direction = "bidirectional"> (x, W, R, Bias)
    BODY
}"""


def test_a_bidirectional_y_projected_4d_is_an_error_and_the_fix_merges_directions():
    m = build(BI_Y.replace("BODY", "y = MatMul(Y, P)"), P=w(2 * H, 5), **lstm_weights(2))
    (d,) = findings(m, "SL401")
    assert d.op_type == "MatMul" and d.severity == "error"
    assert "num_directions" in d.message and "(seq, 2, batch, 4) [time, direction, batch, hidden]" in d.message
    assert "h_n[-2:].transpose(0, 1).reshape(B, -1)" in d.fix and "merge_mode" in d.fix
    (out,) = run(fixed(m, d))
    assert out.shape == (T, B, 5)
    assert not findings(fixed(m, d), "SL401")


def test_a_unidirectional_y_projected_4d_warns_and_the_fix_squeezes_the_direction_axis():
    text = BI_Y.replace('direction = "bidirectional"', 'direction = "forward"').replace("float[2, ", "float[1, ")
    m = build(text.replace("BODY", "y = MatMul(Y, P)"), P=w(H, 5), **lstm_weights(1))
    (d,) = findings(m, "SL401")
    assert d.severity == "warning" and "Squeeze" in d.fix
    assert run(m)[0].shape == (T, 1, B, 5)  # runs, with the extra axis
    (out,) = run(fixed(m, d))
    assert out.shape == (T, B, 5)


def test_directions_folded_into_the_batch_by_a_reshape_are_reported_on_the_reshape():
    body = """shape = Constant <value = int64[3] {0, -1, 4}> ()
    Z = Reshape(Y, shape)
    y = MatMul(Z, P)"""
    m = build(BI_Y.replace("BODY", body), P=w(H, 5), **lstm_weights(2))
    (d,) = findings(m, "SL401")
    assert d.op_type == "Reshape" and "batch" in d.message and d.severity == "warning"
    assert not findings(m, "SL402")


def test_the_good_twin_transpose_then_reshape_is_silent():
    body = """Yt = Transpose <perm = [0, 2, 1, 3]> (Y)
    shape = Constant <value = int64[3] {0, 0, -1}> ()
    Z = Reshape(Yt, shape)
    y = MatMul(Z, P)"""
    m = build(BI_Y.replace("BODY", body), P=w(2 * H, 5), **lstm_weights(2))
    for code in ("SL401", "SL402", "SL403", "SL404", "SL405"):
        assert not findings(m, code), code


HN = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[seq, batch, 3] x, float[2, 16, 3] W, float[2, 16, 4] R, float[2, 32] Bias, float[8, 5] P) => (float[batch, 5] y) {
    Y, Yh = LSTM <hidden_size = 4, direction = "bidirectional"> (x, W, R, Bias)
    BODY
}"""


def test_h_n_view_batch_minus_one_is_reported_and_fixed_to_the_right_values():
    bad = build(HN.replace("BODY", """shape = Constant <value = int64[2] {-1, 8}> ()
    Z = Reshape(Yh, shape)
    y = MatMul(Z, P)"""), P=w(2 * H, 5), **lstm_weights(2))
    good = build(HN.replace("BODY", """Ht = Transpose <perm = [1, 0, 2]> (Yh)
    shape = Constant <value = int64[2] {0, -1}> ()
    Z = Reshape(Ht, shape)
    y = MatMul(Z, P)"""), P=numpy_helper.to_array(bad.graph.initializer[0]), **{
        i.name: numpy_helper.to_array(i) for i in bad.graph.initializer if i.name != "P"})
    (d,) = findings(bad, "SL401")
    assert d.op_type == "Reshape" and "scrambled" in d.message
    assert not findings(good, "SL401")
    x = RNG.standard_normal((T, B, 3)).astype(np.float32)
    (want,) = run(good, {"x": x})
    (got,) = run(fixed(bad, d), {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5)


# --------------------------------------------------------------------------- SL402


def test_the_same_direction_concatenated_twice_fits_the_width_but_is_reported():
    body = """i1 = Constant <value = int64 {1}> ()
    hb = Gather <axis = 0> (Yh, i1)
    Z = Concat <axis = 1> (hb, hb)
    y = MatMul(Z, P)"""
    m = build(HN.replace("BODY", body), P=w(2 * H, 5), **lstm_weights(2))
    (d,) = findings(m, "SL402")
    assert "twice" in d.message and "forward direction never reaches it" in d.message
    assert "torch.cat([h_n[-2], h_n[-1]], dim=1)" in d.fix


def test_both_directions_concatenated_are_silent():
    body = """i0 = Constant <value = int64 {0}> ()
    i1 = Constant <value = int64 {1}> ()
    hf = Gather <axis = 0> (Yh, i0)
    hb = Gather <axis = 0> (Yh, i1)
    Z = Concat <axis = 1> (hf, hb)
    y = MatMul(Z, P)"""
    m = build(HN.replace("BODY", body), P=w(2 * H, 5), **lstm_weights(2))
    assert not [d for d in check(m).diagnostics]


def test_one_direction_into_a_head_sized_for_both_replaces_the_generic_inner_dim_finding():
    body = """i1 = Constant <value = int64 {1}> ()
    hb = Gather <axis = 0> (Yh, i1)
    y = MatMul(hb, P)"""
    m = build(HN.replace("BODY", body), P=w(2 * H, 5), **lstm_weights(2))
    (d,) = check(m).diagnostics
    assert d.rule == "SL402" and d.severity == "error"
    assert "only the backward direction's final state (4 features)" in d.message and "both directions" in d.message
    assert "torch.cat([h_n[-2], h_n[-1]], dim=1)" in d.fix


def test_a_merge_target_computed_from_shape_keeps_the_hidden_width_known():
    # dynamo's pattern: the merge target is computed from Shape and a Reshape of a product
    body = """Yt = Transpose <perm = [0, 2, 1, 3]> (Y)
    s = Shape(Yt)
    a0 = Constant <value = int64[1] {0}> ()
    a1 = Constant <value = int64[1] {1}> ()
    a2 = Constant <value = int64[1] {2}> ()
    a3 = Constant <value = int64[1] {3}> ()
    a4 = Constant <value = int64[1] {4}> ()
    d0 = Slice(s, a0, a1)
    d1 = Slice(s, a1, a2)
    d2 = Slice(s, a2, a3)
    d3 = Slice(s, a3, a4)
    prod = Mul(d2, d3)
    m1 = Constant <value = int64[1] {-1}> ()
    flat = Reshape(prod, m1)
    target = Concat <axis = 0> (d0, d1, flat)
    Z = Reshape(Yt, target)
    last = Constant <value = int64 {-1}> ()
    S = Gather <axis = 0> (Z, last)
    y = MatMul(S, P)"""
    text = BI_Y.replace("BODY", body).replace("float[seq, batch, 5] y", "float[batch, 5] y")
    m = build(text, P=w(3 * H, 5), **lstm_weights(2))
    (d,) = check(m).diagnostics
    assert d.rule == "SL402" and "hidden size 4" in d.message and "expects 12" in d.message
    good = build(text, P=w(2 * H, 5), **lstm_weights(2))
    assert not findings(good, "SL402")
    assert run(good)[0].shape == (B, 5)


# --------------------------------------------------------------------------- SL403

TAGGER = """
<ir_version: 8, opset_import: ["" : OPSET]>
g (float[batch, seq, 3] x, float[1, 16, 3] W, float[1, 16, 4] R, float[1, 32] Bias, float[4, 6] P) => (OUT) {
    xt = Transpose <perm = [1, 0, 2]> (x)
    Y = LSTM <hidden_size = 4> (xt, W, R, Bias)
    ax = Constant <value = int64[1] {1}> ()
    S = Squeeze(Y, ax)
    O = Transpose <perm = [1, 0, 2]> (S)
    logits = MatMul(O, P)
    BODY
}"""


def tagger(body, out="float[batch, seq, 6] y", opset=17):
    text = TAGGER.replace("BODY", body).replace("OUT", out)
    if opset < 13:
        text = text.replace("ax = Constant <value = int64[1] {1}> ()\n    S = Squeeze(Y, ax)", "S = Squeeze <axes = [1]> (Y)")
    return build(text, opset=opset, P=w(H, 6), **lstm_weights(1))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_a_softmax_over_the_time_axis_is_reported_and_the_fix_moves_it_to_the_classes(op):
    m = tagger(f"y = {op} <axis = 1> (logits)")
    (d,) = findings(m, "SL403")
    assert "time" in d.message and "softmax(dim=-1)" in d.fix and "Softmax(axis=-1)" in d.fix
    f = fixed(m, d)
    (out,) = run(f)
    assert out.shape == (B, T, 6)
    if op == "Softmax":
        np.testing.assert_allclose(out.sum(-1), 1, rtol=1e-5)
    assert not findings(f, "SL403")
    assert not findings(tagger(f"y = {op} <axis = -1> (logits)"), "SL403")


def test_an_argmax_over_time_is_reported_and_fixed():
    m = tagger("y = ArgMax <axis = 1, keepdims = 0> (logits)", out="int64[batch, 6] y")
    (d,) = findings(m, "SL403")
    (out,) = run(fixed(m, d))
    assert out.shape == (B, T)
    assert not findings(tagger("y = ArgMax <axis = 2, keepdims = 0> (logits)", out="int64[batch, seq] y"), "SL403")


def test_an_opset_11_softmax_with_the_default_axis_spans_time_and_classes():
    m = tagger("y = Softmax(logits)", opset=11)
    (d,) = findings(m, "SL403")
    assert "opset 11" in d.message and "together" in d.message and "axis=2" in d.fix
    (out,) = run(fixed(m, d))
    np.testing.assert_allclose(out.sum(-1), 1, rtol=1e-5)
    assert not findings(tagger("y = Softmax <axis = 2> (logits)", opset=11), "SL403")


def test_attention_weights_softmaxed_over_time_are_silent():
    body = """scores = MatMul(O, V)
    a = Softmax <axis = 1> (scores)
    weighted = Mul(O, a)
    y = ReduceSum <keepdims = 0> (weighted, ax)"""
    m = build(TAGGER.replace("logits = MatMul(O, P)\n", "").replace("BODY", body).replace("OUT", "float[batch, 4] y")
              .replace("float[4, 6] P", "float[4, 1] V"), V=w(H, 1), **lstm_weights(1))
    assert not [d for d in check(m).diagnostics if d.rule.startswith("SL4")]
    assert run(m)[0].shape == (B, H)


# --------------------------------------------------------------------------- SL404


def test_a_mean_over_hidden_units_is_reported_and_the_fix_pools_over_time():
    m = tagger("y = ReduceMean <axes = [2], keepdims = 0> (O)", out="float[batch, seq] y")
    (d,) = findings(m, "SL404")
    assert "hidden units" in d.message and "mean(dim=1)" in d.fix and "GlobalAveragePooling1D()" in d.fix
    (out,) = run(fixed(m, d))
    assert out.shape == (B, H)
    assert not findings(tagger("y = ReduceMean <axes = [1], keepdims = 0> (O)", out="float[batch, 4] y"), "SL404")


def test_a_sum_over_classes_with_axes_as_an_input_is_reported_and_fixed():
    m = tagger("""a2 = Constant <value = int64[1] {2}> ()
    y = ReduceSum <keepdims = 0> (logits, a2)""", out="float[batch, seq] y")
    (d,) = findings(m, "SL404")
    assert "classes" in d.message
    (out,) = run(fixed(m, d))
    assert out.shape == (B, 6)


def test_a_normalisation_over_hidden_units_is_silent():
    m = tagger("""mu = ReduceMean <axes = [2], keepdims = 1> (O)
    c = Sub(O, mu)
    y = MatMul(c, P)""")
    assert not findings(m, "SL404")


# --------------------------------------------------------------------------- SL405


def test_step_zero_of_a_forward_lstm_fed_to_the_classifier_is_reported_and_fixed():
    m = tagger("""i0 = Constant <value = int64 {0}> ()
    first = Gather <axis = 1> (O, i0)
    y = MatMul(first, P)""", out="float[batch, 6] y")
    (d,) = findings(m, "SL405")
    assert d.op_type == "Gather" and "out[:, -1, :]" in d.fix and "return_sequences=False" in d.fix
    f = fixed(m, d)
    (out,) = run(f)
    assert out.shape == (B, 6)
    assert not findings(f, "SL405")


def test_a_first_step_slice_is_reported_and_fixed():
    m = tagger("""s0 = Constant <value = int64[1] {0}> ()
    s1 = Constant <value = int64[1] {1}> ()
    first = Slice(O, s0, s1, s1)
    sq = Squeeze(first, s1)
    y = MatMul(sq, P)""", out="float[batch, 6] y")
    (d,) = findings(m, "SL405")
    (out,) = run(fixed(m, d))
    assert out.shape == (B, 6)


def test_step_zero_of_a_reverse_lstm_is_its_final_state_and_silent():
    m = build(TAGGER.replace("hidden_size = 4>", 'hidden_size = 4, direction = "reverse">').replace("BODY", """i0 = Constant <value = int64 {0}> ()
    first = Gather <axis = 1> (O, i0)
    y = MatMul(first, P)""").replace("OUT", "float[batch, 6] y"), P=w(H, 6), **lstm_weights(1))
    assert not findings(m, "SL405")


def test_bidirectional_last_forward_and_first_backward_is_silent_but_step_zero_of_both_is_not():
    text = BI_Y.replace("float[K, 5] P", "float[8, 5] P").replace("float[seq, batch, 5] y", "float[batch, 5] y")
    merge = """Yt = Transpose <perm = [0, 2, 1, 3]> (Y)
    shape = Constant <value = int64[3] {0, 0, -1}> ()
    Z = Reshape(Yt, shape)
    i0 = Constant <value = int64 {0}> ()
    last = Constant <value = int64 {-1}> ()
    """
    good = build(text.replace("BODY", merge + """s0 = Constant <value = int64[1] {0}> ()
    s4 = Constant <value = int64[1] {4}> ()
    s8 = Constant <value = int64[1] {8}> ()
    s1 = Constant <value = int64[1] {1}> ()
    zl = Gather <axis = 0> (Z, last)
    z0 = Gather <axis = 0> (Z, i0)
    fwd = Slice(zl, s0, s4, s1)
    bwd = Slice(z0, s4, s8, s1)
    cat = Concat <axis = 1> (fwd, bwd)
    y = MatMul(cat, P)"""), P=w(2 * H, 5), **lstm_weights(2))
    assert not findings(good, "SL405")
    bad = build(text.replace("BODY", merge + """z0 = Gather <axis = 0> (Z, i0)
    y = MatMul(z0, P)"""), P=w(2 * H, 5), **lstm_weights(2))
    (d,) = findings(bad, "SL405")
    assert "forward half" in d.message and d.edit is None
    assert "out[:, 0, H:]" in d.fix


UNROLLED = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 3, 3] x, float[3, 4] W, float[4, 4] R, float[4, 6] P) => (float[batch, 6] y) {
    zero = Constant <value = int64 {0}> ()
    one = Constant <value = int64 {1}> ()
    two = Constant <value = int64 {2}> ()
    x0 = Gather <axis = 1> (x, zero)
    x1 = Gather <axis = 1> (x, one)
    x2 = Gather <axis = 1> (x, two)
    p0 = MatMul(x0, W)
    h0 = Tanh(p0)
    p1 = MatMul(x1, W)
    r1 = MatMul(h0, R)
    a1 = Add(p1, r1)
    h1 = Tanh(a1)
    p2 = MatMul(x2, W)
    r2 = MatMul(h1, R)
    a2 = Add(p2, r2)
    h2 = Tanh(a2)
    ax = Constant <value = int64[1] {1}> ()
    u0 = Unsqueeze(IN0, ax)
    u1 = Unsqueeze(IN1, ax)
    u2 = Unsqueeze(IN2, ax)
    seq = Concat <axis = 1> (u0, u1, u2)
    first = Gather <axis = 1> (seq, zero)
    y = MatMul(first, P)
}"""


def test_an_unrolled_recurrence_stacked_along_time_is_recognised():
    m = build(UNROLLED.replace("IN0", "h0").replace("IN1", "h1").replace("IN2", "h2"), W=w(3, H), R=w(H, H), P=w(H, 6))
    (d,) = findings(m, "SL405")
    assert "unrolled recurrence" in d.message
    assert run(fixed(m, d))[0].shape == (B, 6)


def test_independent_per_step_results_stacked_are_not_a_recurrence():
    text = UNROLLED.replace("h1 = Tanh(a1)", "h1 = Tanh(p1)").replace("h2 = Tanh(a2)", "h2 = Tanh(p2)")
    m = build(text.replace("IN0", "h0").replace("IN1", "h1").replace("IN2", "h2"), W=w(3, H), R=w(H, H), P=w(H, 6))
    assert not findings(m, "SL405")


def test_a_stack_read_backwards_is_a_backward_direction_whose_step_zero_is_its_final_state():
    flipped = UNROLLED.replace("seq = Concat <axis = 1> (u0, u1, u2)", """stack = Concat <axis = 1> (u0, u1, u2)
    s_start = Constant <value = int64[1] {-1}> ()
    s_end = Constant <value = int64[1] {-9223372036854775807}> ()
    s_axis = Constant <value = int64[1] {1}> ()
    s_step = Constant <value = int64[1] {-1}> ()
    seq = Slice(stack, s_start, s_end, s_axis, s_step)""")
    m = build(flipped.replace("IN0", "h0").replace("IN1", "h1").replace("IN2", "h2"), W=w(3, H), R=w(H, H), P=w(H, 6))
    assert not findings(m, "SL405")
    assert run(m)[0].shape == (B, 6)


def test_a_4d_y_into_a_gemm_is_an_error_that_replaces_the_generic_gemm_rank_finding():
    m = build(BI_Y.replace("BODY", "y = Gemm(Y, P)").replace("float[K, 5] P", "float[8, 5] P"), P=w(2 * H, 5),
              **lstm_weights(2))
    diags = check(m).diagnostics
    assert [(d.rule, d.severity) for d in diags] == [("SL401", "error")]
    assert "Gemm takes 2-D operands" in diags[0].message and diags[0].edit is None
