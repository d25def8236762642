"""Confirm static findings by running the model under onnxruntime.

The runtime side of shapelint, and the only module that reads weights:

1. **prepare** — load the model with its external weights (random weights of
   the declared shape when a data file is absent, said in the report); give
   anonymous input dims a name so they can be bound;
2. **plan** — pick concrete bindings for every symbolic dim of the graph
   inputs: 1, a value other than the traced one (3), the traced value when
   the model shows it (a literal in a Reshape target, a static dim in the
   exporter's declared shapes), the values of relations inference found
   ("valid only when batch == 4"), the user's ``--dim`` values; each repaired
   so that Reshapes divide evenly and convolutions keep a positive size;
3. **execute** — every intermediate tensor becomes a graph output and the
   model runs under onnxruntime in a child process
   (:mod:`shapelint.verify_worker`) with a time and a memory limit; when a
   node fails, the graph runs again without it and what depends on it, to
   learn the shapes that reached it and to find independent failures;
4. **compare** — each runtime shape against the inferred symbolic shape
   evaluated at the binding; failures are matched to the static findings.

It reports through the usual :class:`~shapelint.diagnostics.FileReport`:
static findings gain ``runtime`` (confirmed / not reproduced), and three
codes of its own are added:

========  ================================  ==========================================
SL900     inference-disagrees-with-runtime  an inferred shape differs from onnxruntime's
SL901     runtime-failure-unexplained       onnxruntime fails where no finding says why
SL902     runtime-crash                     the child crashed, hung or ran out of memory
========  ================================  ==========================================

onnxruntime is imported here only to list providers; sessions live in the
child process.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import sympy
from onnx import numpy_helper

from .diagnostics import Diagnostic, FileReport, RunReport
from .dims import format_dim, format_shape, free_names, parse_dim
from .graph import ModelGraph
from .infer import ShapeTable, infer
from .load import ExternalRef, LoadError, check_external_data, external_tensors, load_model, tensor_nbytes

__all__ = [
    "RUNTIME_CODES",
    "Binding",
    "Execution",
    "Prepared",
    "ProviderUnavailable",
    "VerifyError",
    "execute",
    "explain_runtime_code",
    "make_feeds",
    "plan_bindings",
    "prepare",
    "provider_available",
    "reference_run",
    "shutdown_workers",
    "translate_ort_message",
    "verify",
    "verify_paths",
    "verify_report",
]

logger = logging.getLogger(__name__)

#: codes verify reports itself: code -> (slug, severity, summary)
RUNTIME_CODES = {
    "SL900": ("inference-disagrees-with-runtime", "error",
              "A shape inferred by shapelint differs from the one onnxruntime computes: a bug in shapelint's inference."),
    "SL901": ("runtime-failure-unexplained", "error",
              "onnxruntime fails on the model at a binding of its dynamic dims, and no static finding explains it."),
    "SL902": ("runtime-crash", "error",
              "onnxruntime crashed, hung or ran out of memory in the child process that ran the model."),
}

_RUNTIME_DOCS = {
    "SL900": """## What it does
Compares every tensor's shape under onnxruntime with the shape shapelint
inferred, evaluated at the same binding of the symbolic dims.

## Why is this bad?
Every static finding rests on inference; a wrong inferred shape can hide a
real mistake or report one that is not there.  It is a bug in shapelint, not
in the model.

## What to do
Report it with the model (or the node, its op type and input shapes from
the message).  The node named is the first one whose output disagrees while
its inputs agree; the count of tensors below it that disagree as a
consequence is given.""",
    "SL901": """## What it does
Reports a node that fails under onnxruntime at one of the bindings verify
runs when no static finding is anchored on that node or above it.

## Why is this bad?
The model breaks for some input sizes and the static rules did not see why:
either a rule is missing, or the failure comes from values (an index out of
range) rather than shapes.

## What to do
Read onnxruntime's message and the shapes that reached the node (given in
the message); the bindings where the model runs are listed too.  verify's
integer inputs are token ids below the embedding's row count, or 0/1.""",
    "SL902": """## What it does
Reports a run of onnxruntime that crashed (a signal), hung past ``--timeout``
or ran out of the ``--memory`` limit in the child process verify starts.

## Why is this bad?
A kernel that crashes takes the serving process with it; one that needs
more memory than expected usually means a shape far larger than intended
(a broadcast or Expand gone wrong).

## What to do
Rerun ``shapelint verify`` with a larger ``--timeout``/``--memory`` to tell
a slow model from a broken one; the binding that crashed is named.""",
}


def explain_runtime_code(code: str) -> str | None:
    """``shapelint explain SL900``: the doc of verify's own codes, or None."""
    code = code.upper()
    found = RUNTIME_CODES.get(code) or next((v for k, v in RUNTIME_CODES.items() if v[0] == code.lower()), None)
    if found is None:
        return None
    code = next(k for k, v in RUNTIME_CODES.items() if v is found)
    slug, severity, summary = found
    return f"{code} ({slug}) · {severity} · shapelint verify\n\n{summary}\n\n{_RUNTIME_DOCS[code]}"


DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 4096
MAX_BINDINGS = 8
#: reruns without the failing nodes, to find independent failures
MAX_ROUNDS = 6
SEED = 0
_PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class VerifyError(Exception):
    """verify cannot run at all (bad usage, no provider); ``str`` is the reason."""


class ProviderUnavailable(VerifyError):
    """The requested execution provider is not available in this onnxruntime."""


# --------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """A model ready to run: weights in memory, every input dim named."""

    model: onnx.ModelProto
    path: str
    weights: str  # "inline" | "external data loaded" | "random ..." (said in the report)
    notes: list[str] = field(default_factory=list)
    renamed_dims: dict[str, str] = field(default_factory=dict)  # new dim name -> "input axis k"
    #: every data file the model's external references name (symlinks resolved), absent ones included
    data_files: list[Path] = field(default_factory=list)


#: random stand-in weights larger than this are not made up in the parent process
MAX_RANDOM_BYTES = 2**31
#: the inputs verify builds for one binding, all together: a declared [2**40, 6] input is refused, not allocated
MAX_FEED_BYTES = 512 * 2**20
#: values one execute() (or reference_run()) brings into this process for comparison, all runs together: with
#: the child's caps (32 MiB a tensor, 128 MiB a run) alone, fix held 6 runs' worth at once (> 900 MB)
MAX_KEPT_VALUES_BYTES = 40 * 2**20


def _random_tensor(t: onnx.TensorProto, rng: np.random.Generator) -> onnx.TensorProto:
    need = tensor_nbytes(t)
    if any(d < 0 for d in t.dims) or need is None or need > MAX_RANDOM_BYTES:
        raise LoadError(f"external data of {t.name!r} is absent and its declared shape {list(t.dims)} "
                        "cannot be filled with random weights")
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.data_type)
    shape = tuple(int(d) for d in t.dims)
    if np.issubdtype(dtype, np.floating):
        value = (rng.standard_normal(shape) * 0.1).astype(dtype)
    elif dtype == np.bool_:
        value = np.ones(shape, dtype=bool)
    else:
        value = np.zeros(shape, dtype=dtype)
    return numpy_helper.from_array(value, t.name)


def _read_external(ref: ExternalRef) -> bytes:
    """Exactly the bytes ``ref`` names: never the rest of a large file."""
    with open(ref.path, "rb") as fh:
        fh.seek(ref.offset)
        data = fh.read(ref.length)
    if len(data) != ref.length:
        raise LoadError(f"external data file {ref.location!r} of {ref.tensor.name!r} changed while being read")
    return data


