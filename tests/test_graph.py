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


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "int8", "uint8", "bool", "float16", "int16"])
@pytest.mark.parametrize("shape", [(), (1,), (3, 4), (0,), (2, 0, 3)])
def test_small_constants_read_like_numpy_helper(dtype, shape):
    """tensor_value's fast path (raw_data and typed fields) gives numpy_helper.to_array's array."""
    import numpy as np
    from onnx import helper, numpy_helper

    from shapelint.graph import tensor_value

    a = (np.random.default_rng(0).standard_normal(shape) * 100).astype(dtype)
    protos = [numpy_helper.from_array(a, "raw")]
    if dtype in ("float32", "float64", "int64", "int32", "bool"):
        kind = helper.np_dtype_to_tensor_dtype(a.dtype)
        protos.append(helper.make_tensor("typed", kind, list(shape), a.reshape(-1).tolist()))
    for t in protos:
        got, want = tensor_value(t), numpy_helper.to_array(t)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    truncated = numpy_helper.from_array(a, "short")
    if a.size:
        truncated.raw_data = truncated.raw_data[:-1]
        assert tensor_value(truncated) is None  # numpy_helper refuses it too
