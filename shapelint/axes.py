"""The axis algebra: what every axis of every tensor *is*, from op semantics along the data path.

Inference says how long an axis is; this step says what it holds.  Names play no part.

* A **source axis** (:class:`Source`) is born where data along an axis originates: each axis of a
  graph input or of a weight, a Conv's output channels and output positions, a Dense (MatMul/Gemm
  against a weight) output width, a recurrence's hidden and direction axes, a Loop's iterations.
* Every axis of every tensor is an ordered tuple of **factors** (:class:`Factor`, major → minor),
  each a source axis or a part of one, with its symbolic size.  ``()`` is a length-1 axis.
* **Transfer functions**, one per op, carry the factors: Transpose permutes; Reshape, Flatten,
  Squeeze and Unsqueeze lay the input's factors out in memory order and cut them at the output's
  cumulative-product boundaries.  A cut inside a factor splits it where divisibility is proven; a
  cut that does not align (sizes that cannot line up, or symbolic sizes that line up only for
  particular values) makes a *scramble* (:class:`Scramble`), an axis whose elements mix several
  sources, recorded on that node; a cut that depends on an unknown dim gives opaque axes (nothing
  is claimed about them, never a guess).  Gather/Slice of one index takes a *step* of a factor and
  Concat of steps 0..n-1 restacks it; elementwise ops align and unify factors; MatMul contracts K;
  Scan and Loop map their scanned axes into and out of their bodies.
* **Slots** give meaning.  Each op declares what its operands' axes mean (a recurrence's X is
  [time, batch, feature] by ``layout``, Conv's X is [batch, channel, spatial...], a Softmax
  normalises one axis ...).  An occupied slot labels the source factors in it; labels are kept per
  source in a union-find, so sources that an elementwise op aligned share them.  What an axis *is*
  is therefore justified by the ops at both ends of its path, in any exporter, with any dim names.

Rules ask predicates of the resulting :class:`AxisMap` (``ctx.axes(tensor)``, ``ctx.axis_map``);
they never re-derive axes.

>>> import onnx.parser
>>> from shapelint.graph import ModelGraph
>>> from shapelint.infer import infer
>>> m = onnx.parser.parse_model('''
... <ir_version: 8, opset_import: ["" : 17]>
... g (float[n, 3, 8, 8] x, float[16, 3, 3, 3] w) => (y, z) {
...   f = Conv <pads = [1, 1, 1, 1]> (x, w)
...   s = Constant <value = int64[3] {0, 64, 16}> ()
...   y = Reshape(f, s)
...   p = Transpose <perm = [0, 2, 3, 1]> (f)
...   z = Reshape(p, s)
... }''')
>>> mg = ModelGraph.from_model(m)
>>> am = analyse(mg, infer(mg))
>>> am.describe("f")
'(x.0, Conv.channel, x.2, x.3)'
>>> am.describe("y")     # channel-major memory cut at 64: channels and rows in one axis
'(x.0, Conv.channel*x.2//2, x.2%2*x.3)'
>>> am.describe("z")
'(x.0, x.2*x.3, Conv.channel)'
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Iterable, Iterator

import onnx

from .dims import Dim, Relation, compare, exact_quotient, format_dim, has_floor, is_named, product, ratio
from .poly import Poly, canonical
from .graph import ModelGraph, constant_node_value
from .infer import ShapeTable
from .infer.registry import values_of

__all__ = ["Source", "Factor", "Scramble", "Recurrence", "State", "AxisMap", "analyse", "axis_map_for", "RECURRENT_OPS",
           "DENSE_OPS"]

logger = logging.getLogger(__name__)

RECURRENT_OPS = ("LSTM", "GRU", "RNN")
#: a Dense: the data times a weight (input 1), as exporters write it and as onnxruntime's optimizer (FusedGemm,
#: FusedMatMul) and dynamic quantizer (MatMulInteger on DynamicQuantizeLinear's output) rewrite it
DENSE_OPS = ("MatMul", "Gemm", "FusedGemm", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat",
             "DynamicQuantizeMatMul")

# ops that keep every element where it is (one output aligned with broadcast inputs)
ELEMENTWISE = frozenset(
    "Identity Dropout Cast CastLike Relu Tanh Sigmoid LeakyRelu Elu Selu Gelu HardSigmoid HardSwish Softplus "
    "Softsign Mish Erf Exp Log Sqrt Reciprocal Neg Abs Sign Ceil Floor Round Clip Not IsNaN IsInf Sin Cos Tan "
    "Asin Acos Atan Sinh Cosh Asinh Acosh Atanh ThresholdedRelu Celu Shrink Swish QuickGelu FastGelu BiasGelu "
    "Add Sub Mul Div Pow Max Min Mean Sum Where Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor PRelu "
    "Mod BitShift BitwiseAnd BitwiseOr BitwiseXor BitwiseNot QuantizeLinear DequantizeLinear".split()
)
NORMALISATIONS = ("LayerNormalization", "SimplifiedLayerNormalization", "SkipLayerNormalization",
                  "SkipSimplifiedLayerNormalization", "RMSNormalization")
POOLS = ("MaxPool", "AveragePool", "LpPool")
GLOBAL_POOLS = ("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
CONVS = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "FusedConv")  # FusedConv: onnxruntime's Conv+act
#: what onnxruntime's optimizer and quantizer write where a model had these ops: the same inputs and axes
SAME_AXES_AS = {"FusedGemm": "Gemm", "MatMulInteger": "MatMul", "MatMulIntegerToFloat": "MatMul",
                "DynamicQuantizeMatMul": "MatMul", "DynamicQuantizeLSTM": "LSTM"}
REDUCTIONS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
_COMBINE = frozenset("Mul MatMul Einsum Div Sub Add Where".split())
_PASS = frozenset("Identity Dropout Cast Relu Tanh Sigmoid LeakyRelu Elu Selu Gelu Softplus Neg Abs Exp Log Sqrt "
                  "Reciprocal Erf Add Sub Mul Div Pow Max Min Mean Sum Unsqueeze Squeeze Transpose Reshape Expand "
                  "Softmax".split())
_MAX_FACTORS = 64  # a tensor axis with more factors than this is opaque (bounded work on hostile graphs)


# ----------------------------------------------------------------- dim names: tie-breakers only

_NAME_ROLES = {
    "batch": {"batch", "batch_size", "batchsize", "bs", "nbatch", "num_batch", "batch_dim", "n_batch", "batches"},
    "time": {"seq", "seq_len", "seqlen", "seq_length", "sequence", "sequence_length", "sequence_len", "time",
             "time_steps", "timesteps", "timestep", "frames", "num_frames", "n_frames", "nframes", "frame",
             "steps", "num_steps", "n_steps", "src_len", "tgt_len", "src_seq_len", "tgt_seq_len", "max_len",
             "max_seq_len", "audio_len", "n_time"},
}
_NAME_INDEX = {name: role for role, names in _NAME_ROLES.items() for name in names}


def role_of_dim_name(name: str) -> str | None:
    """What a ``dim_param`` name says an axis is (``batch`` or ``time``), or None.  Conservative on purpose.

    Used only where no op says what the axis is, and in messages.

    >>> role_of_dim_name("batch_size"), role_of_dim_name("seq_len"), role_of_dim_name("N"), role_of_dim_name("s0")
    ('batch', 'time', 'batch', None)
    """
    if not name:
        return None
    if name in ("N", "B", "T"):
        return "batch" if name != "T" else "time"
    key = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
    return _NAME_INDEX.get(key)


# ----------------------------------------------------------------- data model

@dataclass(eq=False, slots=True)
class Source:
    """Where data along an axis originates.

    ``kind``: ``input`` (a graph-input axis), ``weight`` (an initializer's or constant's axis),
    ``channel`` / ``spatial`` (a Conv's output channels / positions), ``feature`` (a Dense output
    width, an embedding), ``hidden`` / ``direction`` (a recurrence's), ``iteration`` (a Loop's),
    ``part`` (a slice or concatenation of other sources), ``scramble`` (a reshape that mixed
    ``parents``) or ``opaque`` (an op this analysis does not follow).
    """

    id: int
    kind: str
    size: Dim
    tensor: str
    axis: int
    node: onnx.NodeProto | None = None
    parents: tuple = ()  # Sources this one is made of (spatial: the input positions; scramble: what it mixes)

    def __repr__(self) -> str:
        return f"Source({self.id}, {self.kind}, {format_dim(self.size)}, {self.tensor!r}.{self.axis})"

    @property
    def short(self) -> str:
        """Short text for :meth:`AxisMap.describe`: ``x.0``, ``Conv.channel``."""
        if self.kind == "input":
            return f"{self.tensor}.{self.axis}"
        where = self.node.op_type if self.node is not None else self.tensor
        return f"{where}.{self.kind}"

    def lineage(self) -> Iterator["Source"]:
        """This source and every source it was made from (depth-first, bounded)."""
        seen, stack = set(), [self]
        while stack and len(seen) < 256:
            s = stack.pop()
            if s.id in seen:
                continue
            seen.add(s.id)
            yield s
            stack.extend(s.parents)


@dataclass(frozen=True, slots=True)
class Factor:
    """``size`` consecutive values of ``source`` with stride ``inner`` (``inner == 1``: the minor end)."""

    source: Source
    size: Dim
    inner: Dim = 1

    @property
    def whole(self) -> bool:
        return _eq(self.size, self.source.size) and _eq(self.inner, 1)

    def __repr__(self) -> str:
        return self.text()

    def text(self) -> str:
        s = self.source.short
        if self.whole:
            return s
        if _eq(self.inner, 1):
            return f"{s}%{format_dim(self.size)}"
        return f"{s}//{format_dim(self.inner)}"


Axis = tuple  # tuple[Factor, ...]; () is a length-1 axis


def _part(f: Factor) -> tuple | None:
    """Which part of its source a factor is, as a label key: None for the whole source."""
    return None if f.whole else (f.size, f.inner)


@dataclass(eq=False)
class Scramble:
    """A Reshape/Flatten whose cut does not line up with its input's axes: each axis in ``axes`` mixes sources."""

    node: onnx.NodeProto
    tensor: str  # the scrambled output
    axes: tuple[int, ...]
    mixed: tuple[Source, ...]
    generic: bool = False  # symbolic sizes that line up only for particular values (e.g. batch == time)


@dataclass(eq=False)
class Recurrence:
    """A recurrence over one axis of ``tensor``.

    ``kind``: ``op`` (LSTM/GRU/RNN), ``scan``, ``loop`` or ``unrolled`` (steps read with constant
    Gather/Slice/Split, each computed from the previous one).  ``time_axis`` is always known;
    ``batch_axis`` and ``feature_axis`` when the form says.
    """

    kind: str
    node: onnx.NodeProto
    tensor: str
    time_axis: int
    batch_axis: int | None = None
    feature_axis: int | None = None
    output: str | None = None  # the tensor holding every step's result, when there is one
    direction: str = "forward"  # "forward", "reverse" or "bidirectional"

    def describe(self) -> str:
        name = self.node.name or self.node.op_type
        if self.kind == "op":
            return f"{self.node.op_type} {name!r}"
        if self.kind == "unrolled":
            return f"the unrolled recurrence that reads {self.tensor!r} step by step along axis {self.time_axis}"
        return f"{self.node.op_type} {name!r} (iterating over axis {self.time_axis} of {self.tensor!r})"


@dataclass(frozen=True, slots=True)
class Use:
    """An op that pools, normalises or mixes values along some factors: ``what`` is e.g. ``softmax``."""

    node: onnx.NodeProto
    what: str
    tensor: str
    axes: tuple[int, ...]


@dataclass(frozen=True)
class State:
    """One stretch of a features axis: a recurrence's hidden units (``recurrence`` None: other features).

    ``direction``: ``forward``, ``reverse`` or ``?``; ``step``: ``all`` (the time axis is still there),
    ``final`` (the op's final state), ``selected`` (a step a Gather/Slice picked), ``pooled``; ``tensor``:
    where this stretch was taken (for messages).
    """

    recurrence: Recurrence | None
    width: Dim
    direction: str
    step: str
    tensor: str


# ----------------------------------------------------------------- arithmetic on dims

def _no_transfer(node) -> None:
    """An op the analysis does not follow: its outputs are opaque."""
    return None


def _node_errors() -> tuple:
    import sys

    errors = (ArithmeticError, IndexError, KeyError, TypeError, ValueError, RecursionError)
    sympy = sys.modules.get("sympy")
    return errors + (sympy.PolynomialError,) if sympy is not None else errors


def _eq(a: Dim, b: Dim) -> bool:
    if a is None or b is None:
        return False
    if a is b or (type(a) is int and type(b) is int):
        return a == b  # one object is equal to itself: the sympy comparison would say so, slower
    return compare(a, b).relation == Relation.EQUAL


def _int(d):
    return canonical(d)


def _canon(factors) -> Axis:
    """Adjacent parts of one source that complete each other become one factor again."""
    out: list = []
    for f in factors:
        if out and out[-1].source is f.source and _eq(out[-1].inner, f.size * f.inner if f.inner != 1 else f.size):
            prev = out.pop()
            f = Factor(f.source, prev.size * f.size, f.inner)
        out.append(f)
    return tuple(out)


def _fresh_in(d: Dim) -> bool:
    return d is None or (not isinstance(d, int) and any(not is_named(s) for s in d.free_symbols))


