"""Read an ``.onnx`` file safely: the graph only, weights stay on disk.

Every way a file can be unusable becomes a :class:`LoadError` with one line a
person can act on; nothing here lets a protobuf or OS traceback escape.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

__all__ = [
    "LoadError",
    "load_model",
    "parse_model_bytes",
    "validate_model",
    "external_data_locations",
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


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Load the model's graph without reading external weights.

    Raises
    ------
    LoadError
        missing, empty, truncated, not ONNX, unsupported IR version, too large
        for one protobuf, or external data that is missing or escapes the
        model's folder.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
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
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    model, scan = _parse(data)
    try:
        check_external_data(model, p.resolve().parent, scan=scan)
    except LoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - last line of defence: a hostile file is an error, not a crash
        logger.debug("loader crashed on %s", p, exc_info=True)
        raise LoadError(f"malformed model ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    return model


def parse_model_bytes(data: bytes) -> onnx.ModelProto:
    """Parse and sanity-check serialized ModelProto bytes."""
    return _parse(data)[0]


def _parse(data: bytes) -> tuple[onnx.ModelProto, "_Scan"]:
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
    scan = _scan(model.graph)
    if scan.depth > MAX_SUBGRAPH_DEPTH:
        raise LoadError(f"subgraphs nested {scan.depth} deep (limit {MAX_SUBGRAPH_DEPTH})")
    repair_dim_params(model, scan=scan)
    return scan


@dataclass
class _Scan:
    """One pass over every node's attributes: what the loader's checks need."""

    depth: int  # deepest nesting of If/Loop/Scan bodies
    graphs: list  # the main graph and every subgraph
    attribute_tensors: list  # TENSOR attributes (a Constant's value may be external)


def _scan(graph: onnx.GraphProto) -> _Scan:
    """Walk the graph and its subgraphs once, without recursion.

    The attribute loop is the loader's main cost on a 10^5-node graph, so
    the depth, the subgraphs and the attribute tensors come from one pass.
    """
    graph_t, graphs_t, tensor_t = onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS, onnx.AttributeProto.TENSOR
    out = _Scan(0, [], [])
    stack = [(graph, 0)]
    while stack:
        g, d = stack.pop()
        out.graphs.append(g)
        out.depth = max(out.depth, d)
        if d > MAX_SUBGRAPH_DEPTH:
            break
        for node in g.node:
            for attr in node.attribute:
                t = attr.type
                if t == tensor_t:
                    out.attribute_tensors.append(attr.t)
                elif t == graph_t:
                    stack.append((attr.g, d + 1))
                elif t == graphs_t:
                    stack.extend((sg, d + 1) for sg in attr.graphs)
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
    for vi in _value_infos(model, scan or _scan(model.graph)):
        for dim in _dim_params(vi.type):
            if type(dim.dim_param) is not str:
                dim.dim_param = dim.dim_param.decode("utf-8", "backslashreplace")
                fixed += 1
    return fixed


def external_data_locations(model: onnx.ModelProto, scan: _Scan | None = None) -> list[tuple[str, str]]:
    """``(tensor name, location)`` for every tensor stored outside the file."""
    scan = scan or _scan(model.graph)
    external = onnx.TensorProto.EXTERNAL
    out = []
    tensors = [t for g in scan.graphs for t in g.initializer] + scan.attribute_tensors
    for t in tensors:
        if t.data_location == external:
            info = {_text(e.key): _text(e.value) for e in t.external_data}
            out.append((_text(t.name), info.get("location", "")))
    return out


def check_external_data(model: onnx.ModelProto, base: Path, scan: _Scan | None = None) -> None:
    """Refuse external-data locations outside ``base``; never opens the files.

    Only path arithmetic and ``stat`` calls: ``..``, absolute paths and
    symlinks that resolve outside ``base`` are refused before anything could
    be read, and a location that is not a regular file (a FIFO, a device,
    a folder) is refused too.
    """
    seen: set[str] = set()
    for name, location in external_data_locations(model, scan):
        if location in seen:
            continue
        seen.add(location)
        shown = location if len(location) <= 80 else location[:77] + "..."
        if not location:
            raise LoadError(f"tensor {name!r} is external but names no location")
        if "\0" in location:
            raise LoadError(f"external data of {name!r} has a NUL byte in its location {shown!r}: refused")
        if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location[:3]:
            raise LoadError(f"external data of {name!r} uses an absolute path {shown!r}: refused")
        try:
            target = (base / location).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # name too long, symlink loop
            raise LoadError(f"external data location {shown!r} of {name!r} cannot be resolved: {_reason(exc)}") from None
        try:
            target.relative_to(base)
        except ValueError:
            raise LoadError(
                f"external data of {name!r} points outside the model's folder ({shown!r}): refused"
            ) from None
        try:
            mode = target.stat().st_mode
        except FileNotFoundError:
            raise LoadError(f"external data file {shown!r} of tensor {name!r} is missing") from None
        except (OSError, ValueError) as exc:
            raise LoadError(f"external data file {shown!r} of tensor {name!r} cannot be read: {_reason(exc)}") from None
        if not stat.S_ISREG(mode):
            raise LoadError(f"external data {shown!r} of tensor {name!r} is not a regular file: refused")


def _text(value) -> str:
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