def prepare(model_or_path, name_dims: bool = True) -> Prepared:
    """Load a model with its weights (the only place shapelint reads them).

    Every external reference passes :func:`shapelint.load.check_external_data`
    first (inside the model's folder, a regular file, offset and length
    inside it and matching the tensor), wherever the tensor sits
    (initializers, sparse initializers, Constant values, function bodies,
    subgraphs); then only the bytes each reference names are read, so a
    3 GiB data file behind a 4x4 tensor costs 64 bytes.  A data file that is
    absent is replaced by random weights of the declared shape, and the
    report says so.  Anonymous input dims get a name (``<input>_dim<k>``) so
    that they can be bound.

    Raises
    ------
    LoadError
        the file cannot be read, or an external reference is refused.
    """
    missing: list = []
    refs: list[ExternalRef] = []
    if isinstance(model_or_path, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(model_or_path)
        path, base = "<model>", None
        missing = [(where, t, _location_of(t)) for where, t in external_tensors(model)]
    else:
        p = Path(model_or_path)
        path = os.fspath(model_or_path)
        model = load_model(p, missing_weights_ok=True)
        base = p.resolve().parent
        refs = check_external_data(model, base, missing=missing)
    sizes: dict[Path, int] = {}
    for ref in refs:
        sizes.setdefault(ref.path, ref.path.stat().st_size)
    total = sum(r.length for r in refs)
    if total > sum(sizes.values()):  # references that overlap would multiply what is read
        raise LoadError(f"external tensors name {total} bytes in data files of {sum(sizes.values())} bytes: "
                        "their byte ranges overlap; refused")
    loaded = []
    for ref in refs:
        t = ref.tensor
        t.raw_data = _read_external(ref)
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
        loaded.append(t.name)
    rng = np.random.default_rng(SEED)
    for _where, t, _location in missing:
        t.CopyFrom(_random_tensor(t, rng))
    if missing:
        locs = sorted({loc for _, _, loc in missing})
        weights = (f"random: external data {', '.join(repr(x) for x in locs[:3])} absent, "
                   f"{len(missing)} tensor(s) filled with random values of the declared shape")
    elif loaded:
        weights = f"external data loaded ({len(loaded)} tensor(s))"
    else:
        weights = "inline"
    prepared = Prepared(model, path, weights)
    prepared.data_files = sorted({r.path for r in refs} | {(base / loc).resolve() for _, _, loc in missing if base is not None})
    if missing:
        prepared.notes.append(f"weights: {weights}; runtime shapes are still meaningful, values are not")
    if name_dims:
        _name_anonymous_dims(prepared)
    return prepared


def _location_of(t: onnx.TensorProto) -> str:
    return next((e.value for e in t.external_data if e.key == "location"), "")


def _name_anonymous_dims(prepared: Prepared) -> None:
    inits = {t.name for t in prepared.model.graph.initializer}
    for vi in prepared.model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.HasField("dim_value") and not d.dim_param:
                name = re.sub(r"\W", "_", f"{vi.name}_dim{k}")
                if not re.match(r"[A-Za-z_]", name):
                    name = "d_" + name
                d.dim_param = name
                prepared.renamed_dims[name] = f"axis {k} of input {vi.name!r}"


# ------------------------------------------------------------------------ plan
@dataclass
class Binding:
    """One assignment of the symbolic dims, and why it was chosen."""

    dims: dict[str, int]
    why: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.dims.items()) or "static shapes"

    def key(self):
        return tuple(sorted(self.dims.items()))


def _input_symbols(model: onnx.ModelProto) -> list[str]:
    inits = {t.name for t in model.graph.initializer}
    out: list[str] = []
    for vi in model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type"):
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param:
                for name in sorted(free_names(parse_dim(d.dim_param))):
                    if name not in out:
                        out.append(name)
    return out


def _sym(name: str) -> sympy.Symbol:
    from .dims import symbol

    return symbol(name)


def evaluate(d, subs: dict) -> int | None:
    """A dim at concrete symbol values: an int, or None when it stays unknown.

    >>> from shapelint.dims import symbol
    >>> evaluate(symbol("batch") * 8, {symbol("batch"): 3})
    24
    >>> evaluate(symbol("unk__1") + 1, {symbol("batch"): 3}) is None
    True
    """
    if d is None:
        return None
    if isinstance(d, (int, np.integer)):
        return int(d)
    try:
        v = sympy.sympify(d.xreplace(subs) if subs else d)
        if not v.free_symbols:
            v = sympy.simplify(v) if not v.is_Integer else v
        if v.is_Integer:
            return int(v)
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - sympy corner cases
        return None
    return None


def _reshape_target(mg: ModelGraph, table: ShapeTable, node: onnx.NodeProto) -> list | None:
    """A Reshape's target as dims (ints or symbolic), from a constant or from what inference tracked."""
    if len(node.input) < 2:
        return None
    target = mg.const(node.input[1])
    if target is None:
        target = table.get(node.input[1]).const
    if target is not None:
        return [int(v) for v in np.asarray(target).reshape(-1)]
    value = table.get(node.input[1]).value
    return list(value) if value is not None else None


def _baked_axis(x, target, symbols) -> tuple[str, int] | None:
    """``(symbol, literal)`` where ``target`` replaces an input axis that is a symbol by a literal.

    The target lines up with the input's axes only up to the first ``-1`` or
    merged axis.
    """
    for d, t in zip(x, target):
        if isinstance(t, int) and t == -1:
            return None
        if not isinstance(d, int) and any(u is not None and not isinstance(u, int) and u == d for u in target):
            continue  # the dim is still in the target, elsewhere: moved (a length-1 axis swapped past it), not baked
        if (isinstance(t, int) and t == 0) or t == d:
            continue
        if isinstance(d, sympy.Symbol) and d.name in symbols and isinstance(t, int) and t > 0:
            return d.name, t
        return None
    return None


_POSITIVE_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool", "LpPool", "MaxUnpool", "Im2Col"}


def _checks(mg: ModelGraph, table: ShapeTable, symbols: set[str]):
    """What a usable binding satisfies, as ``(kind, a, b)``.

    ``nonneg``/``pos``: dim ``a`` is >= 0 (>= 1 for convolution and pooling
    outputs); ``divides``: ``b`` divides ``a`` (a Reshape's ``-1`` comes out
    whole).  A Reshape whose target bakes in a traced size is left out: its
    failure at other sizes is what verify must show.
    """
    seen, out = set(), []

    def add(item):
        if item not in seen:
            seen.add(item)
            out.append(item)

    for node in mg.topological_order():
        kind = "pos" if node.op_type in _POSITIVE_OPS else "nonneg"
        for name in node.output:
            shape = table.shape(name) if name else None
            for d in shape or ():
                if d is None or isinstance(d, int) or not d.free_symbols:
                    continue
                if all(s.name in symbols for s in d.free_symbols):
                    add((kind, d, None))
        if node.op_type != "Reshape":
            continue
        x = table.shape(node.input[0])
        target = _reshape_target(mg, table, node)
        if x is None or target is None or -1 not in target or _baked_axis(x, target, symbols) is not None:
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
        if all(s.name in symbols for e in exprs for s in e.free_symbols):
            add(("divides", numel, known))
    return out


def _holds(kind, a, b, subs) -> bool:
    if kind == "divides":
        n, k = evaluate(a, subs), evaluate(b, subs)
        return n is None or k is None or k == 0 or n % k == 0
    v = evaluate(a, subs)
    return v is None or v >= (1 if kind == "pos" else 0)


def _failing(checks, dims: dict[str, int]):
    subs = {_sym(k): v for k, v in dims.items()}
    for item in checks:
        if not _holds(*item, subs):
            return item
    return None


def _repair(dims: dict[str, int], checks, fixed=()) -> dict[str, int]:
    """Raise free dims until every check holds (Reshapes divide, convs keep >= 1)."""
    dims = dict(dims)
    for _ in range(16):
        bad = _failing(checks, dims)
        if bad is None:
            return dims
        kind, a, b = bad
        free = set()
        for e in (a, b):
            if e is not None and not isinstance(e, int):
                free |= {s.name for s in e.free_symbols}
        names = sorted(n for n in free if n in dims and n not in fixed)
        if not names:
            return dims
        for s in names:
            trial = None
            for v in range(dims[s] + 1, dims[s] * 64 + 65):
                t = {**dims, s: v}
                if _holds(kind, a, b, {_sym(k): x for k, x in t.items()}):
                    trial = t
                    break
            if trial is not None:
                dims = trial
                break
        else:
            return dims
    return dims


def traced_values(model: onnx.ModelProto, mg: ModelGraph, table: ShapeTable, symbols: set[str]) -> dict[str, tuple[int, str]]:
    """The size each dim was traced at, where the model shows it: ``{name: (value, evidence)}``.

    Read from a Reshape target that puts a literal where the input has the
    dim, and from static dims in the exporter's declared shapes.
    """
    found: dict[str, tuple[int, str]] = {}
    for node in mg.topological_order():
        if node.op_type != "Reshape":
            continue
        x = table.shape(node.input[0])
        target = _reshape_target(mg, table, node)
        if x is None or target is None:
            continue
        hit = _baked_axis(x, target, symbols)
        if hit is not None and _moved(mg, table, node, hit[0]):
            hit = None
        if hit is not None and hit[0] not in found:
            found[hit[0]] = (hit[1], f"literal {hit[1]} in the target of Reshape {node.name or '#'}")
    for vi in list(model.graph.output) + list(model.graph.value_info):
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        inferred = table.shape(vi.name)
        declared = vi.type.tensor_type.shape.dim
        if inferred is None or len(inferred) != len(declared):
            continue
        for d, dd in zip(inferred, declared):
            if isinstance(d, sympy.Symbol) and d.name in symbols and dd.HasField("dim_value") and dd.dim_value > 0:
                found.setdefault(d.name, (int(dd.dim_value), f"declared shape of {vi.name!r}"))
    return found


