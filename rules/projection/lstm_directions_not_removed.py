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

* a Concat that joins the directions, each read out of the num_directions
  axis, along the batch or time axis instead of the hidden units
  (``torch.cat([h_n[0], h_n[1]], dim=0)``: ``(2*batch, hidden)``) where the
  result goes on to a Dense or the model's output.

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
What an axis is comes from the axis analysis: a recurrent op's
num_directions axis (the length-1 one of a one-direction op included), the
layers' final states concatenated (``h_n``), or a forward pass and a pass
over the same sequence read backwards stacked on a new axis (Flax
``nn.Bidirectional(merge_fn=jnp.stack)`` through jax2onnx's Loops).  A
Reshape to ``(rows, features)`` that only feeds a Dense (how tf2onnx and
jax2onnx apply a Dense to an N-D tensor) is read as that Dense, so the
finding goes on the projection.  Keras exports have no direction axis (their
Bidirectional concatenates), so there is nothing to find there.  """

from __future__ import annotations

from shapelint.dims import Relation, compare, format_dim, format_shape, mul
from shapelint.rule import Fix, Rule, Severity

from ._edit import Editor, keeps_shapes_consistent
from ._tracking import TRACKING_LIMITS, describe, reaches

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
#: the ops a result goes through on its way to a Dense without being reshaped
ELEMENTWISE_ON = ("Relu", "Tanh", "Sigmoid", "Dropout", "Identity", "Cast", "LeakyRelu", "Elu", "Gelu", "Add", "Mul",
                  "Sub", "Div")
HOW = {
    "scramble": "interleaves directions, samples and hidden units",
    "batch": "merges the directions into the batch: the rows of the result hold one direction of one sample each",
    "time": "merges the directions into time: the steps of the two directions alternate",
    "features": "merges the directions into the features in the wrong order: each feature mixes directions",
    "samples": ("merges samples into the features while the directions stay an axis: each row mixes the hidden "
                "units of several samples"),
    "other": "mixes the directions with the other axes",
}


class LstmDirectionsNotRemoved(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL401", "lstm-directions-not-removed", Severity.WARNING
    op_types = ()
    #: the generic inner-dim / Gemm-rank findings on the projection say less than this one
    supersedes = ("SL103", "SL101")

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return
        rows_for_dense, mixes, concats = set(), {}, []
        for n in ctx.graph.topological_order():
            if n.op_type == "Concat" and len(n.input) >= 2 and n.output and n.output[0]:
                concats.append(n)
            elif n.op_type in ("Reshape", "Flatten"):
                with ctx.isolated(n):
                    mix = am.direction_mix(n)
                    if mix is not None:
                        mixes[n.output[0]] = (n, mix)
        for n in ctx.graph.topological_order():
            if n.op_type in ("MatMul", "Gemm") and len(n.input) >= 2 and n.input[0] and am.is_weight(n.input[1]):
                if n.input[0] in mixes and mixes[n.input[0]][1][1] == "samples":
                    continue  # the Reshape before it is the mistake (reported there)
                with ctx.isolated(n):
                    found = self.projection(n, am, ctx, rows_for_dense)
                    if found:
                        yield found
        for n, mix in mixes.values():
            if id(n) not in rows_for_dense:
                with ctx.isolated(n):
                    yield self.mix(n, mix[0], mix[1], am, ctx)
        outputs = {o.name for o in ctx.graph.graph.output}
        for n in concats:
            with ctx.isolated(n):
                found = self.directions_joined(n, am, ctx, outputs)
                if found:
                    yield found

    # ------------------------------------------------------------ directions concatenated on the wrong axis
    def directions_joined(self, n, am, ctx, outputs):
        """``torch.cat([h_n[0], h_n[1]], dim=0)``: the directions, each read out of the num_directions axis, joined
        along the batch (or time) instead of the hidden units; reported where the result reaches a Dense or the
        model's output without being reshaped back."""
        steps = [am.step(i) if i else None for i in n.input]
        if any(st is None for st in steps):
            return None
        read = {st[3] for st in steps}
        if len(read) != 1 or len({st[1] for st in steps}) != len(steps):
            return None
        if not all(f.source and am.is_direction(f.source) for st in steps for f in st[0]):
            return None
        first = n.input[0]
        xa, shape = am.axes(first), ctx.shape(first)
        axis = _attr(n, "axis", None)
        if xa is None or shape is None or type(axis) is not int or not -len(xa) <= axis < len(xa):
            return None
        k = axis + len(xa) if axis < 0 else axis
        if k in am.recurrent_features(first):
            return None  # along the hidden units: [forward | backward], as meant
        if am.has_role(xa[k], "batch", by_name=False):
            how = "batch"
        elif k in am.time_axes(first):
            how = "time"
        else:
            return None
        where = self.reaches(n.output[0], am, ctx, outputs)
        if where is None:
            return None
        (tensor,) = read
        name = n.name or n.output[0]
        d = steps[0][2]
        msg = (f"Concat {name!r} joins {len(steps)} directions of {self.source_text(am, tensor, d)} "
               f"{describe(am, tensor)} (entries {', '.join(str(st[1]) for st in steps)} of its num_directions axis) "
               f"along axis {k} of {am.labelled(first)}, the {how}, not the hidden units: the result "
               f"{format_shape(ctx.shape(n.output[0]))} {HOW[how]}, and it reaches {where}")
        h = len(xa) - 1
        fix = (f"concatenate along the hidden units: Concat(axis={h}); PyTorch torch.cat([h_n[-2], h_n[-1]], "
               f"dim={h}) or h_n[-2:].transpose(0, 1).reshape(B, -1)" +
               ctx.for_jax("jnp.concatenate([fwd, bwd], axis=-1)"))
        return ctx.finding(n, msg, fix=fix, tensor=n.output[0])

    @staticmethod
    def reaches(tensor, am, ctx, outputs, depth: int = 6):
        """The Dense or model output ``tensor`` goes on to through elementwise ops, before any reshape."""
        return reaches(am, ctx, tensor, outputs, lambda c: c.op_type in ELEMENTWISE_ON, depth, first_operand=True)

    @staticmethod
    def dense_rows(n, am, ctx):
        """The Reshape/Flatten that folds every axis but the features into the rows of this Dense (how tf2onnx
        and jax2onnx apply a Dense to an N-D tensor), or None."""
        a = n.input[0]
        p = ctx.graph.producer(a)
        if p is None or p.op_type not in ("Reshape", "Flatten") or len(am.axes(a) or ()) != 2:
            return None
        if n.op_type == "Gemm" and _attr(n, "transA", 0):
            return None
        xa = am.axes(p.input[0])
        if not xa or len(xa) < 3 or am.axis(a, 1) != xa[-1] or not am.several_directions(p.input[0]):
            return None
        if any(c is not n for c in ctx.graph.consumers(a)):
            return None
        # ... and whose result is unfolded back to those axes (a user's own flatten, h_n.reshape(-1, H), is not)
        out, back = n.output[0], None
        for _ in range(3):
            cons = ctx.graph.consumers(out)
            if len(cons) != 1:
                return None
            c = cons[0]
            if c.op_type == "Reshape":
                back = c
                break
            if c.op_type not in ("Add", "Identity", "Cast") or not c.output:
                return None
            out = c.output[0]
        ya = am.axes(back.output[0]) if back is not None else None
        if not ya or len(ya) != len(xa) or list(ya[:-1]) != list(xa[:-1]):
            return None
        return p

    def projection(self, n, am, ctx, rows_for_dense):
        rows = self.dense_rows(n, am, ctx)
        tensor = rows.input[0] if rows is not None else n.input[0]
        axes = am.axes(tensor)
        if not axes:
            return None
        k = len(axes) - 1
        if n.op_type == "Gemm" and rows is None and len(axes) == 2:
            k = 0 if _attr(n, "transA", 0) else 1
        dirs = [j for j in am.direction_axes(tensor) if j != k]
        if not dirs:
            return None
        d = next((j for j in dirs if am.axis(tensor, j)), dirs[0])
        several = bool(am.axis(tensor, d))
        if not several and not am.time_axes(tensor):
            return None  # Y_h of one direction: (1, batch, hidden) @ W keeps a harmless leading 1
        if rows is not None:
            rows_for_dense.add(id(rows))
        x = ctx.shape(tensor)
        w = ctx.shape(n.input[1])
        name = n.name or n.output[0]
        src = self.source_text(am, tensor, d)
        fails, why, k_w = False, "", None
        if n.op_type == "Gemm" and rows is None:
            fails, why = True, f"Gemm takes 2-D operands and gets {len(axes)} axes"
        elif w is not None and len(w) >= 2 and x is not None and n.op_type == "MatMul":
            k_w = w[-2]
            if compare(x[-1], k_w).relation == Relation.DIFFERENT:
                fails, why = True, f"the inner dims differ ({format_dim(x[-1])} vs {format_dim(k_w)})"
        ax = am.axis(tensor, d)
        layers = len({id(am.owner(s)) for f in ax or () for s in (f.source, *f.source.parents)
                      if am.owner(s) is not None}) > 1
        what = "num_layers*num_directions" if layers else "num_directions"
        via = f" (folded into its rows by {rows.op_type} {rows.name or rows.output[0]!r})" if rows is not None else ""
        msg = (f"{n.op_type} {name!r} is fed the output of {src} {describe(am, tensor)}{via} with its {what} axis "
               f"(axis {d}) still in place: ")
        if fails:
            msg += f"onnxruntime fails, {why}"
        else:
            out = n.output[0]
            if rows is not None:
                back = [c for c in ctx.graph.consumers(out) if c.op_type == "Reshape"]
                out = back[0].output[0] if len(back) == 1 else out
            msg += (f"the projection runs once per direction and its result {format_shape(ctx.shape(out))} "
                    "keeps that axis")
        perm, merged = self.merge_plan(d, k, x)
        if several:
            fix = _fix_two(perm, merged, ctx)
        else:
            squeezed = tuple(v for i, v in enumerate(x) if i != d) if x is not None else None
            fix = FIX_ONE.format(d=d, merged=format_shape(squeezed) if squeezed else "(seq, batch, hidden)")
        edit = None
        if n.op_type == "MatMul" and rows is None and k == len(axes) - 1 and x is not None:
            out = n.output[0]
            if not several:
                edit = Fix(f"insert Squeeze(axes=[{d}]) on {tensor!r} before {name!r}",
                           lambda m, o=out, t=tensor, d=d: _squeeze_before(m, o, t, d))
            elif merged is not None and k_w is not None and compare(merged[-1], k_w).relation == Relation.EQUAL:
                edit = Fix(f"insert Transpose(perm={perm}) and Reshape merging directions into hidden before {name!r}",
                           lambda m, o=out, t=tensor, p=perm, rank=len(axes): _merge_before(m, o, t, p, rank))
        if edit is not None and not keeps_shapes_consistent(ctx, edit):
            edit = None
        sev = Severity.ERROR if fails else Severity.WARNING
        return ctx.finding(n, msg, fix=fix, tensor=tensor, edit=edit, severity=sev)

    @staticmethod
    def source_text(am, tensor, d) -> str:
        """The recurrence(s) whose directions axis ``d`` of ``tensor`` holds, in words."""
        names = []
        for f in am.axis(tensor, d) or ():
            for s in (f.source, *f.source.parents):
                rc = am.owner(s)
                if rc is not None and rc.describe() not in names:
                    names.append(rc.describe())
        if not names:
            for f in (am.axes(tensor) or ((),))[-1]:
                rc = am.owner(f.source)
                if rc is not None:
                    names.append(rc.describe())
                    partner = am.partner(rc)
                    if partner is not None:
                        names.append(partner.describe())
        if not names:
            return "the recurrent layer"
        return names[0] if len(names) == 1 else "the stacked passes " + " and ".join(names)

    @staticmethod
    def merge_plan(d, h, x):
        """Permutation bringing the direction axis just before hidden, and the merged shape."""
        if x is None:
            return None, None
        order = [i for i in range(len(x)) if i != d]
        order.insert(order.index(h), d)
        dims = [x[i] for i in order]
        pos = order.index(d)
        merged = tuple(dims[:pos]) + (mul(dims[pos], dims[pos + 1]),) + tuple(dims[pos + 2:])
        return order, merged

    # ------------------------------------------------------------ reshapes
    def mix(self, n, k, how, am, ctx):
        name = n.name or n.output[0]
        x_t, y_t = n.input[0], n.output[0]
        x, y = ctx.shape(x_t), ctx.shape(y_t)
        d = next((j for j in am.direction_axes(x_t) if am.axis(x_t, j)), None)
        msg = (f"{n.op_type} {name!r} reshapes the output of {self.source_text(am, x_t, d)} {describe(am, x_t)} "
               f"into {format_shape(y)}: axis {k} ({am.word(am.axis(y_t, k))}) {HOW[how]}")
        h = len(x) - 1 if x is not None else None
        perm, merged = self.merge_plan(d, h, x) if h is not None and d != h else (None, None)
        fix = _fix_two(perm, merged, ctx)
        edit = None
        last_is_hidden = x is not None and bool(am.recurrent_features(x_t)) and am.recurrent_features(x_t)[-1] == h
        if n.op_type == "Reshape" and merged is not None and last_is_hidden and y is not None \
                and len(y) == len(merged) and all(compare(a, b).relation == Relation.EQUAL for a, b in zip(y, merged)):
            rank = len(y)
            edit = Fix(f"insert Transpose(perm={perm}) before {name!r} and reshape with [0, ..., -1]",
                       lambda m, o=y_t, p=perm, k=rank: _transpose_into_reshape(m, o, p, k),
                       preserves_outputs=False)
        return ctx.finding(n, msg, fix=fix, tensor=x_t, edit=edit)


def _fix_two(perm, merged, ctx) -> str:
    """FIX_TWO, without a do-nothing Transpose when the directions already sit just before hidden."""
    text = FIX_TWO.format(perm=perm, merged=format_shape(merged) if merged else "(..., 2*hidden)") + ctx.for_jax(
        "nnx.Bidirectional with its default merge (the directions concatenated on the features)")
    if perm is not None and list(perm) == list(range(len(perm))):
        text = text.replace(f"move the directions next to hidden, then merge them: Transpose(perm={perm}) and "
                            "Reshape to", "merge the directions into the features (they already sit just before "
                            "hidden): Reshape to")
    return text


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


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
