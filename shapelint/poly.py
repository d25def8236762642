"""Exact symbolic dims without a computer-algebra system: polynomials with integer coefficients.

Almost every symbolic dim an exported model has is a named size (``batch``), an anonymous one
(``?3``), or products and sums of those with integers (``batch*64``, ``past + sequence``,
``2*H*W``).  :class:`Poly` holds exactly those, in one canonical form (so ``==`` and ``hash`` are
exact), with plain Python arithmetic: ``check`` of such a model never imports sympy.

Anything that is not a polynomial with integer coefficients (``floor((H - 3)/2)``, ``Max(a, b)``,
``batch/2``) is a sympy expression, built by converting the operands (:meth:`Poly._sympy_`); results
that are polynomials again come back as :class:`Poly` (:func:`canonical`).  The sympy side lives in
:mod:`shapelint._sym`, imported only then.

A symbol is a :class:`Poly` of one term (``symbol("batch")``), as in sympy a ``Symbol`` is an
expression; ``free_symbols`` gives those.  Symbols are positive integers: named ones are the sizes a
model declares, fresh ones (``?N``) are unique by identity whatever their name.
"""

from __future__ import annotations

import os
import sys

__all__ = ["Poly", "named", "fresh", "canonical", "is_sympy"]

# ------------------------------------------------------------------ atoms
# An atom is an int: its name and whether the model declared it are kept in two lists.  Monomials are
# tuples of (atom, exponent) sorted by atom, terms tuples of (monomial, coefficient) sorted by monomial:
# tuples of ints compare and hash natively, so the canonical form costs no sort key.

_NAMES: list[str] = []
_NAMED: list[bool] = []
_MADE_BY: list[str] = []  # the process that made each atom (a forked child inherits its parent's atoms)
_BY_NAME: dict[str, int] = {}
_SYMBOLS: dict[int, "Poly"] = {}  # atom -> its symbol (one object per atom: ``symbol("b") is symbol("b")``)
_FOREIGN: dict[tuple, int] = {}  # (maker, atom) of a fresh atom another process pickled -> ours
_ORIGIN: dict[int, tuple] = {}  # ours -> (maker, atom) where it came from


def _process() -> str:
    """This process, as fresh atoms record it (the pid: a fork is another process with the same lists)."""
    return f"{os.getpid()}-{id(_NAMES)}"


def _atom(name: str, is_named: bool) -> int:
    a = len(_NAMES)
    _NAMES.append(name)
    _NAMED.append(is_named)
    _MADE_BY.append(_process())
    return a


def named(name: str) -> "Poly":
    """The symbol the model calls ``name`` (one per name)."""
    a = _BY_NAME.get(name)
    if a is None:
        a = _BY_NAME[name] = _atom(name, True)
    return _symbol(a)


def fresh(name: str) -> "Poly":
    """A new anonymous symbol: equal to nothing but itself, whatever ``name`` says."""
    return _symbol(_atom(name, False))


def _symbol(a: int) -> "Poly":
    s = _SYMBOLS.get(a)
    if s is None:
        s = _SYMBOLS[a] = Poly._new(((((a, 1),), 1),))
    return s


def _foreign(maker: str, atom: int, name: str) -> "Poly":
    """The fresh atom ``atom`` of process ``maker`` here: the very atom when this process has it (made
    here, or inherited through a fork), else one new atom per (maker, atom)."""
    if atom < len(_MADE_BY) and _MADE_BY[atom] == maker and not _NAMED[atom]:
        return _symbol(atom)
    a = _FOREIGN.get((maker, atom))
    if a is None:
        a = _FOREIGN[maker, atom] = _atom(name, False)
        _ORIGIN[a] = (maker, atom)
    return _symbol(a)


