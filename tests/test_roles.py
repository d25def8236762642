"""Axis roles: what each axis holds, from seeds, through reshapes, into recurrences."""

from __future__ import annotations

import time

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from shapelint.dims import symbol
from shapelint.graph import ModelGraph
from shapelint.infer import infer
from shapelint.roles import AxisRole, align_axes, analyse, role_of_dim_name

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, inits=(), opset=17):
    """A model from (name, shape) inputs/outputs and name -> array initializers."""
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.INT64 if n.startswith("ids") else F, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, F, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def roles_of(m, hints=True):
    mg = ModelGraph.from_model(m)
    return analyse(mg, infer(mg), hints)


def w(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


def conv_then(reshape_nodes, inits=()):
    nodes = [helper.make_node("Conv", ["x", "k"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2])] + reshape_nodes
    return model(nodes, [("x", ["batch", 3, 8, 8])], ["y"], {"k": w(6, 3, 3, 3), **dict(inits)})


# ----------------------------------------------------------------- names and alignment


def test_dim_names_are_read_conservatively():
    assert role_of_dim_name("batch") == "batch"
    assert role_of_dim_name("batch_size") == "batch"
    assert role_of_dim_name("N") == "batch"
    assert role_of_dim_name("sequence_length") == "time"
    assert role_of_dim_name("num_frames") == "time"
    assert role_of_dim_name("T") == "time"
    for name in ("n", "t", "hidden", "s0", "unk__3", "dynamic_axes_1", "height_out", ""):
        assert role_of_dim_name(name) is None, name


def test_align_axes_groups_merges_and_splits_by_symbolic_products():
    b, t = symbol("batch"), symbol("time")
    assert align_axes((b, 6, 4, 4), (b, 96)) == [((0,), (0,)), ((1, 2, 3), (1,))]
    assert align_axes((b, t, 128), (b * t, 128)) == [((0, 1), (0,)), ((2,), (1,))]
    assert align_axes((b, 6, 1, 4), (b, 24)) == [((0,), (0,)), ((1, 3), (1,))]


def test_align_axes_leaves_undecidable_axes_out_instead_of_guessing():
    b, t = symbol("batch"), symbol("time")
    groups = align_axes((b, None, 8), (b, t, 8))
    assert ((0,), (0,)) in groups and ((2,), (2,)) in groups
    assert all(1 not in gi for gi, _ in groups)


# ----------------------------------------------------------------- conv maps and reshapes


def test_conv_output_is_batch_channel_spatial():
    r = roles_of(conv_then([helper.make_node("Relu", ["f"], ["y"])]))
    assert r.describe("y") == "(batch, channel, spatial, spatial)"


def test_flatten_merges_channel_and_spatial_axes_in_memory_order():
    r = roles_of(conv_then([helper.make_node("Flatten", ["f"], ["y"], axis=1)]))
    assert r.axis("y", 1) == AxisRole(("channel", "spatial", "spatial"))
    assert r.axis("y", 0).role == "batch"


def test_reshape_to_positions_by_channels_without_transpose_is_mixed():
    r = roles_of(conv_then([helper.make_node("Reshape", ["f", "s"], ["y"])], {"s": i64(0, 16, 6)}))
    a1, a2 = r.axis("y", 1), r.axis("y", 2)
    assert a1.mixed and a2.mixed and a1.has("channel", "spatial")
    assert a1.origin == "y"


def test_permute_then_reshape_gives_positions_then_channels():
    nodes = [
        helper.make_node("Transpose", ["f"], ["p"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["p", "s"], ["y"]),
    ]
    r = roles_of(conv_then(nodes, {"s": i64(0, 16, 6)}))
    assert r.describe("y") == "(batch, spatial*spatial, channel)"


def test_crnn_permute_then_merge_of_channels_and_height_is_not_mixed():
    nodes = [
        helper.make_node("Transpose", ["f"], ["p"], perm=[0, 3, 1, 2]),  # (N, W, C, H)
        helper.make_node("Reshape", ["p", "s"], ["y"]),  # (N, W, C*H)
    ]
    r = roles_of(conv_then(nodes, {"s": i64(0, 4, 24)}))
    assert r.describe("y") == "(batch, spatial, channel*spatial)"


def test_flatten2_then_transpose_is_positions_then_channels():
    nodes = [
        helper.make_node("Reshape", ["f", "s"], ["m"]),
        helper.make_node("Transpose", ["m"], ["y"], perm=[0, 2, 1]),
    ]
    r = roles_of(conv_then(nodes, {"s": i64(0, 6, 16)}))
    assert r.describe("y") == "(batch, spatial*spatial, channel)"


# ----------------------------------------------------------------- sequences


def lstm_node(x, layout=0, outs=("Y", "Yh"), **kw):
    return helper.make_node("LSTM", [x, "W", "R"], list(outs), hidden_size=8, layout=layout, **kw)


LSTM_W = {"W": w(1, 32, 6), "R": w(1, 32, 8)}


def test_named_input_dims_flow_through_transpose_into_the_lstm_outputs():
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), lstm_node("xt")]
    r = roles_of(model(nodes, [("x", ["batch", "seq", 6])], ["Y"], LSTM_W))
    assert r.describe("x") == "(batch, time, feature)"  # feature from the LSTM's own reading
    assert r.describe("Y") == "(time, direction, batch, feature)"
    assert r.describe("Yh") == "(direction, batch, feature)"


