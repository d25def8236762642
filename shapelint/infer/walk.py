"""The inference walk: every node in topological order, one handler each.

For each node: shapelint's own handler where symbolic arithmetic or value
propagation matters, else onnx's per-node inference; then, when every input
is a small constant, constant folding for an exact result.  Conflicts become
:class:`~shapelint.infer.table.Conflict` records and the walk goes on with
whatever can still be known.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import onnx

from ..dims import fresh_made, fresh_symbol, parse_dim, reset_fresh, simplify
from ..graph import ModelGraph, constant_node_value, tensor_value
from ..load import tensor_nbytes
from . import arity, ops  # noqa: F401 - ops registers the handlers
from .fallback import FallbackError, from_type_proto, infer_with_onnx
from .fold import fold
from .registry import AttributeTypeError, NodeContext, handler_for
from .table import UNKNOWN, Conflict, ShapeTable, TensorInfo

__all__ = ["infer", "Inferencer"]

logger = logging.getLogger(__name__)

_DEFAULT_DOMAINS = ("", "ai.onnx")
_TENSOR_ATTR, _EXTERNAL = onnx.AttributeProto.TENSOR, onnx.TensorProto.EXTERNAL
#: bytes per element of the raw data of the types Constants hold (4-bit and string types take the general path)
_ITEMSIZE = {getattr(onnx.TensorProto, k): v for k, v in (
    ("FLOAT", 4), ("DOUBLE", 8), ("FLOAT16", 2), ("BFLOAT16", 2), ("INT64", 8), ("INT32", 4), ("INT16", 2),
    ("INT8", 1), ("UINT64", 8), ("UINT32", 4), ("UINT16", 2), ("UINT8", 1), ("BOOL", 1))}
INT64_MAX = 2**63 - 1
_KNOWN_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training", "ai.onnx.preview")


#: com.microsoft ops whose onnxruntime schema documents output 0 as "same shape as input", of input 0's type.
#: Read once from onnxruntime 1.32.0's schemas (``ORT_SCHEMAS_VERSION``; tests/test_infer_contrib.py compares
#: it with the installed onnxruntime) and kept here: ``check`` never imports onnxruntime, whose import
#: writes into $HOME and $TMPDIR.
ORT_SCHEMAS_VERSION = "1.32.0"
ORT_SAME_SHAPE_OPS = frozenset((
    "BranchwiseRMSNorm", "GatedAdd", "GatedRMSNorm", "GroupNorm", "MRotaryEmbedding", "MoE", "QMoE",
    "RotaryEmbedding", "ScaledSiLU",
))


def ort_same_shape_ops_from_schemas(schemas) -> frozenset:
    """The set above, computed from onnxruntime's ``get_all_operator_schema()`` (for the test that keeps it true)."""
    out = set()
    for s in schemas:
        if s.domain != "com.microsoft" or not s.inputs or len(s.outputs) != 1:
            continue
        doc = " ".join((s.outputs[0].description or "").lower().split())
        if re.search(r"\bsame shape (as|of) (the )?(input|x)\b", doc) and s.outputs[0].typeStr == s.inputs[0].typeStr:
            out.add(s.name)
    return frozenset(out)


def documented_same_shape(domain: str, op_type: str) -> bool:
    return domain == "com.microsoft" and op_type in ORT_SAME_SHAPE_OPS


# ------------------------------------------------------------------ memo
# Exported transformers repeat one block dozens of times: the same op, attributes and input shapes (and the
# same symbolic shape values) node after node.  A node's inference is memoised on that signature, so the
# handler, the fallback and the fold run once per distinct node.  Only side-effect-free results are kept:
# a node that reported a conflict, recorded a constraint, made a fresh dim (two nodes must never share
# one) or was unsupported is inferred again each time, so its findings carry its own name.

#: the most elements of a constant that any handler (``values_of``), the fold's inputs aside, or the onnx
#: fallback (``input_data``) reads: a larger constant's contents cannot change an inference result
_VALUE_LIMIT = 4096
#: ops whose inference reads only the type and shape of a non-integer constant input (a weight, a bias,
#: LayerNorm's scale) when at least one input is not constant (so the node is not folded)
_SHAPE_ONLY_CONSTS = frozenset(
    "MatMul Gemm Add Sub Mul Div Pow Where Equal Less Greater Max Min Sum Mean PRelu LayerNormalization Conv "
    "ConvTranspose BatchNormalization InstanceNormalization LSTM GRU RNN Gather Einsum".split())
