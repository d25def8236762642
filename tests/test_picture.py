"""A picture of each finding: the neighbourhood, shapes on every edge, the culprit highlighted."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from shapelint.check import check
from shapelint.cli import main
from shapelint.graph import ModelGraph
from shapelint.infer import infer
from shapelint.picture import layout, neighbourhood, picture_for

from .conftest import FIXTURES, parse

SVG = "{http://www.w3.org/2000/svg}"
CHAIN = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) {
  a = Relu(x)  b = Sigmoid(a)  c = Tanh(b)  d = Relu(c)
  m = MatMul(d, w)
  e = Relu(m)  f = Sigmoid(e)  g2 = Tanh(f)  y = Relu(g2)
}"""


def named(model: onnx.ModelProto) -> onnx.ModelProto:
    for i, node in enumerate(model.graph.node):
        node.name = f"/block/{node.op_type}_{i}"
    return model


@pytest.fixture(scope="module")
def chain():
    model = named(parse(CHAIN))
    mg = ModelGraph.from_model(model)
    return model, mg, infer(mg)


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_the_picture_shows_the_culprit_its_neighbours_and_every_edge_shape(chain, rules):
    model, mg, table = chain
    (d,) = [d for d in check(model, rules=rules).diagnostics if d.rule == "SL103"]
    svg = picture_for(mg, table, d, "models/chain.onnx")
    words = texts(svg)
    assert "SL103 matmul-inner-dim · error" in words
    assert "/block/MatMul_4" in words
    # two nodes up and two down, the rest as dimmed stubs
    for present in ("/block/Tanh_2", "/block/Relu_3", "/block/Relu_5", "/block/Sigmoid_6"):
        assert present in words
    assert "/block/Relu_0" not in words and "/block/Relu_8" not in words
    assert "/block/Sigmoid_1" in words and "/block/Tanh_7" in words  # stubs name what lies beyond
    # shapes on the edges; the graph input w is a stub with its own shape
    assert words.count("(batch, 8)") >= 3
    assert "(4, 3)" in words and "graph input" in words
    # the culprit is highlighted: a thick red box, and the finding's message is in the header
    root = ET.fromstring(svg)
    assert any(r.get("stroke-width") == "3" for r in root.iter(f"{SVG}rect"))
    assert any("inner dimensions differ" in w for w in words)


def test_constant_inputs_are_folded_into_their_consumer_by_schema_name(rules):
    text = """<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x) => (y) <float[4, 3] w = {0,0,0,0,0,0,0,0,0,0,0,0}, int64[2] target = {0, -1}> {
      m = MatMul(x, w)  y = Reshape(m, target)
    }"""
    model = named(parse(text))
    mg = ModelGraph.from_model(model)
    (d,) = [d for d in check(model, rules=rules).diagnostics if d.rule == "SL103"]
    words = texts(picture_for(mg, infer(mg), d, "c.onnx"))
    assert "B: (4, 3)" in words and "shape = [0,-1]" in words


def test_the_picture_is_self_contained(chain, rules):
    model, mg, table = chain
    (d,) = [d for d in check(model, rules=rules).diagnostics if d.rule == "SL103"]
    svg = picture_for(mg, table, d, "chain.onnx")
    assert svg.count("http") == 1 and 'xmlns="http://www.w3.org/2000/svg"' in svg  # only the namespace
    for tag in ("<image", "<script", "@import", "href=\"http", "<foreignObject"):
        assert tag not in svg


