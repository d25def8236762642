"""The axis algebra (``shapelint.axes``): factors through reshapes, scrambles, slots, recurrence forms.

Expectations come from memory order, not from shapelint: an (N, C, H, W) map stored channel-major and
read back as (N, P, Q) puts element (c, h, w) of sample n at flat offset c*H*W + h*W + w, so axis 1
of the result holds whole channels exactly when Q divides H*W, and so on.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx.parser
import pytest
from onnx import TensorProto, helper, numpy_helper

from shapelint.axes import analyse
from shapelint.check import check
from shapelint.graph import ModelGraph
from shapelint.infer import infer

F = TensorProto.FLOAT


def w(*shape, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 0.3).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


def make(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs],
        [helper.make_tensor_value_info(o, F, None) if isinstance(o, str) else helper.make_tensor_value_info(*o)
         for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def axes_of(m):
    mg = ModelGraph.from_model(m)
    return analyse(mg, infer(mg))


# ----------------------------------------------------------------- reshape cuts

def test_a_fold_of_batch_and_time_keeps_both_factors_and_unfolds_exactly():
    m = make([
        helper.make_node("Reshape", ["x", "fold"], ["f"]),  # (b*t, 8)
        helper.make_node("Reshape", ["f", "back"], ["y"]),  # (b, t, 8) by values
    ], [("x", ["b", "t", 8])], ["y"], {"fold": i64(-1, 8)})
    # the unfold target computed from the input's shape, as exporters write x.view(B, T, -1)
    m.graph.node.insert(0, helper.make_node("Shape", ["x"], ["sh"]))
    m.graph.node.insert(1, helper.make_node("Slice", ["sh", "z", "two"], ["bt"]))
    m.graph.node.insert(2, helper.make_node("Concat", ["bt", "m1"], ["back"], axis=0))
    m.graph.initializer.extend([numpy_helper.from_array(i64(0), "z"), numpy_helper.from_array(i64(2), "two"),
                                numpy_helper.from_array(i64(-1), "m1")])
    am = axes_of(m)
    x, f, y = am.axes("x"), am.axes("f"), am.axes("y")
    assert f[0] == x[0] + x[1] and f[1] == x[2]
    assert y == x
    assert not am.scrambles


@pytest.mark.parametrize("c,h,wd,aligned", [(16, 4, 4, "channels"), (16, 8, 8, "split"), (6, 4, 4, "scramble"),
                                             (3, 5, 7, "scramble")])
def test_channel_major_map_read_as_positions_by_channels(c, h, wd, aligned):
    m = make([helper.make_node("Reshape", ["x", "s"], ["y"], name="view")],
             [("x", ["n", c, h, wd])], ["y"], {"s": i64(0, h * wd, c)})
    am = axes_of(m)
    x, y = am.axes("x"), am.axes("y")
    if aligned == "channels":  # C == H*W: axis 1 is exactly the channels, axis 2 the positions
        assert y[1] == x[1] and y[2] == x[2] + x[3]
    elif aligned == "split":  # 64 = 16 * 4: the channels and the top 4 of the 8 rows' blocks
        assert [f.source for f in y[1]] == [x[1][0].source, x[2][0].source]
        assert y[1][1].size == 4 and y[2][0].size == 2
    else:  # 16 is no multiple of 6 (35 of 3): every element of axes 1 and 2 mixes channels and positions
        (sc,) = am.scrambles
        assert sc.node.name == "view" and sc.axes == (1, 2)
        assert {s.id for s in sc.mixed} == {x[1][0].source.id, x[2][0].source.id, x[3][0].source.id}


def test_symbolic_sizes_that_line_up_only_for_particular_values_are_a_scramble():
    # a (b*t, 8) fold read back as (t, b, 8), sizes taken from the tensor: right only when b == t
    m = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[b, t, 8] x) => (z) {
      s = Constant <value = int64[2] {-1, 8}> ()
      y = Reshape(x, s)
      sh = Shape(x)
      i1 = Constant <value = int64[1] {1}> ()
      i0 = Constant <value = int64[1] {0}> ()
      e = Constant <value = int64[1] {8}> ()
      t1 = Gather <axis = 0> (sh, i1)
      b0 = Gather <axis = 0> (sh, i0)
      tb = Concat <axis = 0> (t1, b0, e)
      z = Reshape(y, tb)
    }""")
    am = axes_of(m)
    (sc,) = am.scrambles
    assert sc.node.op_type == "Reshape" and sc.node.input[0] == "y" and sc.generic and sc.axes == (0, 1)


def test_an_unknown_size_is_never_judged():
    # the target's middle entry comes from a runtime input: inference cannot size the cut
    m = make([helper.make_node("Reshape", ["x", "s"], ["y"])], [("x", ["n", 6, 4, 4])], ["y"])
    m.graph.input.append(helper.make_tensor_value_info("s", TensorProto.INT64, [3]))
    am = axes_of(m)
    assert not am.scrambles


# ----------------------------------------------------------------- SL202 whatever the sizes, names and forms

