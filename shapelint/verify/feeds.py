"""Feeds: the inputs of every graph input at one binding.

Floats are standard normal (or, with ``probe=True``, distinct values that
encode each element's position, so a property check can tell where every
value landed); integer inputs that index an embedding table are token ids in
``[0, rows)``, other integers are in ``[0, 2)``, and integers that feed a
Reshape/Expand/Slice shape get neutral values; booleans are all true.  The
same binding and seed give the same feeds.
"""

from __future__ import annotations

import numpy as np
import onnx

from ..dims import parse_dim
from .codes import MAX_FEED_BYTES, SEED, VerifyError
from .evidence import evaluate
from .plan import Binding

__all__ = ["make_feeds", "probe_values"]

_PASSTHROUGH = {"Cast", "Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Clip"}


def _index_bound(mg, table, name: str) -> tuple[int | None, str | None]:
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


def _shape_role(mg, name: str) -> str | None:
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


def probe_values(shape, dtype) -> np.ndarray:
    """Distinct values, one per element, that say where each element came from: ``flat index + 1``, scaled.

    >>> probe_values((2, 3), np.float32).tolist()
    [[0.0009765625, 0.001953125, 0.0029296875], [0.00390625, 0.0048828125, 0.005859375]]
    """
    n = int(np.prod(shape)) if len(shape) else 1
    return ((np.arange(n, dtype=np.float64) + 1) / 1024).astype(dtype).reshape(shape)


def make_feeds(model: onnx.ModelProto, mg, table, binding: Binding, seed: int = SEED, probe: bool = False):
    """Inputs of every graph input at ``binding``; returns ``(feeds, notes)`` (see the module doc)."""
    rng = np.random.default_rng([seed, *sorted(binding.dims.values())])
    subs = binding.subs
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
            value = probe_values(shape, dtype) if probe else rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            value = np.ones(shape, dtype=bool)
        elif dtype == np.dtype(object):
            value = np.full(shape, "a", dtype=object)
        else:
            value = _integers(mg, table, vi.name, shape, dtype, rng)
        feeds[vi.name] = value
    return feeds, notes


def _integers(mg, table, name, shape, dtype, rng) -> np.ndarray:
    role = _shape_role(mg, name)
    n = int(np.prod(shape)) if shape else 1
    if role in ("reshape", "zeros"):
        return np.zeros(shape, dtype=dtype)
    if role == "ones":
        return np.ones(shape, dtype=dtype)
    if role == "two":
        return np.full(shape, 2, dtype=dtype)
    if role == "big":
        return np.full(shape, np.iinfo(dtype).max if dtype.kind in "iu" else 1, dtype=dtype)
    if role == "arange":
        return np.arange(n, dtype=dtype).reshape(shape)
    rows, _why = _index_bound(mg, table, name)
    high = max(1, rows) if rows is not None else 2
    return rng.integers(0, high, size=shape).astype(dtype)
