"""Binding choice: the sizes of the symbolic input dims verify runs the model at, and why each.

:func:`plan_bindings` is the one function that chooses them, from the
:class:`~shapelint.result.CheckResult` of the model (its graph, shape table
and settings).  For the free dims (those ``--dim`` or the config's ``dims``
do not pin) it takes:

1. every dim at 1;
2. **sizes that expose assumptions**: the smallest primes that divide no
   literal of the graph's shape constants (Reshape targets, Expand/Tile
   shapes, ...) and none of the traced sizes, one prime a dim (one a group,
   for dims of different inputs the graph needs equal, :func:`equal_dims`),
   so that ``batch*time`` shares no factor with any of them: a Reshape that
   silently assumes divisibility (``((batch*time)//6, 6, F)``) fails here;
3. a size other than 1 where every Reshape divides evenly (the nodes below
   them run too, so their shapes are compared);
4. the traced size, where the model shows it (a literal in a Reshape target
   where the input has the dim, a static dim in the exporter's declared
   shapes), and the values inference related a dim to ("valid only when
   batch == 4").

Every binding keeps convolutions and pools at a positive output size.
:func:`declared_valid` says whether a binding is a size the model's inputs
declare valid (a failure there is an error, whatever the rule's severity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..dims import Dim, free_names, free_symbols, is_symbol, parse_dim, symbol
from ..infer.constraints import meet_preconditions
from .codes import MAX_BINDINGS
from .evidence import _checks, conditions, evaluate, relation_values, shape_literals, traced_values

__all__ = ["Binding", "declared_valid", "equal_dims", "input_symbols", "plan_bindings"]


# --------------------------------------------------------------------- binding
@dataclass
class Binding:
    """One assignment of the symbolic dims, and why it was chosen."""

    dims: dict[str, int]
    why: list[str] = field(default_factory=list)
    #: dim name -> the symbol inference gave it (a fresh one for an axis the model left anonymous)
    symbols: dict = field(default_factory=dict, repr=False, compare=False)
    #: None: a size the model's inputs declare valid; else why not
    invalid: str | None = None

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.dims.items()) or "static shapes"

    @property
    def valid(self) -> bool:
        return self.invalid is None

    def key(self):
        return tuple(sorted(self.dims.items()))

    @property
    def subs(self) -> dict:
        """Symbol -> value, for :func:`evaluate` (named and anonymous symbols both)."""
        out = {symbol(k): v for k, v in self.dims.items()}
        out.update({self.symbols[k]: v for k, v in self.dims.items() if k in self.symbols})
        return out


# --------------------------------------------------------------------- symbols
def input_symbols(result) -> dict[str, Dim]:
    """The symbolic dims of the graph inputs, in input order: name -> the symbol inference uses for it.

    A ``dim_param`` gives its free names; an axis the model left anonymous
    gets :func:`~shapelint.verify.prepare.anonymous_dim_name`, mapped to the
    fresh symbol inference gave it.
    """
    from .prepare import anonymous_dim_name

    model, table = result.model, result.table
    inits = {t.name for t in model.graph.initializer}
    out: dict[str, Dim] = {}
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        inferred = table.shape(vi.name)
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value"):
                continue
            if d.dim_param:
                try:
                    names = sorted(free_names(parse_dim(d.dim_param)))
                except Exception:  # noqa: BLE001 - a dim_param inference could not read: nothing to bind
                    names = []
                for name in names:
                    out.setdefault(name, symbol(name))
            else:
                s = inferred[k] if inferred is not None and k < len(inferred) else None
                if is_symbol(s):
                    out.setdefault(anonymous_dim_name(vi.name, k), s)
    return out


# -------------------------------------------------------------- preconditions
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Where", "Max", "Min", "Sum", "Mean", "Equal", "Less", "Greater",
                "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "PRelu", "BitShift", "Mod"}


def _aligned_dims(result, node):
    """Pairs of dims ``node`` needs equal: broadcast operands, Concat's other axes, a recurrence's batch."""
    shape = result.table.shape
    op = node.op_type
    if op in _ELEMENTWISE or op == "Concat":
        shapes = [shape(i) for i in node.input if i]
        shapes = [s for s in shapes if s is not None]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0) if op == "Concat" else None
        for s, t in zip(shapes, shapes[1:]):
            for k in range(1, min(len(s), len(t)) + 1):
                if axis is not None and (len(s) != len(t) or k == len(s) - (axis % len(s))):
                    continue
                yield s[-k], t[-k]
    elif op in ("LSTM", "GRU", "RNN") and node.input and node.input[0]:
        layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
        x = shape(node.input[0])
        if x is None or len(x) != 3:
            return
        batch = x[0] if layout else x[1]
        for i in (5, 6):  # initial_h, initial_c
            h = shape(node.input[i]) if i < len(node.input) and node.input[i] else None
            if h is not None and len(h) == 3:
                yield batch, (h[0] if layout else h[1])


def equal_dims(result, syms_by_name: dict) -> list[set[str]]:
    """Dims of *different* graph inputs that the graph needs equal: one axis declared under two names.

    tf2onnx names every input's batch on its own (``unk__56`` for the
    tokens, ``unk__57`` for the state fed to the same LSTM); they must be
    bound together.  Two dims of the *same* input that the graph needs equal
    (``batch == time``) are an assumption verify must expose, not a
    precondition: they are never merged here.
    """
    owners: dict = {}
    inits = {t.name for t in result.model.graph.initializer}
    for vi in result.model.graph.input:
        if vi.name in inits:
            continue
        for d in result.table.shape(vi.name) or ():
            if is_symbol(d):
                owners.setdefault(d, set()).add(vi.name)
    by_sym = {s: n for n, s in syms_by_name.items()}
    parent = {n: n for n in syms_by_name}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for node in result.graph.topological_order():
        for a, b in _aligned_dims(result, node):
            if a is b or a not in by_sym or b not in by_sym or owners.get(a, set()) & owners.get(b, set()):
                continue
            parent[find(by_sym[a])] = find(by_sym[b])
    groups: dict[str, set[str]] = {}
    for n in syms_by_name:
        groups.setdefault(find(n), set()).add(n)
    return [g for g in groups.values() if len(g) > 1]


# ------------------------------------------------------------------- validity
def declared_valid(result, dims: dict[str, int]) -> str | None:
    """None when ``dims`` is a size the model's inputs declare valid; else the reason it is not.

    What the inputs declare: every dim of every graph input evaluates to a
    positive integer (a ``dim_param`` such as ``2*n`` or ``n - 1`` included).
    This is the one place input preconditions are decided; a precondition
    the model states elsewhere belongs here too.
    """
    binding = Binding(dims, symbols=input_symbols(result))
    subs = binding.subs
    inits = {t.name for t in result.model.graph.initializer}
    for vi in result.model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.dim_param:
                continue
            try:
                v = evaluate(parse_dim(d.dim_param), subs)
            except Exception:  # noqa: BLE001 - an unreadable dim_param declares nothing
                continue
            if v is not None and v < 1:
                return f"axis {k} of input {vi.name!r} ({d.dim_param}) would be {v}"
    return None


# ----------------------------------------------------------------------- plan
def _holds(kind, a, b, subs) -> bool:
    if kind == "divides":
        n, k = evaluate(a, subs), evaluate(b, subs)
        return n is None or k is None or k == 0 or n % k == 0
    v = evaluate(a, subs)
    return v is None or v >= (1 if kind == "pos" else 0)


def _subs(dims: dict[str, int], syms_by_name: dict) -> dict:
    return {syms_by_name.get(k, symbol(k)): v for k, v in dims.items()}


def _repair(dims, checks, syms_by_name, fixed=(), kinds=("pos", "nonneg", "divides"), candidates=None):
    """Raise free dims until every check of ``kinds`` holds; ``candidates(name, value)`` gives the next sizes to try.

    Returns ``(dims, reasons)``: each reason says which dim was raised and for which node's sake.
    """
    dims = dict(dims)
    reasons: list[str] = []
    checks = [c for c in checks if c[0] in kinds]
    for _ in range(16):
        subs = _subs(dims, syms_by_name)
        bad = next((c for c in checks if not _holds(*c, subs)), None)
        if bad is None:
            break
        kind, a, b = bad
        involved = set()
        for e in (a, b):
            if e is not None and not isinstance(e, int):
                involved |= free_symbols(e)
        names = sorted(n for n, s in syms_by_name.items() if s in involved and n in dims and n not in fixed)
        trial = None
        for s in names:
            options = candidates(s, dims[s]) if candidates else range(dims[s] + 1, dims[s] * 64 + 65)
            for v in options:
                t = {**dims, s: v}
                if _holds(kind, a, b, _subs(t, syms_by_name)):
                    trial = t
                    reasons.append(f"{s} raised to {v} so that " + ("a Reshape divides evenly" if kind == "divides"
                                                                    else "every convolution keeps a positive size"))
                    break
            if trial is not None:
                break
        if trial is None:
            break
        dims = trial
    return dims, reasons


def _primes(limit: int = 400):
    sieve = [True] * limit
    for i in range(2, limit):
        if sieve[i]:
            yield i
            for j in range(i * i, limit, i):
                sieve[j] = False


def plan_bindings(result, limit: int = MAX_BINDINGS) -> list[Binding]:
    """Concrete values for every symbolic dim of the graph inputs, each with why it was chosen (module doc)."""
    syms_by_name = input_symbols(result)
    fixed = {n: v for n, v in result.settings.dims.items() if n in syms_by_name}
    free = [n for n in syms_by_name if n not in fixed]
    pinned = "; ".join(f"{k}={v} pinned by --dim / the config" for k, v in fixed.items())
    if not syms_by_name:
        return [Binding({}, ["the inputs have static shapes"])]
    if not free:
        return [_finish(result, Binding(dict(fixed), [pinned], syms_by_name))]
    free_syms = {syms_by_name[n]: n for n in free}
    checks = _checks(result, free_syms)
    traced = traced_values(result, free_syms)
    relations = relation_values(result.table, set(free))
    literals = shape_literals(result)
    plans: list[Binding] = []

    def add(dims, why, reasons=(), keep=()):
        dims, moved = meet_preconditions(result.table, dims, keep)  # sizes the model accepts (shapes' input sizes)
        reasons = [*reasons, *moved]
        full = {n: (fixed[n] if n in fixed else dims[n]) for n in syms_by_name}
        text = why + (f" ({'; '.join(reasons)})" if reasons else "")
        b = Binding(full, [text], syms_by_name)
        for old in plans:
            if old.key() == b.key():
                if text not in old.why:
                    old.why.append(text)
                return old
        plans.append(b)
        return b

    positive = ("pos", "nonneg")
    ones, why1 = _repair({n: 1 for n in free}, checks, syms_by_name, kinds=positive)
    add(ones, "every dim at 1", why1)

    # sizes sharing no factor with any literal or traced size: a reshape assuming divisibility fails here
    # ... and none of the sizes a finding says the model is valid only at: a binding there breaks its condition
    stated = {c.value for d in result.diagnostics for c in conditions(result, d) if c.name in free}
    avoid = sorted(set(literals) | {v for v, _ in traced.values()} | {v for _, v, _ in relations} | stated)
    allowed = [p for p in _primes() if all(v % p for v in avoid if v > 1)]
    group_of = {n: frozenset([n]) for n in free}
    for g in equal_dims(result, {n: syms_by_name[n] for n in free}):
        for n in g:
            group_of[n] = frozenset(g)
    leaders = list(dict.fromkeys(group_of[n] for n in free))
    prime_of = {g: allowed[min(i, len(allowed) - 1)] for i, g in enumerate(leaders)}
    coprime = {n: prime_of[group_of[n]] for n in free}

    def next_primes(name, value):  # a prime no other group has, nor the size "1" was raised to
        used = {v for k, v in coprime.items() if group_of[k] != group_of[name]} | {ones[name]}
        return [p for p in allowed if p > value and p not in used]

    coprime, why2 = _repair(coprime, checks, syms_by_name, kinds=positive, candidates=next_primes)
    for n in free:  # "1" raised for a convolution's sake: the prime must differ from it
        if coprime[n] == ones[n] and next_primes(n, coprime[n]):
            coprime[n] = next_primes(n, coprime[n])[0]
            why2 = [w for w in why2 if not w.startswith(f"{n} raised to")]
            why2.append(f"{n} raised to {coprime[n]}: the convolutions need more than the smallest prime, "
                        f"and {ones[n]} is where 'every dim at 1' went")
    for g in leaders:  # a group raised for one member's sake stays equal
        top = max(coprime[n] for n in g)
        for n in g:
            coprime[n] = top
    merged = [" = ".join(sorted(g)) for g in leaders if len(g) > 1]
    if merged:
        why2 = [*why2, "one prime for " + "; ".join(merged) + ": dims of different inputs the graph needs equal"]
    shown = ", ".join(map(str, avoid[:8])) + (", ..." if len(avoid) > 8 else "")
    add(coprime, ("the smallest primes " if len(free) > 1 else "the smallest prime ")
        + (f"dividing none of the graph's shape literals and traced sizes ({shown})" if avoid else "other than 1")
        + ": a Reshape that assumes divisibility fails here", why2)

    # a size other than 1 (and than the traced one) where every Reshape divides: the nodes below them run too
    high = {}
    for n in free:
        taken = ({v for m, (v, _) in traced.items() if m == n} | {v for m, v, _ in relations if m == n}
                 | {ones[n]})
        want = 3
        for _ in range(8):
            got = _repair({**{m: 1 for m in free}, n: want}, checks, syms_by_name)[0][n]
            if got not in taken:
                break
            want = got + 2
        high[n] = want
    high, why3 = _repair(high, checks, syms_by_name)
    add(high, "a size other than the traced one where every Reshape divides evenly" if (traced or relations)
        else "a size other than 1 where every Reshape divides evenly", why3)

    base = high
    if traced:
        base = {**high, **{n: v for n, (v, _) in traced.items()}}
        dims, reasons = _repair(base, checks, syms_by_name, fixed=tuple(traced))
        add(dims, "the traced size (" + "; ".join(f"{n}={v}: {e}" for n, (v, e) in traced.items()) + ")", reasons,
            keep=tuple(traced))
    for name, value, why in relations:
        dims, reasons = _repair({**base, name: value}, checks, syms_by_name, fixed=(name,))
        add(dims, why, reasons, keep=(name,))
    out = plans[:limit]
    for b in out:
        if pinned:
            b.why.append(pinned)
        _finish(result, b)
    return out


def _finish(result, b: Binding) -> Binding:
    b.invalid = declared_valid(result, b.dims)
    return b
