"""Read an ``.onnx`` file safely: the graph only, weights stay on disk.

Every way a file can be unusable becomes a :class:`LoadError` with one line a
person can act on; nothing here lets a protobuf or OS traceback escape.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

__all__ = ["LoadError", "load_model", "external_data_locations", "MAX_PROTO_BYTES"]

logger = logging.getLogger(__name__)

#: protobuf cannot parse one message larger than this
MAX_PROTO_BYTES = 2**31 - 1
#: nesting deeper than this is refused before protobuf parses it recursively
MAX_SUBGRAPH_DEPTH = 64


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
        size = p.stat().st_size
    except FileNotFoundError:
        raise LoadError("no such file") from None
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    if p.is_dir():
        raise LoadError("is a directory, not an .onnx file")
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
    model = parse_model_bytes(data)
    check_external_data(model, p.resolve().parent)
    return model


def parse_model_bytes(data: bytes) -> onnx.ModelProto:
    """Parse and sanity-check serialized ModelProto bytes."""
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except DecodeError:
        raise LoadError("not a valid ONNX file (protobuf parse failed: truncated or corrupt)") from None
    except RecursionError:
        raise LoadError("protobuf nesting too deep to parse") from None
    except Exception as exc:  # noqa: BLE001 - protobuf raises odd types on hostile input
        raise LoadError(f"not a valid ONNX file ({type(exc).__name__})") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise LoadError("not an ONNX model (no graph or IR version in the file)")
    if model.ir_version > onnx.IR_VERSION:
        raise LoadError(
            f"unsupported IR version {model.ir_version} (this onnx {onnx.__version__} "
            f"supports up to {onnx.IR_VERSION}); upgrade onnx"
        )
    if not model.opset_import and model.ir_version >= 3:
        raise LoadError("not a valid ONNX model: no opset_import")
    depth = _subgraph_depth(model.graph)
    if depth > MAX_SUBGRAPH_DEPTH:
        raise LoadError(f"subgraphs nested {depth} deep (limit {MAX_SUBGRAPH_DEPTH})")
    return model


def _subgraph_depth(graph: onnx.GraphProto) -> int:
    """Deepest nesting of If/Loop/Scan bodies, computed without recursion."""
    deepest = 0
    stack = [(graph, 0)]
    while stack:
        g, d = stack.pop()
        deepest = max(deepest, d)
        if d > MAX_SUBGRAPH_DEPTH:
            break
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append((attr.g, d + 1))
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend((sg, d + 1) for sg in attr.graphs)
    return deepest


def _all_tensors(graph: onnx.GraphProto):
    stack = [graph]
    while stack:
        g = stack.pop()
        yield from g.initializer
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    yield attr.t
                elif attr.type == onnx.AttributeProto.GRAPH:
                    stack.append(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend(attr.graphs)


def external_data_locations(model: onnx.ModelProto) -> list[tuple[str, str]]:
    """``(tensor name, location)`` for every tensor stored outside the file."""
    out = []
    for t in _all_tensors(model.graph):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            out.append((t.name, info.get("location", "")))
    return out


def check_external_data(model: onnx.ModelProto, base: Path) -> None:
    """Refuse external-data locations outside ``base``; never opens the files."""
    seen: set[str] = set()
    for name, location in external_data_locations(model):
        if location in seen:
            continue
        seen.add(location)
        if not location:
            raise LoadError(f"tensor {name!r} is external but names no location")
        if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location[:3]:
            raise LoadError(f"external data of {name!r} uses an absolute path {location!r}: refused")
        target = (base / location).resolve()
        try:
            target.relative_to(base)
        except ValueError:
            raise LoadError(
                f"external data of {name!r} points outside the model's folder ({location!r}): refused"
            ) from None
        if not target.is_file():
            raise LoadError(f"external data file {location!r} of tensor {name!r} is missing")
