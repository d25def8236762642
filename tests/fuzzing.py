"""Hypothesis strategies for the fuzz tests: hostile ONNX files and valid random graphs.

Three families:

* :func:`mutated_bytes`: the fixtures' bytes truncated, flipped, spliced;
* :func:`mutated_models`: the fixtures (and a few inline seeds with control
  flow, functions and value-dependent shapes) with protobuf fields broken the
  way hand edits, buggy converters and attackers break them;
* :func:`valid_graphs`: random but valid graphs (elementwise, MatMul, Reshape,
  Concat, Transpose, Conv, pooling, Shape→Concat→Reshape…) over symbolic
  ``batch``/``seq``/``height``/``width``, each with one binding of its
  symbols under which onnxruntime runs it.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper

__all__ = [
    "SEED_FILES",
    "seed_bytes",
    "seed_models",
    "mutated_bytes",
    "mutated_models",
    "valid_graphs",
    "ValidCase",
    "BINDINGS",
    "deeply_nested",
    "nested_if_model",
]

ROOT = Path(__file__).resolve().parent.parent
#: CI seeds from the small fixtures (fast cases); a campaign uses every fixture
_ALL_SEEDS = bool(os.environ.get("SHAPELINT_FUZZ_EXAMPLES"))
SEED_FILES = sorted(p for p in (ROOT / "fixtures").rglob("*.onnx") if _ALL_SEEDS or p.stat().st_size <= 64_000)


# ------------------------------------------------------------------ seeds

_INLINE_SEEDS = {
    "control_flow": """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 4] x, bool c, int64 n) => (float[batch, 4] y, float[batch, 4] z, float[K, batch, 4] s) {
    y = If (c) <
        then_branch = t () => (float[batch, 4] a) { a = Relu (x) },
        else_branch = e () => (float[batch, 4] b) { b = Neg (x) }
    >
    z, s = Loop (n, c, x) <
        body = l (int64 i, bool ci, float[batch, 4] v) => (bool co, float[batch, 4] vo, float[batch, 4] so) {
            co = Identity (ci)
            vo = Add (v, x)
            so = Identity (vo)
        }
    >
}""",
    "function": """
<ir_version: 8, opset_import: ["" : 17, "local" : 1]>
g (float[batch, 8] x, float[8, 4] w) => (float[batch, 4] y) {
    y = local.Dense (x, w)
}
<domain: "local", opset_import: ["" : 17]>
Dense (a, b) => (c) {
    m = MatMul (a, b)
    c = Relu (m)
}""",
    "value_dependent": """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, seq, 16] x) => (float[batch, seq, 4, 4] y, float[N] r, float[2, 3] k) {
    s = Shape (x)
    i0 = Constant <value = int64[1] {0}> ()
    i1 = Constant <value = int64[1] {1}> ()
    b = Gather (s, i0)
    t = Gather (s, i1)
    four = Constant <value = int64[2] {4, 4}> ()
    shp = Concat <axis = 0> (b, t, four)
    y = Reshape (x, shp)
    lo = Constant <value = float {0}> ()
    hi = Constant <value = float {10}> ()
    st = Constant <value = float {1}> ()
    r = Range (lo, hi, st)
    ks = Constant <value = int64[2] {2, 3}> ()
    k = ConstantOfShape <value = float[1] {1}> (ks)
}""",
    "recurrent": """
<ir_version: 8, opset_import: ["" : 17]>
g (float[seq, batch, 8] x, float[1, 64, 8] w, float[1, 64, 16] r) => (float[seq, 1, batch, 16] y) {
    y, h, c = LSTM <hidden_size = 16> (x, w, r)
}""",
    "conv": """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 3, height, width] x, float[8, 3, 3, 3] w) => (float[batch, 8, H2, W2] y) {
    c = Conv <pads = [1, 1, 1, 1], strides = [2, 2]> (x, w)
    y = MaxPool <kernel_shape = [2, 2], strides = [2, 2]> (c)
}""",
}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # a fixture being regenerated
        return None


def seed_bytes() -> list[bytes]:
    """Serialized seeds: every fixture plus the inline ones."""
    out = [data for data in map(_read, SEED_FILES) if data]
    out += [m.SerializeToString() for m in _inline_models()]
    return out


def _inline_models() -> list[onnx.ModelProto]:
    return [onnx.parser.parse_model(text) for text in _INLINE_SEEDS.values()]


_SEED_MODELS: list[onnx.ModelProto] | None = None


def seed_models() -> list[onnx.ModelProto]:
    global _SEED_MODELS
    if _SEED_MODELS is None:
        models = []
        for data in map(_read, SEED_FILES):
            m = onnx.ModelProto()
            try:
                m.ParseFromString(data or b"")
            except Exception:  # noqa: BLE001 - a fixture half-written by a regeneration
                continue
            if m.HasField("graph"):
                models.append(m)
        _SEED_MODELS = models + _inline_models()
    return _SEED_MODELS


# ------------------------------------------------------------ byte level


@st.composite
def mutated_bytes(draw) -> bytes:
    """A seed's bytes, truncated or corrupted in 1-4 places."""
    seeds = _seed_bytes_cached()
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        kind = draw(st.sampled_from(["truncate", "flip", "byte", "insert", "delete", "splice", "varint"]))
        pos = draw(st.integers(0, max(n - 1, 0)))
        if kind == "truncate":
            del data[pos:]
        elif kind == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and n:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif kind == "splice":
            other = draw(st.sampled_from(seeds))
            a = draw(st.integers(0, len(other)))
            data[pos:pos] = other[a : a + draw(st.integers(1, 256))]
        elif kind == "varint" and n:
            # a length or a dim rewritten as a huge varint: protobuf's favourite lie
            data[pos : pos + 1] = bytes([0xFF] * draw(st.integers(1, 9)) + [0x01])
        if not data:
            break
    return bytes(data)


