"""Symbolic shape inference on small inline models."""

from __future__ import annotations

import onnx

from shapelint.check import check
from shapelint.dims import format_shape
from shapelint.graph import ModelGraph
from shapelint.infer import infer
from shapelint.shapes import infer_shapes

from .conftest import parse


def shapes_of(text, *names):
    mg = ModelGraph.from_model(parse(text))
    table = infer(mg)
    return [format_shape(table.shape(n)) for n in names], table


HEADER = '<ir_version: 8, opset_import: ["" : 17]>'


def test_the_exporter_shape_subgraph_keeps_batch_symbolic():
    (out,), table = shapes_of(
        HEADER
        + """
        g (float[batch, 8, 4, 4] x) => (y) {
            s = Shape(x)
            zero = Constant<value = int64[1] {0}>()
            b = Gather<axis=0>(s, zero)
            minus = Constant<value = int64[1] {-1}>()
            t = Concat<axis=0>(b, minus)
            y = Reshape(x, t)
        }""",
        "y",
    )
    assert out == "(batch, 128)"
    assert not table.conflicts


def test_conv_and_pool_sizes_are_symbolic_floor_divisions():
    (c, p), _ = shapes_of(
        HEADER
        + """
        g (float[N, 3, H, W] x, float[16, 3, 3, 3] w) => (p) {
            c = Conv<strides=[2, 2]>(x, w)
            p = MaxPool<kernel_shape=[2, 2], strides=[2, 2]>(c)
        }""",
        "c",
        "p",
    )
    assert c == "(N, 16, (H - 3)//2 + 1, (W - 3)//2 + 1)"
    assert p.startswith("(N, 16, ")


def test_lstm_outputs_follow_the_onnx_layout():
    (y, yh), _ = shapes_of(
        HEADER
        + """
        g (float[seq, batch, 32] x, float[2, 256, 32] w, float[2, 256, 64] r) => (y, yh) {
            y, yh, yc = LSTM<hidden_size=64, direction="bidirectional">(x, w, r)
        }""",
        "y",
        "yh",
    )
    assert y == "(seq, 2, batch, 64)" and yh == "(2, batch, 64)"


THREE = (
    HEADER
    + """
g (float[batch, 8] x, float[batch, 6] z) => (a, b, c) {
    w = Constant<value = float[4, 3] {1,2,3,4,5,6,7,8,9,10,11,12}>()
    a = MatMul(x, w)
    bias = Constant<value = float[5] {1,2,3,4,5}>()
    b = Add(x, bias)
    c = Concat<axis=0>(x, z)
}"""
)


def test_three_independent_conflicts_are_all_reported_on_their_nodes():
    model = parse(THREE)
    for node, name in zip(model.graph.node, ["w", "/fc/MatMul", "bias", "/Add", "/Concat"]):
        node.name = name
    report = check(model)
    got = sorted((d.rule, d.node) for d in report.diagnostics)
    assert got == [("SL103", "/fc/MatMul"), ("SL104", "/Add"), ("SL105", "/Concat")]


def test_a_reshape_with_the_traced_batch_is_valid_only_at_that_batch():
    model = parse(
        HEADER
        + """
        g (float[batch, 16] x) => (y) {
            t = Constant<value = int64[2] {4, -1}>()
            r = Reshape(x, t)
            w = Constant<value = float[16, 2] {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}>()
            y = MatMul(r, w)
        }"""
    )
    model.graph.node[1].name = "/Reshape"
    report = check(model)
    assert [(d.rule, d.node) for d in report.diagnostics] == [("SL501", "/Reshape")]
    assert "batch == 4" in report.diagnostics[0].message


def test_the_same_reshape_taking_the_batch_from_the_tensor_is_clean():
    model = parse(
        HEADER
        + """
        g (float[batch, 16] x) => (y) {
            t = Constant<value = int64[2] {0, -1}>()
            r = Reshape(x, t)
            w = Constant<value = float[16, 2] {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}>()
            y = MatMul(r, w)
        }"""
    )
    assert check(model).diagnostics == []


