"""A recurrent output is projected or reshaped with its num_directions axis still in place.

## What it does
ONNX LSTM/GRU/RNN write ``Y`` as ``(seq, num_directions, batch, hidden)``
(``layout=1``: ``(batch, seq, num_directions, hidden)``) and ``Y_h`` as
``(num_directions, batch, hidden)``.  The rule follows those axes through the
graph and reports:

* a MatMul/Gemm projection fed ``Y`` while the direction axis is still a
  separate axis (4-D), or fed ``Y_h`` of several directions/layers as is;
* a Reshape/Flatten that merges the direction axis with batch or time
  (``(seq, 2, batch, hidden) -> (seq, batch*2, hidden)`` or ``(seq*2, batch,
  hidden)``), or that regroups it with batch and hidden without the
  Transpose that brings directions next to hidden first
  (``h_n.view(batch, -1)``).

Severity: **error** where onnxruntime fails (Gemm fed more than 2 axes, a
MatMul whose inner dims then differ; the generic SL101/SL103 finding on
that node is replaced by this one); **warning** where the model runs and
computes the wrong thing (per-direction projections, samples mixed).

## Why is this bad?
A 4-D ``Y`` times a ``(hidden, classes)`` weight broadcasts over the
direction axis: each direction is classified on its own and the result keeps
an extra axis.  A reshape that does not move directions next to hidden first
interleaves them with the batch: sample ``i`` of the result holds half of
sample ``i // 2`` from one direction, half from another.  Nothing fails; the
predictions are silently scrambled.

## Example
```python
_, h_n = self.gru(x)                     # h_n: (num_layers*2, B, H), bidirectional
feats = h_n.view(x.size(0), -1)          # (B, 2H): directions and samples interleaved
```
A hand-built or converted graph: ``MatMul(Y, W)`` with ``Y`` straight from
the LSTM op.

## Use instead
```python
feats = h_n[-2:].transpose(0, 1).reshape(x.size(0), -1)   # (B, 2H): [forward | backward]
out, _ = self.lstm(x)   # nn.LSTM already returns (seq, batch, num_directions*hidden)
```
In ONNX: ``Squeeze(Y, axes=[1])`` for one direction; ``Transpose(Y, perm=[0,
2, 1, 3])`` then ``Reshape(seq, batch, 2*hidden)`` for two.  Keras:
``Bidirectional(LSTM(...), merge_mode="concat")``.  The attached edit inserts
the Squeeze or Transpose+Reshape, or puts the missing Transpose before the
offending Reshape when that keeps its output shape.

## Options
None.

## Limitations
Keras exports have no direction axis (their unrolled cells return
``(batch, hidden)`` per step), so this rule concerns ONNX recurrent ops.  A
reshape is judged only when its sizes can be matched symbolically to the
input's axes; with static sizes that coincide (batch 2, two directions) the
match follows the order of the axes.  """

from __future__ import annotations

from shapelint.dims import Relation, compare, format_dim, format_shape
from shapelint.rule import Fix, Rule, Severity

from ._edit import Editor, keeps_shapes_consistent
from ._lstm_axes import BATCH, DIRECTION, HIDDEN, TIME, TRACKING_LIMITS, analyse, describe_axes

FIX_ONE = (
    "remove the direction axis before projecting: ONNX Squeeze(Y, axes=[{d}]) gives {merged}; PyTorch's "
    "nn.LSTM(...) already returns out as (seq, batch, hidden) (batch_first: (batch, seq, hidden)); Keras "
    "LSTM(return_sequences=True) returns (batch, seq, hidden)"
)
FIX_TWO = (
    "move the directions next to hidden, then merge them: Transpose(perm={perm}) and Reshape to {merged}; "
    "PyTorch: use out of nn.LSTM(bidirectional=True) as returned, (seq, batch, 2*hidden), and for final "
    "states h_n[-2:].transpose(0, 1).reshape(B, -1); Keras: Bidirectional(LSTM(...), merge_mode=\"concat\")"
)