def conv_map(c, h, wd, dims, nhwc=False):
    """x -> Conv (C=c, same size) -> map (n, c, h, wd) [or NHWC (n, h, wd, c) behind Transposes]."""
    nodes = []
    if nhwc:  # tf2onnx / jax2onnx: the model is NHWC, the Conv is wrapped in Transposes
        nodes += [helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2]),
                  helper.make_node("Conv", ["xc", "k"], ["fc"], pads=[1, 1, 1, 1]),
                  helper.make_node("Transpose", ["fc"], ["f"], perm=[0, 2, 3, 1])]
        shape = [dims[0], h, wd, 3]
    else:
        nodes += [helper.make_node("Conv", ["x", "k"], ["f"], pads=[1, 1, 1, 1])]
        shape = [dims[0], 3, h, wd]
    return nodes, shape, {"k": w(c, 3, 3, 3)}


def recurrence(seq, width, form, hidden=4):
    """seq (n, T, width) batch-major -> a recurrence of the given form; returns nodes, inits, output."""
    if form == "lstm":
        return ([helper.make_node("Transpose", [seq], ["tm"], perm=[1, 0, 2]),
                 helper.make_node("LSTM", ["tm", "W", "R"], ["Y"], name="rnn", hidden_size=hidden)],
                {"W": w(1, 4 * hidden, width), "R": w(1, 4 * hidden, hidden, seed=1)}, "Y")
    if form == "gru":
        return ([helper.make_node("Transpose", [seq], ["tm"], perm=[1, 0, 2]),
                 helper.make_node("GRU", ["tm", "W", "R"], ["Y"], name="rnn", hidden_size=hidden)],
                {"W": w(1, 3 * hidden, width), "R": w(1, 3 * hidden, hidden, seed=1)}, "Y")
    if form == "scan":
        body = helper.make_graph(
            [helper.make_node("MatMul", ["xt", "Wb"], ["a"]), helper.make_node("MatMul", ["h", "Rb"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Tanh", ["s"], ["h2"]),
             helper.make_node("Identity", ["h2"], ["yt"])],
            "cell",
            [helper.make_tensor_value_info("h", F, None), helper.make_tensor_value_info("xt", F, None)],
            [helper.make_tensor_value_info("h2", F, None), helper.make_tensor_value_info("yt", F, None)],
            [numpy_helper.from_array(w(width, hidden), "Wb"), numpy_helper.from_array(w(hidden, hidden, seed=2), "Rb")],
        )
        # h0 = zeros(n, hidden) sized from the sequence
        nodes = [helper.make_node("Shape", [seq], ["ssh"]), helper.make_node("Gather", ["ssh", "zero"], ["n0"], axis=0),
                 helper.make_node("Concat", ["n0", "hid"], ["h0s"], axis=0),
                 helper.make_node("ConstantOfShape", ["h0s"], ["h0"]),
                 helper.make_node("Scan", ["h0", seq], ["hT", "Y"], name="rnn", num_scan_inputs=1, body=body,
                                  scan_input_axes=[1], scan_output_axes=[1])]
        return nodes, {"zero": i64(0), "hid": i64(hidden)}, "Y"
    raise ValueError(form)


def sl202_model(c, h, wd, dims, bad, form="lstm", nhwc=False, computed=False):
    nodes, shape, inits = conv_map(c, h, wd, dims, nhwc)
    if nhwc:
        # bad: back to channel-major before flattening positions; good: flatten the NHWC map directly
        if bad:
            nodes.append(helper.make_node("Transpose", ["f"], ["g"], perm=[0, 3, 1, 2]))
        src = "g" if bad else "f"
    else:
        if not bad:
            nodes.append(helper.make_node("Transpose", ["f"], ["g"], perm=[0, 2, 3, 1]))
        src = "g" if not bad else "f"
    if computed:  # x.view(x.size(0), -1, C) with the batch read from the tensor
        nodes += [helper.make_node("Shape", [src], ["sh"]), helper.make_node("Gather", ["sh", "zero0"], ["b0"], axis=0),
                  helper.make_node("Unsqueeze", ["b0", "ax0"], ["b1"]),
                  helper.make_node("Concat", ["b1", "rest"], ["target"], axis=0)]
        inits.update({"zero0": np.array(0, np.int64), "ax0": i64(0), "rest": i64(-1, c)})
    else:
        inits["target"] = i64(0, h * wd, c)
    nodes.append(helper.make_node("Reshape", [src, "target"], ["seq"], name="view"))
    rn, ri, out = recurrence("seq", c, form)
    inits.update(ri)
    return make(nodes + rn, [("x", [dims[0]] + shape[1:])], [out], inits)


SIZES = [(16, 4, 4), (16, 8, 8), (6, 4, 4), (3, 5, 7)]
NAMES = [["batch"], ["unk__12"], ["s0"], [2]]


@pytest.mark.parametrize("form", ["lstm", "gru", "scan"])
@pytest.mark.parametrize("nhwc", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dims", NAMES, ids=lambda d: str(d[0]))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "C%dH%dW%d" % s)
def test_sl202_whatever_the_sizes_names_layout_and_recurrence(size, dims, nhwc, form, rules):
    c, h, wd = size
    bad = sl202_model(c, h, wd, dims, True, form, nhwc, computed=(dims[0] == "s0"))
    good = sl202_model(c, h, wd, dims, False, form, nhwc, computed=(dims[0] == "s0"))
    got = [(d.rule, d.node) for d in check(bad, rules=rules).diagnostics]
    assert ("SL202", "view") in got, got
    assert [d for d in check(good, rules=rules).diagnostics if d.rule.startswith(("SL2", "SL3", "SL4", "SL5"))] == []


def test_the_models_of_the_sl202_matrix_run_under_onnxruntime():
    # the twins are valid models at two batch sizes, and the bad ones run too (the mistake is silent)
    import onnxruntime as ort

    for bad in (False, True):
        m = sl202_model(6, 4, 4, ["batch"], bad, "scan")
        m.graph.output[0].type.tensor_type.shape.dim.add().dim_param = "n"
        for _ in range(2):
            m.graph.output[0].type.tensor_type.shape.dim.add()
        onnx.checker.check_model(m, full_check=True)
        sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        for n in (2, 3):
            (y,) = sess.run(None, {"x": w(n, 3, 4, 4)})
            assert y.shape == (n, 16, 4)


# ----------------------------------------------------------------- look-alikes that must stay silent

def test_a_dense_that_generates_the_steps_of_a_sequence_is_silent(rules):
    # a sequence decoder from a latent vector: z (n, 8) -> Dense (n, 6*5) -> (n, 6, 5) -> LSTM over the 6 steps
    nodes = [helper.make_node("MatMul", ["z", "fc"], ["h"], name="gen"),
             helper.make_node("Reshape", ["h", "s"], ["seq"])]
    rn, ri, out = recurrence("seq", 5, "lstm")
    m = make(nodes + rn, [("z", ["n", 8])], [out], {"fc": w(8, 30), "s": i64(0, 6, 5), **ri})
    assert [d for d in check(m, rules=rules).diagnostics if d.rule.startswith(("SL2", "SL3", "SL4", "SL5"))] == []


def test_a_loop_that_passes_its_condition_on_runs_every_trip():
    # jax2onnx writes lax.scan as a Loop with a constant-true condition the body hands back unchanged
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]), helper.make_node("Gather", ["seq", "i"], ["xt"], axis=0),
         helper.make_node("Add", ["h", "xt"], ["h2"]), helper.make_node("Identity", ["seq"], ["seq_out"]),
         helper.make_node("Identity", ["h2"], ["y"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h", F, None), helper.make_tensor_value_info("seq", F, None)],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []), helper.make_tensor_value_info("h2", F, None),
         helper.make_tensor_value_info("seq_out", F, None), helper.make_tensor_value_info("y", F, None)],
    )
    nodes = [helper.make_node("Transpose", ["x"], ["tm"], perm=[1, 0, 2]),
             helper.make_node("Loop", ["trip", "cond", "h0", "tm"], ["hT", "seqT", "ys"], name="scan", body=body)]
    inits = {"trip": np.array(6, np.int64), "cond": np.array(True), "h0": np.zeros((1, 4), np.float32)}
    m = make(nodes, [("x", ["b", 6, 4])], ["ys"], inits)
    mg = ModelGraph.from_model(m)
    table = infer(mg)
    assert table.shape("ys")[0] == 6
    am = analyse(mg, table)
    (rc,) = am.recurrences
    assert rc.kind == "loop" and rc.tensor == "tm" and rc.time_axis == 0
    assert am.axes("ys")[0] == am.axes("x")[1]  # the stacked steps are the input's time axis again


# ----------------------------------------------------------------- SL204 from op evidence, no names

@pytest.mark.parametrize("dims", [[4, 4, 8], ["unk__3", "unk__4", 8], ["s0", "s1", 8]], ids=["static", "unk", "s0"])
@pytest.mark.parametrize("swapped", [True, False])
def test_a_zero_state_sized_from_the_batch_exposes_a_batch_first_input(dims, swapped, rules):
    # h0 = torch.zeros(1, x.size(0), H): the state's batch slot says axis 0 of x is the batch
    nodes = [
        helper.make_node("Shape", ["x"], ["sh"]), helper.make_node("Gather", ["sh", "zero"], ["b"], axis=0),
        helper.make_node("Concat", ["one", "b", "hid"], ["h0s"], axis=0),
        helper.make_node("ConstantOfShape", ["h0s"], ["h0"]),
    ]
    x = "x"
    if not swapped:
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]))
        x = "xt"
    nodes.append(helper.make_node("LSTM", [x, "W", "R", "", "", "h0"], ["Y"], name="rnn", hidden_size=4))
    inits = {"zero": i64(0), "one": i64(1), "hid": i64(4), "W": w(1, 16, 8), "R": w(1, 16, 4, seed=1)}
    m = make(nodes, [("x", dims)], ["Y"], inits)
    got = [(d.rule, d.node) for d in check(m, rules=rules).diagnostics if d.rule == "SL204"]
    assert got == ([("SL204", "rnn")] if swapped else [])


