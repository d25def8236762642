"""Read an ``.onnx`` file safely: the graph only, weights stay on disk.

Every way a file can be unusable becomes a :class:`LoadError` with one line a
person can act on; nothing here lets a protobuf or OS traceback escape.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from .safeio import UnsafeFile, read_regular

__all__ = [
    "LoadError",
    "load_model",
    "parse_model_bytes",
    "validate_model",
    "external_data_locations",
    "external_tensors",
    "check_external_data",
    "ExternalRef",
    "tensor_nbytes",
    "repair_dim_params",
    "MAX_PROTO_BYTES",
]

logger = logging.getLogger(__name__)

#: protobuf cannot parse one message larger than this
MAX_PROTO_BYTES = 2**31 - 1
#: nesting deeper than this is refused before protobuf parses it recursively
MAX_SUBGRAPH_DEPTH = 64
#: opset versions outside 1..this are refused (onnx itself is at 28; onnx's C++ takes an int32)
MAX_OPSET_VERSION = 10_000


class LoadError(Exception):
    """A model file that cannot be checked; ``str(err)`` is the one-line reason."""


def load_model(path: str | os.PathLike, missing_weights_ok: bool = False) -> onnx.ModelProto:
    """Load the model's graph without reading external weights.

    Raises
    ------
    LoadError
        missing, empty, truncated, not ONNX, unsupported IR version, too large
        for one protobuf, or external data that is missing (unless
        ``missing_weights_ok``), escapes the model's folder or names bytes
        the file does not hold.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        if os.path.islink(p):
            raise LoadError("a symbolic link to a file that does not exist") from None
        raise LoadError("no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise LoadError(f"cannot read file: {_reason(exc)}") from None
    size = st.st_size
    if stat.S_ISDIR(st.st_mode):
        raise LoadError("is a directory, not an .onnx file")
    if not stat.S_ISREG(st.st_mode):
        raise LoadError("not a regular file (a FIFO, socket or device): refused")
    if size == 0:
        raise LoadError("empty file (0 bytes), not an ONNX model")
    if size > MAX_PROTO_BYTES:
        raise LoadError(
            f"file is {size / 2**30:.1f} GiB: a single ONNX protobuf cannot exceed 2 GiB; "
            "save the model with external data (onnx.save(..., save_as_external_data=True))"
        )
    try:
        data = read_regular(p, MAX_PROTO_BYTES)  # never blocks, never reads past the limit (the file may change)
    except UnsafeFile as exc:
        raise LoadError(str(exc)) from None
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    model, scan = _parse(data)
    try:
        check_external_data(model, p.resolve().parent, scan=scan, missing=[] if missing_weights_ok else None)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: a hostile file is an error, not a crash
        logger.debug("loader crashed on %s", p, exc_info=True)
        raise LoadError(f"malformed model ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    return model


def parse_model_bytes(data: bytes) -> onnx.ModelProto:
    """Parse and sanity-check serialized ModelProto bytes."""
    return _parse(data)[0]


#: the first line of a Git LFS pointer file (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md)
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def _parse(data: bytes) -> tuple[onnx.ModelProto, "_Scan"]:
    if data[:200].lstrip().startswith(LFS_POINTER):
        raise LoadError("Git LFS pointer, not the model: run `git lfs pull` (or check out with lfs: true in CI)")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError as exc:
        if "MaxDepth" in str(exc):  # upb stops at 100 nested messages, ~32 levels of If/Loop bodies
            raise LoadError("protobuf nesting too deep to parse (subgraphs nested more than about 32 deep)") from None
        raise LoadError("not a valid ONNX file (protobuf parse failed: truncated or corrupt)") from None
    except RecursionError:
        raise LoadError("protobuf nesting too deep to parse") from None
    except Exception as exc:  # noqa: BLE001 - protobuf raises odd types on hostile input
        raise LoadError(f"not a valid ONNX file ({type(exc).__name__})") from None
    try:
        scan = _validate(model)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: a hostile file is an error, not a crash
        logger.debug("model validation crashed", exc_info=True)
        raise LoadError(f"malformed model ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    return model, scan


def validate_model(model: onnx.ModelProto) -> None:
    """The checks ``load_model`` makes after parsing, for a ModelProto built in memory.

    Raises
    ------
    LoadError
        no graph, unsupported IR version, no opset or an absurd opset
        version, or subgraphs nested too deep.
    """
    _validate(model)


def _validate(model: onnx.ModelProto) -> "_Scan":
    if not model.HasField("graph") or model.ir_version <= 0:
        raise LoadError("not an ONNX model (no graph or IR version in the file)")
    if model.ir_version > onnx.IR_VERSION:
        raise LoadError(
            f"unsupported IR version {model.ir_version} (this onnx {onnx.__version__} "
            f"supports up to {onnx.IR_VERSION}); upgrade onnx"
        )
    if not model.opset_import and model.ir_version >= 3:
        raise LoadError("not a valid ONNX model: no opset_import")
    for imp in model.opset_import:
        if not 1 <= imp.version <= MAX_OPSET_VERSION:
            raise LoadError(f"opset_import {_text(imp.domain) or 'ai.onnx'!r} has version {imp.version}: not an opset version")
    scan = _scan(model.graph, model.functions)
    if scan.depth > MAX_SUBGRAPH_DEPTH:
        raise LoadError(f"subgraphs nested {scan.depth} deep (limit {MAX_SUBGRAPH_DEPTH})")
    repair_dim_params(model, scan=scan)
    return scan


@dataclass
class _Scan:
    """One pass over every node's attributes: what the loader's checks need."""

    depth: int  # deepest nesting of If/Loop/Scan bodies
    graphs: list  # the main graph and every subgraph (model-local function bodies' too)
    attribute_tensors: list  # TENSOR(S) and SPARSE_TENSOR(S) attribute tensors (a Constant's value may be external)
    tensors: list = field(default_factory=list)  # (owner text, TensorProto): every tensor of the file, wherever it sits


def _scan(graph: onnx.GraphProto, functions=()) -> _Scan:
    """Walk the graph, its subgraphs and the model-local functions once, without recursion.

    The attribute loop is the loader's main cost on a 10^5-node graph, so
    the depth, the subgraphs and every tensor (initializers, sparse
    initializers, attribute tensors) come from one pass.  A Scan whose
    ``num_scan_inputs`` is more than its inputs is refused here: later
    passes size lists by that count.
    """
    A = onnx.AttributeProto
    graph_t, graphs_t, tensor_t, tensors_t = A.GRAPH, A.GRAPHS, A.TENSOR, A.TENSORS
    sparse_t, sparses_t, int_t = A.SPARSE_TENSOR, A.SPARSE_TENSORS, A.INT
    out = _Scan(0, [], [])
    tensors = out.tensors
    # (graph or None, nodes, depth, where): a function body has nodes but no GraphProto
    stack = [(graph, graph.node, 0, "graph")]
    stack.extend((None, fn.node, 0, f"function {_text(fn.name)!r}") for fn in functions)
    while stack:
        g, nodes, d, where = stack.pop()
        if g is not None:
            out.graphs.append(g)
            tensors.extend((f"initializer of the {where}", t) for t in g.initializer)
            for sp in g.sparse_initializer:
                tensors.append((f"sparse initializer of the {where}", sp.values))
                tensors.append((f"sparse initializer of the {where}", sp.indices))
        out.depth = max(out.depth, d)
        if d > MAX_SUBGRAPH_DEPTH:
            break
        for node in nodes:
            for attr in node.attribute:
                t = attr.type
                if t == tensor_t:
                    out.attribute_tensors.append(attr.t)
                    tensors.append((f"attribute of a node in the {where}", attr.t))
                elif t == graph_t:
                    stack.append((attr.g, attr.g.node, d + 1, "subgraph"))
                elif t == graphs_t:
                    stack.extend((sg, sg.node, d + 1, "subgraph") for sg in attr.graphs)
                elif t == tensors_t or t == sparse_t or t == sparses_t:
                    more = (list(attr.tensors) if t == tensors_t else [attr.sparse_tensor.values, attr.sparse_tensor.indices]
                            if t == sparse_t else [x for sp in attr.sparse_tensors for x in (sp.values, sp.indices)])
                    out.attribute_tensors.extend(more)
                    tensors.extend((f"attribute of a node in the {where}", x) for x in more)
                elif t == int_t and attr.i > len(node.input) and attr.name == "num_scan_inputs" and node.op_type == "Scan":
                    raise LoadError(
                        f"Scan {_text(node.name) or '<unnamed>'!r} in the {where} has num_scan_inputs={attr.i} "
                        f"but only {len(node.input)} input(s): not a valid model"
                    )
    return out


# ------------------------------------------------------------ dim_param text
#
# ``dims.parse_dim`` never evaluates text (a small parser, no eval), but it
# expects ``str``: python-protobuf hands back ``bytes`` for a proto2 string
# that is not UTF-8, so such dim_params are rewritten here, escaped.


def _value_infos(model: onnx.ModelProto, scan: _Scan):
    """Every ValueInfoProto of the model, its subgraphs and its functions."""
    for g in scan.graphs:
        yield from g.input
        yield from g.output
        yield from g.value_info
    for fn in model.functions:
        yield from getattr(fn, "value_info", ())


def _dim_params(tp: onnx.TypeProto):
    """The ``Dimension`` protos of ``tp`` that carry a ``dim_param``."""
    stack = [tp]
    while stack:
        t = stack.pop()
        which = t.WhichOneof("value")
        if which in ("tensor_type", "sparse_tensor_type"):
            tt = getattr(t, which)
            if tt.HasField("shape"):
                yield from (d for d in tt.shape.dim if d.HasField("dim_param"))
        elif which == "sequence_type":
            stack.append(t.sequence_type.elem_type)
        elif which == "optional_type":
            stack.append(t.optional_type.elem_type)
        elif which == "map_type":
            stack.append(t.map_type.value_type)


def repair_dim_params(model: onnx.ModelProto, scan: _Scan | None = None) -> int:
    """Rewrite ``dim_param`` text that is not UTF-8 as escaped ``str``; returns how many.

    >>> m = onnx.ModelProto()
    >>> repair_dim_params(m)
    0
    """
    fixed = 0
    for vi in _value_infos(model, scan or _scan(model.graph, model.functions)):
        for dim in _dim_params(vi.type):
            if type(dim.dim_param) is not str:
                dim.dim_param = dim.dim_param.decode("utf-8", "backslashreplace")
                fixed += 1
    return fixed


def external_tensors(model: onnx.ModelProto, scan: _Scan | None = None) -> list[tuple[str, onnx.TensorProto]]:
    """``(where, tensor)`` for every tensor stored outside the file, wherever it sits.

    Initializers and sparse initializers of the graph and its subgraphs,
    TENSOR(S)/SPARSE_TENSOR(S) attributes (a Constant's value), in the
    main graph, in subgraphs and in model-local function bodies.
    """
    scan = scan or _scan(model.graph, model.functions)
    external = onnx.TensorProto.EXTERNAL
    return [(where, t) for where, t in scan.tensors if t.data_location == external]


def external_data_locations(model: onnx.ModelProto, scan: _Scan | None = None) -> list[tuple[str, str]]:
    """``(tensor name, location)`` for every tensor stored outside the file."""
    out = []
    for _where, t in external_tensors(model, scan):
        info = {_text(e.key): _text(e.value) for e in t.external_data}
        out.append((_text(t.name), info.get("location", "")))
    return out


@dataclass
class ExternalRef:
    """One external tensor whose reference :func:`check_external_data` accepted."""

    tensor: onnx.TensorProto
    where: str  # "initializer of the graph", "attribute tensor", ...
    location: str
    path: Path  # the data file, symlinks resolved (inside the model's folder)
    offset: int
    length: int  # bytes to read: the ``length`` entry, else what the dims and type need (or the rest of the file)


#: 4-bit element types: two elements per byte
_PACKED = {getattr(onnx.TensorProto, n) for n in ("INT4", "UINT4", "FLOAT4E2M1") if hasattr(onnx.TensorProto, n)}
#: offsets and lengths beyond this are not file positions
_MAX_POSITION = 2**63 - 1


def tensor_nbytes(t: onnx.TensorProto) -> int | None:
    """Bytes the raw data of ``t`` must hold by its dims and type; None for strings and unknown types.

    >>> tensor_nbytes(onnx.helper.make_tensor("w", onnx.TensorProto.FLOAT, [4, 4], [0.0] * 16))
    64
    """
    if t.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
        return None
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except Exception:  # noqa: BLE001 - an unknown data_type: nothing to compare with
        return None
    n = 1
    for d in t.dims:
        n *= int(d)
    if t.data_type in _PACKED:
        return (n + 1) // 2
    return n * itemsize


def _position(value: str | None, key: str, name: str, shown: str) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > _MAX_POSITION:
        raise LoadError(f"external data of {name!r} in {shown!r} has {key} {value[:40]!r}: not a byte position (an integer >= 0)")
    return int(text)


def check_external_data(model: onnx.ModelProto, base: Path, scan: _Scan | None = None,
                        missing: list | None = None) -> list[ExternalRef]:
    """Refuse external-data references that ``check``, ``verify`` and ``fix`` must not follow; never opens the files.

    Every external tensor, wherever it sits (see :func:`external_tensors`).
    Only path arithmetic and ``stat`` calls: ``..``, absolute paths and
    symlinks that resolve outside ``base`` are refused before anything could
    be read, and a location that is not a regular file (a FIFO, a device,
    a folder) is refused too.  ``offset`` and ``length`` must be integers
    >= 0 inside the file, and ``length`` must be what the tensor's dims and
    type need (without ``length`` the file must hold at least that much).
    Returns the accepted references, for the reader (:mod:`shapelint.verify`).
    With a ``missing`` list, a data file that does not exist is not an
    error: ``(where, tensor, location)`` is appended to the list instead.
    """
    base = Path(base)
    files: dict[str, tuple[Path, int]] = {}
    refs: list[ExternalRef] = []
    for where, t in external_tensors(model, scan):
        name = _text(t.name)
        info = {_text(e.key): _text(e.value) for e in t.external_data}
        location = info.get("location", "")
        shown = location if len(location) <= 80 else location[:77] + "..."
        if location not in files:
            try:
                files[location] = _check_location(base, location, name, shown, where)
            except _Missing as exc:
                if missing is None:
                    raise LoadError(str(exc)) from None
                files[location] = None
        if files[location] is None:
            missing.append((where, t, location))
            continue
        target, size = files[location]
        offset = _position(info.get("offset"), "offset", name, shown) or 0
        length = _position(info.get("length"), "length", name, shown)
        need = tensor_nbytes(t)
        if any(d < 0 for d in t.dims):
            raise LoadError(f"external tensor {name!r} has a negative dim {list(t.dims)}: refused")
        if offset > size:
            raise LoadError(f"external data of {name!r}: offset {offset} is past the end of {shown!r} ({size} bytes)")
        if length is not None:
            if offset + length > size:
                raise LoadError(
                    f"external data of {name!r}: offset {offset} + length {length} is past the end of {shown!r} ({size} bytes)"
                )
            if need is not None and length != need:
                raise LoadError(
                    f"external data of {name!r} has length {length} but its dims {list(t.dims)} and type need {need} bytes"
                )
        elif need is not None:
            if size - offset < need:
                raise LoadError(
                    f"external data of {name!r}: {shown!r} holds {size - offset} bytes from offset {offset}, "
                    f"its dims {list(t.dims)} and type need {need}"
                )
            length = need
        else:
            length = size - offset
        refs.append(ExternalRef(t, where, location, target, offset, length))
    return refs


class _Missing(Exception):
    """A data file that does not exist (an error unless the caller collects them)."""


def _check_location(base: Path, location: str, name: str, shown: str, where: str) -> tuple[Path, int]:
    """The resolved data file of ``location`` and its size, or a LoadError."""
    of = "" if where.endswith("of the graph") and where.startswith("initializer") else f" ({where})"
    if not location:
        raise LoadError(f"tensor {name!r}{of} is external but names no location")
    if "\0" in location:
        raise LoadError(f"external data of {name!r}{of} has a NUL byte in its location {shown!r}: refused")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location[:3]:
        raise LoadError(f"external data of {name!r}{of} uses an absolute path {shown!r}: refused")
    try:
        target = (base / location).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # name too long, symlink loop
        raise LoadError(f"external data location {shown!r} of {name!r}{of} cannot be resolved: {_reason(exc)}") from None
    try:
        target.relative_to(base.resolve())
    except ValueError:
        raise LoadError(f"external data of {name!r}{of} points outside the model's folder ({shown!r}): refused") from None
    try:
        st = target.stat()
    except FileNotFoundError:
        raise _Missing(f"external data file {shown!r} of tensor {name!r}{of} is missing") from None
    except (OSError, ValueError) as exc:
        raise LoadError(f"external data file {shown!r} of tensor {name!r}{of} cannot be read: {_reason(exc)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LoadError(f"external data {shown!r} of tensor {name!r}{of} is not a regular file: refused")
    return target, st.st_size


def _text(value) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