def _moved(mg: ModelGraph, table: ShapeTable, node, name: str) -> bool:
    """The input axis sized ``name`` is, whole and unmixed, an axis of the Reshape's result (the axis algebra):
    it was moved past a length-1 axis, ``(B, 1, F) -> (1, B, F)``, not replaced by a literal."""
    from .axes import analyse

    am = table.analyses.get("axes")
    if am is None:
        am = table.analyses["axes"] = analyse(mg, table)
    if any(sc.node is node for sc in am.scrambles):
        return False
    x, out = am.axes(node.input[0]), am.axes(node.output[0])
    shape = table.shape(node.input[0])
    if x is None or out is None or shape is None:
        return False
    mine = [x[k] for k, d in enumerate(shape) if not isinstance(d, int) and getattr(d, "name", None) == name]
    return bool(mine) and all(ax and ax in out for ax in mine)


def relation_values(table: ShapeTable, symbols: set[str]) -> list[tuple[str, int, str]]:
    """``(name, value, why)`` for each "valid only when name == value" inference found."""
    out = []
    for c in table.conflicts:
        if c.relation != "only_when" or c.when is None:
            continue
        for name, value in c.when.when:
            if name in symbols and value > 0:
                out.append((name, int(value), f"{c.node.op_type} {c.node.name or ''} valid only when {name} == {value}".replace("  ", " ")))
    return out


def plan_bindings(model: onnx.ModelProto, mg: ModelGraph, table: ShapeTable, user: dict[str, int] | None = None,
                  limit: int = MAX_BINDINGS) -> list[Binding]:
    """Concrete values for every symbolic dim of the graph inputs.

    Each dim gets 1 and a value other than its traced one (3, or 5 when the
    model was traced at 3), its traced value when the model shows one, the
    values of relations inference found, and the user's ``--dim`` values;
    each binding is raised where needed so Reshapes divide evenly and
    convolutions keep a positive size.
    """
    user = dict(user or {})
    names = _input_symbols(model)
    symset = set(names)
    if not names:
        return [Binding({}, ["the inputs have static shapes"])]
    checks = _checks(mg, table, symset)
    traced = traced_values(model, mg, table, symset)
    plans: list[Binding] = []

    def add(dims, why, fixed=()):
        dims = _repair({n: dims[n] for n in names}, checks, fixed)
        b = Binding(dims, [why])
        for old in plans:
            if old.key() == b.key():
                if why not in old.why:
                    old.why.append(why)
                return old
        plans.append(b)
        return b

    add({n: 1 for n in names}, "every dim at 1")
    relations = relation_values(table, symset)
    high = {}
    for n in names:
        # the size the model was traced at shows in the literal it baked, or in "valid only when n == v"
        avoid = {v for m, (v, _) in traced.items() if m == n} | {v for m, v, _ in relations if m == n}
        want = 3
        for _ in range(8):
            got = _repair({**{m: 1 for m in names}, n: want}, checks, ())[n]
            if got not in avoid:
                break
            want = got + 2
        high[n] = want
    add(high, "a size other than the traced one" if (traced or relations) else "a size other than 1")
    if traced:
        base = {**high, **{n: v for n, (v, _) in traced.items()}}
        why = "the traced size (" + "; ".join(f"{n}={v}: {e}" for n, (v, e) in traced.items()) + ")"
        add(base, why, fixed=tuple(traced))
    else:
        base = high
    if user:
        unknown = sorted(set(user) - symset)
        dims = {**high, **{k: v for k, v in user.items() if k in symset}}
        if len(unknown) < len(user):
            add(dims, "--dim " + " ".join(f"{k}={v}" for k, v in user.items() if k in symset), fixed=tuple(user))
    for name, value, why in relations:
        add({**base, name: value}, why, fixed=(name,))
    return plans[:limit]


# ----------------------------------------------------------------------- feeds
_PASSTHROUGH = {"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Clip"}


def _index_bound(mg: ModelGraph, table: ShapeTable, name: str) -> tuple[int | None, str | None]:
    """Rows of the embedding tables that ``name`` indexes (through casts and reshapes)."""
    bound, why, frontier, seen = None, None, [name], {name}
    while frontier:
        t = frontier.pop()
        for c in mg.consumers(t):
            if c.op_type == "Gather" and len(c.input) > 1 and c.input[1] == t:
                axis = next((a.i for a in c.attribute if a.name == "axis"), 0)
                shape = table.shape(c.input[0])
                if shape and -len(shape) <= axis < len(shape) and isinstance(shape[axis], int):
                    if bound is None or shape[axis] < bound:
                        bound, why = shape[axis], f"rows of {c.input[0]!r} gathered by {c.name or 'Gather'}"
            elif c.op_type in _PASSTHROUGH and c.input and c.input[0] == t:
                for o in c.output[:1]:
                    if o and o not in seen:
                        seen.add(o)
                        frontier.append(o)
    return bound, why


def _shape_role(mg: ModelGraph, name: str) -> str | None:
    for c in mg.consumers(name):
        idx = [i for i, x in enumerate(c.input) if x == name]
        if c.op_type == "Reshape" and 1 in idx:
            return "reshape"
        if (c.op_type in ("Expand", "Tile") and 1 in idx) or (c.op_type == "ConstantOfShape" and 0 in idx):
            return "ones"
        if c.op_type == "Slice" and idx:
            return {1: "zeros", 2: "big", 3: "arange", 4: "ones"}.get(idx[0])
        if c.op_type in ("TopK", "OneHot") and 1 in idx:
            return "ones" if c.op_type == "TopK" else "two"
    return None


def make_feeds(model: onnx.ModelProto, mg: ModelGraph, table: ShapeTable, binding: Binding, seed: int = SEED):
    """Inputs of every graph input at ``binding``; returns ``(feeds, notes)``.

    Floats are standard normal; integer inputs that index an embedding table
    are token ids in ``[0, rows)``, other integers are in ``[0, 2)``, and
    integers that feed a Reshape/Expand/Slice shape get neutral values;
    booleans are all true.  The same binding and seed give the same feeds.
    """
    rng = np.random.default_rng([seed, *sorted(binding.dims.values())])
    subs = {_sym(k): v for k, v in binding.dims.items()}
    inits = {t.name for t in model.graph.initializer}
    feeds, notes = {}, []
    total = 0
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            notes.append(f"input {vi.name!r} is not a tensor: verify cannot build it")
            raise VerifyError(notes[-1])
        tt = vi.type.tensor_type
        shape = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(int(d.dim_value))
            else:
                v = evaluate(parse_dim(d.dim_param), subs) if d.dim_param else None
                shape.append(1 if v is None else v)
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        except (KeyError, ValueError):
            raise VerifyError(f"input {vi.name!r} has element type {tt.elem_type}, which verify cannot build") from None
        if dtype.kind == "V" or str(dtype) in ("bfloat16",) or dtype.kind not in "fiub" and dtype != np.dtype(object):
            raise VerifyError(f"input {vi.name!r} has type {onnx.helper.tensor_dtype_to_string(tt.elem_type)}, "
                              "which numpy cannot build; verify skips this model")
        if any(n < 0 for n in shape):
            raise VerifyError(f"input {vi.name!r} would have the shape {tuple(shape)} at {binding.label}: "
                              "a negative dim, verify cannot build it")
        count = 1
        for n in shape:
            count *= n
        total += count * max(dtype.itemsize, 1)
        if total > MAX_FEED_BYTES:
            raise VerifyError(f"input {vi.name!r} of shape {tuple(shape)} at {binding.label} takes the inputs past "
                              f"{MAX_FEED_BYTES // 2**20} MiB, more than verify builds")
        if dtype.kind == "f":
            value = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            value = np.ones(shape, dtype=bool)
        elif dtype == np.dtype(object):
            value = np.full(shape, "a", dtype=object)
        else:
            role = _shape_role(mg, vi.name)
            n = int(np.prod(shape)) if shape else 1
            if role == "reshape":
                value = np.zeros(shape, dtype=dtype)
            elif role == "ones":
                value = np.ones(shape, dtype=dtype)
            elif role == "two":
                value = np.full(shape, 2, dtype=dtype)
            elif role == "zeros":
                value = np.zeros(shape, dtype=dtype)
            elif role == "big":
                value = np.full(shape, np.iinfo(dtype).max if dtype.kind in "iu" else 1, dtype=dtype)
            elif role == "arange":
                value = np.arange(n, dtype=dtype).reshape(shape)
            else:
                rows, _why = _index_bound(mg, table, vi.name)
                high = max(1, rows) if rows is not None else 2
                value = rng.integers(0, high, size=shape).astype(dtype)
        feeds[vi.name] = value
    return feeds, notes