_SEED_BYTES: list[bytes] | None = None


def _seed_bytes_cached() -> list[bytes]:
    global _SEED_BYTES
    if _SEED_BYTES is None:
        _SEED_BYTES = seed_bytes()
    return _SEED_BYTES


# ------------------------------------------------------------ field level

BIG_DIMS = [0, -1, -7, 1, 2**31, 2**40, 2**62, 2**63 - 1, -(2**63)]
DIM_TEXTS = [
    "",
    "batch",
    "batch*0",
    "N/0",
    "N//0",
    "Mod(N, 0)",
    "-N",
    "N - N",
    "1/N",
    "floor(N/3) - 7",
    "99999999999999999999*99999999999999999999",
    "Max(N,",
    ")(",
    "?",
    "N N",
    "∞",
    "größe",
    "x" * 5000,
    "a+" * 400 + "a",
    "9**9**9**9",
    "9^9^9",
    "999999999!",
    "1<<99999999999",
    "(lambda: __import__('os')._exit(77))()",
    "ｅｖａｌ(ｃｈｒ(49))",
    "().__class__.__base__",
    "batch\n*\n*9",
]
LOCATIONS = ["../escape.bin", "/etc/passwd", "", "w.bin", "fifo.bin", "a/../../x", "C:\\w.bin", "\\\\host\\share", "..", ".", "w.bin\x00.txt", "~/x"]
OP_TYPES = ["Relu", "Reshape", "MatMul", "Conv", "LSTM", "If", "Loop", "Scan", "Concat", "Gather", "Slice", "Expand", "Range",
            "ConstantOfShape", "Tile", "Resize", "Pad", "TopK", "OneHot", "Split", "Squeeze", "Unsqueeze", "Transpose",
            "Einsum", "NonZero", "Where", "ScatterND", "Constant", "Shape", "Size", "Flatten", "Gemm", "Softmax",
            "BatchNormalization", "LayerNormalization", "DoesNotExist", "", "Ｒｅｌｕ", "Relu\x00", "a" * 300]