# ----------------------------------------------------------------- recurrence forms (ported from the roles tests)

def unrolled(recurrent: bool, steps: int = 3):
    """A tanh RNN unrolled over axis 0 of x (T, d, 4), or per-step layers with no state."""
    nodes, inits = [], {"W": w(4, 8), "R": w(8, 8)}
    h = "h0"
    for t in range(steps):
        inits[f"i{t}"] = np.array(t, np.int64)
        nodes += [helper.make_node("Gather", ["x", f"i{t}"], [f"x{t}"], axis=0),
                  helper.make_node("MatMul", [f"x{t}", "W"], [f"p{t}"])]
        if recurrent:
            nodes += [helper.make_node("MatMul", [h, "R"], [f"q{t}"]),
                      helper.make_node("Add", [f"p{t}", f"q{t}"], [f"a{t}"]),
                      helper.make_node("Tanh", [f"a{t}"], [f"h{t + 1}"])]
        else:
            nodes.append(helper.make_node("Tanh", [f"p{t}"], [f"h{t + 1}"]))
        h = f"h{t + 1}"
    outs = [h] if recurrent else [f"h{t + 1}" for t in range(steps)]
    return make(nodes, [("x", [steps, "d", 4]), ("h0", ["d", 8])], outs, inits)


@pytest.mark.parametrize("steps", [1, 3])
def test_an_unrolled_cell_is_a_recurrence_over_the_axis_it_reads_step_by_step(steps):
    am = axes_of(unrolled(True, steps))
    (rc,) = am.recurrences
    assert (rc.kind, rc.tensor, rc.time_axis) == ("unrolled", "x", 0)
    if steps > 1:
        assert am.has_label(am.axis("x", 0)[0].source, "time")


