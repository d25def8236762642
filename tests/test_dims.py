"""Symbolic dimension algebra."""

from shapelint.dims import (
    Relation,
    compare,
    floordiv,
    format_dim,
    format_shape,
    fresh_symbol,
    mul,
    parse_dim,
    product,
    symbol,
)

B, S = symbol("batch"), symbol("seq")


def test_products_of_symbols_print_symbols_first():
    assert format_dim(mul(B, 64)) == "batch*64"
    assert format_dim(product([B, S, 12])) in ("batch*seq*12", "seq*batch*12")


def test_dim_param_text_round_trips_through_parse():
    for d in (mul(B, 64), floordiv(S - 3, 2) + 1, B + S, mul(B, S)):
        assert parse_dim(format_dim(d)) == d


def test_exporter_names_parse_as_one_symbol():
    for name in ("batch_size", "s0", "dynamic_axes_1", "unk__12", "sequence.length"):
        assert parse_dim(name) == symbol(name)


def test_equal_dims_are_proven_equal():
    assert compare(mul(B, 64), mul(64, B)).relation == Relation.EQUAL
    assert compare(8, 8).relation == Relation.EQUAL


def test_static_dims_that_differ_are_refuted():
    assert compare(3, 4).relation == Relation.DIFFERENT


def test_a_multiple_of_batch_is_never_an_odd_constant():
    assert compare(mul(B, 2), 3).relation == Relation.DIFFERENT


def test_a_count_that_fits_one_batch_size_says_which():
    c = compare(mul(B, 32), 128)
    assert c.relation == Relation.ONLY_WHEN
    assert c.describe() == "batch == 4"


def test_anonymous_dims_are_never_refuted():
    assert compare(fresh_symbol(), 5).relation == Relation.UNKNOWN
    assert compare(fresh_symbol(), B).relation == Relation.UNKNOWN


def test_floor_division_keeps_exact_quotients_polynomial():
    assert floordiv(mul(B, 64), 8) == mul(B, 8)
    assert "//" in format_dim(floordiv(S - 3, 2) + 1)


def test_shapes_print_like_tuples():
    assert format_shape((B, 3)) == "(batch, 3)"
    assert format_shape((S,)) == "(seq,)"
    assert format_shape(None) == "(?)"


def test_dim_param_text_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    for text in (code, "(lambda: 0)()", "9**9**9", "9^9^9", "x" * 10_000, "(" * 500 + "a" + ")" * 500):
        d = parse_dim(text)
        assert d is not None
    assert not marker.exists()


def test_arithmetic_dim_params_from_other_tools_parse():
    assert parse_dim("2*s0 + 1") == 2 * symbol("s0") + 1
    assert format_dim(parse_dim("floor((H - 3)/2) + 1")) == "(H - 3)//2 + 1"


def test_fresh_dims_never_become_a_declared_symbol():
    # tf2onnx declares its own unk__N dims; a fresh dim must not be that symbol, whatever its number
    from shapelint.graph import ModelGraph
    from shapelint.infer import infer

    from .conftest import parse

    m = parse("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[unk__1, 4] x, int64[2] n) => (y, z) {
      y = ConstantOfShape(n)
      z = Add(x, y)
    }""")
    shapes = []
    for _ in range(2):  # two files in one process: each numbers its fresh dims from ?1
        table = infer(ModelGraph.from_model(m))
        y = table.shape("y")
        assert len(y) == 2 and not any(s.name == "unk__1" for d in y for s in d.free_symbols)
        assert compare(y[0], symbol("unk__1")).relation == Relation.UNKNOWN
        assert format_dim(y[0]) == "?1"
        shapes.append(y)
    assert compare(shapes[0][0], shapes[1][0]).relation == Relation.UNKNOWN  # same text, different dims


def test_a_declared_unk_dim_is_a_named_symbol():
    # declared by the model, so a literal that replaced it is "only when unk__7 == 4", not undecidable
    assert compare(mul(symbol("unk__7"), 2), 8).describe() == "unk__7 == 4"
