"""A picture of each finding: its neighbourhood in the graph, as a standalone SVG.

``shapelint check --graph DIR`` writes one ``.svg`` per finding (and an
``index.html`` linking them): the culprit node highlighted, a few nodes up and
down the data path, the nodes the message names (the recurrence it blames)
with the path that joins them, every edge labelled with the tensor's inferred
symbolic shape, and constant inputs (weights, Reshape targets) folded into
their consumer's box.  Shape arithmetic (``Shape -> Gather -> Concat``
computing a Reshape target) is one box titled with the value it computes,
``[batch, 16, 6]``, and its edge carries that value, not ``(3,)``.  Everything
is inline: no fonts, scripts or styles are fetched.  Each run replaces the
pictures an earlier run wrote into DIR (:func:`write_pictures`) and touches
nothing else there.

The layout is our own (layered, top-down, Sugiyama-style: longest-path layers,
dummy nodes on long edges, barycentre ordering), not graphviz: pictures come
out the same on every machine and CI needs nothing installed.

The pictures are drawn from the :class:`~shapelint.result.CheckResult` of
each file, in the process that checked it (``check_paths(after=PictureHook())``):
its graph and shape table, never rebuilt; each SVG rides on its finding
(``Diagnostic.picture``) to :func:`write_pictures`.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .diagnostics import Diagnostic, FileReport, RunReport
from .dims import format_dim, format_shape

__all__ = ["MANIFEST", "MARK", "Neighbourhood", "PictureHook", "Written", "draw_pictures", "neighbourhood", "picture_for",
           "render_svg", "write_pictures"]

logger = logging.getLogger(__name__)

FONT = 12
MONO_W = 0.61 * FONT  # width of one monospace character
SANS_W = 0.62 * FONT  # a generous average for bold sans
LINE = 16
PAD = 8
LAYER_GAP = 78
NODE_GAP = 28
MAX_FANOUT = 4
MAX_FANIN = 6
MAX_CONST_LINES = 5
MAX_LABEL = 38

_SEVERITY_COLOR = {"error": "#c62828", "warning": "#b26a00", "info": "#1565c0"}


# ---------------------------------------------------------------- the subgraph
@dataclass
class Vertex:
    key: str
    kind: str  # "op" | "input" | "output" | "elided"
    title: str
    lines: list[str] = field(default_factory=list)
    culprit: bool = False
    # layout
    layer: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass
class Edge:
    src: str
    dst: str
    tensor: str
    label: str
    culprit: bool = False
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Neighbourhood:
    vertices: dict[str, Vertex]
    edges: list[Edge]


def _short(name: str, limit: int = MAX_LABEL) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1):]


def _const_text(value) -> str | None:
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - a value we cannot show is simply not shown
        return None
    if arr.size <= 8 and arr.dtype.kind in "iub":
        return str(arr.tolist()).replace(" ", "")
    if 0 < arr.size <= 4 and arr.dtype.kind == "f":  # Resize scales, a LayerNorm epsilon
        flat = ",".join(f"{float(x):g}" for x in arr.reshape(-1))
        return flat if arr.ndim == 0 else f"[{flat}]"
    return None


def _input_role(node, i: int, opset: int, tensor: str) -> str:
    """The schema's name of input ``i`` (``W``, ``shape``), plus a parameter's own name when it has one.

    >>> import onnx.helper as h
    >>> _input_role(h.make_node("LSTM", ["x", "w"], ["y"]), 1, 17, "onnx::LSTM_130")
    'W'
    >>> _input_role(h.make_node("Add", ["x", "head.bias"], ["y"]), 1, 17, "head.bias")
    'B head.bias'
    """
    import onnx.defs

    role = None
    if node.domain in ("", "ai.onnx"):
        try:
            formal = onnx.defs.get_schema(node.op_type, opset, node.domain).inputs
            role = formal[min(i, len(formal) - 1)].name if formal else None
        except Exception:  # noqa: BLE001 - unknown op or opset: fall back to the tensor's name
            role = None
    own = tensor.rsplit("/", 1)[-1]
    meaningful = "." in own and "::" not in own and ":" not in own
    if role and meaningful:
        return f"{role} {_short(own, 24)}"
    return role or _short(own, 18)


def _data_inputs(mg, node) -> list[str]:
    """The inputs of ``node`` drawn as edges: not empty, not constants (those go in its box)."""
    return [t for t in node.input if t and not _is_const_input(mg, t)]


def _is_const_input(mg, tensor: str) -> bool:
    if mg.initializer(tensor) is not None and not mg.is_graph_input(tensor):
        return True
    prod = mg.producer(tensor)
    return prod is not None and prod.op_type == "Constant" and not prod.input


# ---------------------------------------------------------------- shape arithmetic
#: ops that compute shape vectors and indices (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``)
SHAPE_OPS = frozenset({
    "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "Mul", "Add", "Sub", "Div",
    "Constant", "ConstantOfShape", "Identity", "Floor", "Ceil", "Neg", "Abs", "Min", "Max", "Mod", "Equal",
    "Where", "Reshape", "Expand", "Range", "ReduceProd",
})
#: a shape vector has at most this many elements
MAX_VALUE = 16
#: a node the message names is drawn when it is at most this many data edges from the window
NAMED_HOPS = 6
#: Identity and same-type Casts on the data path cost no hop; at most this many per picture
MAX_FREE = 8


def _value_dims(info) -> list | None:
    """The elements of a small tensor, symbolically (``[batch, 16, 6]``), or None when unknown."""
    if info.value is not None:
        return list(info.value)
    if info.has_const:
        try:
            arr = np.asarray(info.const)
        except Exception:  # noqa: BLE001 - a value we cannot read is unknown
            return None
        if arr.size <= MAX_VALUE and arr.dtype.kind in "iub":
            return [int(x) for x in arr.reshape(-1)]
    return None


def _is_small(info) -> bool:
    """Rank 0 or 1 with a static length of at most :data:`MAX_VALUE`: the size of a shape vector."""
    if info.value is not None:
        return len(info.value) <= MAX_VALUE
    shape = info.shape
    if shape is None or len(shape) > 1:
        return False
    return not shape or (isinstance(shape[0], int) and shape[0] <= MAX_VALUE)


class _ShapeArithmetic:
    """Which tensors of a model are shape vectors or indices computed by shape arithmetic.

    A tensor is one when it is small (:func:`_is_small`) and its producer is a
    ``Shape``/``Size``, or one of :data:`SHAPE_OPS` whose every input is a
    constant or itself such a tensor.  A graph input never is.
    """

    def __init__(self, mg, table):
        self.mg, self.table = mg, table
        self.memo: dict[str, bool] = {}

    def __call__(self, t: str, depth: int = 0) -> bool:
        if not t:
            return False
        hit = self.memo.get(t)
        if hit is not None:
            return hit
        if depth > 200:  # a pathological chain: drawn as it is
            return False
        self.memo[t] = False  # a cycle is not arithmetic
        self.memo[t] = ok = self._decide(t, depth)
        return ok

    def _decide(self, t: str, depth: int) -> bool:
        mg = self.mg
        prod = mg.producer(t)
        if prod is None or mg.is_graph_input(t) or prod.domain not in ("", "ai.onnx"):
            return False
        if prod.op_type in ("Shape", "Size"):
            return True
        if prod.op_type not in SHAPE_OPS or not _is_small(self.table.get(t)):
            return False
        return all(_is_const_input(mg, i) or self(i, depth + 1) for i in prod.input if i)

    def node(self, node) -> bool:
        """Every output of ``node`` is shape arithmetic (a ``Shape`` reading a data tensor, a ``Concat`` of sizes)."""
        outs = [o for o in node.output if o]
        return bool(outs) and all(self(o) for o in outs)

    def chain(self, t: str):
        """The nodes computing ``t`` (producers first) and the data tensors they read (a ``Shape``'s input)."""
        mg = self.mg
        nodes, reads, seen = [], [], set()

        def walk(x: str) -> None:
            prod = mg.producer(x)
            if prod is None or id(prod) in seen:
                return
            seen.add(id(prod))
            for i in prod.input:
                if not i:
                    continue
                if self(i):
                    walk(i)
                elif _is_const_input(mg, i):
                    if mg.producer(i) is not None and id(mg.producer(i)) not in seen:
                        seen.add(id(mg.producer(i)))
                        nodes.append(mg.producer(i))
                elif i not in reads:
                    reads.append(i)
            nodes.append(prod)

        walk(t)
        return nodes, reads

    def label(self, t: str) -> str:
        """``[batch, 16, 6]`` for a shape vector, ``batch`` for an index, ``[?, ?, ?]`` when its value is unknown."""
        info = self.table.get(t)
        dims = _value_dims(info)
        scalar = info.shape is not None and len(info.shape) == 0
        if dims is None:
            if info.shape is None or len(info.shape) > 1 or not all(isinstance(d, int) for d in info.shape):
                return format_shape(info.shape)
            dims = [None] * (info.shape[0] if info.shape else 1)
        text = [format_dim(x) for x in dims]
        return text[0] if scalar and len(text) == 1 else "[" + ", ".join(text) + "]"


def _free(mg, table, node) -> bool:
    """A node that changes nothing a picture shows: Identity, a Cast to the type it already has."""
    if node.op_type == "Identity":
        return True
    if node.op_type == "Cast" and node.input and node.output:
        src, dst = table.get(node.input[0]).dtype, table.get(node.output[0]).dtype
        return src is not None and src == dst
    return False


def _named_in(message: str) -> list[str]:
    """The names a message quotes (``LSTM '/rnn/LSTM'``, ``reads '/Add_output_0'``), in order.

    >>> _named_in("the class's seq steps of LSTM '/rnn/LSTM' and of 'x'")
    ['/rnn/LSTM', 'x']
    """
    out = []
    for name in re.findall(r"(?<!\w)'([^'\n]{1,400})'(?!\w)", message or ""):
        if name not in out:
            out.append(name)
    return out


def neighbourhood(mg, table, culprit, up: int = 2, down: int = 2, tensor: str | None = None,
                  named=()) -> Neighbourhood:
    """The culprit, its producers ``up`` levels up and consumers ``down`` levels down.

    The levels are spent on the data path: shape arithmetic (``Shape ->
    Gather -> Concat`` computing a ``Reshape`` target) is never walked into
    but drawn as one box titled with the value it computes, and an Identity
    or a Cast to the same type costs no level.  ``named`` (node or tensor
    names, e.g. the ones the message quotes) are drawn too, with the data path
    that joins them to the window, when at most :data:`NAMED_HOPS` edges away.
    Constant inputs are folded into their consumer; a tensor whose producer or
    consumers fall outside the radius gets a dimmed stub, so every edge still
    shows its shape.
    """
    key_of = {}
    arith = _ShapeArithmetic(mg, table)

    def key(node) -> str:
        k = key_of.get(id(node))
        if k is None:
            k = key_of[id(node)] = mg.info(node).key
        return k

    def data_inputs(node) -> list[str]:
        return [t for t in _data_inputs(mg, node) if not arith(t)]

    chosen = {id(culprit): culprit}
    free = [0]

    def grow(step, budget: int) -> None:
        frontier = [(culprit, 0)]
        while frontier:
            nxt = []
            for node, spent in frontier:
                for other in step(node):
                    if id(other) in chosen or arith.node(other):
                        continue
                    cost = 0 if free[0] < MAX_FREE and _free(mg, table, other) else 1
                    if spent + cost > budget:
                        continue
                    free[0] += 1 - cost
                    chosen[id(other)] = other
                    (frontier if cost == 0 else nxt).append((other, spent + cost))
            frontier = nxt

    def producers(node):
        return [p for t in data_inputs(node)[:MAX_FANIN] if (p := mg.producer(t)) is not None]

    def consumers(node):
        return [c for t in node.output if t for c in [c for c in mg.consumers(t) if not arith.node(c)][:MAX_FANOUT]]

    grow(producers, up)
    grow(consumers, down)
    _add_named(mg, table, chosen, named, arith)

    outputs = {o.name for o in mg.graph.output}
    vertices: dict[str, Vertex] = {}
    edges: list[Edge] = []

    def shape_label(t: str) -> str:
        if arith(t):
            return arith.label(t)
        return format_shape(table.shape(t)) if t in table else "?"

    for node in chosen.values():
        lines = [_short(node.name)] if node.name else []
        consts = [(i, t) for i, t in enumerate(node.input) if t and _is_const_input(mg, t)]
        for i, t in consts[:MAX_CONST_LINES]:
            v = mg.const(t)
            text = _const_text(v) if v is not None else None
            label = _input_role(node, i, mg.opset, t)
            lines.append(f"{label} = {text}" if text else f"{label}: {shape_label(t)}")
        if len(consts) > MAX_CONST_LINES:
            lines.append(f"+{len(consts) - MAX_CONST_LINES} more constants")
        vertices[key(node)] = Vertex(key(node), "op", node.op_type, lines, culprit=node is culprit)

    # shape arithmetic feeding the picture: one box per value, reading the data tensors it measures
    folded: dict[str, tuple[list, list]] = {}
    for node in chosen.values():
        for t in _data_inputs(mg, node):
            prod = mg.producer(t)
            if t not in folded and arith(t) and not (prod is not None and id(prod) in chosen):
                folded[t] = arith.chain(t)
    measured = set()  # the Shape nodes (and the like) whose data input is drawn: not "outside the picture"
    for t, (nodes, reads) in folded.items():
        ops = []
        for n in nodes:
            if n.op_type not in ops and n.op_type != "Constant":
                ops.append(n.op_type)
        lines = [_short("→".join(ops) or "Constant"), f"{len(nodes)} node{'s' if len(nodes) != 1 else ''} of shape arithmetic"]
        vertices[f"val:{t}"] = Vertex(f"val:{t}", "value", arith.label(t), lines)
        for r in reads:
            if (p := mg.producer(r)) is not None and id(p) in chosen:
                measured.update(id(c) for c in mg.consumers(r) if any(c is n for n in nodes))

    for node in chosen.values():
        data = _data_inputs(mg, node)
        hidden = [t for k, t in enumerate(data) if k >= MAX_FANIN and t != tensor and not (mg.producer(t) is not None and id(mg.producer(t)) in chosen)]
        if len(hidden) < 2:  # a wide Concat/Sum: the inputs past the first few become one stub
            hidden = []
        for t in data:
            if t in hidden:
                continue
            prod = mg.producer(t)
            if prod is not None and id(prod) in chosen:
                src = key(prod)
            elif t in folded:
                src = f"val:{t}"
            else:
                src = f"in:{t}"
                if src not in vertices:
                    if prod is None:
                        vertices[src] = Vertex(src, "input", _short(t, 28), ["graph input"])
                    else:
                        vertices[src] = Vertex(src, "elided", prod.op_type, [_short(prod.name or t, 28)])
            edges.append(Edge(src, key(node), t, shape_label(t), culprit=(t == tensor)))
        if hidden:
            src = f"more-in:{key(node)}"
            vertices[src] = Vertex(src, "elided", f"{len(hidden)} more inputs", ["producers"])
            edges.append(Edge(src, key(node), hidden[0], "…"))
        for t in node.output:
            if not t:
                continue
            # readers that only measure the tensor (a Shape) are shape arithmetic: neither drawn nor stubbed
            cons = [c for c in mg.consumers(t) if id(c) in chosen or id(c) in measured or not arith.node(c)]
            inside = [c for c in cons if id(c) in chosen or id(c) in measured]
            outside = len(cons) - len(inside)
            if t in outputs:
                dst = f"out:{t}"
                vertices.setdefault(dst, Vertex(dst, "output", _short(t, 28), ["graph output"]))
                edges.append(Edge(key(node), dst, t, shape_label(t), culprit=(t == tensor)))
            if outside:
                dst = f"more:{t}"
                first = next(c for c in cons if id(c) not in chosen and id(c) not in measured)
                title = first.op_type if outside == 1 else f"{outside} more"
                sub = [_short(first.name or t, 28)] if outside == 1 else ["consumers"]
                vertices.setdefault(dst, Vertex(dst, "elided", title, sub))
                edges.append(Edge(key(node), dst, t, shape_label(t), culprit=(t == tensor)))
    for t, (_nodes, reads) in folded.items():
        for r in reads:
            p = mg.producer(r)
            src = key(p) if p is not None and id(p) in chosen else (f"in:{r}" if f"in:{r}" in vertices else None)
            if src is not None:
                edges.append(Edge(src, f"val:{t}", r, shape_label(r)))
    # only the culprit's own edges carrying the finding's tensor are highlighted; each edge once
    hot = key(culprit)
    seen = set()
    unique = []
    for e in edges:
        e.culprit = e.culprit and hot in (e.src, e.dst)
        k = (e.src, e.dst, e.tensor)
        if k not in seen:
            seen.add(k)
            unique.append(e)
    return Neighbourhood(vertices, unique)


def _add_named(mg, table, chosen: dict, named, arith) -> None:
    """Add what ``named`` names (a node; a tensor: its producer, or a graph input's readers) and the path joining it.

    A breadth-first search over data edges, both ways, from every node already
    drawn; shape arithmetic is not walked through and, as in the window, an
    Identity or a same-type Cast costs no hop.  A name further than
    :data:`NAMED_HOPS` hops, or not in the model, is left out.
    """
    by_name: dict[str, object] = {}
    for info in mg._info.values():
        by_name.setdefault(info.node.name, info.node)
    targets = []
    for name in named:
        node = by_name.get(name) if name else None
        if node is not None:
            targets.append([node])
        elif name and mg.producer(name) is not None:
            targets.append([mg.producer(name)])
        elif name and mg.is_graph_input(name):
            targets.append(mg.consumers(name))
    for group in targets:
        if not group or any(id(n) in chosen for n in group):
            continue
        goal = {id(n) for n in group}
        parent = {id(n): None for n in chosen.values()}
        frontier = list(chosen.values())
        hit = None
        for _ in range(NAMED_HOPS):
            nxt = []
            for node in frontier:  # grows while it is walked: no-op nodes join the level they were reached at
                nbrs = [mg.producer(t) for t in _data_inputs(mg, node)]
                nbrs += [c for t in node.output if t for c in mg.consumers(t)]
                for other in nbrs:
                    if other is None or id(other) in parent:
                        continue
                    if id(other) not in goal and arith.node(other):
                        continue
                    parent[id(other)] = node
                    if id(other) in goal:
                        hit = other
                        break
                    (frontier if _free(mg, table, other) else nxt).append(other)
                if hit is not None or len(parent) > 20000:
                    break
            if hit is not None or len(parent) > 20000:
                break
            frontier = nxt
        path = []
        while hit is not None and id(hit) not in chosen:
            path.append(hit)
            hit = parent[id(hit)]
        for n in reversed(path):
            chosen[id(n)] = n


# ---------------------------------------------------------------- layout
def _size(v: Vertex) -> None:
    widths = [len(v.title) * SANS_W] + [len(line) * MONO_W for line in v.lines]
    v.w = max(widths) + 2 * PAD + (4 if v.culprit else 0)
    v.w = max(v.w, 70)
    v.h = LINE * (1 + len(v.lines)) + 2 * PAD - 4


def layout(nb: Neighbourhood) -> tuple[float, float]:
    """Place vertices (``x``, ``y`` = top-left) and route edges; returns (width, height)."""
    vs = nb.vertices
    for v in vs.values():
        _size(v)
    preds: dict[str, list[str]] = {k: [] for k in vs}
    succs: dict[str, list[str]] = {k: [] for k in vs}
    for e in nb.edges:
        if e.src != e.dst:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    # longest-path layering (the neighbourhood of a DAG is a DAG; guard cycles anyway)
    layer: dict[str, int] = {}
    visiting = set()

    def depth(k: str) -> int:
        if k in layer:
            return layer[k]
        if k in visiting:
            return 0
        visiting.add(k)
        layer[k] = 1 + max((depth(p) for p in preds[k]), default=-1)
        visiting.discard(k)
        return layer[k]

    for k in vs:
        depth(k)
    # stubs with no predecessors sit right above their consumer
    for k, v in vs.items():
        if not preds[k] and succs[k]:
            layer[k] = max(0, min(layer[s] for s in succs[k]) - 1)
    # dummy vertices on edges spanning several layers
    chains: list[tuple[Edge, list[str]]] = []
    dummies: dict[str, Vertex] = {}
    for i, e in enumerate(nb.edges):
        a, b = layer[e.src], layer[e.dst]
        chain = [e.src]
        for j, lay in enumerate(range(a + 1, b)):
            dk = f"~{i}.{j}"
            dummies[dk] = Vertex(dk, "dummy", "", w=14, h=0, layer=lay)
            layer[dk] = lay
            chain.append(dk)
        chain.append(e.dst)
        chains.append((e, chain))
    allv = {**vs, **dummies}
    for k, v in allv.items():
        v.layer = layer[k]
    up: dict[str, list[str]] = {k: [] for k in allv}
    down: dict[str, list[str]] = {k: [] for k in allv}
    for _, chain in chains:
        for a, b in zip(chain, chain[1:]):
            if layer[a] < layer[b]:
                up[b].append(a)
                down[a].append(b)
    n_layers = max(layer.values()) + 1 if layer else 1
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for k in allv:  # insertion order: producers before consumers, stable
        rows[layer[k]].append(k)
    # barycentre ordering, a few sweeps down and up
    for _ in range(6):
        for r in range(1, n_layers):
            rows[r] = _by_barycentre(rows[r], rows[r - 1], up)
        for r in range(n_layers - 2, -1, -1):
            rows[r] = _by_barycentre(rows[r], rows[r + 1], down)
    # x: pack each row, then pull vertices towards their neighbours' centres
    for row in rows:
        x = 0.0
        for k in row:
            allv[k].x = x
            x += allv[k].w + NODE_GAP
    for sweep in range(8):
        order = range(1, n_layers) if sweep % 2 == 0 else range(n_layers - 2, -1, -1)
        for r in order:
            for k in rows[r]:
                nbrs = up[k] if sweep % 2 == 0 else down[k]
                if nbrs:
                    c = _mean([allv[n].x + allv[n].w / 2 for n in nbrs], 0)
                    allv[k].x = c - allv[k].w / 2
            _resolve_overlaps([allv[k] for k in rows[r]])
    left = min(v.x for v in allv.values())
    for v in allv.values():
        v.x -= left
    # y: each row as tall as its tallest box
    y = 0.0
    row_h = []
    for row in rows:
        h = max((allv[k].h for k in row), default=0)
        row_h.append(h)
        for k in row:
            v = allv[k]
            v.y = y + (h - v.h) / 2
            if v.kind == "dummy":
                v.y, v.h = y, h
        y += h + LAYER_GAP
    # route: ports spread along the bottom/top edges, ordered by the other end's x
    out_ports: dict[str, list[Edge]] = {}
    in_ports: dict[str, list[Edge]] = {}
    for e, chain in chains:
        out_ports.setdefault(e.src, []).append(e)
        in_ports.setdefault(e.dst, []).append(e)
    chain_of = {id(e): chain for e, chain in chains}

    def port_x(v: Vertex, edges: list[Edge], e: Edge, other) -> float:
        # one port per tensor: edges carrying the same tensor leave from one point
        names = sorted({x.tensor for x in edges}, key=lambda t: _mean([other(x) for x in edges if x.tensor == t], 0))
        i = names.index(e.tensor)
        return v.x + v.w * (i + 1) / (len(names) + 1)

    for e, chain in chains:
        src, dst = allv[chain[0]], allv[chain[-1]]
        sx = port_x(src, out_ports[e.src], e, lambda x: allv[chain_of[id(x)][1]].x + allv[chain_of[id(x)][1]].w / 2)
        dx = port_x(dst, in_ports[e.dst], e, lambda x: allv[chain_of[id(x)][-2]].x + allv[chain_of[id(x)][-2]].w / 2)
        pts = [(sx, src.y + src.h)]
        for dk in chain[1:-1]:
            d = allv[dk]
            cx = d.x + d.w / 2
            pts += [(cx, d.y), (cx, d.y + d.h)]
        pts.append((dx, dst.y))
        e.points = pts
    width = max((v.x + v.w for v in allv.values()), default=100)
    height = y - LAYER_GAP
    return width, height


def _by_barycentre(row: list[str], fixed: list[str], nbrs: dict[str, list[str]]) -> list[str]:
    """``row`` sorted by the mean position of each vertex's neighbours in ``fixed`` (stable)."""
    pos = {k: i for i, k in enumerate(fixed)}
    here = {k: i * len(fixed) / max(1, len(row)) for i, k in enumerate(row)}
    return sorted(row, key=lambda k: (_mean([pos[n] for n in nbrs[k] if n in pos], here[k]), here[k]))


def _mean(xs, default):
    return sum(xs) / len(xs) if xs else default


def _resolve_overlaps(row: list[Vertex]) -> None:
    """Keep the row's order; push boxes apart by the smallest moves (left then right pass)."""
    if not row:
        return
    want = [v.x for v in row]
    for i in range(1, len(row)):
        row[i].x = max(want[i], row[i - 1].x + row[i - 1].w + NODE_GAP)
    # shift the block back left so it is centred on what was wanted
    shift = _mean([w - v.x for w, v in zip(want, row)], 0)
    if shift < 0:
        for v in row:
            v.x += shift
        for i in range(len(row) - 2, -1, -1):
            row[i].x = min(row[i].x, row[i + 1].x - row[i].w - NODE_GAP)


# ---------------------------------------------------------------- drawing
def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    out = []
    for para in text.splitlines() or [""]:
        out.extend(textwrap.wrap(para, width) or [""])
    return out


def render_svg(nb: Neighbourhood, d: Diagnostic, model_path: str) -> str:
    """The standalone SVG of one finding."""
    gw, gh = layout(nb)
    color = _SEVERITY_COLOR.get(d.severity, "#c62828")
    # header: what, where, why, fix
    head: list[tuple[str, str]] = [("title", f"{d.rule} {d.name} · {d.severity}")]
    head.append(("meta", f"{model_path}" + (f" · node {d.node}" if d.node else "")))
    if d.source:
        head.append(("meta", f"source: {d.source}"))
    width_chars = max(60, int(max(gw, 640) / MONO_W) - 4)
    head += [("msg", line) for line in _wrap(d.message, width_chars)]
    if d.fix:
        head += [("fix", line) for line in _wrap(f"fix: {d.fix}", width_chars)]
    margin = 24
    head_h = len(head) * (LINE + 2) + 18
    width = max(gw + 2 * margin, 640)
    legend_h = 46
    height = head_h + gh + 2 * margin + legend_h
    ox = (width - gw) / 2
    oy = head_h + margin

    out = [
        MARK,
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" '
            f'font-size="{FONT}">'
        ),
        f"<title>{_esc(d.rule)} at {_esc(d.node or '<graph>')} in {_esc(model_path)}</title>",
        "<defs>",
        _marker("arrow", "#555"),
        _marker("arrow-hot", color),
        "</defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<rect x="0" y="0" width="{width:.0f}" height="{head_h - 6}" fill="#f6f8fa"/>',
        f'<rect x="0" y="0" width="6" height="{head_h - 6}" fill="{color}"/>',
    ]
    y = 20
    for kind, text in head:
        if kind == "title":
            out.append(f'<text x="16" y="{y}" font-size="15" font-weight="bold" fill="{color}">{_esc(text)}</text>')
        elif kind == "meta":
            out.append(f'<text x="16" y="{y}" fill="#57606a" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">{_esc(text)}</text>')
        elif kind == "fix":
            out.append(f'<text x="16" y="{y}" fill="#1a7f37">{_esc(text)}</text>')
        else:
            out.append(f'<text x="16" y="{y}" fill="#24292f">{_esc(text)}</text>')
        y += LINE + 2

    # edges first (under the boxes), then labels, then boxes
    labels = []
    fanout: dict[tuple[str, str], list[Edge]] = {}
    for e in nb.edges:
        fanout.setdefault((e.src, e.tensor), []).append(e)
    for e in nb.edges:
        pts = [(x + ox, y0 + oy) for x, y0 in e.points]
        if len(pts) < 2:
            continue
        path = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
            if abs(x0 - x1) < 0.5:
                path.append(f"L{x1:.1f},{y1:.1f}")
            else:
                my = (y0 + y1) / 2
                path.append(f"C{x0:.1f},{my:.1f} {x1:.1f},{my:.1f} {x1:.1f},{y1:.1f}")
        stroke = color if e.culprit else "#6e7781"
        marker = "arrow-hot" if e.culprit else "arrow"
        sw = 2.4 if e.culprit else 1.3
        out.append(
            f'<path d="{" ".join(path)}" fill="none" stroke="{stroke}" stroke-width="{sw}" marker-end="url(#{marker})">'
            f"<title>{_esc(e.tensor)}: {_esc(e.label)}</title></path>"
        )
        (x0, y0), (x1, y1) = pts[0], pts[1]
        group = fanout[(e.src, e.tensor)]
        if len(group) == 1:
            labels.append([(x0 + x1) / 2, (y0 + y1) / 2, e])
        elif group[0] is e:  # a tensor read by several nodes: one label, on the shared start
            hot = next((g for g in group if g.culprit), e)
            labels.append([x0, y0 + LINE + 4, hot])
    boxes = [(v.x + ox, v.y + oy, v.w, v.h) for v in nb.vertices.values()]
    placed: list[tuple[float, float, float, float]] = []
    for lab in sorted(labels, key=lambda l: (l[1], l[0])):
        cx, cy, e = lab
        text = e.label
        w = len(text) * MONO_W + 8
        h = LINE
        tries = [(dx, dy) for dy in (0, h + 2, -h - 2, 2 * h + 4, -2 * h - 4) for dx in (0, w / 2 + 6, -w / 2 - 6)]
        for dx, dy in tries:
            box = (cx + dx - w / 2, cy + dy - h / 2, w, h)
            if not any(_overlap(box, p) for p in placed) and not any(_overlap(box, b) for b in boxes):
                break
        else:
            box = (cx - w / 2, cy - h / 2, w, h)
        placed.append(box)
        bx, by, bw, bh = box
        fg = color if e.culprit else "#24292f"
        weight = ' font-weight="bold"' if e.culprit else ""
        out.append(
            f'<g><title>{_esc(e.tensor)}</title><rect x="{bx:.1f}" y="{by:.1f}" width="{bw:.1f}" height="{bh}" rx="3" '
            f'fill="#ffffff" stroke="{"#e5b5b5" if e.culprit else "#d0d7de"}" stroke-width="0.8"/>'
            f'<text x="{bx + bw / 2:.1f}" y="{by + bh - 4:.1f}" text-anchor="middle" '
            f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT - 1}" fill="{fg}"{weight}>'
            f"{_esc(text)}</text></g>"
        )
    for v in nb.vertices.values():
        x, y0 = v.x + ox, v.y + oy
        if v.kind == "op":
            fill, stroke, sw, dash, rx = ("#fdecea", color, 3, "", 6) if v.culprit else ("#eef4fb", "#4a6d8c", 1.2, "", 6)
        elif v.kind == "elided":
            fill, stroke, sw, dash, rx = "#f6f8fa", "#afb8c1", 1, ' stroke-dasharray="4 3"', 6
        elif v.kind == "value":
            fill, stroke, sw, dash, rx = "#eef7ee", "#5a8f5a", 1.2, "", 2
        else:
            fill, stroke, sw, dash, rx = "#fff8e1", "#9a7d0a", 1.2, "", v.h / 2
        out.append(
            f'<g><title>{_esc(v.title)}{(" " + _esc(v.lines[0])) if v.lines else ""}</title>'
            f'<rect x="{x:.1f}" y="{y0:.1f}" width="{v.w:.1f}" height="{v.h:.1f}" rx="{rx:.1f}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{sw}"{dash}/>'
        )
        ty = y0 + PAD + LINE - 4
        tcolor = "#6e7781" if v.kind == "elided" else ("#24292f" if not v.culprit else color)
        out.append(f'<text x="{x + v.w / 2:.1f}" y="{ty:.1f}" text-anchor="middle" font-weight="bold" fill="{tcolor}">{_esc(v.title)}</text>')
        for line in v.lines:
            ty += LINE
            out.append(
                f'<text x="{x + v.w / 2:.1f}" y="{ty:.1f}" text-anchor="middle" '
                f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="{FONT - 1}" fill="#57606a">{_esc(line)}</text>'
            )
        out.append("</g>")
    ly = height - 30
    out.append(
        f'<g font-size="{FONT - 1}" fill="#57606a">'
        f'<rect x="16" y="{ly - 10}" width="14" height="12" rx="3" fill="#fdecea" stroke="{color}" stroke-width="2"/>'
        f'<text x="36" y="{ly}">culprit</text>'
        f'<rect x="100" y="{ly - 10}" width="14" height="12" rx="3" fill="#eef4fb" stroke="#4a6d8c"/>'
        f'<text x="120" y="{ly}">op</text>'
        f'<rect x="152" y="{ly - 10}" width="14" height="12" rx="6" fill="#fff8e1" stroke="#9a7d0a"/>'
        f'<text x="172" y="{ly}">graph input/output</text>'
        f'<rect x="300" y="{ly - 10}" width="14" height="12" rx="3" fill="#f6f8fa" stroke="#afb8c1" stroke-dasharray="4 3"/>'
        f'<text x="320" y="{ly}">outside the picture</text>'
        f'<rect x="450" y="{ly - 10}" width="14" height="12" rx="2" fill="#eef7ee" stroke="#5a8f5a"/>'
        f'<text x="470" y="{ly}">shape arithmetic, by value</text>'
        f'<text x="16" y="{ly + 18}">edge labels: inferred shapes (batch, 8); shape vectors by value [batch, 16, 6]</text></g>'
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _marker(name: str, fill: str) -> str:
    return (
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{fill}"/></marker>'
    )


def _overlap(a, b) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw + 2 and bx < ax + aw + 2 and ay < by + bh and by < ay + ah


# ---------------------------------------------------------------- files
def _find_node(mg, name: str):
    for info in mg._info.values():  # main graph and subgraphs, as the runner walks them
        if info.node.name == name:
            return info.node
    return None


def picture_for(mg, table, d: Diagnostic, model_path: str, up: int = 2, down: int = 2) -> str | None:
    """The SVG of one finding, or None when it names no node of the model."""
    if not d.node:
        return None
    node = _find_node(mg, d.node)
    if node is None:
        return None
    nb = neighbourhood(mg, table, node, up, down, tensor=d.tensor, named=_named_in(d.message))
    return render_svg(nb, d, model_path)


def _slug(path: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).as_posix().lstrip("./"))
    return s.strip("_") or "model"


