"""Axis roles: what each axis of each tensor *is* (batch, time, channel, ...).

Shape inference says how long an axis is; this analysis says what it holds.
Each axis of each tensor gets an :class:`AxisRole`: one of :data:`ROLES`, or
unknown, or for an axis that a Reshape/Flatten built from several axes the
tuple of their roles in memory order (``(channel, spatial, spatial)`` after
``(N, C, H, W) -> (N, C*H*W)``).  A reshape that regroups axes without
aligning with them (``(N, C, H, W) -> (N, H*W, C)`` with no Transpose) gives
axes marked ``mixed``: each of them holds pieces of channels *and* positions.

Where roles come from (the seeds):

* graph-input ``dim_param`` names (``batch``, ``seq_len``, ``frames``, ...);
* Conv/ConvTranspose outputs (axis 1 is channels, the conv's own);
* recurrent ops' outputs (``Y`` is ``[time, direction, batch, feature]`` for
  ``layout=0``), MatMul/Gemm against a weight (the last axis is features),
  embedding lookups;
* *interpretations* (hints): what a consumer reads an axis as: LSTM ``X`` by
  ``layout``, Conv/Pool ``X`` axis 1 as channels, the axis an unrolled
  recurrence slices step by step as time, axis 1 of a rank-5 ``(batch, ?,
  ...)`` input as the frames of a clip.  Hints are carried backward through
  role-preserving ops and only fill axes nothing else explains; two readers
  that disagree leave the axis unknown, and a hint that contradicts the
  evidence on a tensor is dropped for that tensor.  ``analyse(...,
  hints=False)`` gives the evidence alone, for rules that compare it with
  what an op reads.

Roles then flow forward, in topological order, through Transpose,
Reshape/Flatten/Squeeze/Unsqueeze (axes matched by symbolic products), Gather,
Slice, Split, Concat, elementwise/broadcasting ops, MatMul/Gemm/Einsum,
normalisations, pooling and reductions.  Anything else gives unknown roles:
unknown is fine, wrong is not.  The whole analysis is one backward and one
forward pass (plus bounded walks to recognise unrolled recurrences).

Recurrences are found in four forms (:class:`Recurrence`): LSTM/GRU/RNN ops;
unrolled cells (Keras 3 on torch, traced Python loops over ``nn.GRUCell``:
one axis read step by step with constant Gather/Slice/Split, each step's
pre-activation sum depending on the previous step through Sigmoid/Tanh; a
single step counts when it is added to a state times a weight before a
Tanh); Scan (its scan axes); Loop (an outer tensor gathered by the iteration
number).  Per-step results stacked back with Concat take the recurrence's
time axis.

Limitations: recurrences inside If/Loop bodies and model-local functions,
contrib ops (``com.microsoft`` fused LSTMs), Loops that read their steps with
Slice or dynamic indices, and steps read with computed (non-constant)
indices are not recognised.  Axes whose sizes cannot be matched
symbolically (unknown dims) stay unknown.

>>> import onnx.parser
>>> from shapelint.graph import ModelGraph
>>> from shapelint.infer import infer
>>> m = onnx.parser.parse_model('''
... <ir_version: 8, opset_import: ["" : 17]>
... g (float[batch, 3, 8, 8] x, float[6, 3, 3, 3] w) => (y) {
...   f = Conv <pads = [1, 1, 1, 1]> (x, w)
...   s = Constant <value = int64[3] {0, 64, 6}> ()
...   y = Reshape(f, s)
... }''')
>>> mg = ModelGraph.from_model(m)
>>> roles = analyse(mg, infer(mg))
>>> roles.describe("f")
'(batch, channel, spatial, spatial)'
>>> roles.describe("y")
'(batch, mixed(channel*spatial*spatial), mixed(channel*spatial*spatial))'
"""

from __future__ import annotations

import functools
import logging
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import onnx
import sympy

from .dims import Dim, Relation, compare, format_shape, is_named, mul, product, ratio
from .graph import ModelGraph
from .infer import ShapeTable

__all__ = [
    "ROLES",
    "AxisRole",
    "Recurrence",
    "AxisRoles",
    "analyse",
    "roles_for",
    "recurrences_for",
    "role_of_dim_name",
    "align_axes",
    "regroup",
    "find_recurrences",
    "format_roles",
    "UNKNOWN_ROLE",
]

logger = logging.getLogger(__name__)

ROLES = ("batch", "time", "channel", "spatial", "feature", "direction")
_SINGULAR = ("batch", "time")  # never split into pieces or filled twice by a hint (attention scores do hold two times)


@dataclass(frozen=True)
class AxisRole:
    """What one axis holds.

    ``parts`` has one entry per source axis, in memory order (one entry for a
    plain axis); an entry is a name from :data:`ROLES` or None (unknown).
    ``mixed`` marks an axis made by a reshape that does not align with the
    axes it came from.  ``origin`` is the tensor where a merged or mixed axis
    was made (its producer is the Reshape/Flatten to blame) and ``sizes`` the
    lengths of the parts, used to split the axis back.

    >>> AxisRole(("channel", "spatial", "spatial")).merged
    True
    >>> str(AxisRole(("batch", "time")))
    'batch*time'
    >>> AxisRole(("time",)).role
    'time'
    """

    parts: tuple = (None,)
    mixed: bool = False
    origin: str | None = field(default=None, compare=False)
    sizes: tuple = field(default=(), compare=False)

    @property
    def role(self) -> str | None:
        """The single role of a plain axis; None for unknown, merged or mixed axes."""
        return self.parts[0] if len(self.parts) == 1 and not self.mixed else None

    @property
    def known(self) -> bool:
        return any(p is not None for p in self.parts)

    @property
    def merged(self) -> bool:
        return len(self.parts) > 1 and not self.mixed

    def has(self, *roles: str) -> bool:
        """True if every one of ``roles`` is among the parts."""
        return all(r in self.parts for r in roles)

    @property
    def folds_time_into_batch(self) -> bool:
        """``batch*time`` (or ``time*batch``): frames folded into the batch, as a TimeDistributed layer does.

        >>> AxisRole(("batch", "time")).folds_time_into_batch
        True
        """
        return not self.mixed and len(self.parts) == 2 and set(self.parts) == {"batch", "time"}

    @property
    def merges_time_into_features(self) -> bool:
        """Time merged with per-step axes: channels, positions, features (``time*channel*spatial*spatial``).

        Unknown axes right after time count as per-step axes (a raw ``(B, T, C, H, W)`` input names
        only its batch and time); an unknown axis *before* time might be the batch.

        >>> AxisRole(("time", "channel")).merges_time_into_features
        True
        >>> AxisRole(("time", None, None)).merges_time_into_features
        True
        >>> AxisRole(("batch", "time")).merges_time_into_features, AxisRole((None, "time")).merges_time_into_features
        (False, False)
        """
        if len(self.parts) < 2 or "time" not in self.parts or "batch" in self.parts or self.parts.count("time") > 1:
            return False
        return self.parts[0] == "time" or any(p in ("channel", "spatial", "feature") for p in self.parts)

    def __str__(self) -> str:
        text = "*".join(p or "?" for p in self.parts)
        return f"mixed({text})" if self.mixed else text


UNKNOWN_ROLE = AxisRole()
_R = {r: AxisRole((r,)) for r in ROLES}


