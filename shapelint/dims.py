"""Symbolic dimension algebra.

A dimension is a Python ``int`` (static), a :class:`~shapelint.poly.Poly` (a polynomial with integer
coefficients over positive integer symbols: ``batch``, ``batch*64``, ``past + sequence``), a
:mod:`sympy` expression for anything else (``floor((H - 3)/2) + 1``, ``Max(a, b)``), or ``None``
(nothing is known).  A shape is a tuple of dimensions, or ``None`` when even the rank is unknown.

Each dim has one canonical form (a sympy result that is a polynomial becomes a ``Poly``), so ``==``
is exact.  sympy is imported only when a model needs it: the fast path is plain Python.

Everything here is pure and cached: exported graphs repeat the same few
expressions thousands of times.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Union

from shapelint import poly as _poly
from shapelint.poly import Poly, canonical, is_sympy

__all__ = [
    "Dim",
    "Shape",
    "Relation",
    "symbol",
    "fresh_symbol",
    "is_static",
    "is_named",
    "parse_dim",
    "format_dim",
    "format_shape",
    "compare",
    "add",
    "sub",
    "mul",
    "floordiv",
    "ceildiv",
    "mod",
    "product",
    "simplify",
    "free_names",
    "free_symbols",
    "is_symbol",
    "is_symbolic",
    "exact_quotient",
    "ratio",
    "has_floor",
    "sympy_call",
    "Poly",
]

logger = logging.getLogger(__name__)

Dim = Union[int, Poly, Any, None]  # Any: a sympy expression
Shape = Union[tuple, None]

_fresh_counter = itertools.count(1)


def _sympy():
    import sympy

    return sympy


def _sym():
    from shapelint import _sym

    return _sym


def _arith_errors() -> tuple:
    errors = (TypeError, ValueError, ZeroDivisionError, OverflowError)
    sympy = sys.modules.get("sympy")
    return errors + (sympy.PolynomialError,) if sympy is not None else errors


def reset_fresh() -> None:
    """Number fresh dims from ``?1`` again (one model's inference starts)."""
    global _fresh_counter
    _fresh_counter = itertools.count(1)


def symbol(name: str) -> Poly:
    """Return the positive integer symbol called ``name``.

    >>> symbol("batch") * 2
    2*batch
    """
    return _poly.named(name)


def fresh_symbol() -> Poly:
    """A new anonymous dimension (``?N``): unknown, but the same wherever it flows.

    >>> a, b = fresh_symbol(), fresh_symbol()
    >>> a == b, a == symbol(a.name)
    (False, False)
    """
    global _fresh_made
    _fresh_made += 1
    return _poly.fresh(f"?{next(_fresh_counter)}")


_fresh_made = 0  # fresh dims made since the process started (never reset): "did this step make one?"


def fresh_made() -> int:
    """How many fresh dims have been made so far: equal before and after a step that made none."""
    return _fresh_made


def is_static(d: Dim) -> bool:
    """True for a known integer dimension."""
    return isinstance(d, int)


def is_named(sym) -> bool:
    """True for a symbol the model declared (``batch``, ``s0``, tf2onnx's ``unk__3``), false for a fresh one."""
    if type(sym) is Poly:
        return sym.named
    return not isinstance(sym, _sympy().Dummy)


def is_symbolic(d) -> bool:
    """True for a dim that is neither unknown nor an int: a :class:`Poly` or a sympy expression."""
    return d is not None and type(d) is not int and (type(d) is Poly or is_sympy(d))


def is_symbol(d) -> bool:
    """True for one symbol (``batch``, ``?3``), as a Poly or as sympy's."""
    if type(d) is Poly:
        return d.is_Symbol
    return is_sympy(d) and d.is_Symbol


def free_symbols(d: Dim) -> set:
    """The symbols in ``d``, as ``Poly`` symbols (also for a sympy expression's, where they are ours)."""
    if d is None or type(d) is int:
        return set()
    if type(d) is Poly:
        return d.free_symbols
    if not is_sympy(d):
        return set()
    return {canonical(s) for s in d.free_symbols}


def free_names(d: Dim) -> set[str]:
    """Names of the user-declared symbols in ``d``."""
    if d is None or isinstance(d, int):
        return set()
    if type(d) is Poly:
        return {s.name for s in d.free_symbols if s.named}
    return {s.name for s in d.free_symbols if is_named(s)}


def simplify(d: Dim) -> Dim:
    """Normalise: the canonical form (an int, a Poly, or a sympy expression that is neither)."""
    if d is None or type(d) is int or type(d) is Poly:
        return d
    if isinstance(d, bool):
        return int(d)
    if is_sympy(d):
        return canonical(d) if d.is_Integer or isinstance(d, _sympy().Expr) else d
    try:
        return int(d)
    except (TypeError, ValueError):
        return None


def _binary(fn):
    @functools.wraps(fn)
    def wrapper(a: Dim, b: Dim) -> Dim:
        if a is None or b is None:
            return None
        try:
            return simplify(fn(a, b))
        except Exception as exc:  # sympy's errors are caught only where sympy was used
            if isinstance(exc, _arith_errors()):
                return None
            raise

    return wrapper


@_binary
def add(a, b):
    return a + b


@_binary
def sub(a, b):
    return a - b


@_binary
def mul(a, b):
    return a * b


def exact_quotient(a: Dim, b: Dim) -> Dim:
    """``a / b`` when it is an int or a Poly (``b`` divides ``a`` exactly), else None."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        return a // b if b and a % b == 0 else None
    if ta is Poly and tb in (int, Poly):
        return a.exact_div(b)
    return None


def has_floor(d: Dim) -> bool:
    """True for a sympy expression with a floor in it (a Poly, an int, None have none)."""
    return is_sympy(d) and d.has(_sympy().floor)


def sympy_call(name: str, *args) -> Dim:
    """sympy's ``name`` (``Max``, ``Min``...) of dims, canonical again."""
    sym = _sym()
    return canonical(getattr(_sympy(), name)(*map(sym.to_sympy, args)))


def ratio(a: Dim, b: Dim):
    """``a / b``, canonical (cached: models repeat the same few shapes); None if undecidable.

    An exact quotient is an int or a Poly; anything else (``3/2``, ``batch/seq``) a sympy expression.
    """
    if a is None or b is None:
        return None
    q = exact_quotient(a, b)
    if q is not None:
        return q
    return _ratio_sympy(a, b)


@functools.lru_cache(maxsize=65536)
def _ratio_sympy(a, b):
    sympy, sym = _sympy(), _sym()
    try:
        return canonical(sympy.cancel(sym.to_sympy(a) / sym.to_sympy(b)))
    except (TypeError, ValueError, ZeroDivisionError, sympy.PolynomialError):
        return None


@_binary
def floordiv(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if b == 1:
        return a
    q = exact_quotient(a, b)
    if q is not None:
        return q
    return _floordiv_cached(a, b)


@functools.lru_cache(maxsize=65536)
def _floordiv_cached(a, b):
    sympy, sym = _sympy(), _sym()
    q = ratio(a, b) if not isinstance(b, int) else sym.to_sympy(a) / sympy.Integer(b)
    if q is None:
        return None
    if type(q) in (int, Poly):
        return q
    q = sympy.expand(sym.to_sympy(q))
    if q.is_Number:  # 3N / 2N: a plain ratio, no generators for Poly
        return sympy.floor(q)
    if q.is_integer or (q.is_polynomial() and all(c.is_integer for c in sympy.Poly(q).coeffs())):
        return q
    return sympy.floor(q)


@_binary
def ceildiv(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return -(-a // b)
    q = exact_quotient(a, b)
    if q is not None:
        return q
    sympy, sym = _sympy(), _sym()
    q = sympy.expand(sym.to_sympy(a) / sym.to_sympy(b))
    if q.is_integer:
        return q
    return sympy.ceiling(q)


@_binary
def mod(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a % b
    if type(a) is Poly:
        return a % b  # exact where the coefficients tell, sympy's Mod otherwise
    if exact_quotient(a, b) is not None:
        return 0
    sym = _sym()
    return _sympy().Mod(sym.to_sympy(a), sym.to_sympy(b))


def product(dims) -> Dim:
    """Product of dims; ``None`` if any is unknown.

    >>> product([2, symbol("batch"), 3])
    6*batch
    """
    dims = tuple(dims)
    if all(type(d) is int for d in dims):
        out = 1
        for d in dims:
            out *= d
        return out
    if any(d is None for d in dims):
        return None
    return _product_cached(dims)


@functools.lru_cache(maxsize=65536)
def _product_cached(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        out = mul(out, d)
        if out is None:
            return None
    return out


class Relation:
    """Outcome of comparing two dims."""

    EQUAL = "equal"  # proven equal for every value of the symbols
    DIFFERENT = "different"  # proven different for every value
    UNKNOWN = "unknown"  # depends on unknown dims
    ONLY_WHEN = "only_when"  # equal only for particular values of named symbols


@dataclass(frozen=True)
class Comparison:
    relation: str
    # for ONLY_WHEN: {symbol name: value} bindings that make both sides equal
    when: tuple = ()

    def __bool__(self) -> bool:  # pragma: no cover - guard against misuse
        raise TypeError("use .relation")

    def describe(self) -> str:
        return " or ".join(f"{k} == {v}" for k, v in self.when)


_EQUAL, _DIFFERENT, _UNKNOWN = Comparison(Relation.EQUAL), Comparison(Relation.DIFFERENT), Comparison(Relation.UNKNOWN)


def _compare_poly(a, b) -> Comparison | None:
    """:func:`compare` of ints and Polys without sympy, where the answer is certainly sympy's; None to
    ask sympy.

    The difference is exact: zero is equal, a nonzero int is different, a fresh symbol makes it unknown,
    terms of one sign (``-5*B*T``, ``B + T + 1``) never cancel, a linear form in several symbols with both
    signs (``B - T``) is unknown.  Taking out the monomial every term shares (``B - B*T`` is
    ``B*(1 - T)``), what is left is ``c*s + k`` in one named symbol: zero only at ``s = -k/c``.  And
    ``c*m + k`` with ``m`` a product of several symbols and ``|c| <= |k|`` of opposite signs is zero for
    some sizes and not others, which sympy leaves unknown too (its factors each keep several symbols).
    """
    diff = a - b
    if type(diff) is int:
        return _EQUAL if diff == 0 else _DIFFERENT
    atoms = diff.atoms_()
    if not all(_poly._NAMED[x] for x in atoms):
        return _UNKNOWN
    terms = diff.terms
    if len(terms) == 1 or len({c > 0 for _, c in terms}) == 1:
        return _DIFFERENT  # one sign throughout: products of positive sizes never cancel
    if diff.degree == 1 and len(atoms) > 1:
        return _UNKNOWN  # 2*b - s: zero where s == 2*b, and sympy never solves for two symbols
    common = dict(terms[0][0])
    for m, _ in terms[1:]:
        dm = dict(m)
        common = {x: min(e, dm[x]) for x, e in common.items() if x in dm}
    rest = diff.exact_div(_poly._make({tuple(sorted(common.items())): 1})) if common else diff
    if type(rest) is Poly and rest.degree == 1 and len(rest.atoms_()) == 1:
        (x,) = rest.atoms_()
        k = rest.constant
        c = next(c for m, c in rest.terms if m)
        if k % c == 0 and -k // c > 0:
            return Comparison(Relation.ONLY_WHEN, ((_poly._NAMES[x], -k // c),))
        if not common:
            return _DIFFERENT  # no positive integer root
        return None
    if len(terms) == 2 and not terms[0][0]:
        (_, k), (m, c) = terms
        if len(m) > 1 and (c > 0) != (k > 0) and abs(c) <= abs(k):
            return _UNKNOWN
    return None


@functools.lru_cache(maxsize=65536)
def _compare_cached(a, b) -> Comparison:
    if type(a) in (int, Poly) and type(b) in (int, Poly):
        got = _compare_poly(a, b)
        if got is not None:
            return got
    return _compare_sympy(a, b)


def _compare_sympy(a, b) -> Comparison:
    """:func:`compare` in sympy: the general case (and the reference the fast path is tested against)."""
    sympy, sym = _sympy(), _sym()
    diff = sympy.expand(sym.to_sympy(a) - sym.to_sympy(b))
    if diff == 0:
        return Comparison(Relation.EQUAL)
    if diff.is_number:
        return Comparison(Relation.DIFFERENT)
    syms = diff.free_symbols
    if any(not is_named(s) for s in syms):
        return Comparison(Relation.UNKNOWN)
    if len(syms) == 1 and diff.has(sympy.floor, sympy.ceiling, sympy.Mod):
        # floors of strided sizes: exact over one period, where sympy.solve is slow and mostly gives up
        got = periodic_equality(a, b)
        if got == "always":
            return Comparison(Relation.EQUAL)
        if got == "never":
            return Comparison(Relation.DIFFERENT)
        if got is not None:
            return Comparison(Relation.UNKNOWN)  # equal for a periodic set of sizes: a precondition, not one value
    # positive integer symbols: a sign-definite difference is never zero
    if diff.is_positive or diff.is_negative:
        return Comparison(Relation.DIFFERENT)
    if len(syms) > 1:
        # 96*batch*(seq - 16): drop the factors that are never zero
        factored = sympy.factor(diff)
        parts = factored.args if factored.is_Mul else (factored,)
        rest = [g for g in parts if not (g.is_positive or g.is_negative)]
        if len(rest) == 1 and len(rest[0].free_symbols) == 1:
            diff = rest[0]
            syms = diff.free_symbols
            a, b = diff, 0
    if len(syms) == 1:
        (s,) = syms
        try:
            sols = sympy.solve(sympy.Eq(sym.to_sympy(a), sym.to_sympy(b)), s)
        except (NotImplementedError, ValueError, TypeError):
            return Comparison(Relation.UNKNOWN)
        ints = [int(v) for v in sols if getattr(v, "is_integer", False) and v > 0]
        if not sols:
            return Comparison(Relation.DIFFERENT)
        if ints and len(ints) == len(sols):
            return Comparison(Relation.ONLY_WHEN, tuple((s.name, v) for v in ints))
        if not ints and all(getattr(v, "is_number", False) for v in sols):
            return Comparison(Relation.DIFFERENT)
    return Comparison(Relation.UNKNOWN)


# ---------------------------------------------------------- periodic equalities
#: the longest period a conditional equality is searched over (product of the strides involved)
MAX_PERIOD = 4096


def _compile(e):
    """``e`` as a function of a dict of Fractions, exactly (floor, ceiling, Mod included); None if it has
    anything else (Max, Min, powers of symbols...)."""
    sympy = _sympy()
    e = _sym().to_sympy(e)
    if e.is_Integer or e.is_Rational:
        v = Fraction(int(e.p), int(e.q))
        return lambda env: v
    if e.is_Symbol:
        name = e
        return lambda env: env[name]
    args = [_compile(a) for a in e.args]
    if any(a is None for a in args):
        return None
    if e.is_Add:
        return lambda env: sum((a(env) for a in args), Fraction(0))
    if e.is_Mul:
        def mul(env):
            out = Fraction(1)
            for a in args:
                out *= a(env)
            return out
        return mul
    if isinstance(e, sympy.floor):
        (a,) = args
        return lambda env: Fraction(math.floor(a(env)))
    if isinstance(e, sympy.ceiling):
        (a,) = args
        return lambda env: Fraction(math.ceil(a(env)))
    if isinstance(e, sympy.Mod):
        a, b = args
        return lambda env: a(env) % b(env) if b(env) else None
    return None


def _period(e) -> int:
    """A period of ``e`` in its symbol when ``e`` is quasi-linear (floors of rational-linear terms)."""
    sympy = _sympy()
    if e.is_Rational:
        return 1
    if e.is_Symbol:
        return 1
    inner = 1
    for a in e.args:
        inner = math.lcm(inner, _period(a))
        if inner > MAX_PERIOD:
            return MAX_PERIOD + 1
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        den = 1
        for r in e.args[0].atoms(sympy.Rational):
            den = math.lcm(den, int(r.q))
        return inner * den
    if isinstance(e, sympy.Mod) and e.args[1].is_Integer:
        return inner * abs(int(e.args[1]))
    return inner


@functools.lru_cache(maxsize=4096)
def periodic_equality(a: Dim, b: Dim):
    """When ``a == b`` holds for some but not all sizes of their one named symbol, periodically:
    ``(symbol, modulus, residues)``; ``"always"`` or ``"never"`` when it holds for every size or for
    none; None otherwise (two symbols, fresh dims, Max/Min, or a difference that grows).

    The sizes are quasi-linear in the symbol (floors of strided sizes), so their difference repeats with
    a period the strides give; evaluated exactly over two periods, its zeros are the condition.

    >>> H = symbol("H")
    >>> periodic_equality(2 * sympy.ceiling(H / 2), H)
    ('H', 2, (0,))
    """
    if a is None or b is None or (isinstance(a, int) and isinstance(b, int)):
        return None
    if type(a) in (int, Poly) and type(b) in (int, Poly):
        return None  # no floor, ceiling or Mod in a polynomial
    sympy, sym = _sympy(), _sym()
    try:
        diff = sym.to_sympy(a) - sym.to_sympy(b)
    except (TypeError, ValueError):
        return None
    syms = diff.free_symbols
    if len(syms) != 1:
        return None
    (s,) = syms
    if not is_named(s) or not diff.has(sympy.floor, sympy.ceiling, sympy.Mod):
        return None
    period = _period(diff)
    if period > MAX_PERIOD:
        return None
    fn = _compile(diff)
    if fn is None:
        return None
    try:
        vals = [fn({s: Fraction(v)}) for v in range(1, 2 * period + 1)]
    except (TypeError, ZeroDivisionError):
        return None
    if any(v is None for v in vals) or vals[:period] != vals[period:]:
        return None  # not periodic: the two sides grow apart
    hits = [v == 0 for v in vals[:period]]
    if all(hits):
        return "always"
    if not any(hits):
        return "never"
    residues = {(k + 1) % period for k, h in enumerate(hits) if h}
    for m in sorted(d for d in range(1, period + 1) if period % d == 0):
        if all(((r % m) in {x % m for x in residues}) == (r in residues) for r in range(period)):
            return s.name, m, tuple(sorted({x % m for x in residues}))
    return s.name, period, tuple(sorted(residues))


def compare(a: Dim, b: Dim) -> Comparison:
    """Compare two dims symbolically.

    >>> compare(symbol("batch") * 4, 8).relation
    'only_when'
    >>> compare(symbol("batch") * 4, 8).describe()
    'batch == 2'
    >>> compare(3, 4).relation
    'different'
    """
    if a is None or b is None:
        return _UNKNOWN
    if isinstance(a, int) and isinstance(b, int):
        return _EQUAL if a == b else _DIFFERENT
    if a is b or a == b:
        return _EQUAL
    try:
        return _compare_cached(a, b)
    except (TypeError, ValueError, RecursionError):  # pragma: no cover - sympy corner cases
        return Comparison(Relation.UNKNOWN)


# ---------------------------------------------------------------- text form

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:/\-]*$")
_TOKEN = re.compile(r"\s*(?:(\d{1,12})|([A-Za-z_][A-Za-z0-9_]*)|(//|[-+*/(),]))")
_FUNCS = ("floor", "ceiling", "Mod", "Max", "Min")  # sympy's, imported when a dim_param uses one


class _Parser:
    """Recursive descent over ``+ - * / // ( ) ,``, integers, names and floor/ceiling/Mod/Max/Min.

    Never ``eval``: a ``dim_param`` is untrusted text from the model file.
    No powers, so no expression can blow up.
    """

    MAX_LEN, MAX_DEPTH = 256, 32

    def __init__(self, text: str):
        if len(text) > self.MAX_LEN:
            raise ValueError("too long")
        self.tokens = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ValueError(f"unexpected character at {pos}")
            self.tokens.append(m.group(1) or m.group(2) or m.group(3))
            pos = m.end()
        self.i = 0
        self.depth = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected=None):
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected!r}")
        self.i += 1
        return tok

    def parse(self):
        out = self.expr()
        if self.peek() is not None:
            raise ValueError("trailing text")
        return out

    def expr(self):
        self.depth += 1
        if self.depth > self.MAX_DEPTH:
            raise ValueError("nested too deep")
        out = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            out = out + rhs if op == "+" else out - rhs
        self.depth -= 1
        return out

    def term(self):
        out = self.factor()
        while self.peek() in ("*", "/", "//"):
            op = self.take()
            rhs = self.factor()
            if op == "*":
                out = out * rhs
            elif op == "//":
                q = exact_quotient(out, rhs)
                out = q if q is not None else _sympy().floor(_sym().to_sympy(out) / _sym().to_sympy(rhs))
            else:
                q = exact_quotient(out, rhs)
                out = q if q is not None else _sym().to_sympy(out) / _sym().to_sympy(rhs)
        return out

    def factor(self):
        tok = self.take()
        if tok == "-":
            return -self.factor()
        if tok == "(":
            out = self.expr()
            self.take(")")
            return out
        if tok.isdigit():
            return int(tok)
        if tok in _FUNCS:
            self.take("(")
            args = [self.expr()]
            while self.peek() == ",":
                self.take()
                args.append(self.expr())
            self.take(")")
            return canonical(getattr(_sympy(), tok)(*map(_sym().to_sympy, args)))
        if tok[0].isalpha() or tok[0] == "_":
            return symbol(tok)
        raise ValueError(f"unexpected {tok!r}")


_parse_cache: dict[str, Dim] = {}


def parse_dim(text: str) -> Dim:
    """Parse a ``dim_param`` string back into a dim.

    Plain names (``batch``, ``sequence_length``, even ``dynamic_axes_1`` or
    ``s0``) become one symbol.  Expressions written by shapelint
    (``batch*64``, ``(H - 3)//2 + 1``) are parsed into sympy.

    >>> format_dim(parse_dim("batch*64"))
    'batch*64'
    """
    if text in _parse_cache:
        return _parse_cache[text]
    out: Dim
    if _IDENT.match(text) and "//" not in text:  # "H//2" is shapelint's own floor division, not a name
        out = symbol(text)
    else:
        try:
            out = simplify(_Parser(text).parse())
        except (ValueError, TypeError, ZeroDivisionError, RecursionError):
            out = symbol(text)  # anything else is one opaque dim, never evaluated
        if not (type(out) in (int, Poly) or (is_sympy(out) and isinstance(out, _sympy().Expr))):
            out = symbol(text)
    if len(_parse_cache) < 100_000:
        _parse_cache[text] = out
    return out


def format_dim(d: Dim) -> str:
    """Human and ``dim_param`` form: symbols first, then coefficients.

    >>> format_dim(symbol("batch") * 64)
    'batch*64'
    >>> format_dim(None)
    '?'
    """
    if d is None:
        return "?"
    if isinstance(d, int):
        return str(d)
    if type(d) is Poly:
        return _format_poly(d)
    return _format_expr(d)


def _format_poly(p: Poly) -> str:
    """:func:`_format_expr` of a Poly, without sympy where its order is plain: one term, or a sum of
    degree-1 terms in named symbols (sympy sorts those by name, the constant last)."""
    terms = p.terms
    if len(terms) == 1 and p.monomial_str() is not None:
        (mono, c), = terms
        body = "*".join(p._factors(mono))
        if c == 1:
            return body
        if c == -1:
            return f"-{body}"
        return f"{body}*{c}" if c > 0 else f"-{body}*{-c}"
    names, named = _poly._NAMES, _poly._NAMED
    if any(m and (len(m) > 1 or m[0][1] > 1 or not named[m[0][0]]) for m, _ in terms):
        return _format_expr(p._sympy_())  # sympy's order of products, powers and fresh symbols in a sum
    lin = sorted((t for t in terms if t[0]), key=lambda t: names[t[0][0][0]])
    k = p.constant
    out = ""
    for mono, c in lin:
        name = names[mono[0][0]]
        part = name if abs(c) == 1 else f"{name}*{abs(c)}"
        out = (("-" if c < 0 else "") + part) if not out else out + (f" - {part}" if c < 0 else f" + {part}")
    if k:
        out += f" - {-k}" if k < 0 else f" + {k}"
    return out


@functools.lru_cache(maxsize=65536)
def _format_expr(e) -> str:
    sympy = _sympy()
    e = _sym().to_sympy(e)
    if isinstance(e, sympy.Mul):
        coeff, rest = e.as_coeff_Mul()
        if coeff != 1 and coeff.is_Integer:
            inner = _format_expr(rest)
            if isinstance(rest, sympy.Add):
                inner = f"({inner})"
            if coeff == -1:
                return f"-{inner}"
            return f"{inner}*{coeff}" if coeff > 0 else f"-{inner}*{-coeff}"
    if isinstance(e, sympy.floor):
        arg = e.args[0]
        num, den = sympy.fraction(sympy.together(arg))
        if den.is_Integer and den != 1:
            n = _format_expr(num)
            if not (num.is_Symbol or num.is_Integer):
                n = f"({n})"
            return f"{n}//{den}"
    if isinstance(e, sympy.Add):
        terms = sorted(e.args, key=lambda t: (t.is_number, sympy.default_sort_key(t)))
        out = _format_expr(terms[0])
        for t in terms[1:]:
            if t.is_number and t < 0:
                out += f" - {-t}"
            elif isinstance(t, sympy.Mul) and t.as_coeff_Mul()[0] < 0:
                out += f" - {_format_expr(-t)}"
            else:
                out += f" + {_format_expr(t)}"
        return out
    return str(e)


def format_shape(shape: Shape) -> str:
    """``(batch, 3, 224, 224)``, ``(?)`` for unknown rank.

    >>> format_shape((symbol("batch"), 3))
    '(batch, 3)'
    """
    if shape is None:
        return "(?)"
    if len(shape) == 1:
        return f"({format_dim(shape[0])},)"
    return "(" + ", ".join(format_dim(d) for d in shape) + ")"
