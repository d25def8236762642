"""If and Loop outputs, paddle's ``dim_value: -1``, and the input sizes a model accepts.

The truth is onnxruntime, run here on the committed fixtures: what each If branch returns, the sizes at
which an FPN or a positional table stops working, what a ``-1`` input accepts.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from shapelint.check import check
from shapelint.cli import main
from shapelint.dims import Relation, compare, format_shape, is_named, periodic_equality, symbol
from shapelint.graph import ModelGraph
from shapelint.infer import infer
from shapelint.infer.constraints import Constraint, satisfying, summary

from .conftest import FIXTURES, parse

ort = pytest.importorskip("onnxruntime")
HEALTHY = FIXTURES / "healthy"
CORPUS = FIXTURES.parent / "tests" / "corpus"


def known(shape) -> bool:
    return shape is not None and all(
        isinstance(d, int) or (d is not None and all(is_named(s) for s in d.free_symbols)) for d in shape)


def every_node(g: onnx.GraphProto):
    for n in g.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from every_node(a.g)


def run(path, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return [np.shape(v) for v in sess.run(None, feeds)]


def runs(path, feeds) -> bool:
    try:
        run(path, feeds)
    except Exception:  # noqa: BLE001 - onnxruntime's own error types
        return False
    return True


def at(shape, **dims):
    subs = {symbol(k): v for k, v in dims.items()}
    return tuple(d if isinstance(d, int) else int(d.subs(subs)) for d in shape)


# ----------------------------------------------------------------- If
IF_MODEL = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, seq, 8] x, bool c) => (a, b, r) {
    a, b, r = If(c) <
        then_branch = t () => (a1, b1, r1) {
            a1 = Relu(x)
            s1 = Constant<value = int64[3] {0, 0, 4}>()
            b1 = Reshape(x, s1)
            r1 = Identity(x)
        },
        else_branch = e () => (a2, b2, r2) {
            a2 = Neg(x)
            s2 = Constant<value = int64[3] {0, 0, 2}>()
            b2 = Reshape(x, s2)
            q = Constant<value = int64[2] {0, -1}>()
            r2 = Reshape(x, q)
        }>
}"""


def test_if_merges_its_branches_dims():
    """Equal dims kept, different dims a fresh unknown, different ranks an unknown rank."""
    table = infer(ModelGraph.from_model(parse(IF_MODEL)))
    a, b, r = table.shape("a"), table.shape("b"), table.shape("r")
    assert a == (symbol("batch"), symbol("seq"), 8)
    assert b[:2] == (symbol("batch"), symbol("seq")) and not is_named(next(iter(b[2].free_symbols)))
    assert r is None


def test_a_silero_style_if_knows_every_tensor_and_matches_onnxruntime_in_both_branches():
    path = HEALTHY / "if_vad_ts.onnx"
    model = onnx.load(str(path))
    table = infer(ModelGraph.from_model(model))
    tensors = [o for n in every_node(model.graph) for o in n.output if o]
    assert len(tensors) > 100 and all(known(table.shape(o)) for o in tensors)
    prob, state = table.shape("prob"), table.shape("new_state")
    for b, n, sr in [(2, 512, 16000), (3, 320, 8000)]:
        feeds = {"input": np.zeros((b, n), np.float32), "state": np.zeros((2, b, 32), np.float32), "sr": np.array(sr)}
        assert run(path, feeds) == [at(prob, batch=b), at(state, batch=b)]


def test_an_if_whose_branches_differ_keeps_what_they_share():
    path = HEALTHY / "if_branch_shapes_ts.onnx"
    table = infer(ModelGraph.from_model(onnx.load(str(path))))
    y = table.shape("y")
    for flag, width in [(1.0, 4), (-1.0, 6)]:
        (got,) = run(path, {"x": np.zeros((2, 3, 8), np.float32), "flag": np.array([flag], np.float32)})
        assert got[:2] == at(y[:2], batch=2, seq=3) and got[2] == width
    assert not known(y[2:])