@dataclass(frozen=True, eq=False)
class Recurrence:
    """A recurrence over one axis of ``tensor``.

    ``kind`` is ``op`` (LSTM/GRU/RNN, ``node`` is the op), ``unrolled``
    (``node`` reads the first step), ``scan`` or ``loop`` (``node`` is the
    Scan/Loop).  Axes are None when the form does not say.
    """

    kind: str
    node: onnx.NodeProto
    tensor: str
    time_axis: int
    batch_axis: int | None = None
    feature_axis: int | None = None
    steps: int | None = None  # unrolled: how many steps the graph spells out

    def __repr__(self) -> str:
        return (f"Recurrence({self.kind!r}, {self.node.name or self.node.op_type!r}, {self.tensor!r}, "
                f"time_axis={self.time_axis})")

    def describe(self) -> str:
        name = self.node.name or self.node.op_type
        if self.kind == "op":
            return f"{self.node.op_type} {name!r}"
        if self.kind == "unrolled":
            return f"the unrolled recurrence that reads {self.tensor!r} step by step along axis {self.time_axis}"
        return f"{self.node.op_type} {name!r} (iterating over axis {self.time_axis} of {self.tensor!r})"


# ----------------------------------------------------------------- dim names

_NAME_ROLES = {
    "batch": {"batch", "batch_size", "batchsize", "bs", "n", "b", "nbatch", "num_batch", "batch_dim", "n_batch",
              "batches"},
    "time": {"seq", "seq_len", "seqlen", "seq_length", "sequence", "sequence_length", "sequence_len", "time",
             "time_steps", "timesteps", "timestep", "t", "frames", "num_frames", "n_frames", "nframes",
             "frame", "steps", "num_steps", "n_steps", "src_len", "tgt_len", "src_seq_len", "tgt_seq_len",
             "max_len", "max_seq_len", "tokens", "num_tokens", "audio_len", "n_time"},
    "channel": {"channels", "num_channels", "n_channels", "in_channels"},
    "spatial": {"height", "width", "image_height", "image_width", "img_h", "img_w"},
}
_NAME_INDEX = {name: role for role, names in _NAME_ROLES.items() for name in names}
_SPLIT = re.compile(r"[^a-z0-9]+")


def role_of_dim_name(name: str) -> str | None:
    """The role a ``dim_param`` name declares, or None.  Conservative on purpose.

    >>> role_of_dim_name("batch_size"), role_of_dim_name("seq_len"), role_of_dim_name("N")
    ('batch', 'time', 'batch')
    >>> role_of_dim_name("input_dynamic_axes_1") is None, role_of_dim_name("hidden") is None
    (True, True)
    """
    if not name:
        return None
    if name in ("N", "B", "T"):
        return "batch" if name != "T" else "time"
    key = name.lower()
    if key in ("n", "b", "t"):
        return None  # lower-case single letters are too often something else
    key = _SPLIT.sub("_", key).strip("_")
    return _NAME_INDEX.get(key)


# ----------------------------------------------------------------- alignment


@functools.lru_cache(maxsize=65536)
def _equal_exprs(a, b) -> bool:
    try:
        return sympy.expand(sympy.sympify(a) - sympy.sympify(b)) == 0
    except Exception:  # noqa: BLE001 - sympy corner cases: not proven equal
        return False


def _equal(a: Dim, b: Dim) -> bool:
    """Proven equal (no solving: reshape matching only needs identity)."""
    if a is None or b is None:
        return False
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return a == b or _equal_exprs(a, b)


def _divides(p: Dim, q: Dim) -> bool:
    """True if ``q`` is provably a multiple of ``p`` and larger (so ``p`` is the smaller side)."""
    if isinstance(p, int) and isinstance(q, int):
        return p < q
    if p is None or q is None:
        return False
    return _divides_cached(p, q)


@functools.lru_cache(maxsize=65536)
def _divides_cached(p, q) -> bool:
    try:
        r = ratio(q, p)
    except Exception:  # noqa: BLE001 - sympy corner cases: undecided
        return False
    if r is None or r == 1:
        return False
    num, den = sympy.fraction(r)
    if den != 1 and not (den.is_Integer and num.is_Integer):
        return False
    if r.is_Integer:
        return int(r) > 1
    return bool(r.is_polynomial()) and all(c.is_integer and c > 0 for c in sympy.Poly(r).coeffs())


def _smaller(p: Dim, q: Dim) -> str | None:
    if isinstance(p, int) and isinstance(q, int):
        return "src" if p < q else "dst"
    if _divides(p, q):
        return "src"
    if _divides(q, p):
        return "dst"
    return None


def _align_run(src, dst, a, b):
    """Greedy grouping of axes ``a`` of ``src`` with axes ``b`` of ``dst`` by equal products."""
    groups = []
    i = j = 0
    while i < len(a) and j < len(b):
        gi, gj = [a[i]], [b[j]]
        pi, pj = src[a[i]], dst[b[j]]
        i += 1
        j += 1
        while True:
            if pi is None or pj is None:
                return groups, i - len(gi), j - len(gj)
            if _equal(pi, pj):
                break
            side = _smaller(pi, pj)
            if side == "src" and i < len(a):
                gi.append(a[i])
                pi = mul(pi, src[a[i]])
                i += 1
            elif side == "dst" and j < len(b):
                gj.append(b[j])
                pj = mul(pj, dst[b[j]])
                j += 1
            else:
                return groups, i - len(gi), j - len(gj)
        groups.append((tuple(gi), tuple(gj)))
    return groups, i, j