def test_an_lstm_reading_tells_the_roles_of_an_input_with_anonymous_dims():
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), lstm_node("xt")]
    m = model(nodes, [("x", ["d0", "d1", 6])], ["Y"], LSTM_W)
    assert roles_of(m).describe("x") == "(batch, time, feature)"
    assert roles_of(m, hints=False).describe("x") == "(?, ?, ?)"


def test_a_reading_that_contradicts_named_dims_is_ignored():
    # batch-first tensor straight into a layout=0 LSTM: the names win, the hint is dropped
    r = roles_of(model([lstm_node("x")], [("x", ["batch", "seq", 6])], ["Y"], LSTM_W))
    assert r.describe("x") == "(batch, time, ?)"


def test_two_readers_that_disagree_leave_the_axis_unknown():
    nodes = [
        lstm_node("x", outs=("Y1", "")),
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        lstm_node("xt", outs=("Y2", "")),
    ]
    r = roles_of(model(nodes, [("x", ["a", "b", 6])], ["Y1", "Y2"], LSTM_W))
    assert r.axis("x", 0).role is None and r.axis("x", 1).role is None


def test_embedding_lookup_gives_batch_time_feature():
    nodes = [helper.make_node("Gather", ["emb", "ids"], ["e"])]
    r = roles_of(model(nodes, [("ids", ["batch", "sequence_length"])], ["e"], {"emb": w(20, 8)}))
    assert r.describe("e") == "(batch, time, feature)"


def test_dense_on_a_weight_makes_the_last_axis_features():
    nodes = [helper.make_node("MatMul", ["x", "k"], ["y"])]
    r = roles_of(model(nodes, [("x", ["batch", "seq", 6])], ["y"], {"k": w(6, 4)}))
    assert r.describe("y") == "(batch, time, feature)"


def test_fold_into_batch_and_unfold_by_symbolic_sizes():
    nodes = [
        helper.make_node("Shape", ["v"], ["sh"]),
        helper.make_node("Slice", ["sh", "z", "two"], ["bt"]),
        helper.make_node("Concat", ["bt", "m1"], ["tgt"], axis=0),
        helper.make_node("Reshape", ["v", "fold"], ["f"]),  # (B*T, 3, 4, 4)
        helper.make_node("Conv", ["f", "k"], ["c"]),  # (B*T, 6, 2, 2)
        helper.make_node("Reshape", ["c", "tgt"], ["y"]),  # (B, T, 24)
    ]
    inits = {"fold": i64(-1, 3, 4, 4), "k": w(6, 3, 3, 3), "z": i64(0), "two": i64(2), "m1": i64(-1)}
    r = roles_of(model(nodes, [("v", ["batch", "time", 3, 4, 4])], ["y"], inits))
    assert r.axis("f", 0).folds_time_into_batch
    assert r.describe("c") == "(batch*time, channel, spatial, spatial)"
    assert r.describe("y") == "(batch, time, channel*spatial*spatial)"


def test_time_merged_with_channels_is_recognised():
    nodes = [helper.make_node("Reshape", ["v", "s"], ["y"])]
    r = roles_of(model(nodes, [("v", ["batch", "frames", 3, 4, 4])], ["y"], {"s": i64(0, -1, 4, 4)}))
    assert r.axis("y", 1).merges_time_into_features


# ----------------------------------------------------------------- recurrences


