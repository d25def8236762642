"""SL202, SL204, SL205 (recurrent feeds) and SL301-SL303 (missing TimeDistributed) on tiny inline models.

Each bad model has a good twin that must stay silent.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from shapelint.check import check

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(*(o if isinstance(o, tuple) else (o, None))[:1], F,
                                       o[1] if isinstance(o, tuple) else None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def w(*shape, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.3).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


def found(m, code, rules):
    return [(d.rule, d.node) for d in check(m, select=[code], rules=rules).diagnostics]


def diags(m, code, rules):
    return check(m, select=[code], rules=rules).diagnostics


def lstm(x, name="lstm", layout=0, hidden=8, inputs=("W", "R"), outs=("Y", "Yh")):
    return helper.make_node("LSTM", [x, *inputs], list(outs), name=name, hidden_size=hidden, layout=layout)


def lstm_weights(inp, hidden=8):
    return {"W": w(1, 4 * hidden, inp), "R": w(1, 4 * hidden, hidden, seed=1)}


# ----------------------------------------------------------------- SL202


def conv_to_lstm(between, shape_const, width=None):
    """image (batch, 3, 8, 8) -> Conv (batch, 6, 4, 4) -> ``between`` -> Transpose(1,0,2) -> LSTM."""
    nodes = [helper.make_node("Conv", ["image", "k"], ["f"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2])]
    nodes += between
    nodes += [helper.make_node("Transpose", ["seq"], ["tm"], name="to_time_major", perm=[1, 0, 2]), lstm("tm")]
    width = width or list(shape_const)[-1]
    inits = {"k": w(6, 3, 3, 3), "s": i64(*shape_const), **lstm_weights(width)}
    return model(nodes, [("image", ["batch", 3, 8, 8])], ["Y"], inits)


def test_reshape_of_an_nchw_map_to_positions_by_channels_is_reported_on_the_reshape(rules):
    m = conv_to_lstm([helper.make_node("Reshape", ["f", "s"], ["seq"], name="view")], (0, 16, 6))
    (d,) = diags(m, "SL202", rules)
    assert d.node == "view"
    assert "(batch, 6, 4, 4)" in d.message and "(batch, 16, 6)" in d.message and "LSTM 'lstm'" in d.message
    assert "permute(0, 2, 3, 1)" in d.fix and "Permute((2, 3, 1))" in d.fix


def test_permute_before_the_reshape_is_silent(rules):
    m = conv_to_lstm([
        helper.make_node("Transpose", ["f"], ["p"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["p", "s"], ["seq"]),
    ], (0, 16, 6))
    assert found(m, "SL202", rules) == []


def test_flatten_then_transpose_is_silent(rules):
    m = conv_to_lstm([
        helper.make_node("Reshape", ["f", "s"], ["m"]),
        helper.make_node("Transpose", ["m"], ["seq"], perm=[0, 2, 1]),
    ], (0, 6, 16), width=6)
    assert found(m, "SL202", rules) == []


def test_crnn_columns_after_a_permute_are_silent(rules):
    m = conv_to_lstm([
        helper.make_node("Transpose", ["f"], ["p"], perm=[0, 3, 1, 2]),  # (N, W, C, H)
        helper.make_node("Reshape", ["p", "s"], ["seq"]),  # (N, W, C*H)
    ], (0, 4, 24))
    assert found(m, "SL202", rules) == []


def test_crnn_view_of_channels_times_height_then_permute_is_silent(rules):
    m = conv_to_lstm([
        helper.make_node("Reshape", ["f", "s"], ["m"]),  # x.view(n, c*h, w): (N, 24, 4)
        helper.make_node("Transpose", ["m"], ["seq"], perm=[0, 2, 1]),  # (N, W, C*H)
    ], (0, 24, 4), width=24)
    assert found(m, "SL202", rules) == []


def test_a_group_norm_reshape_round_trip_before_a_proper_flatten_is_silent(rules):
    m = conv_to_lstm([
        helper.make_node("Reshape", ["f", "g"], ["grouped"]),  # (N, 2, 48)
        helper.make_node("InstanceNormalization", ["grouped", "sc", "bi"], ["normed"]),
        helper.make_node("Reshape", ["normed", "back"], ["gn"]),  # (N, 6, 4, 4)
        helper.make_node("Transpose", ["gn"], ["p"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["p", "s"], ["seq"]),
    ], (0, 16, 6))
    for name, value in {"g": i64(0, 2, -1), "sc": w(2), "bi": w(2), "back": i64(0, 6, 4, 4)}.items():
        m.graph.initializer.append(numpy_helper.from_array(value, name))
    assert found(m, "SL202", rules) == []


def test_a_scrambling_reshape_that_feeds_no_recurrence_is_silent(rules):
    nodes = [
        helper.make_node("Conv", ["image", "k"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Reshape", ["f", "s"], ["seq"]),
        helper.make_node("MatMul", ["seq", "d"], ["y"]),
    ]
    m = model(nodes, [("image", ["batch", 3, 8, 8])], ["y"], {"k": w(6, 3, 3, 3), "s": i64(0, 16, 6), "d": w(6, 5)})
    assert found(m, "SL202", rules) == []


def test_scramble_into_an_unrolled_recurrence_is_reported(rules):
    nodes = [
        helper.make_node("Conv", ["image", "k"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Reshape", ["f", "s"], ["seq"], name="view"),
        helper.make_node("Transpose", ["seq"], ["tm"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["tm", "Wx"], ["px"]),
    ]
    inits = {"k": w(6, 3, 3, 3), "s": i64(0, 16, 6), "Wx": w(6, 8), "R": w(8, 8)}
    h = "h0"
    for t in range(3):
        inits[f"i{t}"] = np.array(t, np.int64)
        nodes += [
            helper.make_node("Gather", ["px", f"i{t}"], [f"x{t}"], axis=0),
            helper.make_node("MatMul", [h, "R"], [f"q{t}"]),
            helper.make_node("Add", [f"x{t}", f"q{t}"], [f"a{t}"]),
            helper.make_node("Tanh", [f"a{t}"], [f"h{t + 1}"]),
        ]
        h = f"h{t + 1}"
    m = model(nodes, [("image", ["batch", 3, 8, 8]), ("h0", ["batch", 8])], [h], inits)
    assert found(m, "SL202", rules) == [("SL202", "view")]


# ----------------------------------------------------------------- SL204


def test_batch_first_tokens_fed_to_a_time_major_lstm_are_reported(rules):
    nodes = [helper.make_node("Gather", ["emb", "tokens"], ["e"]), lstm("e", name="/lstm/LSTM")]
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("Y", F, None)],
        [numpy_helper.from_array(w(20, 6), "emb")] + [numpy_helper.from_array(v, k) for k, v in lstm_weights(6).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    (d,) = diags(m, "SL204", rules)
    assert d.node == "/lstm/LSTM" and "(batch, seq, 6)" in d.message and "batch_first=True" in d.fix


def test_batch_first_input_transposed_before_a_time_major_lstm_is_silent(rules):
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), lstm("xt")]
    m = model(nodes, [("x", ["batch", "seq", 6])], ["Y"], lstm_weights(6))
    assert found(m, "SL204", rules) == []


def test_time_major_input_fed_to_a_batch_major_lstm_is_reported(rules):
    m = model([lstm("x", layout=1)], [("x", ["seq_len", "batch_size", 6])], ["Y"], lstm_weights(6))
    assert found(m, "SL204", rules) == [("SL204", "lstm")]


def test_anonymous_dims_are_never_judged(rules):
    m = model([lstm("x")], [("x", ["d0", "d1", 6])], ["Y"], lstm_weights(6))
    assert found(m, "SL204", rules) == []


def test_a_second_layer_fed_the_first_layers_output_unchanged_is_silent(rules):
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        lstm("xt", name="l1"),
        helper.make_node("Squeeze", ["Y", "one"], ["y1"]),  # (seq, batch, 8)
        lstm("y1", name="l2", inputs=("W2", "R2"), outs=("Y2", "")),
    ]
    inits = {**lstm_weights(6), "W2": w(1, 32, 8), "R2": w(1, 32, 8), "one": i64(1)}
    m = model(nodes, [("x", ["batch", "seq", 6])], ["Y2"], inits)
    assert found(m, "SL204", rules) == []


# ----------------------------------------------------------------- SL205

ORT_REJECTS = "Batchwise recurrent operations"


def batchwise(op, direction="forward", states=True):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    nd = 2 if direction == "bidirectional" else 1
    ins = ["x", "W", "R", "B", "", "h0"] + (["c0"] if op == "LSTM" else [])
    outs = ["Y", "Yh"] + (["Yc"] if op == "LSTM" else [])
    if not states:
        ins = ins[:3]
    nodes = [
        helper.make_node(op, ins, outs, name=f"/rnn/{op}", hidden_size=8, layout=1, direction=direction),
        helper.make_node("Relu", ["Yh"], ["hr"]),  # a consumer of Y_h, kept untouched by the fix
    ]
    inits = {"W": w(nd, gates * 8, 5), "R": w(nd, gates * 8, 8, seed=1), "B": w(nd, 2 * gates * 8, seed=2)}
    inputs = [("x", ["batch", "seq", 5])]
    if states:
        inputs += [("h0", ["batch", nd, 8])] + ([("c0", ["batch", nd, 8])] if op == "LSTM" else [])
    state = ["batch", nd, 8]
    declared = [("Y", ["batch", "seq", nd, 8])] + [(o, state) for o in outs[1:]] + [("hr", state)]
    return model(nodes, inputs, declared, inits)


def feeds_for(m, batch=3, seq=4):
    rng = np.random.default_rng(0)
    out = {}
    for vi in m.graph.input:
        dims = [d.dim_value or {"batch": batch, "seq": seq}[d.dim_param] for d in vi.type.tensor_type.shape.dim]
        out[vi.name] = rng.standard_normal(dims).astype(np.float32)
    return out


@pytest.mark.parametrize(
    "op,direction,states",
    [("LSTM", "forward", True), ("LSTM", "bidirectional", True), ("GRU", "reverse", True), ("RNN", "forward", False)],
)
def test_batchwise_layout_is_reported_and_its_fix_runs_in_onnxruntime_like_the_reference(op, direction, states, rules):
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    m = batchwise(op, direction, states)
    (d,) = diags(m, "SL205", rules)
    assert d.node == f"/rnn/{op}" and ORT_REJECTS in d.message and d.edit is not None
    options = ort.SessionOptions()
    options.log_severity_level = 4
    with pytest.raises(Exception, match="layout"):
        ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
    fixed = onnx.ModelProto()
    fixed.CopyFrom(m)
    d.edit.apply(fixed)
    onnx.checker.check_model(fixed)
    onnx.shape_inference.infer_shapes(fixed, strict_mode=True)
    assert found(fixed, "SL205", rules) == []
    feeds = feeds_for(m)
    want = ReferenceEvaluator(m).run(None, feeds)
    got = ort.InferenceSession(fixed.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feeds)
    assert [o.name for o in fixed.graph.output] == [o.name for o in m.graph.output]
    for a, b in zip(want, got):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_time_major_layout_is_silent(rules):
    m = model([lstm("x")], [("x", ["seq", "batch", 6])], ["Y"], lstm_weights(6))
    assert found(m, "SL205", rules) == []


# ----------------------------------------------------------------- SL301


def video_model(nodes, inits, outputs=("Y",), video=("batch", "time", 3, 4, 4)):
    return model(nodes, [("video", list(video))], list(outputs), inits)


def test_flatten_of_the_whole_clip_into_a_one_step_lstm_is_reported_on_the_flatten(rules):
    nodes = [
        helper.make_node("Flatten", ["video"], ["flat"], name="/Flatten", axis=1),  # (B, T*48)
        helper.make_node("MatMul", ["flat", "fc"], ["h"]),  # Dense sized for the traced T
        helper.make_node("Unsqueeze", ["h", "zero"], ["seq"]),  # (1, B, 16): one step
        lstm("seq"),
    ]
    inits = {"fc": w(5 * 48, 16), "zero": i64(0), **lstm_weights(16)}
    (d,) = diags(video_model(nodes, inits), "SL301", rules)
    assert d.node == "/Flatten" and "(batch, time, 3, 4, 4)" in d.message and "single step" in d.message
    assert "TimeDistributed" in d.fix and "flatten(0, 1)" in d.fix


def test_per_frame_flatten_into_the_lstm_is_silent(rules):
    nodes = [
        helper.make_node("Reshape", ["video", "s"], ["seq"]),  # (B, T, 48)
        helper.make_node("Transpose", ["seq"], ["tm"], perm=[1, 0, 2]),
        lstm("tm"),
    ]
    assert found(video_model(nodes, {"s": i64(0, 0, -1), **lstm_weights(48)}), "SL301", rules) == []


def test_frames_stacked_as_conv_channels_before_an_lstm_are_reported(rules):
    nodes = [
        helper.make_node("Reshape", ["video", "s"], ["stack"], name="/stack"),  # (B, T*3, 4, 4)
        helper.make_node("Conv", ["stack", "k"], ["c"]),  # in_channels sized for T=5
        helper.make_node("Reshape", ["c", "s2"], ["seq"]),  # (B, 8, 8): a made-up sequence
        helper.make_node("Transpose", ["seq"], ["tm"], perm=[1, 0, 2]),
        lstm("tm"),
    ]
    inits = {"s": i64(0, -1, 4, 4), "k": w(8, 15, 3, 3), "s2": i64(0, 8, 4), **lstm_weights(4)}
    assert found(video_model(nodes, inits), "SL301", rules) == [("SL301", "/stack")]


def test_clip_flattened_for_a_classifier_head_with_no_recurrence_is_silent(rules):
    nodes = [helper.make_node("Flatten", ["video"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "fc"], ["Y"])]
    assert found(video_model(nodes, {"fc": w(5 * 48, 10)}), "SL301", rules) == []


# ----------------------------------------------------------------- SL302


def per_frame_cnn(tail, inits=()):
    """video (B, T, 3, 4, 4) -> (B*T, 3, 4, 4) -> Conv -> Flatten (B*T, 16) -> ``tail``."""
    nodes = [
        helper.make_node("Reshape", ["video", "fold"], ["frames"], name="/fold"),
        helper.make_node("Conv", ["frames", "k"], ["c"]),  # (B*T, 4, 2, 2)
        helper.make_node("Flatten", ["c"], ["feat"], axis=1),
    ] + tail
    return video_model(nodes, {"fold": i64(-1, 3, 4, 4), "k": w(4, 3, 3, 3), **dict(inits)})


def test_frames_fed_to_the_lstm_as_one_step_samples_are_reported_on_the_fold(rules):
    m = per_frame_cnn([helper.make_node("Unsqueeze", ["feat", "zero"], ["seq"]), lstm("seq")],
                      {"zero": i64(0), **lstm_weights(16)})
    (d,) = diags(m, "SL302", rules)
    assert d.node == "/fold" and "(batch*time, 16)" not in d.message and "batch*time" in d.message
    assert "unflatten(0, (B, T))" in d.fix


def test_folded_frames_run_as_one_long_sequence_are_reported(rules):
    m = per_frame_cnn([helper.make_node("Unsqueeze", ["feat", "one"], ["seq"]), lstm("seq")],
                      {"one": i64(1), **lstm_weights(16)})
    assert found(m, "SL302", rules) == [("SL302", "/fold")]


def test_fold_unfolded_with_the_runtime_sizes_is_silent(rules):
    tail = [
        helper.make_node("Shape", ["video"], ["sh"]),
        helper.make_node("Slice", ["sh", "z", "two"], ["bt"]),
        helper.make_node("Concat", ["bt", "m1"], ["tgt"], axis=0),
        helper.make_node("Reshape", ["feat", "tgt"], ["seq"]),  # (B, T, 16)
        helper.make_node("Transpose", ["seq"], ["tm"], perm=[1, 0, 2]),
        lstm("tm"),
    ]
    m = per_frame_cnn(tail, {"z": i64(0), "two": i64(2), "m1": i64(-1), **lstm_weights(16)})
    assert found(m, "SL302", rules) == []


def test_a_character_lstm_inside_each_word_is_silent(rules):
    # (batch, seq, 7 chars, 6) -> (batch*seq, 7, 6): the inner LSTM iterates over characters
    nodes = [
        helper.make_node("Reshape", ["words", "fold"], ["chars"]),
        helper.make_node("Transpose", ["chars"], ["tm"], perm=[1, 0, 2]),
        lstm("tm"),
    ]
    m = model(nodes, [("words", ["batch", "seq", 7, 6])], ["Y"], {"fold": i64(-1, 7, 6), **lstm_weights(6)})
    assert found(m, "SL302", rules) == []


# ----------------------------------------------------------------- SL303


def test_conv3d_reading_frames_as_channels_is_reported(rules):
    nodes = [helper.make_node("Conv", ["video", "k"], ["c"], name="/conv3d/Conv", pads=[1] * 6)]
    m = video_model(nodes, {"k": w(4, 5, 3, 3, 3)}, ("c",), video=("batch", "frames", 3, 8, 8))
    (d,) = diags(m, "SL303", rules)
    assert d.node == "/conv3d/Conv" and "(batch, frames, 3, 8, 8)" in d.message and "transpose(1, 2)" in d.fix


def test_conv3d_over_channels_then_time_is_silent(rules):
    nodes = [helper.make_node("Conv", ["video", "k"], ["c"], pads=[1] * 6)]
    m = video_model(nodes, {"k": w(4, 3, 3, 3, 3)}, ("c",), video=("batch", 3, "frames", 8, 8))
    assert found(m, "SL303", rules) == []


def test_dense_across_time_before_an_lstm_is_reported_and_without_an_lstm_is_not(rules):
    head = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),  # (B, 6, T)
        helper.make_node("MatMul", ["xt", "fc"], ["mix"], name="/fc/MatMul"),  # Dense over T
    ]
    rnn = [helper.make_node("Transpose", ["mix"], ["tm"], perm=[1, 0, 2]), lstm("tm")]
    inits = {"fc": w(5, 4), **lstm_weights(4)}
    bad = model(head + rnn, [("x", ["batch", "seq", 6])], ["Y"], inits)
    assert found(bad, "SL303", rules) == [("SL303", "/fc/MatMul")]
    forecaster = model(head, [("x", ["batch", "seq", 6])], ["mix"], {"fc": w(5, 4)})
    assert found(forecaster, "SL303", rules) == []


def test_dense_on_the_features_of_each_step_is_silent(rules):
    nodes = [helper.make_node("MatMul", ["x", "fc"], ["h"]), helper.make_node("Transpose", ["h"], ["tm"], perm=[1, 0, 2]),
             lstm("tm")]
    m = model(nodes, [("x", ["batch", "seq", 6])], ["Y"], {"fc": w(6, 4), **lstm_weights(4)})
    assert found(m, "SL303", rules) == []


def test_a_clip_whose_time_axis_is_static_is_still_recognised_by_its_rank(rules):
    nodes = [
        helper.make_node("Flatten", ["video"], ["flat"], name="/Flatten", axis=1),
        helper.make_node("Unsqueeze", ["flat", "zero"], ["seq"]),
        lstm("seq"),
    ]
    m = video_model(nodes, {"zero": i64(0), **lstm_weights(5 * 48)}, video=("batch", 5, 3, 4, 4))
    assert found(m, "SL301", rules) == [("SL301", "/Flatten")]


def test_per_frame_logits_returned_still_folded_are_reported_and_unfolded_ones_are_not(rules):
    head = [helper.make_node("Gemm", ["feat", "fc"], ["logits"], transB=0)]
    bad = per_frame_cnn(head, {"fc": w(16, 5)})
    del bad.graph.output[:]
    bad.graph.output.append(helper.make_tensor_value_info("logits", F, None))
    (d,) = diags(bad, "SL302", rules)
    assert d.node == "/fold" and "graph output 'logits'" in d.message
    unfold = head + [
        helper.make_node("Shape", ["video"], ["sh"]),
        helper.make_node("Slice", ["sh", "z", "two"], ["bt"]),
        helper.make_node("Concat", ["bt", "m1"], ["tgt"], axis=0),
        helper.make_node("Reshape", ["logits", "tgt"], ["Y"]),
    ]
    good = per_frame_cnn(unfold, {"fc": w(16, 5), "z": i64(0), "two": i64(2), "m1": i64(-1)})
    assert found(good, "SL302", rules) == []


def test_dense_across_the_steps_an_lstm_returned_is_reported(rules):
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        lstm("xt", outs=("Y", "")),  # (6, 1, batch, 8)
        helper.make_node("Squeeze", ["Y", "one"], ["y3"]),  # (6, batch, 8)
        helper.make_node("Transpose", ["y3"], ["fb"], perm=[1, 2, 0]),  # (batch, 8, 6)
        helper.make_node("MatMul", ["fb", "mix"], ["pooled"], name="/mix/MatMul"),  # Linear(6, 1) over the steps
    ]
    inits = {"one": i64(1), "mix": w(6, 1), **lstm_weights(5)}
    m = model(nodes, [("x", ["batch", 6, 5])], ["pooled"], inits)
    (d,) = diags(m, "SL303", rules)
    assert d.node == "/mix/MatMul" and "exactly 6 steps" in d.message