def _divides(p: Dim, q: Dim) -> str:
    """Does ``p`` divide ``q`` for every value of the symbols?  ``yes``, ``no`` or ``unknown``."""
    if p is None or q is None:
        return "unknown"
    if type(p) is int and type(q) is int:
        return "yes" if p and q % p == 0 else "no"
    return _divides_symbolic(p, q)


@functools.lru_cache(maxsize=65536)
def _divides_symbolic(p: Dim, q: Dim) -> str:
    """:func:`_divides` where a side is symbolic (pure, so cached: every block of a model asks the same)."""
    if type(p) in (int, Poly) and type(q) in (int, Poly) and p != 0:
        if exact_quotient(q, p) is not None:
            return "yes"
        if _proportional(q, p):
            return "no"  # a constant ratio that is not an integer (3N over 2N)
        return "unknown" if _fresh_in(p) or _fresh_in(q) else "no"
    import sympy

    r = ratio(q, p)
    if r is None:
        return "unknown"
    num, den = sympy.fraction(sympy.together(r))
    if den.is_number and den != 0:
        q = sympy.expand(num / den)
        if q.is_number:
            return "yes" if q.is_integer else "no"
        try:
            if all(c.is_integer for c in sympy.Poly(q).coeffs()):
                return "yes"
        except (sympy.PolynomialError, sympy.polys.polyerrors.GeneratorsNeeded):
            return "unknown"
    if _fresh_in(p) or _fresh_in(q):
        return "unknown"
    return "no"


def _proportional(a, b) -> bool:
    """Two Polys that are one rational constant times each other (same monomials, one coefficient ratio)."""
    if type(a) is not Poly or type(b) is not Poly or len(a.terms) != len(b.terms):
        return False
    (_, c0), (_, d0) = a.terms[0], b.terms[0]
    return all(m == n and c * d0 == d * c0 for (m, c), (n, d) in zip(a.terms, b.terms))


# ----------------------------------------------------------------- the analysis