def align_axes(src, dst) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Match the axes of a reshape: groups of source axes whose product equals a group of target axes.

    Size-1 axes are left out; axes that cannot be matched (unknown or
    undecidable sizes) are in no group.  Matching runs from both ends.

    >>> align_axes((2, 6, 4, 4), (2, 16, 6))
    [((0,), (0,)), ((1, 2, 3), (1, 2))]
    >>> from shapelint.dims import symbol
    >>> b, t = symbol("batch"), symbol("time")
    >>> align_axes((b, t, 3, 8, 8), (b * t, 3, 8, 8))
    [((0, 1), (0,)), ((2,), (1,)), ((3,), (2,)), ((4,), (3,))]
    >>> align_axes((b * t, 128), (b, t, 128))
    [((0,), (0, 1)), ((1,), (2,))]
    >>> w = symbol("w")
    >>> align_axes((b, 32, 8, w), (b, w, 256))  # no run from either end: the rest, equal in product
    [((0,), (0,)), ((1, 2, 3), (1, 2))]
    """
    a = [k for k, d in enumerate(src) if d != 1]
    b = [k for k, d in enumerate(dst) if d != 1]
    front, i, j = _align_run(src, dst, a, b)
    if i == len(a) and j == len(b):
        return front
    rs, rd = list(reversed(a[i:])), list(reversed(b[j:]))
    back, bi, bj = _align_run(src, dst, rs, rd)
    back = [(tuple(reversed(gi)), tuple(reversed(gj))) for gi, gj in reversed(back)]
    # what neither end matched is one group when its products are provably equal: (C, H, w) -> (w, C*H)
    mid_a, mid_b = a[i:len(a) - bi], b[j:len(b) - bj]
    if mid_a and mid_b:
        pa, pb = product([src[k] for k in mid_a]), product([dst[k] for k in mid_b])
        if pa is not None and pb is not None and compare(pa, pb).relation == Relation.EQUAL:
            return front + [(tuple(mid_a), tuple(mid_b))] + back
    return front + back


def _named_only(d: Dim) -> bool:
    """An int, or an expression of declared symbols only (no ``unk__N`` that might hide any value)."""
    return d is not None and (isinstance(d, int) or all(is_named(s) for s in d.free_symbols))


# ----------------------------------------------------------------- the analysis

_PASS = set(
    "Relu Sigmoid Tanh Neg Abs Exp Log Sqrt Reciprocal Floor Ceil Round Erf Sin Cos Tan Asin Acos Atan Sinh Cosh "
    "Asinh Acosh Atanh LeakyRelu Elu Selu Gelu HardSigmoid HardSwish Softplus Softsign Celu Mish Sign "
    "ThresholdedRelu Shrink Clip LpNormalization MeanVarianceNormalization Trilu CumSum Swish IsNaN IsInf Not "
    "Identity Cast CastLike Dropout Softmax LogSoftmax Hardmax BatchNormalization InstanceNormalization "
    "GroupNormalization LRN LayerNormalization RMSNormalization SimplifiedLayerNormalization QuantizeLinear "
    "DequantizeLinear DynamicQuantizeLinear Pad Resize Upsample Slice TopK Sort GatherElements ScatterElements "
    "ScatterND Scatter ReverseSequence BitwiseNot".split()
)
_ELEMENTWISE = set(
    "Add Sub Mul Div Pow Mod Max Min Sum Mean Equal Less Greater LessOrEqual GreaterOrEqual And Or Xor "
    "BitShift BitwiseAnd BitwiseOr BitwiseXor PRelu Where".split()
)
_CONV = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "DeformConv"}
_POOL = {"MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "MaxRoiPool",
         "MaxUnpool"}
_REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
           "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin"}
_RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}
_RECURRENT = {"LSTM", "GRU", "RNN"}
# ops that give an output axis a role even when no input axis has one (see _forward_node)
_SOURCES = _CONV | _RECURRENT | {"MatMul", "MatMulInteger", "FusedMatMul", "Gemm", "Gather", "Concat", "Einsum"}
_SIZE_OPS = {"Shape", "Size", "ConstantOfShape", "EyeLike"}  # read only sizes: no data flows through them
_GATES = {"Sigmoid", "Tanh", "HardSigmoid"}
# ops a step's value goes through before its gate activation in an unrolled cell
_CELL_LINEAR = {"MatMul", "Gemm", "Add", "Sub", "Cast", "Identity", "Concat", "Split", "Slice", "Squeeze",
                "Unsqueeze", "Reshape", "Transpose", "Gather", "Flatten"}


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class AxisRoles:
    """The roles of every main-graph tensor; build with :func:`analyse`.

    ``hints=False`` keeps only evidence (names, conv/recurrent/dense outputs)
    and never what a consumer reads an axis as; rules that report a clash
    between the two (batch and time swapped, time used as channels) compare
    that evidence with the consumer's reading.
    """

    #: skip nodes none of whose inputs has a role (tests turn it off to check it changes nothing)
    skip_unreached = True

    def __init__(self, graph: ModelGraph, table: ShapeTable, hints: bool = True):
        self.graph = graph
        self.table = table
        self.use_hints = hints
        self.roles: dict[str, tuple[AxisRole, ...]] = {}
        self.hints: dict[str, list] = {}
        self.recurrences: list[Recurrence] = _recurrences_cached(graph, table)
        self._weights: dict[str, bool] = {}
        self._feeding: set[str] | None = None
        self._after_cache: dict[int, set[str]] = {}
        if hints:
            self._backward()
        self._forward()

    # ------------------------------------------------------------ queries
    def of(self, tensor: str) -> tuple[AxisRole, ...] | None:
        """Per-axis roles of ``tensor``; None when even its rank is unknown."""
        got = self.roles.get(tensor)
        if got is not None:
            return got
        shape = self.table.shape(tensor)
        return None if shape is None else (UNKNOWN_ROLE,) * len(shape)

    def axis(self, tensor: str, axis: int) -> AxisRole:
        r = self.of(tensor)
        if r is None or not -len(r) <= axis < len(r):
            return UNKNOWN_ROLE
        return r[axis]

    def find(self, tensor: str, role: str) -> int | None:
        """The axis whose (plain) role is ``role``, if exactly one."""
        r = self.of(tensor) or ()
        hits = [k for k, a in enumerate(r) if a.role == role]
        return hits[0] if len(hits) == 1 else None

    def describe(self, tensor: str) -> str:
        """``(batch, time, channel*spatial*spatial)``; ``?`` for unknown axes."""
        r = self.of(tensor)
        if r is None:
            return "(?)"
        return "(" + ", ".join(str(a) for a in r) + ("," if len(r) == 1 else "") + ")"

    def labelled(self, tensor: str) -> str:
        """The shape and what its axes hold: ``(batch, 6, 4, 4) [batch, channel, spatial, spatial]``."""
        shape = self._shape(tensor)
        text = "(?)" if shape is None else format_shape(shape)
        r = self.of(tensor)
        if r is None or not any(a.known for a in r):
            return text
        return f"{text} [{self.describe(tensor)[1:-1]}]"

    def recurrences_reading(self, tensor: str) -> list[Recurrence]:
        return [rc for rc in self.recurrences if rc.tensor == tensor]

    def reaches_recurrence(self, tensor: str) -> bool:
        """True if some recurrence reads ``tensor`` or a tensor computed from it."""
        if self._feeding is None:
            seen: set[str] = set()
            stack = [rc.tensor for rc in self.recurrences]
            while stack:
                t = stack.pop()
                if t in seen:
                    continue
                seen.add(t)
                p = self.graph.producer(t)
                if p is not None and p.op_type not in _SIZE_OPS:
                    stack.extend(i for i in p.input if i and i not in seen)
            self._feeding = seen
        return tensor in self._feeding

    # ------------------------------------------------------------ helpers
    def _shape(self, t: str):
        return self.table.shape(t) if t else None

    def is_weight(self, t: str) -> bool:
        """An initializer or constant, possibly through Transpose/Cast/Dequantize/Reshape."""
        if t in self._weights:
            return self._weights[t]
        self._weights[t] = False
        g = self.graph
        out = False
        if g.initializer(t) is not None:
            out = True
        else:
            p = g.producer(t)
            if p is not None:
                if p.op_type == "Constant":
                    out = True
                elif p.op_type in ("Transpose", "Cast", "Identity", "DequantizeLinear", "Reshape", "Unsqueeze",
                                   "Squeeze", "Flatten"):
                    out = bool(p.input) and self.is_weight(p.input[0])
            elif not g.is_graph_input(t) and self.table.get(t).const is not None:
                out = True
        self._weights[t] = out
        return out

    def _axes_input(self, node, idx: int, attr: str):
        """Axes from an attribute (old opsets) or a constant input."""
        v = _attr(node, attr)
        if v is not None:
            return [int(x) for x in v]
        if len(node.input) > idx and node.input[idx]:
            c = self.graph.const(node.input[idx])
            if c is None:
                c = self.table.get(node.input[idx]).const
            if c is None:
                return None
            return [int(x) for x in c.reshape(-1)]
        return []

    # ------------------------------------------------------------ hints (backward)
    def _hint(self, t: str, hint, *, seed: bool = False) -> None:
        shape = self._shape(t)
        if not t or shape is None or len(hint) != len(shape):
            return
        if not seed and self.graph.initializer(t) is not None:
            return
        old = self.hints.get(t)
        if old is None:
            self.hints[t] = list(hint)
            return
        for k, h in enumerate(hint):
            if h is None:
                continue
            if old[k] is None:
                old[k] = h
            elif old[k] != h:
                old[k] = "!"  # two consumers disagree: sticky unknown

    def _seed_hints(self) -> None:
        for rc in self.recurrences:
            shape = self._shape(rc.tensor)
            axes = [a for a in (rc.time_axis, rc.batch_axis, rc.feature_axis) if a is not None]
            if shape is None or any(not -len(shape) <= a < len(shape) for a in axes):
                continue  # a malformed graph: no hint rather than a crash
            h = [None] * len(shape)
            h[rc.time_axis] = "time"
            if rc.batch_axis is not None:
                h[rc.batch_axis] = "batch"
            if rc.feature_axis is not None:
                h[rc.feature_axis] = "feature"
            self._hint(rc.tensor, h, seed=True)
            if rc.kind == "op":
                layout = _attr(rc.node, "layout", 0)
                for i in (5, 6):
                    if len(rc.node.input) > i and rc.node.input[i]:
                        self._hint(rc.node.input[i], ["batch", "direction", "feature"] if layout else
                                   ["direction", "batch", "feature"], seed=True)
        for vi in self.graph.graph.input:
            shape = self._shape(vi.name)
            if self.graph.initializer(vi.name) is not None or shape is None or len(shape) != 5:
                continue
            dims = vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else []
            names = [d.dim_param if d.HasField("dim_param") else "" for d in dims]
            if len(names) == 5 and role_of_dim_name(names[0]) == "batch" and role_of_dim_name(names[1]) is None:
                # a rank-5 (batch, ?, ...) input is a clip of frames unless a Conv3d reads axis 1 as channels
                self._hint(vi.name, [None, "time", None, None, None], seed=True)
        for node in self.graph.nodes:
            op = node.op_type
            if (op in _CONV or op in _POOL or op in ("BatchNormalization", "InstanceNormalization", "LRN")) and node.input:
                shape = self._shape(node.input[0])
                if shape is not None and len(shape) >= 3:
                    h = [None, "channel"] + [None] * (len(shape) - 2)
                    if len(shape) == 4 and op not in ("BatchNormalization", "InstanceNormalization", "LRN"):
                        h[2] = h[3] = "spatial"
                    elif len(shape) == 5 and op not in ("BatchNormalization", "InstanceNormalization", "LRN"):
                        h[3] = h[4] = "spatial"
                    self._hint(node.input[0], h, seed=True)

    def _backward(self) -> None:
        self._seed_hints()
        for node in reversed(self.graph.topological_order()):
            outs = [self.hints.get(o) for o in node.output]
            if not any(outs):
                continue
            try:
                self._back_node(node, outs)
            except Exception:  # noqa: BLE001 - an odd node only loses hints
                logger.debug("role hints through %s %r failed", node.op_type, node.name, exc_info=True)

    def _back_node(self, node, outs) -> None:
        op = node.op_type
        h = outs[0]
        if op in _PASS:
            if h is not None and node.input:
                self._hint(node.input[0], h)
            return
        if op in _ELEMENTWISE and h is not None:
            out_shape = self._shape(node.output[0])
            for t in node.input:
                s = self._shape(t)
                if s is None or out_shape is None or len(s) != len(out_shape) or self.is_weight(t):
                    continue
                hint = [x if _equal(d, o) else None for x, d, o in zip(h, s, out_shape)]
                self._hint(t, hint)
            return
        if op == "Transpose" and h is not None:
            perm = _attr(node, "perm") or list(range(len(h)))[::-1]
            if len(perm) == len(h):
                back = [None] * len(h)
                for k, p in enumerate(perm):
                    back[p] = h[k]
                self._hint(node.input[0], back)
            return
        if op == "Concat" and h is not None:
            for t in node.input:
                self._hint(t, h)
            return
        if op == "Split":
            merged = None
            for o in outs:
                if o is None:
                    continue
                merged = list(o) if merged is None else [a if a == b else None for a, b in zip(merged, o)]
            if merged is not None:
                self._hint(node.input[0], merged)
            return
        if op == "MatMul" and h is not None and len(node.input) == 2:
            a, b = self._shape(node.input[0]), self._shape(node.input[1])
            if a is None or b is None or len(a) < 2 or len(b) < 2:
                return
            if self.is_weight(node.input[1]) and len(a) == len(h):
                self._hint(node.input[0], list(h[:-1]) + [None])
            return
        if op in _RESHAPES and h is not None and node.input:
            src, dst = self._shape(node.input[0]), self._shape(node.output[0])
            if src is None or dst is None:
                return
            back = [None] * len(src)
            for gi, gj in align_axes(src, dst):
                if len(gi) == 1 and len(gj) == 1:
                    back[gi[0]] = h[gj[0]]
            self._hint(node.input[0], back)

    def _apply_hint(self, t: str, roles: tuple[AxisRole, ...]) -> tuple[AxisRole, ...]:
        h = self.hints.get(t)
        if h is None or len(h) != len(roles):
            return roles
        present = {a.role for a in roles if a.role in _SINGULAR}
        for a, x in zip(roles, h):
            if x in (None, "!"):
                continue
            if a.role is not None and a.role != x:
                return roles  # contradicts the evidence: ignore the hint here
            if a.role is None and a.known and x in _SINGULAR and x not in a.parts:
                return roles  # a merged or mixed axis read as a time axis it does not hold
            if not a.known and x in present:
                return roles
        return tuple(_R[x] if (not a.known and x not in (None, "!")) else a for a, x in zip(roles, h))

    # ------------------------------------------------------------ forward
    def _forward(self) -> None:
        g = self.graph
        for vi in g.graph.input:
            if g.initializer(vi.name) is not None:
                continue
            shape = self._shape(vi.name)
            if shape is None:
                continue
            declared = []
            dims = vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else []
            for k in range(len(shape)):
                name = dims[k].dim_param if k < len(dims) and dims[k].HasField("dim_param") else ""
                role = role_of_dim_name(name)
                declared.append(_R[role] if role else UNKNOWN_ROLE)
            if sum(1 for a in declared if a.role == "batch") > 1 or sum(1 for a in declared if a.role == "time") > 1:
                declared = [UNKNOWN_ROLE] * len(shape)
            roles = tuple(declared)
            if self.use_hints:
                roles = self._apply_hint(vi.name, roles)
            self.roles[vi.name] = roles
        roles, hints = self.roles, self.hints if self.use_hints else {}
        for node in g.topological_order():
            if self.skip_unreached and node.op_type not in _SOURCES and not any(t in roles for t in node.input):
                # no input has a known role and the op makes none: only a hint can give its outputs one
                # (Constant nodes and shape arithmetic, about half of an exported transformer)
                if not any(o in hints for o in node.output):
                    continue
                outs = None
            else:
                try:
                    outs = self._forward_node(node)
                except Exception:  # noqa: BLE001 - an odd node only loses roles
                    logger.debug("roles through %s %r failed", node.op_type, node.name, exc_info=True)
                    outs = None
            for k, o in enumerate(node.output):
                if not o:
                    continue
                shape = self._shape(o)
                if shape is None:
                    continue
                r = outs[k] if outs is not None and k < len(outs) else None
                if r is None or len(r) != len(shape):
                    r = (UNKNOWN_ROLE,) * len(shape)
                r = tuple(r)
                if self.use_hints:
                    r = self._apply_hint(o, r)
                if any(a.known for a in r):
                    self.roles[o] = r

    def _in(self, node, i: int) -> tuple[AxisRole, ...] | None:
        if len(node.input) <= i or not node.input[i]:
            return None
        return self.of(node.input[i])

    def _forward_node(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx") and op not in ("Gelu", "FastGelu", "SimplifiedLayerNormalization"):
            return None
        x = self._in(node, 0)
        n_out = len(node.output)
        if op in _PASS:
            return [x] * n_out if x is not None else None
        if op in _ELEMENTWISE:
            return [self._broadcast(node.input, node.output[0])]
        if op == "Transpose":
            if x is None:
                return None
            perm = _attr(node, "perm") or list(range(len(x)))[::-1]
            return [tuple(x[p] for p in perm)] if len(perm) == len(x) else None
        if op in _RESHAPES:
            return [self._reshape(node, x)]
        if op in _CONV:
            return [self._conv(node, x)]
        if op in _POOL:
            return [x] * n_out if x is not None else None
        if op in _REDUCE:
            return [self._reduce(node, x)]
        if op in _RECURRENT:
            return self._recurrent(node, x)
        if op in ("MatMul", "MatMulInteger", "FusedMatMul"):
            return [self._matmul(node)]
        if op == "Gemm":
            return [self._gemm(node)]
        if op == "Gather":
            return [self._gather(node, x)]
        if op == "Split":
            return [x] * n_out if x is not None else None
        if op == "Concat":
            return [self._concat(node)]
        if op in ("Expand", "Tile"):
            return [self._expand(node, x)]
        if op == "Einsum":
            return [self._einsum(node)]
        if op in ("DepthToSpace", "SpaceToDepth") and x is not None:
            return [(x[0],) + (UNKNOWN_ROLE,) * (len(x) - 1)]
        return None

    # -- op families
    def _broadcast(self, inputs: Iterable[str], out: str):
        out_shape = self._shape(out)
        if out_shape is None:
            return None
        rank = len(out_shape)
        result = []
        for k in range(rank):
            found: AxisRole | None = None
            clash = False
            for t in inputs:
                s, r = self._shape(t), self.of(t) if t else None
                if not t or s is None or r is None:
                    continue
                j = k - (rank - len(s))
                if j < 0 or s[j] == 1:
                    continue
                a = r[j]
                if not a.known:
                    continue
                if found is None:
                    found = a
                elif found != a:
                    clash = True
            result.append(UNKNOWN_ROLE if clash or found is None else found)
        return tuple(result)

    def _reshape(self, node, x):
        out = node.output[0]
        src, dst = self._shape(node.input[0]), self._shape(out)
        if x is None or src is None or dst is None or len(src) != len(x):
            return None
        op = node.op_type
        if op in ("Squeeze", "Unsqueeze"):
            axes = self._axes_input(node, 1, "axes")
            if axes is not None and (axes or op == "Squeeze"):
                if op == "Squeeze":
                    if not axes:
                        axes = [k for k, d in enumerate(src) if d == 1]
                    axes = {a + len(src) if a < 0 else a for a in axes}
                    if len(src) - len(axes) == len(dst):
                        return tuple(a for k, a in enumerate(x) if k not in axes)
                else:
                    axes = sorted(a + len(dst) if a < 0 else a for a in axes)
                    valid = len(set(axes)) == len(axes) and all(0 <= a < len(dst) for a in axes)
                    if valid and len(src) + len(axes) == len(dst) and len(x) == len(src):
                        it = iter(x)
                        return tuple(UNKNOWN_ROLE if k in axes else next(it) for k in range(len(dst)))
        result = [UNKNOWN_ROLE] * len(dst)
        for gi, gj in align_axes(src, dst):
            if len(gi) == 1 and len(gj) == 1:
                result[gj[0]] = x[gi[0]]
                continue
            got = regroup([x[k] for k in gi], [src[k] for k in gi], [dst[k] for k in gj], out)
            for k, r in zip(gj, got):
                result[k] = r
        return tuple(result)

    def _conv(self, node, x):
        shape = self._shape(node.output[0])
        if shape is None or len(shape) < 3:
            return None
        rank = len(shape)
        out = [UNKNOWN_ROLE] * rank
        if x is not None and len(x) == rank:
            out[0] = x[0]
            for k in range(2, rank):
                out[k] = x[k]
        out[1] = _R["channel"]
        for k in range(2, rank):
            if not out[k].known and (rank == 4 or (rank == 5 and k >= 3)):
                out[k] = _R["spatial"]
        return tuple(out)

    def _reduce(self, node, x):
        if x is None:
            return None
        keep = _attr(node, "keepdims", 1)
        if node.op_type in ("ArgMax", "ArgMin"):
            axes = [_attr(node, "axis", 0)]
        else:
            axes = self._axes_input(node, 1, "axes")
            if axes is None:
                return None
            if not axes:
                if _attr(node, "noop_with_empty_axes", 0):
                    return x
                axes = list(range(len(x)))
        axes = {a + len(x) if a < 0 else a for a in axes}
        if keep:
            return tuple(UNKNOWN_ROLE if k in axes else a for k, a in enumerate(x))
        return tuple(a for k, a in enumerate(x) if k not in axes)

    def _recurrent(self, node, x):
        layout = _attr(node, "layout", 0)
        t_axis, b_axis = (1, 0) if layout else (0, 1)
        t, b = _R["time"], _R["batch"]
        if x is not None and len(x) == 3:
            present = {a.role for a in x if a.role}
            t = x[t_axis] if x[t_axis].known else (UNKNOWN_ROLE if "time" in present else t)
            b = x[b_axis] if x[b_axis].known else (UNKNOWN_ROLE if "batch" in present else b)
        d, f = _R["direction"], _R["feature"]
        y = (b, t, d, f) if layout else (t, d, b, f)
        yh = (b, d, f) if layout else (d, b, f)
        return [y, yh, yh][: len(node.output)]

    def _matmul(self, node):
        if len(node.input) < 2:
            return None
        a, b = self._in(node, 0), self._in(node, 1)
        sa, sb = self._shape(node.input[0]), self._shape(node.input[1])
        out_shape = self._shape(node.output[0])
        if a is None or b is None or sa is None or sb is None or out_shape is None:
            return None
        n_role = _R["feature"] if self.is_weight(node.input[1]) else (b[-1] if len(b) >= 2 else UNKNOWN_ROLE)
        if len(a) == 1:
            lead = b[:-2]
            tail = (n_role,) if len(b) >= 2 else ()
            return tuple(lead) + tail if len(tuple(lead) + tail) == len(out_shape) else None
        m_role = a[-2]
        if len(b) == 1:
            return tuple(a[:-1])
        lead_a, lead_b = a[:-2], b[:-2]
        rank = len(out_shape) - 2
        lead = []
        for k in range(rank):
            ja, jb = k - (rank - len(lead_a)), k - (rank - len(lead_b))
            ra = lead_a[ja] if ja >= 0 and sa[ja] != 1 else UNKNOWN_ROLE
            rb = lead_b[jb] if jb >= 0 and sb[jb] != 1 else UNKNOWN_ROLE
            if ra.known and rb.known and ra != rb:
                lead.append(UNKNOWN_ROLE)
            else:
                lead.append(ra if ra.known else rb)
        return tuple(lead) + (m_role, n_role)

    def _gemm(self, node):
        a = self._in(node, 0)
        if a is None or len(a) != 2 or len(node.input) < 2:
            return None
        m = a[1] if _attr(node, "transA", 0) else a[0]
        if self.is_weight(node.input[1]):
            n = _R["feature"]
        else:
            b = self._in(node, 1)
            n = (b[0] if _attr(node, "transB", 0) else b[1]) if b is not None and len(b) == 2 else UNKNOWN_ROLE
        return (m, n)

    def _gather(self, node, x):
        if x is None or len(node.input) < 2:
            return None
        axis = _attr(node, "axis", 0)
        axis = axis + len(x) if axis < 0 else axis
        ishape = self._shape(node.input[1])
        if ishape is None or not 0 <= axis < len(x):
            return None
        if self.is_weight(node.input[0]):
            ind = self.of(node.input[1]) or (UNKNOWN_ROLE,) * len(ishape)
            if axis == 0 and len(x) == 2:  # embedding lookup: ids -> (ids..., feature)
                return tuple(ind) + (_R["feature"],)
            return tuple(x[:axis]) + tuple(ind) + tuple(x[axis + 1:])
        if len(ishape) == 0:
            mid: tuple = ()
        elif len(ishape) == 1:
            mid = (x[axis],)
        else:
            mid = (UNKNOWN_ROLE,) * len(ishape)
        return tuple(x[:axis]) + mid + tuple(x[axis + 1:])

    def _concat(self, node):
        out_shape = self._shape(node.output[0])
        if out_shape is None:
            return None
        axis = _attr(node, "axis", 0)
        axis = axis + len(out_shape) if axis < 0 else axis
        ins = [self.of(t) for t in node.input if t]
        if any(r is None or len(r) != len(out_shape) for r in ins):
            return None
        out = []
        for k in range(len(out_shape)):
            known = [r[k] for r in ins if r[k].known]
            if k == axis and len(known) != len(ins):
                out.append(UNKNOWN_ROLE)
            elif known and all(a == known[0] for a in known):
                out.append(known[0])
            else:
                out.append(UNKNOWN_ROLE)
        rc = self._restacks(node, axis)
        if rc is not None:
            t = self.axis(rc.tensor, rc.time_axis)
            out[axis] = t if t.known else _R["time"]
        return tuple(out)

    def _restacks(self, node, axis: int) -> Recurrence | None:
        """The unrolled recurrence whose per-step results this Concat stacks back along ``axis``."""
        if not any(rc.kind == "unrolled" for rc in self.recurrences):
            return None
        pieces = [t for t in node.input if t]
        if len(pieces) < 2 or any((self._shape(t) or (None,) * (axis + 1))[axis] != 1 for t in pieces):
            return None
        for rc in self.recurrences:
            if rc.kind == "unrolled" and rc.steps == len(pieces) and node.output[0] in self._after(rc):
                return rc
        return None

    def _after(self, rc: Recurrence) -> set[str]:
        """Tensors computed from what ``rc`` reads (for an op: from its outputs)."""
        key = id(rc)
        if key not in self._after_cache:
            start = list(rc.node.output) if rc.kind in ("op", "scan", "loop") else [rc.tensor]
            seen, stack = set(), [t for t in start if t]
            while stack:
                t = stack.pop()
                if t in seen:
                    continue
                seen.add(t)
                for n in self.graph.consumers(t):
                    if n.op_type not in _SIZE_OPS:
                        stack.extend(o for o in n.output if o and o not in seen)
            self._after_cache[key] = seen
        return self._after_cache[key]

    def after_recurrence(self, tensor: str) -> bool:
        """True if ``tensor`` is computed from the output of some recurrence."""
        return any(tensor in self._after(rc) for rc in self.recurrences)

    def _expand(self, node, x):
        out_shape = self._shape(node.output[0])
        src = self._shape(node.input[0])
        if x is None or out_shape is None or src is None:
            return None
        lead = len(out_shape) - len(src)
        if lead < 0:
            return None
        out = [UNKNOWN_ROLE] * lead
        for k, a in enumerate(x):
            grows = src[k] == 1 and out_shape[lead + k] != 1
            out.append(UNKNOWN_ROLE if grows else a)
        return tuple(out)

    def _einsum(self, node):
        eq = str(_attr(node, "equation", b"") if not isinstance(_attr(node, "equation"), bytes)
                 else _attr(node, "equation").decode())
        eq = eq.replace(" ", "")
        if "->" not in eq or "." in eq:
            return None
        lhs, rhs = eq.split("->")
        terms = lhs.split(",")
        if len(terms) != len(node.input):
            return None
        letters: dict[str, AxisRole] = {}
        weight_only: dict[str, bool] = {}
        for term, t in zip(terms, node.input):
            r = self.of(t)
            w = self.is_weight(t)
            for k, ch in enumerate(term):
                weight_only[ch] = weight_only.get(ch, True) and w
                if r is not None and len(r) == len(term) and r[k].known:
                    if ch in letters and letters[ch] != r[k]:
                        letters[ch] = UNKNOWN_ROLE
                    else:
                        letters.setdefault(ch, r[k])
        return tuple(letters.get(ch, _R["feature"] if weight_only.get(ch) else UNKNOWN_ROLE) for ch in rhs)


# ----------------------------------------------------------------- merge / split


_COLLAPSE = {"batch", "time", "channel", "feature", "direction"}  # one axis each; spatial axes stay distinct


@dataclass
class _Atom:
    role: str | None
    size: Dim
    mixed: AxisRole | None = None  # the mixed axis this piece came from
    whole: AxisRole | None = None  # a merged axis whose part sizes are unknown: only usable whole


def _atoms(ins: list[AxisRole], dims) -> list[_Atom] | None:
    out = []
    for a, d in zip(ins, dims):
        if a.mixed:
            out.append(_Atom(None, d, mixed=a))
        elif len(a.parts) > 1:
            if len(a.sizes) == len(a.parts) and all(s is not None for s in a.sizes):
                out.extend(_Atom(p, s) for p, s in zip(a.parts, a.sizes) if s != 1)
            else:
                out.append(_Atom(None, d, whole=a))
        else:
            out.append(_Atom(a.parts[0], d))
    return out


def _strictly_divides(p: Dim, q: Dim) -> bool | None:
    """True if ``p`` divides ``q`` and is smaller, False if proven not, None if undecidable."""
    if isinstance(p, int) and isinstance(q, int):
        return q % p == 0 and q > p
    return True if _divides(p, q) else None


def _segments(atoms: list[_Atom], out_dims):
    """Common refinement of the atoms and the target axes: ``(atom, out axis, size)`` pieces.

    Returns ``"mixed"`` when proven that no refinement exists (the target
    boundaries cut across the source ones), None when undecidable.
    """
    def prefixes(sizes):
        acc, out = 1, []
        for s in sizes[:-1]:
            acc = mul(acc, s)
            out.append(acc)
        return out

    A, B = prefixes([a.size for a in atoms]), prefixes(list(out_dims))
    if any(v is None for v in A + B):
        return None
    has_batch = any(a.role == "batch" for a in atoms)
    segs, prev, i, j, atom, axis = [], 1, 0, 0, 0, 0
    while i < len(A) or j < len(B):
        step_i = step_j = False
        if i < len(A) and j < len(B):
            if _equal(A[i], B[j]):
                step_i = step_j = True
            else:
                ab, ba = _strictly_divides(A[i], B[j]), _strictly_divides(B[j], A[i])
                if ab:
                    step_i = True
                elif ba:
                    step_j = True
                elif ab is False and ba is False:
                    return "mixed"
                elif _named_only(A[i]) and _named_only(B[j]) and not has_batch:
                    # 32 channels vs width//2: the boundaries meet for some widths only.  Not for a batch
                    # boundary (batch vs a traced 4): that is a baked-in size, SL501's to report
                    return "mixed"
                else:
                    return None
        elif i < len(A):
            step_i = True
        else:
            step_j = True
        nxt = A[i] if step_i else B[j]
        ok = _strictly_divides(prev, nxt) if prev != 1 else True
        if ok is False:
            return "mixed"
        if ok is None:
            return None
        segs.append((atom, axis, _exact_div(nxt, prev)))
        prev = nxt
        if step_i:
            i, atom = i + 1, atom + 1
        if step_j:
            j, axis = j + 1, axis + 1
    total = mul(A[-1] if A else 1, atoms[-1].size)
    segs.append((atom, axis, _exact_div(total, prev)))
    return segs


def _exact_div(a: Dim, b: Dim) -> Dim:
    if a is None or b is None:
        return None
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    try:
        q = ratio(a, b)
    except Exception:  # noqa: BLE001
        return None
    if q is None:
        return None
    return int(q) if q.is_Integer else q


def _role_from(parts, sizes, mixed: AxisRole | None, origin: str) -> AxisRole:
    # pieces of one axis come back together: channel*channel is channel, spatial*spatial stays two axes
    cp, cs = [], []
    for p, s in zip(parts, sizes):
        if cp and p is not None and p == cp[-1] and p in _COLLAPSE:
            cs[-1] = mul(cs[-1], s) if cs[-1] is not None and s is not None else None
        else:
            cp.append(p)
            cs.append(s)
    if mixed is not None:
        return AxisRole(tuple(cp), True, mixed.origin, tuple(cs))
    if all(p is None for p in cp):
        return UNKNOWN_ROLE
    if len(cp) == 1:
        return _R[cp[0]]
    return AxisRole(tuple(cp), False, origin, tuple(cs))


def regroup(ins: list[AxisRole], in_dims, out_dims, origin: str) -> list[AxisRole]:
    """Roles of the target axes of a reshape group whose source axes have roles ``ins``.

    Splits and merges are matched piece by piece (``(C, H, W) -> (G, C/G*H*W)``
    keeps channels apart from positions); a target that cuts across its source
    axes (``(C, H, W) -> (H*W, C)``) gives mixed axes.

    >>> [str(r) for r in regroup([_R["channel"], _R["spatial"], _R["spatial"]], (6, 4, 4), (2, 48), "y")]
    ['channel', 'channel*spatial*spatial']
    >>> [str(r) for r in regroup([_R["channel"], _R["spatial"], _R["spatial"]], (6, 4, 4), (16, 6), "y")]
    ['mixed(channel*spatial*spatial)', 'mixed(channel*spatial*spatial)']
    """
    n = len(out_dims)
    atoms = _atoms(ins, in_dims)
    segs = _segments(atoms, out_dims) if atoms else None
    if segs is None:
        return [UNKNOWN_ROLE] * n
    if segs == "mixed":
        plain = [a.role for a in ins]
        if all(p is not None for p in plain) and len(set(plain)) == 1 and plain[0] in _COLLAPSE:
            return [ins[0]] * n  # e.g. features regrouped among themselves
        parts = tuple(p for a in ins for p in a.parts)
        if all(p is None for p in parts):
            return [UNKNOWN_ROLE] * n
        first = next((a for a in ins if a.mixed), None)
        r = AxisRole(parts, True, first.origin if first is not None else origin)
        return [r] * n
    pieces: list[list[tuple]] = [[] for _ in range(n)]
    count: dict[int, int] = {}
    for atom, axis, size in segs:
        count[atom] = count.get(atom, 0) + 1
        pieces[axis].append((atom, size))
    out = []
    for axis in range(n):
        parts, sizes, mixed = [], [], None
        for atom, size in pieces[axis]:
            a = atoms[atom]
            whole = count[atom] == 1
            if a.mixed is not None:
                mixed = mixed or a.mixed
                parts.extend(a.mixed.parts)
                sizes.extend([None] * len(a.mixed.parts))
            elif a.whole is not None:
                if whole:
                    parts.extend(a.whole.parts)
                    sizes.extend([None] * len(a.whole.parts))
                else:
                    parts.append(None)
                    sizes.append(size)
            elif a.role in _SINGULAR and not whole:
                parts.append(None)  # a piece of the batch (or time) axis: which piece is which is unknown
                sizes.append(size)
            else:
                parts.append(a.role)
                sizes.append(size)
        out.append(_role_from(parts, sizes, mixed, origin) if parts else UNKNOWN_ROLE)
    return out


# ----------------------------------------------------------------- recurrences


def find_recurrences(graph: ModelGraph, table: ShapeTable) -> list[Recurrence]:
    """Every recurrence of the main graph: recurrent ops, Scan, Loop and unrolled cells."""
    found: list[Recurrence] = []
    for node in graph.nodes:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            continue
        if op in _RECURRENT and node.input and node.input[0]:
            layout = _attr(node, "layout", 0)
            found.append(Recurrence("op", node, node.input[0], 1 if layout else 0, 0 if layout else 1, 2))
        elif op == "Scan":
            n_scan = _attr(node, "num_scan_inputs", 0)
            inputs = list(node.input)
            n_state = len(inputs) - n_scan
            axes = list(_attr(node, "scan_input_axes", None) or [0] * n_scan)
            for k, t in enumerate(inputs[n_state:]):
                shape = table.shape(t)
                if not t or shape is None:
                    continue
                ax = axes[k] if k < len(axes) else 0
                ax = ax + len(shape) if ax < 0 else ax
                if 0 <= ax < len(shape):
                    found.append(Recurrence("scan", node, t, ax))
        elif op == "Loop":
            found.extend(_loop_recurrences(node, table))
    found.extend(_unrolled_recurrences(graph, table))
    return found


def _loop_recurrences(node, table) -> list[Recurrence]:
    body = _attr(node, "body")
    if body is None or not body.input:
        return []
    it = body.input[0].name
    alias = {it}
    local = {vi.name for vi in body.input} | {t.name for t in body.initializer}
    out = []
    for n in body.node:
        if n.op_type in ("Cast", "Identity", "Unsqueeze", "Reshape", "Squeeze") and n.input and n.input[0] in alias:
            alias.update(o for o in n.output if o)
        elif n.op_type == "Gather" and len(n.input) == 2 and n.input[1] in alias and n.input[0] not in local:
            shape = table.shape(n.input[0])
            axis = _attr(n, "axis", 0)
            if shape is not None and -len(shape) <= axis < len(shape):
                out.append(Recurrence("loop", node, n.input[0], axis + len(shape) if axis < 0 else axis))
        local.update(o for o in n.output if o)
    return out


def _const_of(graph: ModelGraph, table: ShapeTable, t: str):
    if not t:
        return None
    v = graph.const(t)
    return v if v is not None else table.get(t).const


def _step_index(graph, table, node, tensor):
    """``(axis, index, step tensor)`` if ``node`` reads one step of ``tensor``, else None."""
    if not node.output or not node.output[0]:
        return None
    shape = table.shape(tensor)
    if shape is None or len(shape) < 2:
        return None
    rank = len(shape)
    op = node.op_type
    if op == "Gather" and len(node.input) == 2 and node.input[0] == tensor:
        idx = _const_of(graph, table, node.input[1])
        if idx is None or idx.size != 1:
            return None
        axis = _attr(node, "axis", 0)
        if type(axis) is not int or not -rank <= axis < rank:
            return None  # the engine reports the bad axis (SL101)
        axis = axis + rank if axis < 0 else axis
        i = int(idx.reshape(-1)[0])
        if i < 0 and isinstance(shape[axis], int):
            i += shape[axis]
        return axis, i, node.output[0]
    if op == "Slice" and len(node.input) >= 3 and node.input[0] == tensor:
        starts = _const_of(graph, table, node.input[1])
        ends = _const_of(graph, table, node.input[2])
        axes = _const_of(graph, table, node.input[3]) if len(node.input) > 3 and node.input[3] else None
        steps = _const_of(graph, table, node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if starts is None or ends is None or starts.size != 1 or ends.size != 1:
            return None
        if steps is not None and int(steps.reshape(-1)[0]) != 1:
            return None
        if axes is not None and axes.size != 1:
            return None
        axis = int(axes.reshape(-1)[0]) if axes is not None else 0
        axis = axis + rank if axis < 0 else axis
        s, e = int(starts.reshape(-1)[0]), int(ends.reshape(-1)[0])
        if e - s != 1 or not 0 <= axis < rank:
            return None
        return axis, s, node.output[0]
    return None


def _split_steps(graph, table, node, tensor):
    shape = table.shape(tensor)
    if node.op_type != "Split" or shape is None or len(shape) < 2 or node.input[0] != tensor or len(node.output) < 2:
        return None
    axis = _attr(node, "axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    outs = []
    for k, o in enumerate(node.output):
        s = table.shape(o)
        if not o or s is None or len(s) != len(shape) or s[axis] != 1:
            return None
        outs.append((axis, k, o))
    return outs


_STEP_READERS = ("Gather", "Slice", "Split")  # what _step_index and _split_steps recognise


def _unrolled_recurrences(graph: ModelGraph, table: ShapeTable) -> list[Recurrence]:
    out = []
    for tensor, users in list(graph._consumers.items()):
        steps: dict[int, dict[int, tuple]] = {}
        for u in users:
            if u.op_type not in _STEP_READERS or graph.info(u).scope:
                continue
            hits = []
            one = _step_index(graph, table, u, tensor)
            if one is not None:
                hits = [one]
            else:
                hits = _split_steps(graph, table, u, tensor) or []
            for axis, i, t in hits:
                steps.setdefault(axis, {}).setdefault(i, (u, t))
        for axis, by_index in steps.items():
            rank = len(table.shape(tensor))
            feat = rank - 1 if axis != rank - 1 else None
            order = sorted(by_index)
            if len(by_index) == 1:
                # a one-step unrolled cell (Keras on a length-1 sequence): the axis must be 1 long
                (n0, s0) = by_index[order[0]]
                if table.shape(tensor)[axis] == 1 and _looks_like_cell(graph, s0):
                    out.append(Recurrence("unrolled", n0, tensor, axis, None, feat, 1))
                continue
            (n0, s0), (_, s1) = by_index[order[0]], by_index[order[1]]
            (nl, sl), (_, sk) = by_index[order[-1]], by_index[order[-2]]
            forward = _depends_through_cell(graph, s0, s1)
            if forward or _depends_through_cell(graph, sl, sk):
                out.append(Recurrence("unrolled", n0 if forward else nl, tensor, axis, None, feat, len(by_index)))
    return out


def _cell_walk(graph: ModelGraph, step: str):
    """Nodes a step's value goes through before its gate activations, and the gates reached."""
    cell, gates = {}, set()
    frontier = [(step, 0)]
    while frontier:
        t, d = frontier.pop()
        for n in graph.consumers(t):
            if id(n) in cell:
                continue
            if n.op_type in _GATES:
                gates.add(n.op_type)
                cell[id(n)] = n
                continue
            if n.op_type in _CELL_LINEAR and d < 8:
                cell[id(n)] = n
                frontier.extend((o, d + 1) for o in n.output if o)
    return cell, gates