def test_an_expand_baking_the_batch_is_blamed_for_the_later_add():
    model = parse(
        HEADER
        + """
        g (float[batch, 3, 8] x) => (y) {
            pos = Constant<value = float[1, 3, 8] {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}>()
            shape = Constant<value = int64[3] {4, 3, 8}>()
            e = Expand(pos, shape)
            y = Add(x, e)
        }"""
    )
    for node, name in zip(model.graph.node, ["pos", "shape", "/Expand", "/Add"]):
        node.name = name
    diags = check(model).diagnostics
    assert [(d.rule, d.node) for d in diags] == [("SL501", "/Expand")]
    assert "batch == 4" in diags[0].message


def test_inference_goes_on_after_a_conflict():
    (after,), table = shapes_of(
        HEADER
        + """
        g (float[batch, 8] x, float[4, 3] w) => (y) {
            m = MatMul(x, w)
            y = Relu(m)
        }""",
        "y",
    )
    assert after == "(batch, 3)"
    assert len(table.conflicts) == 1


def test_a_model_local_function_is_inferred_through_its_body():
    text = """
    <ir_version: 8, opset_import: ["" : 17, "local" : 1]>
    g (float[batch, 8] x) => (y) { y = local.Double(x) }
    <domain: "local", opset_import: ["" : 17]>
    Double (a) => (b) { s = Shape(a)  c = Concat<axis=0>(s, s)  b = Expand(a, s) }
    """
    (y,), _ = shapes_of(text, "y")
    assert y == "(batch, 8)"


def test_infer_shapes_writes_symbolic_dim_params_like_onnx_does():
    model = parse(
        HEADER
        + """
        g (float[batch, 3, 8, 8] x, float[4, 3, 3, 3] w) => (y) {
            c = Conv<pads=[1,1,1,1]>(x, w)
            y = Flatten(c)
        }"""
    )
    out = infer_shapes(model)
    dims = [d.dim_param or d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 256]
    assert {vi.name for vi in out.graph.value_info} == {"c"}
    onnx.checker.check_model(out)


def test_infer_shapes_does_not_modify_its_argument():
    model = parse(HEADER + "g (float[batch, 4] x) => (y) { y = Relu(x) }")
    before = model.SerializeToString()
    infer_shapes(model)
    assert model.SerializeToString() == before


def test_bindings_turn_symbols_into_numbers():
    mg = ModelGraph.from_model(parse(HEADER + "g (float[batch, 4] x) => (y) { y = Relu(x) }"))
    assert infer(mg, {"batch": 3}).shape("y") == (3, 4)


def test_if_with_a_constant_condition_takes_that_branch():
    (y,), _ = shapes_of(
        HEADER
        + """
        g (float[batch, 4] x) => (y) {
            c = Constant<value = bool {1}>()
            y = If(c) <then_branch = g1 () => (float[batch, 4] a) { a = Relu(x) },
                       else_branch = g2 () => (float[batch, 2] b) { t = Constant<value = int64[2] {0, 2}>()  b = Reshape(x, t) }>
        }""",
        "y",
    )
    assert y == "(batch, 4)"


def test_a_custom_op_leaves_unknown_shapes_and_an_info_finding():
    text = """
    <ir_version: 8, opset_import: ["" : 17, "com.acme" : 1]>
    g (float[batch, 4] x, float[3, 2] w) => (y) { t = com.acme.FancyNorm(x)  y = MatMul(t, w) }
    """
    diags = check(parse(text)).diagnostics
    assert [(d.rule, d.severity) for d in diags] == [("SL001", "info")]


def test_a_graph_with_a_cycle_is_reported_not_crashed_on():
    g = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Relu", ["x2"], ["x1"], name="a"),
            onnx.helper.make_node("Relu", ["x1"], ["x2"], name="b"),
        ],
        "g",
        [],
        [onnx.helper.make_tensor_value_info("x2", onnx.TensorProto.FLOAT, [2])],
    )
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)])
    diags = check(m).diagnostics
    assert any(d.rule == "SL002" and "cycle" in d.message for d in diags)