class AxisMap:
    """Factors of every axis of every tensor, slot labels per source, scrambles and recurrences."""

    #: short-cuts that give what the general transfer functions give (off: the general way; a test compares)
    fast_paths = True

    def __init__(self, graph: ModelGraph, table: ShapeTable):
        self.graph, self.table = graph, table
        self._axes: dict[str, tuple | None] = {}
        self._values: dict[str, tuple] = {}  # shape vectors: per element the factors of the axis it measures
        self._steps: dict[str, tuple] = {}  # tensor -> (factors read, index, axis it was on, tensor read)
        self._origin: dict[tuple[str, int], onnx.NodeProto] = {}  # (tensor, axis) -> Reshape/Flatten that formed it
        self.sources: list[Source] = []
        self._parent: dict[int, int] = {}
        self._labels: dict[int, dict[str, list[onnx.NodeProto]]] = {}
        #: the same labels per part of a source: root -> factor key (None: the whole source) -> role -> nodes; a
        #: (B, 120) input unflattened to (B, 40, 3) has two parts, and the steps' label is not the features'
        self._flabels: dict[int, dict[tuple | None, dict[str, list[onnx.NodeProto]]]] = {}
        self.scrambles: list[Scramble] = []
        self.recurrences: list[Recurrence] = []
        self.uses: list[Use] = []
        self.unfollowed: dict[str, int] = {}  # op type -> count of nodes whose outputs got opaque axes
        self._consts = {t.name for t in graph.graph.initializer}
        self._after: set[str] | None = None
        self._order: dict[int, int] | None = None
        self._live: set[str] | None = None
        self._weight: dict[str, bool] = {}
        self._dispatch: dict = {}  # op type -> its transfer function
        self._body_sources: set[int] = set()  # ids of sources a recurrence's cell computes (Scan/Loop body, unrolled)
        self._restacks: list[tuple[str, int, tuple]] = []  # (tensor, axis, factors) where steps were stacked back
        self._before: set[str] | None = None
        self._names: dict[tuple[str, int], str] = {}
        self._owner: dict[int, Recurrence] = {}  # source id -> the recurrence whose cell (or op) computes it
        self._members: dict[int, tuple[str, ...]] = {}  # Concat-made source id -> the tensors concatenated
        self._dir_stacks: set[int] = set()  # Concat-made sources that stack directions or layers of recurrences
        self._unit_dir: dict[str, int] = {}  # tensor -> its length-1 num_directions axis (one-direction op)
        #: sequences: "empty" (SequenceEmpty), ("insert", sequence, element axes) (SequenceInsert), ("stack",
        #: axis, element axes) (a Loop that inserted one element per iteration into an empty sequence)
        self._seq: dict[str, object] = {}
        self._bodies: list[tuple[onnx.NodeProto, int, int]] = []
        self._step_seq: dict[str, int] = {}  # tensor -> when its step was read (walk order)
        self._stack_candidates: list[tuple[int, list, int]] = []  # two tensors stacked on a new axis
        self._member_pick: dict[str, tuple[int, str]] = {}  # Slice output -> (index, Concat input) it is exactly  # Loop/Scan node, ids of the sources its body made
        for vi in graph.graph.input:
            dims = vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else ()
            for k, d in enumerate(dims):
                role = role_of_dim_name(d.dim_param) if d.HasField("dim_param") else None
                if role:
                    self._names[(vi.name, k)] = role

    # ------------------------------------------------------------- queries
    def axes(self, tensor: str) -> tuple | None:
        """Factors of each axis of ``tensor`` (a tuple of :data:`Axis`), or None (rank unknown)."""
        return self._axes.get(tensor)

    def axis(self, tensor: str, k: int) -> Axis | None:
        a = self._axes.get(tensor)
        if a is None or not -len(a) <= k < len(a):
            return None
        return a[k]

    def origin(self, tensor: str, k: int) -> onnx.NodeProto | None:
        """The Reshape/Flatten that formed axis ``k`` of ``tensor`` (followed back through layout-only ops)."""
        return self._origin.get((tensor, k))

    def describe(self, tensor: str) -> str:
        a = self._axes.get(tensor)
        if a is None:
            return "(?)"
        return "(" + ", ".join("*".join(f.text() for f in ax) if ax else "1" for ax in a) + ")"

    @property
    def order(self) -> dict[int, int]:
        """Position of each main-graph node in topological order (by ``id``)."""
        if self._order is None:
            self._order = {id(n): k for k, n in enumerate(self.graph.topological_order())}
        return self._order

    def root(self, s: Source) -> int:
        i = s.id
        while self._parent.get(i, i) != i:
            nxt = self._parent[i]
            self._parent[i] = self._parent.get(nxt, nxt)
            i = nxt
        return i

    def labels(self, s: "Source | Factor") -> dict[str, list[onnx.NodeProto]]:
        """Slot labels of ``s``'s class: role -> the nodes whose slot said so.  For a factor that is a part of
        its source, what was said of that part or of the whole source, not what was said of its other parts."""
        if isinstance(s, Factor):
            if s.whole:
                s = s.source
            else:
                parts = self._flabels.get(self.root(s.source))
                if not parts:
                    return {}
                whole, mine = parts.get(None), parts.get(_part(s))
                if not whole or not mine:
                    return mine or whole or {}
                out = {role: list(nodes) for role, nodes in whole.items()}
                for role, nodes in mine.items():
                    out.setdefault(role, []).extend(nodes)
                return out
        return self._labels.get(self.root(s), {})

    def has_label(self, s: "Source | Factor", role: str) -> bool:
        return role in self.labels(s)

    def named(self, s: Source) -> str | None:
        """What the graph input's dim name says ``s`` is (``batch``/``time``), for a graph-input axis."""
        if s.kind != "input":
            return None
        return self._names.get((s.tensor, s.axis))

    def is_(self, s: "Source | Factor", role: str, *, by_name: bool = True) -> bool:
        """``s`` is ``role`` (``batch`` or ``time``) by an op's slot, or, where no op says, by its dim name."""
        labels = self.labels(s)
        if role in labels:
            return True
        if not by_name or "batch" in labels or "time" in labels:
            return False
        return self.named(s.source if isinstance(s, Factor) else s) == role

    def has_role(self, ax: Axis | None, role: str, *, by_name: bool = True) -> bool:
        return any(self.is_(f, role, by_name=by_name) for f in ax or ())

    # -- per-step outputs of recurrences
    def time_axes(self, tensor: str) -> list[int]:
        """Axes of ``tensor`` holding a factor that a recurrence iterates over (op evidence only)."""
        return [k for k, ax in enumerate(self.axes(tensor) or ())
                if ax and any(self.has_label(f, "time") for f in ax)]

    def projected_axes(self, tensor: str) -> list[int]:
        """Axes of ``tensor`` made by a Dense (MatMul/Gemm against a weight) applied after a recurrence."""
        out = []
        for k, ax in enumerate(self.axes(tensor) or ()):
            for f in ax or ():
                s = f.source
                if s.kind == "feature" and s.node is not None and s.node.op_type in DENSE_OPS \
                        and s.node.input and self.after_recurrence(s.node.input[0]):
                    out.append(k)
                    break
        return out

    def recurrent_features(self, tensor: str) -> list[int]:
        """Axes of ``tensor`` that are exactly a recurrence's hidden units (an LSTM/GRU/RNN's, or what a Scan or
        Loop body's cell computes), or a Dense projection of them made after the recurrence."""
        out = []
        proj = set(self.projected_axes(tensor))
        for k, ax in enumerate(self.axes(tensor) or ()):
            srcs = self.sources_of(ax)
            if len(srcs) != 1:
                continue
            s = srcs[0]
            if k in proj or s.kind == "hidden" or (s.id in self._body_sources and s.kind in ("feature", "part")):
                out.append(k)
        return out

    def weights_the_sequence(self, tensor: str, depth: int = 6) -> bool:
        """``tensor`` is combined back with a tensor that still has a time axis (attention weights multiplied
        with the states, a mean subtracted from what it was taken over): a step of a larger computation."""
        down, frontier = {tensor}, [(tensor, 0)]
        while frontier:
            t, d = frontier.pop()
            for c in self.graph.consumers(t):
                if c.op_type in _COMBINE:
                    for other in c.input:
                        if other and other not in down and self.time_axes(other):
                            return True
                if d < depth and c.op_type in _PASS | _COMBINE:
                    for o in c.output:
                        if o and o not in down:
                            down.add(o)
                            frontier.append((o, d + 1))
        return False

    # -- where a tensor sits relative to the recurrences
    def after_recurrence(self, tensor: str) -> bool:
        """``tensor`` is computed from the output of some recurrence."""
        if self._after is None:
            start = []
            for rc in self.recurrences:
                start += list(rc.node.output) if rc.kind in ("op", "scan", "loop") else [rc.tensor]
            self._after = self._reach(start, forward=True)
        return tensor in self._after

    def reaches_recurrence(self, tensor: str) -> bool:
        """Some recurrence reads ``tensor`` or a tensor computed from it."""
        if self._before is None:
            self._before = self._reach([rc.tensor for rc in self.recurrences], forward=False)
        return tensor in self._before

    def _reach(self, start, forward: bool) -> set[str]:
        seen: set[str] = set()
        stack = [t for t in start if t]
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            if forward:
                for n in self.graph.consumers(t):
                    if n.op_type not in ("Shape", "Size"):
                        stack.extend(o for o in n.output if o and o not in seen)
            else:
                p = self.graph.producer(t)
                if p is not None and p.op_type not in ("Shape", "Size"):
                    stack.extend(i for i in p.input if i and i not in seen)
        return seen

    def kinds(self, ax: Axis | None) -> set[str]:
        """The kinds of the sources (and what they were made of) in one axis."""
        out = set()
        for f in ax or ():
            for s in f.source.lineage():
                out.add(s.kind)
        return out

    def word(self, ax: Axis | None) -> str:
        """What one axis holds, in a word or a product of words (``channel*spatial``), for messages."""
        if ax is None:
            return "?"
        if ax == ():
            return "1"
        words = []
        for f in ax:
            s = f.source
            if self.is_direction(s):
                w = "direction"
            elif s.kind in ("channel", "spatial", "hidden", "direction", "feature"):
                w = s.kind
            elif s.kind == "scramble":
                w = "scrambled"
            else:
                labels = self.labels(f)
                w = next((r for r in ("time", "batch") if self.is_(f, r)), None) or \
                    next((r for r in ("spatial", "channel", "feature") if r in labels), "?")
            if not words or words[-1] != w:
                words.append(w)
        return "*".join(words)

    def labelled(self, tensor: str, words: dict[int, str] | None = None) -> str:
        """``(batch, 6, 4, 4) [batch, channel, spatial, spatial]``; ``words``: axis -> the word a rule has shown
        it holds (``{1: "time"}`` for the steps a Dense contracts, which its slot calls features)."""
        from .dims import format_shape

        a = self._axes.get(tensor)
        shape = format_shape(self.table.shape(tensor))
        if a is None:
            return shape
        words = words or {}
        return f"{shape} [{', '.join(words.get(k) or self.word(ax) for k, ax in enumerate(a))}]"

    def sources_of(self, ax: Axis | None) -> list[Source]:
        """The distinct sources of one axis, major first."""
        out: list[Source] = []
        for f in ax or ():
            if all(s is not f.source for s in out):
                out.append(f.source)
        return out

    def split_across(self, a: Axis | None, b: Axis | None) -> bool:
        """Axes ``a`` and ``b`` each hold part of one source (a reshape cut it between them)."""
        parts_a = {id(f.source) for f in a or () if not f.whole}
        return any(id(f.source) in parts_a and not f.whole for f in b or ())

    def scramble_of(self, ax: Axis | None) -> Scramble | None:
        """The recorded scramble that made (part of) this axis."""
        for f in ax or ():
            if f.source.kind == "scramble":
                return next((sc for sc in self.scrambles if sc.node is f.source.node and sc.tensor == f.source.tensor),
                            None)
        return None

    def step_series(self, tensor: str, axis: int) -> set[int]:
        """Indices of the constant steps read from axis ``axis`` of ``tensor`` (by Gather/Slice/Split)."""
        out = set()
        for t, (factors, i, k, src) in self._steps.items():
            if src == tensor and k == axis:
                p = self.graph.producer(t)
                if p is not None and p.op_type in ("Gather", "Slice", "Split") and p.input and p.input[0] == src:
                    out.add(i)
        return out

    def recurrence_of(self, ax: Axis | None) -> Recurrence | None:
        """The recurrence whose time axis ``ax`` is (the same factors as its X's time axis)."""
        for rc in self.recurrences:
            rax = self.axis(rc.tensor, rc.time_axis)
            if rax and ax and [f.source for f in rax] == [f.source for f in ax]:
                return rc
        return None

    def step(self, tensor: str):
        """``(factors, index, axis, tensor read)`` when ``tensor`` is one step of an axis (constant index)."""
        return self._steps.get(tensor)

    def recurrences_reading(self, tensor: str) -> list[Recurrence]:
        return [r for r in self.recurrences if r.tensor == tensor]

    # -- directions and recurrent states (SL401, SL402)
    def owner(self, s: Source) -> Recurrence | None:
        """The recurrence that computes source ``s``: an LSTM/GRU/RNN's hidden or direction axis, the features a
        Loop/Scan body or an unrolled cell computes."""
        rc = self._owner.get(s.id)
        if rc is not None:
            return rc
        for node, lo, hi in self._bodies:  # innermost body first (it finished first)
            if lo <= s.id < hi:
                rc = next((r for r in self.recurrences if r.node is node), None)
                if rc is not None:
                    return rc
        return None

    def is_direction(self, s: Source) -> bool:
        """``s`` holds a recurrence's directions: an LSTM/GRU/RNN's num_directions axis, the layers' ones
        concatenated (``h_n``: num_layers*num_directions), a part of those, or two passes stacked."""
        if s.kind == "direction" or s.id in self._dir_stacks:
            return True
        return s.kind == "part" and bool(s.parents) and all(
            p.kind == "direction" or p.id in self._dir_stacks for p in s.parents)

    def direction_axes(self, tensor: str) -> list[int]:
        """Axes of ``tensor`` that hold only directions (the length-1 one of a one-direction op included)."""
        out = [k for k, ax in enumerate(self.axes(tensor) or ())
               if ax and all(self.is_direction(f.source) for f in ax)]
        u = self._unit_dir.get(tensor)
        if u is not None and u not in out and self.axis(tensor, u) == ():
            out.append(u)
        return sorted(out)

    def several_directions(self, tensor: str) -> bool:
        """``tensor`` still has a direction axis with more than one entry."""
        return any(self.axis(tensor, k) for k in self.direction_axes(tensor))

    def direction_mix(self, node) -> tuple[int, str] | None:
        """A Reshape/Flatten ``node`` that merges its input's direction axis (of several entries) with another
        axis, or scrambles it: ``(output axis, "batch" | "time" | "features" | "scramble" | "other")``.
        Directions merged just before the same recurrence's hidden units ([forward | backward] features) are
        the right merge: None."""
        if not node.input or not node.output or not self.several_directions(node.input[0]):
            return None
        for k, ax in enumerate(self.axes(node.output[0]) or ()):
            sc = self.scramble_of(ax)
            if sc is not None and any(self.is_direction(m) for m in sc.mixed):
                return k, "scramble"
            srcs = self.sources_of(ax)
            dirs = [j for j, s in enumerate(srcs) if self.is_direction(s)]
            if not dirs:
                if any(self._is_batch(s) for s in srcs) and any(s.kind == "hidden" and self.owner(s) is not None
                                                                for s in srcs):
                    return k, "samples"  # the directions stay an axis, samples go into the features
                continue
            if len(dirs) == len(srcs):
                continue
            others = [s for s in srcs if not self.is_direction(s)]
            if others and all(self.owner(s) is not None and s.kind in ("hidden", "feature", "part") for s in others):
                # (directions, hidden): [forward | backward] features; (hidden, directions) only permutes the
                # features the next Dense learns from, a fixed reordering, not a mistake worth a warning
                continue
            if any(self._is_batch(s) for s in others):
                return k, "batch"
            if any(self.is_(s, "time") for s in others):
                return k, "time"
            if all(self.owner(s) is not None for s in others):
                return k, "features"
            return k, "other"
        return None

    def _is_batch(self, s: Source) -> bool:
        return self.is_(s, "batch") or self.has_label(s, "folded-batch") or self.has_label(s, "state-batch")

    def states(self, tensor: str, k: int) -> list["State"] | None:
        """What axis ``k`` of ``tensor`` holds, stretch by stretch (major first), when it holds recurrences'
        hidden states: one :class:`State` per direction, layer or concatenated piece (other features as a State
        without a recurrence).  None when the axis is not made of recurrent states."""
        return self._states(tensor, k, 0)

    def _states(self, t: str, k: int, depth: int):
        ax = self.axis(t, k)
        if not ax or depth > 12:
            return None
        if len(ax) == 1:
            s = ax[0].source
            members = self._members.get(s.id)
            if members is not None and s.kind == "part":
                out, any_state = [], False
                for m in members:
                    sub = self._states(m, k, depth + 1)
                    if sub is None:
                        ms = self.table.shape(m)
                        out.append(State(None, ms[k] if ms is not None and k < len(ms) else None, "?", "?", m))
                    else:
                        any_state = True
                        out.extend(sub)
                return out if any_state else None
            if s.kind not in ("hidden", "feature", "part") or not ax[0].whole:
                return None
            rc = self.owner(s)
            if rc is None:
                return self._unrolled_state(t, s)
            direction, step = self._trace_state(t, s, rc)
            return [State(rc, s.size, direction, step, t)]
        if len(ax) == 2 and self.is_direction(ax[0].source) and ax[1].source.kind == "hidden" \
                and self.owner(ax[0].source) is self.owner(ax[1].source) is not None:
            rc = self.owner(ax[1].source)
            _, step = self._trace_state(t, ax[1].source, rc)
            return [State(rc, ax[1].source.size, d, step, t) for d in ("forward", "reverse")]
        return None

    def _unrolled_state(self, t: str, s: Source):
        """The state an unrolled cell computed at one of its steps (its step is that step of the time axis)."""
        st = self._steps.get(t)
        if st is None:
            return None
        rc = next((r for r in self.recurrences if r.kind == "unrolled" and r.tensor == st[3] and r.time_axis == st[2]),
                  None)
        if rc is None:
            return None
        n = (self.table.shape(rc.tensor) or [None] * (rc.time_axis + 1))[rc.time_axis]
        last = -1 if rc.direction == "forward" else 0
        final = st[1] == last or (rc.direction == "forward" and isinstance(n, int) and st[1] == n - 1)
        return [State(rc, s.size, rc.direction, "final" if final else "selected", t)]

    def _trace_state(self, t: str, s: Source, rc: Recurrence) -> tuple[str, str]:
        """Which direction of ``rc`` and which step the hidden units ``s`` in ``t`` are: back along the data
        path to the recurrence, through the selections (Gather/Slice/Split) made on the way."""
        pick, step, cur, follow = None, "all", t, {}
        for _ in range(48):
            p = self.graph.producer(cur)
            if p is None:
                break
            if cur in self._member_pick:  # a slice that is exactly one piece of a Concat: follow that piece
                follow[p.input[0]] = self._member_pick[cur][1]
                cur = p.input[0]
                continue
            if p.op_type == "Concat" and cur in follow:
                cur = follow.pop(cur)
                continue
            if p is rc.node:
                if rc.kind == "op" and list(p.output).index(cur) > 0:
                    step = "final" if step == "all" else step
                elif rc.kind == "loop" and cur in p.output and list(p.output).index(cur) < len(p.input) - 2:
                    step = "final" if step == "all" else step
                break
            st = self._steps.get(cur)
            if st is not None and p.op_type in ("Gather", "Slice", "Split") and p.input and st[3] == p.input[0]:
                factors = st[0]
                if factors and all(self.is_direction(f.source) for f in factors):
                    pick = st[1] if pick is None else pick
                elif step == "all":
                    step = "selected"
            if p.op_type in REDUCTIONS and step == "all":
                step = "pooled"
            nxt = next((i for i in p.input if i and any(f.source is s for ax in self.axes(i) or () for f in ax or ())),
                       None)
            if nxt is None:
                break
            cur = nxt
        if rc.kind == "op" and rc.direction == "bidirectional":
            direction = {0: "forward", 1: "reverse", -1: "reverse"}.get(pick, "?") if pick is not None else "?"
        else:
            direction = rc.direction
            ax = self.axis(rc.tensor, rc.time_axis)
            if ax and len(ax) == 1 and ax[0].source.kind == "reversed":
                # a pass over the sequence read backwards (tf2onnx keeps a backward GRU as a forward one over
                # the reversed input when the forward pass is unused)
                direction = {"forward": "reverse", "reverse": "forward"}.get(direction, direction)
        return direction, step

    def same_value(self, a: str, b: str, depth: int = 6) -> bool:
        """``a`` and ``b`` are computed by the same ops from the same tensors (so they hold the same values)."""
        if a == b:
            return True
        if depth <= 0 or not a or not b:
            return False
        pa, pb = self.graph.producer(a), self.graph.producer(b)
        if pa is None or pb is None or pa.op_type != pb.op_type or pa.domain != pb.domain \
                or len(pa.input) != len(pb.input) or list(pa.output).index(a) != list(pb.output).index(b) \
                or [x.SerializeToString() for x in pa.attribute] != [x.SerializeToString() for x in pb.attribute]:
            return False
        if pa.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                          "Bernoulli", "Dropout"):
            return False
        for x, y in zip(pa.input, pb.input):
            if x == y:
                continue
            vx, vy = values_of(self.table.get(x)), values_of(self.table.get(y))
            if vx is not None and vy is not None:
                if len(vx) != len(vy) or not all(_eq(p, q) for p, q in zip(vx, vy)):
                    return False
                continue
            if not self.same_value(x, y, depth - 1):
                return False
        return True

    def partner(self, rc: Recurrence) -> Recurrence | None:
        """The other pass of a bidirectional pair: a recurrence over ``rc``'s sequence read backwards (or the
        pass ``rc`` reads backwards)."""
        return next((o for o in self.recurrences if o is not rc and self._passes(rc, o)), None)

    def _passes(self, ra: Recurrence, rb: Recurrence) -> bool:
        """``ra`` and ``rb`` run over the same sequence in opposite directions: one reads it backwards (a reversing
        Slice/Gather before it), or one is a reverse recurrence (Scan's scan_input_directions, an unrolled
        cell reading the last step first) over the same axis."""
        if ra.kind == "op" or rb.kind == "op":
            return False
        ta, tb = self.axis(ra.tensor, ra.time_axis), self.axis(rb.tensor, rb.time_axis)
        if not ta or not tb:
            return False
        if _reads_backwards(ta, tb) or _reads_backwards(tb, ta):
            return True
        return [f.source for f in ta] == [f.source for f in tb] and {ra.direction, rb.direction} == {"forward",
                                                                                                     "reverse"}

    def _stacks_directions(self, ins, axis: int) -> bool:
        """Concatenating along ``axis`` the direction axes of recurrent ops' outputs (``h_n`` of several layers),
        or, on a new axis, a forward and a backward pass over the same sequence (``jnp.stack([fwd, bwd])``)."""
        if len(ins) < 2:
            return False
        owners, passes, picked = [], [], []
        for t, a in ins:
            ax = a[axis] if axis < len(a) else None
            last = a[-1] if a else None
            if ax is None or not last or len(last) != 1:
                return False
            rc = self.owner(last[0].source)
            st = self._states(t, len(a) - 1, 0) if ax == () else None
            if st is not None and len(st) == 1 and st[0].recurrence is not None:
                picked.append(st[0])
                rc = rc or st[0].recurrence
            if rc is None:
                return False
            if ax != ():
                if not all(self.is_direction(f.source) for f in ax):
                    return False
            elif self._unit_dir.get(t) != axis:
                passes.append(rc)
            owners.append(rc)
        if len(picked) == len(ins) == 2 and picked[0].recurrence is picked[1].recurrence \
                and {s.direction for s in picked} == {"forward", "reverse"}:
            return True  # one bidirectional op's two directions picked apart, then stacked again
        if len({id(r) for r in owners}) != len(owners):
            return False
        if not passes:
            return all(r.kind == "op" for r in owners)
        if len(owners) == 2 and len(passes) == 2 and self._passes(owners[0], owners[1]):
            return True
        return len(picked) == 2 and {s.direction for s in picked} == {"forward", "reverse"} \
            and self._passes(picked[0].recurrence, picked[1].recurrence)

    @staticmethod
    def _reversed_constant(iv, n: Dim) -> bool:
        """A constant index vector n-1, n-2, ..., 0 (or -1, ..., -n) over an axis of static length n > 1: what the
        computed reversal folds to when the length is static (jax2onnx's reverse scan, ``x[:, ::-1]`` as a Gather)."""
        if type(n) is not int or n < 2 or iv.ndim != 1 or iv.size != n or iv.dtype.kind not in "iu":
            return False
        k = iv.astype("int64") % n
        return bool((k[:-1] - k[1:] == 1).all()) and int(k[-1]) == 0

    def _reversal(self, idx: str, n: Dim) -> bool:
        """``idx`` holds n-1, n-2, ..., 0 for an axis of length ``n``: ``(n - 1) - Range(0, n, 1)`` or
        ``Range(n - 1, -1, -1)``."""
        p = self.graph.producer(idx)
        ishape = self.table.shape(idx)
        if p is None or ishape is None or len(ishape) != 1 or not _eq(ishape[0], n):
            return False

        def val(t):
            v = values_of(self.table.get(t)) if t else None
            return v[0] if v is not None and len(v) == 1 else None

        if p.op_type == "Cast" and p.input:
            return self._reversal(p.input[0], n)
        if p.op_type == "Range" and len(p.input) == 3:
            start, limit, delta = (val(i) for i in p.input)
            return _eq(start, n - 1) and _eq(limit, -1) and _eq(delta, -1)
        if p.op_type == "Sub" and len(p.input) == 2:
            r = self.graph.producer(p.input[1])
            if r is None or r.op_type != "Range" or len(r.input) != 3 or not _eq(val(p.input[0]), n - 1):
                return False
            start, limit, delta = (val(i) for i in r.input)
            return _eq(start, 0) and _eq(limit, n) and _eq(delta, 1)
        return False

    def _propagate_unit_dir(self, node, op: str, ins: tuple, out_names: tuple) -> None:
        """Carry a one-direction op's length-1 direction axis through layout and elementwise ops and MatMul."""
        if not out_names or not out_names[0] or out_names[0] in self._unit_dir:
            return
        o = out_names[0]
        if op == "Transpose":
            k = self._unit_dir.get(ins[0]) if ins else None
            perm = self._attr(node, "perm")
            if k is not None and perm is not None and k in list(perm):
                self._unit_dir[o] = list(perm).index(k)
            return
        if op not in ELEMENTWISE and op != "MatMul":
            return
        for t in ins:
            k = self._unit_dir.get(t) if t else None
            if k is None:
                continue
            rin, rout = len(self.axes(t) or ()), len(self.axes(o) or ())
            if rin and rin == rout and (op != "MatMul" or k < rin - 2):
                self._unit_dir[o] = k
            return

    # ------------------------------------------------------------- building blocks
    def new(self, kind: str, size: Dim, tensor: str, axis: int, node=None, parents=()) -> Axis:
        s = Source(len(self.sources), kind, size, tensor, axis, node, tuple(parents))
        self.sources.append(s)
        return (Factor(s, size, 1),)

    def label(self, ax: Axis | None, role: str, node) -> None:
        """The slot of ``node`` says axis ``ax`` holds ``role``: label its sources."""
        for f in ax or ():
            r = self.root(f.source)
            self._labels.setdefault(r, {}).setdefault(role, []).append(node)
            self._flabels.setdefault(r, {}).setdefault(_part(f), {}).setdefault(role, []).append(node)

    def unify(self, a: Axis | None, b: Axis | None) -> None:
        """Two axes an op aligned element by element: their sources are one axis (labels merge)."""
        if not a or not b or len(a) != len(b) or a == b:
            return
        for fa, fb in zip(a, b):
            if not _eq(fa.size, fb.size):
                return
        for fa, fb in zip(a, b):
            ra, rb = self.root(fa.source), self.root(fb.source)
            if ra != rb:
                lo, hi = min(ra, rb), max(ra, rb)
                f_lo, f_hi = (fa, fb) if ra == lo else (fb, fa)
                self._parent[hi] = lo
                merged = self._labels.setdefault(lo, {})
                for role, nodes in self._labels.pop(hi, {}).items():
                    merged.setdefault(role, []).extend(nodes)
                parts = self._flabels.setdefault(lo, {})
                for key, roles in self._flabels.pop(hi, {}).items():
                    # what was said of the aligned part (or of all of it) is said of the part it was aligned with
                    to = _part(f_lo) if key is None or key == _part(f_hi) else key
                    dst = parts.setdefault(to, {})
                    for role, nodes in roles.items():
                        dst.setdefault(role, []).extend(nodes)

    def _opaque(self, node, t: str) -> tuple | None:
        shape = self.table.shape(t)
        if shape is None:
            return None
        return tuple(self.new("opaque", d, t, k, node) if d != 1 else () for k, d in enumerate(shape))

    def _set(self, t: str, axes) -> None:
        if t and axes is not None:
            shape = self.table.shape(t)
            if shape is not None and len(shape) != len(axes):
                axes = None  # the transfer function and inference disagree on rank: claim nothing
        if t:
            self._axes[t] = axes

    # ------------------------------------------------------------- the walk
    def run(self) -> "AxisMap":
        g = self.graph.graph
        for vi in g.input:
            if vi.name in self._consts:
                continue
            self._seed(vi.name, "input")
        for t in g.initializer:
            self._seed(t.name, "weight")
        self._walk(self.graph.topological_order())
        return self

    def _seed(self, t: str, kind: str, node=None) -> None:
        shape = self.table.shape(t)
        if shape is None:
            self._axes[t] = None
            return
        self._axes[t] = tuple(self.new(kind, d, t, k, node) if d != 1 else () for k, d in enumerate(shape))

    def _walk(self, nodes: Iterable[onnx.NodeProto]) -> None:
        axes, steps, step_seq = self._axes, self._steps, self._step_seq
        fast = self.fast_paths
        for node in nodes:
            if fast and node.op_type == "Constant" and node.domain in ("", "ai.onnx") and not node.input \
                    and len(node.output) == 1 and node.output[0]:
                # what _op_Constant gives, without the walk's propagation: nothing reaches a Constant
                self._seed(node.output[0], "weight", node)
                continue
            try:
                outs = self._transfer(node)
            except Exception as exc:  # a malformed node: say nothing about its outputs
                if not isinstance(exc, _node_errors()):
                    raise
                logger.debug("axes: %s %s: %s", node.op_type, node.name, exc)
                outs = None
            # the node's fields once, as Python objects (each protobuf access builds a new container)
            op, ins, out_names = node.op_type, tuple(node.input), tuple(node.output)
            if outs is None:
                self.unfollowed[op] = self.unfollowed.get(op, 0) + 1
                outs = [self._opaque(node, o) for o in out_names]
            for o, a in zip(out_names, outs):
                if o and o not in axes:
                    self._set(o, a)
            self._propagate_values(op, ins, out_names)
            if steps:
                for o in out_names:
                    if o and o in steps and o not in step_seq:
                        same = next((i for i in ins if i and i in step_seq and steps.get(i) == steps[o]),
                                    None)  # handed on (a Transpose of a step), else read here: later reads, later steps
                        step_seq[o] = step_seq[same] if same is not None else len(step_seq)
            self._propagate_step(op, ins, out_names)
            if self._origin:
                self._propagate_origin(op, ins, out_names)
            if self._unit_dir:
                self._propagate_unit_dir(node, op, ins, out_names)

    def _propagate_origin(self, op: str, ins: tuple, out_names: tuple) -> None:
        """An output axis that is one of the data input's axes, unchanged, keeps where that axis was formed."""
        if not ins or not ins[0] or op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            return
        src = ins[0]
        x = self._axes.get(src)
        if not x:
            return
        origin = self._origin
        for j in range(len(x)):
            if (src, j) in origin:
                break
        else:
            return  # none of the data input's axes has an origin to hand on
        for o in out_names:
            a = self._axes.get(o) if o else None
            if not a:
                continue
            for k, ax in enumerate(a):
                if ax == () or (o, k) in origin:
                    continue
                try:
                    j = x.index(ax)  # the first equal axis (== as below, in C)
                except ValueError:
                    continue
                if (src, j) in origin:
                    origin[(o, k)] = origin[(src, j)]

    def _propagate_step(self, op: str, ins: tuple, out_names: tuple) -> None:
        """An op on one step (whatever its other operands: weights, a state, a whole tensor) gives that same
        step; one that joins step t with what was computed from earlier steps of the same axis (a carried
        state) gives step t; steps of two different axes give none."""
        steps = self._steps
        if not out_names or not out_names[0] or out_names[0] in steps:
            return
        if op in ("Concat", "Shape", "Size"):
            return
        reads = ins
        if op in ("Gather", "Slice", "Split"):  # a part of one step (its features) is that step
            if any(t and not self.is_weight(t) for t in ins[1:]):
                return
            reads = ins[:1]
        if not steps:
            return  # no step anywhere yet: none to hand on
        step, seq = None, -1
        for t in reads:
            if not t:
                continue
            st = steps.get(t)
            if st is not None:
                if step is not None and (st[0] == ()) != (step[0] == ()):
                    # the only entry of a 1-long axis (a zero state's (1, B, H) sliced) beside a step of a real
                    # axis: the real one is the step (dynamo unrolls nn.RNN so: h0[0:1] joined with x_t W)
                    if st[0] != ():
                        step, seq = st, self._step_seq.get(t, -1)
                    continue
                if step is not None:
                    if st[0] != step[0] or st[2:] != step[2:]:
                        return
                    if self._step_seq.get(t, -1) > seq:  # the step read last (a pass reading backwards too)
                        step, seq = st, self._step_seq.get(t, -1)
                    continue
                step, seq = st, self._step_seq.get(t, -1)
            # any other operand (a weight, a state input, a whole tensor) leaves this step's identity alone
        if step is not None:
            for o in out_names:
                if o:
                    steps[o] = step
                    self._step_seq[o] = seq

    def _propagate_values(self, op: str, ins: tuple, out_names: tuple) -> None:
        """Shape vectors through the ops exporters build them with (Unsqueeze, Cast, Mul of two sizes...)."""
        values = self._values
        if not ins or not out_names or not out_names[0] or not values or out_names[0] in values:
            return
        v = values.get(ins[0])
        if op in ("Unsqueeze", "Squeeze", "Cast", "Identity", "Reshape", "Flatten") and v is not None:
            values[out_names[0]] = v
        elif op == "Mul" and len(ins) == 2:
            w = values.get(ins[1])
            if v is not None and w is not None and len(v) == len(w) == 1 and v[0] and w[0]:
                values[out_names[0]] = (tuple(v[0]) + tuple(w[0]),)

    def _in(self, node, i: int) -> tuple | None:
        if i >= len(node.input) or not node.input[i]:
            return None
        t = node.input[i]
        if t not in self._axes:
            if self.graph.producer(t) is None:
                kind = "weight" if (t in self._consts or self._const(t) is not None) else "input"
                self._seed(t, kind)  # an outer-scope name, a Constant-free initializer
            else:
                return None
        return self._axes.get(t)

    def _const(self, t: str):
        if not t:
            return None
        cache = self.graph._const_cache  # graph.const's own memo, read without the call (hot: is_weight)
        v = cache[t] if t in cache else self.graph.const(t)
        return v if v is not None else self.table.get(t).const

    def is_weight(self, t: str, _depth: int = 0) -> bool:
        """Computed from initializers and constants only (shapes count as constants); memoised per tensor."""
        hit = self._weight.get(t)
        if hit is not None:
            return hit
        if _depth > 48:
            return False  # too deep to tell: not a weight (not cached: a shallower query may decide)
        if t in self._consts or self._const(t) is not None:
            out = True
        else:
            p = self.graph.producer(t)
            if p is None:
                out = False
            elif p.op_type in ("Shape", "Size") or not p.input:
                out = True
            else:  # with what a subgraph reads from outside
                out = True
                for i in self.graph.reads(p):
                    if i and not self.is_weight(i, _depth + 1):
                        out = False
                        break
        self._weight[t] = out
        return out

    def _attr(self, node, name, default=None):
        for a in node.attribute:
            if a.name == name:
                v = onnx.helper.get_attribute_value(a)
                return v
        return default

    def _axis_arg(self, node, name: str, rank: int, default=0) -> int | None:
        a = self._attr(node, name, default)
        if type(a) is not int or not -rank <= a < rank:
            return None
        return a + rank if a < 0 else a

    # ------------------------------------------------------------- transfer functions
    def _transfer(self, node):
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            return None
        op = node.op_type
        fn = self._dispatch.get(op)
        if fn is None:
            fn = self._dispatch[op] = self._transfer_for(op)
        return fn(node)

    def _transfer_for(self, op: str):
        """The transfer function of ``op`` (looked up once per op type and kept in ``_dispatch``)."""
        op = SAME_AXES_AS.get(op, op)
        fn = getattr(self, f"_op_{op}", None)
        if fn is not None:
            return fn
        if op in ELEMENTWISE:
            return self._elementwise
        for ops, fn in ((NORMALISATIONS, self._layernorm), (REDUCTIONS, self._reduce), (POOLS, self._pool),
                        (GLOBAL_POOLS, self._global_pool), (CONVS, self._conv), (RECURRENT_OPS, self._recurrent)):
            if op in ops:
                return fn
        return _no_transfer

    def _elementwise(self, node):
        return [self._broadcast(node, [i for i in range(len(node.input)) if node.input[i]])]

    def _broadcast(self, node, idx: list[int]) -> tuple | None:
        out_t = node.output[0]
        shape = self.table.shape(out_t)
        ins = [(node.input[i], self._in(node, i)) for i in idx]
        if shape is None:
            return None
        r = len(shape)
        if self.fast_paths and len(ins) == 1 and ins[0][1] is not None and len(ins[0][1]) == r:
            return self._same_rank_unary(node, ins[0][0], ins[0][1], out_t, shape)
        axes = []
        origin = self._origin
        weight: dict[str, bool] = {}  # is_weight per operand, asked where (and in the order) it first matters
        for k in range(r):
            d = shape[k]
            if d == 1:
                axes.append(())
                continue
            cands = []
            for t, a in ins:
                if a is None:
                    continue
                j = k - (r - len(a))
                if 0 <= j < len(a) and a[j] != ():
                    w = weight.get(t)
                    if w is None:
                        w = weight[t] = self.is_weight(t)
                    cands.append((a[j], w))
            if not cands:
                axes.append(self.new("opaque", d, out_t, k, node))
                continue
            data = [ax for ax, w in cands if not w] or [ax for ax, _ in cands]  # data operands' axes before weights'
            chosen = data[0]
            for other in data[1:]:
                self.unify(chosen, other)
            axes.append(chosen)
            # keep where it was formed
            for t, a in ins:
                j = k - (r - len(a)) if a is not None else -1
                if a is not None and 0 <= j < len(a) and a[j] is chosen and (t, j) in origin:
                    origin.setdefault((out_t, k), origin[(t, j)])
        return tuple(axes)

    def _same_rank_unary(self, node, t: str, a: tuple, out_t: str, shape: tuple) -> tuple:
        """:meth:`_broadcast` of one operand of the output's rank (Relu, Cast, Sigmoid...): what the general
        loop gives, without its lists: each axis is the operand's, a length-1 one empty, an empty one of
        another length new."""
        origin = self._origin
        axes = []
        asked = False
        for k, d in enumerate(shape):
            ax = a[k]
            if d == 1 or ax == ():
                axes.append(() if d == 1 else self.new("opaque", d, out_t, k, node))
                continue
            if not asked:  # the general loop asks once per axis; the answer is memoised per tensor
                self.is_weight(t)
                asked = True
            axes.append(ax)
            if (t, k) in origin:  # this very axis's origin (the walk's would take the first equal axis's)
                origin.setdefault((out_t, k), origin[(t, k)])
        return tuple(axes)

    def _keep_origin(self, src: str, dst: str, mapping: dict[int, int]) -> None:
        for j, k in mapping.items():
            o = self._origin.get((src, j))
            if o is not None:
                self._origin[(dst, k)] = o

    def _op_Transpose(self, node):
        x = self._in(node, 0)
        if x is None:
            return None
        perm = self._attr(node, "perm") or list(range(len(x)))[::-1]
        perm = [int(p) for p in perm]
        if sorted(perm) != list(range(len(x))):
            return None
        self._keep_origin(node.input[0], node.output[0], {p: k for k, p in enumerate(perm)})
        step = self._steps.get(node.input[0])
        if step is not None:
            self._steps[node.output[0]] = step
        return [tuple(x[p] for p in perm)]

    def _regroup_node(self, node, x_t: str, out_t: str):
        x = self._in(node, 0)
        in_shape, out_shape = self.table.shape(x_t), self.table.shape(out_t)
        if x is None or in_shape is None or out_shape is None or len(x) != len(in_shape):
            return None
        out_shape = self._exact_infer_dim(node, x, in_shape, out_shape)
        out = self._regroup(node, x, out_t, out_shape)
        if out is None:
            return None
        # an axis that is exactly an input axis keeps its origin; every other one was formed here
        for k, ax in enumerate(out):
            same = [j for j, a in enumerate(x) if a == ax and ax != ()]
            if same and (x_t, same[0]) in self._origin:
                self._origin[(out_t, k)] = self._origin[(x_t, same[0])]
            elif not same and ax != ():
                self._origin[(out_t, k)] = node
        step = self._steps.get(x_t)
        if step is not None:
            self._steps[out_t] = step
        return [out]

    def _exact_infer_dim(self, node, x, in_shape, out_shape):
        """A Reshape's ``-1`` that inference floored (``(b*t)//6``) is the exact quotient for the cut: the
        element count is the same on both sides, and ``b*t/6`` tells whether the cut lines up with ``t``."""
        if node.op_type != "Reshape" or len(node.input) < 2:
            return out_shape
        minus = [k for k, d in enumerate(out_shape) if has_floor(d)]
        if len(minus) != 1:
            return out_shape
        q = minus[0]
        rest = product([d for k, d in enumerate(out_shape) if k != q])
        total = product(in_shape)
        if rest is None or total is None:
            return out_shape
        exact = ratio(total, rest)
        if exact is None:
            return out_shape
        return tuple(_int(exact) if k == q else d for k, d in enumerate(out_shape))

    def _regroup(self, node, x: tuple, out_t: str, out_shape: tuple):
        """Lay ``x``'s factors out in memory order and cut them at ``out_shape``'s boundaries."""
        flat = [f for ax in x for f in ax]
        if len(flat) > _MAX_FACTORS or len(out_shape) > _MAX_FACTORS:
            return None
        out: list = []
        pos = 0
        k = 0
        while k < len(out_shape):
            d = out_shape[k]
            if d == 1:
                out.append(())
                k += 1
                continue
            if d is None:
                return self._opaque(node, out_t)
            take: list = []
            acc: Dim = 1
            state = "ok"
            while not _eq(acc, d):
                if pos >= len(flat):
                    return self._opaque(node, out_t)
                f = flat[pos]
                nxt = f.size if acc == 1 else acc * f.size
                if _eq(nxt, d):
                    take.append(f)
                    pos += 1
                    acc = d
                    break
                grow = _divides(nxt, d)
                if grow == "yes":  # this factor fits whole and more are needed
                    take.append(f)
                    pos += 1
                    acc = nxt
                    continue
                need = d if acc == 1 else _int(ratio(d, acc))
                cut = _divides(need, f.size)
                if cut == "yes":  # the axis ends inside f: its major part completes it, the rest starts the next
                    rest = _int(ratio(f.size, need))
                    take.append(Factor(f.source, need, rest if f.inner == 1 else f.inner * rest))
                    flat[pos] = Factor(f.source, rest, f.inner)
                    acc = d
                    break
                state = "unknown" if "unknown" in (grow, cut) else "misaligned"
                break
            if state == "unknown":
                return self._opaque(node, out_t)
            if state == "ok":
                out.append(_canon(take))
                k += 1
                continue
            run = self._scramble_run(node, out_t, take + flat[pos:], len(take), out_shape, k)
            if run is None:
                return self._opaque(node, out_t)
            axes, used, k = run
            pos += used - len(take)
            out.extend(axes)
        if pos < len(flat):
            return None
        return tuple(out)

    def _scramble_run(self, node, out_t, rest: list, at_least: int, out_shape: tuple, first: int):
        """The shortest run of input factors (``rest[:i]``, ``i >= at_least``) and output axes
        (``first..j``) whose products are equal: those output axes mix the run's sources."""
        p_in: list = []
        acc: Dim = 1
        for f in rest:
            acc = f.size if acc == 1 else acc * f.size
            p_in.append(acc)
        q: Dim = 1
        for j in range(first, len(out_shape)):
            d = out_shape[j]
            if d is None:
                return None
            q = d if q == 1 else q * d
            for i in range(max(at_least, 1), len(p_in) + 1):
                if _eq(p_in[i - 1], q):
                    used = rest[:i]
                    if _fresh_in(q):
                        return None  # meets only through an unknown dim: claim nothing
                    mixed = tuple({id(f.source): f.source for f in used}.values())
                    generic = any(not isinstance(f.size, int) for f in used)
                    axes = tuple(
                        self.new("scramble", out_shape[m], out_t, m, node, parents=mixed) if out_shape[m] != 1 else ()
                        for m in range(first, j + 1)
                    )
                    self.scrambles.append(Scramble(node, out_t, tuple(range(first, j + 1)), mixed, generic))
                    return axes, i, j + 1
        return None

    _op_Reshape = lambda self, node: self._regroup_node(node, node.input[0], node.output[0])  # noqa: E731
    _op_Flatten = _op_Reshape

    def _op_Squeeze(self, node):
        return self._regroup_node(node, node.input[0], node.output[0])

    def _op_Unsqueeze(self, node):
        return self._regroup_node(node, node.input[0], node.output[0])

    def _op_Constant(self, node):
        self._seed(node.output[0], "weight", node)
        return [self._axes.get(node.output[0])]

    def _op_Shape(self, node):
        x = self._axes.get(node.input[0]) if node.input else None
        if x is not None:
            start = self._attr(node, "start", 0)
            end = self._attr(node, "end", None)
            self._values[node.output[0]] = tuple(x[slice(start, end)])
        return [self._opaque(node, node.output[0])]

    def _vector(self, t: str):
        """Per element: the factors of the axis whose length it holds, or None (a literal, arithmetic)."""
        if t in self._values:
            return self._values[t]
        v = self._const(t)
        if v is not None and v.ndim <= 1 and v.size <= 64:
            return tuple(None for _ in range(v.size))
        return None

    def _op_Gather(self, node):
        data, idx = node.input[0], node.input[1] if len(node.input) > 1 else ""
        x = self._in(node, 0)
        shape = self.table.shape(data)
        if x is None or shape is None or not idx:
            return None
        axis = self._axis_arg(node, "axis", len(x))
        if axis is None:
            return None
        iv = self._const(idx)
        vec = self._values.get(data)
        if vec is not None and iv is not None and iv.ndim <= 1 and axis == 0:
            try:
                pick = [vec[int(i)] for i in iv.reshape(-1)]
                self._values[node.output[0]] = tuple(pick)
            except IndexError:
                pass
        scalar = int(iv) if iv is not None and iv.ndim == 0 else None
        if iv is None and self.table.shape(idx) == ():
            scalar = _index_of(values_of(self.table.get(idx)), shape[axis])
        if scalar is None and x[axis] and (self._reversed_constant(iv, shape[axis]) if iv is not None
                                           else self._reversal(idx, shape[axis])):
            # indices n-1, n-2, ..., 0 computed from the axis length (jax2onnx's reverse): the axis read backwards
            rev = self.new("reversed", shape[axis], node.output[0], axis, node, parents=[f.source for f in x[axis]])
            return [x[:axis] + (rev,) + x[axis + 1:]]
        if scalar is not None:
            i = scalar
            n = shape[axis]
            if i < 0 and isinstance(n, int):
                i += n
            self._steps[node.output[0]] = (x[axis], i, axis, data)
            self._keep_origin(data, node.output[0], {j: j - (j > axis) for j in range(len(x)) if j != axis})
            return [x[:axis] + x[axis + 1:]]
        ia = self._in(node, 1)
        if ia is None:
            return None
        return [x[:axis] + ia + x[axis + 1:]]

    def _op_Slice(self, node):
        x = self._in(node, 0)
        shape, oshape = self.table.shape(node.input[0]), self.table.shape(node.output[0])
        if x is None or shape is None or oshape is None or len(shape) != len(oshape):
            return None
        vec = self._values.get(node.input[0])
        out = list(x)
        starts = self._const(node.input[1]) if len(node.input) > 1 else None
        axes_v = self._const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        steps_v = self._const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if vec is not None and len(shape) == 1 and starts is not None:
            ends = self._const(node.input[2]) if len(node.input) > 2 else None
            if ends is not None and starts.size == 1 and ends.size == 1 and (steps_v is None or int(steps_v.reshape(-1)[0]) == 1):
                self._values[node.output[0]] = tuple(vec[int(starts.reshape(-1)[0]):int(ends.reshape(-1)[0])])
        for k in range(len(shape)):
            if shape[k] == 1 and oshape[k] == 1 and starts is not None and starts.ndim == 1:
                axes = [int(a) % len(shape) for a in axes_v.reshape(-1)] if axes_v is not None \
                    else list(range(starts.size))
                if k in axes and axes.index(k) < starts.size and int(starts[axes.index(k)]) in (0, -1):
                    self._steps[node.output[0]] = ((), 0, k, node.input[0])  # the only step of a 1-long axis
                continue
            if _eq(shape[k], oshape[k]):
                if self._reverses(node, k, len(shape)) and x[k]:
                    # the same positions read backwards: step i is the old step n-1-i, so not the same axis
                    out[k] = self.new("reversed", oshape[k], node.output[0], k, node, parents=[f.source for f in x[k]])
                continue
            if oshape[k] == 1:
                out[k] = ()
                if starts is not None and starts.ndim == 1:
                    axes = [int(a) % len(shape) for a in axes_v.reshape(-1)] if axes_v is not None \
                        else list(range(starts.size))
                    if k in axes and axes.index(k) < starts.size:
                        i = int(starts[axes.index(k)])
                        if i < 0 and isinstance(shape[k], int):
                            i += shape[k]
                        self._steps[node.output[0]] = (x[k], i, k, node.input[0])
                continue
            start = self._slice_start(node, k, len(shape), starts, axes_v, steps_v)
            member = self._member_at(x[k], start, oshape[k], k)
            if member is not None:  # exactly one of the pieces a Concat put side by side: that piece's axis
                out[k] = self.axis(member[1], k)
                self._member_pick[node.output[0]] = member
                continue
            half = self._direction_half(x[k], start, oshape[k])
            if half is not None:  # out[..., :H] of [forward | backward] features: the forward direction's units
                out[k] = (x[k][1],)
                self._steps[node.output[0]] = (x[k][:1], half, k, node.input[0])
                continue
            out[k] = self.new("part", oshape[k], node.output[0], k, node, parents=[f.source for f in x[k]])
        return [tuple(out)]

    @staticmethod
    def _slice_start(node, k, rank, starts, axes_v, steps_v):
        if starts is None or starts.ndim != 1:
            return None
        axes = [int(a) % rank for a in axes_v.reshape(-1)] if axes_v is not None else list(range(starts.size))
        if k not in axes or axes.index(k) >= starts.size:
            return None
        j = axes.index(k)
        if steps_v is not None and j < steps_v.size and int(steps_v.reshape(-1)[j]) != 1:
            return None
        return int(starts[j])

    def _member_at(self, ax: Axis, start, size, k: int) -> tuple[int, str] | None:
        """``(index, tensor)`` of the Concat input that ``[start, start + size)`` of axis ``ax`` covers exactly."""
        if start is None or len(ax) != 1 or not ax[0].whole:
            return None
        members = self._members.get(ax[0].source.id)
        if not members:
            return None
        sizes = [(self.table.shape(m) or [None] * (k + 1))[k] if k < len(self.table.shape(m) or ()) else None
                 for m in members]
        if not all(isinstance(z, int) for z in sizes):
            return None
        total = sum(sizes)
        start = start + total if start < 0 else start
        at = 0
        for j, (m, z) in enumerate(zip(members, sizes)):
            if at == start and _eq(size, z) and self.axis(m, k):
                return j, m
            at += z
        return None

    def _direction_half(self, ax: Axis, start, size) -> int | None:
        """Which direction a piece ``[start, start + size)`` of a (directions, hidden) axis is, when it is one whole
        direction's hidden units: 0 forward, 1 backward."""
        if start is None or len(ax) != 2 or not ax[0].whole or not ax[1].whole:
            return None
        d, h = ax[0].source, ax[1].source
        if not (self.is_direction(d) and _eq(d.size, 2) and self.owner(h) is not None and isinstance(h.size, int)):
            return None
        if not _eq(size, h.size):
            return None
        start = start + 2 * h.size if start < 0 else start
        return {0: 0, h.size: 1}.get(start)

    def _reverses(self, node, k: int, rank: int) -> bool:
        steps_v = self._const(node.input[4]) if len(node.input) > 4 and node.input[4] else None
        if steps_v is None:
            return False
        axes_v = self._const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        axes = [int(a) % rank for a in axes_v.reshape(-1)] if axes_v is not None else list(range(steps_v.size))
        return any(a == k and int(st) < 0 for a, st in zip(axes, steps_v.reshape(-1)))

    def _op_Split(self, node):
        x = self._in(node, 0)
        shape = self.table.shape(node.input[0])
        if x is None or shape is None:
            return None
        axis = self._axis_arg(node, "axis", len(x))
        if axis is None:
            return None
        outs = []
        for j, o in enumerate(node.output):
            os_ = self.table.shape(o)
            if not o or os_ is None or len(os_) != len(x):
                outs.append(None)
                continue
            ax = list(x)
            if _eq(os_[axis], shape[axis]):
                pass
            elif os_[axis] == 1:
                ax[axis] = ()
                self._steps[o] = (x[axis], j, axis, node.input[0])
            elif len(node.output) == 2 and self._direction_half(x[axis], 0 if j == 0 else os_[axis], os_[axis]) == j:
                ax[axis] = (x[axis][1],)  # [forward | backward] features split in two: one direction each
                self._steps[o] = (x[axis][:1], j, axis, node.input[0])
            else:
                ax[axis] = self.new("part", os_[axis], o, axis, node, parents=[f.source for f in x[axis]])
            outs.append(tuple(ax))
        return outs

    def _op_Concat(self, node):
        out_shape = self.table.shape(node.output[0])
        ins = [(t, self._axes.get(t)) for t in node.input if t]
        vecs = [self._vector(t) for t in node.input if t]
        if all(v is not None for v in vecs) and vecs and any(t in self._values for t in node.input):
            self._values[node.output[0]] = tuple(e for v in vecs for e in v)
        if out_shape is None or any(a is None for _, a in ins) or not ins:
            return None
        axis = self._axis_arg(node, "axis", len(out_shape))
        if axis is None:
            return None
        # steps 0..n-1 of one axis stacked back in order: that axis again
        steps = [self._steps.get(t) for t, _ in ins]
        if all(s is not None for s in steps) and all(a[axis] == () for _, a in ins):
            first = steps[0][0]
            if all(s[0] == first for s in steps) and [s[1] for s in steps] == list(range(len(steps))) \
                    and first and _eq(product([f.size for f in first]), out_shape[axis]):
                out = list(ins[0][1])
                out[axis] = first
                self._restacks.append((node.output[0], axis, first))
                for _, a in ins[1:]:
                    for k in range(len(out)):
                        if k != axis:
                            self.unify(out[k], a[k])
                return [tuple(out)]
        out = []
        for k in range(len(out_shape)):
            if k == axis:
                parents = [f.source for _, a in ins for f in a[k]]
                out.append(self.new("part", out_shape[k], node.output[0], k, node, parents=parents)
                           if out_shape[k] != 1 else ())
                if out[-1]:
                    sid = out[-1][0].source.id
                    self._members[sid] = tuple(t for t, _ in ins)
                    if self._stacks_directions(ins, k):
                        self._dir_stacks.add(sid)
                    elif len(ins) == 2 and all(a[k] == () for _, a in ins):
                        self._stack_candidates.append((sid, ins, k))  # unrolled passes are found after the walk
                continue
            data = [a[k] for t, a in ins if not self.is_weight(t) and a[k] != ()] or [a[k] for _, a in ins]
            chosen = data[0]
            for other in data[1:]:
                self.unify(chosen, other)
            out.append(chosen)
        return [tuple(out)]

    def _op_ConstantOfShape(self, node):
        vec = self._vector(node.input[0]) if node.input else None
        shape = self.table.shape(node.output[0])
        if shape is None:
            return None
        out = []
        for k, d in enumerate(shape):
            e = vec[k] if vec is not None and k < len(vec) else None
            if d == 1:
                out.append(())
            elif e is not None and _eq(product([f.size for f in e]), d):
                out.append(e)  # a zero state sized by x.size(k): the same axis as x's
            else:
                out.append(self.new("weight", d, node.output[0], k, node))
        return [tuple(out)]

    def _op_Expand(self, node):
        x = self._in(node, 0)
        shape = self.table.shape(node.output[0])
        vec = self._vector(node.input[1]) if len(node.input) > 1 else None
        if x is None or shape is None:
            return None
        r = len(shape)
        out = []
        for k, d in enumerate(shape):
            j = k - (r - len(x))
            mine = x[j] if 0 <= j < len(x) else ()
            e = vec[k] if vec is not None and k < len(vec) else None
            if mine != () or d == 1:
                out.append(mine)
            elif e is not None and _eq(product([f.size for f in e]), d):
                out.append(e)
            else:
                out.append(self.new("weight", d, node.output[0], k, node))
        return [tuple(out)]

    def _op_Tile(self, node):
        x = self._in(node, 0)
        shape, ishape = self.table.shape(node.output[0]), self.table.shape(node.input[0])
        if x is None or shape is None or ishape is None or len(shape) != len(x):
            return None
        return [tuple(x[k] if _eq(shape[k], ishape[k]) else self.new("part", shape[k], node.output[0], k, node)
                      for k in range(len(x)))]

    def _op_MatMul(self, node):
        a, b = self._in(node, 0), self._in(node, 1)
        shape = self.table.shape(node.output[0])
        if a is None or b is None or shape is None or len(a) < 1 or len(b) < 1:
            return None
        a2 = a if len(a) >= 2 else ((),) + a
        b2 = b if len(b) >= 2 else b + ((),)
        weight = self.is_weight(node.input[1])
        if weight:
            self.label(a2[-1], "feature", node)  # a Dense reads the last axis as each row's features
            if len(a) == 2 and len(a[0]) > 1:
                self.label(a[0], "sample", node)  # rows folded from several axes, each one a sample
        self.uses.append(Use(node, "contract", node.input[0], (len(a) - 1,)))
        batch_a, batch_b = a2[:-2], b2[:-2]
        r = max(len(batch_a), len(batch_b))
        out = []
        for k in range(r):
            ja, jb = k - (r - len(batch_a)), k - (r - len(batch_b))
            xa = batch_a[ja] if ja >= 0 else ()
            xb = batch_b[jb] if jb >= 0 else ()
            if xa != () and xb != ():
                self.unify(xa, xb)
            out.append(xa if xa != () else xb)
        n_axis = b2[-1]
        if weight and n_axis != ():
            n_axis = self.new("feature", shape[-1], node.output[0], len(shape) - 1, node)
        out += [a2[-2], n_axis]
        if len(a) < 2:
            out.pop(-2)
        if len(b) < 2:
            out.pop(-1)
        for k in range(len(out) - (len(b) >= 2)):
            j = k - (len(out) - len(a)) if len(a) >= 2 else -1
            if 0 <= j < len(a) and (node.input[0], j) in self._origin:
                self._origin[(node.output[0], k)] = self._origin[(node.input[0], j)]
        return [tuple(out)]

    def _op_Gemm(self, node):
        a, b = self._in(node, 0), self._in(node, 1)
        shape = self.table.shape(node.output[0])
        if a is None or b is None or shape is None or len(a) != 2 or len(b) != 2:
            return None
        ta = self._attr(node, "transA", 0)
        rows, k_axis = (a[1], a[0]) if ta else (a[0], a[1])
        if self.is_weight(node.input[1]):
            self.label(k_axis, "feature", node)
            if len(rows) > 1:
                self.label(rows, "sample", node)
        self.uses.append(Use(node, "contract", node.input[0], (0 if ta else 1,)))
        return [(rows, self.new("feature", shape[1], node.output[0], 1, node))]

    def _op_FusedMatMul(self, node):
        if any(self._attr(node, a, 0) for a in ("transA", "transB", "transBatchA", "transBatchB")):
            return None  # a transposed operand: not followed
        return self._op_MatMul(node)

    def _op_DynamicQuantizeLinear(self, node):
        """y, y_scale, y_zero_point: y is x element by element; the scale and zero point are scalars."""
        x = self._in(node, 0)
        if x is None:
            return None
        return [x] + [() for _ in node.output[1:]]

    def _conv(self, node):
        x = self._in(node, 0)
        shape = self.table.shape(node.output[0])
        xs = self.table.shape(node.input[0])
        if x is None or shape is None or xs is None or len(x) < 3 or len(shape) != len(x):
            return None
        self.label(x[0], "batch" if len(x[0]) == 1 else "sample", node)
        self.label(x[1], "channel", node)
        for ax in x[2:]:
            self.label(ax, "spatial", node)
        self.uses.append(Use(node, "contract", node.input[0], (1,)))
        out = [x[0], self.new("channel", shape[1], node.output[0], 1, node)]
        for k in range(2, len(x)):
            if _eq(shape[k], xs[k]) and self._pointwise_spatial(node):
                out.append(x[k])
            elif shape[k] == 1:
                out.append(())
            else:
                out.append(self.new("spatial", shape[k], node.output[0], k, node, parents=[f.source for f in x[k]]))
        return [tuple(out)]

    def _pointwise_spatial(self, node) -> bool:
        """A 1x1 (or 'same' stride-1) conv keeps positions where they are."""
        strides = self._attr(node, "strides") or []
        return all(s == 1 for s in strides)

    def _pool(self, node):
        x = self._in(node, 0)
        shape, xs = self.table.shape(node.output[0]), self.table.shape(node.input[0])
        if x is None or shape is None or xs is None or len(shape) != len(x) or len(x) < 3:
            return None
        self.label(x[1], "channel", node)
        out = [x[0], x[1]]
        for k in range(2, len(x)):
            if _eq(shape[k], xs[k]):
                out.append(x[k])
            elif shape[k] == 1:
                out.append(())
            else:
                out.append(self.new("spatial", shape[k], node.output[0], k, node, parents=[f.source for f in x[k]]))
        outs = [tuple(out)]
        for extra in node.output[1:]:
            outs.append(tuple(out) if extra else None)
        return outs

    def _global_pool(self, node):
        x = self._in(node, 0)
        if x is None or len(x) < 3:
            return None
        self.label(x[1], "channel", node)
        self.uses.append(Use(node, "pool", node.input[0], tuple(range(2, len(x)))))
        return [(x[0], x[1]) + ((),) * (len(x) - 2)]

    def _op_BatchNormalization(self, node):
        x = self._in(node, 0)
        if x is None or len(x) < 2:
            return None
        self.label(x[1], "channel", node)
        self.uses.append(Use(node, "normalise-per", node.input[0], (1,)))
        return [x] + [None] * (len(node.output) - 1)

    def _op_InstanceNormalization(self, node):
        x = self._in(node, 0)
        if x is None or len(x) < 3:
            return None
        self.label(x[1], "channel", node)
        self.uses.append(Use(node, "normalise", node.input[0], tuple(range(2, len(x)))))
        return [x]

    def _layernorm(self, node):
        x = self._in(node, 0)
        if x is None:
            return None
        axis = self._axis_arg(node, "axis", len(x), -1)
        if axis is None:
            return None
        for ax in x[axis:]:
            self.label(ax, "feature", node)
        self.uses.append(Use(node, "normalise", node.input[0], tuple(range(axis, len(x)))))
        return [x] + [None] * (len(node.output) - 1)

    def _op_Softmax(self, node):
        x = self._in(node, 0)
        if x is None:
            return None
        opset = self.graph.opset
        axis = self._axis_arg(node, "axis", len(x), -1 if opset >= 13 else 1)
        if axis is None:
            return None
        axes = (axis,) if opset >= 13 else tuple(range(axis, len(x)))
        self.uses.append(Use(node, node.op_type.lower(), node.input[0], axes))
        return [x]

    _op_LogSoftmax = _op_Softmax
    _op_Hardmax = _op_Softmax

    def _reduce(self, node):
        x = self._in(node, 0)
        shape = self.table.shape(node.output[0])
        if x is None or shape is None:
            return None
        axes = self._attr(node, "axes")
        if axes is None and len(node.input) > 1 and node.input[1]:
            v = self._const(node.input[1])
            if v is None:
                return None
            axes = [int(a) for a in v.reshape(-1)]
        if axes is None:
            axes = [] if self._attr(node, "noop_with_empty_axes", 0) else list(range(len(x)))
        axes = sorted({a + len(x) if a < 0 else a for a in axes})
        if any(not 0 <= a < len(x) for a in axes):
            return None
        self.uses.append(Use(node, "reduce", node.input[0], tuple(axes)))
        keep = self._attr(node, "keepdims", 1)
        out = [() if k in axes else x[k] for k in range(len(x))] if keep else [x[k] for k in range(len(x)) if k not in axes]
        return [tuple(out)]

    def _op_ArgMax(self, node):
        x = self._in(node, 0)
        if x is None:
            return None
        axis = self._axis_arg(node, "axis", len(x), 0)
        if axis is None:
            return None
        self.uses.append(Use(node, "argmax", node.input[0], (axis,)))
        keep = self._attr(node, "keepdims", 1)
        return [x[:axis] + (((),) if keep else ()) + x[axis + 1:]]

    _op_ArgMin = _op_ArgMax

    def _recurrent(self, node):
        x = self._in(node, 0)
        layout = self._attr(node, "layout", 0)
        t_ax, b_ax = (1, 0) if layout else (0, 1)
        d = self._attr(node, "direction", b"forward")
        d = d.decode() if isinstance(d, bytes) else str(d)
        # recorded even when X's axes are unknown: the rules then say they could not decide
        self.recurrences.append(Recurrence("op", node, node.input[0], t_ax, b_ax, 2,
                                           node.output[0] if node.output else None,
                                           d if d in ("forward", "reverse", "bidirectional") else "forward"))
        if x is None or len(x) != 3:
            return None
        self.label(x[t_ax], "time", node)
        self.label(x[b_ax], "batch" if len(x[b_ax]) <= 1 else "folded-batch", node)
        self.label(x[2], "feature", node)
        dirs = 2 if self._attr(node, "direction", b"forward") in (b"bidirectional", "bidirectional") else 1
        hidden = self._attr(node, "hidden_size")
        name = node.output[0] if node.output and node.output[0] else node.name
        d_ax = () if dirs == 1 else self.new("direction", dirs, name, 1, node)
        h_ax = self.new("hidden", hidden, name, 3, node) if hidden else None
        if h_ax is None:
            return None
        for f in d_ax + h_ax:
            self._owner[f.source.id] = self.recurrences[-1]
        if dirs == 1:
            for j, o in enumerate(node.output):
                if o:
                    self._unit_dir[o] = (2 if layout else 1) if j == 0 else (1 if layout else 0)
        # initial states: [num_directions, batch, hidden] whatever the layout (layout=1: [batch, dirs, hidden])
        for i in (5, 6):
            st = self._in(node, i)
            if st is not None and len(st) == 3:
                self.label(st[0 if layout else 1], "state-batch", node)  # its own slot, checked against X's
        y = (x[t_ax], d_ax, x[b_ax], h_ax) if not layout else (x[b_ax], x[t_ax], d_ax, h_ax)
        yh = (d_ax, x[b_ax], h_ax) if not layout else (x[b_ax], d_ax, h_ax)
        return [y] + [yh] * (len(node.output) - 1)

    # ------------------------------------------------------------- control flow
    def _body(self, node, name="body"):
        g = self._attr(node, name)
        return g if isinstance(g, onnx.GraphProto) else None

    def _label_scanned(self, rc, axes, node) -> None:
        """A scanned (batch, feature) step: the cell reads its rows as samples and its last axis as features."""
        if rc.batch_axis is not None:
            self.label(axes[rc.batch_axis], "batch" if len(axes[rc.batch_axis]) <= 1 else "folded-batch", node)
        if rc.feature_axis is not None:
            self.label(axes[rc.feature_axis], "feature", node)

    def _op_Scan(self, node):
        body = self._body(node)
        n_scan = self._attr(node, "num_scan_inputs", 0)
        if body is None or type(n_scan) is not int or not 0 < n_scan <= len(node.input):
            return None
        n_state = len(node.input) - n_scan
        if len(body.input) != len(node.input):
            return None
        in_axes = list(self._attr(node, "scan_input_axes", None) or [0] * n_scan)
        steps: Axis | None = None
        for j in range(n_scan):
            i = n_state + j
            x = self._in(node, i)
            if x is None or j >= len(in_axes):
                continue
            ax = in_axes[j] + len(x) if in_axes[j] < 0 else in_axes[j]
            if not 0 <= ax < len(x):
                continue
            self.label(x[ax], "time", node)
            rc = _scanned("scan", node, node.input[i], ax, len(x))
            dirs = list(self._attr(node, "scan_input_directions", None) or [])
            if j < len(dirs) and dirs[j] == 1:
                rc.direction = "reverse"
            self.recurrences.append(rc)
            self._label_scanned(rc, x, node)
            steps = steps or x[ax]
            self._axes[body.input[i].name] = x[:ax] + x[ax + 1:]
        for i in range(n_state):
            self._axes[body.input[i].name] = self._in(node, i)
        first = len(self.sources)
        self._walk(body.node)
        self._body_sources.update(range(first, len(self.sources)))
        self._bodies.append((node, first, len(self.sources)))
        outs = []
        out_axes = list(self._attr(node, "scan_output_axes", None) or [])
        for k, o in enumerate(node.output):
            b = self._axes.get(body.output[k].name) if k < len(body.output) else None
            if k < n_state:
                outs.append(b)
                continue
            if b is None or steps is None:
                outs.append(None)
                continue
            j = k - n_state
            ax = out_axes[j] if j < len(out_axes) else 0
            ax = ax + len(b) + 1 if ax < 0 else ax
            outs.append(b[:ax] + (steps,) + b[ax:])
        return outs

    def _op_Loop(self, node):
        body = self._body(node)
        if body is None or len(body.input) < 2:
            return None
        n_state = len(node.input) - 2
        it = body.input[0].name
        trip = node.input[0] if node.input else ""
        # the iteration axis: the axis whose length the trip count was read from, else a new source
        it_axis: Axis | None = None
        vec = self._values.get(trip) if trip else None
        if vec is not None and len(vec) == 1 and vec[0]:
            it_axis = vec[0]
        for i in range(n_state):
            if i + 2 < len(body.input):
                self._axes[body.input[i + 2].name] = self._in(node, i + 2)
        # a carried value read step by step is the outer tensor it starts as (jax2onnx carries the sequence)
        carried = {body.input[i + 2].name: node.input[i + 2] for i in range(n_state) if i + 2 < len(body.input)}
        gathered = self._loop_gathers(body, it, carried)
        if it_axis is None and gathered:
            it_axis = gathered[0][1]
        for t, ax in gathered:
            self.label(ax, "time", node)
            axes = self._axes.get(t)
            if axes is not None:
                k = next((j for j, a in enumerate(axes) if a == ax), None)
                if k is not None:
                    rc = _scanned("loop", node, t, k, len(axes))
                    self.recurrences.append(rc)
                    self._label_scanned(rc, axes, node)
        first = len(self.sources)
        self._walk(body.node)
        self._body_sources.update(range(first, len(self.sources)))
        self._bodies.append((node, first, len(self.sources)))
        outs = []
        for k, o in enumerate(node.output):
            b = self._axes.get(body.output[k + 1].name) if k + 1 < len(body.output) else None
            if k < n_state:
                ins = self._seq.get(body.output[k + 1].name) if k + 1 < len(body.output) else None
                if type(ins) is tuple and ins[0] == "insert" and k + 2 < len(body.input) \
                        and ins[1] == body.input[k + 2].name and self._seq.get(node.input[k + 2]) == "empty":
                    # outs.append(h) once per iteration: the iterations are the stacked axis
                    n = self.table.get(o).length if o in self.table else None
                    ax = it_axis if it_axis is not None and n is not None and \
                        _eq(product([f.size for f in it_axis]), n) else None
                    if ax is None and n is not None:
                        ax = self.new("iteration", n, o, 0, node)
                    if ax is not None:
                        self._seq[o] = ("stack", ax, ins[2])
                outs.append(b)
                continue
            if b is None:
                outs.append(None)
                continue
            oshape = self.table.shape(o)
            n = oshape[0] if oshape else None
            if it_axis is not None and _eq(product([f.size for f in it_axis]), n):
                outs.append((it_axis,) + b)
            elif n is not None:
                it_new = self.new("iteration", n, o, 0, node)
                outs.append((it_new,) + b)
                if gathered:
                    # a loop reading a sequence step by step stacks one result per step read, also where its trip
                    # count is not provably that axis's length (a while loop with its own counter)
                    self.label(it_new, "time", node)
                elif self._carries_state(body, n_state):
                    # a while loop that updates a state and stacks a result per iteration (tf2onnx's Keras
                    # RNN/ConvLSTM2D loops read their input another way): its iterations are the time axis
                    self.label(it_new, "time", node)
                    self.recurrences.append(Recurrence("loop", node, o, 0, output=o))
            else:
                outs.append(None)
        return outs

    def _op_SequenceEmpty(self, node):
        if node.output and node.output[0]:
            self._seq[node.output[0]] = "empty"
        return [None]

    def _op_SequenceInsert(self, node):
        if len(node.input) == 2 and node.output and node.output[0]:
            self._seq[node.output[0]] = ("insert", node.input[0], self._axes.get(node.input[1]))
        return [None]

    def _op_ConcatFromSequence(self, node):
        """The elements a Loop stacked one per iteration, on a new axis: that axis is the iterations'."""
        st = self._seq.get(node.input[0]) if node.input else None
        if type(st) is not tuple or st[0] != "stack" or st[2] is None:
            return None
        _, ax, elem = st
        if self._attr(node, "new_axis", 0) != 1:
            return None
        r = len(elem) + 1
        axis = self._attr(node, "axis")
        if type(axis) is not int or not -r <= axis < r:
            return None
        a = axis + r if axis < 0 else axis
        return [tuple(elem[:a]) + (ax,) + tuple(elem[a:])]

    @staticmethod
    def _carries_state(body, n_state: int) -> bool:
        """Some loop-carried value is recomputed each iteration (not handed back unchanged)."""
        passed = {n.output[0]: n.input[0] for n in body.node if n.op_type == "Identity" and n.input and n.output}
        for i in range(n_state):
            if i + 2 >= len(body.input) or i + 1 >= len(body.output):
                continue
            out = body.output[i + 1].name
            if out != body.input[i + 2].name and passed.get(out) != body.input[i + 2].name:
                return True
        return False

    def _loop_counters(self, body) -> set[str]:
        """Carried values that count the iterations: each one's new value is itself plus a constant 1 (a
        tf.while_loop's own step counter, which tf2onnx carries beside the Loop's iteration number).  Where it
        starts is not checked here: it reads the steps in the order the iterations do either way."""
        producers = {o: n for n in body.node for o in n.output if o}
        out = set()
        for k in range(2, len(body.input)):
            if k - 1 >= len(body.output):
                break
            p = producers.get(body.output[k - 1].name)
            if p is None or p.op_type != "Add" or len(p.input) != 2 or body.input[k].name not in p.input:
                continue
            other = p.input[1] if p.input[0] == body.input[k].name else p.input[0]
            v = self._const(other)
            if v is None:
                v = next((constant_node_value(n) for n in body.node if n.op_type == "Constant" and other in n.output),
                         None)
            if v is not None and v.size == 1 and int(v.reshape(-1)[0]) == 1:
                out.add(body.input[k].name)
        return out

    def _loop_gathers(self, body, it: str, carried: dict[str, str]) -> list[tuple[str, Axis]]:
        """Outer tensors a Loop body reads one step at a time by the iteration number: (tensor, axis)."""
        alias = {it} | self._loop_counters(body)
        local = ({vi.name for vi in body.input} - set(carried)) | {t.name for t in body.initializer}
        out = []
        views: dict[str, str] = {}  # body tensors that are an outer tensor whole (TorchScript's x[:, :, :])
        for n in body.node:
            if n.op_type in ("Slice", "Identity") and n.input and n.output and n.output[0] \
                    and n.input[0] not in local and n.input[0] not in alias:
                src, got = self.table.shape(n.input[0]), self.table.shape(n.output[0])
                if src is not None and got is not None and len(src) == len(got) \
                        and all(_eq(a, b) for a, b in zip(src, got)):
                    views[n.output[0]] = views.get(n.input[0], n.input[0])
            if n.op_type in ("Cast", "Identity", "Unsqueeze", "Reshape", "Squeeze", "Add", "Sub", "Concat") \
                    and n.input and n.input[0] in alias and all(i in alias or self._const(i) is not None
                                                               for i in n.input[1:]):
                alias.update(o for o in n.output if o)
            elif n.op_type in ("Gather", "Slice") and len(n.input) >= 2 and n.input[1] in alias \
                    and (n.input[0] not in local or n.input[0] in views):
                whole = views.get(n.input[0])
                x = self._axes.get(whole if whole is not None else n.input[0])
                if x is None and whole is None:
                    x = self._in(n, 0)
                if x is None:
                    continue
                axis = self._axis_arg(n, "axis", len(x), 0) if n.op_type == "Gather" else None
                if n.op_type == "Slice":
                    av = self._const(n.input[3]) if len(n.input) > 3 and n.input[3] else None
                    axis = int(av.reshape(-1)[0]) if av is not None and av.size == 1 else 0
                    axis = axis + len(x) if axis < 0 else axis
                if axis is not None and 0 <= axis < len(x):
                    outer = whole if whole is not None else n.input[0]
                    outer = carried.get(outer, outer)
                    if all(o != outer for o, _ in out):
                        out.append((outer, x[axis]))
            local.update(o for o in n.output if o)
        return out

    def _op_If(self, node):
        outs = []
        then_g, else_g = self._body(node, "then_branch"), self._body(node, "else_branch")
        if then_g is None or else_g is None:
            return None
        self._walk(then_g.node)
        self._walk(else_g.node)
        for k, o in enumerate(node.output):
            a = self._axes.get(then_g.output[k].name) if k < len(then_g.output) else None
            b = self._axes.get(else_g.output[k].name) if k < len(else_g.output) else None
            outs.append(a if a is not None and a == b else None)
        return outs

    # ------------------------------------------------------------- unrolled recurrences
    def find_unrolled(self) -> None:
        """Axes read step by step (constant Gather/Slice/Split) whose steps feed each other: time.

        Several passes may read one axis (a bidirectional layer unrolled: a forward chain and one that
        reads the last step first); each chain of steps that feed each other is its own recurrence."""
        for (src, k), steps in self._step_reads().items():
            if len(steps) == 1 and 0 in steps and self.axis(src, k) == () and not self.is_weight(src) \
                    and self._one_step_cell(steps[0][0]):
                node = self.graph.producer(steps[0][0])
                self.recurrences.append(_scanned("unrolled", node, src, k, len(self.axes(src) or ())))  # one step
                continue
            if len(steps) < 2 or 0 not in steps or 1 not in steps or not self.axis(src, k):
                continue
            if self.is_weight(src):
                continue
            n = 0
            while n < 4 and n in steps:
                n += 1
            chains = self._chains(steps, n)
            if not chains:
                continue
            ax = self.axis(src, k)
            found = []
            for direction, chain in chains:
                node = self.graph.producer(chain[0])
                self.label(ax, "time", node)
                rc = _scanned("unrolled", node, src, k, len(self.axes(src) or ()))
                rc.direction = direction
                self.recurrences.append(rc)
                found.append((rc, chain))
            for t, j, factors in self._restacks:  # the states stacked back: their features are the cell's
                if factors != ax:
                    continue
                stacked = self.axes(t) or ()
                if not stacked or j == len(stacked) - 1:
                    continue
                rc = found[0][0] if len(found) == 1 else next(
                    (r for r, chain in found if t in self._reach([chain[0]], forward=True)), None)
                self._body_sources.update(f.source.id for f in stacked[-1] or ())
                if rc is not None:
                    for f in stacked[-1] or ():
                        self._owner.setdefault(f.source.id, rc)
        for sid, ins, k in self._stack_candidates:  # the two passes of an unrolled bidirectional layer, stacked
            if self._stacks_directions(ins, k):
                self._dir_stacks.add(sid)

    def _chains(self, steps: dict[int, list[str]], n: int) -> list[tuple[str, list[str]]]:
        """Chains of the steps 0..n-1 read from one axis where each step's state flows into the next
        (``forward``) or into the previous one (``reverse``: the last step is read first, Keras go_backwards)."""
        chains, used = [], set()
        for first in steps[0]:
            if first in used:
                continue
            for direction in ("forward", "reverse", "either"):
                chain = [first]
                for i in range(1, n):
                    nxt = next((c for c in steps[i] if c not in used and c not in chain and (
                        self._carried(chain[-1], c) if direction == "forward" else
                        self._carried(c, chain[-1]) if direction == "reverse" else
                        self._step_feeds(chain[-1], c))), None)
                    if nxt is None:
                        break
                    chain.append(nxt)
                if len(chain) == n:
                    chains.append(("forward" if direction == "either" else direction, chain))
                    used.update(chain)
                    break
        return chains

    def _step_reads(self) -> dict[tuple, dict[int, list[str]]]:
        """``(tensor, axis) -> step index -> the tensors a Gather/Slice/Split read at that index`` (walk order)."""
        by_axis: dict[tuple, dict[int, list[str]]] = {}
        for t, (factors, i, k, src) in self._steps.items():
            p = self.graph.producer(t)
            if p is None or p.op_type not in ("Gather", "Slice", "Split") or not p.input or p.input[0] != src:
                continue
            by_axis.setdefault((src, k), {}).setdefault(i, []).append(t)
        return by_axis

    def unrolled_over_dynamic(self) -> list[tuple[onnx.NodeProto, str, int, int]]:
        """Recurrences unrolled at export over an axis whose length is a declared dynamic dim: ``(node reading
        step 0, tensor, axis, steps read)``.  Only the traced number of steps is ever read: a longer sequence is
        cut without an error (a Keras 3 export with a ``None`` time axis runs a single step).  One per axis
        (a backward pass reading the same axis reversed is the same mistake)."""
        out, seen = [], set()

        def key(src, k):
            ax = self.axis(src, k) or ()
            if len(ax) == 1 and ax[0].source.kind == "reversed" and len(ax[0].source.parents) == 1:
                return (ax[0].source.parents[0].id,)
            return tuple(f.source.id for f in ax)

        def dynamic(src, k):
            shape = self.table.shape(src)
            d = shape[k] if shape is not None and k < len(shape) else None
            return d is not None and not isinstance(d, int) and bool(d.free_symbols) and all(
                is_named(x) for x in d.free_symbols)

        for rc in self.recurrences:
            if rc.kind != "unrolled" or not dynamic(rc.tensor, rc.time_axis):
                continue
            steps = self.step_series(rc.tensor, rc.time_axis)
            if not steps or min(steps) < 0 or key(rc.tensor, rc.time_axis) in seen:
                continue
            seen.add(key(rc.tensor, rc.time_axis))
            out.append((rc.node, rc.tensor, rc.time_axis, len(steps)))
        for (src, k), steps in self._step_reads().items():  # one step of a dynamic axis through a recurrent cell
            if set(steps) != {0} or not dynamic(src, k) or self.is_weight(src) or key(src, k) in seen:
                continue
            state = self._one_step_state(steps[0][0])
            # (live: what reaches an output by value, not only through Shape/Size: Keras runs the cell once on
            # step 0 outside its while loop just to size the loop's zeros_like, not a step of the model)
            if state is not None and not self._from_caller(state) and steps[0][0] in self.live:
                # (a state the caller passes in, a graph input, makes a step function: one step per call by design,
                # a streaming model or a one-step decoder, not a recurrence cut to the traced length)
                seen.add(key(src, k))
                out.append((self.graph.producer(steps[0][0]), src, k, 1))
        return out

    @property
    def live(self) -> set[str]:
        """Tensors a graph output is computed from (dead code carries no state)."""
        if self._live is None:
            self._live = self._reach([o.name for o in self.graph.graph.output], forward=False)
        return self._live

    def _one_step_cell(self, step: str) -> bool:
        """The only step joins a state times a recurrent weight (``x_t W + h_0 R``): an unrolled cell of length 1."""
        return self._one_step_state(step) is not None

    def _one_step_state(self, step: str, depth: int = 6) -> str | None:
        """The state ``h_0`` that :meth:`_one_step_cell` finds joined with the step, or None."""
        from_step, frontier = {step}, [step]
        for _ in range(depth):
            nxt = []
            for t in frontier:
                for c in self.graph.consumers(t):
                    if c.op_type in ("Add", "Sum") and len(c.input) >= 2:
                        for other in c.input:
                            if other in from_step:
                                continue
                            p = self.graph.producer(other)
                            for _ in range(4):  # through the gate slices and bias of a GRU/LSTM cell
                                if p is None or p.op_type not in ("Slice", "Split", "Gather", "Squeeze", "Add",
                                                                  "Unsqueeze", "Reshape", "Cast"):
                                    break
                                p = self.graph.producer(p.input[0]) if p.input else None
                            if p is not None and p.op_type in DENSE_OPS and len(p.input) >= 2 \
                                    and self.is_weight(p.input[1]) and p.input[0] not in from_step:
                                return p.input[0]
                    for o in c.output:
                        if o and o not in from_step:
                            from_step.add(o)
                            nxt.append(o)
            frontier = nxt
        return None

    def _from_caller(self, t: str, depth: int = 8) -> bool:
        """``t`` is (a part of) a graph input: read through the slices, squeezes and casts that take a state apart."""
        inputs = {vi.name for vi in self.graph.graph.input}
        for _ in range(depth):
            if t in inputs:
                return not self.is_weight(t)
            p = self.graph.producer(t)
            if p is None or not p.input or p.op_type not in ("Slice", "Split", "Gather", "Squeeze", "Unsqueeze",
                                                             "Reshape", "Cast", "Identity", "Transpose"):
                return False
            t = p.input[0]
        return False

    def _computed_from(self, start: str, budget: int) -> set[str]:
        """``start`` and the tensors computed from it (at most ``budget``)."""
        out, stack = set(), [start]
        while stack and len(out) < budget:
            t = stack.pop()
            if t in out:
                continue
            out.add(t)
            for c in self.graph.consumers(t):
                stack.extend(o for o in c.output if o)
        return out

    def _carried(self, prev: str, nxt: str, budget: int = 4000, depth: int = 8) -> bool:
        """Step ``nxt``'s cell joins it with the state computed from step ``prev``: at the first ops where what
        ``nxt`` computes meets another (non-weight) operand, that operand comes from ``prev``."""
        from_prev = self._computed_from(prev, budget)
        mine, frontier = {nxt}, [nxt]
        for _ in range(depth):
            joins, nxt_frontier = [], []
            for t in frontier:
                for c in self.graph.consumers(t):
                    if c.op_type in ("Concat", "ConcatFromSequence", "SequenceConstruct", "SequenceInsert"):
                        continue  # stacking the steps' results is not carrying a state
                    others = [i for i in c.input if i and i not in mine and not self.is_weight(i)]
                    if others and c.op_type not in ("Shape", "Size") and any(o in self.live for o in c.output):
                        if c.op_type == "Gemm":  # x W + C: tf2onnx folds a cell's "+ h R" into Gemm's C
                            others = [i for i in others if len(c.input) > 2 and i == c.input[2]]
                            joins.append(("Add" if others else "Gemm", others))
                        else:
                            joins.append((c.op_type, others))  # dead code carries no state
                    for o in c.output:
                        if o and o not in mine:
                            mine.add(o)
                            nxt_frontier.append(o)
            if joins:  # a cell joins its input and the state element by element (x W + h R, z * h)
                return any(op in ("Add", "Sub", "Mul", "Sum") and i in from_prev for op, others in joins for i in others)
            frontier = nxt_frontier
        return False

    def _step_feeds(self, first: str, second: str, budget: int = 4000) -> bool:
        """Does what step 0 computes flow into what step 1 computes (a state carried between steps)?"""
        from_second = self._computed_from(second, budget)  # tensors computed from step 1
        # walk forward from step 0 (not through step 1's own values); meeting one of them: carried state
        seen, stack = set(), [first]
        while stack and len(seen) < budget:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            for c in self.graph.consumers(t):
                if c.op_type in ("Concat", "ConcatFromSequence", "SequenceConstruct", "SequenceInsert"):
                    continue  # stacking the steps' results is not carrying a state
                if c.op_type in ("Add", "Sub", "Mul", "Sum") and any(i in from_second for i in c.input) \
                        and any(o in self.live for o in c.output):
                    return True  # the state from step 0 joins step 1's input, element by element
                for o in c.output:
                    if o and o not in from_second:
                        stack.append(o)
        return False