DOMAINS = ["", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.acme", "ai.onnx.preview.training", "local", "\x00", "ai.onnx.ml.x"]
OPSET_VERSIONS = [-(2**63), -1, 0, 1, 5, 9, 13, 17, 21, 28, 29, 1000, 2**31, 2**62]
IR_VERSIONS = [0, 1, 3, 7, 10, 14, 15, 100, -1]


def _graphs(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    out, stack = [], [model.graph]
    while stack:
        g = stack.pop()
        out.append(g)
        for node in g.node:
            for a in node.attribute:
                if a.type == AttributeProto.GRAPH:
                    stack.append(a.g)
                elif a.type == AttributeProto.GRAPHS:
                    stack.extend(a.graphs)
    return out


def _tensor_names(model: onnx.ModelProto) -> list[str]:
    names = []
    for g in _graphs(model):
        names += [vi.name for vi in g.input] + [t.name for t in g.initializer]
        names += [o for n in g.node for o in n.output]
    return [n for n in names if n] or ["x"]


def _pick_graph(draw, model):
    gs = _graphs(model)
    return gs[draw(st.integers(0, len(gs) - 1))]


def _pick(draw, seq):
    seq = list(seq)
    return seq[draw(st.integers(0, len(seq) - 1))] if seq else None


def _dims(model):
    out = []
    for g in _graphs(model):
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
                out.extend(vi.type.tensor_type.shape.dim)
    return out


def m_dim_value(draw, model):
    d = _pick(draw, _dims(model))
    if d is not None:
        d.dim_value = draw(st.sampled_from(BIG_DIMS))


def m_dim_param(draw, model):
    d = _pick(draw, _dims(model))
    if d is not None:
        d.dim_param = draw(st.sampled_from(DIM_TEXTS))


def m_rank(draw, model):
    g = _pick_graph(draw, model)
    vi = _pick(draw, list(g.input) + list(g.output) + list(g.value_info))
    if vi is None or not vi.type.HasField("tensor_type"):
        return
    shape = vi.type.tensor_type.shape
    if draw(st.booleans()) and len(shape.dim):
        del shape.dim[draw(st.integers(0, len(shape.dim) - 1))]
    else:
        for _ in range(draw(st.sampled_from([1, 2, 40]))):
            shape.dim.add().dim_value = draw(st.sampled_from([1, 3, 2**40]))


def m_elem_type(draw, model):
    g = _pick_graph(draw, model)
    vi = _pick(draw, list(g.input) + list(g.output) + list(g.value_info))
    if vi is not None:
        vi.type.tensor_type.elem_type = draw(st.sampled_from([0, 1, 7, 8, 9, 16, 23, 27, 99, 2**31 - 1]))


def m_weird_type(draw, model):
    g = _pick_graph(draw, model)
    vi = _pick(draw, list(g.input) + list(g.value_info))
    if vi is None:
        return
    kind = draw(st.sampled_from(["sequence", "optional", "map", "sparse", "empty", "deep"]))
    t = onnx.TypeProto()
    if kind == "sequence":
        t.sequence_type.elem_type.tensor_type.elem_type = TensorProto.FLOAT
    elif kind == "optional":
        t.optional_type.elem_type.tensor_type.elem_type = TensorProto.FLOAT
    elif kind == "map":
        t.map_type.key_type = TensorProto.INT64
        t.map_type.value_type.tensor_type.elem_type = TensorProto.FLOAT
    elif kind == "sparse":
        t.sparse_tensor_type.elem_type = TensorProto.FLOAT
        t.sparse_tensor_type.shape.dim.add().dim_param = "batch"
    elif kind == "deep":
        inner = t
        for _ in range(draw(st.sampled_from([5, 30]))):
            inner = inner.sequence_type.elem_type
        inner.tensor_type.elem_type = TensorProto.FLOAT
    vi.type.CopyFrom(t)


def m_initializer(draw, model):
    g = _pick_graph(draw, model)
    t = _pick(draw, g.initializer)
    if t is None:
        return
    kind = draw(st.sampled_from(["dims", "dtype", "nodata", "external", "huge"]))
    if kind == "dims":
        i = draw(st.integers(0, max(len(t.dims), 1)))
        dims = list(t.dims)
        dims[i:i + 1] = [draw(st.sampled_from(BIG_DIMS))]
        del t.dims[:]
        t.dims.extend(dims)
    elif kind == "dtype":
        t.data_type = draw(st.sampled_from([0, 2, 8, 16, 17, 21, 99]))
    elif kind == "nodata":
        for f in ("raw_data", "float_data", "int64_data", "int32_data", "double_data"):
            t.ClearField(f)
    elif kind == "huge":
        del t.dims[:]
        t.dims.extend([2**40, 2**40])
    else:
        for f in ("raw_data", "float_data", "int64_data", "int32_data"):
            t.ClearField(f)
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        e = t.external_data.add()
        e.key, e.value = "location", draw(st.sampled_from(LOCATIONS))
        if draw(st.booleans()):
            for key, value in (("offset", str(draw(st.sampled_from([-1, 0, 2**62])))), ("length", "99999999999999")):
                e = t.external_data.add()
                e.key, e.value = key, value


def m_node_input(draw, model):
    g = _pick_graph(draw, model)
    node = _pick(draw, g.node)
    if node is None or not len(node.input):
        return
    i = draw(st.integers(0, len(node.input) - 1))
    kind = draw(st.sampled_from(["drop", "empty", "missing", "other"]))
    if kind == "drop":
        del node.input[i]
    elif kind == "empty":
        node.input[i] = ""
    elif kind == "missing":
        node.input[i] = "does_not_exist"
    else:
        node.input[i] = _pick(draw, _tensor_names(model))


def m_node_output(draw, model):
    g = _pick_graph(draw, model)
    node = _pick(draw, g.node)
    if node is None:
        return
    kind = draw(st.sampled_from(["rename", "duplicate", "clear", "extra", "input_name"]))
    if kind == "clear":
        del node.output[:]
    elif kind == "extra":
        node.output.extend(["extra_0", "extra_1"])
    elif not len(node.output):
        return
    elif kind == "rename":
        node.output[0] = "renamed_output"
    elif kind == "duplicate":
        other = _pick(draw, g.node)
        if other is not None and len(other.output):
            node.output[0] = other.output[0]
    else:
        node.output[0] = _pick(draw, [vi.name for vi in g.input] or ["x"])


def m_nodes(draw, model):
    g = _pick_graph(draw, model)
    if not len(g.node):
        return
    kind = draw(st.sampled_from(["delete", "duplicate", "reverse", "cycle", "self_loop"]))
    nodes = list(g.node)
    i = draw(st.integers(0, len(nodes) - 1))
    if kind == "delete":
        del nodes[i]
    elif kind == "duplicate":
        nodes.insert(i, copy.deepcopy(nodes[i]))
    elif kind == "reverse":
        nodes.reverse()
    elif kind == "cycle":
        j = draw(st.integers(0, len(nodes) - 1))
        if len(nodes[j].output) and len(nodes[i].input):
            nodes[i].input[0] = nodes[j].output[0]
    elif len(nodes[i].output):
        nodes[i].input.append(nodes[i].output[0])
    del g.node[:]
    g.node.extend(nodes)


def _bad_attribute(draw, name):
    kind = draw(st.sampled_from(["int", "ints", "float", "string", "tensor", "graph", "empty_ints", "lie", "neg"]))
    if kind == "int":
        return helper.make_attribute(name, draw(st.sampled_from([2**62, -(2**62), 0, 2**31])))
    if kind == "neg":
        return helper.make_attribute(name, [-1, -5, -(2**40)])
    if kind == "ints":
        return helper.make_attribute(name, [draw(st.sampled_from(BIG_DIMS)) for _ in range(draw(st.integers(1, 6)))])
    if kind == "float":
        return helper.make_attribute(name, float(draw(st.sampled_from([0.0, -1.0, 1e30, float("nan"), float("inf")]))))
    if kind == "string":
        return helper.make_attribute(name, draw(st.sampled_from(["", "NOTSET", "x" * 1000, "tf_crop_and_resize"])))
    if kind == "tensor":
        return helper.make_attribute(name, TensorProto(name="t", data_type=TensorProto.INT64, dims=[2**40]))
    if kind == "graph":
        return helper.make_attribute(name, helper.make_graph([], "empty", [], []))
    a = AttributeProto(name=name, type=AttributeProto.INTS)
    if kind == "lie":
        a.type = draw(st.sampled_from([AttributeProto.GRAPH, AttributeProto.TENSOR, AttributeProto.FLOATS,
                                        AttributeProto.STRINGS, AttributeProto.SPARSE_TENSOR, AttributeProto.TYPE_PROTOS]))
        a.i = 3
    return a


def m_attribute(draw, model):
    g = _pick_graph(draw, model)
    node = _pick(draw, g.node)
    if node is None:
        return
    names = [a.name for a in node.attribute] + ["axis", "axes", "perm", "shape", "kernel_shape", "pads", "strides",
                                                    "dilations", "group", "hidden_size", "layout", "to", "value",
                                                    "split", "num_outputs", "allowzero", "keepdims", "direction"]
    name = _pick(draw, names)
    attrs = [a for a in node.attribute if a.name != name] + [_bad_attribute(draw, name)]
    if draw(st.booleans()):
        attrs.append(_bad_attribute(draw, name))  # the same attribute twice
    del node.attribute[:]
    node.attribute.extend(attrs)


def m_op_type(draw, model):
    g = _pick_graph(draw, model)
    node = _pick(draw, g.node)
    if node is None:
        return
    if draw(st.booleans()):
        node.op_type = draw(st.sampled_from(OP_TYPES + _schema_names()))
    else:
        node.domain = draw(st.sampled_from(DOMAINS))


_SCHEMAS: list[str] | None = None


def _schema_names() -> list[str]:
    global _SCHEMAS
    if _SCHEMAS is None:
        _SCHEMAS = sorted({s.name for s in onnx.defs.get_all_schemas_with_history()})
    return _SCHEMAS


def m_opset(draw, model):
    kind = draw(st.sampled_from(["version", "clear", "duplicate", "domain"]))
    if kind == "clear":
        del model.opset_import[:]
    elif kind == "duplicate":
        model.opset_import.append(helper.make_opsetid("", draw(st.sampled_from(OPSET_VERSIONS))))
    elif kind == "domain":
        model.opset_import.append(helper.make_opsetid(draw(st.sampled_from(DOMAINS)), draw(st.sampled_from(OPSET_VERSIONS))))
    elif len(model.opset_import):
        imp = _pick(draw, model.opset_import)
        imp.version = draw(st.sampled_from(OPSET_VERSIONS))


def m_ir_version(draw, model):
    model.ir_version = draw(st.sampled_from(IR_VERSIONS))


def m_graph_outputs(draw, model):
    g = model.graph
    kind = draw(st.sampled_from(["rename", "duplicate", "clear", "input"]))
    if kind == "clear":
        del g.output[:]
    elif not len(g.output):
        return
    elif kind == "rename":
        g.output[0].name = "no_such_tensor"
    elif kind == "duplicate":
        g.output.append(copy.deepcopy(g.output[0]))
    else:
        g.output[0].name = g.input[0].name if len(g.input) else ""


def m_wrap_in_if(draw, model):
    """Wrap a main-graph node in If bodies nested up to 30 deep (deeper: :func:`deeply_nested`)."""
    g = model.graph
    if not len(g.node):
        return
    i = draw(st.integers(0, len(g.node) - 1))
    node = copy.deepcopy(g.node[i])
    outs = [o for o in node.output if o]
    if not outs:
        return
    depth = draw(st.sampled_from([1, 2, 5, 30]))
    if not any(vi.name == "fuzz_cond" for vi in g.input):
        g.input.append(helper.make_tensor_value_info("fuzz_cond", TensorProto.BOOL, []))
    body_outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs]
    inner = node
    for level in range(depth):
        wrapper = onnx.NodeProto(op_type="If", name=f"/fuzz/If_{level}", input=["fuzz_cond"], output=outs)
        then_a = wrapper.attribute.add(name="then_branch", type=AttributeProto.GRAPH)
        then_a.g.name = f"then{level}"
        then_a.g.node.add().CopyFrom(inner)
        then_a.g.output.extend(body_outs)
        else_a = wrapper.attribute.add(name="else_branch", type=AttributeProto.GRAPH)
        else_a.g.name = f"else{level}"
        else_a.g.node.add().CopyFrom(node)
        else_a.g.output.extend(body_outs)
        inner = wrapper
    g.node[i].CopyFrom(inner)


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def _field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def nested_if_model(depth: int) -> bytes:
    """A model whose graph nests If ``depth`` deep, written as raw protobuf bytes.

    Python's protobuf cannot build (or parse) messages this deep; a file can
    still contain them.
    """
    leaf = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "leaf", [],
                             [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]).SerializeToString()
    g = leaf
    for level in range(depth):
        attr = _field(1, b"then_branch") + _field(6, g) + _field(20, AttributeProto.GRAPH)
        node = _field(1, b"c") + _field(2, b"y") + _field(4, b"If") + _field(5, attr)
        g = _field(1, node) + _field(2, f"g{level}".encode())
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]).SerializeToString()
    c = helper.make_tensor_value_info("c", TensorProto.BOOL, []).SerializeToString()
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None).SerializeToString()
    g += _field(11, x) + _field(11, c) + _field(12, y)
    opset = _field(1, b"") + _field(2, 17)
    return _field(1, 8) + _field(8, opset) + _field(7, g)