@pytest.mark.parametrize("steps", [1, 3])
def test_per_step_layers_without_state_are_not_a_recurrence(steps):
    assert axes_of(unrolled(False, steps)).recurrences == []


def test_per_step_results_stacked_back_are_the_time_axis_again():
    m = unrolled(True, steps=3)
    for t in (1, 2, 3):
        m.graph.node.append(helper.make_node("Unsqueeze", [f"h{t}", "zero"], [f"u{t}"]))
    m.graph.node.append(helper.make_node("Concat", ["u1", "u2", "u3"], ["stack"], axis=0))
    m.graph.initializer.append(numpy_helper.from_array(i64(0), "zero"))
    m.graph.output.append(helper.make_tensor_value_info("stack", F, None))
    am = axes_of(m)
    assert am.axes("stack")[0] == am.axes("x")[0]


def test_gathering_both_directions_final_states_is_not_a_recurrence():
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        helper.make_node("LSTM", ["xt", "W2", "R2"], ["Y", "hn"], hidden_size=8, direction="bidirectional"),
        helper.make_node("Gather", ["hn", "m2"], ["fw"], axis=0),
        helper.make_node("Gather", ["hn", "m1"], ["bw"], axis=0),
        helper.make_node("Concat", ["fw", "bw"], ["cat"], axis=1),
        helper.make_node("Tanh", ["cat"], ["y"]),
    ]
    inits = {"W2": w(2, 32, 6), "R2": w(2, 32, 8, seed=1), "m2": np.array(-2, np.int64), "m1": np.array(-1, np.int64)}
    am = axes_of(make(nodes, [("x", ["batch", "seq", 6])], ["y"], inits))
    assert [rc.kind for rc in am.recurrences] == ["op"]


def test_a_group_norm_reshape_round_trip_gives_the_channels_back_whole():
    nodes = [
        helper.make_node("Conv", ["x", "k"], ["f"], pads=[1, 1, 1, 1], strides=[2, 2]),  # (batch, 6, 4, 4)
        helper.make_node("Reshape", ["f", "g"], ["grouped"]),  # (batch, 2, 48)
        helper.make_node("InstanceNormalization", ["grouped", "sc", "bi"], ["normed"]),
        helper.make_node("Reshape", ["normed", "back"], ["y"]),  # (batch, 6, 4, 4)
    ]
    inits = {"k": w(6, 3, 3, 3), "g": i64(0, 2, -1), "sc": w(2), "bi": w(2), "back": i64(0, 6, 4, 4)}
    am = axes_of(make(nodes, [("x", ["batch", 3, 8, 8])], ["y"], inits))
    assert am.axes("y") == am.axes("f") and not am.scrambles


def test_the_analysis_is_linear_in_the_graph():
    import time

    n = 3000
    nodes = [helper.make_node("Relu" if k % 2 else "Transpose", [f"t{k}"], [f"t{k + 1}"],
                              **({} if k % 2 else {"perm": [1, 0, 2]})) for k in range(n)]
    nodes.append(helper.make_node("LSTM", [f"t{n}", "W", "R"], ["Y"], hidden_size=4))
    m = make(nodes, [("t0", ["batch", "seq", 6])], ["Y"], {"W": w(1, 16, 6), "R": w(1, 16, 4, seed=1)})
    mg = ModelGraph.from_model(m)
    table = infer(mg)
    start = time.perf_counter()
    am = analyse(mg, table)
    assert time.perf_counter() - start < 5
    assert am.axes(f"t{n}") == am.axes("t0")