# ----------------------------------------------------------------- Loop
def test_a_jax2onnx_scan_over_12_steps_stacks_12():
    path = HEALTHY / "jax2onnx_scan_12_steps.onnx"
    model = onnx.load(str(path))
    table = infer(ModelGraph.from_model(model))
    tensors = [o for n in every_node(model.graph) for o in n.output if o]
    assert all(known(table.shape(o)) for o in tensors), [(o, table.shape(o)) for o in tensors if not known(table.shape(o))]
    out = model.graph.output[0].name
    (got,) = run(path, {"x": np.zeros((3, 12, 4), np.float32)})
    assert at(table.shape(out), B=3) == got == (12, 3, 24)


def test_a_jax2onnx_scan_over_a_dynamic_time_axis_stacks_that_axis():
    model = onnx.load(str(FIXTURES / "SL204-batch-time-swapped" / "good_jax2onnx_scan.onnx"))
    table = infer(ModelGraph.from_model(model))
    assert all(known(table.shape(o)) for n in every_node(model.graph) for o in n.output if o)
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    assert table.shape(loop.output[-1])[0] == symbol("T")


# ----------------------------------------------------------------- paddle's -1
PADDLE = CORPUS / "paddle_dim_value_minus_one.onnx"


def test_a_minus_one_input_dim_is_a_dynamic_axis_with_a_note():
    table = infer(ModelGraph.from_model(onnx.load(str(PADDLE))))
    x = table.shape("x")
    assert all(is_named(next(iter(d.free_symbols))) for d in x[:2]) and x[2] == 4
    assert not any(isinstance(d, int) and d < 0 for o in ("m", "r", "y") for d in table.shape(o))
    assert len(table.notes) == 2 and "dim_value -1" in table.notes[0] and "dim_value 0" in table.notes[1]
    assert check(PADDLE).diagnostics == []


def test_shapes_and_verify_take_a_minus_one_input():
    res = CliRunner().invoke(main, ["shapes", str(PADDLE)])
    assert res.exit_code == 0, res.output
    assert "-1" not in res.output.split("node")[1] and "note: input 'x' axis 0 is declared with dim_value -1" in res.output
    res = CliRunner().invoke(main, ["verify", str(PADDLE)])
    assert res.exit_code == 0, res.output
    assert "runs" in res.output and "negative" not in res.output


def test_onnxruntime_takes_any_size_on_a_minus_one_axis():
    """The independent truth: onnxruntime reads -1 as a dynamic axis (and 0 as a size: the note says so)."""
    assert runs(PADDLE, {"x": np.zeros((2, 0, 4), np.float32)}) and runs(PADDLE, {"x": np.zeros((5, 0, 4), np.float32)})
    assert not runs(PADDLE, {"x": np.zeros((2, 3, 4), np.float32)})
    notes = infer(ModelGraph.from_model(onnx.load(str(PADDLE)))).notes
    assert "onnxruntime takes it as a size" in notes[1] and "onnxruntime" not in notes[0]


# ----------------------------------------------------------------- input constraints
FPN = HEALTHY / "fpn_ts.onnx"


def test_the_fpn_accepts_multiples_of_32_as_onnxruntime_does():
    table = infer(ModelGraph.from_model(onnx.load(str(FPN))))
    assert summary(table.constraints) == "height, width multiples of 32"
    assert all(c.precondition and c.op_type == "Add" for c in table.constraints)
    ok = [h for h in range(16, 97, 8) if runs(FPN, {"image": np.zeros((1, 3, h, 32), np.float32)})
          and run(FPN, {"image": np.zeros((1, 3, h, 32), np.float32)})[0][2] == h]
    assert ok == [32, 64, 96]


def test_shapes_prints_the_valid_input_sizes_in_text_and_json():
    res = CliRunner().invoke(main, ["shapes", str(FPN)])
    assert res.exit_code == 0 and "valid input sizes: height, width multiples of 32" in res.output
    res = CliRunner().invoke(main, ["shapes", "--format", "json", str(FPN)])
    doc = json.loads(res.output)
    assert doc["input_sizes"] == "height, width multiples of 32"
    assert {c["symbol"] for c in doc["constraints"]} == {"height", "width"}
    assert all(c["kind"] == "mod" and c["op_type"] == "Add" and c["node"] and c["why"] for c in doc["constraints"])