@st.composite
def deeply_nested(draw) -> bytes:
    return nested_if_model(draw(st.sampled_from([31, 32, 33, 64, 65, 200, 1000])))


def m_loop_scan(draw, model):
    g = model.graph
    x = _pick(draw, [vi.name for vi in g.input] or ["x"])
    kind = draw(st.sampled_from(["Loop", "Scan", "LoopNoBody", "ScanBadAxes"]))
    body = helper.make_graph(
        [helper.make_node("Identity", ["bi"], ["bo"]), helper.make_node("Identity", ["bc"], ["co"])],
        "body",
        [helper.make_tensor_value_info("it", TensorProto.INT64, []), helper.make_tensor_value_info("bc", TensorProto.BOOL, []),
         helper.make_tensor_value_info("bi", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("co", TensorProto.BOOL, []), helper.make_tensor_value_info("bo", TensorProto.FLOAT, None)],
    )
    if kind == "Loop":
        node = helper.make_node("Loop", ["", "", x], ["loop_out"], body=body)
    elif kind == "LoopNoBody":
        node = helper.make_node("Loop", [x], ["loop_out"])
    elif kind == "Scan":
        node = helper.make_node("Scan", [x], ["scan_out"], body=body, num_scan_inputs=1)
    else:
        node = helper.make_node("Scan", [x, x], ["scan_out"], body=body, num_scan_inputs=2 ** 40,
                                scan_input_axes=[2**40, -(2**40)], scan_output_axes=[99])
    g.node.append(node)


def m_function(draw, model):
    """A model-local function that calls itself (once or twice per level)."""
    g = model.graph
    x = _pick(draw, [vi.name for vi in g.input] or ["x"])
    calls = draw(st.sampled_from([1, 2]))
    body = [helper.make_node("Rec", ["a"], [f"r{k}"], domain="fuzz") for k in range(calls)]
    body.append(helper.make_node("Sum", [f"r{k}" for k in range(calls)], ["b"]))
    fn = helper.make_function("fuzz", "Rec", ["a"], ["b"], body,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("fuzz", 1)])
    model.functions.append(fn)
    model.opset_import.append(helper.make_opsetid("fuzz", 1))
    g.node.append(helper.make_node("Rec", [x], ["rec_out"], domain="fuzz"))