# --------------------------------------------------------------------- execute
@dataclass
class RunResult:
    """One run of one job at one binding."""

    status: str  # ok | error | crash | timeout | memory | not-run
    message: str = ""
    shapes: dict[str, list[int] | None] = field(default_factory=dict)
    seconds: float = 0.0
    phase: str = "run"  # "session" when the session could not be created
    values: dict[str, np.ndarray] | None = None


@dataclass
class Failure:
    """A failing node, as onnxruntime named it and as the user knows it."""

    node: onnx.NodeProto | None
    op_type: str | None
    message: str  # cleaned onnxruntime message
    phase: str


@dataclass
class Execution:
    """Everything one verify run learned from onnxruntime."""

    bindings: list[Binding]
    main: list[RunResult]
    #: binding index -> the failures found there, first the one the full model hit
    failures: dict[int, list[Failure]] = field(default_factory=dict)
    #: binding index -> the run of the graph without the failing nodes and what depends on them
    upstream: dict[int, RunResult] = field(default_factory=dict)
    provider: str = "cpu"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int | None = DEFAULT_MEMORY_MB


def _onnxruntime():
    """``import onnxruntime`` with HOME and TMPDIR in a temp folder, removed afterwards.

    The import writes ``$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime/``
    and ``$TMPDIR/.ses``; the parent only lists providers, so nothing of it
    is kept (the child gets a HOME of its own, see :class:`Worker`).
    """
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    home = tempfile.mkdtemp(prefix="shapelint-ort-")
    saved = {k: os.environ.get(k) for k in ("HOME", "TMPDIR", "TMP", "TEMP", "XDG_CACHE_HOME", "PYTHONUSERBASE")}
    try:
        os.environ.update(_child_env(home))
        import onnxruntime
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(home, ignore_errors=True)
    return onnxruntime


def provider_available(provider: str) -> bool:
    """True when this onnxruntime offers ``provider`` (``cpu`` or ``cuda``)."""
    return _PROVIDERS[provider] in _onnxruntime().get_available_providers()


def _node_names(model: onnx.ModelProto) -> list[str]:
    """The main graph's node names, with unnamed nodes given ``shapelint#<i>``."""
    return [n.name or f"shapelint#{i}" for i, n in enumerate(model.graph.node)]