def _looks_like_cell(graph: ModelGraph, step: str) -> bool:
    """One step of an LSTM/GRU/RNN cell: the step's projection is added to a state times a weight, then gated."""
    cell, gates = _cell_walk(graph, step)
    if "Tanh" not in gates:
        return False
    for n in cell.values():
        if n.op_type not in ("Add", "Sum"):
            continue
        for t in n.input:
            p = graph.producer(t)
            while p is not None and p.op_type in ("Cast", "Identity") and id(p) not in cell:
                p = graph.producer(p.input[0])
            if p is None or id(p) in cell or p.op_type not in ("MatMul", "Gemm") or len(p.input) < 2:
                continue
            if graph.initializer(p.input[1]) is not None or graph.const(p.input[1]) is not None:
                return True
    return False


def _depends_through_cell(graph: ModelGraph, prev: str, nxt: str, depth: int = 40, budget: int = 4000) -> bool:
    """True if ``nxt``'s value meets, before its first gate activation, something computed from ``prev``'s
    value after a gate activation: the signature of a recurrent cell."""
    cell, gates = _cell_walk(graph, nxt)
    if not gates:
        return False
    seen: set[int] = set()
    queue = deque([(prev, 0, False)])
    count = 0
    while queue and count < budget:
        t, d, gated = queue.popleft()
        if d >= depth:
            continue
        for n in graph.consumers(t):
            if n.op_type in ("Shape", "Size"):
                continue
            g2 = gated or n.op_type in _GATES
            key = (id(n), g2)
            if key in seen:
                continue
            seen.add(key)
            count += 1
            if gated and id(n) in cell:
                return True
            queue.extend((o, d + 1, g2) for o in n.output if o)
    return False