# ----------------------------------------------------------------- give-ups are visible

def test_a_recurrence_the_rules_cannot_read_is_said_in_json_and_in_the_summary(tmp_path):
    import json as _json

    from click.testing import CliRunner

    from shapelint.cli import main

    def model(custom: bool):
        nodes = []
        src = "x"
        if custom:  # an op nobody knows: its output's axes cannot be followed
            nodes.append(helper.make_node("Mystery", ["x"], ["m"], domain="acme", name="mystery"))
            src = "m"
        nodes += [helper.make_node("Transpose", [src], ["tm"], perm=[1, 0, 2]),
                  helper.make_node("LSTM", ["tm", "W", "R"], ["Y"], name="rnn", hidden_size=4)]
        m = make(nodes, [("x", ["b", "t", 4])], ["Y"], {"W": w(1, 16, 4), "R": w(1, 16, 4, seed=1)})
        if custom:
            m.opset_import.append(helper.make_opsetid("acme", 1))
            vi = helper.make_tensor_value_info("m", F, ["b", "t", 4])  # the exporter declared its shape
            m.graph.value_info.append(vi)
        return m

    paths = []
    for custom in (True, False):
        p = tmp_path / f"{'custom' if custom else 'plain'}.onnx"
        onnx.save(model(custom), p)
        paths.append(str(p))
    res = CliRunner().invoke(main, ["check", "--isolated", "--format", "json", *paths])
    out = _json.loads(res.stdout)
    custom, plain = out["files"]
    assert custom["recurrences"] == {"total": 1, "undecided": 1}
    assert any(s["rule"] == "sequence" and "Mystery 'mystery'" in s["reason"] for s in custom["skipped"])
    assert plain["recurrences"] == {"total": 1, "undecided": 0} and plain["skipped"] == []
    assert out["summary"]["undecided_recurrences"] == 1 and out["summary"]["recurrences"] == 2
    text = CliRunner().invoke(main, ["check", "--isolated", *paths]).stdout
    assert "sequence rules undecided on 1 of 2 recurrences" in text.splitlines()[-1]
    verbose = CliRunner().invoke(main, ["-v", "check", "--isolated", *paths]).stdout
    assert "undecided [sequence] LSTM 'rnn'" in verbose


# ----------------------------------------------------------------- directions and recurrent states (SL401/SL402)
# ONNX LSTM: Y is (seq, num_directions, batch, hidden), Y_h (num_directions, batch, hidden); direction 0 is the
# forward pass, 1 the reverse one (the ONNX operator spec).  What each tensor holds follows from that.

def _bilstm(extra_nodes, extra_inits=(), hidden=4):
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Yh"], hidden_size=hidden,
                              direction="bidirectional")] + extra_nodes
    inits = {"W": w(2, 4 * hidden, 3), "R": w(2, 4 * hidden, hidden), "B": w(2, 8 * hidden), **dict(extra_inits)}
    return make(nodes, [("x", ["seq", "batch", 3])], ["out"], inits)


def test_the_direction_axis_of_y_and_its_merge_before_the_hidden_units():
    m = _bilstm([helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),
                 helper.make_node("Reshape", ["Yt", "s"], ["out"])], {"s": i64(0, 0, -1)})
    am = axes_of(m)
    assert am.direction_axes("Y") == [1]
    assert am.direction_axes("out") == []  # merged into the features
    st = am.states("out", 2)
    assert [(s.direction, s.width, s.step) for s in st] == [("forward", 4, "all"), ("reverse", 4, "all")]


def test_final_states_picked_by_index_are_forward_then_backward():
    m = _bilstm([helper.make_node("Gather", ["Yh", "i0"], ["hf"], axis=0),
                 helper.make_node("Gather", ["Yh", "i1"], ["hb"], axis=0),
                 helper.make_node("Concat", ["hf", "hb"], ["out"], axis=1)],
                {"i0": np.array(0, np.int64), "i1": np.array(1, np.int64)})
    am = axes_of(m)
    st = am.states("out", 1)
    assert [(s.direction, s.step, s.tensor) for s in st] == [("forward", "final", "hf"), ("reverse", "final", "hb")]
    assert not am.same_value("hf", "hb")


def test_the_same_state_computed_twice_has_the_same_value():
    # h_n[-1] written twice, the second time with an index computed from the shape: Shape(Yh)[0] - 1
    m = _bilstm([helper.make_node("Gather", ["Yh", "last"], ["a"], axis=0),
                 helper.make_node("Shape", ["Yh"], ["sh"]),
                 helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
                 helper.make_node("Sub", ["n", "one"], ["n1"]),
                 helper.make_node("Gather", ["Yh", "n1"], ["b"], axis=0),
                 helper.make_node("Gather", ["Yh", "one"], ["c"], axis=0),
                 helper.make_node("Concat", ["a", "b"], ["out"], axis=1)],
                {"last": np.array(-1, np.int64), "zero": np.array(0, np.int64), "one": np.array(1, np.int64)})
    am = axes_of(m)
    assert am.step("b")[1] == 1  # index 2 - 1 on the direction axis of 2
    assert am.same_value("b", "c")  # both Gather(Yh, 1)
    assert not am.same_value("a", "b")  # -1 and 1 are the same entry, but not the same computation: not claimed