def unrolled(recurrent: bool, steps: int = 3):
    """A tanh RNN unrolled over axis 0 of x (T, batch, 4), or per-step layers with no state."""
    nodes, inits = [], {"W": w(4, 8), "R": w(8, 8)}
    h = "h0"
    for t in range(steps):
        inits[f"i{t}"] = np.array(t, np.int64)
        nodes += [
            helper.make_node("Gather", ["x", f"i{t}"], [f"x{t}"], axis=0),
            helper.make_node("MatMul", [f"x{t}", "W"], [f"p{t}"]),
        ]
        if recurrent:
            nodes += [
                helper.make_node("MatMul", [h, "R"], [f"q{t}"]),
                helper.make_node("Add", [f"p{t}", f"q{t}"], [f"a{t}"]),
                helper.make_node("Tanh", [f"a{t}"], [f"h{t + 1}"]),
            ]
        else:
            nodes.append(helper.make_node("Tanh", [f"p{t}"], [f"h{t + 1}"]))
        h = f"h{t + 1}"
    outs = [h] if recurrent else [f"h{t + 1}" for t in range(steps)]
    return model(nodes, [("x", [steps, "d", 4]), ("h0", ["d", 8])], outs, inits)


def test_an_unrolled_cell_marks_its_sliced_axis_as_a_recurrence_over_time():
    r = roles_of(unrolled(True))
    (rc,) = r.recurrences
    assert (rc.kind, rc.tensor, rc.time_axis) == ("unrolled", "x", 0)
    assert r.axis("x", 0).role == "time"


def test_per_step_layers_without_state_are_not_a_recurrence():
    assert roles_of(unrolled(False)).recurrences == []


def test_gathering_both_directions_final_states_is_not_a_recurrence():
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["xt", "W2", "R2"], ["Y", "hn"], hidden_size=8, direction="bidirectional"),
        helper.make_node("Gather", ["hn", "m2"], ["fw"], axis=0),
        helper.make_node("Gather", ["hn", "m1"], ["bw"], axis=0),
        helper.make_node("Concat", ["fw", "bw"], ["cat"], axis=1),
        helper.make_node("Tanh", ["cat"], ["y"]),
    ]
    inits = {"W2": w(2, 32, 6), "R2": w(2, 32, 8), "m2": np.array(-2, np.int64), "m1": np.array(-1, np.int64)}
    r = roles_of(model(nodes, [("x", ["batch", "seq", 6])], ["y"], inits))
    assert [rc.kind for rc in r.recurrences] == ["op"]
    assert r.describe("cat") == "(batch, feature)"


def test_scan_iterates_over_its_scan_axis():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["y_t"])],
        "body",
        [helper.make_tensor_value_info("s_in", F, [4]), helper.make_tensor_value_info("x_t", F, [4])],
        [helper.make_tensor_value_info("s_out", F, [4]), helper.make_tensor_value_info("y_t", F, [4])],
    )
    nodes = [helper.make_node("Scan", ["s0", "x"], ["s", "ys"], body=body, num_scan_inputs=1, scan_input_axes=[1])]
    r = roles_of(model(nodes, [("s0", [4]), ("x", [4, "d"])], ["s", "ys"]))
    (rc,) = r.recurrences
    assert (rc.kind, rc.time_axis) == ("scan", 1)