def test_boxes_never_overlap_and_edges_run_downwards(chain):
    model, mg, table = chain
    culprit = next(n for n in model.graph.node if n.op_type == "MatMul")
    nb = neighbourhood(mg, table, culprit, up=3, down=3)
    layout(nb)
    boxes = list(nb.vertices.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert apart, (a.key, b.key)
    for e in nb.edges:
        ys = [y for _, y in e.points]
        assert ys == sorted(ys)


def test_fan_out_and_fan_in_are_drawn_with_one_label_per_tensor(rules):
    text = """<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x, float[4, 3] w) => (y, z, u) {
      a = Relu(x)  y = MatMul(a, w)  z = Sigmoid(a)  u = Tanh(a)
    }"""
    model = named(parse(text))
    mg = ModelGraph.from_model(model)
    table = infer(mg)
    (d,) = [d for d in check(model, rules=rules).diagnostics if d.rule == "SL103"]
    svg = picture_for(mg, table, d, "fan.onnx", up=1, down=1)
    words = texts(svg)
    assert words.count("(batch, 8)") == 2  # x into Relu, and a (read by three nodes) labelled once


def test_check_graph_writes_one_picture_per_finding_and_an_index(tmp_path):
    bad = sorted(FIXTURES.glob("SL*/bad*.onnx"))[:2]
    model = tmp_path / "chain.onnx"
    onnx.save(named(parse(CHAIN)), model)
    out = tmp_path / "pictures"
    res = CliRunner().invoke(main, ["check", "--isolated", "--jobs", "1", "--graph", str(out), str(model), *map(str, bad)])
    assert res.exit_code == 1
    svgs = sorted(out.rglob("*.svg"))
    assert len(svgs) == res.stdout.count(" [SL") and len(svgs) >= 2
    for svg in svgs:
        ET.fromstring(svg.read_text())  # well-formed
    index = (out / "index.html").read_text()
    assert all(p.relative_to(out).as_posix() in index for p in svgs)
    assert "wrote" in res.stderr and "picture" in res.stderr


def test_a_finding_without_a_node_gets_no_picture(chain):
    from shapelint.diagnostics import Diagnostic

    model, mg, table = chain
    d = Diagnostic("SL002", "invalid-graph", "error", None, None, None, "a cycle")
    assert picture_for(mg, table, d, "chain.onnx") is None


def test_a_wide_concat_is_drawn_with_a_few_inputs_and_one_stub_for_the_rest(rules):
    inputs = ", ".join(f"float[batch, 2] x{i}" for i in range(20))
    args = ", ".join(f"x{i}" for i in range(20))
    text = f"""<ir_version: 8, opset_import: ["" : 17]>
    g ({inputs}, float[4, 3] w) => (y) {{ c = Concat<axis = 1>({args})  y = MatMul(c, w) }}"""
    model = named(parse(text))
    mg = ModelGraph.from_model(model)
    concat = model.graph.node[0]
    nb = neighbourhood(mg, infer(mg), concat)
    assert sorted(v.title for v in nb.vertices.values() if v.kind == "input") == ["w", "x0", "x1", "x2", "x3", "x4", "x5"]
    assert any(v.title == "14 more inputs" for v in nb.vertices.values())


# ---------------------------------------------------------------- issue 15: what the window spends itself on
SHAPE_ARITHMETIC = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 6, 4, 5] x) => (y) {
  a = Relu(x)  c = Cast<to = 1>(a)  b = Sigmoid(c)
  s = Shape(b)  zero = Constant<value = int64 {0}>()  n = Gather<axis = 0>(s, zero)
  ax = Constant<value = int64[1] {0}>()  u = Unsqueeze(n, ax)
  c16 = Constant<value = int64[1] {16}>()  c6 = Constant<value = int64[1] {6}>()
  target = Concat<axis = 0>(u, c16, c6)
  y = Reshape(b, target)
}"""


@pytest.fixture(scope="module")
def shape_arithmetic(rules):
    model = named(parse(SHAPE_ARITHMETIC))
    mg = ModelGraph.from_model(model)
    table = infer(mg)
    (d,) = [d for d in check(model, rules=rules).diagnostics if d.rule == "SL102"]
    return model, mg, table, d


def test_shape_arithmetic_is_one_box_titled_with_the_value_it_computes(shape_arithmetic):
    model, mg, table, d = shape_arithmetic
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    nb = neighbourhood(mg, table, reshape, tensor=d.tensor)
    ops = [v.title for v in nb.vertices.values() if v.kind in ("op", "elided")]
    for arithmetic in ("Shape", "Gather", "Unsqueeze", "Concat", "Constant"):
        assert arithmetic not in ops, ops
    (box,) = [v for v in nb.vertices.values() if v.kind == "value"]
    assert box.title == "[batch, 16, 6]"
    assert box.lines[0] == "Shape→Gather→Unsqueeze→Concat"
    # the box reads the tensor it measures, drawn in the picture: Sigmoid's output
    sigmoid = mg.info(next(n for n in model.graph.node if n.op_type == "Sigmoid")).key
    assert any(e.src == sigmoid and e.dst == box.key and e.label == "(batch, 6, 4, 5)" for e in nb.edges)


def test_a_shape_vectors_edge_is_labelled_with_its_value_not_its_shape(shape_arithmetic):
    model, mg, table, d = shape_arithmetic
    reshape = mg.info(next(n for n in model.graph.node if n.op_type == "Reshape")).key
    nb = neighbourhood(mg, table, next(n for n in model.graph.node if n.op_type == "Reshape"), tensor=d.tensor)
    assert [e.label for e in nb.edges if e.tensor == "target" and e.dst == reshape] == ["[batch, 16, 6]"]
    words = texts(picture_for(mg, table, d, "shape.onnx"))
    assert "[batch, 16, 6]" in words and "(3,)" not in words and "(1,)" not in words


def test_the_window_is_spent_on_the_data_path(shape_arithmetic):
    """Two levels up from the Reshape reach Relu: the same-type Cast costs no level, the shape ops none at all."""
    _model, mg, table, d = shape_arithmetic
    words = texts(picture_for(mg, table, d, "shape.onnx"))
    for data in ("/block/Relu_0", "/block/Cast_1", "/block/Sigmoid_2"):
        assert data in words
    for arithmetic in ("/block/Shape_3", "/block/Gather_5", "/block/Concat_10"):
        assert arithmetic not in words


def test_a_value_box_shows_an_index_as_a_scalar_and_an_unknown_value_by_its_length():
    from shapelint.picture import _ShapeArithmetic

    model = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x, int64[3] given) => (y) {
      s = Shape(x)  zero = Constant<value = int64 {0}>()  n = Gather<axis = 0>(s, zero)
      f = Cast<to = 1>(n)  half = Div(f, f)  back = Cast<to = 7>(half)
      y = Reshape(x, given)
    }""")
    mg = ModelGraph.from_model(model)
    arith = _ShapeArithmetic(mg, infer(mg))
    assert arith.label("s") == "[batch, 8]" and arith.label("n") == "batch"
    assert arith("back") and arith.label("back") in ("?", "1")  # Cast -> Div -> Cast of a size: still arithmetic
    assert not arith("given") and not arith("x")  # a graph input is data, whatever its size


