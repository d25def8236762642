"""``ModelGraph``: an ONNX model as a :class:`networkx.MultiDiGraph`.

Graph nodes are ONNX nodes plus one node per graph input, initializer and
graph output (``kind`` tells which); every edge is one tensor flowing from its
producer to a consumer.  Subgraphs of If/Loop/Scan are walked too: their nodes
carry the ``scope`` of the op that owns them, and a subgraph's use of an
outer-scope tensor is an edge from the outer producer.

Rules ask this object structural questions (``producer``, ``consumers``,
``const``, ``source``); shapes live in the :class:`~shapelint.infer.ShapeTable`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["ModelGraph", "NodeInfo", "GraphProblem", "CONST_LIMIT"]

logger = logging.getLogger(__name__)

#: constants with more elements than this are never materialised
CONST_LIMIT = 4096

_INPUT, _INIT, _OUTPUT, _OP = "input", "initializer", "output", "op"


@dataclass(slots=True)
class NodeInfo:
    """Where an ONNX node sits: its scope and position (and so its graph-node key)."""

    node: onnx.NodeProto
    scope: str  # "" for the main graph, "/If_3/then_branch" for a subgraph
    index: int

    @property
    def key(self) -> str:
        """The node's key in :attr:`ModelGraph.nx`: ``op:<scope>:<index>``."""
        return f"{_OP}:{self.scope}:{self.index}"


@dataclass
class GraphProblem:
    """A structural defect found while building the graph."""

    kind: str  # "cycle" | "duplicate-producer" | "missing-input" | "missing-output" | "invalid-utf8"
    message: str
    node: onnx.NodeProto | None = None


