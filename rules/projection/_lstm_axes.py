"""Axis roles of recurrent outputs, tracked forward through the graph.

Used by SL401 and SL402 only: every other sequence rule reads the one axis
analysis, ``shapelint.axes``; these two still need its per-direction, per-step
segments (``torch.cat([h_n[-2], h_n[-1]], 1)``, a state concatenated twice)
ported there, and until then this module is their tracking.  ONNX LSTM/GRU/RNN
write ``Y`` as ``[seq, num_directions, batch, hidden]`` (``layout=0``) or
``[batch, seq, num_directions, hidden]`` (``layout=1``) and ``Y_h``/``Y_c`` as
``[num_directions, batch, hidden]``.  :func:`analyse` walks the main graph in
topological order once per model and labels every axis of every tensor derived
from those outputs with the roles it holds: ``time``, ``direction``, ``batch``,
``hidden`` (the recurrent features) or ``feature`` (after a projection).

A label is the tuple of roles merged into the axis, major first: a correct
bidirectional merge gives ``("direction", "hidden")`` (features are
``[forward | backward]``), ``out.view(seq, batch * 2, hidden)`` gives
``("direction", "batch")`` and a merge followed by a split that does not undo
it is ``scrambled``.  Reshape and Flatten are matched with symbolic dims
(``2*batch*64 == batch*128``), contiguous groups at a time.

Besides axes, each tensor carries its *segments*: the direction content along
its direction axis, or along its feature axis once directions are merged
(``torch.cat([h_n[-2], h_n[-1]], 1)`` has two, forward then reverse), and for
each which time step it holds (every step, ``Y_h``'s final one, or the step a
Gather/Slice picked).

Keras 3 on the torch backend (and hand-written ``nn.LSTMCell`` loops) export
no LSTM op: each step is unrolled into MatMul/Sigmoid/Tanh and the per-step
hidden states are stacked with Unsqueeze + Concat.  Such a Concat is
recognised as a recurrent output when each stacked state is computed from the
previous one through a MatMul and a gate nonlinearity; the stacked axis is time
and the state's last axis hidden.  A per-step layer applied after it
(``TimeDistributed(Dense)``, unrolled the same way: Gather step ``t`` → MatMul
→ Unsqueeze → Concat) is recognised as a restack of the time axis.  Reading
the time axis backwards (``Slice(step=-1)``, how Keras puts the backward half
of ``Bidirectional`` back in order) turns a forward segment into a backward
one.

Not followed: Scan/Loop bodies, sequence ops, contrib-domain recurrent ops,
Einsum.  Anything the walk cannot follow gets no roles: unknown is fine,
wrong is not.  When inference left a dim unknown (``unk__N``) and the walk
can compute it (a Reshape target built from Shape arithmetic, a Slice of a
known width), the value is recorded in :attr:`Analysis.subs` and used for the
rest of the walk and in messages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import onnx
import sympy

from shapelint.dims import Relation, compare, floordiv, format_shape, is_named, product, simplify

__all__ = [
    "BATCH",
    "DIRECTION",
    "FEATURE",
    "HIDDEN",
    "TIME",
    "Analysis",
    "Axis",
    "Recurrent",
    "Roles",
    "Seg",
    "analyse",
    "describe_axes",
    "match_groups",
]

logger = logging.getLogger(__name__)

TIME, DIRECTION, BATCH, HIDDEN, FEATURE = "time", "direction", "batch", "hidden", "feature"
RECURRENT_OPS = ("LSTM", "GRU", "RNN")
_SHORT = {TIME: "time", DIRECTION: "direction", BATCH: "batch", HIDDEN: "hidden", FEATURE: "features"}
_BIG = 2**31  # Slice ends at or beyond this mean "to the end"

# ops that keep every element where it is and the values "the recurrent state"
PURE_UNARY = frozenset(
    "Identity Dropout Cast Relu Tanh Sigmoid LeakyRelu Elu Selu Gelu HardSigmoid HardSwish Softplus "
    "Softsign Celu Mish Swish Clip PRelu".split()
)
OTHER_UNARY = frozenset("Neg Abs Exp Log Sqrt Reciprocal Erf Sin Cos Floor Ceil Round Sign".split())
BINARY = frozenset("Add Sub Mul Div Pow Max Min Mean Sum".split())
NORMALISE = frozenset("Softmax LogSoftmax Hardmax".split())
REDUCE = frozenset("ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSumExp ReduceSumSquare".split())
GATES = frozenset("Sigmoid Tanh Relu HardSigmoid".split())


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Seg:
    """One direction's hidden state inside a tensor.

    ``step`` is None while the time axis is still there, ``("final",)`` for
    ``Y_h``/``Y_c``, ``("index", i, node_name)`` for the step a Gather/Slice
    took (``i`` counts from the start of the original sequence; negative from
    its end; None when dynamic), ``("pooled",)`` after a reduction over time.
    """

    source: str | None  # recurrent node (or unrolled loop); None: not recurrent
    direction: str  # "forward" | "reverse" | "?"
    width: object  # features it spans (hidden size), a dim
    step: tuple | None = None

    @property
    def is_forward(self) -> bool:
        return self.source is not None and self.direction == "forward"

    @property
    def taken_first(self) -> bool:
        return self.step is not None and self.step[0] == "index" and self.step[1] == 0

    def describe(self) -> str:
        if self.source is None:
            return "other features"
        d = {"forward": "forward", "reverse": "backward"}.get(self.direction, "unknown")
        return f"{d} direction"


@dataclass(frozen=True)
class Axis:
    """Roles merged into one axis (major first), with their sizes."""

    parts: tuple = ()
    sizes: tuple = ()
    scrambled: bool = False

    @property
    def role(self) -> str | None:
        """The single role of a clean axis: hidden for ``(direction, hidden)``."""
        if self.scrambled or not self.parts:
            return None
        if len(self.parts) == 1:
            return self.parts[0]
        if set(self.parts) <= {DIRECTION, HIDDEN} and HIDDEN in self.parts:
            return HIDDEN
        return None

    def has(self, role: str) -> bool:
        return role in self.parts

    def text(self) -> str:
        if not self.parts:
            return "?"
        body = "*".join(_SHORT[p] for p in self.parts)
        return f"scrambled({body})" if self.scrambled else body


@dataclass(frozen=True)
class Recurrent:
    """Facts about a recurrent op (or an unrolled loop)."""

    name: str
    op_type: str
    hidden: object
    num_directions: int
    layout: int
    y: str | None
    unrolled: bool = False

    def label(self) -> str:
        if self.unrolled:
            return f"the unrolled recurrence stacked by Concat {self.name!r}"
        return f"{self.op_type} {self.name!r}" if self.name else self.op_type


@dataclass(frozen=True)
class Roles:
    """What the axes of one tensor hold."""

    axes: tuple
    segs: tuple
    source: Recurrent
    pure: bool = True  # the recurrent states themselves (layout ops, selections, activations only)
    projected: str | None = None  # the MatMul/Gemm that projected the hidden axis

    @property
    def rank(self) -> int:
        return len(self.axes)

    def find(self, role: str) -> int | None:
        """Index of the (first) axis whose single role is ``role``."""
        for i, a in enumerate(self.axes):
            if a.role == role:
                return i
        return None

    def find_part(self, role: str) -> int | None:
        for i, a in enumerate(self.axes):
            if a.has(role):
                return i
        return None

    @property
    def has_direction_axis(self) -> bool:
        return any(a.parts == (DIRECTION,) for a in self.axes)

    @property
    def n_directions(self) -> int:
        return len({(s.source, s.direction) for s in self.segs if s.source is not None})

    def text(self) -> str:
        return "(" + ", ".join(a.text() for a in self.axes) + ")"


@dataclass
class Analysis:
    """Roles of every tensor derived from a recurrent output, for one model."""

    roles: dict = field(default_factory=dict)  # tensor -> Roles
    sources: list = field(default_factory=list)  # Recurrent
    mixes: list = field(default_factory=list)  # (node, Roles in, Roles out, axis index)

    subs: dict = field(default_factory=dict)  # unknown dims of inference -> what the walk learned
    table: object = None

    def get(self, tensor: str) -> Roles | None:
        return self.roles.get(tensor) if tensor else None

    def shape(self, tensor: str):
        """Inferred shape of ``tensor``, with unknown dims this walk could resolve filled in."""
        s = self.table.shape(tensor) if tensor and self.table is not None else None
        if s is None or not self.subs:
            return s
        return tuple(_substitute(d, self.subs) for d in s)


def _substitute(d, subs):
    if d is None or isinstance(d, int) or not (d.free_symbols & subs.keys()):
        return d
    return simplify(d.xreplace(subs))


def describe_axes(roles: Roles, shape) -> str:
    """The shape and, in brackets, what each axis holds: ``(seq, 2, batch, 64) [time, direction, batch, hidden]``."""
    names = ", ".join(a.text() for a in roles.axes)
    if shape is None or len(shape) != roles.rank:
        return f"[{names}]"
    return f"{format_shape(shape)} [{names}]"


#: the closing paragraph of every SL40x rule's documentation: what the axis tracking follows
TRACKING_LIMITS = """\
Recurrences followed: ONNX LSTM/GRU/RNN (both layouts, any direction,
stacked layers through torch's ``Y_h`` concatenation) and unrolled cells
whose per-step states are stacked along time (Keras 3 on torch: LSTM, GRU,
SimpleRNN, ``Bidirectional`` read back with ``Slice(step=-1)``;
``nn.LSTMCell`` loops; dynamo's unrolled ``nn.RNN``).  Not followed:
Scan/Loop bodies, sequence ops (``ConcatFromSequence``), contrib-domain
recurrent ops, Einsum projections.
"""


# --------------------------------------------------------------------------- cache

def analyse(ctx) -> Analysis:
    """The roles of ``ctx``'s model, computed once per shape table (kept on it, freed with it)."""
    per = ctx.table.analyses
    if "lstm_axes" not in per:
        per["lstm_axes"] = _Walker(ctx).run()
    return per["lstm_axes"]


# --------------------------------------------------------------------------- reshape matching


def _is_one(d) -> bool:
    return isinstance(d, int) and d == 1


def _equal(a, b) -> bool:
    if a is None or b is None:
        return False
    return compare(a, b).relation == Relation.EQUAL


def match_groups(src, dst):
    """Group the axes of a reshape into contiguous blocks of equal size.

    Returns ``[(src_indices, dst_indices), ...]`` in order, or None when the
    sizes cannot be matched.  Size-1 axes pair with size-1 axes, else stand alone.

    >>> from shapelint.dims import symbol
    >>> b = symbol("batch")
    >>> match_groups((7, 2, b, 16), (7, 2 * b, 16))
    [([0], [0]), ([1, 2], [1]), ([3], [2])]
    >>> match_groups((2, b, 16), (b, 32))
    [([0, 1, 2], [0, 1])]
    """
    src, dst = list(src), list(dst)
    i = j = 0
    out = []
    while i < len(src) or j < len(dst):
        if i < len(src) and j < len(dst) and _is_one(src[i]) and _is_one(dst[j]):
            out.append(([i], [j]))
            i, j = i + 1, j + 1
            continue
        if i < len(src) and _is_one(src[i]):
            out.append(([i], []))
            i += 1
            continue
        if j < len(dst) and _is_one(dst[j]):
            out.append(([], [j]))
            j += 1
            continue
        if i >= len(src) or j >= len(dst):
            return None
        best = None
        for total in range(2, (len(src) - i) + (len(dst) - j) + 1):
            for a in range(i + 1, len(src) + 1):
                b = total - (a - i) + j
                if b <= j or b > len(dst):
                    continue
                if _equal(product(src[i:a]), product(dst[j:b])):
                    best = (a, b)
                    break
            if best:
                break
        if best is None:
            return None
        a, b = best
        out.append((list(range(i, a)), list(range(j, b))))
        i, j = a, b
    return out


def _reshape_axes(src_axes, src_dims, dst_dims):
    """Labels of a reshape's output axes, or None when the sizes do not match."""
    groups = match_groups(src_dims, dst_dims)
    if groups is None:
        return None
    out: list = [None] * len(dst_dims)
    for si, di in groups:
        if not di:
            continue
        parts, sizes, scr = [], [], False
        for k in si:
            ax = src_axes[k]
            if _is_one(src_dims[k]):
                continue
            scr = scr or ax.scrambled
            if not ax.parts:
                parts.append(None)
                sizes.append(src_dims[k])
                continue
            parts.extend(ax.parts)
            if len(ax.parts) == 1:
                sizes.append(src_dims[k])
            elif len(ax.sizes) == len(ax.parts) and _equal(product(ax.sizes), src_dims[k]):
                sizes.extend(ax.sizes)
            else:
                sizes.extend([None] * len(ax.parts))
        real = [j for j in di if not _is_one(dst_dims[j])]
        for j in di:
            if _is_one(dst_dims[j]):
                out[j] = Axis()
        if not real:
            continue
        if None in parts:
            for j in real:
                out[j] = Axis()
            continue
        if len(real) == 1:
            out[real[0]] = Axis(tuple(parts), tuple(sizes), scr)
            continue
        # a split: undo an earlier merge when the part sizes line up
        sub = match_groups(tuple(sizes), tuple(dst_dims[j] for j in real)) if None not in sizes else None
        if sub is not None and all(len(d) == 1 for _, d in sub if d):
            for ps, ds in sub:
                if not ds:
                    continue
                j = real[ds[0]]
                out[j] = Axis(tuple(parts[p] for p in ps), tuple(sizes[p] for p in ps), scr)
            continue
        if len(set(parts)) == 1:
            # one role split in several axes (heads of the features, chunks of time): each keeps it
            for j in real:
                out[j] = Axis((parts[0],), (dst_dims[j],), scr)
            continue
        for j in real:
            out[j] = Axis(tuple(parts), tuple(sizes), True)
    return tuple(a if a is not None else Axis() for a in out)


# --------------------------------------------------------------------------- the walk


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _norm(axis, rank):
    if not isinstance(axis, (int, np.integer)):
        return None
    a = int(axis) + rank if axis < 0 else int(axis)
    return a if 0 <= a < rank else None


class _Walker:
    def __init__(self, ctx):
        self.ctx = ctx
        self.g = ctx.graph
        self.table = ctx.table
        self.an = Analysis(table=ctx.table)
        self.opset = self.g.opset
        self._values: dict = {}

    # ----------------------------------------------------------- helpers
    def shape(self, t):
        """The engine's shape, with the sizes this walk learned substituted for its unknowns."""
        return self.an.shape(t)

    def learn(self, t, k, value):
        """Inference left axis ``k`` of ``t`` unknown (``unk__N``) where this walk knows ``value``."""
        s = self.table.shape(t)
        if s is None or k >= len(s) or value is None:
            return
        d = s[k]
        if isinstance(d, sympy.Symbol) and not is_named(d) and d not in self.an.subs:
            if isinstance(value, int) or not any(not is_named(v) for v in value.free_symbols):
                self.an.subs[d] = value

    def values(self, t, depth=0):
        """Flat symbolic values of a small integer tensor (constants, Shape arithmetic)."""
        if not t:
            return None
        if t in self._values:
            return self._values[t]
        out = None
        info = self.table.get(t)
        if info.value is not None:
            out = tuple(info.value)
        else:
            c = self.g.const(t)
            if c is None:
                c = info.const
            if c is not None and c.dtype.kind in "iu" and c.size <= 4096:
                out = tuple(int(v) for v in c.reshape(-1))
            elif depth < 16:
                p = self.g.producer(t)
                if p is not None and p.input:
                    if p.op_type in ("Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten"):
                        out = self.values(p.input[0], depth + 1)
                    elif p.op_type == "Concat":
                        parts = [self.values(x, depth + 1) for x in p.input]
                        if all(v is not None for v in parts):
                            out = tuple(d for v in parts for d in v)
        self._values[t] = out
        return out

    def ints(self, t):
        v = self.values(t)
        if v is None or not all(isinstance(d, (int, np.integer)) for d in v):
            return None
        return [int(d) for d in v]

    def reshape_target_dims(self, node, x_dims):
        """The Reshape's output dims, from the engine or from the target's values."""
        y = self.shape(node.output[0])
        if y is not None and all(d is not None for d in y) and _equal(product(x_dims), product(y)):
            return y
        target = self.values(node.input[1]) if len(node.input) > 1 else None
        if target is None:
            return y
        allowzero = _attr(node, "allowzero", 0)
        out, neg = [], None
        for i, d in enumerate(target):
            if isinstance(d, int) and d == 0 and not allowzero:
                if i >= len(x_dims):
                    return y
                out.append(x_dims[i])
            elif isinstance(d, int) and d == -1:
                neg = i
                out.append(None)
            else:
                out.append(d)
        if neg is not None:
            known = product([d for k, d in enumerate(out) if k != neg])
            out[neg] = floordiv(product(x_dims), known) if known is not None else None
        return tuple(out)

    # ----------------------------------------------------------- run
    def run(self) -> Analysis:
        for node in self.g.topological_order():
            try:
                self.visit(node)
            except Exception:  # noqa: BLE001 - an odd node only stops tracking there
                logger.debug("role tracking stopped at %s", node.name or node.op_type, exc_info=True)
        return self.an

    def visit(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            return
        if op in RECURRENT_OPS:
            self.seed(node)
            return
        ins = [self.an.get(t) for t in node.input]
        if not any(ins):
            if op == "Concat":
                self.seed_unrolled(node)
            return
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            if op in PURE_UNARY or op in OTHER_UNARY:
                handler = self.op_unary
            elif op in BINARY or op in ("Where", "PRelu"):
                handler = self.op_binary
            elif op in NORMALISE:
                handler = self.op_normalise
            elif op in REDUCE:
                handler = self.op_reduce
        if handler is None:
            return
        outs = handler(node, ins)
        for name, r in zip(node.output, outs or ()):
            if name and r is not None:
                s = self.shape(name)
                if s is not None and len(s) != r.rank:
                    continue  # the labels disagree with inference: drop rather than guess
                self.an.roles[name] = r

    # ----------------------------------------------------------- seeds
    def seed(self, node):
        x = self.shape(node.input[0]) if node.input else None
        layout = _attr(node, "layout", 0)
        direction = _attr(node, "direction", "forward")
        nd = 2 if direction == "bidirectional" else 1
        hidden = _attr(node, "hidden_size")
        if hidden is None:
            r = self.shape(node.input[2]) if len(node.input) > 2 else None
            hidden = r[2] if r is not None and len(r) == 3 else None
        src = Recurrent(node.name, node.op_type, hidden, nd, layout, node.output[0] if node.output else None)
        self.an.sources.append(src)
        dirs = ("forward", "reverse") if nd == 2 else (direction,)
        segs = tuple(Seg(node.name or node.output[0], d, hidden) for d in dirs)
        seq = batch = None
        if x is not None and len(x) == 3:
            seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
        t, d, b, h = (Axis((TIME,), (seq,)), Axis((DIRECTION,), (nd,)), Axis((BATCH,), (batch,)), Axis((HIDDEN,), (hidden,)))
        y_axes = (b, t, d, h) if layout else (t, d, b, h)
        yh_axes = (b, d, h) if layout else (d, b, h)
        for i, name in enumerate(node.output):
            if not name:
                continue
            if i == 0:
                self.an.roles[name] = Roles(y_axes, segs, src)
            elif i in (1, 2):
                self.an.roles[name] = Roles(yh_axes, tuple(replace(s, step=("final",)) for s in segs), src)

    def seed_unrolled(self, node):
        """A Concat stacking per-step hidden states of an unrolled recurrence (Keras 3, LSTMCell loops)."""
        if len(node.input) < 2:
            return
        y = self.shape(node.output[0])
        if y is None or len(y) < 3:
            return
        axis = _norm(_attr(node, "axis", 0), len(y))
        if axis is None:
            return
        items = []
        for t in node.input:
            p, item = self.g.producer(t), t
            while p is not None and p.op_type == "Cast":
                item = p.input[0]
                p = self.g.producer(item)
            if p is not None and p.op_type == "Unsqueeze":
                axes = _attr(p, "axes")
                if axes is None and len(p.input) > 1:
                    axes = self.ints(p.input[1])
                if axes is None or len(axes) != 1 or _norm(axes[0], len(y)) != axis:
                    return
                item = p.input[0]
            else:
                s = self.shape(t)
                if s is None or len(s) != len(y) or not _is_one(s[axis]):
                    return  # each step is one slice of the stacked axis
            items.append(item)
        info = self.table.get(items[0])
        if info.dtype not in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16, None):
            return
        near = [self.near(t) for t in items]
        forward = all(self.reaches(near[k], items[k + 1]) for k in range(len(items) - 1))
        backward = not forward and all(self.reaches(near[k + 1], items[k]) for k in range(len(items) - 1))
        if not (forward or backward):
            return
        hidden = y[-1] if axis != len(y) - 1 else None
        if hidden is None:
            return
        name = node.name or node.output[0]
        src = Recurrent(name, "unrolled recurrence", hidden, 1, 0, node.output[0], unrolled=True)
        self.an.sources.append(src)
        axes = []
        rest = [k for k in range(len(y)) if k != axis]
        for k in range(len(y)):
            if k == axis:
                axes.append(Axis((TIME,), (y[k],)))
            elif k == rest[-1]:
                axes.append(Axis((HIDDEN,), (y[k],)))
            elif k == rest[0] and len(rest) == 2:
                axes.append(Axis((BATCH,), (y[k],)))
            else:
                axes.append(Axis())
        seg = Seg(name, "forward" if forward else "?", hidden)
        self.an.roles[node.output[0]] = Roles(tuple(axes), (seg,), src)

    def near(self, t):
        """``t`` and the computed (non-constant) inputs of its producer: a step's output and its state.

        Keras masks each step with ``Where(cond, h_new, h_prev)``; the state
        carried to the next step may be a sibling of the stacked output.
        """
        out = {t}
        p = self.g.producer(t)
        if p is not None and p.op_type in ("Where", "Mul", "Add", "Identity", "Cast"):
            for x in p.input:
                if x and self.g.producer(x) is not None and self.g.const(x) is None and self.table.get(x).const is None:
                    out.add(x)
        return out

    def reaches(self, a, b, depth=48):
        """True when ``b`` is computed from one of the tensors ``a`` through a MatMul/Gemm and a gate.

        Breadth-first over producers, at most ``depth`` nodes up: a step of an
        unrolled cell is a few dozen nodes; earlier steps are not searched.
        """
        seen = {(b, False, False)}
        frontier = [(b, False, False)]
        for _ in range(depth):
            nxt = []
            for t, mm, gate in frontier:
                p = self.g.producer(t)
                if p is None:
                    continue
                mm2 = mm or p.op_type in ("MatMul", "Gemm")
                gate2 = gate or p.op_type in GATES
                for x in p.input:
                    if not x:
                        continue
                    if x in a and mm2 and gate2:
                        return True
                    key = (x, mm2, gate2)
                    if x not in a and key not in seen:
                        seen.add(key)
                        nxt.append(key)
            if not nxt:
                return False
            frontier = nxt
        return False

    # ----------------------------------------------------------- elementwise
    def op_unary(self, node, ins):
        r = ins[0]
        if r is None:
            return None
        pure = r.pure and node.op_type in PURE_UNARY
        return [replace(r, pure=pure)] + [None] * (len(node.output) - 1)

    def op_normalise(self, node, ins):
        r = ins[0]
        return [replace(r, pure=False)] if r is not None else None

    def op_binary(self, node, ins):
        out_shape = self.shape(node.output[0])
        if out_shape is None:
            return None
        rank = len(out_shape)
        tracked = [(r, self.shape(t)) for r, t in zip(ins, node.input) if r is not None]
        if node.op_type == "Where":
            tracked = [(r, self.shape(t)) for r, t in zip(ins[1:], node.input[1:]) if r is not None]
            if not tracked:
                return None
        axes = []
        for k in range(rank):
            label = None
            conflict = False
            for r, s in tracked:
                if s is None or len(s) != r.rank:
                    return None
                j = k - (rank - r.rank)
                if j < 0 or _is_one(s[j]) and not _is_one(out_shape[k]):
                    continue
                a = r.axes[j]
                if label is None:
                    label = a
                elif label.parts != a.parts:
                    conflict = True
            axes.append(Axis() if label is None or conflict else label)
        first = tracked[0][0]
        others = [t for r, t in zip(ins, node.input) if r is None and t]
        scalar_consts = all(self.g.const(t) is not None and self.g.const(t).size == 1 for t in others)
        pure = all(r.pure for r, _ in tracked) and (len(tracked) == 1 and scalar_consts)
        segs = first.segs
        if len(tracked) > 1 and any(r.segs != segs for r, _ in tracked[1:]):
            segs = tuple(dict.fromkeys(s for r, _ in tracked for s in r.segs))
        projected = next((r.projected for r, _ in tracked if r.projected), None)
        return [Roles(tuple(axes), segs, first.source, pure, projected)]

    # ----------------------------------------------------------- layout
    def op_Transpose(self, node, ins):
        r = ins[0]
        perm = _attr(node, "perm")
        if perm is None:
            perm = list(range(r.rank - 1, -1, -1))
        if sorted(perm) != list(range(r.rank)):
            return None
        return [replace(r, axes=tuple(r.axes[p] for p in perm))]

    def op_Squeeze(self, node, ins):
        r = ins[0]
        x = self.shape(node.input[0])
        axes = _attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            axes = self.ints(node.input[1])
            if axes is None:
                return None
        if axes is None:
            if x is None:
                return None
            drop = {k for k, d in enumerate(x) if _is_one(d)}
        else:
            drop = {_norm(a, r.rank) for a in axes}
            if None in drop:
                return None
        return [replace(r, axes=tuple(a for k, a in enumerate(r.axes) if k not in drop))]

    def op_Unsqueeze(self, node, ins):
        r = ins[0]
        axes = _attr(node, "axes")
        if axes is None and len(node.input) > 1:
            axes = self.ints(node.input[1])
        if axes is None:
            return None
        rank = r.rank + len(axes)
        new = sorted(_norm(a, rank) for a in axes)
        if None in new:
            return None
        it = iter(r.axes)
        return [replace(r, axes=tuple(Axis() if k in new else next(it) for k in range(rank)))]

    def op_Reshape(self, node, ins):
        r = ins[0]
        x = self.shape(node.input[0])
        if x is None or len(x) != r.rank:
            return None
        y = self.reshape_target_dims(node, x)
        if y is None:
            return None
        for k, d in enumerate(y):
            self.learn(node.output[0], k, d)
        axes = _reshape_axes(r.axes, x, y)
        if axes is None:
            return None
        out = replace(r, axes=axes)
        self.note_mix(node, r, out, x, y)
        return [out]

    def op_Flatten(self, node, ins):
        r = ins[0]
        x = self.shape(node.input[0])
        if x is None:
            return None
        a = _attr(node, "axis", 1)
        a = a + len(x) if a < 0 else a
        y = (product(x[:a]), product(x[a:]))
        axes = _reshape_axes(r.axes, x, y)
        if axes is None:
            return None
        out = replace(r, axes=axes)
        self.note_mix(node, r, out, x, y)
        return [out]

    def note_mix(self, node, r, out, x, y):
        for k, a in enumerate(out.axes):
            if is_mixed(a, r):
                self.an.mixes.append((node, r, out, k, x, y))
                return

    # ----------------------------------------------------------- selection
    def take_step(self, r: Roles, index, node, axis: int):
        """Segments after picking one time step (``index`` in positions, None when dynamic)."""
        key = node.name or node.output[0]
        return tuple(replace(s, step=("index", index, key)) if s.step is None else s for s in r.segs)

    def _norm_index(self, i, dim):
        """A step index as 0.. from the start, or -1 for the last step (which wins for a one-step sequence)."""
        if i is None:
            return None
        if isinstance(dim, int):
            pos = i + dim if i < 0 else i
            if pos == dim - 1:
                return -1
            return pos if pos >= 0 else i
        if i < 0 and dim is not None and _equal(dim, -i):
            return 0
        return i

    def op_Gather(self, node, ins):
        r, idx_roles = ins[0], ins[1] if len(ins) > 1 else None
        if r is None or idx_roles is not None:
            return None
        x = self.shape(node.input[0])
        axis = _norm(_attr(node, "axis", 0), r.rank)
        if axis is None:
            return None
        idx = self.ints(node.input[1])
        ishape = self.shape(node.input[1])
        if ishape is None:
            return None
        scalar = len(ishape) == 0
        ax = r.axes[axis]
        dim = x[axis] if x is not None and len(x) == r.rank else None
        segs = r.segs
        if ax.parts == (TIME,):
            if idx is not None and len(idx) == 1:
                segs = self.take_step(r, self._norm_index(idx[0], dim), node, axis)
            elif idx is None and (scalar or (len(ishape) == 1 and _is_one(ishape[0]))):
                segs = self.take_step(r, None, node, axis)
        elif ax.parts == (DIRECTION,):
            if idx is None:
                return None
            try:
                segs = tuple(r.segs[i] for i in idx)
            except IndexError:
                return None
        axes = list(r.axes)
        if scalar:
            del axes[axis]
        elif len(ishape) == 1:
            pass
        else:
            axes[axis : axis + 1] = [Axis() for _ in ishape]
        return [replace(r, axes=tuple(axes), segs=segs)]

    def op_Slice(self, node, ins):
        r = ins[0]
        x = self.shape(node.input[0])
        if x is None or len(x) != r.rank:
            return None
        if len(node.input) >= 3:
            starts, ends = self.ints(node.input[1]), self.ints(node.input[2])
            axes = self.ints(node.input[3]) if len(node.input) > 3 and node.input[3] else None
            steps = self.ints(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        else:
            starts, ends, axes, steps = _attr(node, "starts"), _attr(node, "ends"), _attr(node, "axes"), None
        if starts is None or ends is None:
            return None
        axes = list(axes) if axes is not None else list(range(len(starts)))
        steps = list(steps) if steps is not None else [1] * len(starts)
        out = r
        for a, s, e, st in zip(axes, starts, ends, steps):
            a = _norm(a, r.rank)
            if a is None:
                return None
            out = self.slice_axis(node, out, a, s, e, st, x[a])
            if out is None:
                return None
            if isinstance(x[a], int):
                self.learn(node.output[0], a, len(range(x[a])[slice(s, e, st)]))
        return [out]

    def slice_axis(self, node, r, a, s, e, st, dim):
        ax = r.axes[a]
        full_fwd = st == 1 and s == 0 and (e >= _BIG or (isinstance(dim, int) and e >= dim))
        if full_fwd:
            return r
        if ax.parts == (TIME,):
            if st == -1 and s in (-1,) + ((dim - 1,) if isinstance(dim, int) else ()) or (st == -1 and s >= _BIG):
                if e <= -_BIG or e == -1 - (dim if isinstance(dim, int) else _BIG):
                    return replace(r, segs=_flip(r.segs))
                return replace(r, segs=self.take_step(r, 10**9, node, a))  # a reversed window: not step 0
            if st == 1:
                one = None
                if s == 0 and e == 1:
                    one = 0
                elif s == -1 and e >= _BIG:
                    one = -1
                elif isinstance(dim, int):
                    lo = s + dim if s < 0 else s
                    hi = min(e + dim if e < 0 else e, dim)
                    if hi - lo == 1:
                        one = self._norm_index(lo, dim)
                if one is not None:
                    return replace(r, segs=self.take_step(r, one, node, a))
            return r
        if ax.parts == (DIRECTION,) and isinstance(dim, int):
            picked = tuple(r.segs[slice(s, e, st)]) if len(r.segs) == dim else None
            return replace(r, segs=picked) if picked else None
        if ax.role == HIDDEN and st == 1 and not r.has_direction_axis:
            widths = [sg.width for sg in r.segs]
            if all(isinstance(w, int) for w in widths) and isinstance(dim, int) and sum(widths) == dim:
                lo = s + dim if s < 0 else min(s, dim)
                hi = min(e + dim if e < 0 else e, dim)
                picked, pos = [], 0
                for sg in r.segs:
                    if pos < hi and pos + sg.width > lo:
                        picked.append(sg if lo <= pos and pos + sg.width <= hi else replace(sg, width=min(hi, pos + sg.width) - max(lo, pos)))
                    pos += sg.width
                part = (HIDDEN,) if len(picked) <= 1 else ax.parts
                return replace(r, segs=tuple(picked), axes=tuple(Axis(part, (hi - lo,)) if k == a else x for k, x in enumerate(r.axes)))
        return r

    def op_Split(self, node, ins):
        r = ins[0]
        x = self.shape(node.input[0])
        if x is None or len(x) != r.rank:
            return None
        a = _norm(_attr(node, "axis", 0), r.rank)
        if a is None:
            return None
        sizes = _attr(node, "split")
        if sizes is None and len(node.input) > 1 and node.input[1]:
            sizes = self.ints(node.input[1])
        n = len([o for o in node.output])
        if sizes is None and isinstance(x[a], int) and x[a] % n == 0:
            sizes = [x[a] // n] * n
        if sizes is None:
            return [r if r.axes[a].role not in (TIME, DIRECTION, HIDDEN) else None for _ in node.output]
        outs, pos = [], 0
        for size in sizes:
            o = self.slice_axis(node, r, a, pos, pos + size, 1, x[a])
            pos += size
            if o is not None and r.axes[a].parts == (TIME,):
                o = r if size != 1 else o
            outs.append(o)
        return outs

    # ----------------------------------------------------------- combine
    def op_Concat(self, node, ins):
        y = self.shape(node.output[0])
        if y is None:
            return None
        axis = _norm(_attr(node, "axis", 0), len(y))
        if axis is None:
            return None
        tracked = [r for r in ins if r is not None]
        if len(tracked) == len(ins) and len(ins) >= 2:
            restack = self.restack(node, ins, axis)
            if restack is not None:
                return [restack]
        first = tracked[0]
        if any(r.rank != len(y) for r in tracked):
            return None
        label = first.axes[axis]
        axes = []
        for k in range(len(y)):
            if k == axis:
                continue
            labels = {r.axes[k].parts for r in tracked}
            axes.append(first.axes[k] if len(labels) == 1 else Axis())
        if label.parts == (DIRECTION,) or label.role == HIDDEN:
            if label.role == HIDDEN and any(r.has_direction_axis for r in tracked):
                return None
            segs = []
            for r, t in zip(ins, node.input):
                if r is not None and (r.axes[axis].parts == (DIRECTION,) or r.axes[axis].role == HIDDEN):
                    segs.extend(r.segs)
                else:
                    s = self.shape(t)
                    segs.append(Seg(None, "?", s[axis] if s is not None and len(s) == len(y) else None))
            new = Axis((DIRECTION,), (y[axis],)) if label.parts == (DIRECTION,) else Axis((DIRECTION, HIDDEN) if len(segs) > 1 else (HIDDEN,), (y[axis],))
            axes.insert(axis, new)
            pure = all(r is not None and r.pure for r in ins)
            return [Roles(tuple(axes), tuple(segs), first.source, pure, first.projected)]
        return None

    def restack(self, node, ins, axis):
        """Per-step tensors (Gather step t ... Unsqueeze) concatenated back along a new time axis."""
        steps = []
        for r, t in zip(ins, node.input):
            s = self.shape(t)
            if s is None or len(s) != r.rank or not _is_one(s[axis]) or r.axes[axis].parts:
                return None
            marks = {sg.step for sg in r.segs if sg.source is not None}
            if len(marks) != 1:
                return None
            (mark,) = marks
            if mark is None or mark[0] != "index" or mark[1] is None:
                return None
            steps.append(mark[1])
        n = len(steps)
        norm = [k if k >= 0 else k + n for k in steps]
        if norm != list(range(n)) and norm != list(range(n - 1, -1, -1)):
            return None
        first = ins[0]
        if any(r.axes[:axis] + r.axes[axis + 1 :] != first.axes[:axis] + first.axes[axis + 1 :] for r in ins):
            return None
        y = self.shape(node.output[0])
        axes = list(first.axes)
        axes[axis] = Axis((TIME,), (y[axis],))
        segs = tuple(replace(sg, step=None) if sg.source is not None else sg for sg in first.segs)
        if norm != list(range(n)):
            segs = _flip(segs)
        return replace(first, axes=tuple(axes), segs=segs)

    def op_MatMul(self, node, ins):
        a, b = ins[0], ins[1] if len(ins) > 1 else None
        y = self.shape(node.output[0])
        if y is None:
            return None
        if a is not None and b is None:
            if a.rank < 2 or len(y) < a.rank:
                return None
            last = a.axes[-1]
            axes = (Axis(),) * (len(y) - a.rank) + a.axes[:-1] + (Axis((FEATURE,), (y[-1],)),)
            projected = a.projected or (node.name or node.output[0]) if last.has(HIDDEN) else a.projected
            return [replace(a, axes=axes, pure=False, projected=projected)]
        if b is not None and b.rank >= 2:
            # weights (or keys) applied to the sequence: B's second-last axis is contracted
            contracted = b.axes[-2]
            segs = b.segs
            if contracted.parts == (TIME,):
                segs = tuple(replace(s, step=("pooled",)) if s.step is None else s for s in b.segs)
            lead = b.axes[:-2]
            row = a.axes[-2] if a is not None and a.rank >= 2 else Axis()
            axes = (Axis(),) * (len(y) - len(lead) - 2) + lead + (row, b.axes[-1])
            return [Roles(axes, segs, b.source, False, b.projected)]
        return None

    def op_Gemm(self, node, ins):
        a = ins[0]
        if a is None or a.rank != 2 or any(r is not None for r in ins[1:]):
            return None
        ta = _attr(node, "transA", 0)
        rows, k = (a.axes[1], a.axes[0]) if ta else (a.axes[0], a.axes[1])
        y = self.shape(node.output[0])
        n = y[1] if y is not None and len(y) == 2 else None
        projected = a.projected or (node.name or node.output[0]) if k.has(HIDDEN) else a.projected
        return [replace(a, axes=(rows, Axis((FEATURE,), (n,))), pure=False, projected=projected)]

    def op_reduce(self, node, ins):
        r = ins[0]
        axes = reduce_axes(node, r.rank, self)
        if axes is None:
            return None
        keep = _attr(node, "keepdims", 1)
        segs = r.segs
        if any(r.axes[k].parts == (TIME,) for k in axes):
            segs = tuple(replace(s, step=("pooled",)) if s.step is None else s for s in r.segs)
        new = tuple(Axis() if k in axes else a for k, a in enumerate(r.axes)) if keep else tuple(a for k, a in enumerate(r.axes) if k not in axes)
        return [replace(r, axes=new, segs=segs, pure=False)]

    def op_Expand(self, node, ins):
        r = ins[0]
        y = self.shape(node.output[0])
        x = self.shape(node.input[0])
        if r is None or y is None or x is None or len(y) != r.rank:
            return None
        return [replace(r, axes=tuple(a if not (_is_one(x[k]) and not _is_one(y[k])) else Axis() for k, a in enumerate(r.axes)))]


def _flip(segs):
    """Segments once the time axis is read backwards: a forward scan becomes a backward one."""
    swap = {"forward": "reverse", "reverse": "forward"}
    return tuple(replace(s, direction=swap.get(s.direction, s.direction)) if s.step is None else s for s in segs)


def reduce_axes(node, rank, walker) -> set | None:
    """Normalised axes a Reduce* node reduces (every axis when none are given)."""
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = walker.ints(node.input[1])
        if axes is None:
            return None
    if not axes:
        if _attr(node, "noop_with_empty_axes", 0):
            return set()
        return set(range(rank))
    out = {_norm(a, rank) for a in axes}
    return None if None in out else out


def is_mixed(axis: Axis, before: Roles) -> bool:
    """Directions merged with batch or time, or samples merged into the features."""
    parts = set(axis.parts)
    if DIRECTION in parts and before.n_directions > 1 and parts & {BATCH, TIME}:
        return True
    return BATCH in parts and bool(parts & {HIDDEN, FEATURE, DIRECTION})
