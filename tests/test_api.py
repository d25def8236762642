"""The Python API contract: shapelint.infer_shapes and shapelint.check."""

import onnx

import shapelint

from .conftest import FIXTURES


def test_infer_shapes_takes_a_path_and_fills_every_node_output():
    path = FIXTURES / "healthy" / "cnn_lstm_ts.onnx"
    model = shapelint.infer_shapes(path)
    typed = {vi.name for vi in model.graph.value_info} | {o.name for o in model.graph.output}
    produced = {o for n in model.graph.node for o in n.output if o}
    assert produced <= typed
    dims = [d.dim_param or d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch"


def test_infer_shapes_agrees_with_onnx_wherever_onnx_knows_a_static_dim():
    path = FIXTURES / "healthy" / "hf_gpt2_ts.onnx"
    ours = {vi.name: vi for vi in shapelint.infer_shapes(path).graph.value_info}
    theirs = onnx.shape_inference.infer_shapes(onnx.load(path), data_prop=True)
    compared = 0
    for vi in theirs.graph.value_info:
        if vi.name not in ours or not vi.type.tensor_type.HasField("shape"):
            continue
        a = vi.type.tensor_type.shape.dim
        b = ours[vi.name].type.tensor_type.shape.dim
        assert len(a) == len(b), vi.name
        for x, y in zip(a, b):
            if x.HasField("dim_value"):
                compared += 1
                assert y.dim_value == x.dim_value, vi.name
    assert compared > 100


def test_check_returns_a_report_with_diagnostics():
    report = shapelint.check(next(FIXTURES.glob("SL103-*/bad*.onnx")))
    assert report.status == "findings"
    assert {d.rule for d in report.diagnostics} == {"SL103"}


def test_check_restores_the_garbage_collector_thresholds(tmp_path):
    import gc

    from shapelint.check import check

    before = gc.get_threshold()
    check(str(FIXTURES / "healthy" / "mlp_ts.onnx"))
    assert gc.get_threshold() == before
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    assert check(str(tmp_path / "bad.onnx")).error
    assert gc.get_threshold() == before


def test_a_superseding_rule_replaces_the_generic_finding_on_its_own_node_named_or_not():
    from onnx import TensorProto, helper

    from shapelint.graph import ModelGraph
    from shapelint.infer import infer
    from shapelint.rule import Rule
    from shapelint.runner import run_rules

    class Generic(Rule):
        code, slug, op_types = "ZZ101", "generic", ("Relu",)

        def check(self, node, ctx):
            yield ctx.finding(node, "generic")

    class Specific(Rule):
        code, slug, op_types, supersedes = "ZZ201", "specific", ("Relu",), ("ZZ101",)

        def check(self, node, ctx):
            if node.output[0] != "c":  # the third Relu keeps its generic finding
                yield ctx.finding(node, "specific")

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="named"), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Relu", ["b"], ["c"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    mg = ModelGraph.from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    diags = run_rules([Generic, Specific], mg, infer(mg))
    got = sorted((d.rule, d.message) for d in diags)
    # named and unnamed Relus: the specific finding only; the third: the generic one
    assert got == [("ZZ101", "generic"), ("ZZ201", "specific"), ("ZZ201", "specific")]