def test_a_symbolic_last_index_is_step_minus_one():
    # out[:, T - 1] with T read from the shape (jax2onnx's f[:, -1])
    m = make([helper.make_node("Shape", ["x"], ["sh"]),
              helper.make_node("Gather", ["sh", "one"], ["t"], axis=0),
              helper.make_node("Sub", ["t", "one"], ["t1"]),
              helper.make_node("Gather", ["x", "t1"], ["out"], axis=1)],
             [("x", ["B", "T", 5])], ["out"], {"one": np.array(1, np.int64)})
    am = axes_of(m)
    assert am.step("out")[1] == -1


@pytest.mark.parametrize("form", ["sub_range", "range_down"])
def test_gathering_with_indices_n_minus_1_down_to_0_reads_the_axis_backwards(form):
    nodes = [helper.make_node("Shape", ["x"], ["sh"]),
             helper.make_node("Gather", ["sh", "one"], ["t"], axis=0),
             helper.make_node("Sub", ["t", "one"], ["t1"])]
    if form == "sub_range":
        nodes += [helper.make_node("Range", ["zero", "t", "one"], ["r"]),
                  helper.make_node("Sub", ["t1", "r"], ["idx"])]
    else:
        nodes += [helper.make_node("Range", ["t1", "mone", "mone"], ["idx"])]
    nodes += [helper.make_node("Gather", ["x", "idx"], ["out"], axis=1)]
    m = make(nodes, [("x", ["B", "T", 5])], ["out"],
             {"one": np.array(1, np.int64), "zero": np.array(0, np.int64), "mone": np.array(-1, np.int64)})
    am = axes_of(m)
    (f,) = am.axis("out", 1)
    assert f.source.kind == "reversed" and [p.tensor for p in f.source.parents] == ["x"]
    assert am.axis("out", 0) == am.axis("x", 0) and am.axis("out", 2) == am.axis("x", 2)


def test_an_index_range_that_is_not_a_reversal_is_not_one():
    m = make([helper.make_node("Shape", ["x"], ["sh"]),
              helper.make_node("Gather", ["sh", "one"], ["t"], axis=0),
              helper.make_node("Range", ["zero", "t", "one"], ["idx"]),
              helper.make_node("Gather", ["x", "idx"], ["out"], axis=1)],
             [("x", ["B", "T", 5])], ["out"], {"one": np.array(1, np.int64), "zero": np.array(0, np.int64)})
    (f,) = axes_of(m).axis("out", 1)
    assert f.source.kind != "reversed"


def _scan_pass(name, x, h0, reverse, hidden=4, feat=3, seed=0):
    body = helper.make_graph(
        [helper.make_node("MatMul", [f"{name}_xt", f"{name}_wx"], [f"{name}_a"]),
         helper.make_node("MatMul", [f"{name}_h", f"{name}_wh"], [f"{name}_b"]),
         helper.make_node("Add", [f"{name}_a", f"{name}_b"], [f"{name}_s"]),
         helper.make_node("Tanh", [f"{name}_s"], [f"{name}_hn"]),
         helper.make_node("Identity", [f"{name}_hn"], [f"{name}_y"])],
        f"{name}_body",
        [helper.make_tensor_value_info(f"{name}_h", F, [None, hidden]),
         helper.make_tensor_value_info(f"{name}_xt", F, [None, feat])],
        [helper.make_tensor_value_info(f"{name}_hn", F, [None, hidden]),
         helper.make_tensor_value_info(f"{name}_y", F, [None, hidden])],
        [numpy_helper.from_array(w(feat, hidden, seed=seed), f"{name}_wx"),
         numpy_helper.from_array(w(hidden, hidden, seed=seed + 1), f"{name}_wh")])
    return helper.make_node("Scan", [h0, x], [f"{name}_last", f"{name}_out"], body=body, num_scan_inputs=1,
                            scan_input_axes=[1], scan_output_axes=[1], scan_input_directions=[int(reverse)],
                            scan_output_directions=[int(reverse)])