def draw_pictures(result, up: int = 2, down: int = 2):
    """Draw each finding's picture from the check result's graph and shapes (``d.picture``); returns ``result``."""
    if result.error is not None or getattr(result, "graph", None) is None:
        return result
    for d in result.diagnostics:
        try:
            d.picture = picture_for(result.graph, result.table, d, result.path, up, down)
        except Exception:  # noqa: BLE001 - no picture is never fatal
            logger.warning("no picture for %s %s", result.path, d.node, exc_info=True)
            d.picture = None
    return result


@dataclass
class PictureHook:
    """``check_paths(after=PictureHook())``: the pictures of each file, drawn right after its check."""

    up: int = 2
    down: int = 2

    def __call__(self, result):
        return draw_pictures(result, self.up, self.down)


class Written(list):
    """The pictures a run wrote (a list of paths); ``removed``: the stale ones of an earlier run it deleted."""

    removed: list[Path]

    def __init__(self, paths=(), removed=()):
        super().__init__(paths)
        self.removed = list(removed)


def write_pictures(report: RunReport, out_dir: str | os.PathLike, bindings=None, jobs: int = 1, up: int = 2, down: int = 2,
                   protect=()) -> Written:
    """One SVG per finding under ``out_dir`` (``<model>/<n>-<CODE>.svg``), plus ``index.html``.

    The SVGs are the ones :class:`PictureHook` drew where each file was
    checked (or, for a :class:`~shapelint.result.CheckResult` that still
    holds its graph, drawn now); ``bindings`` and ``jobs`` are kept for
    compatibility and unused.

    The run replaces the pictures of the last one as a whole: every file is
    first written (fsync'ed) into a temp folder inside ``out_dir``, then the
    files are renamed into place, the index last, then the manifest
    (:data:`MANIFEST`) records them, and only then are the pictures of an
    earlier run that this one did not write again deleted.  A failure while
    writing (a full device) leaves the folder as it was.  Only files
    shapelint wrote are ever replaced or deleted: pictures carry
    :data:`MARK`; any other file in the way is an error (``FileExistsError``),
    and a user's other files are left alone.  No file may be one of
    ``protect`` (the checked models: a ``PermissionError`` then).  OSError
    when the folder cannot be made or written.
    """
    import errno
    import shutil
    import tempfile

    from . import safeio

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    todo: list[FileReport] = [f for f in report.files if f.error is None and f.diagnostics]
    plan: list[tuple[str, str]] = []  # (path relative to root, text)
    rows = []
    slugs: set[str] = set()
    for f in todo:
        if getattr(f, "graph", None) is not None and all(d.picture is None for d in f.diagnostics):
            draw_pictures(f, up, down)  # a check result still holding its graph (the API)
        slug = base = _slug(f.path)
        n = 1
        while slug in slugs:  # a/b.onnx and a_b.onnx: two folders, not one picture over the other
            n += 1
            slug = f"{base}-{n}"
        slugs.add(slug)
        for i, d in enumerate(f.diagnostics):
            svg = d.picture
            if svg is None:
                rows.append((f.path, d, None))
                continue
            rel = f"{slug}/{i + 1:02d}-{d.rule}.svg"
            plan.append((rel, svg if svg.startswith(MARK) else f"{MARK}\n{svg}"))
            rows.append((f.path, d, rel))
    plan.append((INDEX, _index(rows)))
    new = {rel for rel, _ in plan}
    before = _earlier_pictures(root)
    for rel, _ in plan:  # nothing is written until every target is known to be free or ours
        target = root / rel
        if target in protect:
            raise PermissionError(errno.EPERM, f"{target} is one of the checked models: never overwritten")
        if os.path.lexists(target) and not _is_ours(target, follow=True):
            raise FileExistsError(errno.EEXIST, f"{target} is not a file shapelint wrote: not overwritten (move it, "
                                                f"or choose another folder)")
    stage = Path(tempfile.mkdtemp(dir=root, prefix=".shapelint-pictures-", suffix=".tmp"))
    try:
        staged = []
        for k, (rel, text) in enumerate(plan):
            tmp = stage / f"{k}.part"
            safeio.atomic_write(tmp, text)
            staged.append((tmp, rel, text))
        for rel in sorted({str(Path(rel).parent) for rel in new} - {"."}):
            (root / rel).mkdir(exist_ok=True)
        for tmp, rel, text in staged:  # renames only: the index, written last, names pictures that exist
            target = safeio.atomic_target(root / rel)
            try:
                safeio.replace_from(tmp, target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:  # a model folder linked to another device: written there directly
                    raise
                safeio.atomic_write(target, text)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    safeio.atomic_write(root / MANIFEST, json.dumps(
        {"tool": "shapelint", "what": "pictures written by `shapelint check --graph`; its next run replaces them",
         "files": sorted(new)}, indent=1) + "\n")
    removed = []
    for rel in sorted(before - new):
        path = root / rel
        if rel == INDEX or path in protect or not _is_ours(path, follow=False):
            continue
        try:
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
        with contextlib.suppress(OSError):  # a model with no finding left: its folder goes, when empty
            if path.parent != root:
                path.parent.rmdir()
    return Written([root / rel for rel, _ in plan if rel != INDEX], removed)


#: the first line of every picture shapelint writes (and the index's, after its doctype): how a later run
#: knows the file is its own
MARK = "<!-- shapelint picture: drawn by shapelint check into its graph folder, replaced by its next run there -->"
INDEX = "index.html"
#: the list of the files the last run wrote, in the pictures' folder
MANIFEST = ".shapelint-pictures.json"
_PICTURE_NAME = re.compile(r"\d{2,}-[A-Za-z][A-Za-z0-9_.-]*\.svg")
_OLD_INDEX = b"<title>shapelint findings</title>"  # an index written before the mark
_OLD_PICTURE = re.compile(  # a picture drawn before the mark: its opening tag and title, exactly as drawn then
    rb'<svg xmlns="http://www.w3.org/2000/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+" '
    rb'font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">\n<title>[^<\n]* at [^<\n]* in ')


def _head(path: Path, follow: bool) -> bytes | None:
    """The first bytes of ``path``, a regular file (a symlink too when ``follow``); None for anything else."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)


def _is_ours(path: Path, follow: bool) -> bool:
    head = _head(path, follow)
    if head is None:
        return False
    if head.startswith(MARK.encode()):
        return True
    if path.name == INDEX:  # its mark follows the doctype
        return MARK.encode() in head or _OLD_INDEX in head
    return _PICTURE_NAME.fullmatch(path.name) is not None and _OLD_PICTURE.match(head) is not None


def _earlier_pictures(root: Path) -> set[str]:
    """Paths (relative to ``root``) of the pictures an earlier run wrote: the manifest's, and any
    ``<model>/<n>-<CODE>.svg`` carrying :data:`MARK` (a run stopped before it wrote its manifest)."""
    from .safeio import read_regular

    found: set[str] = set()
    try:
        listed = json.loads(read_regular(root / MANIFEST, limit=1 << 24)).get("files", [])
    except (OSError, ValueError, AttributeError):
        listed = []
    for rel in listed if isinstance(listed, list) else []:
        parts = Path(rel).parts if isinstance(rel, str) else ()
        if 1 <= len(parts) <= 2 and not Path(rel).is_absolute() and all(p not in ("..", ".") for p in parts):
            found.add(Path(rel).as_posix())
    try:
        subs = [p for p in root.iterdir() if not p.name.startswith(".") and p.is_dir() and not p.is_symlink()]
    except OSError:
        subs = []
    for sub in subs:
        try:
            found.update(f"{sub.name}/{p.name}" for p in sub.iterdir() if _PICTURE_NAME.fullmatch(p.name))
        except OSError:
            continue
    return {rel for rel in found if _is_ours(root / rel, follow=False)}


def _index(rows) -> str:
    items = []
    for path, d, rel in rows:
        head = f"<b>{_esc(d.rule)}</b> {_esc(path)} · {_esc(d.node or '<graph>')}: {_esc(d.message)}"
        if rel is None:
            items.append(f"<li>{head} <i>(no picture: the finding names no node)</i></li>")
        else:
            items.append(f'<li>{head}<br><a href="{_esc(rel)}"><img src="{_esc(rel)}" alt="{_esc(d.rule)}" style="max-width:100%"></a></li>')
    return (
        f'<!doctype html>{MARK}<meta charset="utf-8"><title>shapelint findings</title>'
        "<style>body{font-family:sans-serif;margin:2em}li{margin:1.5em 0}img{border:1px solid #ddd}</style>"
        f"<h1>shapelint: {len(rows)} finding{'s' if len(rows) != 1 else ''}</h1><ol>{''.join(items)}</ol>\n"
    )