@pytest.mark.parametrize("path, rule, name", [
    ("SL403-softmax-over-time/bad_torchscript.onnx", "SL403", "/rnn/LSTM"),
    ("SL405-first-step-taken/bad_dynamo.onnx", "SL405", "node_lstm__2"),
    ("SL301-time-merged-into-features/bad_tf2onnx_flatten_dense.onnx", "SL301", "LSTM__29"),
    ("SL401-lstm-directions-not-removed/bad_jax2onnx_stacked_directions.onnx", "SL401", "node_Loop_21"),
    ("SL002-invalid-graph/bad_duplicate_producer.onnx", "SL002", "/Relu"),
])
def test_the_nodes_the_message_names_are_in_the_picture(rules, path, rule, name):
    model = onnx.load(str(FIXTURES / path))
    result = check(model, rules=rules)
    (d,) = [d for d in result.diagnostics if d.rule == rule]
    assert f"'{name}'" in d.message
    svg = picture_for(result.graph, result.table, d, path)
    root = ET.fromstring(svg)
    boxes = ["".join(g.find(f"{SVG}title").itertext()) for g in root.iter(f"{SVG}g") if g.find(f"{SVG}title") is not None
             and g.find(f"{SVG}rect") is not None and g.find(f"{SVG}rect").get("stroke-dasharray") is None]  # no stubs
    op_type = next(i.node.op_type for i in result.graph._info.values() if i.node.name == name)
    assert f"{op_type} {name}" in boxes  # drawn as the node it is, not as a dimmed stub
    assert any(b == f"{d.op_type} {d.node}" for b in boxes)


def test_a_named_node_far_away_is_left_out_and_the_window_stays_small(rules):
    from shapelint.picture import NAMED_HOPS

    body = "  ".join(f"a{i + 1} = Relu(a{i})" for i in range(NAMED_HOPS + 4))
    model = named(parse(f"""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] a0, float[4, 3] w) => (y) {{ {body}  y = MatMul(a{NAMED_HOPS + 4}, w) }}"""))
    mg = ModelGraph.from_model(model)
    table = infer(mg)
    matmul = model.graph.node[-1]
    near = neighbourhood(mg, table, matmul, named=["/block/Relu_3"])
    far = neighbourhood(mg, table, matmul, named=["/block/Relu_0", "no such node"])
    def titles(nb):
        return {v.lines[0] for v in nb.vertices.values() if v.kind == "op"}

    assert "/block/Relu_3" in titles(near) and {"/block/Relu_4", "/block/Relu_8"} <= titles(near)
    assert "/block/Relu_0" not in titles(far) and len(titles(far)) == 3  # MatMul and two levels up