def _two_passes(stack: bool):
    """A forward and a reverse Scan over x (B, T, 3), both (B, T, 4), stacked on a new axis or concatenated."""
    nodes = [helper.make_node("Shape", ["x"], ["sh"]),
             helper.make_node("Gather", ["sh", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "zero1"], ["b1"]),
             helper.make_node("Concat", ["b1", "four"], ["hs"], axis=0),
             helper.make_node("ConstantOfShape", ["hs"], ["h0"],
                              value=helper.make_tensor("v", F, [1], [0.0])),
             _scan_pass("f", "x", "h0", False), _scan_pass("r", "x", "h0", True, seed=5)]
    if stack:
        nodes += [helper.make_node("Unsqueeze", ["f_out", "two"], ["fu"]),
                  helper.make_node("Unsqueeze", ["r_out", "two"], ["ru"]),
                  helper.make_node("Concat", ["fu", "ru"], ["out"], axis=2)]
    else:
        nodes += [helper.make_node("Concat", ["f_out", "r_out"], ["out"], axis=2)]
    return make(nodes, [("x", ["B", "T", 3])], ["out"],
                {"zero": np.array(0, np.int64), "zero1": i64(0), "four": i64(4), "two": i64(2)})


def test_a_forward_and_a_reverse_pass_stacked_on_a_new_axis_are_a_direction_axis():
    am = axes_of(_two_passes(stack=True))
    assert am.direction_axes("out") == [2]
    fwd, rev = (r for r in am.recurrences if r.node.output[1] in ("f_out", "r_out"))
    assert am.partner(fwd) is rev and am.partner(rev) is fwd


def test_the_two_passes_concatenated_on_the_features_are_forward_then_reverse_states():
    am = axes_of(_two_passes(stack=False))
    assert am.direction_axes("out") == []
    assert [(s.direction, s.width, s.step) for s in am.states("out", 2)] == [("forward", 4, "all"),
                                                                            ("reverse", 4, "all")]


def test_two_unrelated_tensors_stacked_are_not_directions():
    m = make([helper.make_node("Unsqueeze", ["x", "two"], ["a"]),
              helper.make_node("Unsqueeze", ["y", "two"], ["b"]),
              helper.make_node("Concat", ["a", "b"], ["out"], axis=2)],
             [("x", ["B", "T", 4]), ("y", ["B", "T", 4])], ["out"], {"two": i64(2)})
    assert axes_of(m).direction_axes("out") == []


def test_a_one_direction_ops_length_1_direction_axis_is_followed_through_a_transpose():
    m = make([helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=4),
              helper.make_node("Transpose", ["Y"], ["out"], perm=[2, 0, 1, 3])],
             [("x", ["seq", "batch", 3])], ["out"], {"W": w(1, 16, 3), "R": w(1, 16, 4)})
    am = axes_of(m)
    assert am.direction_axes("Y") == [1] and am.direction_axes("out") == [2]
    assert not am.several_directions("out")


def test_halves_of_the_merged_directions_are_forward_then_backward():
    # Y (seq, 2, batch, 4) -> (seq, batch, 8) = [forward | backward]; out[-1, :, :4] forward, [4:] backward
    m = _bilstm([helper.make_node("Transpose", ["Y"], ["Yt"], perm=[0, 2, 1, 3]),
                 helper.make_node("Reshape", ["Yt", "s"], ["M"]),
                 helper.make_node("Slice", ["M", "a", "b", "ax"], ["f"]),
                 helper.make_node("Slice", ["M", "b", "c", "ax"], ["r"]),
                 helper.make_node("Concat", ["f", "r", "f"], ["out"], axis=2)],
                {"s": i64(0, 0, -1), "a": i64(0), "b": i64(4), "c": i64(8), "ax": i64(2)})
    am = axes_of(m)
    assert [(s.direction, s.width) for s in am.states("out", 2)] == [("forward", 4), ("reverse", 4), ("forward", 4)]


def test_a_slice_that_is_one_piece_of_a_concat_is_that_piece():
    # the two directions picked apart, concatenated on the features, then the backward piece sliced back out
    m = _bilstm([helper.make_node("Gather", ["Y", "i0"], ["yf"], axis=1),
                 helper.make_node("Gather", ["Y", "i1"], ["yb"], axis=1),
                 helper.make_node("Concat", ["yf", "yb"], ["M"], axis=2),
                 helper.make_node("Slice", ["M", "b", "c", "ax"], ["out"])],
                {"i0": np.array(0, np.int64), "i1": np.array(1, np.int64), "b": i64(4), "c": i64(8), "ax": i64(2)})
    (st,) = axes_of(m).states("out", 2)
    assert st.direction == "reverse" and st.width == 4


def test_one_ops_two_directions_picked_apart_and_stacked_again_are_a_direction_axis():
    m = _bilstm([helper.make_node("Gather", ["Yh", "i0"], ["hf"], axis=0),
                 helper.make_node("Gather", ["Yh", "i1"], ["hb"], axis=0),
                 helper.make_node("Unsqueeze", ["hf", "one"], ["uf"]),
                 helper.make_node("Unsqueeze", ["hb", "one"], ["ub"]),
                 helper.make_node("Concat", ["uf", "ub"], ["out"], axis=1)],
                {"i0": np.array(0, np.int64), "i1": np.array(1, np.int64), "one": i64(1)})
    assert axes_of(m).direction_axes("out") == [1]