#: integer and boolean element types: their small constants are shape arithmetic, read by value
_INTEGER_TYPES = frozenset((2, 3, 4, 5, 6, 7, 9, 12, 13, 21, 22))
#: never memoised: a constant from an attribute, pass-through of an input's own value, subgraphs
_NOT_MEMOISED = frozenset(("Constant", "Identity", "If", "Loop", "Scan", "SequenceMap"))
_GRAPH_ATTRS = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
_NO = object()


def _dims_key(dims):
    """A shape or a value as a key: the elements with their types (``2`` and ``sympy.Integer(2)``, ``1`` and
    ``1.0`` compare equal but do not behave alike downstream)."""
    return dims, tuple(map(type, dims))


def _input_key(info: TensorInfo, contents_free: bool):
    if info.kind != "tensor" or info.elem is not None:
        return _NO
    shape, value = info.shape, info.value
    sk = None if shape is None else (shape, tuple(map(type, shape)))
    vk = None if value is None else (value, tuple(map(type, value)))
    if info._const is None and info.proto is None:
        return (info.dtype, sk, vk)
    n = None
    if shape is not None and all(type(d) is int for d in shape):
        n = 1
        for d in shape:
            n *= d
    if contents_free and (n is None or n > _VALUE_LIMIT or info.dtype not in _INTEGER_TYPES):
        return (info.dtype, sk, vk, "const")
    if n is None or n > _VALUE_LIMIT:
        return _NO
    t = info.proto
    if t is not None and t.data_location != _EXTERNAL and t.HasField("raw_data"):
        # an embedded tensor not read yet: its bytes are its value (no array made for a memo hit)
        return (info.dtype, sk, vk, "raw", t.data_type, tuple(t.dims), t.raw_data)
    c = info.const
    if c is None:
        return _NO
    return (info.dtype, sk, vk, c.dtype.str, c.shape, c.tobytes())


def infer(mg: ModelGraph, bindings: dict[str, int] | None = None) -> ShapeTable:
    """Infer every tensor of ``mg``; ``bindings`` pins symbolic dims to integers."""
    reset_fresh()
    return Inferencer(mg, bindings).run()