def m_huge_op(draw, model):
    """An op whose output size is absurd: nothing may be allocated for it."""
    g = model.graph
    x = _pick(draw, [vi.name for vi in g.input] or ["x"])
    big = helper.make_tensor("big_shape", TensorProto.INT64, [2], [2**40, 2**40])
    kind = draw(st.sampled_from(["ConstantOfShape", "Expand", "Range", "Tile", "Constant", "Resize", "Pad", "OneHot", "Reshape"]))
    nodes = [helper.make_node("Constant", [], ["big_shape"], value=big)]
    if kind == "ConstantOfShape":
        nodes.append(helper.make_node("ConstantOfShape", ["big_shape"], ["huge"]))
    elif kind == "Expand":
        nodes.append(helper.make_node("Expand", [x, "big_shape"], ["huge"]))
    elif kind == "Range":
        for n, v in (("r0", 0), ("r1", 2**62), ("r2", 1)):
            nodes.append(helper.make_node("Constant", [], [n], value=helper.make_tensor(n, TensorProto.INT64, [], [v])))
        nodes.append(helper.make_node("Range", ["r0", "r1", "r2"], ["huge"]))
    elif kind == "Tile":
        nodes.append(helper.make_node("Tile", [x, "big_shape"], ["huge"]))
    elif kind == "Constant":
        lie = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[2**40, 2**40])  # dims with no data
        nodes = [helper.make_node("Constant", [], ["huge"], value=lie)]
    elif kind == "Resize":
        scales = helper.make_tensor("sc", TensorProto.FLOAT, [2], [1e30, 1e30])
        nodes = [helper.make_node("Constant", [], ["sc"], value=scales), helper.make_node("Resize", [x, "", "sc"], ["huge"])]
    elif kind == "Pad":
        nodes.append(helper.make_node("Pad", [x, "big_shape"], ["huge"]))
    elif kind == "OneHot":
        nodes.append(helper.make_node("Constant", [], ["depth"], value=helper.make_tensor("d", TensorProto.INT64, [], [2**40])))
        nodes.append(helper.make_node("Constant", [], ["vals"], value=helper.make_tensor("v", TensorProto.FLOAT, [2], [0, 1])))
        nodes.append(helper.make_node("OneHot", ["big_shape", "depth", "vals"], ["huge"]))
    else:
        nodes.append(helper.make_node("Reshape", [x, "big_shape"], ["huge"]))
    g.node.extend(nodes)
    g.output.append(helper.make_tensor_value_info("huge", TensorProto.FLOAT, None))


