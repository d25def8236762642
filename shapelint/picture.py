"""A picture of each finding: its neighbourhood in the graph, as a standalone SVG.

``shapelint check --graph DIR`` writes one ``.svg`` per finding (and an
``index.html`` linking them): the culprit node highlighted, a few nodes up and
down, every edge labelled with the tensor's inferred symbolic shape, and
constant inputs (weights, Reshape targets) folded into their consumer's box.
Everything is inline: no fonts, scripts or styles are fetched.

The layout is our own (layered, top-down, Sugiyama-style: longest-path layers,
dummy nodes on long edges, barycentre ordering), not graphviz: pictures come
out the same on every machine and CI needs nothing installed.

The pictures re-run inference for the files that have findings (the
:class:`~shapelint.diagnostics.FileReport` contract holds no shape table,
and tables do not cross worker processes cheaply).
"""

from __future__ import annotations

import html
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .diagnostics import Diagnostic, FileReport, RunReport
from .dims import format_shape

__all__ = ["Neighbourhood", "neighbourhood", "picture_for", "render_svg", "write_pictures"]

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


def neighbourhood(mg, table, culprit, up: int = 2, down: int = 2, tensor: str | None = None) -> Neighbourhood:
    """The culprit, its producers ``up`` levels up and consumers ``down`` levels down.

    Constant inputs are folded into their consumer; a tensor whose producer or
    consumers fall outside the radius gets a dimmed stub, so every edge still
    shows its shape.
    """
    key_of = {}

    def key(node) -> str:
        k = key_of.get(id(node))
        if k is None:
            k = key_of[id(node)] = mg.info(node).key
        return k

    chosen = {id(culprit): culprit}
    frontier = [culprit]
    for _ in range(up):
        nxt = []
        for node in frontier:
            for t in _data_inputs(mg, node)[:MAX_FANIN]:
                prod = mg.producer(t)
                if prod is not None and id(prod) not in chosen:
                    chosen[id(prod)] = prod
                    nxt.append(prod)
        frontier = nxt
    frontier = [culprit]
    for _ in range(down):
        nxt = []
        for node in frontier:
            for t in node.output:
                for cons in mg.consumers(t)[:MAX_FANOUT]:
                    if id(cons) not in chosen:
                        chosen[id(cons)] = cons
                        nxt.append(cons)
        frontier = nxt

    outputs = {o.name for o in mg.graph.output}
    vertices: dict[str, Vertex] = {}
    edges: list[Edge] = []

    def shape_label(t: str) -> str:
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
            cons = mg.consumers(t)
            inside = [c for c in cons if id(c) in chosen]
            outside = len(cons) - len(inside)
            if t in outputs:
                dst = f"out:{t}"
                vertices.setdefault(dst, Vertex(dst, "output", _short(t, 28), ["graph output"]))
                edges.append(Edge(key(node), dst, t, shape_label(t), culprit=(t == tensor)))
            if outside:
                dst = f"more:{t}"
                first = next(c for c in cons if id(c) not in chosen)
                title = first.op_type if outside == 1 else f"{outside} more"
                sub = [_short(first.name or t, 28)] if outside == 1 else ["consumers"]
                vertices.setdefault(dst, Vertex(dst, "elided", title, sub))
                edges.append(Edge(key(node), dst, t, shape_label(t), culprit=(t == tensor)))
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
    legend_h = 28
    height = head_h + gh + 2 * margin + legend_h
    ox = (width - gw) / 2
    oy = head_h + margin

    out = [
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
    ly = height - 12
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
        f'<text x="450" y="{ly}">edge labels: inferred shapes</text></g>'
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
    return render_svg(neighbourhood(mg, table, node, up, down, tensor=d.tensor), d, model_path)


def _slug(path: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).as_posix().lstrip("./"))
    return s.strip("_") or "model"


def _pictures_of_file(args) -> list[tuple[int, str | None]]:
    """(index, svg or None) for each finding of one file; runs in a worker."""
    f, bindings, up, down = args
    from .graph import ModelGraph
    from .infer import infer
    from .load import load_model

    try:
        mg = ModelGraph.from_model(load_model(f.path))
        table = infer(mg, bindings)
    except Exception as exc:  # noqa: BLE001 - no picture is never fatal
        logger.warning("no pictures for %s: %s", f.path, exc)
        return [(i, None) for i in range(len(f.diagnostics))]
    out = []
    for i, d in enumerate(f.diagnostics):
        try:
            out.append((i, picture_for(mg, table, d, f.path, up, down)))
        except Exception:
            logger.warning("no picture for %s %s", f.path, d.node, exc_info=True)
            out.append((i, None))
    return out


def write_pictures(report: RunReport, out_dir: str | os.PathLike, bindings=None, jobs: int = 1, up: int = 2, down: int = 2,
                   protect=()) -> list[Path]:
    """One SVG per finding under ``out_dir`` (``<model>/<n>-<CODE>.svg``), plus ``index.html``.

    Each file is written atomically; none may be one of ``protect`` (the
    checked models: a ``PermissionError`` then).  OSError when the folder
    cannot be made or written.
    """
    import errno

    from .safeio import atomic_write

    def write(target: Path, text: str) -> None:
        if target in protect:
            raise PermissionError(errno.EPERM, f"{target} is one of the checked models: never overwritten")
        atomic_write(target, text)

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    todo: list[FileReport] = [f for f in report.files if f.error is None and f.diagnostics]
    work = [(f, bindings, up, down) for f in todo]
    if jobs > 1 and len(work) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            results = list(pool.map(_pictures_of_file, work))
    else:
        results = [_pictures_of_file(w) for w in work]
    written: list[Path] = []
    rows = []
    for f, pics in zip(todo, results):
        folder = root / _slug(f.path)
        for i, svg in pics:
            d = f.diagnostics[i]
            if svg is None:
                rows.append((f.path, d, None))
                continue
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{i + 1:02d}-{d.rule}.svg"
            write(target, svg)
            written.append(target)
            rows.append((f.path, d, target.relative_to(root).as_posix()))
    write(root / "index.html", _index(rows))
    return written


def _index(rows) -> str:
    items = []
    for path, d, rel in rows:
        head = f"<b>{_esc(d.rule)}</b> {_esc(path)} · {_esc(d.node or '<graph>')}: {_esc(d.message)}"
        if rel is None:
            items.append(f"<li>{head} <i>(no picture: the finding names no node)</i></li>")
        else:
            items.append(f'<li>{head}<br><a href="{_esc(rel)}"><img src="{_esc(rel)}" alt="{_esc(d.rule)}" style="max-width:100%"></a></li>')
    return (
        '<!doctype html><meta charset="utf-8"><title>shapelint findings</title>'
        "<style>body{font-family:sans-serif;margin:2em}li{margin:1.5em 0}img{border:1px solid #ddd}</style>"
        f"<h1>shapelint: {len(rows)} finding{'s' if len(rows) != 1 else ''}</h1><ol>{''.join(items)}</ol>\n"
    )
