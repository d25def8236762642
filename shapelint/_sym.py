"""The sympy side of :mod:`shapelint.poly`: imported only when a dim is not a polynomial with integer
coefficients (floors of strided sizes, Max/Min, ratios), or a question needs solving."""

from __future__ import annotations

import functools

import sympy

from shapelint import poly as _poly
from shapelint.poly import Poly


class Fresh(sympy.Dummy):
    """A fresh dim's sympy form: a ``sympy.Dummy``, so it never equals any declared symbol.

    A model may declare ``unk__1`` itself (tf2onnx does); a fresh dim named from a counter with the
    same prefix would become that very symbol and be "proven" equal to it.  A Dummy is unique by
    identity, whatever its name; the name (``?1``, ``?2`` ... numbered per file) is for messages only.
    """

    def __new__(cls, name: str):
        return super().__new__(cls, name, integer=True, positive=True)

    def _sympystr(self, printer) -> str:
        return self.name


_ATOM_SYM: dict[int, sympy.Symbol] = {}  # atom -> its sympy symbol
_SYM_ATOM: dict[sympy.Symbol, int] = {}  # and back (a Fresh dummy hashes by identity)


@functools.lru_cache(maxsize=None)
def named_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def atom_symbol(a: int) -> sympy.Symbol:
    s = _ATOM_SYM.get(a)
    if s is None:
        name = _poly._NAMES[a]
        s = named_symbol(name) if _poly._NAMED[a] else Fresh(name)
        _ATOM_SYM[a] = s
        _SYM_ATOM[s] = a
    return s


def poly_to_sympy(p: Poly) -> sympy.Expr:
    terms = []
    for mono, c in p.terms:
        t = sympy.Integer(c)
        for a, e in mono:
            t = t * atom_symbol(a) ** e
        terms.append(t)
    return sympy.Add(*terms)


def to_sympy(x):
    if type(x) is Poly:
        return x._sympy_()
    if type(x) is int:
        return sympy.Integer(x)
    return x


def _atom_of(s) -> int | None:
    a = _SYM_ATOM.get(s)
    if a is not None:
        return a
    if isinstance(s, sympy.Dummy) or not isinstance(s, sympy.Symbol):
        return None  # a dummy that is not one of ours, or a non-symbol atom
    if s != named_symbol(s.name):
        return None  # a symbol with other assumptions: a different symbol
    a = _poly.named(s.name).terms[0][0][0][0]
    _ATOM_SYM.setdefault(a, s)
    _SYM_ATOM[s] = a
    return a


@functools.lru_cache(maxsize=65536)
def from_sympy(e):
    """``e`` as an int or a :class:`Poly` when it is a polynomial with integer coefficients in our symbols;
    otherwise ``e`` itself."""
    if e.is_Integer:
        return int(e)
    syms = e.free_symbols
    if not syms:
        return e
    atoms = {}
    for s in syms:
        a = _atom_of(s)
        if a is None:
            return e
        atoms[s] = a
    gens = sorted(syms, key=lambda s: atoms[s])
    try:
        if not e.is_polynomial(*gens):
            return e
        p = sympy.Poly(e, *gens)
    except (sympy.PolynomialError, sympy.polys.polyerrors.GeneratorsNeeded, TypeError, ValueError):
        return e
    if p.domain != sympy.ZZ and not all(c.is_Integer for c in p.coeffs()):
        return e
    d = {}
    for exps, c in p.terms():
        d[tuple((atoms[g], k) for g, k in zip(gens, exps) if k)] = int(c)
    return _poly._make(d)