def _rebuild(named_atoms, fresh_atoms, terms):
    """Unpickle: atoms are renumbered into this process's (names by name, fresh ones by origin)."""
    amap = {}
    for a, name in named_atoms:
        amap[a] = named(name).terms[0][0][0][0]
    for a, token, orig, name in fresh_atoms:
        amap[a] = _foreign(token, orig, name).terms[0][0][0][0]
    return _make({tuple(sorted((amap[a], e) for a, e in mono)): c for mono, c in terms})


# ------------------------------------------------------------------ the type

def is_sympy(x) -> bool:
    """True for a sympy object (without importing sympy: none exists before it is imported)."""
    m = sys.modules.get("sympy")
    return m is not None and isinstance(x, m.Basic)


def _make(d: dict):
    """The canonical dim of ``{monomial: coefficient}``: an int when constant, else a Poly."""
    items = sorted(t for t in d.items() if t[1])
    if not items:
        return 0
    if len(items) == 1 and not items[0][0]:
        return items[0][1]
    return Poly._new(tuple(items))


def _as_dict(x) -> dict | None:
    if type(x) is Poly:
        return dict(x.terms)
    if type(x) is int:
        return {(): x} if x else {}
    if type(x) is bool:
        return {(): int(x)} if x else {}
    return None


def _mono_mul(m1: tuple, m2: tuple) -> tuple:
    if not m1:
        return m2
    if not m2:
        return m1
    if len(m1) == 1 and len(m2) == 1:  # two symbols (or powers): the common case, no dict
        (a, e), (b, f) = m1[0], m2[0]
        return ((a, e + f),) if a == b else (m1[0], m2[0]) if a < b else (m2[0], m1[0])
    d = dict(m1)
    for a, e in m2:
        d[a] = d.get(a, 0) + e
    return tuple(sorted(d.items()))


def _sym():
    from shapelint import _sym
    return _sym