def test_two_producers_of_one_tensor_are_reported():
    g = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Relu", ["x"], ["y"], name="a"),
            onnx.helper.make_node("Neg", ["x"], ["y"], name="b"),
        ],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
    )
    m = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)])
    diags = check(m).diagnostics
    assert [(d.rule, d.node) for d in diags] == [("SL002", "b")]


def test_opset_7_models_are_inferred():
    text = """<ir_version: 3, opset_import: ["" : 7]>
    g (float[batch, 4] x, float[4, 2] w) => (y) { m = MatMul(x, w)  y = Softmax(m) }"""
    (y,), _ = shapes_of(text, "y")
    assert y == "(batch, 2)"


def test_the_numpy_fast_path_of_constant_folding_agrees_with_onnx_reference():
    """ConstantOfShape, Add/Sub/Mul/Equal and Where skip onnx.reference: same values, same dtypes."""
    import numpy as np
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    from shapelint.infer.fold import _numpy_fold

    rng = np.random.default_rng(0)
    cases = []
    for dtype in (np.int64, np.int32, np.float32, np.float64):
        a = (rng.standard_normal((3, 1, 4)) * 1e3).astype(dtype)
        b = (rng.standard_normal((2, 4)) * 1e3).astype(dtype)
        for op in ("Add", "Sub", "Mul", "Equal"):
            cases.append((helper.make_node(op, ["a", "b"], ["y"]), [a, b]))
        cond = rng.standard_normal((2, 1)) > 0
        cases.append((helper.make_node("Where", ["c", "a", "b"], ["y"]), [cond, a, b]))
        value = numpy_helper.from_array(np.array([7], dtype))
        cases.append((helper.make_node("ConstantOfShape", ["s"], ["y"], value=value), [np.array([2, 0, 3], np.int64)]))
    cases.append((helper.make_node("ConstantOfShape", ["s"], ["y"]), [np.array([4], np.int64)]))
    cases.append((helper.make_node("Mul", ["a", "b"], ["y"]), [np.array([2**62], np.int64), np.array([4], np.int64)]))
    for node, consts in cases:
        node.input[:] = [f"i{k}" for k in range(len(consts))]
        got = _numpy_fold(node, consts)
        assert got is not None, node.op_type
        graph = helper.make_graph(
            [node], "g",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(c.dtype), None) for n, c in zip(node.input, consts)],
            [helper.make_tensor_value_info("y", 0, None)])
        ref = ReferenceEvaluator(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
        (want,) = ref.run(None, dict(zip(node.input, consts)))
        assert got[0].const.dtype == want.dtype, node.op_type
        assert got[0].shape == want.shape
        np.testing.assert_array_equal(got[0].const, want)
    # mixed dtypes are left to the reference evaluator
    assert _numpy_fold(helper.make_node("Add", ["a", "b"], ["y"]), [np.ones(2, np.int64), np.ones(2, np.float32)]) is None


def test_input_and_output_counts_outside_the_op_schema_are_op_conflicts():
    """onnx's checker and onnxruntime refuse these models; every such node is reported, the walk goes on."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], [], name="no_output"),
        helper.make_node("Add", ["x"], ["a"], name="one_operand"),
        helper.make_node("Transpose", ["x", "x"], ["t"], name="two_inputs"),
        helper.make_node("LSTM", ["x", "x"], ["l"], name="short_lstm"),
        helper.make_node("Relu", ["x"], ["y"], name="fine"),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    report = check(m)
    got = {(d.node, d.rule) for d in report.diagnostics}
    assert got == {("no_output", "SL101"), ("one_operand", "SL101"), ("two_inputs", "SL101"), ("short_lstm", "SL101")}
    msgs = {d.node: d.message for d in report.diagnostics}
    assert msgs["one_operand"].startswith("Add has 1 inputs; opset 17 defines 2")
    assert "3 to 8" in msgs["short_lstm"]
    table = infer(ModelGraph.from_model(m))
    assert format_shape(table.shape("y")) == "(N, 4)"


def test_a_counting_while_loop_runs_its_bound_many_times():
    # tf2onnx writes Keras's ConvLSTM2D as a while loop: counter from 0, +1 each iteration, cond counter < T
    from pathlib import Path

    import onnx

    from shapelint.graph import ModelGraph
    from shapelint.infer import infer

    path = Path(__file__).resolve().parent.parent / "fixtures/SL405-first-step-taken/bad_tf2onnx_convlstm_first_step.onnx"
    m = onnx.load(str(path), load_external_data=False)
    table = infer(ModelGraph.from_model(m))
    time_dim = table.shape("video")[1]
    loop = next(n for n in m.graph.node if n.op_type == "Loop")
    stacked = table.shape(loop.output[-1])
    assert stacked[0] == time_dim  # one stacked state per frame, not a fresh unknown length


def _counting_loop(scan: bool = False):
    """A loop carrying a step counter that starts at 0 (+1 each iteration) and a constant it hands on unchanged,
    reading step ``counter`` of ``x`` inside the body, as tf2onnx writes Keras's SimpleRNN."""
    from onnx import TensorProto, helper

    i64, f32 = TensorProto.INT64, TensorProto.FLOAT
    body_nodes = [
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one_v", i64, [], [1])),
        helper.make_node("Add", ["t_in", "one"], ["t_out"]),
        helper.make_node("Identity", ["k_in"], ["k_out"]),
        helper.make_node("Gather", ["x", "t_in"], ["step"], axis=0),
        helper.make_node("Identity", ["step"], ["scan_out"]),
        helper.make_node("Identity", ["c_in"], ["c_out"]),
    ]
    scalar = lambda n, t: helper.make_tensor_value_info(n, t, [])  # noqa: E731
    if scan:  # states t, k; no scanned input, one scanned output
        body = helper.make_graph([n for n in body_nodes if n.output[0] != "c_out"], "body",
                                 [scalar("t_in", i64), scalar("k_in", i64)],
                                 [scalar("t_out", i64), scalar("k_out", i64),
                                  helper.make_tensor_value_info("scan_out", f32, None)])
        loop = helper.make_node("Scan", ["t0", "k0"], ["t_end", "k_end", "ys"], body=body, num_scan_inputs=0)
    else:
        body = helper.make_graph(body_nodes, "body",
                                 [scalar("iter", i64), scalar("c_in", TensorProto.BOOL), scalar("t_in", i64),
                                  scalar("k_in", i64)],
                                 [scalar("c_out", TensorProto.BOOL), scalar("t_out", i64), scalar("k_out", i64),
                                  helper.make_tensor_value_info("scan_out", f32, None)])
        loop = helper.make_node("Loop", ["n", "", "t0", "k0"], ["t_end", "k_end", "ys"], body=body)
    g = helper.make_graph(
        [helper.make_node("Constant", [], ["t0"], value=helper.make_tensor("t0_v", i64, [], [0])),
         helper.make_node("Constant", [], ["k0"], value=helper.make_tensor("k0_v", i64, [], [7])),
         *([] if scan else [helper.make_node("Constant", [], ["n"], value=helper.make_tensor("n_v", i64, [], [3]))]),
         loop],
        "g", [helper.make_tensor_value_info("x", f32, ["time", 4])],
        [helper.make_tensor_value_info("ys", f32, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_carried_state_that_changes_is_no_constant_inside_the_body():
    # its initial value is the first iteration's only: a Gather at the counter reads every step, not step 0
    for scan in (False, True):
        table = infer(ModelGraph.from_model(_counting_loop(scan)))
        assert table.get("t_in").const is None and table.get("t_in").value is None, scan
        assert table.shape("t_in") == (), scan
        assert int(table.get("k_in").const) == 7, scan  # handed on unchanged: the same value every iteration


def test_a_tf2onnx_simplernn_loop_is_not_an_rnn_unrolled_at_export():
    # the healthy fixture's body reads step `time` of the sequence, a counter carried from 0
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures/healthy/tf2onnx_simplernn_loop_attention.onnx"
    report = check(str(path))
    assert report.diagnostics == [] and report.recurrences == {"total": 1, "undecided": 0}


def test_sequence_lengths_and_concat_from_sequence_match_onnxruntime():
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    nodes = [
        helper.make_node("SequenceEmpty", [], ["s0"], dtype=f),
        helper.make_node("SequenceInsert", ["s0", "x"], ["s1"]),
        helper.make_node("SequenceInsert", ["s1", "x"], ["s2"]),
        helper.make_node("ConcatFromSequence", ["s2"], ["stacked"], axis=0, new_axis=1),
        helper.make_node("ConcatFromSequence", ["s2"], ["joined"], axis=-1),
        helper.make_node("SequenceLength", ["s2"], ["n"]),
        helper.make_node("SequenceConstruct", ["x", "x", "x"], ["c"]),
        helper.make_node("ConcatFromSequence", ["c"], ["three"], axis=1, new_axis=1),
    ]
    outs = ["stacked", "joined", "n", "three"]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", f, ["B", 4])],
                          [helper.make_tensor_value_info(o, TensorProto.INT64 if o == "n" else f, None) for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    table = infer(ModelGraph.from_model(m))
    got = {o: format_shape(table.shape(o)) for o in outs}
    assert got == {"stacked": "(2, B, 4)", "joined": "(B, 8)", "n": "()", "three": "(B, 3, 4)"}
    assert table.get("n").value == (2,)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ran = dict(zip(outs, sess.run(outs, {"x": np.zeros((3, 4), np.float32)})))
    assert [ran[o].shape for o in outs] == [(2, 3, 4), (3, 8), (), (3, 3, 4)] and int(ran["n"]) == 2


def test_a_scripted_loop_appending_each_state_stacks_one_per_iteration():
    # TorchScript's `for t in range(x.size(1)): outs.append(h)` then torch.stack(outs, 1)
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures/SL404-reduction-over-features/good_torchscript_scripted_loop.onnx"
    m = onnx.load(str(path))
    table = infer(ModelGraph.from_model(m))
    cat = next(n for n in m.graph.node if n.op_type == "ConcatFromSequence")
    assert format_shape(table.shape(cat.output[0])) == "(batch, time, 12)"


def test_a_while_loop_with_two_counted_conditions_runs_the_smaller_count():
    # tf2onnx's tf.scan: maximum_iterations M = 10 and cond (t + 1 < 10.0) and (iteration < 10.0), float bounds
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures/SL404-reduction-over-features/bad_tf2onnx_tf_scan_max_hidden.onnx"
    m = onnx.load(str(path))
    table = infer(ModelGraph.from_model(m))
    loop = next(n for n in m.graph.node if n.op_type == "Loop")
    assert table.shape(loop.output[-1])[0] == 10  # onnxruntime multiplies them by a (10, 4) weight: 10 states


def test_an_append_to_a_sequence_of_unknown_elements_does_not_claim_their_shape():
    # the sequence input may hold tensors of any shape: only an empty one (or a loop's own appends) takes x's
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    seq_t = helper.make_tensor_sequence_value_info("s", f, None)
    nodes = [helper.make_node("SequenceInsert", ["s", "x"], ["s1"]),
             helper.make_node("ConcatFromSequence", ["s1"], ["y"], axis=0, new_axis=1)]
    g = helper.make_graph(nodes, "g", [seq_t, helper.make_tensor_value_info("x", f, ["B", 4])],
                          [helper.make_tensor_value_info("y", f, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    table = infer(ModelGraph.from_model(m))
    shape = table.shape("y")
    assert shape is None or format_shape(tuple(shape[1:])) != "(B, 4)", format_shape(shape)