def test_verify_runs_the_fpn_only_at_sizes_it_accepts():
    import shapelint.verify as V

    report = V.verify(FPN)
    assert not [d for d in report.diagnostics if d.rule in ("SL900", "SL901")]
    bindings = report.runtime["bindings"]
    assert bindings and all(b["status"] == "ok" for b in bindings)
    assert all(b["dims"]["height"] % 32 == 0 and b["dims"]["width"] % 32 == 0 for b in bindings)
    assert len({b["dims"]["height"] for b in bindings}) >= 2


def test_a_positional_table_bounds_the_sequence():
    """BERT slices its 64-row position buffer to the sequence: 64 runs, 65 does not."""
    path = HEALTHY / "hf_bert_ts.onnx"
    table = infer(ModelGraph.from_model(onnx.load(str(path))))
    assert summary(table.constraints) == "sequence ≤ 64"
    feeds = lambda s: {"input_ids": np.ones((1, s), np.int64), "attention_mask": np.ones((1, s), np.int64)}
    assert runs(path, feeds(64)) and not runs(path, feeds(65))


def test_a_window_that_must_fit_is_a_lower_bound():
    table = infer(ModelGraph.from_model(onnx.load(str(HEALTHY / "if_vad_ts.onnx"))))
    assert summary(table.constraints) == "samples ≥ 8"
    feeds = lambda n: {"input": np.zeros((1, n), np.float32), "state": np.zeros((2, 1, 32), np.float32),
                       "sr": np.array(16000)}
    assert runs(HEALTHY / "if_vad_ts.onnx", feeds(8)) and not runs(HEALTHY / "if_vad_ts.onnx", feeds(7))


def test_a_single_value_equality_stays_a_finding_and_is_listed():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 16] x) => (y) { t = Constant<value = int64[2] {4, 16}>()  y = Reshape(x, t) }""")
    table = infer(ModelGraph.from_model(m))
    (c,) = table.constraints
    assert (c.symbol, c.kind, c.bound, c.precondition) == ("batch", "eq", 4, False)
    assert check(m).diagnostics and summary(table.constraints) == "batch == 4"


def test_periodic_equalities_are_exact():
    h = symbol("H")
    import sympy

    assert periodic_equality(2 * sympy.ceiling(h / 2), h) == ("H", 2, (0,))
    assert periodic_equality(2 * sympy.floor(h / 2), h) == ("H", 2, (0,))
    assert periodic_equality(4 * sympy.ceiling(sympy.ceiling(h / 2) / 2), 2 * sympy.ceiling(h / 2)) == ("H", 4, (0, 3))
    assert periodic_equality(sympy.floor((h + 1) / 2) + sympy.floor(h / 2), h) == "always"
    assert periodic_equality(2 * sympy.floor(h / 2), 2 * sympy.floor((h + 1) / 2) - 1) == "never"
    assert periodic_equality(2 * sympy.floor(h / 2), sympy.floor(h / 3)) is None  # they grow apart
    assert compare(sympy.floor((h + 1) / 2) + sympy.floor(h / 2), h).relation == Relation.EQUAL


def test_bindings_are_moved_to_sizes_the_model_accepts():
    cs = [Constraint("H", "mod", modulus=32, residues=(0,)), Constraint("S", "le", bound=64),
          Constraint("T", "ge", bound=8), Constraint("B", "eq", bound=4, precondition=False)]
    assert satisfying({"H": 1, "S": 3, "T": 1, "B": 1}, cs) == {"H": 32, "S": 3, "T": 8, "B": 1}
    assert satisfying({"H": 3, "S": 99, "T": 9}, cs) == {"H": 96, "S": 64, "T": 9}
    assert satisfying({"H": 3}, cs, keep=("H",)) == {"H": 3}
    assert summary(cs) == "H multiple of 32; S ≤ 64; T ≥ 8; B == 4"


def test_the_inferred_fpn_output_is_the_input_size():
    table = infer(ModelGraph.from_model(onnx.load(str(FPN))))
    assert format_shape(table.shape("mask")) == "(batch, 2, height, width)"