@dataclass
class ModelGraph:
    """An ONNX model's dataflow graph.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''
    ... <ir_version: 8, opset_import: ["" : 17]>
    ... g (float[N, 4] x) => (float[N, 4] y) { t = Relu(x)  y = Neg(t) }''')
    >>> g = ModelGraph.from_model(m)
    >>> g.producer("t").op_type, [n.op_type for n in g.consumers("t")]
    ('Relu', ['Neg'])
    """

    model: onnx.ModelProto
    nodes: list[onnx.NodeProto]  # main graph, in file order
    problems: list[GraphProblem] = field(default_factory=list)
    _producer: dict[str, onnx.NodeProto] = field(default_factory=dict, repr=False)
    _consumers: dict[str, list[onnx.NodeProto]] = field(default_factory=dict, repr=False)
    _info: dict[int, NodeInfo] = field(default_factory=dict, repr=False)
    _initializers: dict[str, onnx.TensorProto] = field(default_factory=dict, repr=False)
    _const_cache: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)
    _order: list[onnx.NodeProto] | None = field(default=None, repr=False)
    _inputs: dict[int, tuple[str, ...]] = field(default_factory=dict, repr=False)  # id(node) -> every tensor it reads
    _input_names: list[str] = field(default_factory=list, repr=False)
    _nx: "nx.MultiDiGraph | None" = field(default=None, repr=False)
    #: names in ``_producer`` that map to the If/Loop/Scan owning a subgraph input, not to a node writing them
    _owned: set[str] = field(default_factory=set, repr=False)
    #: how the model was read where it departs from the file's words (``dim_value: -1`` axes read as dynamic)
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ building
    def _name_placeholder_dims(self, main: onnx.GraphProto) -> None:
        """A graph input axis declared ``dim_value: -1`` (paddle2onnx) or ``0`` is a dynamic axis, never a size:
        it gets a ``dim_param`` of its own (``x_dim0``), in place, so inference, verify and fix all read it as one."""
        used = None
        for vi in main.input:
            if vi.name in self._initializers or not vi.type.HasField("tensor_type"):
                continue
            tt = vi.type.tensor_type
            if not tt.HasField("shape"):
                continue
            for k, d in enumerate(tt.shape.dim):
                if not d.HasField("dim_value") or d.dim_value > 0:
                    continue
                if used is None:
                    used = {x.dim_param for v in main.input if v.type.HasField("tensor_type")
                            for x in v.type.tensor_type.shape.dim if x.dim_param}
                base = re.sub(r"\W", "_", f"{vi.name}_dim{k}")
                base = base if re.match(r"[A-Za-z_]", base) else "d_" + base
                name, n = base, 1
                while name in used:
                    n += 1
                    name = f"{base}_{n}"
                used.add(name)
                value = d.dim_value
                d.dim_param = name  # clears dim_value (one field of a oneof)
                runtime = "" if value < 0 else " (onnxruntime takes it as a size: only empty tensors fit there)"
                self.notes.append(f"input {vi.name!r} axis {k} is declared with dim_value {value}: read as a dynamic "
                                  f"axis, named {name}{runtime}")

    @classmethod
    def from_model(cls, model: onnx.ModelProto) -> "ModelGraph":
        """Index producers, consumers and subgraph scopes in one pass over the nodes.

        The :class:`networkx.MultiDiGraph` view (:attr:`nx`) is built from
        these indexes the first time it is asked for: ``check`` answers its
        structural questions from the indexes alone, so it never pays for
        networkx's per-edge dictionaries on a 10^5-node model.
        """
        nodes = list(model.graph.node)
        self = cls(model=model, nodes=nodes)
        main = model.graph
        for vi in main.input:
            name = vi.name if type(vi.name) is str else self._repair(vi, "name", "graph input")
            self._input_names.append(name)
        for t in main.initializer:
            name = t.name if type(t.name) is str else self._repair(t, "name", "initializer")
            self._initializers[name] = t
        self._name_placeholder_dims(main)
        for t in main.sparse_initializer:
            self._initializers.setdefault(t.values.name, t.values)
        graph_t, graphs_t = onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS
        producer, info_of = self._producer, self._info
        stack = [(main, nodes, "")]
        seen_names: dict[str, int] = {}
        with_subgraphs: list[onnx.NodeProto] = []
        main_produced: dict[str, int] = {}  # tensor -> index of the first main-graph node writing it
        while stack:
            graph, gnodes, scope = stack.pop()
            if scope:
                for t in graph.initializer:
                    self._initializers.setdefault(t.name, t)
            for i, node in enumerate(gnodes):
                info_of[id(node)] = NodeInfo(node, scope, i)
                op_type, name = node.op_type, node.name
                if type(op_type) is not str or type(name) is not str:
                    op_type, name = self._repair(node, "op_type", "op_type"), self._repair(node, "name", "node name")
                if name:
                    seen_names[name] = seen_names.get(name, 0) + 1
                for k, out in enumerate(node.output):
                    if not out:
                        continue
                    if type(out) is not str:
                        out = self._repair(node.output, k, "output", node)
                    if not scope:
                        main_produced.setdefault(out, i)
                    other = producer.get(out)
                    if other is not None:
                        self.problems.append(
                            GraphProblem(
                                "duplicate-producer",
                                f"tensor {out!r} is produced by both {other.name or other.op_type!r} "
                                f"and {node.name or node.op_type!r}",
                                node,
                            )
                        )
                        continue
                    producer[out] = node
                if not node.attribute:
                    continue
                for attr in node.attribute:
                    t = attr.type
                    if t == graph_t:
                        subs = [attr.g]
                    elif t == graphs_t:
                        subs = list(attr.graphs)
                    else:
                        continue
                    with_subgraphs.append(node)
                    for j, sg in enumerate(subs):
                        sub_scope = f"{scope}/{node.name or node.op_type}/{attr.name}" + (f"[{j}]" if len(subs) > 1 else "")
                        for vi in sg.input:
                            if vi.name not in producer:
                                producer[vi.name] = node
                                self._owned.add(vi.name)
                        stack.append((sg, list(sg.node), sub_scope))
        inputs_of = self._inputs
        for node in with_subgraphs:
            inputs_of[id(node)] = tuple(_all_inputs(node))
        consumers = self._consumers
        known = set(self._input_names) | set(self._initializers) | set(producer)
        missing: list[tuple[onnx.NodeProto, str]] = []
        in_file_order = True  # every main-graph node reads only what earlier nodes wrote (topological_order)
        for info in info_of.values():
            node = info.node
            reads = inputs_of.get(id(node))
            plain = reads is None  # no subgraph: it reads exactly its inputs
            if plain:
                reads = node.input
            main = not info.scope
            for k, inp in enumerate(reads):
                if not inp:
                    continue
                if type(inp) is not str:
                    inp = self._repair(node.input, k, "input", node) if k < len(node.input) else _as_text(inp)
                if main and in_file_order:
                    j = main_produced.get(inp)
                    if j is not None and j >= info.index:
                        in_file_order = False
                got = consumers.get(inp)
                if got is None:
                    consumers[inp] = [node]
                else:
                    got.append(node)
                if main and plain and inp not in known:
                    missing.append((node, inp))
            if main and not plain:
                missing.extend((node, inp) for inp in node.input if inp and inp not in known)
        for node, inp in missing:
            self.problems.append(
                GraphProblem(
                    "missing-input",
                    f"input {inp!r} of {node.name or node.op_type!r} is produced by no node, graph input or initializer",
                    node,
                )
            )
        for vi in model.graph.output:
            out = _as_text(vi.name)
            if out and out not in main_produced and out not in self._input_names and out not in self._initializers:
                self.problems.append(
                    GraphProblem("missing-output", f"graph output {out!r} is produced by no node, graph input or initializer")
                )
        for fn in model.functions:  # walked by inference only: repair their text here
            for field in ("name", "domain"):
                self._repair(fn, field, f"function {field}")
            for fields in (fn.input, fn.output):
                for k in range(len(fields)):
                    self._repair(fields, k, "function input/output")
            for node in fn.node:
                for field in ("op_type", "domain", "name"):
                    self._repair(node, field, field, node)
                for fields in (node.input, node.output):
                    for k in range(len(fields)):
                        self._repair(fields, k, "tensor", node)
        for name, count in seen_names.items():
            if count > 1:
                logger.debug("node name %r used %d times", name, count)
        if in_file_order:
            self._order = list(nodes)
        return self

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The dataflow graph as a :class:`networkx.MultiDiGraph` (built on first use).

        Nodes are keyed ``op:<scope>:<index>`` (ONNX nodes, with ``op_type``,
        ``name`` and ``scope``), ``input:<name>``, ``initializer:<name>`` and
        ``output:<name>`` (with ``kind`` and ``name``); each edge is one
        tensor, keyed and labelled by its name.
        """
        if self._nx is None:
            self._nx = self._build_nx()
        return self._nx

    def _build_nx(self) -> nx.MultiDiGraph:
        import networkx as nx  # imported with the view: `check` does without it

        g = nx.MultiDiGraph()
        g.add_nodes_from((f"{_INPUT}:{n}", {"kind": _INPUT, "name": n}) for n in self._input_names)
        inits = [t.name for t in self.graph.initializer]
        g.add_nodes_from((f"{_INIT}:{n}", {"kind": _INIT, "name": n}) for n in inits)
        g.add_nodes_from(
            (i.key, {"kind": _OP, "op_type": i.node.op_type, "name": i.node.name, "scope": i.scope}) for i in self._info.values()
        )
        inputs, inits = set(self._input_names), set(inits)

        def source(tensor):
            prod = self._producer.get(tensor)
            if prod is not None:
                return self._info[id(prod)].key
            if tensor in inits:
                return f"{_INIT}:{tensor}"
            if tensor in inputs:
                return f"{_INPUT}:{tensor}"
            return None

        edges = []
        for info in self._info.values():
            for inp in self.reads(info.node):
                src = source(inp) if inp else None
                if src is not None:
                    edges.append((src, info.key, inp, {"tensor": inp}))
        for vi in self.graph.output:
            okey = f"{_OUTPUT}:{vi.name}"
            g.add_node(okey, kind=_OUTPUT, name=vi.name)
            src = source(vi.name)
            if src is not None:
                edges.append((src, okey, vi.name, {"tensor": vi.name}))
        g.add_edges_from(edges)
        return g

    def reads(self, node: onnx.NodeProto) -> tuple[str, ...]:
        """Every tensor ``node`` reads: its inputs, plus outer-scope names its subgraphs use."""
        got = self._inputs.get(id(node))
        return got if got is not None else tuple(node.input)

    def _repair(self, owner, field, what: str, node: onnx.NodeProto | None = None) -> str:
        """Rewrite a text field protobuf handed back as ``bytes`` (invalid UTF-8) as escaped text.

        ONNX strings are UTF-8; python-protobuf returns the raw bytes of a
        proto2 string that is not.  Every later step expects ``str``, so the
        field is rewritten in place (``\\xd2``-escaped) and the defect becomes
        an ``invalid-utf8`` problem (SL002).  ``owner[field]`` for repeated
        fields, ``owner.field`` otherwise.
        """
        value = owner[field] if isinstance(field, int) else getattr(owner, field)
        if type(value) is str:
            return value
        text = _as_text(value)
        if isinstance(field, int):
            owner[field] = text
        else:
            setattr(owner, field, text)
        anchor = node if node is not None else owner if isinstance(owner, onnx.NodeProto) else None
        self.problems.append(GraphProblem("invalid-utf8", f"{what} '{text}' is not valid UTF-8 (shown escaped)", anchor))
        return text

    # ------------------------------------------------------------ queries
    @property
    def graph(self) -> onnx.GraphProto:
        return self.model.graph

    @property
    def opset(self) -> int:
        """The default-domain opset version the model imports."""
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                return imp.version
        return 1

    def producer(self, tensor: str) -> onnx.NodeProto | None:
        """The node that writes ``tensor`` (None for graph inputs and initializers)."""
        node = self._producer.get(tensor)
        if node is not None and tensor in self._owned and tensor not in node.output:
            return None  # a subgraph's own input, owned by its If/Loop/Scan
        return node

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        """Nodes that read ``tensor``, including from inside subgraphs."""
        return list(self._consumers.get(tensor, ()))

    def info(self, node: onnx.NodeProto) -> NodeInfo:
        return self._info[id(node)]

    def is_graph_input(self, tensor: str) -> bool:
        return any(vi.name == tensor for vi in self.graph.input) and tensor not in self._initializers

    def initializer(self, name: str) -> onnx.TensorProto | None:
        """The initializer's proto (weights may still be on disk)."""
        return self._initializers.get(name)

    def const(self, tensor: str, limit: int = CONST_LIMIT) -> np.ndarray | None:
        """Value of a small constant: an embedded initializer or a Constant node's output.

        External or large tensors are never read: None.
        """
        if tensor in self._const_cache:
            return self._const_cache[tensor]
        value = None
        init = self._initializers.get(tensor)
        if init is not None:
            value = tensor_value(init, limit)
        else:
            node = self._producer.get(tensor)
            if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = constant_node_value(node, limit)
        self._const_cache[tensor] = value
        return value

    def topological_order(self) -> list[onnx.NodeProto]:
        """Main-graph nodes so that producers come before consumers.

        A cycle is recorded in :attr:`problems` and the file order is used.
        """
        if self._order is not None:
            return self._order
        produced = {}
        for i, node in enumerate(self.nodes):
            for out in node.output:
                if out:
                    produced.setdefault(out, i)
        # ONNX asks for nodes in topological order and exporters write them so: check, then keep the file order
        in_order = True
        for i, node in enumerate(self.nodes):
            for t in self.reads(node):
                j = produced.get(t)
                if j is not None and j >= i:
                    in_order = False
                    break
            if not in_order:
                break
        if in_order:
            self._order = list(self.nodes)
            return self._order
        indeg = [0] * len(self.nodes)
        users: list[list[int]] = [[] for _ in self.nodes]
        for i, node in enumerate(self.nodes):
            reads = self.reads(node)
            own = next((t for t in reads if produced.get(t) == i), None)
            if own is not None:  # y = Add(r, y): a cycle of one node, which the in-degrees below cannot see
                self.problems.append(
                    GraphProblem("cycle", f"{node.name or node.op_type!r} consumes its own output {own!r} (a cycle of one node)", node)
                )
            deps = {produced[t] for t in reads if t in produced and produced[t] != i}
            indeg[i] = len(deps)
            for d in deps:
                users[d].append(i)
        ready = [i for i in range(len(self.nodes)) if indeg[i] == 0]
        ready.reverse()
        order = []
        while ready:
            i = ready.pop()
            order.append(i)
            for u in reversed(users[i]):
                indeg[u] -= 1
                if indeg[u] == 0:
                    ready.append(u)
        if len(order) < len(self.nodes):
            stuck = [self.nodes[i] for i in range(len(self.nodes)) if indeg[i] > 0]
            self.problems.append(
                GraphProblem(
                    "cycle",
                    f"the graph has a cycle through {len(stuck)} node(s), e.g. "
                    f"{', '.join(repr(n.name or n.op_type) for n in stuck[:3])}",
                    stuck[0],
                )
            )
            placed = set(order)
            order.extend(i for i in range(len(self.nodes)) if i not in placed)
        self._order = [self.nodes[i] for i in order]
        return self._order

    def source(self, node: onnx.NodeProto | None) -> str | None:
        """Where the exporter says this node came from, or None.

        Reads, in order: the dynamo exporter's ``pkg.torch.onnx.stack_trace``
        (last user frame, ``file.py:LINE``) and ``pkg.torch.onnx.name_scopes``,
        a ``doc_string`` stack trace, then the TorchScript exporter's
        ``/encoder/lstm/LSTM`` and tf2onnx/Keras ``model/lstm/...`` names.
        """
        if node is None:
            return None
        meta = {_as_text(p.key): _as_text(p.value) for p in getattr(node, "metadata_props", ())}
        frame = _last_frame(meta.get("pkg.torch.onnx.stack_trace", "")) or _last_frame(_as_text(node.doc_string))
        scope = _layer_from_scopes(meta.get("pkg.torch.onnx.name_scopes", ""))
        if scope is None:
            scope = layer_from_name(_as_text(node.name))
        if frame and scope:
            return f"{scope} ({frame})"
        return frame or scope