# ---------------------------------------------------------------- issue 15: stale pictures, atomic runs
def _tree(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _graph_run(tmp_path, out, *models, expect=1):
    res = CliRunner().invoke(main, ["check", "--isolated", "--jobs", "1", "--no-progress", "--graph", str(out), *map(str, models)])
    assert res.exit_code == expect, res.output
    return res


@pytest.fixture
def two_models(tmp_path):
    chain = tmp_path / "chain.onnx"
    onnx.save(named(parse(CHAIN)), chain)
    other = tmp_path / "shape.onnx"
    onnx.save(named(parse(SHAPE_ARITHMETIC)), other)
    return chain, other


def test_a_run_removes_the_pictures_of_an_earlier_run_and_nothing_else(tmp_path, two_models):
    from shapelint.picture import MARK

    chain, other = two_models
    out = tmp_path / "pictures"
    _graph_run(tmp_path, out, chain, other)
    first = {p.relative_to(out).as_posix() for p in out.rglob("*.svg")}
    gone = [p for p in first if "shape.onnx" in p]
    assert gone and all((out / p).read_text().startswith(MARK) for p in first)
    assert MARK in (out / "index.html").read_text()[:300]
    # a user's files: beside the pictures, in a model's folder, and one named like a picture
    mine = {"notes.txt": b"mine", "diagram.svg": b"<svg/>", f"{Path(gone[0]).parent}/keep.svg": b"<svg/>",
            f"{Path(gone[0]).parent}/99-SL999.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}
    for rel, data in mine.items():
        (out / rel).write_bytes(data)
    _graph_run(tmp_path, out, chain)  # shape.onnx no longer checked: its pictures are stale
    after = _tree(out)
    assert not any(p in after for p in gone)
    assert all(after[rel] == data for rel, data in mine.items())
    assert {p for p in after if p.endswith(".svg") and p not in mine} == {p for p in first if p not in gone}
    assert "shape.onnx" not in (out / "index.html").read_text()
    # no picture left for a model: its folder goes too, when nothing else is in it
    for rel in mine:
        (out / rel).unlink()
    _graph_run(tmp_path, out, chain, other)
    _graph_run(tmp_path, out, chain)
    (chain_dir,) = {Path(p).parent.name for p in first if p not in gone}
    assert sorted(p.name for p in out.iterdir()) == sorted([".shapelint-pictures.json", chain_dir, "index.html"])


def test_pictures_from_before_the_mark_are_recognised_as_shapelints(tmp_path, two_models):
    chain, _ = two_models
    out = tmp_path / "pictures"
    old = out / "models_old.onnx" / "01-SL103.svg"
    old.parent.mkdir(parents=True)
    old.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="300" viewBox="0 0 640 300" '
                   'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">\n'
                   "<title>SL103 at /MatMul in models/old.onnx</title>\n</svg>\n")
    (out / "index.html").write_text('<!doctype html><meta charset="utf-8"><title>shapelint findings</title>')
    _graph_run(tmp_path, out, chain)
    assert not old.parent.exists() and "chain.onnx" in (out / "index.html").read_text()


def test_a_users_file_in_the_way_is_never_overwritten(tmp_path, two_models):
    chain, _ = two_models
    out = tmp_path / "pictures"
    out.mkdir()
    (out / "index.html").write_text("<h1>my own index</h1>")
    res = _graph_run(tmp_path, out, chain, expect=2)
    assert "not a file shapelint wrote" in res.stderr and "Traceback" not in res.output
    assert _tree(out) == {"index.html": b"<h1>my own index</h1>"}


def test_a_run_that_fails_while_writing_leaves_the_last_runs_pictures_whole(tmp_path, two_models, monkeypatch):
    import errno

    from shapelint import safeio

    chain, other = two_models
    out = tmp_path / "pictures"
    _graph_run(tmp_path, out, chain)
    before, names = _tree(out), sorted(p.name for p in out.iterdir())
    real, calls = safeio.atomic_write, []

    def full_after_one(path, data, *a, **k):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *a, **k)

    monkeypatch.setattr(safeio, "atomic_write", full_after_one)
    res = _graph_run(tmp_path, out, other, chain, expect=2)
    assert "No space left on device" in res.stderr
    assert _tree(out) == before  # not one picture of the new run, none of the old lost, no temp files
    assert sorted(p.name for p in out.iterdir()) == names  # nor a staging folder