def m_sparse(draw, model):
    g = model.graph
    values = helper.make_tensor("sp", TensorProto.FLOAT, [2], [1.0, 2.0])
    indices = helper.make_tensor("sp_idx", TensorProto.INT64, [2], [0, draw(st.sampled_from([1, 2**62, -1]))])
    g.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [draw(st.sampled_from(BIG_DIMS))]))
    g.node.append(helper.make_node("Relu", ["sp"], ["sp_out"]))


def m_names(draw, model):
    g = _pick_graph(draw, model)
    for node in g.node:
        node.name = draw(st.sampled_from(["", "dup", "/a/b/c", "\x00", "x" * 2000, "../../etc"]))


MUTATIONS = [m_dim_value, m_dim_param, m_rank, m_elem_type, m_weird_type, m_initializer, m_node_input, m_node_output,
             m_nodes, m_attribute, m_op_type, m_opset, m_ir_version, m_graph_outputs, m_wrap_in_if, m_loop_scan,
             m_function, m_huge_op, m_sparse, m_names]


@st.composite
def mutated_models(draw) -> bytes:
    """A seed model with 1-4 protobuf-level mutations, serialized; sometimes nested too deep."""
    if draw(st.integers(0, 49)) == 0:
        return draw(deeply_nested())
    seeds = seed_models()
    model = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        mutate = draw(st.sampled_from(MUTATIONS))
        mutate(draw, model)
    return model.SerializeToString()


# ------------------------------------------------------------ valid graphs

BINDINGS = {"batch": 2, "seq": 3, "height": 9, "width": 7}


@dataclass
class _T:
    name: str
    dims: list  # symbolic: str names or ints, or "?" for an exporter-computed dim
    size: list[int]  # concrete under BINDINGS


@dataclass
class ValidCase:
    model: onnx.ModelProto
    feeds: dict[str, tuple[int, ...]]
    outputs: list[str]
    ops: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, op: str) -> str:
        self.count += 1
        return f"/gen/{op}_{self.count}"

    def const(self, values, dtype=np.int64) -> str:
        arr = np.asarray(values, dtype=dtype)
        n = f"c{len(self.inits)}"
        self.inits.append(onnx.numpy_helper.from_array(arr, n))
        return n

    def node(self, op: str, inputs, n_out=1, **attrs) -> list[str]:
        nm = self.name(op)
        outs = [f"{nm}_out{k}" for k in range(n_out)]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=nm, **attrs))
        return outs


def _static(d) -> bool:
    return isinstance(d, int)