def _as_text(value) -> str:
    """``str`` as is; bytes (a protobuf string that is not UTF-8) decoded with escapes."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value if isinstance(value, str) else str(value)


def _all_inputs(node: onnx.NodeProto):
    """Inputs of ``node`` plus outer-scope names its subgraphs read."""
    yield from node.input
    for attr in node.attribute:
        subs = []
        if attr.type == onnx.AttributeProto.GRAPH:
            subs = [attr.g]
        elif attr.type == onnx.AttributeProto.GRAPHS:
            subs = list(attr.graphs)
        for sg in subs:
            yield from _outer_names(sg)


def _outer_names(graph: onnx.GraphProto):
    stack = [(graph, set())]
    while stack:
        g, bound = stack.pop()
        local = set(bound) | {vi.name for vi in g.input} | {t.name for t in g.initializer}
        for node in g.node:
            for inp in node.input:
                if inp and inp not in local:
                    yield inp
            local.update(o for o in node.output if o)
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    stack.append((attr.g, local))
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    stack.extend((sg, local) for sg in attr.graphs)


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TS_FRAME = re.compile(r"^(.+?)\((\d+)\): \S+", re.M)


def _is_library(path: str) -> bool:
    return "site-packages" in path or "dist-packages" in path or "/torch/" in path or "/keras/" in path


def _last_frame(trace: str) -> str | None:
    """The innermost user frame of a recorded stack trace, as ``path:LINE``.

    Reads Python tracebacks (dynamo's ``pkg.torch.onnx.stack_trace``,
    outermost first) and the TorchScript exporter's ``doc_string``
    (``path(LINE): func`` lines, innermost first).

    >>> _last_frame('File "model.py", line 53, in forward\\n  File "site-packages/torch/nn/x.py", line 2, in f')
    'model.py:53'
    >>> _last_frame("site-packages/torch/nn/rnn.py(1164): forward\\nmodel.py(75): forward")
    'model.py:75'
    """
    if not trace:
        return None
    trace = trace.replace("\\n", "\n")
    frames = _FRAME.findall(trace)
    if frames:
        user = [f for f in frames if not _is_library(f[0])]
        path, line = (user or frames)[-1]
        return f"{path}:{line}"
    ts = _TS_FRAME.findall(trace)
    if ts:
        user = [f for f in ts if not _is_library(f[0])]
        path, line = (user or ts)[0]
        return f"{path.strip()}:{line}"
    return None


def _layer_from_scopes(scopes: str) -> str | None:
    """dynamo's name scopes ``['', 'encoder', 'lstm', 'lstm']``: the module path, without the op."""
    names = [n for n in re.findall(r"'([^']*)'", scopes) if n]
    if len(names) >= 2:
        return ".".join(names[:-1])
    return names[0] if names else None