def test_the_last_layers_directions_merged_before_the_hidden_units_are_not_a_mix():
    # h_n of 2 bidirectional layers (4, batch, 4); h_n[-2:].transpose(0, 1).reshape(batch, -1): the right merge
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y1", "H1"], hidden_size=4, direction="bidirectional"),
             helper.make_node("Transpose", ["Y1"], ["Y1t"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["Y1t", "s"], ["X2"]),
             helper.make_node("LSTM", ["X2", "W2", "R", "B"], ["Y2", "H2"], hidden_size=4, direction="bidirectional"),
             helper.make_node("Concat", ["H1", "H2"], ["hn"], axis=0),
             helper.make_node("Slice", ["hn", "m2", "end", "zero"], ["last"]),
             helper.make_node("Transpose", ["last"], ["lt"], perm=[1, 0, 2]),
             helper.make_node("Reshape", ["lt", "s2"], ["out"])]
    inits = {"W": w(2, 16, 3), "W2": w(2, 16, 8), "R": w(2, 16, 4), "B": w(2, 32), "s": i64(0, 0, -1),
             "m2": i64(-2), "end": i64(2**62), "zero": i64(0), "s2": i64(0, -1)}
    m = make(nodes, [("x", ["seq", "batch", 3])], ["out"], inits)
    am = axes_of(m)
    assert am.direction_axes("hn") == [0] and am.direction_axes("last") == [0]
    reshape = next(n for n in m.graph.node if n.output[0] == "out")
    assert am.direction_mix(reshape) is None


@pytest.mark.parametrize("indices, reversed_", [
    ("{2, 1, 0}", True),     # n-1, ..., 0: what a computed reversal folds to when the length is static
    ("{-1, -2, -3}", True),  # the same, counted from the end
    ("{0, 1, 2}", False),    # the identity
    ("{2, 0, 1}", False),    # another permutation
])
def test_a_gather_of_a_constant_reversed_index_vector_reads_the_axis_backwards(indices, reversed_):
    m = onnx.parser.parse_model(f'''
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[B, 3, 4] x) => (y) {{
      i = Constant <value = int64[3] {indices}> ()
      y = Gather <axis = 1> (x, i)
    }}''')
    mg = ModelGraph.from_model(m)
    am = analyse(mg, infer(mg))
    assert (am.describe("y") == "(x.0, Gather.reversed, x.2)") is reversed_, am.describe("y")


def _fixture_axes(rel: str):
    from pathlib import Path

    from shapelint.axes import analyse
    from shapelint.check import check

    r = check(str(Path(__file__).resolve().parent.parent / "fixtures" / rel))
    return r, r.table.analyses.get(analyse, r.graph, r.table)


@pytest.mark.parametrize("exporter", ["ts", "dynamo"])
def test_the_steps_label_is_not_the_label_of_the_values_unflattened_from_the_same_axis(exporter):
    # (B, 120) -> view(B, 40, 3): the LSTM iterates over the 40, and the 3 values stay features
    r, am = _fixture_axes(f"healthy/flat_window_proj_lstm_{exporter}.onnx")
    x = next(n for n in r.graph.graph.node if n.op_type == "Reshape").output[0]
    (steps,), (values,) = am.axes(x)[1], am.axes(x)[2]
    assert steps.source is values.source and not steps.whole and not values.whole  # two parts of one input axis
    assert am.has_label(steps, "time") and not am.has_label(values, "time")
    assert am.has_label(steps.source, "time")  # a source-level question still sees every part's label
    assert am.time_axes(x) == [1]


def test_a_cell_whose_state_term_is_folded_into_gemm_c_is_an_unrolled_recurrence():
    # tf2onnx writes a bias-free SimpleRNN step as Gemm(x_t, W, C = h R): the join is Gemm's C
    r, am = _fixture_axes("healthy/tf2onnx_simplernn_unrolled_window_static.onnx")
    (rc,) = am.recurrences
    assert rc.kind == "unrolled" and r.table.shape(rc.tensor)[rc.time_axis] == 40
    assert not [d for d in r.diagnostics]


def test_a_cell_step_whose_result_only_sizes_a_zeros_like_is_no_unrolled_recurrence():
    # Keras runs a masked GRU's cell once on step 0 outside its while loop, for the shape of a zeros_like
    r, am = _fixture_axes("healthy/tf2onnx_masked_gru_final_state.onnx")
    assert am.unrolled_over_dynamic() == [] and not r.diagnostics
    loop = next(n for n in r.graph.graph.node if n.op_type == "Loop")
    assert am.recurrences and all(rc.kind == "loop" and rc.node is loop for rc in am.recurrences)  # steps and mask


def test_a_tf_while_loop_with_its_own_step_counter_is_a_recurrence_over_the_steps_it_slices():
    # tf2onnx carries tf.while_loop's counter t beside the Loop's iteration number and reads steps[t] by a Slice
    r, am = _fixture_axes("healthy/tf2onnx_tf_function_while_loop.onnx")
    (rc,) = am.recurrences
    assert rc.kind == "loop" and rc.time_axis == 0
    transpose = next(n for n in r.graph.graph.node if n.op_type == "Transpose")
    assert rc.tensor == transpose.output[0]  # the time-major view of x (batch, time, 5)
    assert not r.diagnostics