@st.composite
def valid_graphs(draw) -> ValidCase:
    """A random valid graph over symbolic dims, built op by op from what is legal."""
    b = _Builder()
    layout = draw(st.sampled_from(["seq", "image", "flat"]))
    c = draw(st.sampled_from([4, 6, 8]))
    if layout == "seq":
        x = _T("x", ["batch", "seq", c], [2, 3, c])
    elif layout == "image":
        x = _T("x", ["batch", c, "height", "width"], [2, c, 9, 7])
    else:
        x = _T("x", ["batch", c], [2, c])
    pool = [x]
    cur = x
    ops = []
    for _ in range(draw(st.integers(1, 10))):
        r = len(cur.dims)
        choices = ["unary", "binary_same", "softmax", "transpose", "reshape_merge", "flatten", "concat", "dyn_reshape",
                   "unsqueeze", "reduce"]
        if _static(cur.dims[-1]):
            choices += ["bias", "matmul", "layernorm", "split", "slice"]
            if cur.dims[-1] % 2 == 0:
                choices.append("reshape_split")
        if r == 4 and _static(cur.dims[1]) and min(cur.size[2:]) >= 3:
            choices += ["conv", "pool"]
        if r == 2 and _static(cur.dims[-1]):
            choices.append("gemm")
        if r >= 2 and any(_static(d) and d == 1 for d in cur.dims):
            choices.append("squeeze")  # never down to rank 0: the chain goes on from it
        op = draw(st.sampled_from(choices))
        ops.append(op)
        new = _apply(draw, b, op, cur, pool)
        if new is not None:
            pool.append(new)
            cur = new
    extra = draw(st.lists(st.sampled_from(pool[1:] or [cur]), max_size=2, unique_by=lambda t: t.name))
    outs = [cur] + [t for t in extra if t.name != cur.name]
    graph = helper.make_graph(
        b.nodes,
        "random_valid",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.dims)],
        [helper.make_tensor_value_info(t.name, TensorProto.FLOAT, [None] * len(t.dims)) for t in outs],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    return ValidCase(model, {"x": tuple(x.size)}, [t.name for t in outs], ops)


def _q(d):
    return d if _static(d) else "?"