def test_a_loop_gathering_an_outer_tensor_by_its_iteration_number_is_a_recurrence():
    body = helper.make_graph(
        [
            helper.make_node("Gather", ["x", "it"], ["x_t"], axis=1),
            helper.make_node("Add", ["h_in", "x_t"], ["h_out"]),
            helper.make_node("Identity", ["c_in"], ["c_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("it", TensorProto.INT64, []),
            helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("h_in", F, ["d", 4]),
        ],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("h_out", F, ["d", 4])],
    )
    nodes = [helper.make_node("Loop", ["n", "", "h0"], ["h"], body=body)]
    m = model(nodes, [("x", ["d", 5, 4]), ("h0", ["d", 4])], ["h"], {"n": np.array(5, np.int64)})
    (rc,) = roles_of(m).recurrences
    assert (rc.kind, rc.tensor, rc.time_axis) == ("loop", "x", 1)


def test_analysis_is_linear_enough_for_long_graphs():
    n = 3000
    nodes = [helper.make_node("Relu" if k % 2 else "Transpose", [f"t{k}"], [f"t{k + 1}"], **({} if k % 2 else {"perm": [1, 0, 2]}))
             for k in range(n)]
    nodes.append(lstm_node(f"t{n}"))
    m = model(nodes, [("t0", ["batch", "seq", 6])], ["Y"], LSTM_W)
    mg = ModelGraph.from_model(m)
    table = infer(mg)
    start = time.perf_counter()
    r = analyse(mg, table)
    assert time.perf_counter() - start < 5
    assert r.describe(f"t{n}") == "(batch, time, ?)"


def test_a_group_norm_reshape_round_trip_keeps_channels_apart_from_positions():
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2]),  # (batch, 6, 4, 4)
        helper.make_node("Reshape", ["f", "g"], ["grouped"]),  # (batch, 2, 48)
        helper.make_node("InstanceNormalization", ["grouped", "sc", "bi"], ["normed"]),
        helper.make_node("Reshape", ["normed", "back"], ["y"]),  # (batch, 6, 4, 4)
    ]
    inits = {"k": w(6, 3, 3, 3), "g": i64(0, 2, -1), "sc": w(2), "bi": w(2), "back": i64(0, 6, 4, 4)}
    r = roles_of(model(nodes, [("x", ["batch", 3, 8, 8])], ["y"], inits))
    assert r.describe("grouped") == "(batch, channel, channel*spatial*spatial)"
    assert r.describe("y") == "(batch, channel, spatial, spatial)"


def test_a_one_step_unrolled_cell_is_still_a_recurrence():
    m = unrolled(True, steps=1)
    (rc,) = roles_of(m).recurrences
    assert (rc.kind, rc.steps, rc.time_axis) == ("unrolled", 1, 0)


def test_a_one_step_slice_into_a_plain_tanh_layer_is_not_a_recurrence():
    assert roles_of(unrolled(False, steps=1)).recurrences == []


def test_per_step_results_stacked_back_take_the_recurrence_time_axis():
    m = unrolled(True, steps=3)
    nodes = list(m.graph.node)
    zero = numpy_helper.from_array(np.array([0], np.int64), "zero")
    for t in (1, 2, 3):
        nodes.append(helper.make_node("Unsqueeze", [f"h{t}", "zero"], [f"u{t}"]))
    nodes.append(helper.make_node("Concat", ["u1", "u2", "u3"], ["stack"], axis=0))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    m.graph.initializer.append(zero)
    m.graph.output.append(helper.make_tensor_value_info("stack", F, None))
    assert roles_of(m, hints=False).axis("stack", 0).role == "time"


def test_a_rank5_batch_input_is_read_as_a_clip_unless_a_conv3d_reads_axis1_as_channels():
    clip = model([helper.make_node("Flatten", ["v"], ["y"], axis=2)], [("v", ["batch", 4, 3, 8, 8])], ["y"])
    assert roles_of(clip).axis("v", 1).role == "time"
    assert roles_of(clip, hints=False).axis("v", 1).role is None
    volume = model([helper.make_node("Conv", ["v", "k"], ["y"])], [("v", ["batch", 1, 8, 8, 8])], ["y"],
                   {"k": w(4, 1, 3, 3, 3)})
    assert roles_of(volume).axis("v", 1).role is None


def test_skipping_nodes_no_role_reaches_changes_no_role_on_any_fixture(monkeypatch):
    """The forward pass skips nodes whose inputs have no role (shape arithmetic, constants); the roles,
    origins, hints and recurrences must be exactly those of the full pass, on every fixture."""
    from pathlib import Path

    from shapelint.load import load_model
    from shapelint.roles import AxisRoles

    def full(x):
        return {k: [(r.parts, r.mixed, r.origin, r.sizes) for r in v] for k, v in x.roles.items()}

    paths = sorted((Path(__file__).resolve().parents[1] / "fixtures").rglob("*.onnx"))
    checked = 0
    for p in paths:
        try:
            mg = ModelGraph.from_model(load_model(p))
        except Exception:  # noqa: BLE001 - the fixtures of unreadable files
            continue
        table = infer(mg)
        for hints in (True, False):
            monkeypatch.setattr(AxisRoles, "skip_unreached", True)
            fast = AxisRoles(mg, table, hints)
            monkeypatch.setattr(AxisRoles, "skip_unreached", False)
            slow = AxisRoles(mg, table, hints)
            assert full(fast) == full(slow), (p.name, hints)
            assert fast.hints == slow.hints
            assert [str(r) for r in fast.recurrences] == [str(r) for r in slow.recurrences]
            checked += 1
    assert checked > 250