class Poly:
    """A polynomial in positive integer symbols with integer coefficients, not constant (see module doc)."""

    __slots__ = ("terms", "_hash", "_sympy", "__weakref__")

    # sympy-compatible flags the code reads on a dim
    is_Integer = False
    is_Number = False
    is_number = False
    is_Rational = False
    is_integer = True

    @classmethod
    def _new(cls, terms: tuple) -> "Poly":
        p = object.__new__(cls)
        p.terms = terms
        p._hash = None
        p._sympy = None
        return p

    def __init__(self, *a, **k):  # pragma: no cover - built only by the functions above
        raise TypeError("use shapelint.poly.named/fresh and arithmetic")

    # ----------------------------------------------------------- identity
    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = hash(self.terms)
        return h

    def __eq__(self, other):
        if type(other) is Poly:
            return self is other or self.terms == other.terms
        if isinstance(other, (int, float)):
            return False  # never constant
        if is_sympy(other):
            return canonical(other) == self if not other.is_number else False
        return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __reduce__(self):
        atoms = self.atoms_()
        nm = tuple((a, _NAMES[a]) for a in atoms if _NAMED[a])
        fr = tuple((a, *_ORIGIN.get(a, (_MADE_BY[a], a)), _NAMES[a]) for a in atoms if not _NAMED[a])
        return _rebuild, (nm, fr, self.terms)

    # ----------------------------------------------------------- what it is
    @property
    def is_Symbol(self) -> bool:
        t = self.terms
        return len(t) == 1 and t[0][1] == 1 and len(t[0][0]) == 1 and t[0][0][0][1] == 1

    @property
    def name(self) -> str:
        if not self.is_Symbol:
            raise AttributeError("only a symbol has a name")
        return _NAMES[self.terms[0][0][0][0]]

    @property
    def named(self) -> bool:
        """For a symbol: did the model declare it (``batch``), or is it fresh (``?3``)."""
        return _NAMED[self.terms[0][0][0][0]]

    def atoms_(self) -> set[int]:
        return {a for m, _ in self.terms for a, _ in m}

    @property
    def free_symbols(self) -> set:
        return {_symbol(a) for a in self.atoms_()}

    def has(self, *things) -> bool:
        atoms = self.atoms_()
        return any(type(t) is Poly and t.is_Symbol and t.terms[0][0][0][0] in atoms for t in things)

    @property
    def degree(self) -> int:
        return max(sum(e for _, e in m) for m, _ in self.terms)

    @property
    def constant(self) -> int:
        t = self.terms[0]
        return t[1] if not t[0] else 0

    def bounds(self) -> tuple:
        """``(low, high)`` over every positive integer value of the symbols (``None`` for unbounded).

        Every monomial is at least 1 and grows with its symbols: with all coefficients of one sign, the
        value at all symbols 1 bounds it on that side, exactly.  Mixed signs bound nothing.
        """
        cs = [c for m, c in self.terms if m]
        at_one = sum(cs) + self.constant
        if all(c > 0 for c in cs):
            return at_one, None
        if all(c < 0 for c in cs):
            return None, at_one
        return None, None

    def _sign(self) -> int:
        """+1 / -1 when the value has that sign for every value of the symbols, else 0."""
        lo, hi = self.bounds()
        return 1 if lo is not None and lo > 0 else -1 if hi is not None and hi < 0 else 0

    def _is(self, at_least=None, above=None, at_most=None, below=None):
        """sympy's three-valued answer to ``value >= at_least`` (etc.): True, False or None."""
        lo, hi = self.bounds()
        if at_least is not None:
            return True if lo is not None and lo >= at_least else False if hi is not None and hi < at_least else None
        if above is not None:
            return True if lo is not None and lo > above else False if hi is not None and hi <= above else None
        if at_most is not None:
            return True if hi is not None and hi <= at_most else False if lo is not None and lo > at_most else None
        return True if hi is not None and hi < below else False if lo is not None and lo >= below else None

    def _or_sympys(self, got, flag: str):
        """Where the bounds cannot tell (mixed signs), sympy's own answer: some it proves (``-H**2 + H - 1``)."""
        return got if got is not None else getattr(self._sympy_(), flag)

    is_positive = property(lambda self: self._or_sympys(self._is(above=0), "is_positive"))
    is_nonnegative = property(lambda self: self._or_sympys(self._is(at_least=0), "is_nonnegative"))
    is_negative = property(lambda self: self._or_sympys(self._is(below=0), "is_negative"))
    is_nonpositive = property(lambda self: self._or_sympys(self._is(at_most=0), "is_nonpositive"))
    is_zero = property(lambda self: self._or_sympys(False if self._sign() else None, "is_zero"))
    is_nonzero = property(lambda self: self._or_sympys(True if self._sign() else None, "is_nonzero"))

    # ----------------------------------------------------------- arithmetic
    def __add__(self, other):
        if type(other) is int:
            if not other:
                return self
            t = self.terms
            if t[0][0]:  # no constant term yet (the constant's monomial () sorts first)
                return Poly._new((((), other),) + t)
            k = t[0][1] + other
            return Poly._new(((((), k),) + t[1:]) if k else t[1:])
        o = _as_dict(other)
        if o is None:
            return _fallback(self, other, "__add__")
        d = dict(self.terms)
        for m, c in o.items():
            d[m] = d.get(m, 0) + c
        return _make(d)

    __radd__ = __add__

    def __neg__(self):
        return Poly._new(tuple((m, -c) for m, c in self.terms))

    def __pos__(self):
        return self

    def __sub__(self, other):
        if type(other) in (int, Poly, bool):
            return self.__add__(-other)
        return _fallback(self, other, "__sub__")

    def __rsub__(self, other):
        if type(other) in (int, bool):
            return (-self).__add__(int(other))
        return _fallback(self, other, "__rsub__")

    def __mul__(self, other):
        if type(other) is int:
            if other == 1:
                return self
            if not other:
                return 0
            return Poly._new(tuple((m, c * other) for m, c in self.terms))
        if type(other) is Poly:
            st, ot = self.terms, other.terms
            if len(st) == 1 and len(ot) == 1:  # monomial times monomial: one term, already canonical
                (m1, c1), (m2, c2) = st[0], ot[0]
                return Poly._new(((_mono_mul(m1, m2), c1 * c2),))
            d: dict = {}
            for m1, c1 in self.terms:
                for m2, c2 in other.terms:
                    m = _mono_mul(m1, m2)
                    d[m] = d.get(m, 0) + c1 * c2
            return _make(d)
        if type(other) is bool:
            return self if other else 0
        return _fallback(self, other, "__mul__")

    __rmul__ = __mul__

    def __pow__(self, n):
        if type(n) is int and 0 <= n <= 64:
            out = 1
            for _ in range(n):
                out = self * out
            return out
        return _fallback(self, n, "__pow__")

    def exact_div(self, other):
        """``self / other`` when it is a polynomial with integer coefficients, else None."""
        if type(other) is int:
            if other == 1:
                return self
            if not other or any(c % other for _, c in self.terms):
                return None
            return Poly._new(tuple((m, c // other) for m, c in self.terms))
        if type(other) is not Poly:
            return None
        if self is other or self.terms == other.terms:
            return 1
        return _poly_div(self, other)

    def _divide(self, other, op: str):
        """``/`` and ``//``: the exact quotient when there is one (both agree then), else sympy's answer."""
        q = self.exact_div(other) if type(other) in (int, Poly) else None
        return q if q is not None else _fallback(self, other, op)

    def __truediv__(self, other):
        return self._divide(other, "__truediv__")

    def __floordiv__(self, other):
        return self._divide(other, "__floordiv__")

    def __rtruediv__(self, other):
        return _fallback(self, other, "__rtruediv__")

    def __rfloordiv__(self, other):
        return _fallback(self, other, "__rfloordiv__")

    def __mod__(self, other):
        if type(other) is int and other > 0 and all(c % other == 0 for m, c in self.terms if m):
            return self.constant % other
        if type(other) in (int, Poly) and self.exact_div(other) is not None:
            return 0
        return _fallback(self, other, "__mod__")

    def __rmod__(self, other):
        return _fallback(self, other, "__rmod__")

    # ----------------------------------------------------------- order (sympy's: bool when decidable)
    def _cmp(self, other, op):
        if type(other) in (int, Poly):
            d = self - other
            if type(d) is int:
                got = {"lt": d < 0, "le": d <= 0, "gt": d > 0, "ge": d >= 0}[op]
            else:
                got = {"lt": d._is(below=0), "le": d._is(at_most=0), "gt": d._is(above=0), "ge": d._is(at_least=0)}[op]
            if got is not None:
                return got
        return getattr(self._sympy_(), f"__{op}__")(_sym().to_sympy(other))

    def __lt__(self, other):
        return self._cmp(other, "lt")

    def __le__(self, other):
        return self._cmp(other, "le")

    def __gt__(self, other):
        return self._cmp(other, "gt")

    def __ge__(self, other):
        return self._cmp(other, "ge")

    def __int__(self):
        raise TypeError(f"cannot convert the symbolic size {self} to int")

    def __index__(self):
        raise TypeError(f"cannot use the symbolic size {self} as an index")

    def __float__(self):
        raise TypeError(f"cannot convert the symbolic size {self} to float")

    # ----------------------------------------------------------- substitution, sympy
    def subs(self, mapping):
        """Replace symbols (Poly symbols or sympy symbols, by atom or by name) with ints or dims."""
        by_atom: dict[int, object] = {}
        for k, v in (mapping.items() if hasattr(mapping, "items") else mapping):
            if type(k) is Poly and k.is_Symbol:
                by_atom[k.terms[0][0][0][0]] = v
            elif isinstance(k, str):
                a = _BY_NAME.get(k)
                if a is not None:
                    by_atom[a] = v
            else:
                c = canonical(k)
                if type(c) is Poly and c.is_Symbol:
                    by_atom[c.terms[0][0][0][0]] = v
        if not by_atom or not (self.atoms_() & by_atom.keys()):
            return self
        out = 0
        for m, c in self.terms:
            term = c
            for a, e in m:
                v = by_atom.get(a)
                f = _symbol(a) if v is None else v
                for _ in range(e):
                    term = term * f
            out = out + term
        return canonical(out)

    xreplace = subs

    def __getattr__(self, name: str):
        """sympy's other methods and flags (``expand()``, ``as_coeff_Mul()``, ``is_even``...) answered by
        the sympy form, for plugins written against sympy dims; this imports sympy."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._sympy_(), name)

    def _sympy_(self):
        s = self._sympy
        if s is None:
            s = self._sympy = _sym().poly_to_sympy(self)
        return s

    # ----------------------------------------------------------- text
    def _factors(self, mono) -> list[str]:
        """sympy's order of a monomial's factors: fresh symbols first (by name), then named ones (by name)."""
        fs = sorted(mono, key=lambda ae: (_NAMED[ae[0]], _NAMES[ae[0]], ae[0]))
        return [_NAMES[a] if e == 1 else f"{_NAMES[a]}**{e}" for a, e in fs]

    def monomial_str(self) -> str | None:
        """sympy's ``str`` of a one-term polynomial (``64*batch``, ``batch*x``, ``-?1``); None for a sum."""
        if len(self.terms) != 1:
            return None
        mono, c = self.terms[0]
        if len(mono) > 1 and any(e > 1 for _, e in mono):
            return None  # sympy orders powers among other factors by its own keys
        body = "*".join(self._factors(mono))
        return body if c == 1 else f"-{body}" if c == -1 else f"{c}*{body}"

    def __str__(self) -> str:
        s = self.monomial_str()
        return s if s is not None else str(self._sympy_())

    __repr__ = __str__


def _fallback(p: Poly, other, op: str):
    """``p <op> other`` in sympy, the result canonical again."""
    sym = _sym()
    out = getattr(p._sympy_(), op)(sym.to_sympy(other))
    if out is NotImplemented:
        return out
    return canonical(out)


def _poly_div(a: Poly, b: Poly):
    """Exact multivariate division; None unless ``b`` divides ``a`` with integer coefficients.

    A one-term divisor divides term by term; otherwise long division in lexicographic order, which is a
    monomial order, so it stops, and it answers exactly (no remainder) or None.
    """
    if len(b.terms) == 1:
        (bm, bc), = b.terms
        bd = dict(bm)
        out = {}
        for m, c in a.terms:
            if c % bc:
                return None
            dm = dict(m)
            for x, e in bd.items():
                if dm.get(x, 0) < e:
                    return None
                dm[x] -= e
            out[tuple(sorted((x, e) for x, e in dm.items() if e))] = c // bc
        return _make(out)
    atoms = sorted(a.atoms_() | b.atoms_())

    def key(m):
        dm = dict(m)
        return tuple(dm.get(x, 0) for x in atoms)

    rem = dict(a.terms)
    quot: dict = {}
    bm, bc = max(b.terms, key=lambda t: key(t[0]))
    for _ in range(64 * (len(a.terms) + 1)):
        if not rem:
            return _make(quot)
        m, c = max(rem.items(), key=lambda t: key(t[0]))
        if c % bc:
            return None
        dm = dict(m)
        for x, e in bm:
            if dm.get(x, 0) < e:
                return None
            dm[x] -= e
        qm = tuple(sorted((x, e) for x, e in dm.items() if e))
        qc = c // bc
        quot[qm] = quot.get(qm, 0) + qc
        for m2, c2 in b.terms:
            mm = _mono_mul(qm, m2)
            v = rem.get(mm, 0) - qc * c2
            if v:
                rem[mm] = v
            else:
                rem.pop(mm, None)
    return None


def canonical(x):
    """The canonical form of a dim: an int, a :class:`Poly`, or (when neither) the sympy expression."""
    t = type(x)
    if t is int or t is Poly or x is None:
        return x
    if t is bool:
        return int(x)
    if is_sympy(x):
        return _sym().from_sympy(x)
    return x


