"""Generator of the matrix test: each seed rule's mistake and its correct twin, in many disguises.

For every seed rule (SL202 SL204 SL301 SL302 SL303 SL401 SL402 SL403 SL404 SL405 SL501)
a *family* builds one mistake and its twin with :mod:`onnx.helper` (opset 17,
ir_version 8), varied along these axes (each family uses the ones that make
sense for it):

``naming``
    the dim names of the graph input's dynamic axes: ``named`` (``batch``,
    ``seq``), ``unk`` (tf2onnx's ``unk__12``, ``unk__13``), ``s0`` (dynamo's
    ``s0``, ``s1``), ``static`` (ints);
``shape``
    how the Reshape targets are computed: ``const`` (an initializer with the
    literal sizes, ``-1``/``0`` only where a dim is dynamic), ``shapeop``
    (Shape -> Gather -> (Mul) -> Unsqueeze -> Concat, as torch writes
    ``x.view(x.size(0), -1, C)``), ``placeholder`` (``0`` and ``-1`` wherever
    they fit); ``none`` in families whose culprit is not a Reshape means no
    front Reshape at all (otherwise a front Reshape ``(B, T, 2, F/2) -> (B, T,
    F)`` carries the form);
``layout``
    ``nchw`` or ``nhwc`` (the Conv wrapped in Transposes as tf2onnx/jax2onnx
    write it); conv families only;
``size``
    sizes that line up and sizes that do not (``C16HW16`` is C == H*W);
``rec``
    the recurrence: ``lstm``/``gru`` (Transpose to time-major, LSTM/GRU
    ``layout=0``: onnxruntime does not run ``layout=1``, so no twin may use
    it; SL204 adds ``stacked``, two LSTMs), ``loop`` (Loop whose
    body Gathers step ``i`` and carries a MatMul+Tanh state), ``scan`` (Scan
    over the time axis with the same cell), ``unrolled`` (Gather/Slice step
    ``t`` for ``t in range(T)``, MatMul+MatMul+Tanh, Unsqueeze, Concat; needs
    a static time length, so the time dim of the input is static there);
    SL401/SL402 read ``lstm``/``gru`` as one bidirectional op (its own
    num_directions axis) and ``loop``/``scan``/``unrolled`` as two passes
    over the same sequence, a forward one and a backward one (Scan with
    ``scan_input_directions=[1]``, a Loop over the input reversed by a
    ``Slice(-1, -INT64_MAX, step -1)``, an unrolled cell reading the last
    step first);
``index``
    how a step or a final state is picked (SL402): ``m1`` (the constant
    ``-1``; ``-2`` for the forward direction of ``h_n``), ``pos`` (a
    non-negative constant: ``1`` for ``h_n``'s backward direction, ``T-1``
    for a pass's last step, so a static length only), ``computed``
    (``Shape -> Gather -> Sub 1``, as jax2onnx writes ``f[:, -1]`` over a
    Loop/Scan output);
``pattern``
    the family's sub-mistake (e.g. SL303 ``ln``/``bn``/``conv1d``/``dense``).

The combinations are not the full product: :func:`covering` picks, greedily
and deterministically, combinations until every *pair* of axis values (that
some valid combination holds) is covered; a family may ask for triples too.
Ids are ``RULE-axisvalue-...-bad|good`` in the fixed axis order above, so
they are stable as long as the axes are.

The truth of every model is independent of shapelint: ``onnx.checker``
(full_check) passes, every twin runs under onnxruntime at two bindings of
its dynamic dims (one when static), and every bad model either runs at every
binding (the mistake is silent), fails off the traced size, or fails at every
binding (a refuted width: onnx's strict inference refuses it as well), as
declared by ``Variant.bad_runs``.

``python -m tests.matrix`` prints the counts; ``python -m tests.matrix
--write-gaps`` rewrites ``tests/matrix_gaps.txt`` from what shapelint gives
now.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["Variant", "variants", "covering", "shapelint_verdict", "run_ort", "GAPS_FILE", "read_gaps"]

OPSET = 17
IR_VERSION = 8
GAPS_FILE = Path(__file__).resolve().parent / "matrix_gaps.txt"

NAMINGS = {
    "named": {"batch": "batch", "seq": "seq", "width": "width"},
    "unk": {"batch": "unk__12", "seq": "unk__13", "width": "unk__13"},
    "s0": {"batch": "s0", "seq": "s1", "width": "s1"},
    "static": None,
}
#: node-name style that goes with each naming (the exporter that writes it)
NODE_PREFIX = {"named": "/", "unk": "model/", "s0": "node_", "static": "/"}
PRODUCER = {"named": "pytorch", "unk": "tf2onnx", "s0": "pytorch", "static": "pytorch"}

RECS = ["lstm", "gru", "loop", "scan", "unrolled"]
AXES_ORDER = ("naming", "shape", "layout", "size", "rec", "index", "pattern")
SEQUENCE_RULE_PREFIXES = ("SL2", "SL3", "SL4", "SL5")

HID = 8  # hidden size of every recurrence
INT64_MAX = 2**63 - 1
CLASSES = 9
TRACE = {"batch": 2, "seq": 6}  # the binding the model was "exported" at
ALT = {"batch": 3, "seq": 5}  # a second binding (dynamic dims only)


class Infeasible(Exception):
    """A Reshape target that the requested form cannot express (a bug in a family's constraints)."""


# --------------------------------------------------------------------------- graph building
@dataclass(frozen=True)
class Ref:
    """Axis ``axis`` of tensor ``tensor``: its size at the trace, and whether it is dynamic."""

    tensor: str
    axis: int
    value: int
    dynamic: bool


class Builder:
    """Nodes, initializers and the known sizes of tensors, with exporter-like node names."""

    def __init__(self, naming: str, seed: int = 0):
        self.prefix = NODE_PREFIX[naming]
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.counts: Counter = Counter()
        self.dims: dict[str, list[tuple[int, bool]]] = {}
        self.rng = np.random.default_rng(seed)
        self._shape_cache: dict[str, str] = {}
        self._gather_cache: dict[tuple[str, int], str] = {}
        self.node_of: dict[str, str] = {}

    # names
    def _name(self, base: str) -> str:
        k = self.counts[base]
        self.counts[base] += 1
        return f"{self.prefix}{base}" if k == 0 else f"{self.prefix}{base}_{k}"

    def fresh(self, base: str) -> str:
        return self._name("v_" + base)

    # nodes
    def op(self, op_type: str, inputs, n_out: int = 1, *, into=None, **attrs):
        name = self._name(op_type)
        outs = [f"{name}_output_{i}" for i in range(n_out)]
        node = helper.make_node(op_type, list(inputs), outs, name=name, **attrs)
        (self.nodes if into is None else into).append(node)
        for o in outs:
            self.node_of[o] = name
        return outs[0] if n_out == 1 else outs

    # initializers
    def init(self, arr: np.ndarray, base: str = "const") -> str:
        name = self._name(base)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def ints(self, values, scalar: bool = False) -> str:
        arr = np.array(values, dtype=np.int64)
        return self.init(arr.reshape(()) if scalar else arr.reshape(-1), "const")

    def weight(self, *shape) -> str:
        return self.init((self.rng.standard_normal(shape) * 0.3).astype(np.float32), "weight")

    # sizes
    def set_dims(self, tensor: str, dims: list[tuple[int, bool]]):
        self.dims[tensor] = list(dims)
        return tensor

    def ref(self, tensor: str, axis: int) -> Ref:
        value, dynamic = self.dims[tensor][axis]
        return Ref(tensor, axis, value, dynamic)

    def shape_of(self, tensor: str) -> str:
        if tensor not in self._shape_cache:
            self._shape_cache[tensor] = self.op("Shape", [tensor])
        return self._shape_cache[tensor]

    def size_scalar(self, r: Ref) -> str:
        key = (r.tensor, r.axis)
        if key not in self._gather_cache:
            shp = self.shape_of(r.tensor)
            self._gather_cache[key] = self.op("Gather", [shp, self.ints(r.axis, scalar=True)], axis=0)
        return self._gather_cache[key]


def _prod(xs) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def _fval(f) -> int:
    return f if isinstance(f, int) else f.value


def _fdyn(f) -> bool:
    return isinstance(f, Ref) and f.dynamic


def target(g: Builder, data: str, dims, form: str, *, infer: int | None = None, fallback: bool = False) -> str:
    """The shape tensor of a Reshape of ``data`` to ``dims`` (each a list of int or :class:`Ref` factors).

    ``const``: literal sizes; a dynamic dim is ``-1`` when it is the only one, else ``0`` when it copies
    the same axis of ``data`` (one more may be ``-1``).  ``placeholder``: ``0`` for every copy of the same
    axis of ``data``, ``-1`` at ``infer`` (default: the first other dim), literals elsewhere.
    ``shapeop``: every factor that is an axis is read with Shape -> Gather, products with Mul, each dim
    Unsqueezed and all Concatenated.  ``fallback``: use ``shapeop`` where the form cannot express the target.
    """
    dims = [[f] if not isinstance(f, list) else f for f in dims]

    def is_copy(i, d):
        return len(d) == 1 and isinstance(d[0], Ref) and d[0].tensor == data and d[0].axis == i

    try:
        if form == "const":
            dyn = [i for i, d in enumerate(dims) if any(_fdyn(f) for f in d)]
            out = [_prod(_fval(f) for f in d) for d in dims]
            if len(dyn) == 1:
                out[dyn[0]] = -1
            elif dyn:
                rest = [i for i in dyn if not is_copy(i, dims[i])]
                if len(rest) > 1:
                    raise Infeasible(f"const target with dynamic dims {dyn}")
                for i in dyn:
                    out[i] = 0 if i not in rest else -1
            return g.ints(out)
        if form == "placeholder":
            copies = {i for i, d in enumerate(dims) if is_copy(i, d)}
            if infer is None:
                infer = next((i for i in range(len(dims)) if i not in copies), None)
            out = []
            for i, d in enumerate(dims):
                if i in copies:
                    out.append(0)
                elif i == infer:
                    out.append(-1)
                elif any(_fdyn(f) for f in d):
                    raise Infeasible(f"placeholder target: dim {i} is dynamic")
                else:
                    out.append(_prod(_fval(f) for f in d))
            return g.ints(out)
    except Infeasible:
        if not fallback:
            raise
        form = "shapeop"
    if form != "shapeop":
        raise ValueError(form)
    pieces = []
    for d in dims:
        refs = [f for f in d if isinstance(f, Ref)]
        lit = _prod(f for f in d if isinstance(f, int))
        if not refs:
            pieces.append(g.ints([lit]))
            continue
        s = g.size_scalar(refs[0])
        for r in refs[1:]:
            s = g.op("Mul", [s, g.size_scalar(r)])
        if lit != 1:
            s = g.op("Mul", [s, g.ints(lit, scalar=True)])
        pieces.append(g.op("Unsqueeze", [s, g.ints([0])]))
    return g.op("Concat", pieces, axis=0)


def reshape(g: Builder, data: str, dims, form: str, **kw) -> str:
    out = g.op("Reshape", [data, target(g, data, dims, form, **kw)])
    g.set_dims(out, [(_prod(_fval(f) for f in ([d] if not isinstance(d, list) else d)),
                      any(_fdyn(f) for f in ([d] if not isinstance(d, list) else d))) for d in dims])
    return out


def transpose(g: Builder, x: str, perm) -> str:
    out = g.op("Transpose", [x], perm=list(perm))
    if x in g.dims:
        g.set_dims(out, [g.dims[x][p] for p in perm])
    return out


# --------------------------------------------------------------------------- recurrences
def _zeros_state(g: Builder, batch: Ref, lead: tuple = ()) -> str:
    """Zeros of shape (*lead, batch, HID) with the batch read from the graph (ConstantOfShape)."""
    pieces = [g.ints([v]) for v in lead] + [g.op("Unsqueeze", [g.size_scalar(batch), g.ints([0])]), g.ints([HID])]
    shp = g.op("Concat", pieces, axis=0)
    return g.op("ConstantOfShape", [shp], value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))