class Inferencer:
    #: the speed paths: node inference memoised on its signature, and plain Constants read without the generic
    #: walk (off: every node is inferred on its own, the general way; the tests compare both on every fixture)
    memoise = True

    def __init__(self, mg: ModelGraph, bindings: dict[str, int] | None = None):
        self.mg = mg
        self.model = mg.model
        self.table = ShapeTable()
        self.bindings = dict(bindings or {})
        self.opset_imports = list(self.model.opset_import) or [onnx.helper.make_opsetid("", 1)]
        self.opset = mg.opset
        self.ir_version = self.model.ir_version or onnx.IR_VERSION
        self.functions = {(f.domain, f.name): f for f in self.model.functions}
        self.unsupported: list[onnx.NodeProto] = []
        self._depth = 0
        self._expanding: set = set()
        #: function-body nodes that may still be expanded: a call tree that doubles per level stops here
        self._function_budget = max(20_000, 10 * len(mg.nodes))
        self._opset_cache: dict[str, int] = {}  # domain -> version, for the model's imports
        self._arity: dict[tuple[str, str, int], tuple[int, int, int, int] | None] = {}  # schema input/output counts
        #: node signature -> its outputs' fields (see _memo_key); ``memo_hits`` counts the nodes it answered
        self._memo: dict[tuple, tuple] = {}
        self.memo_hits = 0

    # --------------------------------------------------------------- seeds
    def seed_value_info(self, vi: onnx.ValueInfoProto) -> TensorInfo:
        info = from_type_proto(vi.type)
        if info.shape and any(type(d) is int and d < 0 for d in info.shape):
            # some exporters write dim_value -1 for "unknown": an unknown dim, not a negative size
            info.shape = tuple(fresh_symbol() if type(d) is int and d < 0 else d for d in info.shape)
        if info.shape is not None and self.bindings:
            info.shape = tuple(self._bind(d) for d in info.shape)
        return info

    def _bind(self, d):
        if d is None or isinstance(d, int):
            return d
        names = {s.name: s for s in d.free_symbols}
        subs = {names[k]: v for k, v in self.bindings.items() if k in names}
        if not subs:
            return d
        return simplify(d.subs(subs))

    def run(self) -> ShapeTable:
        g = self.model.graph
        t = self.table.tensors
        for init in g.initializer:
            t[init.name] = self.initializer_info(init)
        for sp in g.sparse_initializer:
            t[sp.values.name] = TensorInfo(dtype=sp.values.data_type, shape=tuple(int(d) for d in sp.dims))
        for vi in g.input:
            if vi.name in t:
                continue  # an initializer listed as input keeps its value
            t[vi.name] = self.seed_value_info(vi)
        self.table.notes.extend(self.mg.notes)
        self.walk(self.mg.topological_order(), self.opset_imports)
        from .constraints import from_conflicts

        self.table.constraints.extend(c for c in from_conflicts(self.table) if c not in self.table.constraints)
        return self.table

    def initializer_info(self, init: onnx.TensorProto) -> TensorInfo:
        shape = tuple(int(d) for d in init.dims)
        lazy = init if init.data_location != onnx.TensorProto.EXTERNAL else None
        return TensorInfo(dtype=init.data_type, shape=shape, proto=lazy)

    # ---------------------------------------------------------------- walk
    def walk(self, nodes, opset_imports) -> None:
        for node in nodes:
            try:
                self.infer_node(node, opset_imports)
            except RecursionError:
                self._unknown_outputs(node)
            except AttributeTypeError as exc:
                logger.debug("%s %r: %s", node.op_type, node.name, exc)
                self._unknown_outputs(node)
            except Exception as exc:  # noqa: BLE001 - a handler bug must not stop the run
                # malformed values the checks below do not catch: a finding on the node, never a silent unknown
                logger.debug("inference of %s %r failed", node.op_type, node.name, exc_info=True)
                text = " ".join(str(exc).split())[:200] or type(exc).__name__
                self.table.conflicts.append(Conflict(
                    node, "op", f"{node.op_type} cannot be inferred from the values that reach it ({text})",
                    "inputs and attributes a runtime accepts"))
                self._unknown_outputs(node)

    def _unknown_outputs(self, node) -> None:
        for o in node.output:
            if o and o not in self.table.tensors:
                self.table.tensors[o] = TensorInfo()

    def _memo_key(self, node: onnx.NodeProto, domain: str, opset: int):
        """The signature that decides ``node``'s inference, or None where it is not memoised."""
        op = node.op_type
        if op in _NOT_MEMOISED or (domain, op) in self.functions:
            return None
        akey = ()
        if node.attribute:
            for a in node.attribute:
                if a.type in _GRAPH_ATTRS or a.ref_attr_name:
                    return None
            akey = tuple(a.SerializeToString() for a in node.attribute)
        tensors = self.table.tensors
        ins = [tensors.get(name, UNKNOWN) if name else None for name in node.input]
        contents_free = False
        if op in _SHAPE_ONLY_CONSTS and domain in _DEFAULT_DOMAINS:
            contents_free = any(i is not None and i._const is None and i.proto is None for i in ins)
        keys = []
        for info in ins:
            if info is None:
                keys.append(None)
                continue
            k = _input_key(info, contents_free)
            if k is _NO:
                return None
            keys.append(k)
        return (domain, op, opset, akey, tuple(keys), tuple(bool(o) for o in node.output))

    def _plain_constant(self, node: onnx.NodeProto, domain: str) -> bool:
        """A Constant holding one embedded tensor whose raw bytes fit its dims: its output recorded as the
        general path would (the ``Constant`` handler, every check passed), without that path's per-node
        work; exporters write thousands (two fifths of a transformer's nodes).  False: not that case."""
        if node.input or len(node.output) != 1 or not node.output[0] or len(node.attribute) != 1 \
                or domain not in _DEFAULT_DOMAINS or (domain, "Constant") in self.functions:
            return False
        a = node.attribute[0]
        if a.type != _TENSOR_ATTR or a.name != "value" or a.ref_attr_name:
            return False
        t = a.t
        itemsize = _ITEMSIZE.get(t.data_type)
        if itemsize is None or t.data_location == _EXTERNAL or not t.HasField("raw_data"):
            return False
        dims = tuple(t.dims)
        n = 1
        for d in dims:
            if d < 0:
                return False
            n *= d
        if len(t.raw_data) != n * itemsize:
            return False
        self.table.tensors[node.output[0]] = TensorInfo(dtype=t.data_type, shape=dims, proto=t)
        return True

    def infer_node(self, node: onnx.NodeProto, opset_imports) -> None:
        domain = node.domain or ""
        if node.op_type == "Constant" and self.memoise and self._plain_constant(node, domain):
            return
        if opset_imports is self.opset_imports:
            opset = self._opset_cache.get(domain)
            if opset is None:
                opset = self._opset_for(domain, opset_imports)
            key = None if self._depth or not self.memoise else self._memo_key(node, domain, opset)
        else:
            opset = self._opset_for(domain, opset_imports)
            key = None
        if key is None:
            self._infer_node(node, opset_imports, domain, opset)
            return
        tensors = self.table.tensors
        got = self._memo.get(key)
        if got is not None:
            self.memo_hits += 1
            for name, f in zip(node.output, got):
                if name:
                    tensors[name] = TensorInfo(*f)
            return
        table = self.table
        before = (len(table.conflicts), len(table.constraints), len(table.notes), len(table.declared),
                  len(self.unsupported), fresh_made())
        self._infer_node(node, opset_imports, domain, opset)
        if before != (len(table.conflicts), len(table.constraints), len(table.notes), len(table.declared),
                      len(self.unsupported), fresh_made()):
            return  # findings, conditions or fresh dims of its own: inferred anew for every node
        outs = []
        for name in node.output:
            info = tensors.get(name) if name else TensorInfo()
            if info is None or info.kind != "tensor" or info.elem is not None:
                return
            if info.has_const and any(k is not None and len(k) == 4 for k in key[4]):
                return  # a constant out of a constant whose contents the key leaves out: not memoised
            outs.append((info.dtype, info.shape, info.value, info._const, info.kind, info.elem, info.proto))
        self._memo[key] = tuple(outs)

    def _infer_node(self, node: onnx.NodeProto, opset_imports, domain: str, opset: int) -> None:
        table = self.table
        ctx = NodeContext(node, table, opset)
        if node.attribute and not self._tensor_attributes_ok(ctx):
            self._unknown_outputs(node)
            return
        outputs: list[TensorInfo | None] | None = None
        fn = self.functions.get((domain, node.op_type))
        if fn is not None:
            outputs = self.infer_function(node, fn, ctx)
        else:
            if not self._arity_ok(ctx, domain, opset):
                self._unknown_outputs(node)
                return
            handler = handler_for(domain, node.op_type)
            if handler is not None:
                try:
                    outputs = handler(ctx)
                except AttributeTypeError as exc:
                    # a model whose attribute has the wrong type does not load in any runtime
                    ctx.conflict("op", str(exc), "the attribute types of the op's schema")
                    self._unknown_outputs(node)
                    return
            elif node.op_type in ("If", "Loop", "Scan") and domain in _DEFAULT_DOMAINS:
                from .subgraphs import infer_control_flow

                outputs = infer_control_flow(self, ctx, opset_imports)
        outputs = list(outputs) if outputs is not None else [None] * len(node.output)
        outputs += [None] * (len(node.output) - len(outputs))
        if any(o is None for o in outputs[: len(node.output)]):
            fb = self.fallback(ctx, opset_imports)
            if fb is not None:
                outputs = [o if o is not None else f for o, f in zip(outputs, fb)]
        outputs = [o if o is not None else TensorInfo() for o in outputs[: len(node.output)]]
        # exact answer when every input is a small constant
        if node.input and any(node.input) and not all(o.has_const for o in outputs):
            ins = ctx.inputs
            if any(o.value is None and not o.has_const for o in outputs):
                # what the handler could not compute: also from vectors whose elements all came out as integers
                # (Keras 3's 'same' pads computed from static sizes, then reshaped and reversed); the vectors
                # themselves stay values, not literals, for the rules that tell the two apart (SL501)
                ins = [_as_const(i) for i in ins]
            folded = fold(node, ins, outputs, opset_imports)
            if folded is not None:
                for o, f in zip(outputs, folded):
                    if f.shape is not None:
                        o.shape = f.shape
                        o.const = f.const
                        o.value = None
                        if o.dtype is None:
                            o.dtype = f.dtype
        for name, info in zip(node.output, outputs):
            if name:
                table.tensors[name] = info
                if info.shape:
                    self._dims_in_range(ctx, name, info)

    @staticmethod
    def _dims_in_range(ctx: NodeContext, name: str, info: TensorInfo) -> None:
        """A dim below 0 or past int64 is the node's conflict; it goes on as unknown, so no later
        handler does arithmetic on it (Slice of a -1000 dim, Shape of a 2**64 dim)."""
        bad = [d for d in info.shape if type(d) is int and not 0 <= d <= INT64_MAX]
        if not bad:
            return
        what = "negative" if bad[0] < 0 else "past the int64 limit"
        ctx.conflict("op", f"output {name!r} would have dim {bad[0]}, {what}", "dims from 0 to 2**63-1", tensor=name)
        info.shape = tuple(fresh_symbol() if type(d) is int and not 0 <= d <= INT64_MAX else d for d in info.shape)
        info.value = None
        info.const = None

    @staticmethod
    def _tensor_attributes_ok(ctx: NodeContext) -> bool:
        """A TENSOR attribute whose raw bytes do not fit its dims and type (a 3-byte FLOAT) is an op conflict."""
        for attr in ctx.node.attribute:
            if attr.type != onnx.AttributeProto.TENSOR:
                continue
            t = attr.t
            if not t.HasField("raw_data") or t.data_location == onnx.TensorProto.EXTERNAL:
                continue
            need = tensor_nbytes(t)
            if need is not None and (any(d < 0 for d in t.dims) or len(t.raw_data) != need):
                dtype = onnx.TensorProto.DataType.Name(t.data_type) if t.data_type in onnx.TensorProto.DataType.values() else t.data_type
                ctx.conflict("op", f"attribute {attr.name!r} holds {len(t.raw_data)} bytes of raw data; a {dtype} "
                             f"tensor of dims {list(t.dims)} needs {need}", "raw data that matches the tensor's dims and type")
                return False
        return True

    def _arity_ok(self, ctx: NodeContext, domain: str, opset: int) -> bool:
        """Input and output counts within the op schema's range (onnx's checker and onnxruntime refuse the
        model otherwise); a violation is an op conflict and the node's outputs stay unknown."""
        node = ctx.node
        key = (domain, node.op_type, opset)
        bounds = self._arity.get(key, False)
        if bounds is False:
            bounds = None
            if domain in _KNOWN_DOMAINS:  # unknown ops are the fallback's to report
                bounds = arity.bounds("" if domain == "ai.onnx" else domain, node.op_type, opset)
            self._arity[key] = bounds
        if bounds is None:
            return True
        lo_in, hi_in, lo_out, hi_out = bounds
        n_in, n_out = len(node.input), len(node.output)
        if lo_in <= n_in <= hi_in and lo_out <= n_out <= hi_out:
            return True
        what, n, lo, hi = ("inputs", n_in, lo_in, hi_in) if not lo_in <= n_in <= hi_in else ("outputs", n_out, lo_out, hi_out)
        want = f"{lo}" if lo == hi else f"{lo} or more" if hi >= 2**31 - 1 else f"{lo} to {hi}"
        noun = what[:-1] if want == "1" else what
        ctx.conflict("op", f"{node.op_type} has {n} {what}; opset {opset} defines {want}", f"{want} {noun}")
        return False

    def _opset_for(self, domain: str, opset_imports) -> int:
        if opset_imports is not self.opset_imports:  # a function's own imports
            return self._find_opset(domain, opset_imports)
        got = self._opset_cache.get(domain)
        if got is None:
            got = self._opset_cache[domain] = self._find_opset(domain, opset_imports)
        return got

    def _find_opset(self, domain: str, opset_imports) -> int:
        for imp in opset_imports:
            if (imp.domain or "") == domain or (domain == "" and imp.domain == "ai.onnx"):
                return imp.version
        return self.opset

    def fallback(self, ctx: NodeContext, opset_imports) -> list[TensorInfo] | None:
        node = ctx.node
        domain = node.domain or ""
        if domain not in _KNOWN_DOMAINS:
            x = ctx.input(0)
            if x.shape is not None and len(node.output) == 1 and documented_same_shape(domain, node.op_type):
                # no handler, but onnxruntime documents the output as shaped like the input: carry that shape on
                ctx.conflict("unsupported", f"custom op {domain}::{node.op_type} has no shape handler; onnxruntime "
                             "documents its output as shaped like its input, so that shape is carried on", inputs=[])
                self.unsupported.append(node)
                return [TensorInfo(dtype=x.dtype, shape=x.shape)]
            self.report_unsupported(ctx, f"custom op {domain}::{node.op_type}")
            return None
        try:
            result = infer_with_onnx(node, ctx.inputs, opset_imports, self.ir_version)
        except FallbackError as exc:
            ctx.conflict("op", str(exc), requirement="")
            return None
        if result is None:
            self.report_unsupported(ctx, f"op {node.op_type} is not in the ONNX {domain or 'ai.onnx'} opset the model imports")
        return result

    def report_unsupported(self, ctx: NodeContext, message: str) -> None:
        self.unsupported.append(ctx.node)
        ctx.conflict("unsupported", f"{message}: its output shapes are unknown from here on", inputs=[])

    # ---------------------------------------------------------- functions
    def infer_function(self, node: onnx.NodeProto, fn: onnx.FunctionProto, ctx: NodeContext):
        """Infer a model-local function call by walking its body with bound inputs."""
        key = (fn.domain, fn.name)
        if self._depth > 32 or key in self._expanding or self._function_budget <= 0:
            why = "recursive" if key in self._expanding else "too deeply nested or too large"
            self.report_unsupported(ctx, f"model-local function {fn.domain}::{fn.name} is {why} to expand")
            return [TensorInfo() for _ in node.output]
        self._function_budget -= max(1, len(fn.node))
        prefix = f"{node.name or node.op_type}::{id(node)}::"
        body_table = self.table
        rename = {}
        for formal, actual in zip(fn.input, node.input):
            rename[formal] = actual
        attrs = {a.name: a for a in node.attribute}
        for a in fn.attribute_proto:
            attrs.setdefault(a.name, a)
        body = []
        for bnode in fn.node:
            n = onnx.NodeProto()
            n.CopyFrom(bnode)
            del n.input[:]
            n.input.extend(rename.get(i, prefix + i) if i else "" for i in bnode.input)
            del n.output[:]
            n.output.extend(prefix + o if o else "" for o in bnode.output)
            new_attrs = []
            for a in bnode.attribute:
                if a.ref_attr_name:
                    if a.ref_attr_name in attrs:
                        b = onnx.AttributeProto()
                        b.CopyFrom(attrs[a.ref_attr_name])
                        b.name = a.name
                        new_attrs.append(b)
                else:
                    new_attrs.append(a)
            del n.attribute[:]
            n.attribute.extend(new_attrs)
            body.append(n)
        imports = list(fn.opset_import) or self.opset_imports
        self._depth += 1
        self._expanding.add(key)
        try:
            # conflicts inside a function body are reported on the calling node
            before = len(body_table.conflicts)
            self.walk(body, imports)
            for c in body_table.conflicts[before:]:
                c.node = node
        finally:
            self._depth -= 1
            self._expanding.discard(key)
        outs = [body_table.tensors.pop(prefix + o, TensorInfo()) for o in fn.output]
        for k in [k for k in body_table.tensors if k.startswith(prefix)]:
            del body_table.tensors[k]
        return outs


def _as_const(info: TensorInfo) -> TensorInfo:
    """``info``, or a copy holding its symbolic value as a constant when every element is an integer."""
    v, shape = info.value, info.shape
    if v is None or info.has_const or shape is None or len(shape) > 1 or info.dtype is None:
        return info
    if not all(isinstance(d, int) for d in shape) or len(v) != (shape[0] if shape else 1):
        return info
    if not all(isinstance(e, int) and not isinstance(e, bool) for e in v):
        return info
    try:
        np_type = onnx.helper.tensor_dtype_to_np_dtype(info.dtype)
    except (KeyError, ValueError, TypeError):
        return info
    if np_type.kind not in "iuf":
        return info
    return TensorInfo(dtype=info.dtype, shape=shape, value=v, const=np.asarray(v, dtype=np_type).reshape(shape))
