"""The sympy-free dims (:mod:`shapelint.poly`) give what sympy gives (issue 16).

Random expression trees over ints, named and fresh symbols are built twice: once with shapelint's dims
(``Poly`` arithmetic and the fast paths of :mod:`shapelint.dims`) and once in sympy alone, with
positive integer symbols and Dummies.  The two must be the same value (sympy's ``expand`` of the
difference is 0), print the same, compare the same, and answer positivity questions the same wherever
sympy answers; where sympy cannot decide, the fast path's answer must hold at every sampled size.
"""

from __future__ import annotations

import pickle
import random
import subprocess
import sys

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from shapelint import _sym, dims
from shapelint.dims import compare, format_dim, fresh_symbol, symbol
from shapelint.poly import Poly, canonical

NAMES = ("batch", "seq", "H", "W", "s0", "unk__1")
FRESH = [fresh_symbol() for _ in range(3)]
PLAIN = {n: sympy.Symbol(n, integer=True, positive=True) for n in NAMES}
DUMMY = [sympy.Dummy(f"f{k}", integer=True, positive=True) for k in range(3)]

leaf = st.one_of(st.integers(min_value=-9, max_value=64).map(lambda v: ("int", v)),
                 st.sampled_from(NAMES).map(lambda n: ("name", n)),
                 st.integers(min_value=0, max_value=2).map(lambda k: ("fresh", k)))
trees = st.recursive(leaf, lambda inner: st.tuples(st.sampled_from(["+", "-", "*"]), inner, inner), max_leaves=8)


def ours(t):
    kind = t[0]
    if kind == "int":
        return t[1]
    if kind == "name":
        return symbol(t[1])
    if kind == "fresh":
        return FRESH[t[1]]
    op, a, b = t[0], ours(t[1]), ours(t[2])
    return {"+": dims.add, "-": dims.sub, "*": dims.mul}[op](a, b)


def theirs(t):
    """The same tree in sympy alone: nothing of shapelint's."""
    kind = t[0]
    if kind == "int":
        return sympy.Integer(t[1])
    if kind == "name":
        return PLAIN[t[1]]
    if kind == "fresh":
        return DUMMY[t[1]]
    op, a, b = t[0], theirs(t[1]), theirs(t[2])
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def as_theirs(d):
    """One of our dims in the sympy-only world (named symbols by name, fresh ones by position)."""
    e = _sym.to_sympy(d)
    subs = {_sym.named_symbol(n): PLAIN[n] for n in NAMES}
    subs.update({_sym.to_sympy(f): DUMMY[k] for k, f in enumerate(FRESH)})
    return e.xreplace(subs)


def values(rng):
    return {n: rng.randint(1, 40) for n in NAMES} | {f"f{k}": rng.randint(1, 40) for k in range(3)}


def at(d, env):
    if isinstance(d, int):
        return d
    e = as_theirs(d)
    return int(e.xreplace({**{PLAIN[n]: env[n] for n in NAMES}, **{DUMMY[k]: env[f"f{k}"] for k in range(3)}}))


@settings(max_examples=300, deadline=None)
@given(trees)
def test_arithmetic_is_sympys(t):
    got, want = ours(t), sympy.expand(theirs(t))
    assert type(got) in (int, Poly)
    assert sympy.expand(as_theirs(got) - want) == 0
    if isinstance(got, Poly):
        assert canonical(_sym.to_sympy(got)) == got  # the round trip is exact
        assert hash(canonical(sympy.expand(_sym.to_sympy(got)))) == hash(got)
        assert got.free_symbols == {canonical(s) for s in _sym.to_sympy(got).free_symbols}


@settings(max_examples=300, deadline=None)
@given(trees)
def test_text_is_what_the_sympy_formatter_writes(t):
    d = ours(t)
    if isinstance(d, Poly):
        assert format_dim(d) == dims._format_expr(_sym.to_sympy(d))
        assert str(d) == str(_sym.to_sympy(d))


@settings(max_examples=300, deadline=None)
@given(trees, trees)
def test_compare_is_the_sympy_computations(s, t):
    a, b = ours(s), ours(t)
    fast = compare(a, b)
    slow = dims._compare_sympy(_sym.to_sympy(a), _sym.to_sympy(b))
    assert (fast.relation, fast.when) == (slow.relation, slow.when)


monomials = st.tuples(st.integers(min_value=-6, max_value=6).filter(bool),
                      st.lists(st.sampled_from(NAMES[:3]), min_size=1, max_size=3)).map(
    lambda t: ("*", ("int", t[0]), _product(t[1])))


def _product(names):
    out = ("name", names[0])
    for n in names[1:]:
        out = ("*", out, ("name", n))
    return out