def _cell(g: Builder, xt: str, h: str, wx: str, wh: str, bh: str, into=None) -> str:
    a = g.op("MatMul", [xt, wx], into=into)
    b = g.op("MatMul", [h, wh], into=into)
    s = g.op("Add", [g.op("Add", [a, b], into=into), bh], into=into)
    return g.op("Tanh", [s], into=into)


def reverse_time(g: Builder, x: str, axis: int) -> str:
    """``x`` read backwards along ``axis``: Slice(starts=[-1], ends=[-INT64_MAX], steps=[-1]) (``x[:, ::-1]``)."""
    out = g.op("Slice", [x, g.ints([-1]), g.ints([-INT64_MAX]), g.ints([axis]), g.ints([-1])])
    if x in g.dims:
        g.set_dims(out, g.dims[x])
    return out


def recurrence(g: Builder, x: str, *, form: str, feat: int, reads: str = "bm", out: str = "bm",
               direction: str = "forward", steps: int | None = None, init=None, unroll_slice: bool = False,
               reversed_input: bool = False, out_order: str = "orig"):
    """Run the recurrence ``form`` over ``x`` (read as ``reads``: 'bm' (B, T, F) or 'tm' (T, B, F)).

    Returns ``(y, node)``: the per-step states as ``out`` ('bm' (B, T, H) or 'tm'), and the name of the
    recurrent node (the Concat of the steps for ``unrolled``).  ``init(kind)`` builds a custom initial
    state: kind 'dbh' (1, B, H), 'bdh' (B, 1, H) or 'bh' (B, H).

    A backward pass: ``direction='reverse'`` (Scan's scan_input_directions, an unrolled cell reading the last
    step first; not a Loop), or ``reversed_input`` (a forward pass over ``x`` reversed with
    :func:`reverse_time`, any form).  ``out_order``: 'orig' gives the states in the input's order (Scan's
    scan_output_directions=[1], the unrolled steps stacked by time, a reversed input's output reversed back),
    'proc' in the order they were computed (Keras ``go_backwards``: its last step is the final state).
    """
    t_ax, b_ax = (1, 0) if reads == "bm" else (0, 1)
    batch = g.ref(x, b_ax)
    if reversed_input:
        x = reverse_time(g, x, t_ax)
    if form in ("lstm", "gru"):
        gates = 4 if form == "lstm" else 3
        op = "LSTM" if form == "lstm" else "GRU"
        # layout=0 only: onnxruntime's CPU kernels refuse layout=1 (that is SL205's finding)
        src, layout = x, 0
        if reads == "bm":
            src = transpose(g, x, (1, 0, 2))
        ins = [src, g.weight(1, gates * HID, feat), g.weight(1, gates * HID, HID), g.weight(1, 2 * gates * HID)]
        if init is not None:
            ins += ["", init("bdh" if layout == 1 else "dbh")]
        y = g.op(op, ins, hidden_size=HID, direction=direction, layout=layout)
        node = g.node_of[y]
        y = g.op("Squeeze", [y, g.ints([2 if layout == 1 else 1])])
        cur = "bm" if layout == 1 else "tm"
    elif form in ("loop", "scan"):
        wx, wh, bh = g.weight(feat, HID), g.weight(HID, HID), g.weight(HID)
        h0 = init("bh") if init is not None else _zeros_state(g, batch)
        hp = g.fresh("h_prev")
        hvi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, HID])  # noqa: E731
        body_nodes: list = []
        if form == "loop":
            if direction != "forward":
                raise Infeasible("reverse Loop")
            it, cin = g.fresh("iter"), g.fresh("cond_in")
            xt = g.op("Gather", [x, it], axis=t_ax, into=body_nodes)
            h = _cell(g, xt, hp, wx, wh, bh, into=body_nodes)
            cout = g.op("Identity", [cin], into=body_nodes)
            hs = g.op("Identity", [h], into=body_nodes)
            body = helper.make_graph(
                body_nodes, g._name("loop_body"),
                [helper.make_tensor_value_info(it, TensorProto.INT64, []),
                 helper.make_tensor_value_info(cin, TensorProto.BOOL, []), hvi(hp)],
                [helper.make_tensor_value_info(cout, TensorProto.BOOL, []), hvi(h), hvi(hs)])
            trip = g.size_scalar(g.ref(x, t_ax))
            cond = g.init(np.array(True), "cond")
            _, y = g.op("Loop", [trip, cond, h0], 2, body=body)
            node = g.node_of[y]
            cur = "tm"
        else:
            xt = g.fresh("x_t")
            h = _cell(g, xt, hp, wx, wh, bh, into=body_nodes)
            hs = g.op("Identity", [h], into=body_nodes)
            body = helper.make_graph(
                body_nodes, g._name("scan_body"),
                [hvi(hp), helper.make_tensor_value_info(xt, TensorProto.FLOAT, [None, feat])], [hvi(h), hvi(hs)])
            rev = 1 if direction == "reverse" else 0
            out_ax = 1 if out == "bm" else 0
            _, y = g.op("Scan", [h0, x], 2, body=body, num_scan_inputs=1, scan_input_axes=[t_ax],
                        scan_output_axes=[out_ax], scan_input_directions=[rev],
                        scan_output_directions=[rev if out_order == "orig" else 0])
            node = g.node_of[y]
            cur = out
    elif form == "unrolled":
        if steps is None:
            raise Infeasible("unrolled needs a static length")
        wx, wh, bh = g.weight(feat, HID), g.weight(HID, HID), g.weight(HID)
        h = init("bh") if init is not None else _zeros_state(g, batch)
        o_ax = 1 if out == "bm" else 0
        order = range(steps) if direction == "forward" else range(steps - 1, -1, -1)
        per_step = {}
        for t in order:
            if unroll_slice:
                xt = g.op("Slice", [x, g.ints([t]), g.ints([t + 1]), g.ints([t_ax])])
                xt = g.op("Squeeze", [xt, g.ints([t_ax])])
            else:
                xt = g.op("Gather", [x, g.ints(t, scalar=True)], axis=t_ax)
            h = _cell(g, xt, h, wx, wh, bh)
            per_step[t] = g.op("Unsqueeze", [h, g.ints([o_ax])])
        y = g.op("Concat", [per_step[t] for t in (range(steps) if out_order == "orig" else order)], axis=o_ax)
        node = g.node_of[y]
        cur = out
    else:
        raise ValueError(form)
    if cur != out:
        y = g.op("Transpose", [y], perm=[1, 0, 2])
    if reversed_input and out_order == "orig":
        y = reverse_time(g, y, 1 if out == "bm" else 0)
    return y, node


