"""The weights: a checked model made ready to run (the only place shapelint reads them).

:func:`prepare` takes the :class:`~shapelint.result.CheckResult` of a check
(or, standalone, a model or a path) and returns a copy of its model with
every external tensor read in: only the bytes each reference names, after
:func:`shapelint.load.check_external_data` accepted it.  An absent data file
becomes random weights of the declared shape, and the report says so.
Anonymous input dims get a name (``<input>_dim<k>``) so they can be bound;
:func:`anonymous_dim_name` is the one place that name is made, and the plan
maps it to the symbol inference gave that axis.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..load import ExternalRef, LoadError, check_external_data, external_tensors, load_model, tensor_nbytes
from .codes import MAX_RANDOM_BYTES, SEED

__all__ = ["Prepared", "anonymous_dim_name", "prepare"]


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


def anonymous_dim_name(input_name: str, axis: int) -> str:
    """The name verify gives an input axis the model left anonymous.

    >>> anonymous_dim_name("input:0", 1)
    'input_0_dim1'
    >>> anonymous_dim_name("0", 0)
    'd_0_dim0'
    """
    name = re.sub(r"\W", "_", f"{input_name}_dim{axis}")
    return name if re.match(r"[A-Za-z_]", name) else "d_" + name


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


def _location_of(t: onnx.TensorProto) -> str:
    return next((e.value for e in t.external_data if e.key == "location"), "")


def prepare(source, name_dims: bool = True) -> Prepared:
    """Load a model with its weights.

    ``source`` is a :class:`~shapelint.result.CheckResult` (its model is
    copied, never re-read), a ``ModelProto`` or a path.  Every external
    reference passes :func:`shapelint.load.check_external_data` first
    (inside the model's folder, a regular file, offset and length inside it
    and matching the tensor), wherever the tensor sits (initializers, sparse
    initializers, Constant values, function bodies, subgraphs); then only
    the bytes each reference names are read, so a 3 GiB data file behind a
    4x4 tensor costs 64 bytes.

    Raises
    ------
    LoadError
        the file cannot be read, or an external reference is refused.
    """
    from ..result import CheckResult

    missing: list = []
    refs: list[ExternalRef] = []
    base = None
    if isinstance(source, CheckResult):
        if source.model is None:
            raise LoadError(source.error or "the check result holds no model (released)")
        model = onnx.ModelProto()
        model.CopyFrom(source.model)
        path = source.path
        if path != "<model>":
            base = Path(path).resolve().parent
            refs = check_external_data(model, base, missing=missing)
        else:
            missing = [(where, t, _location_of(t)) for where, t in external_tensors(model)]
    elif isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        path = "<model>"
        missing = [(where, t, _location_of(t)) for where, t in external_tensors(model)]
    else:
        p = Path(source)
        path = os.fspath(source)
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


def _name_anonymous_dims(prepared: Prepared) -> None:
    inits = {t.name for t in prepared.model.graph.initializer}
    for vi in prepared.model.graph.input:
        if vi.name in inits or not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        for k, d in enumerate(vi.type.tensor_type.shape.dim):
            if not d.HasField("dim_value") and not d.dim_param:
                name = anonymous_dim_name(vi.name, k)
                d.dim_param = name
                prepared.renamed_dims[name] = f"axis {k} of input {vi.name!r}"