@settings(max_examples=300, deadline=None)
@given(monomials, st.one_of(trees, leaf), st.one_of(trees, leaf), st.integers(min_value=-40, max_value=40))
def test_compare_of_shared_factors_and_products_against_sizes(g, s, t, k):
    """The shapes the fast path decides: ``g*x`` against ``g*y`` (``B`` against ``B*T``), ``c*B*T`` against ``k``."""
    for a, b in ((ours(("*", g, s)), ours(("*", g, t))), (ours(g), k), (ours(("+", g, ("int", k))), ours(s))):
        fast = compare(a, b)
        slow = dims._compare_sympy(_sym.to_sympy(a), _sym.to_sympy(b))
        assert (fast.relation, fast.when) == (slow.relation, slow.when), (a, b)


@settings(max_examples=300, deadline=None)
@given(trees, st.integers(min_value=0, max_value=2**31))
def test_signs_agree_with_sympy_and_hold(t, seed):
    d = ours(t)
    if not isinstance(d, Poly):
        return
    e = as_theirs(d)
    rng = random.Random(seed)
    samples = [at(d, values(rng)) for _ in range(8)] + [at(d, {**{n: 1 for n in NAMES}, **{f"f{k}": 1 for k in range(3)}})]
    for name, holds in (("is_positive", lambda v: v > 0), ("is_nonnegative", lambda v: v >= 0),
                        ("is_negative", lambda v: v < 0), ("is_nonpositive", lambda v: v <= 0)):
        mine, sympys = getattr(d, name), getattr(e, name)
        if sympys is not None:
            assert mine == sympys, name
        if mine is True:
            assert all(holds(v) for v in samples), name
        if mine is False:
            assert not all(holds(v) for v in samples) or not samples, name


@settings(max_examples=200, deadline=None)
@given(trees, st.integers(min_value=1, max_value=12))
def test_division_and_mod_are_sympys(t, k):
    d = ours(t)
    e = _sym.to_sympy(d)
    for got, want in ((dims.floordiv(d, k), sympy.floor(e / k)), (dims.ceildiv(d, k), sympy.ceiling(e / k)),
                      (dims.mod(d, k), sympy.Mod(e, k))):
        assert sympy.simplify(_sym.to_sympy(got) - want) == 0
    q = dims.exact_quotient(dims.mul(d, k), k)
    assert q == d
    if isinstance(d, Poly):
        assert dims.exact_quotient(dims.mul(d, symbol("seq")), symbol("seq")) == d
        assert dims.ratio(dims.mul(d, dims.add(symbol("W"), 1)), dims.add(symbol("W"), 1)) == d


def test_a_fresh_symbol_is_equal_only_to_itself():
    a, b = fresh_symbol(), fresh_symbol()
    assert a != b and a == pickle.loads(pickle.dumps(a)) and compare(a, b).relation == "unknown"
    assert compare(symbol("unk__1"), a).relation == "unknown"
    assert a != symbol(a.name)


def test_pickles_keep_identity_in_process_and_across():
    a = fresh_symbol()
    d = dims.add(dims.mul(symbol("batch"), a), 3)
    assert pickle.loads(pickle.dumps(d)) == d  # the same process: the same fresh symbol
    code = ("import pickle, sys; from shapelint.dims import is_named, symbol\n"
            "d1, d2, a = pickle.loads(sys.stdin.buffer.read())\n"
            "print(d1 == d2, d1 - 3 == symbol('batch') * a, a != symbol(a.name), is_named(a), str(d1))")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps((d, d, a)), capture_output=True, check=True)
    assert out.stdout.decode().strip() == f"True True True False {d}"  # one symbol there, named as here


@pytest.mark.parametrize("text,want", [("batch*64", "batch*64"), ("(H - 3)//2 + 1", "(H - 3)//2 + 1"),
                                       ("s0 + s1", "s0 + s1"), ("2*seq - 1", "seq*2 - 1")])
def test_dim_params_parse_back(text, want):
    assert format_dim(dims.parse_dim(text)) == want


def _child(conn):
    """A forked worker: reads the parent's dim, answers with it and a fresh dim of its own."""
    d = conn.recv()
    mine = fresh_symbol()
    conn.send((d, dims.mul(d, mine), mine))


def test_a_forked_worker_and_its_parent_agree_on_fresh_symbols():
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    a = fresh_symbol()
    d = dims.add(dims.mul(symbol("batch"), a), 1)
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child,))
    proc.start()
    parent.send(d)
    back, prod, theirs = parent.recv()
    proc.join(10)
    assert back == d and hash(back) == hash(d)  # the parent's own fresh symbol, inherited and returned
    assert theirs != a and theirs not in d.free_symbols and not dims.is_named(theirs)
    assert prod == dims.mul(d, theirs) and str(prod)  # the child's symbol is one symbol here, printable
    assert {s for s in prod.free_symbols} == {symbol("batch"), a, theirs}


def test_sympys_other_methods_answer_for_plugins_written_against_sympy_dims():
    d = dims.mul(dims.add(symbol("batch"), 1), 4)
    assert d.expand() == _sym.to_sympy(d) and d.as_coeff_add()[0] == 4
    assert str(d.factor()) == "4*(batch + 1)"
    with pytest.raises(AttributeError):
        d._no_such_private_name  # noqa: B018