def _index_of(value, n: Dim) -> int | None:
    """A scalar index computed in the graph (``n - 1`` from a Shape) as a Gather index: ``-1`` counts from the end."""
    if value is None or len(value) != 1:
        return None
    v = value[0]
    if isinstance(v, int):
        return v
    if v is None or n is None:
        return None
    if type(v) is Poly and type(n) in (int, Poly):
        d = v - n
    else:
        import sympy

        from ._sym import to_sympy
        try:
            d = canonical(sympy.simplify(to_sympy(v) - to_sympy(n)))
        except (TypeError, sympy.SympifyError):
            return None
    return d if type(d) is int and d < 0 else None


def _reads_backwards(a: Axis, b: Axis) -> bool:
    """Axis ``b`` is axis ``a`` read backwards (a reversing Slice or Gather of it)."""
    return len(b) == 1 and b[0].source.kind == "reversed" and [f.source for f in a] == list(b[0].source.parents)


def _scanned(kind, node, tensor, time_axis, rank) -> Recurrence:
    """A Scan/Loop over one axis of a rank-3 sequence reads the other two as (batch, feature), feature last."""
    if rank == 3 and time_axis != 2:
        return Recurrence(kind, node, tensor, time_axis, 1 - time_axis, 2)
    return Recurrence(kind, node, tensor, time_axis)


def analyse(graph: ModelGraph, table: ShapeTable) -> AxisMap:
    am = AxisMap(graph, table).run()
    am.find_unrolled()
    return am


def axis_map_for(ctx) -> AxisMap:
    """The one axis map of the model a rule context is checking (computed once, kept on the shape table)."""
    return ctx.table.analyses.get(analyse, ctx.graph, ctx.table)
