"""A picture of each finding: the neighbourhood, shapes on every edge, the culprit highlighted."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
