"""Input constraints: the conditions on the graph inputs' dynamic dims that inference needed to accept a graph.

Some equalities hold only for some sizes: an FPN adds a lateral map of ``ceil(H/16)`` rows to an
upsampled one of ``2*ceil(H/32)`` rows, equal exactly when ``H % 32`` is 0 or 31; a Slice of the first
``seq`` rows of a 512-row positional table is ``seq`` long only while ``seq <= 512``.  Inference carries
such an equality as conditional: it goes on with the equal size and records the condition here, on
:attr:`ShapeTable.constraints <shapelint.infer.table.ShapeTable>`, instead of assuming it silently.
A precondition the architecture needs (strides, tables) is a property of the model, not a finding; an
equality that holds for a single value of a dim (``batch == 4``) stays a conflict (SL501) and is listed
here too.

:func:`summary` turns a model's constraints into one line (``H, W multiples of 32; seq <= 512``) and
:func:`satisfying` moves a binding of the dims to the nearest sizes that meet them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from ..dims import MAX_PERIOD, Dim, format_dim, is_named, periodic_equality, simplify
from ..poly import Poly

__all__ = [
    "Constraint",
    "from_conflicts",
    "meet_preconditions",
    "periodic_equality",
    "require_at_most",
    "require_equal_when",
    "require_positive",
    "satisfying",
    "summary",
]

@dataclass(frozen=True)
class Constraint:
    """One condition on a graph input's dim ``symbol``.

    ``kind`` is ``mod`` (``symbol % modulus`` in ``residues``), ``le`` (``symbol <= bound``), ``ge``
    (``symbol >= bound``: a window that must fit) or ``eq`` (``symbol == bound``); ``node`` and ``op_type`` name where inference needed it, ``why`` says what.
    """

    symbol: str
    kind: str
    modulus: int = 0
    residues: tuple = ()
    bound: int = 0
    node: str | None = None
    op_type: str | None = None
    why: str = ""
    #: True for a condition the architecture needs; False for one that holds for a single value (SL501)
    precondition: bool = True

    @property
    def text(self) -> str:
        if self.kind == "mod":
            if self.residues == (0,):
                return f"{self.symbol} % {self.modulus} == 0"
            return f"{self.symbol} % {self.modulus} in {{{', '.join(map(str, self.residues))}}}"
        if self.kind == "le":
            return f"{self.symbol} <= {self.bound}"
        if self.kind == "ge":
            return f"{self.symbol} >= {self.bound}"
        return f"{self.symbol} == {self.bound}"

    def holds(self, value: int) -> bool:
        if self.kind == "mod":
            return value % self.modulus in self.residues
        if self.kind == "le":
            return value <= self.bound
        if self.kind == "ge":
            return value >= self.bound
        return value == self.bound

    def to_json(self) -> dict:
        out = {"symbol": self.symbol, "kind": self.kind, "text": self.text, "node": self.node, "op_type": self.op_type,
               "why": self.why, "precondition": self.precondition}
        if self.kind == "mod":
            out.update(modulus=self.modulus, residues=list(self.residues))
        else:
            out["bound"] = self.bound
        return out


# ----------------------------------------------------------------- recording
def _record(ctx, c: Constraint) -> None:
    table = ctx.table
    if c not in table.constraints:
        table.constraints.append(c)


def require_equal_when(ctx, a: Dim, b: Dim, why: str) -> bool:
    """Record the condition under which ``a == b`` when it is periodic in one input dim; True if recorded
    (or the equality always holds), so the caller carries on with the two as equal."""
    got = periodic_equality(a, b)
    if got is None or got == "never":
        return False
    if got == "always":
        return True
    name, modulus, residues = got
    node = ctx.node
    _record(ctx, Constraint(name, "mod", modulus=modulus, residues=residues, node=node.name or None,
                            op_type=node.op_type, why=f"{why}: {format_dim(a)} == {format_dim(b)}"))
    return True


def _one_named_symbol(d: Dim):
    """The one symbol ``d`` is written in when the model named it (``T`` of ``(T - 16)//8 + 1``), else None."""
    if d is None or isinstance(d, int):
        return None
    syms = d.free_symbols
    if len(syms) != 1:
        return None
    (s,) = syms
    return s if is_named(s) else None


def require_at_most(ctx, d: Dim, bound: int, why: str) -> bool:
    """Record ``d <= bound`` where ``d`` is one input dim (plus a constant); True if recorded."""
    s = _one_named_symbol(d)
    if s is None:
        return False
    off = simplify(d - s)
    if type(off) is not int:
        return False
    node = ctx.node
    _record(ctx, Constraint(s.name, "le", bound=int(bound - off), node=node.name or None, op_type=node.op_type,
                            why=f"{why}: {format_dim(d)} <= {bound}"))
    return True


def require_positive(ctx, d: Dim, why: str) -> bool:
    """A strided size such as ``(T - 16)//8 + 1`` is at least 1 only from some ``T`` on: record ``T >= that``."""
    s = _one_named_symbol(d)
    if s is None:
        return False
    if type(d) is Poly:
        def fn(env):
            return d.subs({s: int(env[s])})
    else:
        from .._sym import to_sympy
        from ..dims import _compile

        fn, s = _compile(d), to_sympy(s)
    if fn is None:
        return False
    try:
        low = next((v for v in range(1, MAX_PERIOD + 1) if fn({s: Fraction(v)}) >= 1), None)
    except (TypeError, ZeroDivisionError):
        return False
    if low is None or low <= 1:
        return False
    node = ctx.node
    _record(ctx, Constraint(s.name, "ge", bound=low, node=node.name or None, op_type=node.op_type,
                            why=f"{why}: {format_dim(d)} >= 1"))
    return True


def from_conflicts(table) -> list[Constraint]:
    """The "valid only when name == value" conflicts of a table, as ``eq`` constraints (not preconditions)."""
    out = []
    for c in table.conflicts:
        if c.relation != "only_when" or c.when is None or len(c.when.when) != 1:
            continue
        ((name, value),) = c.when.when
        got = Constraint(name, "eq", bound=int(value), node=c.node.name or None, op_type=c.node.op_type,
                         why=c.message, precondition=False)
        if got not in out:
            out.append(got)
    return out


# ----------------------------------------------------------------- summaries
@dataclass
class _Sizes:
    modulus: int = 1
    residues: set = field(default_factory=lambda: {0})
    le: int | None = None
    ge: int | None = None
    eq: set = field(default_factory=set)

    def add(self, c: Constraint) -> None:
        if c.kind == "mod":
            m = math.lcm(self.modulus, c.modulus)
            if m > MAX_PERIOD:
                return
            mine = {r for r in range(m) if r % self.modulus in self.residues}
            theirs = {r for r in range(m) if r % c.modulus in c.residues}
            self.modulus, self.residues = m, mine & theirs
        elif c.kind == "le":
            self.le = c.bound if self.le is None else min(self.le, c.bound)
        elif c.kind == "ge":
            self.ge = c.bound if self.ge is None else max(self.ge, c.bound)
        else:
            self.eq.add(c.bound)

    def ok(self, v: int) -> bool:
        return (v % self.modulus in self.residues and (self.le is None or v <= self.le)
                and (self.ge is None or v >= self.ge) and (not self.eq or v in self.eq))

    def phrase(self, plural: bool) -> str:
        parts = []
        if self.modulus > 1:
            if self.residues == {0}:
                parts.append(f"multiple{'s' if plural else ''} of {self.modulus}")
            elif not self.residues:
                parts.append("no size")
            else:
                parts.append(f"% {self.modulus} in {{{', '.join(map(str, sorted(self.residues)))}}}")
        if self.ge is not None:
            parts.append(f"≥ {self.ge}")
        if self.le is not None:
            parts.append(f"≤ {self.le}")
        if self.eq:
            parts.append(" or ".join(f"== {v}" for v in sorted(self.eq)))
        return ", ".join(parts)


def _by_symbol(constraints) -> dict[str, _Sizes]:
    out: dict[str, _Sizes] = {}
    for c in constraints:
        out.setdefault(c.symbol, _Sizes()).add(c)
    return out


def summary(constraints) -> str:
    """``H, W multiples of 32; seq ≤ 512``: the sizes the model accepts, symbols with the same condition
    grouped; empty when nothing restricts them."""
    groups: dict[tuple, list[str]] = {}
    for name, sizes in _by_symbol(constraints).items():
        key = (sizes.modulus, tuple(sorted(sizes.residues)), sizes.le, sizes.ge, tuple(sorted(sizes.eq)))
        groups.setdefault(key, []).append(name)
    parts = []
    for names in groups.values():
        sizes = _by_symbol(c for c in constraints if c.symbol == names[0])[names[0]]
        parts.append(f"{', '.join(names)} {sizes.phrase(len(names) > 1)}")
    return "; ".join(parts)


def satisfying(dims: dict[str, int], constraints, keep=()) -> dict[str, int]:
    """``dims`` with each dim that breaks its preconditions (and is not in ``keep``) moved to the v-th size
    that meets them, for v its value: 1, 2, 3 become 32, 64, 96 under ``H % 32 == 0``, so bindings that
    differed still differ.  A valid size stays; the ``eq`` conditions of findings are left out."""
    sizes = _by_symbol(c for c in constraints if c.precondition)
    out = dict(dims)
    for name, v in dims.items():
        s = sizes.get(name)
        if s is None or name in keep or s.ok(v):
            continue
        top = s.le if s.le is not None else (s.ge or 0) + max(v, 1) * s.modulus + s.modulus
        valid = []
        for x in range(1, top + 1):
            if s.ok(x):
                valid.append(x)
                if len(valid) >= max(v, 1):
                    break
        if valid:
            out[name] = valid[min(max(v, 1), len(valid)) - 1]
    return out


def meet_preconditions(table, dims: dict[str, int], keep=()) -> tuple[dict[str, int], list[str]]:
    """For ``verify``: ``dims`` moved to sizes that meet the model's preconditions (``keep`` left as they are,
    for a binding chosen to confirm a finding), and one reason per dim moved."""
    pre = [c for c in getattr(table, "constraints", ()) if c.precondition]
    if not pre:
        return dict(dims), []
    got = satisfying(dims, pre, keep)
    reasons = []
    for name, v in got.items():
        if v != dims[name]:
            # the same words as `shapes` prints ("height multiples of 32"), not every residue condition
            phrase = _by_symbol(c for c in pre if c.symbol == name)[name].phrase(False)
            phrase = "a " + phrase if phrase.startswith("multiple") else phrase
            reasons.append(f"{name}={v}, not {dims[name]}: the model needs {name} {phrase}")
    return got, reasons