class LstmDirectionsNotRemoved(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL401", "lstm-directions-not-removed", Severity.WARNING
    op_types = ()
    #: the generic inner-dim / Gemm-rank findings on the projection say less than this one
    supersedes = ("SL103", "SL101")

    def check(self, node, ctx):
        an = analyse(ctx)
        if not an.sources:
            return
        for n in ctx.graph.topological_order():
            if n.op_type in ("MatMul", "Gemm") and n.input:
                found = self.projection(n, an, ctx)
                if found:
                    yield found
        seen = set()
        for n, before, after, k, x, y in an.mixes:
            if id(n) in seen or before.find(DIRECTION) is None or len(before.segs) < 2:
                continue
            seen.add(id(n))
            yield self.mix(n, before, after, k, x, y, ctx)

    # ------------------------------------------------------------ projections
    def projection(self, n, an, ctx):
        r = an.get(n.input[0])
        if r is None or any(an.get(t) is not None for t in n.input[1:]):
            return None
        d = r.find(DIRECTION)
        if d is None:
            return None
        several = len(r.segs) > 1
        if not several and r.find(TIME) is None:
            return None  # Y_h of one direction: (1, batch, hidden) @ W keeps a harmless leading 1
        h = r.find(HIDDEN)
        x = an.shape(n.input[0])
        w = ctx.shape(n.input[1]) if len(n.input) > 1 else None
        name = n.name or n.output[0]
        desc = describe_axes(r, x)
        src = r.source.label()
        fails, why = False, ""
        k_w = None
        if n.op_type == "Gemm":
            fails, why = True, f"Gemm takes 2-D operands and gets {r.rank} axes"
        elif w is not None and len(w) >= 2 and x is not None:
            k_w = w[-2]
            if compare(x[-1], k_w).relation == Relation.DIFFERENT:
                fails, why = True, f"the inner dims differ ({format_dim(x[-1])} vs {format_dim(k_w)})"
        what = "num_layers*num_directions" if len({s.source for s in r.segs}) > 1 else "num_directions"
        msg = f"{n.op_type} {name!r} is fed the output of {src} {desc} with its {what} axis (axis {d}) still in place: "
        if fails:
            msg += f"onnxruntime fails, {why}"
        else:
            msg += f"the projection runs once per direction and its result {format_shape(an.shape(n.output[0]))} keeps that axis"
        perm, merged = self.merge_plan(r, x)
        if several:
            fix = FIX_TWO.format(perm=perm, merged=format_shape(merged) if merged else "(..., 2*hidden)")
        else:
            squeezed = tuple(v for i, v in enumerate(x) if i != d) if x is not None else None
            fix = FIX_ONE.format(d=d, merged=format_shape(squeezed) if squeezed else "(seq, batch, hidden)")
        edit = None
        if n.op_type == "MatMul" and h == r.rank - 1 and x is not None:
            out = n.output[0]
            if not several:
                edit = Fix(f"insert Squeeze(axes=[{d}]) on {n.input[0]!r} before {name!r}",
                           lambda m, o=out, t=n.input[0], d=d: _squeeze_before(m, o, t, d))
            elif merged is not None and k_w is not None and compare(merged[-1], k_w).relation == Relation.EQUAL:
                edit = Fix(f"insert Transpose(perm={perm}) and Reshape merging directions into hidden before {name!r}",
                           lambda m, o=out, t=n.input[0], p=perm, rank=r.rank: _merge_before(m, o, t, p, rank))
        if edit is not None and not keeps_shapes_consistent(ctx, edit):
            edit = None
        sev = Severity.ERROR if fails else Severity.WARNING
        return ctx.finding(n, msg, fix=fix, tensor=n.input[0], edit=edit, severity=sev)

    @staticmethod
    def merge_plan(r, x):
        """Permutation bringing the direction axis just before hidden, and the merged shape."""
        d, h = r.find(DIRECTION), r.find(HIDDEN)
        if d is None or h is None:
            return None, None
        order = [i for i in range(r.rank) if i != d]
        order.insert(order.index(h), d)
        if x is None:
            return order, None
        dims = [x[i] for i in order]
        pos = order.index(d)
        merged = tuple(dims[:pos]) + (_mul(dims[pos], dims[pos + 1]),) + tuple(dims[pos + 2 :])
        return order, merged

    # ------------------------------------------------------------ reshapes
    def mix(self, n, before, after, k, x, y, ctx):
        name = n.name or n.output[0]
        ax = after.axes[k]
        parts = set(ax.parts)
        if ax.scrambled:
            how = "interleaves directions, samples and hidden units"
        elif DIRECTION in parts and BATCH in parts:
            how = "merges the directions into the batch: the rows of the result hold one direction of one sample each"
        elif DIRECTION in parts and TIME in parts:
            how = "merges the directions into time: the steps of the two directions alternate"
        elif BATCH in parts:
            how = ("merges samples into the features: the direction axis still sits between them, so each row mixes "
                   "the hidden units of several samples")
        else:
            how = "mixes the directions with the other axes"
        msg = (f"{n.op_type} {name!r} reshapes the output of {before.source.label()} {describe_axes(before, x)} into "
               f"{format_shape(y)}: axis {k} ({ax.text()}) {how}")
        perm, merged = self.merge_plan(before, x)
        fix = FIX_TWO.format(perm=perm, merged=format_shape(merged) if merged else "(..., 2*hidden)")
        edit = None
        h = before.find(HIDDEN)
        if n.op_type == "Reshape" and merged is not None and h == before.rank - 1 and len(y) == len(merged) and all(
            compare(a, b).relation == Relation.EQUAL for a, b in zip(y, merged)
        ):
            rank = len(y)
            edit = Fix(f"insert Transpose(perm={perm}) before {name!r} and reshape with [0, ..., -1]",
                       lambda m, o=n.output[0], p=perm, k=rank: _transpose_into_reshape(m, o, p, k),
                       preserves_outputs=False)
        return ctx.finding(n, msg, fix=fix, tensor=n.input[0], edit=edit)


def _mul(a, b):
    from shapelint.dims import mul

    return mul(a, b)


def _squeeze_before(model, out, tensor, axis):
    ed = Editor(model)
    base = ed.node(out, "MatMul").name or out
    new = ed.squeeze(out, tensor, [axis], base)
    ed.node(out, "MatMul").input[0] = new
    ed.forget_shapes(ed.downstream(out))


def _merge_before(model, out, tensor, perm, rank):
    ed = Editor(model)
    base = ed.node(out, "MatMul").name or out
    t = ed.transpose(out, tensor, perm, base)
    merged = ed.reshape(out, t, [0] * (rank - 2) + [-1], base)
    ed.node(out, "MatMul").input[0] = merged
    ed.forget_shapes(ed.downstream(out))


def _transpose_into_reshape(model, out, perm, rank):
    ed = Editor(model)
    node = ed.node(out, "Reshape")
    base = node.name or out
    t = ed.transpose(out, node.input[0], perm, base)
    node = ed.node(out, "Reshape")
    node.input[0] = t
    node.input[1] = ed.ints(f"{base}/shape", [0] * (rank - 1) + [-1])
    ed.drop_attr(node, "allowzero")
