"""The speed paths give what the slow paths give (issue 16).

* node memo: inference memoised on a node's signature gives every tensor, value and conflict that
  inferring each node on its own gives, on every fixture; conflicts keep their own node; two nodes
  never share a fresh dim;
* dims: the identity and int short-cuts of ``compare`` and the axis algebra's ``_eq``, and the cached
  ``_divides``, agree with the sympy computation on random expressions.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx.parser
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from shapelint import axes as axes_mod
from shapelint.dims import Relation, _compare_cached, compare, format_dim, format_shape, reset_fresh, symbol
from shapelint.graph import ModelGraph
from shapelint.infer.walk import Inferencer
from shapelint.load import LoadError, load_model

ROOT = Path(__file__).resolve().parents[1]


def _infer(model, memoise: bool):
    mg = ModelGraph.from_model(model)
    reset_fresh()
    inf = Inferencer(mg)
    inf.memoise = memoise
    table = inf.run()
    return inf, table


def _summary(table) -> dict:
    def dims(v):
        return None if v is None else [format_dim(d) if not isinstance(d, (int, float)) else (type(d).__name__, d) for d in v]

    return {
        "tensors": {k: (v.dtype, format_shape(v.shape), [type(d).__name__ for d in v.shape or ()], dims(v.value),
                        v.has_const, None if v.const is None else (v.const.dtype.str, v.const.shape, v.const.tobytes()))
                    for k, v in table.tensors.items()},
        "conflicts": [(c.node.name, c.node.op_type, c.kind, c.message, c.requirement,
                       [(a, format_shape(b)) for a, b in c.inputs], c.relation, c.tensor) for c in table.conflicts],
        "constraints": [c.text for c in table.constraints],
    }


def _fixtures():
    return sorted({*ROOT.glob("fixtures/**/*.onnx"), *ROOT.glob("tests/corpus/**/*.onnx")})


def _models():
    """``(path, model)`` of every fixture and corpus file the loader accepts."""
    for path in _fixtures():
        try:
            yield path, load_model(str(path))
        except LoadError:
            continue


def test_memo_changes_nothing_on_any_fixture():
    hits = 0
    for path, model in _models():
        _, plain = _infer(model, memoise=False)
        inf, memo = _infer(load_model(str(path)), memoise=True)
        hits += inf.memo_hits
        assert _summary(memo) == _summary(plain), path
    assert hits > 0  # the fixtures do repeat nodes


def test_a_repeated_block_is_inferred_once_and_each_conflict_keeps_its_node():
    m = onnx.parser.parse_model('''
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x, float[4, 3] w) => (y2) {
      a1 = Relu(x)
      y1 = MatMul(a1, w)
      a2 = Relu(x)
      y2 = MatMul(a2, w)
      b1 = Relu(a1)
      b2 = Relu(a2)
    }''')
    for k, node in enumerate(m.graph.node):
        node.name = f"n{k}"
    inf, table = _infer(m, memoise=True)
    assert inf.memo_hits >= 2  # a2 and b2 (or b1) answered from the memo
    assert sorted(c.node.name for c in table.conflicts) == ["n1", "n3"]
    _, plain = _infer(m, memoise=False)
    assert _summary(table) == _summary(plain)


def test_two_nodes_never_share_a_fresh_dim():
    m = onnx.parser.parse_model('''
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x) => (z1, z2) {
      z1 = NonZero(x)
      z2 = NonZero(x)
    }''')
    inf, table = _infer(m, memoise=True)
    d1, d2 = table.shape("z1")[1], table.shape("z2")[1]
    assert not isinstance(d1, int) and d1 is not d2 and d1 != d2
    assert inf.memo_hits == 0


def test_constants_with_other_values_are_not_confused():
    m = onnx.parser.parse_model('''
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8, 4] x) => (r1, r2) {
      s1 = Constant <value = int64[2] {0, 32}> ()
      s2 = Constant <value = int64[2] {0, 16}> ()
      r1 = Reshape(x, s1)
      r2 = Reshape(x, s2)
    }''')
    _, table = _infer(m, memoise=True)
    assert format_shape(table.shape("r1")) == "(batch, 32)"
    assert table.conflicts  # 8*4 elements per row do not make 16: r2's own conflict
    assert all(c.node.output[0] == "r2" for c in table.conflicts)


# ----------------------------------------------------------------- dims

_SYMS = [symbol(n) for n in ("batch", "seq", "H")]


def _exprs():
    leaf = st.one_of(st.integers(min_value=1, max_value=64), st.sampled_from(_SYMS))

    def extend(inner):
        return st.one_of(
            st.tuples(inner, inner).map(lambda t: sympy.sympify(t[0]) + t[1]),
            st.tuples(inner, inner).map(lambda t: sympy.sympify(t[0]) * t[1]),
            st.tuples(inner, st.integers(min_value=1, max_value=8)).map(lambda t: sympy.floor(sympy.sympify(t[0]) / t[1])),
        )

    return st.recursive(leaf, extend, max_leaves=6).map(lambda e: int(e) if getattr(e, "is_Integer", False) else e)


def _reference(a, b) -> str:
    """The sympy path alone: no identity, no int short-cut."""
    if isinstance(a, int) and isinstance(b, int):
        return Relation.EQUAL if a == b else Relation.DIFFERENT
    if sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0:
        return Relation.EQUAL
    return _compare_cached.__wrapped__(a, b).relation


@settings(max_examples=150, deadline=None)
@given(_exprs(), _exprs())
def test_compare_fast_paths_agree_with_sympy(a, b):
    assert compare(a, a).relation == Relation.EQUAL == _reference(a, a)
    assert compare(a, b).relation == _reference(a, b)
    assert axes_mod._eq(a, b) == (_reference(a, b) == Relation.EQUAL)
    assert axes_mod._eq(a, a) is True


@settings(max_examples=150, deadline=None)
@given(_exprs(), _exprs())
def test_cached_divides_agrees_with_the_uncached_computation(p, q):
    uncached = axes_mod._divides_symbolic.__wrapped__
    if isinstance(p, int) and isinstance(q, int):
        return
    assert axes_mod._divides(p, q) == uncached(p, q)
    assert axes_mod._divides(p, q) == axes_mod._divides(p, q)  # the cached answer again


@pytest.mark.parametrize("a,b", [(symbol("batch"), symbol("batch")), (3, 3), (3, 4), (None, 3)])
def test_compare_short_cuts(a, b):
    want = {(3, 4): Relation.DIFFERENT, (None, 3): Relation.UNKNOWN}.get((a, b), Relation.EQUAL)
    assert compare(a, b).relation == want



# ----------------------------------------------------------------- op arity without the schema registry

def test_the_arity_table_answers_what_onnxs_schemas_answer():
    from shapelint.infer import arity

    keys = {(s.domain, s.name) for s in onnx.defs.get_all_schemas_with_history()}
    top = max(s.since_version for s in onnx.defs.get_all_schemas_with_history()) + 2
    for domain, op in sorted(keys) + [("", "NoSuchOp"), ("ai.onnx.ml", "Add")]:
        for opset in range(1, top):
            assert arity.bounds(domain, op, opset) == arity._from_schema(domain, op, opset), (domain, op, opset)


def test_the_arity_table_is_current_or_unused():
    """Regenerate with ``python -m shapelint.infer.arity`` after upgrading onnx."""
    from shapelint.infer import _arity_table, arity

    if _arity_table.ONNX_VERSION == onnx.__version__:
        assert arity._FILE.read_text(encoding="utf-8") == arity.generate()
        assert arity._table()
    else:  # another onnx: the schemas are asked
        assert arity._table() == {}


def test_the_constant_fast_path_knows_each_types_item_size():
    from onnx.helper import tensor_dtype_to_np_dtype

    from shapelint.infer.walk import _ITEMSIZE

    assert all(tensor_dtype_to_np_dtype(k).itemsize == v for k, v in _ITEMSIZE.items())


def test_a_constant_whose_bytes_do_not_fit_takes_the_general_path_and_its_conflict():
    t = onnx.TensorProto(name="c", data_type=onnx.TensorProto.FLOAT, dims=[2, 2], raw_data=b"\x00" * 12)  # 16 needed
    m = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Constant", [], ["c"], value=t)], "g", [],
        [onnx.helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, None)]))
    for memoise in (True, False):
        _, table = _infer(m, memoise=memoise)
        assert [c.kind for c in table.conflicts] == ["op"] and table.shape("c") is None


# ----------------------------------------------------------------- the axis walk's short-cuts

def _axes_summary(am) -> dict:
    def ax(a):
        return None if a is None else [[(f.source.kind, f.source.tensor, f.source.axis, format_dim(f.size),
                                          format_dim(f.inner), am.root(f.source)) for f in x] if x is not None else None for x in a]

    def node(n):
        return n.name or n.output[0] if n is not None else None

    return {"axes": {t: ax(a) for t, a in am._axes.items()},
            "origin": {k: node(v) for k, v in am._origin.items()},
            "labels": {r: {role: [node(n) for n in ns] for role, ns in roles.items()} for r, roles in am._labels.items()},
            "steps": {t: (ax((st[0],)), st[1:]) for t, st in am._steps.items()},
            "step_seq": am._step_seq, "unit_dir": am._unit_dir,
            "values": {t: ax(v) for t, v in am._values.items()},
            "unfollowed": am.unfollowed, "recurrences": [(r.tensor, len(r.__dict__)) for r in am.recurrences],
            "scrambles": len(am.scrambles)}


def test_the_axis_walks_short_cuts_change_nothing_on_any_fixture():
    from shapelint.axes import AxisMap

    seen = 0
    for path, model in _models():
        mg = ModelGraph.from_model(model)
        reset_fresh()
        table = Inferencer(mg).run()
        got = {}
        for fast in (True, False):
            AxisMap.fast_paths = fast
            try:
                got[fast] = _axes_summary(axes_mod.analyse(mg, table))
            finally:
                AxisMap.fast_paths = True
        assert got[True] == got[False], path
        seen += 1
    assert seen > 200


# ----------------------------------------------------------------- the graph index's file-order check

def _general_order(mg: ModelGraph) -> list:
    mg._order = None  # what topological_order works out on its own
    return mg.topological_order()


def test_the_file_order_the_index_accepts_is_what_topological_order_finds_on_every_fixture():
    accepted = 0
    for path, model in _models():
        mg = ModelGraph.from_model(model)
        indexed = mg._order
        general = _general_order(mg)
        if indexed is not None:
            accepted += 1
            assert [id(n) for n in indexed] == [id(n) for n in general], path
        else:  # refused: the file order is not topological
            assert [id(n) for n in general] != [id(n) for n in mg.nodes] or mg.problems, path
    assert accepted > 200


@pytest.mark.parametrize("text", [
    # b read before the node writing it
    "y = Neg(a)  a = Relu(x)",
    # a node reading its own output
    "a = Add(x, a)  y = Neg(a)",
    # a Loop body reading a tensor written after the Loop
    """y = Loop(n, c) <body = g2 (int64 i, bool c_in) => (bool c_out) { c_out = Identity(c_in)  z = Neg(late) }>
       late = Relu(x)""",
])
def test_a_file_order_that_is_not_topological_is_left_to_the_sort(text):
    m = onnx.parser.parse_model(f"""<ir_version: 8, opset_import: ["" : 17]>
        g (float[2] x, int64 n, bool c) => (float[2] y) {{ {text} }}""")
    mg = ModelGraph.from_model(m)
    assert mg._order is None
    order = mg.topological_order()
    assert order != list(mg.nodes) or mg.problems