def _apply(draw, b: _Builder, op: str, t: _T, pool: list[_T]) -> _T | None:
    r = len(t.dims)
    if op == "unary":
        kind = draw(st.sampled_from(["Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Identity"]))
        (o,) = b.node(kind, [t.name])
        return _T(o, list(t.dims), list(t.size))
    if op == "binary_same":
        same = [p for p in pool if p.dims == t.dims and p.size == t.size]
        other = draw(st.sampled_from(same))
        (o,) = b.node(draw(st.sampled_from(["Add", "Mul", "Sub", "Max"])), [t.name, other.name])
        return _T(o, list(t.dims), list(t.size))
    if op == "softmax":
        (o,) = b.node("Softmax", [t.name], axis=draw(st.integers(-r, r - 1)))
        return _T(o, list(t.dims), list(t.size))
    if op == "bias":
        k = draw(st.integers(1, r))
        shape = [1] * (k - 1) + [t.dims[-1]]
        (o,) = b.node("Add", [t.name, b.const(np.ones(shape), np.float32)])
        return _T(o, list(t.dims), list(t.size))
    if op == "matmul":
        n = draw(st.sampled_from([3, 4, 8]))
        w = b.const(np.ones((t.dims[-1], n)), np.float32)
        (o,) = b.node("MatMul", [t.name, w])
        return _T(o, t.dims[:-1] + [n], t.size[:-1] + [n])
    if op == "gemm":
        n = draw(st.sampled_from([3, 5]))
        w = b.const(np.ones((n, t.dims[-1])), np.float32)
        (o,) = b.node("Gemm", [t.name, w, b.const(np.zeros(n), np.float32)], transB=1)
        return _T(o, [t.dims[0], n], [t.size[0], n])
    if op == "layernorm":
        scale = b.const(np.ones(t.dims[-1]), np.float32)
        (o,) = b.node("LayerNormalization", [t.name, scale], axis=-1)
        return _T(o, list(t.dims), list(t.size))
    if op == "transpose":
        perm = draw(st.permutations(list(range(r))))
        (o,) = b.node("Transpose", [t.name], perm=list(perm))
        return _T(o, [t.dims[p] for p in perm], [t.size[p] for p in perm])
    if op == "reshape_merge":
        if r < 2:
            return None
        (o,) = b.node("Reshape", [t.name, b.const([0] * (r - 2) + [-1])])
        merged = t.dims[-2] * t.dims[-1] if _static(t.dims[-2]) and _static(t.dims[-1]) else "?"
        return _T(o, t.dims[:-2] + [merged], t.size[:-2] + [t.size[-2] * t.size[-1]])
    if op == "reshape_split":
        d = t.dims[-1]
        (o,) = b.node("Reshape", [t.name, b.const([0] * (r - 1) + [2, d // 2])])
        return _T(o, t.dims[:-1] + [2, d // 2], t.size[:-1] + [2, d // 2])
    if op == "flatten":
        axis = draw(st.integers(0, r))
        (o,) = b.node("Flatten", [t.name], axis=axis)
        left, right = int(np.prod(t.size[:axis])), int(np.prod(t.size[axis:]))
        ld = t.dims[:axis]
        rd = t.dims[axis:]
        return _T(o, [int(np.prod(ld)) if all(map(_static, ld)) else "?", int(np.prod(rd)) if all(map(_static, rd)) else "?"], [left, right])
    if op == "concat":
        axis = draw(st.integers(-r, r - 1))
        same = [p for p in pool if p.dims == t.dims and p.size == t.size]
        parts = [t] + draw(st.lists(st.sampled_from(same), min_size=1, max_size=2))
        (o,) = b.node("Concat", [p.name for p in parts], axis=axis)
        a = axis % r
        dims = list(t.dims)
        dims[a] = dims[a] * len(parts) if _static(dims[a]) else "?"
        size = list(t.size)
        size[a] *= len(parts)
        return _T(o, dims, size)
    if op == "dyn_reshape":
        # exporter style: Reshape(x, Concat(Shape(x)[0:1], [-1]))
        (s,) = b.node("Shape", [t.name])
        (first,) = b.node("Slice", [s, b.const([0]), b.const([1])])
        (shp,) = b.node("Concat", [first, b.const([-1])], axis=0)
        (o,) = b.node("Reshape", [t.name, shp])
        rest = t.dims[1:]
        return _T(o, [t.dims[0], int(np.prod(rest)) if all(map(_static, rest)) else "?"], [t.size[0], int(np.prod(t.size[1:]))])
    if op == "unsqueeze":
        a = draw(st.integers(-(r + 1), r))
        (o,) = b.node("Unsqueeze", [t.name, b.const([a])])
        aa = a % (r + 1)
        return _T(o, t.dims[:aa] + [1] + t.dims[aa:], t.size[:aa] + [1] + t.size[aa:])
    if op == "squeeze":
        ones = [i for i, d in enumerate(t.dims) if _static(d) and d == 1]
        a = draw(st.sampled_from(ones))
        (o,) = b.node("Squeeze", [t.name, b.const([a])])
        return _T(o, t.dims[:a] + t.dims[a + 1:], t.size[:a] + t.size[a + 1:])
    if op == "reduce":
        a = draw(st.integers(0, r - 1))
        keep = draw(st.booleans()) or r == 1
        (o,) = b.node(draw(st.sampled_from(["ReduceMean", "ReduceSum", "ReduceMax"])), [t.name, b.const([a])], keepdims=int(keep))
        if keep:
            return _T(o, t.dims[:a] + [1] + t.dims[a + 1:], t.size[:a] + [1] + t.size[a + 1:])
        return _T(o, t.dims[:a] + t.dims[a + 1:], t.size[:a] + t.size[a + 1:])
    if op == "split":
        d = t.dims[-1]
        parts = 2 if d % 2 == 0 else 1
        outs = b.node("Split", [t.name], n_out=parts, axis=-1, num_outputs=parts)
        return _T(outs[draw(st.integers(0, parts - 1))], t.dims[:-1] + [d // parts], t.size[:-1] + [d // parts])
    if op == "slice":
        d = t.dims[-1]
        start = draw(st.integers(0, d - 1))
        end = draw(st.integers(start + 1, d))
        (o,) = b.node("Slice", [t.name, b.const([start]), b.const([end]), b.const([-1])])
        return _T(o, t.dims[:-1] + [end - start], t.size[:-1] + [end - start])
    if op == "conv":
        cin = t.dims[1]
        cout = draw(st.sampled_from([2, 4, 5]))
        k = draw(st.sampled_from([1, 2, 3]))
        s = draw(st.sampled_from([1, 2]))
        p = draw(st.sampled_from([0, 1]))
        dil = draw(st.sampled_from([1, 1, 2]))
        if min(t.size[2:]) + 2 * p < dil * (k - 1) + 1:
            dil = 1
        w = b.const(np.ones((cout, cin, k, k)), np.float32)
        (o,) = b.node("Conv", [t.name, w], kernel_shape=[k, k], strides=[s, s], pads=[p] * 4, dilations=[dil, dil])
        size = [(n + 2 * p - dil * (k - 1) - 1) // s + 1 for n in t.size[2:]]
        dims = [(_q(d) if not _static(d) else (d + 2 * p - dil * (k - 1) - 1) // s + 1) for d in t.dims[2:]]
        return _T(o, [t.dims[0], cout] + dims, [t.size[0], cout] + size)
    if op == "pool":
        kind = draw(st.sampled_from(["MaxPool", "AveragePool", "GlobalAveragePool"]))
        if kind == "GlobalAveragePool":
            (o,) = b.node(kind, [t.name])
            return _T(o, t.dims[:2] + [1, 1], t.size[:2] + [1, 1])
        k = draw(st.sampled_from([2, 3]))
        s = draw(st.sampled_from([1, 2]))
        ceil = draw(st.sampled_from([0, 1]))
        (o,) = b.node(kind, [t.name], kernel_shape=[k, k], strides=[s, s], ceil_mode=ceil)

        def out_len(n):
            q = (n - k + (s - 1 if ceil else 0)) // s + 1
            if ceil and (q - 1) * s >= n:
                q -= 1
            return q

        return _T(o, t.dims[:2] + [out_len(d) if _static(d) else "?" for d in t.dims[2:]], t.size[:2] + [out_len(n) for n in t.size[2:]])
    raise AssertionError(op)