def layer_from_name(name: str) -> str | None:
    """``/encoder/lstm/LSTM`` → ``encoder.lstm``; ``model/lstm/while`` → ``model/lstm``.

    >>> layer_from_name("/encoder/lstm/LSTM")
    'encoder.lstm'
    >>> layer_from_name("Relu_3") is None
    True
    """
    if not name:
        return None
    if name.startswith("/"):
        parts = [p for p in name.split("/") if p]
        if len(parts) >= 2:
            return ".".join(parts[:-1])
        return None
    if "/" in name:
        return name.rsplit("/", 1)[0]
    return None


def tensor_value(t: onnx.TensorProto, limit: int = CONST_LIMIT) -> np.ndarray | None:
    """numpy value of an embedded tensor with at most ``limit`` elements."""
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None
    count = 1
    for d in t.dims:
        if d < 0:
            return None
        count *= d
        if count > limit:
            return None
    fast = _small_array(t, count)
    if fast is not None:
        return fast
    try:
        return numpy_helper.to_array(t)
    except Exception:  # noqa: BLE001 - malformed tensors stay unknown
        return None


# raw_data is little-endian; the typed fields that hold these types as they are
_RAW = {
    onnx.TensorProto.FLOAT: np.dtype("<f4"), onnx.TensorProto.DOUBLE: np.dtype("<f8"),
    onnx.TensorProto.INT32: np.dtype("<i4"), onnx.TensorProto.INT64: np.dtype("<i8"),
    onnx.TensorProto.INT8: np.dtype("i1"), onnx.TensorProto.UINT8: np.dtype("u1"), onnx.TensorProto.BOOL: np.dtype("?"),
}
_TYPED = {onnx.TensorProto.INT64: "int64_data", onnx.TensorProto.FLOAT: "float_data", onnx.TensorProto.DOUBLE: "double_data"}


def _small_array(t: onnx.TensorProto, count: int) -> np.ndarray | None:
    """The common cases of ``numpy_helper.to_array`` without its per-call overhead (exporters
    write thousands of one-element Constants); None for everything else."""
    dtype = _RAW.get(t.data_type)
    if dtype is None or t.HasField("segment"):
        return None
    shape = tuple(t.dims)
    if t.HasField("raw_data"):
        raw = t.raw_data
        if len(raw) != count * dtype.itemsize:
            return None
        return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="), copy=True).reshape(shape)
    field = _TYPED.get(t.data_type)
    if field is None:
        return None
    values = getattr(t, field)
    if len(values) != count:
        return None
    return np.array(values, dtype=dtype.newbyteorder("=")).reshape(shape)


def constant_node_value(node: onnx.NodeProto, limit: int = CONST_LIMIT) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value" and attr.type == onnx.AttributeProto.TENSOR:
            return tensor_value(attr.t, limit)
        if attr.name == "value_int":
            return np.array(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.array(list(attr.ints), dtype=np.int64)
        if attr.name == "value_float":
            return np.array(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.array(list(attr.floats), dtype=np.float32)
    return None