# ----------------------------------------------------------------- entry points

def _recurrences_cached(graph: ModelGraph, table: ShapeTable) -> list[Recurrence]:
    """:func:`find_recurrences`, once per table (both analyses share it)."""
    per = table.analyses
    if "recurrences" not in per:
        per["recurrences"] = find_recurrences(graph, table)
    return per["recurrences"]


def analyse(graph: ModelGraph, table: ShapeTable, hints: bool = True) -> AxisRoles:
    """Roles of every tensor of ``graph``; computed once per (table, hints)."""
    key = ("roles", hints)
    per = table.analyses
    if key not in per:
        per[key] = AxisRoles(graph, table, hints)
    return per[key]


def roles_for(ctx, hints: bool = True) -> AxisRoles:
    """The role analysis of a rule's :class:`~shapelint.rule.Context` (shared by every rule)."""
    return analyse(ctx.graph, ctx.table, hints)


def recurrences_for(ctx) -> list[Recurrence]:
    """The recurrences of a rule's context, without the whole role analysis.

    Rules whose findings all involve a recurrent layer ask this first and
    skip the analysis (its cost grows with the model) when there is none.
    """
    return _recurrences_cached(ctx.graph, ctx.table)


def format_roles(roles) -> str:
    """``(batch, time, feature)`` for a tuple of :class:`AxisRole`."""
    if roles is None:
        return "(?)"
    return "(" + ", ".join(str(a) for a in roles) + ("," if len(roles) == 1 else "") + ")"