def _exposed(model: onnx.ModelProto, keep: list[int] | None = None) -> onnx.ModelProto:
    """A copy whose main-graph node outputs are all graph outputs (untyped).

    With ``keep`` (node indices) only those nodes stay: the part of the
    graph above a failing node.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    names = _node_names(model)
    for i, node in enumerate(g.node):
        node.name = names[i]
    if keep is not None:
        keep_set = set(keep)
        nodes = [n for i, n in enumerate(g.node) if i in keep_set]
        del g.node[:]
        g.node.extend(nodes)
        produced = {o for n in nodes for o in n.output if o}
        passthrough = {vi.name for vi in g.input} | {t.name for t in g.initializer}
        olds = [vi for vi in g.output if vi.name in produced or vi.name in passthrough]
        del g.output[:]
        g.output.extend(olds)
    present = {vi.name for vi in g.output}
    for node in g.node:
        for name in node.output:
            if name and name not in present:
                present.add(name)
                g.output.append(onnx.ValueInfoProto(name=name))
    return out


def _cone(model: onnx.ModelProto, index: int) -> set[int]:
    """The main-graph node at ``index`` and every node that depends on its outputs."""
    from .graph import _all_inputs

    nodes = list(model.graph.node)
    consumers: dict[str, list[int]] = {}
    for j, n in enumerate(nodes):
        for t in set(_all_inputs(n)):
            consumers.setdefault(t, []).append(j)
    out, stack = {index}, [index]
    while stack:
        j = stack.pop()
        for t in nodes[j].output:
            for k in consumers.get(t, ()):
                if k not in out:
                    out.add(k)
                    stack.append(k)
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_SRC = re.compile(r"(?:/\S*)?[\w.\-]+\.(?:h|cc|cpp|cu):\d+\s+(?:[A-Za-z_]\w*\s+(?=[A-Z]))?")
_SIG = re.compile(r"(?:[\w:<>~*&,\s]*?)onnxruntime::[\w:<>~]+\([^()]*\)(?:\s*const)?\s*(?:\[with [^\]]*\]\s*)?")
_RUNNING = re.compile(r"while running (\S+) node\. Name:'([^']*)' Status Message:\s*(.*)", re.DOTALL)
_SESSION_NODE = re.compile(r"Node \(([^)]*)\) Op \(([\w.]+)\)\s*(.*)", re.DOTALL)
_KERNEL = re.compile(r"onnxruntime::(?:\w+::)*?(\w+)(?:<[\w\s,]*>)?::\1\(")
_UNREGISTERED = re.compile(r"([\w.]*):([\w.]+)\(-?\d+\) is not a registered function/op")


def _clean(text: str) -> str:
    text = _ANSI.sub("", text).strip()
    text = text.split("\n")[0] if "Non-zero status" not in text else text
    text = _PREFIX.sub("", text)
    text = text.replace("Exception during initialization: ", "")
    text = re.sub(r"Load model from \S+ failed:\s*", "", text)
    text = text.replace("Fatal error: ", "")
    text = _SRC.sub("", text)
    text = _SIG.sub("", text)
    text = re.sub(r"\s+", " ", text).strip()
    # onnxruntime appends its own log line after the message
    text = re.split(r"\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[E:onnxruntime", text)[0]
    return text[:400]


def translate_ort_message(message: str, model: onnx.ModelProto) -> Failure:
    """Find the node an onnxruntime error is about, and clean the message.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[2, 3] x, float[4, 5] w) => (y) { y = MatMul <name="fc"> (x, w) }''')
    >>> m.graph.node[0].name = "/fc/MatMul"
    >>> f = translate_ort_message("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while "
    ...     "running MatMul node. Name:'/fc/MatMul' Status Message: matmul_helper.h:59 Compute MatMul "
    ...     "dimension mismatch", m)
    >>> f.node.name, f.message
    ('/fc/MatMul', 'MatMul dimension mismatch')
    """
    text = _ANSI.sub("", message)
    names = _node_names(model)
    nodes = list(model.graph.node)
    by_name = {}
    for i, n in enumerate(names):
        by_name.setdefault(n, nodes[i])
    m = _RUNNING.search(text)
    if m:
        node = by_name.get(m.group(2))
        if node is None and not m.group(2):
            same = [n for n in nodes if n.op_type == m.group(1)]
            node = same[0] if len(same) == 1 else None
        return Failure(node, m.group(1), _clean(m.group(3)), "run")
    m = _SESSION_NODE.search(text)
    if m:
        return Failure(by_name.get(m.group(1)), m.group(2), _clean(m.group(3)), "session")
    m = _KERNEL.search(text)
    if m:
        kernel = re.sub(r"^(DeepCpu|Cpu|Cuda)|(Base|Op|Kernel|Impl)$", "", m.group(1))
        same = [n for n in nodes if n.op_type.lower() == kernel.lower()]
        return Failure(same[0] if len(same) == 1 else None, same[0].op_type if same else kernel, _clean(text), "session")
    m = _UNREGISTERED.search(text)
    if m:
        same = [n for n in nodes if n.op_type == m.group(2) and (n.domain or "") == m.group(1)]
        return Failure(same[0] if same else None, m.group(2), _clean(text), "session")
    return Failure(None, None, _clean(text), "run")


def _classify(message: str) -> str:
    low = message.lower()
    if "bad_alloc" in low or "failed to allocate" in low or "memoryerror" in low or "out of memory" in low:
        return "memory"
    return "error"


def _worker_command(config: dict) -> list[str]:
    """The child process's command line (tests replace it to simulate crashes)."""
    return [sys.executable, "-m", "shapelint.verify_worker", json.dumps(config)]


def _save_model(model: onnx.ModelProto, path: str) -> None:
    if model.ByteSize() > 1_800_000_000:
        onnx.save(model, path, save_as_external_data=True, location=os.path.basename(path) + ".data")
    else:
        with open(path, "wb") as fh:
            fh.write(model.SerializeToString())


def _signal_name(rc: int | None) -> str:
    if rc is None:
        return "no exit status"
    try:
        return signal.Signals(-rc).name if rc < 0 else f"exit status {rc}"
    except (ValueError, AttributeError):
        return f"exit status {rc}"


class Worker:
    """One onnxruntime child process, kept alive between requests.

    It is started with its memory limit and provider; :meth:`request` sends
    one request and collects its events until ``done``, the child's death,
    or the deadline (then the child is killed).
    """

    def __init__(self, config: dict):
        self.config = config
        self.command = _worker_command(config)
        self.stderr = tempfile.TemporaryFile()
        # the child's HOME and TMPDIR: onnxruntime's cache database and session files stay in here, removed at close
        self.home = tempfile.mkdtemp(prefix="shapelint-ort-")
        self.busy = False
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                         close_fds=True, env=_child_env(self.home))
        except BaseException:
            shutil.rmtree(self.home, ignore_errors=True)
            self.stderr.close()
            raise
        self._buf = b""
        self.ready: dict | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _events(self, deadline: float):
        """Yield events until ``done``; then ``("eof", rc)`` or ``("timeout", None)`` as the last item."""
        import selectors

        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    try:
                        ev = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    yield ev
                    if ev.get("event") in ("done", "fatal", "ready"):
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    yield {"event": "timeout"}
                    return
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    rc = self.proc.wait()
                    yield {"event": "eof", "rc": rc}
                    return
                self._buf += chunk
        finally:
            sel.close()

    def start(self, deadline: float) -> dict:
        """Wait for ``ready`` (or ``fatal``/death/timeout); returns that event."""
        for ev in self._events(deadline):
            self.ready = ev
        return self.ready

    def request(self, req: dict, deadline: float) -> list[dict]:
        self.busy = True  # until the answer is complete: an interrupted request means a kill at close
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.busy = False
            return [{"event": "eof", "rc": self.proc.wait()}]
        events = list(self._events(deadline))
        self.busy = False
        return events

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            text = self.stderr.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def close(self, kill: bool = False) -> None:
        """Stop the child (killed at once when ``kill`` or when a request was interrupted) and remove its HOME."""
        if self.proc.poll() is None:
            if kill or self.busy:
                self.proc.kill()
            else:
                try:
                    self.proc.stdin.close()
                    self.proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
            self.proc.wait()
        for fh in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                fh.close()
            except (OSError, AttributeError):
                pass
        shutil.rmtree(self.home, ignore_errors=True)


def _child_env(home: str) -> dict:
    """The worker's environment: HOME, TMPDIR and the caches point into ``home``; imports still work."""
    import site

    env = dict(os.environ)
    env.setdefault("PYTHONUSERBASE", site.getuserbase())  # packages installed with --user stay importable
    cache = os.path.join(home, ".cache")
    env.update(HOME=home, TMPDIR=home, TMP=home, TEMP=home, XDG_CACHE_HOME=cache)
    return env


_POOL: dict[tuple, Worker] = {}


def _worker(config: dict, deadline: float) -> tuple[Worker | None, dict]:
    """A ready worker for ``config`` (reused when alive), or ``(None, why)``."""
    key = tuple(_worker_command(config))
    w = _POOL.get(key)
    if w is not None and w.alive:
        return w, w.ready
    if w is not None:
        w.close(kill=True)
        _POOL.pop(key, None)
    w = Worker(config)
    ev = w.start(deadline)
    if ev is None or ev.get("event") != "ready":
        if ev is not None and ev.get("event") == "eof":
            ev = {"event": "fatal", "message": f"the onnxruntime child process died at start ({_signal_name(ev.get('rc'))})"
                  + (f": {_clean(w.stderr_tail())}" if w.stderr_tail() else "")}
        w.close(kill=True)
        return None, ev or {"event": "fatal", "message": "the onnxruntime child process did not start"}
    _POOL[key] = w
    return w, ev


def shutdown_workers() -> None:
    """Stop every child process verify started (also run at exit)."""
    for key in list(_POOL):
        _POOL.pop(key).close()


atexit.register(shutdown_workers)


def run_jobs(jobs: list[dict], provider: str, timeout: float, memory_mb: int | None,
             threads: int | None = None) -> dict[tuple[str, int], RunResult]:
    """Run ``jobs`` in the child process; a crash or hang costs the run in flight, not the rest.

    ``jobs``: ``[{"id", "model" (path), "runs": [{"index", "feeds" (path), "values"}]}]``.
    """
    results: dict[tuple[str, int], RunResult] = {}
    done: set[tuple[str, int]] = set()
    wanted = [(j["id"], r["index"]) for j in jobs for r in j["runs"]]
    deadline = time.monotonic() + timeout
    if threads is None:
        threads = max(1, min(4, os.cpu_count() or 1))
    config = {"provider": provider, "memory_mb": memory_mb if provider == "cpu" else None, "threads": threads,
              "parent": os.getpid()}  # the child dies with this process (PR_SET_PDEATHSIG)
    for _attempt in range(len(wanted) + 1):
        todo = [w for w in wanted if w not in done]
        if not todo:
            break
        if deadline - time.monotonic() <= 0:
            for w in todo:
                results[w] = RunResult("not-run", f"not run: the {timeout:g}s time limit was spent")
                done.add(w)
            break
        worker, ev = _worker(config, deadline)
        if worker is None:
            if ev.get("event") == "timeout":
                for w in todo:
                    results[w] = RunResult("timeout", f"the onnxruntime child process did not start within {timeout:g}s")
                    done.add(w)
                break
            if ev.get("status") == "no-provider":
                raise ProviderUnavailable(ev["message"])
            raise VerifyError(ev.get("message", "the verify worker failed"))
        events = worker.request({"jobs": jobs, "skip": sorted(done)}, deadline)
        in_flight: list[tuple[str, int]] = []
        end = events[-1] if events else {"event": "eof", "rc": None}
        for ev in events:
            kind, job = ev.get("event"), ev.get("job")
            if kind == "session-start":
                in_flight = [w for w in todo if w[0] == job]
            elif kind == "session":
                if ev["status"] == "no-provider":
                    raise ProviderUnavailable(ev["message"])
                if ev["status"] != "ok":
                    msg = ev.get("message", "")
                    for w in todo:
                        if w[0] == job:
                            results[w] = RunResult(_classify(msg), msg, phase="session", seconds=ev.get("seconds", 0.0))
                            done.add(w)
                in_flight = []
            elif kind == "start":
                in_flight = [(job, ev["index"])]
            elif kind == "run":
                w = (job, ev["index"])
                status = "ok" if ev["status"] == "ok" else _classify(ev.get("message", ""))
                results[w] = RunResult(status, ev.get("message", ""), ev.get("shapes", {}), ev.get("seconds", 0.0))
                done.add(w)
                in_flight = []
        if end.get("event") == "done":
            continue
        culprit = in_flight or [w for w in todo if w not in done][:1]
        if end.get("event") == "timeout":
            worker.close(kill=True)
            _POOL.pop(tuple(worker.command), None)
            for w in culprit:
                results[w] = RunResult("timeout", f"onnxruntime did not finish within the {timeout:g}s time limit")
                done.add(w)
            for w in wanted:
                if w not in done:
                    results[w] = RunResult("not-run", "not run: an earlier run used up the time limit")
                    done.add(w)
            break
        # the child died
        tail = worker.stderr_tail()
        worker.close(kill=True)
        _POOL.pop(tuple(worker.command), None)
        rc = end.get("rc")
        why = (f"the onnxruntime child process died ({_signal_name(rc)})" if rc is not None and rc < 0
               else f"the onnxruntime child process exited ({_signal_name(rc)})")
        status = "memory" if ("MemoryError" in tail or "bad_alloc" in tail) else "crash"
        for w in culprit:
            results[w] = RunResult(status, why + (f": {_clean(tail)}" if tail else ""))
            done.add(w)
    for w in wanted:
        results.setdefault(w, RunResult("not-run", "not run"))
    return results


def execute(prepared: Prepared, mg: ModelGraph, table: ShapeTable, bindings: list[Binding], provider: str = "cpu",
            timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB,
            keep_values: bool = False) -> Execution:
    """Run the model with every intermediate exposed, at each binding, in a child process.

    When a node fails, the graph runs again at that binding without the node
    and everything that depends on it (up to ``MAX_ROUNDS`` times): the
    shapes that reached it become known (and are compared too), and
    failures in independent branches are found.
    """
    if provider not in _PROVIDERS:
        raise VerifyError(f"unknown provider {provider!r}: choose cpu or cuda")
    if not provider_available(provider):
        ort = _onnxruntime()

        hint = " (no GPU on this machine, or the onnxruntime-gpu package is not installed)" if provider == "cuda" else ""
        raise ProviderUnavailable(
            f"onnxruntime {ort.__version__} has no {_PROVIDERS[provider]}{hint}; available: "
            f"{', '.join(ort.get_available_providers())}"
        )
    start = time.perf_counter()
    model = prepared.model
    ex = Execution(bindings, [], provider=provider, timeout=timeout, memory_mb=memory_mb if provider == "cpu" else None)
    tmp = tempfile.mkdtemp(prefix="shapelint-verify-")
    try:
        feeds_paths = []
        for i, b in enumerate(bindings):
            feeds, notes = make_feeds(model, mg, table, b)
            ex.notes.extend(n for n in notes if n not in ex.notes)
            p = os.path.join(tmp, f"feeds{i}.npz")
            np.savez(p, **feeds)
            feeds_paths.append(p)
        main_path = os.path.join(tmp, "main.onnx")
        _save_model(_exposed(model), main_path)

        def values_path(job, i):
            return os.path.join(tmp, f"values-{job}-{i}.npz") if keep_values else None

        jobs = [{"id": "main", "model": main_path,
                 "runs": [{"index": i, "feeds": p, "values": values_path("main", i)} for i, p in enumerate(feeds_paths)]}]
        t_left = timeout
        results = run_jobs(jobs, provider, t_left, memory_mb)
        ex.main = [results[("main", i)] for i in range(len(bindings))]
        budget = [MAX_KEPT_VALUES_BYTES]
        _load_values(ex.main, jobs[0], keep_values, budget)
        # translate failures; then rerun the graph without each failing node and what depends on it, so
        # the shapes that reached it are known and independent failures elsewhere show up too
        excluded: dict[int, set[int]] = {}
        for i, r in enumerate(ex.main):
            if r.status in ("error", "memory") and r.message:
                f = translate_ort_message(r.message, model)
                f.phase = r.phase
                ex.failures[i] = [f]
                idx = _index_of(model, f.node) if f.node is not None else None
                if idx is not None and r.status == "error":
                    excluded[i] = _cone(model, idx)
        for round_ in range(MAX_ROUNDS):
            if not excluded or time.perf_counter() - start > timeout:
                break
            groups: dict[frozenset, list[int]] = {}
            for i, ex_set in excluded.items():
                groups.setdefault(frozenset(ex_set), []).append(i)
            jobs = []
            for k, (ex_set, idxs) in enumerate(groups.items()):
                keep = [j for j in range(len(model.graph.node)) if j not in ex_set]
                if not keep:
                    continue
                path = os.path.join(tmp, f"without{round_}-{k}.onnx")
                _save_model(_exposed(model, keep), path)
                job_id = f"r{round_}g{k}"
                jobs.append({"id": job_id, "model": path,
                             "runs": [{"index": i, "feeds": feeds_paths[i], "values": values_path(job_id, i)} for i in idxs]})
            if not jobs:
                break
            left = max(1.0, timeout - (time.perf_counter() - start))
            res = run_jobs(jobs, provider, left, memory_mb)
            excluded = {}
            for job in jobs:
                rs = [res[(job["id"], r["index"])] for r in job["runs"]]
                _load_values(rs, job, keep_values, budget)
                for r, out in zip(job["runs"], rs):
                    i = r["index"]
                    if out.status == "ok":
                        ex.upstream[i] = out
                        continue
                    if out.status != "error" or not out.message:
                        continue
                    f = translate_ort_message(out.message, model)
                    f.phase = out.phase
                    idx = _index_of(model, f.node) if f.node is not None else None
                    gone = set().union(*(_cone(model, _index_of(model, g.node)) for g in ex.failures[i] if g.node is not None))
                    if idx is None or idx in gone:
                        continue
                    ex.failures[i].append(f)
                    excluded[i] = gone | _cone(model, idx)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ex.seconds = time.perf_counter() - start
    return ex


def reference_run(prepared: Prepared, mg: ModelGraph, table: ShapeTable, bindings: list[Binding], indices: list[int],
                  timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB) -> dict[int, RunResult]:
    """Graph outputs of the model at ``bindings[i]`` for ``i`` in ``indices``, under ``onnx.reference``.

    For a model onnxruntime refuses (an op layout its kernels lack), this is
    what the model means; it runs in the same child process, with the same
    limits, and with the same inputs as :func:`execute`.
    """
    if not indices:
        return {}
    tmp = tempfile.mkdtemp(prefix="shapelint-reference-")
    try:
        path = os.path.join(tmp, "model.onnx")
        _save_model(prepared.model, path)
        runs = []
        for i in indices:
            feeds, _ = make_feeds(prepared.model, mg, table, bindings[i])
            fp = os.path.join(tmp, f"feeds{i}.npz")
            np.savez(fp, **feeds)
            runs.append({"index": i, "feeds": fp, "values": os.path.join(tmp, f"values{i}.npz")})
        job = {"id": "reference", "engine": "reference", "model": path, "runs": runs}
        res = run_jobs([job], "cpu", timeout, memory_mb)
        out = [res[("reference", i)] for i in indices]
        _load_values(out, job, True, [MAX_KEPT_VALUES_BYTES])
        return dict(zip(indices, out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_values(results: list[RunResult], job: dict, keep: bool, budget: list[int]) -> None:
    """Read the values the child saved, while ``budget[0]`` bytes last (the rest are not compared)."""
    if not keep:
        return
    for res, r in zip(results, job["runs"]):
        p = r.get("values")
        if res.status != "ok" or not p or not os.path.exists(p):
            continue
        with open(p + ".json", encoding="utf-8") as fh:
            index = json.load(fh)
        res.values = {}
        with np.load(p, allow_pickle=False) as data:
            for name, key in index.items():
                size = _npz_member_bytes(data, key)
                if size is None or size > budget[0]:
                    continue
                res.values[name] = data[key]
                budget[0] -= res.values[name].nbytes


def _npz_member_bytes(data, key: str) -> int | None:
    """The size of one array of an open ``.npz``, from its zip entry (the array is not read)."""
    try:
        return data.zip.getinfo(f"{key}.npy").file_size
    except (AttributeError, KeyError):
        return None


def _index_of(model: onnx.ModelProto, node: onnx.NodeProto) -> int | None:
    for i, n in enumerate(model.graph.node):
        if n is node:
            return i
    return None


# --------------------------------------------------------------------- compare
@dataclass
class Disagreement:
    tensor: str
    node: onnx.NodeProto | None
    inferred: tuple
    expected: tuple  # inferred, evaluated at the binding (None where unknown)
    runtime: tuple
    binding: Binding


def compare_shapes(model: onnx.ModelProto, mg: ModelGraph, table: ShapeTable, ex: Execution):
    """``(disagreements, tensors compared)`` over every run that produced shapes."""
    out: list[Disagreement] = []
    compared = 0
    producers = {o: n for n in model.graph.node for o in n.output if o}
    runs = [(i, r) for i, r in enumerate(ex.main)] + [(i, r) for i, r in ex.upstream.items()]
    for i, r in runs:
        if r.status != "ok":
            continue
        b = ex.bindings[i]
        subs = {_sym(k): v for k, v in b.dims.items()}
        for name, rt in r.shapes.items():
            if rt is None:
                continue
            shape = table.shape(name)
            if shape is None:
                continue
            compared += 1
            expected = tuple(evaluate(d, subs) for d in shape)
            bad = len(expected) != len(rt) or any(e is not None and e != x for e, x in zip(expected, rt))
            if bad:
                out.append(Disagreement(name, producers.get(name), tuple(shape), expected, tuple(rt), b))
    return out, compared


# ----------------------------------------------------------------- diagnostics
def _at(bindings: list[Binding]) -> str:
    """``batch=1 and batch=3``; ``(batch=1, seq=1) and (batch=3, seq=3)``."""
    labels = [b.label for b in bindings]
    if any("," in x for x in labels):
        labels = [f"({x})" for x in labels]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _label(node: onnx.NodeProto | None, op_type: str | None = None, model: onnx.ModelProto | None = None) -> str:
    if node is None:
        return f"a {op_type} node" if op_type else "an unknown node"
    if node.name:
        return f"{node.op_type} {node.name!r}"
    idx = _index_of(model, node) if model is not None else None
    return f"the unnamed {node.op_type}" + (f" (node #{idx})" if idx is not None else "")


def _shape_at(shape, subs) -> str:
    if shape is None:
        return "(?)"
    vals = tuple(evaluate(d, subs) for d in shape)
    return format_shape(tuple(v if v is not None else d for v, d in zip(vals, shape)))


def _inputs_text(f: Failure, table: ShapeTable, upstream: RunResult | None, b: Binding, model) -> str:
    """The failing node's inputs: symbolic shape, and what reached it at runtime."""
    if f.node is None:
        return ""
    subs = {_sym(k): v for k, v in b.dims.items()}
    inits = {t.name: t for t in model.graph.initializer}
    parts = []
    for name in list(dict.fromkeys(n for n in f.node.input if n))[:4]:
        shape = table.shape(name)
        sym = format_shape(shape)
        rt = upstream.shapes.get(name) if upstream is not None and upstream.status == "ok" else None
        if rt is None and name in inits:
            rt = list(inits[name].dims)
        if rt is None and shape is not None and all(evaluate(d, subs) is not None for d in shape):
            rt = [evaluate(d, subs) for d in shape]
        if rt is not None and sym != format_shape(tuple(rt)):
            parts.append(f"{name} {sym} = {format_shape(tuple(rt))}")
        else:
            parts.append(f"{name} {sym if rt is None else format_shape(tuple(rt))}")
    return "inputs " + ", ".join(parts) if parts else ""


def _is_below(mg: ModelGraph, anchor: onnx.NodeProto, node: onnx.NodeProto) -> bool:
    """``node`` is ``anchor`` or depends on its outputs."""
    if anchor is node:
        return True
    import networkx as nx

    try:
        a, n = mg.info(anchor).key, mg.info(node).key
    except KeyError:
        return False
    return nx.has_path(mg.nx, a, n)


def _diag(code: str, node, message: str, tensor=None, mg: ModelGraph | None = None, op_type=None) -> Diagnostic:
    slug, severity, _ = RUNTIME_CODES[code]
    return Diagnostic(
        rule=code, name=slug, severity=severity,
        node=(node.name or None) if node is not None else None,
        op_type=node.op_type if node is not None else op_type,
        tensor=tensor, message=message,
        source=mg.source(node) if (mg is not None and node is not None) else None,
    )


def _wanted(code: str, select, ignore) -> bool:
    from .runner import matches

    if select and not matches(code, select):
        return False
    return not (ignore and matches(code, ignore))


def _declared_outputs(model: onnx.ModelProto) -> dict[str, list]:
    """Graph outputs' declared dims (ints, parsed dim_params, or None)."""
    out = {}
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            out[vi.name] = [int(d.dim_value) if d.HasField("dim_value") else (parse_dim(d.dim_param) if d.dim_param else None)
                            for d in vi.type.tensor_type.shape.dim]
    return out


def _declared_mismatch(tensor: str, declared: dict, ex: Execution):
    """``(binding, runtime shape, declared text)`` where a graph output's runtime shape breaks its declaration."""
    if tensor not in declared:
        return None
    dims = declared[tensor]
    for i, b in enumerate(ex.bindings):
        runs = [r for r in (ex.main[i], ex.upstream.get(i)) if r is not None and r.status == "ok"]
        rt = next((r.shapes.get(tensor) for r in runs if r.shapes.get(tensor) is not None), None)
        if rt is None:
            continue
        subs = {_sym(k): v for k, v in b.dims.items()}
        want = [evaluate(d, subs) if d is not None else None for d in dims]
        if len(want) != len(rt) or any(w is not None and w != x for w, x in zip(want, rt)):
            text = format_shape(tuple(dims))
            shown = format_shape(tuple("?" if w is None else w for w in want))
            return b, rt, text if text == shown else f"{text} = {shown}"
    return None


def _ran(anchor, tensor, ex: Execution, i: int) -> bool:
    """The anchor node's outputs (or the finding's tensor) exist at binding ``i``."""
    names = [o for o in anchor.output if o] if anchor is not None else ([tensor] if tensor else [])
    for r in (ex.main[i], ex.upstream.get(i)):
        if r is not None and r.status == "ok":
            if not names or any(n in r.shapes for n in names):
                return True
    return False


def annotate(report: FileReport, prepared: Prepared, mg: ModelGraph, table: ShapeTable, ex: Execution,
             select=None, ignore=None) -> FileReport:
    """Mark the static findings confirmed or not, add SL900–SL902; returns ``report``."""
    model = prepared.model
    by_name = {}
    for n in model.graph.node:
        if n.name:
            by_name.setdefault(n.name, n)
    # --- runtime failures, grouped by the node that failed
    groups: dict[tuple, list[tuple[int, Failure]]] = {}
    crashes: list[int] = []
    for i, r in enumerate(ex.main):
        if r.status in ("crash", "timeout", "memory"):
            crashes.append(i)
            continue
        for f in ex.failures.get(i, ()):
            key = (id(f.node), f.phase) if f.node is not None else (f.op_type, f.message, f.phase)
            groups.setdefault(key, []).append((i, f))
    ok = [i for i, r in enumerate(ex.main) if r.status == "ok"]
    declared = _declared_outputs(model)
    explained: set[tuple] = set()
    for d in report.diagnostics:
        if d.rule in RUNTIME_CODES:
            continue
        anchor = by_name.get(d.node) if d.node else None
        hits = []
        for key, members in groups.items():
            f = members[0][1]
            if anchor is not None and f.node is not None and _is_below(mg, anchor, f.node) or anchor is None and d.node is None and d.op_type is None:
                hits.append((key, members))
        if hits:
            explained.update(k for k, _ in hits)
            _key, members = hits[0]
            i0, f = members[0]
            fails = sorted({i for _, ms in hits for i, _ in ms})
            where = "at session creation" if f.phase == "session" else "at " + _at([ex.bindings[i] for i in fails])
            inputs = _inputs_text(f, table, ex.upstream.get(i0), ex.bindings[i0], model)
            summary = f"confirmed: onnxruntime fails {where} in {_label(f.node, f.op_type, model)}: {f.message}"
            if inputs:
                summary += f" ({inputs} at {ex.bindings[i0].label})" if ex.bindings[i0].dims else f" ({inputs})"
            if ok:
                summary += "; runs at " + _at([ex.bindings[i] for i in ok])
            d.runtime = {"status": "confirmed", "summary": summary,
                         "fails": [{"dims": ex.bindings[i].dims, "node": _fname(g), "message": g.message}
                                   for _, ms in hits for i, g in ms],
                         "runs": [ex.bindings[i].dims for i in ok]}
            continue
        seen_at = _declared_mismatch(d.tensor, declared, ex) if d.tensor else None
        if seen_at is not None:
            b, rt, decl = seen_at
            d.runtime = {"status": "confirmed", "fails": [],
                         "runs": [ex.bindings[i].dims for i in ok],
                         "summary": f"confirmed: onnxruntime computes {format_shape(tuple(rt))} for graph output "
                                    f"{d.tensor!r}, declared {decl} at {b.label}"}
            continue
        ran = [i for i in range(len(ex.main)) if _ran(anchor, d.tensor, ex, i)]
        if ran:
            others = "" if len(ran) == len(ex.main) else "; other bindings fail elsewhere"
            d.runtime = {"status": "not-reproduced", "fails": [], "runs": [ex.bindings[i].dims for i in ran],
                         "summary": f"not reproduced: onnxruntime runs {_label(anchor, d.op_type, model) if anchor is not None else 'the model'} "
                                    f"without error at {_at([ex.bindings[i] for i in ran])}{others} (a finding about values "
                                    "or layout, or a declared shape, shows no runtime error)"}
        else:
            d.runtime = {"status": "not-checked", "fails": [], "runs": [],
                         "summary": "not checked: onnxruntime did not reach this node at any binding"}
    added: list[Diagnostic] = []
    # --- SL901: failures no static finding explains
    for key, members in groups.items():
        if key in explained:
            continue
        i0, f = members[0]
        idxs = sorted({i for i, _ in members})
        where = "at session creation" if f.phase == "session" else "at " + _at([ex.bindings[i] for i in idxs])
        inputs = _inputs_text(f, table, ex.upstream.get(i0), ex.bindings[i0], model)
        msg = f"onnxruntime fails {where} in {_label(f.node, f.op_type, model)}: {f.message}"
        if inputs:
            msg += f" ({inputs} at {ex.bindings[i0].label})" if ex.bindings[i0].dims else f" ({inputs})"
        if ok:
            msg += "; it runs at " + _at([ex.bindings[i] for i in ok])
        msg += "; no static finding predicted this"
        added.append(_diag("SL901", f.node, msg, mg=mg, op_type=f.op_type))
    # --- SL902: crashes, hangs, memory
    crash_groups: dict[tuple, list[int]] = {}
    for i in crashes:
        r, f = ex.main[i], (ex.failures.get(i) or [None])[0]
        msg = f.message if f is not None else r.message
        crash_groups.setdefault((r.status, id(f.node) if f is not None else None, msg), []).append(i)
    for (status, _node, msg), idxs in crash_groups.items():
        f = (ex.failures.get(idxs[0]) or [None])[0]
        limit = f"ran out of the {ex.memory_mb} MB memory limit" if ex.memory_mb else "ran out of memory"
        what = {"timeout": f"hung (time limit {ex.timeout:g}s)", "memory": limit, "crash": "crashed"}.get(status, status)
        where = f" in {_label(f.node, f.op_type, model)}" if f is not None and (f.node is not None or f.op_type) else ""
        added.append(_diag("SL902", f.node if f is not None else None,
                           f"onnxruntime {what} at {_at([ex.bindings[i] for i in idxs])}{where}: {msg}; shapelint carried on",
                           mg=mg, op_type=f.op_type if f is not None else None))
    # --- SL900: inference disagrees with runtime
    dis, compared = compare_shapes(model, mg, table, ex)
    bad_tensors = {x.tensor for x in dis}
    first: dict[str, list[Disagreement]] = {}
    for x in dis:
        first.setdefault(x.tensor, []).append(x)
    for name, xs in first.items():
        node = xs[0].node
        upstream_bad = node is not None and any(t in bad_tensors for t in node.input)
        if upstream_bad:
            continue
        downstream = 0
        if node is not None:
            import networkx as nx

            try:
                desc = nx.descendants(mg.nx, mg.info(node).key)
                downstream = sum(1 for t in bad_tensors if t != name and mg.producer(t) is not None
                                 and mg.info(mg.producer(t)).key in desc)
            except KeyError:
                downstream = 0
        x = xs[0]
        inputs = ""
        if node is not None:
            subs = {_sym(k): v for k, v in x.binding.dims.items()}
            parts = []
            for t in dict.fromkeys(t for t in node.input if t):
                sym, at = format_shape(table.shape(t)), _shape_at(table.shape(t), subs)
                value = table.get(t).value
                shown = f" holding [{', '.join(format_dim(v) for v in value)}]" if value is not None and len(value) <= 8 else ""
                parts.append(f"{t} {sym}" + (f" = {at}" if at != sym else "") + shown)
            inputs = f"; {node.op_type} inputs: " + ", ".join(parts) if parts else ""
        at = "; ".join(f"{y.binding.label}: inferred {format_shape(y.inferred)} = "
                       f"{format_shape(tuple('?' if e is None else e for e in y.expected))}, onnxruntime {format_shape(y.runtime)}"
                       for y in xs[:3])
        more = f"; and {downstream} tensor(s) below it disagree as a consequence" if downstream else ""
        added.append(_diag("SL900", node, f"shape inference disagrees with onnxruntime on {name!r} at {at}{inputs}{more} "
                           "(a bug in shapelint's inference: please report it)", tensor=name, mg=mg))
    report.diagnostics.extend(d for d in added if _wanted(d.rule, select, ignore))
    statuses = []
    for i, (b, r) in enumerate(zip(ex.bindings, ex.main)):
        row = {"dims": b.dims, "why": b.why, "status": "ok" if r.status == "ok" else ("fails" if i in ex.failures and r.status == "error" else r.status),
               "seconds": round(r.seconds, 4)}
        if i in ex.failures:
            first = ex.failures[i][0]
            row["node"] = _fname(first)
            row["message"] = first.message
            row["phase"] = first.phase
            if len(ex.failures[i]) > 1:
                row["also"] = [{"node": _fname(g), "message": g.message, "phase": g.phase} for g in ex.failures[i][1:]]
        elif r.status != "ok":
            row["message"] = r.message
        statuses.append(row)
    report.runtime = {
        "provider": ex.provider,
        "weights": prepared.weights,
        "bindings": statuses,
        "tensors_compared": compared,
        "disagreements": len(dis),
        "notes": prepared.notes + ex.notes + [f"{k}: name given to {v}" for k, v in prepared.renamed_dims.items()],
        "seconds": round(ex.seconds, 3),
    }
    return report


def _fname(f: Failure) -> str | None:
    if f.node is None:
        return None
    return f.node.name or None


# ------------------------------------------------------------------------- API
def verify(model_or_path, dims: dict[str, int] | None = None, provider: str = "cpu",
           timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB, rules=None,
           select=None, ignore=None, static: FileReport | None = None, keep_values: bool = False,
           return_execution: bool = False):
    """Check a model, then run it under onnxruntime and confirm the findings.

    Returns a :class:`FileReport` whose diagnostics carry ``runtime`` and
    whose ``runtime`` summarises the bindings run.  ``static`` reuses a
    report ``check`` already made.  Raises :class:`ProviderUnavailable` when
    ``provider`` is missing; a model that cannot be read gives a report with
    ``error`` set.
    """
    start = time.perf_counter()
    path = "<model>" if isinstance(model_or_path, onnx.ModelProto) else os.fspath(model_or_path)
    try:
        prepared = prepare(model_or_path)
    except LoadError as exc:
        report = FileReport(path, error=str(exc), seconds=time.perf_counter() - start)
        return (report, None) if return_execution else report
    mg = ModelGraph.from_model(prepared.model)
    table = infer(mg)
    if static is None:
        # check's spine, reusing the graph and shapes verify needs anyway
        from .plugins import load_rules
        from .runner import run_rules, select_rules

        chosen = select_rules(rules if rules is not None else load_rules(), select, ignore)
        static = FileReport(path, run_rules(chosen, mg, table, path))
    report = static
    bindings = plan_bindings(prepared.model, mg, table, dims)
    try:
        ex = execute(prepared, mg, table, bindings, provider=provider, timeout=timeout, memory_mb=memory_mb,
                     keep_values=keep_values)
    except ProviderUnavailable:
        raise
    except VerifyError as exc:
        report.runtime = {"provider": provider, "weights": prepared.weights, "bindings": [], "tensors_compared": 0,
                          "disagreements": 0, "notes": [f"not verified: {exc}"], "seconds": 0.0}
        return (report, None) if return_execution else report
    annotate(report, prepared, mg, table, ex, select=select, ignore=ignore)
    report.seconds = time.perf_counter() - start
    return (report, ex) if return_execution else report


def _guarded(path, **kwargs) -> FileReport:
    """``verify`` for one file of many: a bug in shapelint becomes that file's error, not a crash."""
    try:
        return verify(path, **kwargs)
    except ProviderUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: one file never stops the run
        logger.debug("verify crashed on %s", path, exc_info=True)
        return FileReport(os.fspath(path), error=f"internal error while verifying: {type(exc).__name__}: {exc}")


def verify_report(run: RunReport, dims=None, provider="cpu", timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB,
                  select=None, ignore=None, progress=None) -> RunReport:
    """Verify every checked file of ``run`` in place (``check --verify``)."""
    start = time.perf_counter()
    for i, f in enumerate(run.files):
        if f.error is not None:
            continue
        run.files[i] = _guarded(f.path, dims=dims, provider=provider, timeout=timeout, memory_mb=memory_mb,
                                select=select, ignore=ignore, static=f)
        if progress:
            progress(run.files[i])
    run.seconds += time.perf_counter() - start
    return run


def verify_paths(paths, dims=None, provider="cpu", timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB,
                 rules=None, select=None, ignore=None, progress=None) -> RunReport:
    """``shapelint verify PATH...``: check and verify each file."""
    from .check import collect_paths
    from .plugins import load_rules

    start = time.perf_counter()
    if rules is None:
        rules = list(load_rules())
    files = []
    for p in collect_paths(paths):
        f = _guarded(p, dims=dims, provider=provider, timeout=timeout, memory_mb=memory_mb, rules=rules,
                     select=select, ignore=ignore)
        files.append(f)
        if progress:
            progress(f)
    return RunReport(files=files, seconds=time.perf_counter() - start)
