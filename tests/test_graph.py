"""``ModelGraph``: the producer/consumer indexes and the networkx view built from them."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from shapelint.graph import ModelGraph
from shapelint.load import load_model

from .conftest import parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

IF_MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[N, 4] x, bool c) => (float[N, 4] y) {
    w = Constant<value = float[4] {1, 2, 3, 4}>()
    t = Relu(x)
    y = If(c) <
        then_branch = then_g () => (float[N, 4] a) { a = Add(t, w) },
        else_branch = else_g () => (float[N, 4] b) { b = Neg(t) }
    >
}"""


def test_the_networkx_view_has_a_node_per_op_input_initializer_and_output_and_an_edge_per_tensor_read():
    mg = ModelGraph.from_model(parse(IF_MODEL))
    assert mg._nx is None  # nothing built until asked for
    g = mg.nx
    assert isinstance(g, nx.MultiDiGraph)
    kinds = {k: d["kind"] for k, d in g.nodes(data=True)}
    assert sorted(k for k, v in kinds.items() if v == "input") == ["input:c", "input:x"]
    assert sorted(k for k, v in kinds.items() if v == "output") == ["output:y"]
    ops = {d["name"] or d["op_type"]: (k, d["scope"]) for k, d in g.nodes(data=True) if d["kind"] == "op"}
    assert {d["op_type"] for _, d in g.nodes(data=True) if d["kind"] == "op"} == {"Constant", "Relu", "If", "Add", "Neg"}
    relu, if_ = mg.producer("t"), mg.producer("y")
    # the If reads its condition and, through both branches, the outer-scope t and w
    into_if = {key for _, _, key in g.in_edges(mg.info(if_).key, keys=True)}
    assert into_if == {"c", "t", "w"}
    # an edge leaves Relu for every reader of t: the If (outer-scope use) and the branch ops
    readers = {g.nodes[v]["op_type"] for _, v, key in g.out_edges(mg.info(relu).key, keys=True) if key == "t"}
    assert readers == {"If", "Add", "Neg"}
    assert all(scope.startswith("/If/") for name, (_, scope) in ops.items() if name in ("Add", "Neg"))
    assert g.has_edge(mg.info(if_).key, "output:y", key="y")
    assert nx.has_path(g, "input:x", "output:y")


@pytest.mark.parametrize("name", ["healthy/hf_gpt2_ts.onnx", "healthy/cnn_lstm_dynamo.onnx"])
def test_networkx_edges_agree_with_the_producer_and_consumer_indexes(name):
    mg = ModelGraph.from_model(load_model(FIXTURES / name))
    g = mg.nx
    assert nx.is_directed_acyclic_graph(g)
    n_ops = sum(1 for _, d in g.nodes(data=True) if d["kind"] == "op")
    assert n_ops == len(mg.nodes)
    for u, v, tensor in g.edges(keys=True):
        if g.nodes[u]["kind"] == "op":
            assert g.nodes[u]["op_type"] == mg.producer(tensor).op_type
        if g.nodes[v]["kind"] == "op":
            assert any(mg.info(c).key == v for c in mg.consumers(tensor))
    # every consumer of a produced tensor has its edge
    for node in mg.nodes:
        for inp in node.input:
            p = mg.producer(inp)
            if p is not None:
                assert g.has_edge(mg.info(p).key, mg.info(node).key, key=inp)