# --------------------------------------------------------------------------- variants
@dataclass
class Built:
    model: onnx.ModelProto
    culprit: str | None  # node name; None for a twin
    consequences: frozenset = frozenset()  # (code, node) findings allowed besides the culprit's


@dataclass
class Variant:
    id: str
    rule: str
    bad: bool
    combo: dict
    family: object = field(repr=False)
    #: sizes of the logical axes ('batch', 'seq', 'width') to run at; the first is the traced one
    bindings: list = field(default_factory=list)
    #: bad only: 'all' (silent), 'trace-only' (fails off the traced size) or 'none' (fails at every binding: a
    #: width mismatch that onnx's own shape inference refutes too, so only the plain onnx.checker passes)
    bad_runs: str = "all"

    @functools.cached_property
    def built(self) -> Built:
        return self.family.build(self)

    @property
    def model(self) -> onnx.ModelProto:
        return self.built.model

    @property
    def culprit(self):
        return self.built.culprit


def _make_model(g: Builder, inputs, outputs, naming: str, name: str, ranks: dict | None = None) -> onnx.ModelProto:
    """``inputs``: [(name, dims (int or symbol), elem)]; ``outputs``: [name]; output shapes: rank only.

    ``ranks``: the rank of an output that onnx's inference cannot give (after a node it refutes)."""
    ins = [helper.make_tensor_value_info(n, elem, dims) for n, dims, elem in inputs]
    probe = helper.make_graph(g.nodes, name, ins, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                                                   for o in outputs], g.inits)
    probe_m = helper.make_model(probe, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    inferred = {o.name: o for o in onnx.shape_inference.infer_shapes(probe_m).graph.output}
    outs = []
    for o in outputs:
        tt = inferred[o].type.tensor_type
        if not tt.HasField("shape"):
            if ranks and o in ranks:
                outs.append(helper.make_tensor_value_info(o, tt.elem_type or TensorProto.FLOAT, [None] * ranks[o]))
                continue
            raise AssertionError(f"{name}: no rank inferred for output {o}")
        outs.append(helper.make_tensor_value_info(o, tt.elem_type or TensorProto.FLOAT, [None] * len(tt.shape.dim)))
    graph = helper.make_graph(g.nodes, name, ins, outs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                          producer_name=PRODUCER[naming])
    return m


def covering(axes: dict, ok=lambda c: True, extra=()) -> list[dict]:
    """Combinations of ``axes`` (name -> values) covering every pair (and each ``extra`` tuple of axes).

    Greedy: repeatedly take the valid combination (by ``ok``) that covers most uncovered value tuples;
    on ties the one whose values were chosen least so far (so that every value gets its share), then the
    first in product order.  Deterministic, so ids stay stable.
    """
    names = list(axes)
    cands = [dict(zip(names, vals)) for vals in itertools.product(*axes.values())]
    cands = [c for c in cands if ok(c)]
    inters = [t for t in itertools.combinations(names, 2)] + [tuple(t) for t in extra]
    inters = [t for t in inters if all(len(axes[a]) > 1 for a in t)]
    keys = [frozenset((t, tuple(c[a] for a in t)) for t in inters) for c in cands]
    need = set().union(*keys) if keys else set()
    chosen = []
    if not inters:
        return cands
    used: Counter = Counter()
    while need:
        best, best_score = None, None
        for i, k in enumerate(keys):
            n = len(k & need)
            if not n:
                continue
            score = (n, -sum(used[(a, cands[i][a])] for a in names))
            if best_score is None or score > best_score:
                best, best_score = i, score
        chosen.append(cands[best])
        used.update((a, cands[best][a]) for a in names)
        need -= keys[best]
    return chosen


class Family:
    rule = ""
    axes: dict = {}
    extra: tuple = ()
    good_only_patterns: tuple = ()

    def ok(self, c: dict) -> bool:
        return True

    def bad_runs(self, c: dict) -> str:
        return "all"

    def trace(self, c: dict) -> dict:
        return dict(TRACE)

    def alt(self, c: dict) -> dict:
        return dict(ALT)

    def dynamic(self, c: dict) -> set:
        """Logical axes of the input that are dynamic."""
        if c["naming"] == "static":
            return set()
        dyn = {"batch", "seq"}
        if c.get("rec") == "unrolled":
            dyn.discard("seq")
        return dyn

    def variants(self) -> list[Variant]:
        out = []
        for c in covering(self.axes, self.ok, self.extra):
            parts = [c[a] for a in AXES_ORDER if a in c]
            dyn = self.dynamic(c)
            tr = self.trace(c)
            binds = [tr] + ([{**tr, **{k: v for k, v in self.alt(c).items() if k in dyn}}] if dyn else [])
            kinds = [False] if c.get("pattern") in self.good_only_patterns else [True, False]
            for bad in kinds:
                vid = "-".join([self.rule, *parts, "bad" if bad else "good"])
                out.append(Variant(vid, self.rule, bad, dict(c), self, binds,
                                   self.bad_runs(c) if bad else "all"))
        return out

    # helpers for builders
    def dim(self, c: dict, logical: str, tr: dict):
        """The declared dim of a logical axis: its symbol under the naming, or its traced int."""
        if logical in self.dynamic(c):
            return NAMINGS[c["naming"]][logical]
        return tr[logical]

    def build(self, v: Variant) -> Built:
        raise NotImplementedError


def _t_dynamic(c: dict) -> bool:
    return c["naming"] != "static" and c.get("rec") != "unrolled"


# ---------------------------------------------------------------- sequence front: (B, T, 2, F/2) -> (B, T, F)
def seq_input(fam: Family, g: Builder, v: Variant, feat: int, inputs: list, front: str | None = None):
    """The sequence input ``x`` (B, T, feat), through a front Reshape carrying ``combo['shape']``."""
    c, tr = v.combo, v.bindings[0]
    form = front if front is not None else c.get("shape", "none")
    b, t = fam.dim(c, "batch", tr), fam.dim(c, "seq", tr)
    dyn = fam.dynamic(c)
    if form == "none":
        inputs.append(("x", [b, t, feat], TensorProto.FLOAT))
        return g.set_dims("x", [(tr["batch"], "batch" in dyn), (tr["seq"], "seq" in dyn), (feat, False)])
    inputs.append(("x", [b, t, 2, feat // 2], TensorProto.FLOAT))
    g.set_dims("x", [(tr["batch"], "batch" in dyn), (tr["seq"], "seq" in dyn), (2, False), (feat // 2, False)])
    r = lambda i: g.ref("x", i)  # noqa: E731
    return reshape(g, "x", [[r(0)], [r(1)], [r(2), r(3)]], form, infer=2)


def _rec_kw(c: dict, tr: dict, reads_len: int | None = None) -> dict:
    return {"form": c["rec"], "steps": reads_len if reads_len is not None else tr["seq"],
            "unroll_slice": c["naming"] == "s0"}


# --------------------------------------------------------------------------- SL202
#: (C, H, W); C16HW16 has C == H*W, C8HW32 has C == W (for the CRNN split), C3HW35 and C8HW32 are not square
SL202_SIZES = {"C16HW16": (16, 4, 4), "C16HW64": (16, 8, 8), "C6HW16": (6, 4, 4), "C3HW35": (3, 5, 7),
               "C8HW32": (8, 4, 8)}


class SL202(Family):
    """A conv map reshaped to a sequence without moving the channels last (culprit: the Reshape).

    ``seq``: one step per position, (N, C, H, W) -> (N, H*W, C) with no Transpose (NHWC: a Transpose back
    to channel-major before it); twin: channels moved last first.  ``crnn``: one step per column,
    (N, C, H, W) -> (N, W, C*H) (NHWC: transposed back to channel-major first); twin: (N, W, C, H) or
    (N, W, H, C) first.  ``crnnW``: the same with a dynamic width.  ``rowcol``: NHWC only, (N, H, W, C) ->
    (N, W, H*C) without swapping H and W; only for H != W (with a square map the graph is the one of a
    correct row-per-step sequence, which no static check can tell apart).
    """

    rule = "SL202"
    axes = {"naming": list(NAMINGS), "shape": ["const", "shapeop", "placeholder"], "layout": ["nchw", "nhwc"],
            "size": list(SL202_SIZES), "rec": RECS, "pattern": ["seq", "crnn", "crnnW", "rowcol"]}
    extra = (("layout", "pattern", "rec"), ("naming", "rec", "pattern"), ("size", "layout", "pattern"))

    def ok(self, c):
        if c["pattern"] == "rowcol":
            C, H, W = SL202_SIZES[c["size"]]
            return c["layout"] == "nhwc" and H != W
        if c["pattern"] == "crnnW":
            return c["naming"] != "static" and c["rec"] != "unrolled" and c["shape"] != "const"
        return True

    def dynamic(self, c):
        if c["naming"] == "static":
            return set()
        return {"batch", "width"} if c["pattern"] == "crnnW" else {"batch"}

    def trace(self, c):
        C, H, W = SL202_SIZES[c["size"]]
        return {"batch": 2, "width": W}

    def alt(self, c):
        C, H, W = SL202_SIZES[c["size"]]
        return {"batch": 3, "width": W + 2}

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        C, H, W = SL202_SIZES[c["size"]]
        g = Builder(c["naming"])
        dyn = self.dynamic(c)
        n, w = self.dim(c, "batch", tr), self.dim(c, "width", tr)
        nd, wd = (tr["batch"], "batch" in dyn), (W, "width" in dyn)
        nhwc = c["layout"] == "nhwc"
        if nhwc:
            inputs = [("image", [n, H, w, 3], TensorProto.FLOAT)]
            x = transpose(g, g.set_dims("image", [nd, (H, False), wd, (3, False)]), (0, 3, 1, 2))
        else:
            inputs = [("image", [n, 3, H, w], TensorProto.FLOAT)]
            x = g.set_dims("image", [nd, (3, False), (H, False), wd])
        f = g.op("Relu", [g.op("Conv", [x, g.weight(C, 3, 3, 3), g.weight(C)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
        g.set_dims(f, [nd, (C, False), (H, False), wd])
        if nhwc:
            f = transpose(g, f, (0, 2, 3, 1))  # (N, H, W, C)
        seq = c["pattern"] == "seq"
        # (perm applied before the reshape, groups of the permuted axes), from f's layout
        if seq:
            plan = {("nchw", True): (None, [[0], [2, 3], [1]]), ("nchw", False): ((0, 2, 3, 1), [[0], [1, 2], [3]]),
                    ("nhwc", True): ((0, 3, 1, 2), [[0], [2, 3], [1]]), ("nhwc", False): (None, [[0], [1, 2], [3]])}
        elif c["pattern"] == "rowcol":
            plan = {("nhwc", True): (None, [[0], [2], [1, 3]]), ("nhwc", False): ((0, 2, 1, 3), [[0], [1], [2, 3]])}
        else:
            plan = {("nchw", True): (None, [[0], [3], [1, 2]]), ("nchw", False): ((0, 3, 1, 2), [[0], [1], [2, 3]]),
                    ("nhwc", True): ((0, 3, 1, 2), [[0], [3], [1, 2]]),
                    ("nhwc", False): ((0, 2, 1, 3), [[0], [1], [2, 3]])}
        perm, groups = plan[(c["layout"], v.bad)]
        src = transpose(g, f, perm) if perm else f
        r = reshape(g, src, [[g.ref(src, a) for a in grp] for grp in groups], c["shape"], infer=1)
        culprit = g.node_of[r]
        steps, feat = (H * W, C) if seq else (W, C * H)
        y, _ = recurrence(g, r, feat=feat, **_rec_kw(c, tr, steps))
        return Built(_make_model(g, inputs, [y], c["naming"], v.id), culprit if v.bad else None)


# --------------------------------------------------------------------------- SL204
SEQ_SIZES = {"F10": 10, "F6": 6}  # F6: the feature size equals the traced length


class SL204(Family):
    """Batch and time swapped at the recurrence.

    Culprit: the recurrent node (LSTM/GRU/Loop/Scan).  What the user must change is the op's contract,
    ``batch_first``/``layout`` or the axis a Loop/Scan iterates over; a Transpose in front is an equivalent
    fix, but the node is where the tensor is read the wrong way round.
    """

    rule = "SL204"
    axes = {"naming": list(NAMINGS), "shape": ["none", "const", "shapeop", "placeholder"], "size": list(SEQ_SIZES),
            "rec": ["lstm", "gru", "stacked", "loop", "scan"]}
    extra = (("naming", "rec", "shape"),)

    def ok(self, c):
        # undecidable otherwise: with anonymous or static dims and nothing else reading the axes, the bad graph
        # is node for node a correct model fed a time-major input; only names, or a second reader, can tell
        # (the zero-state evidence is in tests/test_axes.py)
        return c["naming"] == "named" or c["rec"] == "stacked"

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        F = SEQ_SIZES[c["size"]]
        x = seq_input(self, g, v, F, inputs)
        rec = c["rec"]
        kw = dict(form="lstm" if rec == "stacked" else rec, feat=F)
        if rec == "stacked":
            # the reverse mistake: a first (correct) LSTM's time-major output transposed to batch-major
            # as if the second, layout=0 LSTM wanted that
            h1, _ = recurrence(g, x, reads="bm", out="tm", **kw)
            g.set_dims(h1, [g.dims[x][1], g.dims[x][0], (HID, False)])
            src = transpose(g, h1, (1, 0, 2)) if v.bad else h1
            y, node = recurrence(g, src, reads="tm", out="tm", **{**kw, "feat": HID})
        elif v.bad:
            y, node = recurrence(g, x, reads="tm", out="tm", **kw)  # batch-major read as time-major, used as is
        else:
            y, node = recurrence(g, x, reads="bm", out="bm", **kw)
        return Built(_make_model(g, inputs, [y], c["naming"], v.id), node if v.bad else None)


# --------------------------------------------------------------------------- SL301
class SL301(Family):
    """(B, T, F) flattened to (B, T*F) for a Dense, then one step into the recurrence (culprit: that Reshape).

    SL303/SL501 on the Dense that reads the merged axis are allowed as consequences.
    """

    rule = "SL301"
    axes = {"naming": list(NAMINGS), "shape": ["const", "shapeop", "placeholder"], "size": list(SEQ_SIZES),
            "rec": RECS}
    extra = (("naming", "rec", "shape"),)

    def bad_runs(self, c):
        return "trace-only" if _t_dynamic(c) else "all"  # the Dense weight is sized T*F at the trace

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        F = SEQ_SIZES[c["size"]]
        T = tr["seq"]
        cons = frozenset()
        x = seq_input(self, g, v, F, inputs, front="none")
        r = lambda i: g.ref("x", i)  # noqa: E731
        if v.bad:
            dims = [[r(0)], [T * F]] if c["shape"] == "const" else [[r(0)], [r(1), r(2)]]  # Keras Flatten: literal
            m = reshape(g, x, dims, c["shape"], infer=1)
            culprit = g.node_of[m]
            dense = g.op("MatMul", [m, g.weight(T * F, HID)])
            d = g.op("Relu", [g.op("Add", [dense, g.weight(HID)])])
            s = g.op("Unsqueeze", [d, g.ints([1])])  # (B, 1, HID): a one-step sequence
            g.set_dims(s, [g.dims["x"][0], (1, False), (HID, False)])
            y, _ = recurrence(g, s, feat=HID, **_rec_kw(c, tr, 1))
            # the Dense reads the merged time*feature axis, its weight sized T*F at the trace: SL303 (a Dense
            # over time) and SL501 (with a dynamic length) on it are the same mistake seen from the Dense
            cons = frozenset({("SL303", g.node_of[dense]), ("SL501", g.node_of[dense])})
        else:
            culprit = None
            fo = reshape(g, x, [[r(0), r(1)], [r(2)]], c["shape"], infer=0)
            d = g.op("Relu", [g.op("Add", [g.op("MatMul", [fo, g.weight(F, HID)]), g.weight(HID)])])
            g.set_dims(d, [g.dims[fo][0], (HID, False)])
            u = reshape(g, d, [[r(0)], [r(1)], [HID]], c["shape"], infer=0, fallback=True)
            y, _ = recurrence(g, u, feat=HID, **_rec_kw(c, tr))
        return Built(_make_model(g, inputs, [y], c["naming"], v.id), culprit, cons)


# --------------------------------------------------------------------------- SL302
SL302_SIZES = {"HW16": (4, 4), "HW35": (5, 7)}


class SL302(Family):
    """Time folded into the batch for a per-frame Conv and unfolded wrongly.

    ``tb``: unfolded to (T, B, F) although the fold was batch-major, read as time-major; culprit: that
    unfolding Reshape.  ``nounfold``: never unfolded, ``feats.unsqueeze(1)`` gives (B*T, 1, F), one step per
    frame; there is no unfolding Reshape to blame, so the culprit is the folding Reshape, where the rule's
    doc anchors it.  Twin: the Reshape to (B, T, F).
    """

    rule = "SL302"
    axes = {"naming": list(NAMINGS), "shape": ["const", "shapeop", "placeholder"], "layout": ["nchw", "nhwc"],
            "size": list(SL302_SIZES), "rec": RECS, "pattern": ["tb", "nounfold"]}
    extra = (("layout", "pattern", "rec"), ("naming", "rec", "pattern"),)

    def ok(self, c):
        return not (c["pattern"] == "tb" and c["shape"] != "shapeop" and _t_dynamic(c))

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        Hh, Ww = SL302_SIZES[c["size"]]
        g = Builder(c["naming"])
        dyn = self.dynamic(c)
        b, t = self.dim(c, "batch", tr), self.dim(c, "seq", tr)
        bd, td = (tr["batch"], "batch" in dyn), (tr["seq"], "seq" in dyn)
        nhwc = c["layout"] == "nhwc"
        frame = [Hh, Ww, 3] if nhwc else [3, Hh, Ww]
        inputs = [("video", [b, t, *frame], TensorProto.FLOAT)]
        g.set_dims("video", [bd, td, *[(s, False) for s in frame]])
        r = lambda i: g.ref("video", i)  # noqa: E731
        fo = reshape(g, "video", [[r(0), r(1)], [r(2)], [r(3)], [r(4)]], c["shape"], infer=0, fallback=True)
        x = transpose(g, fo, (0, 3, 1, 2)) if nhwc else fo
        C2 = 4
        conv = g.op("Conv", [x, g.weight(C2, 3, 3, 3), g.weight(C2)], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        f = g.op("Relu", [conv])
        g.set_dims(f, [g.dims[fo][0], (C2, False), (Hh, False), (Ww, False)])
        if nhwc:
            f = transpose(g, f, (0, 2, 3, 1))
        F = C2 * Hh * Ww
        fl = reshape(g, f, [[g.ref(f, 0)], [g.ref(f, 1), g.ref(f, 2), g.ref(f, 3)]], c["shape"], infer=1,
                     fallback=True)
        e = g.op("Add", [g.op("MatMul", [fl, g.weight(F, 16)]), g.weight(16)])  # per-frame embedding
        g.set_dims(e, [g.dims[fl][0], (16, False)])
        if not v.bad:
            u = reshape(g, e, [[r(0)], [r(1)], [16]], c["shape"], infer=0, fallback=True)
            y, _ = recurrence(g, u, feat=16, **_rec_kw(c, tr))
        elif c["pattern"] == "tb":
            u = reshape(g, e, [[r(1)], [r(0)], [16]], c["shape"], infer=1)
            y, _ = recurrence(g, u, feat=16, reads="tm", out="tm", **_rec_kw(c, tr))
        else:  # never unfolded: feats.unsqueeze(1), one step per frame; anchored on the fold
            u = g.op("Unsqueeze", [e, g.ints([1])])
            g.set_dims(u, [g.dims[e][0], (1, False), (16, False)])
            y, _ = recurrence(g, u, feat=16, **_rec_kw(c, tr, 1))
            u = fo
        return Built(_make_model(g, inputs, [y], c["naming"], v.id), g.node_of[u] if v.bad else None)


# --------------------------------------------------------------------------- SL303
class SL303(Family):
    """A per-frame op whose mixing/reduction axis is time (culprit: that op)."""

    rule = "SL303"
    axes = {"naming": list(NAMINGS), "shape": ["none", "const", "shapeop", "placeholder"], "size": list(SEQ_SIZES),
            "rec": RECS, "pattern": ["ln", "bn", "conv1d", "dense"]}
    extra = (("naming", "rec", "pattern"),)

    def bad_runs(self, c):
        return "trace-only" if c["pattern"] != "ln" and _t_dynamic(c) else "all"

    def ok(self, c):
        # a Conv1d or Dense over a static time axis of a batch-first input is node for node a correct model
        # of channels-first data: only a dynamic length (a weight cannot have a dynamic width) or a name tells
        return c["pattern"] not in ("conv1d", "dense") or _t_dynamic(c)

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        F, T = SEQ_SIZES[c["size"]], tr["seq"]
        x = seq_input(self, g, v, F, inputs)
        p, E = c["pattern"], 12
        feat = F
        if p == "ln":
            z = g.op("LayerNormalization", [x, g.weight(F), g.weight(F)], axis=1 if v.bad else -1)
            culprit = g.node_of[z]
        elif p == "bn":
            src = x if v.bad else transpose(g, x, (0, 2, 1))
            ch = T if v.bad else F
            sc, bi, mean = g.weight(ch), g.weight(ch), g.weight(ch)
            var = g.init(np.ones(ch, np.float32), "var")
            z = g.op("BatchNormalization", [src, sc, bi, mean, var])
            culprit = g.node_of[z]
            if not v.bad:
                z = transpose(g, z, (0, 2, 1))
        elif p == "conv1d":
            src = x if v.bad else transpose(g, x, (0, 2, 1))
            z = g.op("Conv", [src, g.weight(E, T if v.bad else F, 3), g.weight(E)], kernel_shape=[3], pads=[1, 1])
            culprit = g.node_of[z]
            z = transpose(g, z, (0, 2, 1))  # back to (B, steps, E)
            feat = E
        else:  # dense over time: x.transpose(1, 2) then Linear(T, E)
            src = transpose(g, x, (0, 2, 1)) if v.bad else x
            z = g.op("MatMul", [src, g.weight(T if v.bad else F, E)])
            culprit = g.node_of[z]
            feat = E
        mixed = v.bad and p in ("conv1d", "dense")  # the result is (B, F, E): F "steps"
        xd = g.dims[x]
        g.set_dims(z, [xd[0], (F, False) if mixed else xd[1], (feat, False)])
        y, _ = recurrence(g, z, feat=feat, **_rec_kw(c, tr, F if mixed else None))
        return Built(_make_model(g, inputs, [y], c["naming"], v.id), culprit if v.bad else None)


# --------------------------------------------------------------------------- SL401 / SL402 helpers
def recurrent_op(g: Builder, x: str, *, form: str, feat: int, direction: str = "bidirectional"):
    """An ONNX LSTM/GRU op over the batch-major ``x`` (B, T, feat), ``layout=0``.

    Returns ``(Y, Y_h, node)``: ``Y`` (T, nd, B, HID) and ``Y_h`` (nd, B, HID), with their sizes recorded.
    """
    gates, op = (4, "LSTM") if form == "lstm" else (3, "GRU")
    nd = 2 if direction == "bidirectional" else 1
    src = transpose(g, x, (1, 0, 2))
    ins = [src, g.weight(nd, gates * HID, feat), g.weight(nd, gates * HID, HID), g.weight(nd, 2 * gates * HID)]
    y, yh = g.op(op, ins, 2, hidden_size=HID, direction=direction, layout=0)
    t, b = g.dims[src][0], g.dims[src][1]
    g.set_dims(y, [t, (nd, False), b, (HID, False)])
    g.set_dims(yh, [(nd, False), b, (HID, False)])
    return y, yh, g.node_of[y]


def dense(g: Builder, x: str, k: int, n: int, *, gemm: bool, trans_b: bool = True):
    """A Dense layer ``k -> n`` on ``x``: Gemm (torch's nn.Linear on 2-D input: transB=1) or MatMul + Add.

    Returns ``(projection, out)``: the MatMul/Gemm output (its node is the projection) and the layer's output.
    """
    if gemm:
        w = g.weight(n, k) if trans_b else g.weight(k, n)
        out = g.op("Gemm", [x, w, g.weight(n)], **({"transB": 1} if trans_b else {}))
        return out, out
    mm = g.op("MatMul", [x, g.weight(k, n)])
    return mm, g.op("Add", [mm, g.weight(n)])


def _torch_linear(c: dict) -> bool:
    """Whether a 2-D Dense is written as torch writes nn.Linear (Gemm) rather than tf2onnx (MatMul + Add)."""
    return c["naming"] != "unk"


def pass_pair(g: Builder, x: str, c: dict, tr: dict, feat: int, *, order: str = "orig"):
    """A forward and a backward pass of ``c['rec']`` (loop/scan/unrolled) over the same (B, T, feat) ``x``.

    Returns ``(fwd, bwd)``, each (B, T, HID) batch-major with its sizes recorded; ``bwd`` in the input's
    order (``order='orig'``) or in the order it was computed (``'proc'``: its last step is its final state).
    """
    kw = _rec_kw(c, tr)
    fwd, _ = recurrence(g, x, feat=feat, **kw)
    if c["rec"] == "loop":  # a Loop runs forwards: over the input reversed
        bwd, _ = recurrence(g, x, feat=feat, reversed_input=True, out_order=order, **kw)
    else:
        bwd, _ = recurrence(g, x, feat=feat, direction="reverse", out_order=order, **kw)
    for y in (fwd, bwd):
        g.set_dims(y, [g.dims[x][0], g.dims[x][1], (HID, False)])
    return fwd, bwd


def pick_step(g: Builder, y: str, index: str, tr: dict, dynamic_t: bool, *, first: bool = False) -> str:
    """Step 0 (``first``) or the last step of ``y`` (B, T, H) along time, the index written as ``index``."""
    if first:
        idx = g.ints(0, scalar=True)
    elif index == "m1":
        idx = g.ints(-1, scalar=True)
    elif index == "pos":
        if dynamic_t:
            raise Infeasible("a literal last step needs a static length")
        idx = g.ints(tr["seq"] - 1, scalar=True)
    else:  # f[:, -1] as jax2onnx writes it over a Loop/Scan output: Shape -> Gather -> Sub 1
        idx = g.op("Sub", [g.size_scalar(Ref(y, 1, tr["seq"], dynamic_t)), g.ints(1, scalar=True)])
    out = g.op("Gather", [y, idx], axis=1)
    g.set_dims(out, [g.dims[y][0], g.dims[y][2]])
    return out


# --------------------------------------------------------------------------- SL401
class SL401(Family):
    """A recurrent output projected or reshaped with its num_directions axis still in place.

    ``proj4d``: a bidirectional LSTM/GRU op's ``Y`` (T, 2, B, H) straight into MatMul(Y, W(H, C)) (culprit:
    the MatMul; it runs, once per direction, and keeps the axis); twin: Transpose(0, 2, 1, 3), Reshape to
    (T, B, 2H), MatMul(W(2H, C)).  ``fold_batch``: ``Y_h`` (2, B, H) reshaped to (2B, H) (``h_n.reshape(-1,
    H)``) for a Dense (culprit: the Reshape: its rows are one direction of one sample each, and nothing
    unfolds them back); twin: Transpose(1, 0, 2) then Reshape to (B, 2H) for a Dense(2H).  ``hn_view``:
    ``Y_h`` reshaped to (B, 2H) with no Transpose (``h_n.view(B, -1)``: samples and directions interleaved;
    culprit: the Reshape); twin: with the Transpose.  ``stack``: a forward and a backward pass over the same
    sequence, their (B, T, H) outputs stacked on a new axis (Unsqueeze + Concat, ``jnp.stack([f, b], 2)``) to
    (B, T, 2, H), and a Dense applied the way jax2onnx applies one to N-D: Reshape (B*T*2, H) -> Gemm ->
    Reshape back to (B, T, 2, C) (culprit: the Gemm, where the SL401 doc anchors a Dense read through such
    a Reshape); twin: the passes concatenated on the features (B, T, 2H) and a Dense(2H, C) the same way.

    Every bad model runs (the direction axis is kept or mixed, no width is refuted).  ``proj4d``,
    ``fold_batch`` and ``hn_view`` need the op's own num_directions axis, so only ``lstm``/``gru``;
    ``stack`` needs two separate passes, which the matrix builds as Loop/Scan/unrolled (a bidirectional
    LSTM/GRU op already has the direction axis of ``proj4d``, and a Loop/Scan/unrolled pass alone has
    none to keep).
    """

    rule = "SL401"
    axes = {"naming": list(NAMINGS), "shape": ["const", "shapeop", "placeholder"], "rec": RECS,
            "pattern": ["proj4d", "fold_batch", "hn_view", "stack"]}
    extra = (("naming", "rec", "pattern"),)

    def ok(self, c):
        return (c["pattern"] == "stack") == (c["rec"] in ("loop", "scan", "unrolled"))

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        F, form, p = 10, c["shape"], c["pattern"]
        x = seq_input(self, g, v, F, inputs, front="none")
        culprit = None
        if p == "stack":
            fwd, bwd = pass_pair(g, x, c, tr, F)
            if v.bad:
                st = g.op("Concat", [g.op("Unsqueeze", [y, g.ints([2])]) for y in (fwd, bwd)], axis=2)
                g.set_dims(st, [g.dims[x][0], g.dims[x][1], (2, False), (HID, False)])
                r = lambda i: g.ref(st, i)  # noqa: E731
                rows = reshape(g, st, [[r(0), r(1), 2], [HID]], form, infer=0)
                gm, _ = dense(g, rows, HID, CLASSES, gemm=True, trans_b=False)
                culprit = g.node_of[gm]
                g.set_dims(gm, [g.dims[rows][0], (CLASSES, False)])
                out = reshape(g, gm, [[r(0)], [r(1)], [2], [CLASSES]], form, infer=0, fallback=True)
            else:
                cat = g.op("Concat", [fwd, bwd], axis=2)
                g.set_dims(cat, [g.dims[x][0], g.dims[x][1], (2 * HID, False)])
                r = lambda i: g.ref(cat, i)  # noqa: E731
                rows = reshape(g, cat, [[r(0), r(1)], [2 * HID]], form, infer=0)
                gm, _ = dense(g, rows, 2 * HID, CLASSES, gemm=True, trans_b=False)
                g.set_dims(gm, [g.dims[rows][0], (CLASSES, False)])
                out = reshape(g, gm, [[r(0)], [r(1)], [CLASSES]], form, infer=0, fallback=True)
            return Built(_make_model(g, inputs, [out], c["naming"], v.id), culprit)
        y, yh, _ = recurrent_op(g, x, form=c["rec"], feat=F)
        if p == "proj4d":
            if v.bad:
                mm, out = dense(g, y, HID, CLASSES, gemm=False)
                culprit = g.node_of[mm]
            else:
                yt = transpose(g, y, (0, 2, 1, 3))  # (T, B, 2, H)
                r = lambda i: g.ref(yt, i)  # noqa: E731
                z = reshape(g, yt, [[r(0)], [r(1)], [r(2), r(3)]], form, infer=2)
                _, out = dense(g, z, 2 * HID, CLASSES, gemm=False)
        elif v.bad:
            if p == "fold_batch":  # h_n.reshape(-1, H): (2B, H), one direction of one sample per row
                z = reshape(g, yh, [[g.ref(yh, 0), g.ref(yh, 1)], [HID]], form, infer=0)
                width = HID
            else:  # h_n.view(x.size(0), -1): (B, 2H) read straight from (2, B, H)
                z = reshape(g, yh, [[g.ref("x", 0)], [2 * HID]], form, infer=0)
                width = 2 * HID
            culprit = g.node_of[z]
            _, out = dense(g, z, width, CLASSES, gemm=_torch_linear(c))
        else:  # h_n.transpose(0, 1).reshape(B, -1): (B, 2H), [forward | backward] per sample
            ht = transpose(g, yh, (1, 0, 2))
            r = lambda i: g.ref(ht, i)  # noqa: E731
            z = reshape(g, ht, [[r(0)], [r(1), r(2)]], form, infer=1)
            _, out = dense(g, z, 2 * HID, CLASSES, gemm=_torch_linear(c))
        return Built(_make_model(g, inputs, [out], c["naming"], v.id), culprit)


# --------------------------------------------------------------------------- SL402
class SL402(Family):
    """A projection whose weight expects a width other than the recurrent features it is fed (culprit: it).

    ``one_dir``: only the backward direction's final state of a bidirectional LSTM/GRU op (``Gather(Y_h, 1)``,
    ``h_n[-1]``) into a Dense sized 2H (error: onnxruntime refuses the width); twin: both directions,
    ``Concat(Gather(Y_h, 0), Gather(Y_h, 1))`` on the features.  ``twice``: one state concatenated with itself
    (``torch.cat([h_n[-1], h_n[-1]], 1)``; for a pass pair the forward pass's last step twice, the backward
    pass computed and unused) into a Dense(2H): it fits by repetition and runs (warning); twin: both
    directions, or the forward pass's last step and the backward pass's final state (its step 0 in the
    input's order, its last step when it is in the order it was computed, as tf2onnx's Keras
    ``go_backwards`` leaves it: naming ``unk``).  ``unidir``: a unidirectional recurrence's final state or
    last step (H) into a Dense sized 2H (error); twin: a Dense(H).  The Dense is a Gemm (transB=1, torch's
    nn.Linear) except under tf2onnx's naming (MatMul + Add); ``index`` says how the step is picked.

    Excluded: ``one_dir`` with a pass pair (one pass's state into a 2H head is ``unidir`` with the other pass
    dead); ``computed`` but for Loop/Scan (the form jax2onnx writes over their outputs; an LSTM/GRU op's
    ``h_n`` is indexed with constants); ``pos`` with a dynamic length (a literal last step is a traced
    size, SL501's business).
    """

    rule = "SL402"
    axes = {"naming": list(NAMINGS), "shape": ["none", "const", "shapeop", "placeholder"], "rec": RECS,
            "index": ["m1", "pos", "computed"], "pattern": ["one_dir", "twice", "unidir"]}
    extra = (("naming", "rec", "pattern"), ("rec", "index", "pattern"))

    def ok(self, c):
        if c["pattern"] == "one_dir" and c["rec"] not in ("lstm", "gru"):
            return False
        if c["index"] == "computed" and c["rec"] not in ("loop", "scan"):
            return False
        return not (c["index"] == "pos" and c["rec"] in ("loop", "scan") and _t_dynamic(c))

    def bad_runs(self, c):
        return "all" if c["pattern"] == "twice" else "none"  # a refuted width fails at every binding

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        F, p, index = 10, c["pattern"], c["index"]
        x = seq_input(self, g, v, F, inputs)
        op = c["rec"] in ("lstm", "gru")
        dyn_t = _t_dynamic(c)

        def h_n(yh, i):  # h_n[i] of Y_h (nd, B, H): (B, H)
            out = g.op("Gather", [yh, g.ints(i, scalar=True)], axis=0)
            g.set_dims(out, g.dims[yh][1:])
            return out

        if p == "unidir":
            if op:
                _, yh, _ = recurrent_op(g, x, form=c["rec"], feat=F, direction="forward")
                feats = h_n(yh, -1 if index == "m1" else 0)
            else:
                y, _ = recurrence(g, x, feat=F, **_rec_kw(c, tr))
                g.set_dims(y, [g.dims[x][0], g.dims[x][1], (HID, False)])
                feats = pick_step(g, y, index, tr, dyn_t)
            width = 2 * HID if v.bad else HID
        elif op:
            _, yh, _ = recurrent_op(g, x, form=c["rec"], feat=F)
            back = -1 if index == "m1" else 1
            if v.bad and p == "one_dir":
                feats = h_n(yh, back)
            elif v.bad:  # the backward direction twice; tf2onnx folds the two equal Gathers into one
                hb = h_n(yh, back)
                feats = g.op("Concat", [hb, hb if c["naming"] == "unk" else h_n(yh, back)], axis=1)
            else:
                feats = g.op("Concat", [h_n(yh, -2 if index == "m1" else 0), h_n(yh, back)], axis=1)
            width = 2 * HID
        else:  # twice over a pass pair
            order = "proc" if c["naming"] == "unk" else "orig"
            fwd, bwd = pass_pair(g, x, c, tr, F, order=order)
            last = pick_step(g, fwd, index, tr, dyn_t)
            if v.bad:
                feats = g.op("Concat", [last, pick_step(g, fwd, index, tr, dyn_t)], axis=1)
            else:
                final_b = pick_step(g, bwd, index, tr, dyn_t, first=order == "orig")
                feats = g.op("Concat", [last, final_b], axis=1)
            width = 2 * HID
        proj, out = dense(g, feats, width, CLASSES, gemm=_torch_linear(c))
        culprit = g.node_of[proj] if v.bad else None
        return Built(_make_model(g, inputs, [out], c["naming"], v.id, ranks={out: 2}), culprit)


# --------------------------------------------------------------------------- SL403
class SL403(Family):
    """Softmax/LogSoftmax/ArgMax of per-step class scores over time (culprit: that op).

    ``attn_sum`` / ``attn_matmul`` are healthy attention pooling (softmax over time, weighted sum over time).
    """

    rule = "SL403"
    axes = {"naming": list(NAMINGS), "shape": ["none", "const", "shapeop", "placeholder"], "rec": RECS,
            "pattern": ["softmax", "logsoftmax", "argmax", "softmax_tm", "attn_sum", "attn_matmul"]}
    extra = (("naming", "rec", "pattern"),)
    good_only_patterns = ("attn_sum", "attn_matmul")

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        x = seq_input(self, g, v, 10, inputs)
        p = c["pattern"]
        tm = p == "softmax_tm"
        y, _ = recurrence(g, x, feat=10, out="tm" if tm else "bm", **_rec_kw(c, tr))
        culprit = None
        if p.startswith("attn"):
            s = g.op("MatMul", [y, g.weight(HID, 1)])  # (B, T, 1) scores
            if p == "attn_sum":
                a = g.op("Softmax", [s], axis=1)
                pooled = g.op("ReduceSum", [g.op("Mul", [y, a]), g.ints([1])], keepdims=0)
            else:
                a = g.op("Softmax", [transpose(g, s, (0, 2, 1))], axis=-1)  # (B, 1, T)
                pooled = g.op("Squeeze", [g.op("MatMul", [a, y]), g.ints([1])])
            logits = g.op("Add", [g.op("MatMul", [pooled, g.weight(HID, CLASSES)]), g.weight(CLASSES)])
            out = g.op("Softmax", [logits], axis=-1)
        else:
            logits = g.op("Add", [g.op("MatMul", [y, g.weight(HID, CLASSES)]), g.weight(CLASSES)])
            axis = (0 if tm else 1) if v.bad else -1
            op = {"softmax": "Softmax", "softmax_tm": "Softmax", "logsoftmax": "LogSoftmax", "argmax": "ArgMax"}[p]
            out = g.op(op, [logits], axis=axis, **({"keepdims": 0} if op == "ArgMax" else {}))
            culprit = g.node_of[out]
        return Built(_make_model(g, inputs, [out], c["naming"], v.id), culprit if v.bad else None)


# --------------------------------------------------------------------------- SL404
class SL404(Family):
    """A reduction over the hidden axis of the recurrent output where time was meant (culprit: the reduction).

    The classifier after it is then sized by the traced length: SL303/SL501 on it are allowed as consequences.
    """

    rule = "SL404"
    axes = {"naming": list(NAMINGS), "shape": ["none", "const", "shapeop", "placeholder"], "rec": RECS,
            "pattern": ["mean", "max", "sum", "mean_tm"]}
    extra = (("naming", "rec", "pattern"),)

    def bad_runs(self, c):
        return "trace-only" if _t_dynamic(c) else "all"

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        x = seq_input(self, g, v, 10, inputs)
        p = c["pattern"]
        tm = p == "mean_tm"
        y, _ = recurrence(g, x, feat=10, out="tm" if tm else "bm", **_rec_kw(c, tr))
        axis = 2 if v.bad else (0 if tm else 1)
        if p == "sum":
            red = g.op("ReduceSum", [y, g.ints([axis])], keepdims=0)
        else:
            red = g.op("ReduceMax" if p == "max" else "ReduceMean", [y], axes=[axis], keepdims=0)
        culprit = g.node_of[red]
        if v.bad and tm:
            red = g.op("Transpose", [red], perm=[1, 0])  # (B, T)
        head = g.op("MatMul", [red, g.weight(tr["seq"] if v.bad else HID, CLASSES)])
        # the classifier is then sized by the traced length: SL303 (a Dense over time) and, with a dynamic
        # length, SL501 on it are consequences of the same mistake
        cons = frozenset({("SL303", g.node_of[head]), ("SL501", g.node_of[head])}) if v.bad else frozenset()
        out = g.op("Add", [head, g.weight(CLASSES)])
        return Built(_make_model(g, inputs, [out], c["naming"], v.id), culprit if v.bad else None, cons)


# --------------------------------------------------------------------------- SL405
class SL405(Family):
    """Step 0 of a forward recurrence's output taken as the summary (culprit: the Gather/Slice).

    ``reverse``: a reverse-direction recurrence whose step 0 is its final state: healthy.
    """

    rule = "SL405"
    axes = {"naming": list(NAMINGS), "shape": ["none", "const", "shapeop", "placeholder"], "rec": RECS,
            "pattern": ["gather", "slice", "gather_tm", "reverse"]}
    extra = (("naming", "rec", "pattern"),)
    good_only_patterns = ("reverse",)

    def ok(self, c):
        return not (c["pattern"] == "reverse" and c["rec"] == "loop")

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        x = seq_input(self, g, v, 10, inputs)
        p = c["pattern"]
        tm = p == "gather_tm"
        y, _ = recurrence(g, x, feat=10, out="tm" if tm else "bm",
                          direction="reverse" if p == "reverse" else "forward", **_rec_kw(c, tr))
        t_ax = 0 if tm else 1
        last_static = not _t_dynamic(c)
        if p == "slice":
            start = 0 if v.bad else -1
            sl = g.op("Slice", [y, g.ints([start]), g.ints([start + 1 if v.bad else 2**62]), g.ints([t_ax])])
            culprit = g.node_of[sl]
            step = g.op("Squeeze", [sl, g.ints([t_ax])])
        else:
            if v.bad or p == "reverse":
                idx = g.ints(0, scalar=True)
            elif c["shape"] == "shapeop":  # out[:, out.size(1) - 1]
                idx = g.op("Sub", [g.size_scalar(Ref(y, t_ax, tr["seq"], not last_static)), g.ints(1, scalar=True)])
            elif c["shape"] == "const" and last_static:
                idx = g.ints(tr["seq"] - 1, scalar=True)
            else:
                idx = g.ints(-1, scalar=True)
            step = g.op("Gather", [y, idx], axis=t_ax)
            culprit = g.node_of[step]
        out = g.op("Add", [g.op("MatMul", [step, g.weight(HID, CLASSES)]), g.weight(CLASSES)])
        return Built(_make_model(g, inputs, [out], c["naming"], v.id), culprit if v.bad else None)


# --------------------------------------------------------------------------- SL501
class SL501(Family):
    """A traced size baked into a shape while the input dim is dynamic (culprit: the Reshape / ConstantOfShape).

    ``batch``: Reshape target with the literal batch 4; ``fold6``: (B*T, E) -> (-1, 6, E) meant as
    (batch, time=6); ``state``: zero initial state ConstantOfShape([1, 4, H]) at the traced batch.
    """

    rule = "SL501"
    axes = {"naming": ["named", "unk", "s0"], "shape": ["const", "shapeop", "placeholder"], "rec": RECS,
            "pattern": ["batch", "fold6", "state"]}
    extra = (("naming", "rec", "pattern"),)

    def ok(self, c):
        if c["pattern"] == "fold6":
            return c["rec"] != "unrolled" and c["shape"] != "placeholder"
        if c["pattern"] == "state":
            return c["shape"] != "placeholder"
        return True

    def trace(self, c):
        return {"batch": 4, "seq": 6}

    def bad_runs(self, c):
        return "trace-only"

    def build(self, v):
        c, tr = v.combo, v.bindings[0]
        g, inputs = Builder(c["naming"]), []
        p, form = c["pattern"], c["shape"]
        culprit = None
        if p == "batch":
            # the culprit itself is the front Reshape (B, T, 2, 5) -> (B, T, 10)
            dyn = self.dynamic(c)
            inputs.append(("x", [self.dim(c, "batch", tr), self.dim(c, "seq", tr), 2, 5], TensorProto.FLOAT))
            g.set_dims("x", [(tr["batch"], "batch" in dyn), (tr["seq"], "seq" in dyn), (2, False), (5, False)])
            r = lambda i: g.ref("x", i)  # noqa: E731
            first = [tr["batch"]] if v.bad else [r(0)]
            z = reshape(g, "x", [first, [r(1)], [r(2), r(3)]], form, infer=2, fallback=not v.bad)
            culprit = g.node_of[z]
            y, _ = recurrence(g, z, feat=10, **_rec_kw(c, tr))
        elif p == "fold6":
            x = seq_input(self, g, v, 10, inputs, front="none")
            r = lambda i: g.ref("x", i)  # noqa: E731
            fo = reshape(g, x, [[r(0), r(1)], [r(2)]], form, infer=0)
            e = g.op("Add", [g.op("MatMul", [fo, g.weight(10, 12)]), g.weight(12)])
            g.set_dims(e, [g.dims[fo][0], (12, False)])
            if v.bad:
                if form == "shapeop":  # Concat((B*T) // 6, 6, 12)
                    q = g.op("Div", [g.size_scalar(g.ref(e, 0)), g.ints(tr["seq"], scalar=True)])
                    q = g.op("Unsqueeze", [q, g.ints([0])])
                    tgt = g.op("Concat", [q, g.ints([tr["seq"]]), g.ints([12])], axis=0)
                else:
                    tgt = g.ints([-1, tr["seq"], 12])
                u = g.op("Reshape", [e, tgt])
                g.set_dims(u, [g.dims["x"][0], (tr["seq"], False), (12, False)])
            else:
                u = reshape(g, e, [[r(0)], [r(1)], [12]], form, infer=0, fallback=True)
            culprit = g.node_of[u]
            y, _ = recurrence(g, u, feat=12, **_rec_kw(c, tr))
        else:  # state
            x = seq_input(self, g, v, 10, inputs, front="none")
            made = []

            def init(kind):
                lead = {"dbh": (1,), "bdh": (), "bh": ()}[kind]
                tail = (1, HID) if kind == "bdh" else (HID,)
                if v.bad:
                    if form == "const":
                        shp = g.ints([*lead, tr["batch"], *tail])
                    else:  # torch.zeros(1, b, H) with b a Python int: a Concat of constants
                        shp = g.op("Concat", [g.ints([*lead]) if lead else g.ints([tr["batch"]]),
                                              *([g.ints([tr["batch"]])] if lead else []), g.ints(list(tail))], axis=0)
                else:
                    pieces = [g.ints([*lead])] if lead else []
                    pieces += [g.op("Unsqueeze", [g.size_scalar(g.ref("x", 0)), g.ints([0])]), g.ints(list(tail))]
                    shp = g.op("Concat", pieces, axis=0)
                z = g.op("ConstantOfShape", [shp], value=helper.make_tensor("value", TensorProto.FLOAT, [1], [0.0]))
                made.append(g.node_of[z])
                return z

            y, _ = recurrence(g, x, feat=10, init=init, **_rec_kw(c, tr))
            culprit = made[0]
        return Built(_make_model(g, inputs, [y], c["naming"], v.id), culprit if v.bad else None)


FAMILIES = [SL202(), SL204(), SL301(), SL302(), SL303(), SL401(), SL402(), SL403(), SL404(), SL405(), SL501()]


@functools.lru_cache(maxsize=1)
def _all() -> tuple:
    out = []
    for fam in FAMILIES:
        out.extend(fam.variants())
    ids = [v.id for v in out]
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        raise AssertionError(f"duplicate variant ids: {dup[:5]}")
    return tuple(out)


def variants() -> list[Variant]:
    return list(_all())


# --------------------------------------------------------------------------- truth (onnxruntime)
def feeds(v: Variant, binding: dict, rng=None) -> dict:
    rng = rng or np.random.default_rng(1)
    out = {}
    for inp in v.model.graph.input:
        dims = []
        for d in inp.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(d.dim_value)
            else:
                logical = next(k for k, s in NAMINGS[v.combo["naming"]].items() if s == d.dim_param
                               and (k in binding))
                dims.append(binding[logical])
        out[inp.name] = rng.standard_normal(dims).astype(np.float32)
    return out


def _session(v: Variant):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4
    return ort.InferenceSession(v.model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_ort(v: Variant) -> list:
    """For each binding: None when it ran, else the error text (one session, run at each binding)."""
    out = []
    try:
        sess = _session(v)
    except Exception as exc:  # noqa: BLE001
        return [f"session: {exc}"] * len(v.bindings)
    for b in v.bindings:
        try:
            sess.run(None, feeds(v, b))
            out.append(None)
        except Exception as exc:  # noqa: BLE001
            out.append(str(exc).splitlines()[0][:200])
    return out


# --------------------------------------------------------------------------- shapelint verdict
def _is_sequence_rule(code: str) -> bool:
    return code.startswith(SEQUENCE_RULE_PREFIXES)


def shapelint_verdict(v: Variant, rules=None) -> tuple[bool, str]:
    """(ok, explanation): a bad variant reports its rule on the culprit and nothing unrelated; a twin is silent."""
    from shapelint.check import check

    report = check(v.model, rules=rules)
    if report.error is not None:
        return False, f"check error: {report.error}"
    got = [(d.rule, d.node) for d in report.diagnostics]
    text = "; ".join(f"{d.rule}@{d.node}: {d.message[:120]}" for d in report.diagnostics) or "no findings"
    crashed = [d for d in report.diagnostics if d.message.startswith("internal error")]
    if crashed:
        return False, f"{INTERNAL_ERROR}: " + "; ".join(f"{d.rule}: {d.message[:200]}" for d in crashed)
    if v.bad:
        if (v.rule, v.culprit) not in got:
            return False, f"missing {v.rule}@{v.culprit}; got {text}"
        stray = [(r, n) for r, n in got if n != v.culprit and r != "SL001" and (r, n) not in v.built.consequences]
        if stray:
            return False, f"stray findings {stray}; got {text}"
        return True, text
    bad = [(r, n) for r, n in got if _is_sequence_rule(r)]
    if bad:
        return False, f"false positive {bad}; got {text}"
    return True, text


INTERNAL_ERROR = "internal error in a rule"


def read_gaps(path: Path = GAPS_FILE) -> tuple[set, set, set]:
    """(gaps, false positives, internal errors): the ids of the file's three sections.

    Gaps come first; the ``# false positives`` and ``# internal errors`` lines open the other two.
    """
    sections = {"gaps": set(), "fp": set(), "crash": set()}
    if not path.exists():
        return sections["gaps"], sections["fp"], sections["crash"]
    cur = sections["gaps"]
    for line in path.read_text(encoding="utf-8").splitlines():
        s = line.strip()
        if s.lower().startswith("# false positives"):
            cur = sections["fp"]
        elif s.lower().startswith("# internal errors"):
            cur = sections["crash"]
        elif s and not s.startswith("#"):
            cur.add(s.split()[0])
    return sections["gaps"], sections["fp"], sections["crash"]


# --------------------------------------------------------------------------- command line
def _summary(vs, verdicts=None) -> str:
    lines = []
    per_rule = Counter((v.rule, "bad" if v.bad else "good") for v in vs)
    lines.append(f"{len(vs)} variants")
    for rule in sorted({v.rule for v in vs}):
        ok = ""
        if verdicts is not None:
            b = [v for v in vs if v.rule == rule and v.bad]
            gd = [v for v in vs if v.rule == rule and not v.bad]
            ok = (f"   shapelint right: bad {sum(verdicts[v.id] for v in b)}/{len(b)},"
                  f" good {sum(verdicts[v.id] for v in gd)}/{len(gd)}")
        lines.append(f"  {rule}: {per_rule[(rule, 'bad')]} bad + {per_rule[(rule, 'good')]} good{ok}")
    for axis in AXES_ORDER:
        cnt = Counter(v.combo[axis] for v in vs if axis in v.combo)
        line = f"  {axis}: " + ", ".join(f"{k} {n}" for k, n in cnt.items())
        if verdicts is not None:
            right = Counter(v.combo[axis] for v in vs if axis in v.combo and verdicts[v.id])
            line += "   | right: " + ", ".join(f"{k} {right[k]}/{n}" for k, n in cnt.items())
        lines.append(line)
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    vs = variants()
    if "--write-gaps" not in argv and "--verdicts" not in argv:
        print(_summary(vs))
        return 0
    from shapelint.plugins import load_rules

    rules = list(load_rules())
    verdicts, why = {}, {}
    for v in vs:
        verdicts[v.id], why[v.id] = shapelint_verdict(v, rules)
    print(_summary(vs, verdicts))
    crashes = [v.id for v in vs if not verdicts[v.id] and why[v.id].startswith(INTERNAL_ERROR)]
    gaps = [v.id for v in vs if v.bad and not verdicts[v.id] and v.id not in crashes]
    fps = [v.id for v in vs if not v.bad and not verdicts[v.id] and v.id not in crashes]
    if "--verbose" in argv:
        for vid in gaps + fps + crashes:
            print(vid, "::", why[vid])
    if "--write-gaps" in argv:
        head = ("# Matrix variants (tests/matrix.py) that shapelint does not get right yet; strict xfail.\n"
                "# Regenerate with `python -m tests.matrix --write-gaps`; remove an id when its gap closes.\n"
                "# Bad variants whose finding is missing or misplaced (axis algebra: issue 11):\n")
        text = head + "".join(f"{i}\n" for i in gaps)
        text += "\n# false positives: twins (healthy) that get a sequence-rule finding\n"
        text += "".join(f"{i}  # {why[i][:160]}\n" for i in fps)
        if crashes:
            text += "\n# internal errors: a rule crashed on these variants (bad or twin)\n"
            text += "".join(f"{i}  # {why[i][len(INTERNAL_ERROR) + 2:][:160]}\n" for i in crashes)
        GAPS_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {GAPS_FILE}: {len(gaps)} gaps, {len(fps)} false positives, {len(crashes)} internal errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
