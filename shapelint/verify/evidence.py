"""Evidence: what the checked graph shows about its sizes, for the binding plan and the confirmations.

* :func:`shape_literals`: the integer literals of its shape constants (a
  binding sharing a factor with one could hide a divisibility assumption);
* :func:`traced_values`: the size a dim was traced at, where the model shows it;
* :func:`relation_values`: the "valid only when batch == 4" inference found;
* :func:`conditions`: a finding's own "valid only when" (a binding that breaks it must fail);
* the checks a binding meets so the model can run at all (convolutions keep
  a positive size; Reshapes divide evenly).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..dims import Relation, compare, free_symbols, product, symbol  # noqa: F401 - the doctests use symbol
from ..poly import Poly

__all__ = ["Condition", "conditions", "evaluate", "relation_values", "shape_literals", "traced_values"]


def evaluate(d, subs: dict) -> int | None:
    """A dim at concrete symbol values: an int, or None when it stays unknown.

    >>> evaluate(symbol("batch") * 8, {symbol("batch"): 3})
    24
    >>> evaluate(symbol("unk__1") + 1, {symbol("batch"): 3}) is None
    True
    """
    if d is None:
        return None
    if isinstance(d, (int, np.integer)):
        return int(d)
    if type(d) is Poly:
        v = d.subs(subs) if subs else d
        return v if type(v) is int else None
    import sympy

    from .._sym import to_sympy
    try:
        v = sympy.sympify(d.xreplace({to_sympy(k): to_sympy(x) for k, x in subs.items()}) if subs else d)
        if not v.free_symbols:
            v = sympy.simplify(v) if not v.is_Integer else v
        if v.is_Integer:
            return int(v)
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - sympy corner cases
        return None
    return None


# ---------------------------------------------------------------- what it needs
def _const_ints(result, name: str) -> list | None:
    """A shape vector's elements: ints from a constant, or the dims inference tracked (ints or symbolic)."""
    if not name:
        return None
    v = result.graph.const(name)
    if v is None:
        v = result.table.get(name).const
    if v is not None:
        arr = np.asarray(v)
        if arr.dtype.kind in "iu" and arr.size <= 64:
            return [int(x) for x in arr.reshape(-1)]
        return None
    value = result.table.get(name).value
    return list(value) if value is not None else None


def _reshape_target(result, node) -> list | None:
    return _const_ints(result, node.input[1]) if len(node.input) >= 2 else None


#: op -> the inputs that hold sizes (their literals are what a binding must share no factor with)
_SIZE_INPUTS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Resize": (3,),
                "Upsample": (1,), "Split": (1,), "Slice": (1, 2), "Range": (0, 1, 2), "OneHot": (1,)}


def shape_literals(result) -> list[int]:
    """The integer literals (> 1, sorted) in the graph's shape constants: the sizes a reshape may silently assume."""
    found: set[int] = set()
    for node in result.graph.topological_order():
        for i in _SIZE_INPUTS.get(node.op_type, ()):
            if i < len(node.input):
                for v in _const_ints(result, node.input[i]) or ():
                    if isinstance(v, (int, np.integer)) and 1 < abs(int(v)) < 2**31:
                        found.add(abs(int(v)))
        if node.op_type == "Reshape" and len(node.input) > 1:  # a target whose literals came through a Concat
            for v in result.table.get(node.input[1]).value or ():
                if isinstance(v, int) and 1 < abs(v) < 2**31:
                    found.add(abs(v))
    return sorted(found)


_POSITIVE_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool", "MaxUnpool", "Im2Col"}


def _baked_axis(x, target, syms: dict) -> tuple[str, int] | None:
    """``(name, literal)`` where ``target`` replaces an input axis that is a free symbol by a literal.

    The target lines up with the input's axes only up to the first ``-1`` or merged axis.
    """
    for k, (d, t) in enumerate(zip(x, target)):
        if isinstance(t, int) and t == -1:
            return None
        if not isinstance(d, int) and any(u is not None and not isinstance(u, int) and u == d for u in target):
            continue  # the dim is still in the target, elsewhere: moved (a length-1 axis swapped past it), not baked
        if (isinstance(t, int) and t == 0) or t == d:
            continue
        if d in syms and isinstance(t, int) and t > 0 and not _merges(x, target, k):
            return syms[d], t
        return None
    return None


def _merges(x, target, k: int) -> bool:
    """The literal at ``target[k]`` stands for ``x[k]`` times more input axes: ``(B, T, 5) -> (14, 5)`` pins
    ``B*T``, not ``B``.  Where a later ``-1`` takes the rest, the literal is read as ``x[k]``'s alone."""
    rest = []
    for j in range(k + 1, len(target)):
        t = target[j]
        if not isinstance(t, int):
            return False
        if t == -1:
            return False
        rest.append(x[j] if t == 0 and j < len(x) else t)
    return compare(product(list(x[k + 1:])), product(rest)).relation != Relation.EQUAL


def _checks(result, syms: dict):
    """What a usable binding satisfies, as ``(kind, a, b)``.

    ``nonneg``/``pos``: dim ``a`` is >= 0 (>= 1 for convolution and pooling
    outputs); ``divides``: ``b`` divides ``a`` (a Reshape's ``-1`` comes out
    whole).  A Reshape whose target bakes in a traced size is left out: its
    failure at other sizes is what verify must show.
    """
    seen, out = set(), []
    table = result.table

    def add(item):
        if item not in seen:
            seen.add(item)
            out.append(item)

    for node in result.graph.topological_order():
        kind = "pos" if node.op_type in _POSITIVE_OPS else "nonneg"
        for name in node.output:
            for d in (table.shape(name) if name else None) or ():
                if d is None or isinstance(d, int) or not free_symbols(d):
                    continue
                if all(s in syms for s in free_symbols(d)):
                    add((kind, d, None))
        if node.op_type != "Reshape":
            continue
        x = table.shape(node.input[0])
        target = _reshape_target(result, node)
        if x is None or target is None or -1 not in target or _baked_axis(x, target, syms) is not None:
            continue
        allow_zero = any(a.name == "allowzero" and a.i for a in node.attribute)
        known = 1
        for i, t in enumerate(target):
            if isinstance(t, int) and t == -1:
                continue
            if isinstance(t, int) and t == 0 and not allow_zero:
                t = x[i] if i < len(x) else None
            if t is None:
                known = None
                break
            known = known * t
        numel = 1
        for d in x:
            numel = None if (d is None or numel is None) else numel * d
        if known is None or numel is None or isinstance(numel, int) and isinstance(known, int):
            continue
        exprs = [e for e in (numel, known) if not isinstance(e, int)]
        if all(s in syms for e in exprs for s in free_symbols(e)):
            add(("divides", numel, known))
    return out


# ------------------------------------------------------------- what it showed
def traced_values(result, syms: dict) -> dict[str, tuple[int, str]]:
    """The size each dim was traced at, where the model shows it: ``{name: (value, evidence)}``.

    Read from a Reshape target that puts a literal where the input has the
    dim, and from static dims in the exporter's declared shapes.
    """
    found: dict[str, tuple[int, str]] = {}
    table = result.table
    for node in result.graph.topological_order():
        if node.op_type != "Reshape":
            continue
        x = table.shape(node.input[0])
        target = _reshape_target(result, node)
        if x is None or target is None:
            continue
        hit = _baked_axis(x, target, syms)
        if hit is not None and _moved(result, node, hit[0]):
            hit = None
        if hit is not None and hit[0] not in found:
            found[hit[0]] = (hit[1], f"literal {hit[1]} in the target of Reshape {node.name or '#'}")
    model = result.model
    for vi in list(model.graph.output) + list(model.graph.value_info):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        inferred = table.shape(vi.name)
        declared = vi.type.tensor_type.shape.dim
        if inferred is None or len(inferred) != len(declared):
            continue
        for d, dd in zip(inferred, declared):
            if d in syms and dd.HasField("dim_value") and dd.dim_value > 0:
                found.setdefault(syms[d], (int(dd.dim_value), f"declared shape of {vi.name!r}"))
    return found


def _moved(result, node, name: str) -> bool:
    """The input axis sized ``name`` is, whole and unmixed, an axis of the Reshape's result (the axis algebra):
    it was moved past a length-1 axis, ``(B, 1, F) -> (1, B, F)``, not replaced by a literal."""
    from ..axes import analyse

    am = result.analyses.get(analyse, result.graph, result.table)
    if any(sc.node is node for sc in am.scrambles):
        return False
    x, out = am.axes(node.input[0]), am.axes(node.output[0])
    shape = result.table.shape(node.input[0])
    if x is None or out is None or shape is None:
        return False
    mine = [x[k] for k, d in enumerate(shape) if not isinstance(d, int) and getattr(d, "name", None) == name]
    return bool(mine) and all(ax and ax in out for ax in mine)


def relation_values(table, names) -> list[tuple[str, int, str]]:
    """``(name, value, why)`` for each "valid only when name == value" inference found."""
    out = []
    for c in table.conflicts:
        if c.relation != "only_when" or c.when is None:
            continue
        for name, value in c.when.when:
            if name in names and value > 0:
                out.append((name, int(value), f"{c.node.op_type} {c.node.name or ''} valid only when {name} == {value}".replace("  ", " ")))
    return out


@dataclass
class Condition:
    """A finding's "valid only when name == value": a binding with another value must break the model."""

    node: str | None
    name: str
    value: int

    def holds(self, dims: dict[str, int]) -> bool:
        return dims.get(self.name) == self.value

    def __str__(self) -> str:
        return f"{self.name} == {self.value}"


_ONLY_WHEN = re.compile(r"only when ([A-Za-z_][\w.]*) == (\d+)")


def conditions(result, diagnostic) -> list[Condition]:
    """The conditions a static finding says the model is valid under (from inference, or its message)."""
    out = []
    for c in result.table.conflicts if result.table is not None else ():
        if c.relation == "only_when" and c.when is not None and c.node.name and c.node.name == diagnostic.node:
            out.extend(Condition(diagnostic.node, name, int(v)) for name, v in c.when.when)
    for name, value in _ONLY_WHEN.findall(diagnostic.message or ""):
        cond = Condition(diagnostic.node, name, int(value))
        if all((c.name, c.value) != (cond.name, cond.value) for c in out):
            out.append(cond)
    return out
