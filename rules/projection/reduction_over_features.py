"""A reduction pools the hidden or class axis of a recurrent output and keeps time.

## What it does
Reports ReduceMean/ReduceSum/ReduceMax/ReduceMin over the hidden axis of
LSTM/GRU/RNN states (or over the class axis of their per-step projection)
when the time axis survives the reduction: one number per step comes out
where one vector per sequence (pooling over time) was meant.

## Why is this bad?
``out.mean(dim=2)`` of ``(batch, seq, hidden)`` averages the hidden units
of each step; ``probs.mean(-1)`` of softmax outputs is ``1/classes``
everywhere.  The model runs; the summary it computes is meaningless, and a
following layer ends up sized by the sequence length.

## Example
```python
out, _ = self.lstm(x)          # (batch, seq, hidden), batch_first
pooled = out.mean(dim=2)       # (batch, seq): hidden units averaged
```
Keras: ``GlobalAveragePooling1D(data_format="channels_first")`` on
``(batch, steps, features)``, or ``ops.mean(x, axis=-1)``.

## Use instead
```python
pooled = out.mean(dim=1)       # (batch, hidden): mean over time
```
Keras: ``GlobalAveragePooling1D()`` (channels_last) or ``ops.mean(x,
axis=1)``; in TensorFlow ``tf.reduce_mean(output_dense_sequence,
axis=1)``.  The attached edit reduces over the time axis instead.

## Options
None.

## Limitations
Reductions that are part of a normalisation or gating (the result is
combined back with the sequence: ``x - x.mean(-1, keepdim=True)``) and
reductions of weighted states (attention scores ``(out * v).sum(-1)``) are
not reported.  ReduceL2/ReduceLogSumExp and friends are not judged.
"""

from __future__ import annotations

from shapelint.dims import format_shape
from shapelint.rule import Fix, Rule, Severity

from ._edit import Editor, keeps_shapes_consistent
from ._tracking import TRACKING_LIMITS, describe, source_of

OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin")
POOLS = ("GlobalAveragePool", "GlobalMaxPool")  # tf2onnx writes reduce_mean(x, -1) as Transpose + GlobalAveragePool


class ReductionOverFeatures(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL404", "reduction-over-features", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return
        for use in am.uses:
            with ctx.isolated(use.node):
                n = use.node
                if use.what not in ("reduce", "pool") or n.op_type not in OPS + POOLS:
                    continue
                x = ctx.shape(use.tensor)
                xa = am.axes(use.tensor)
                if x is None or xa is None or len(x) != len(xa):
                    continue
                if not am.after_recurrence(use.tensor):
                    continue
                times = am.time_axes(use.tensor)
                axes = set(use.axes)
                if len(times) != 1 or not axes:
                    continue
                t = times[0]
                if t in axes or _one(x[t]):
                    continue
                rf = set(am.recurrent_features(use.tensor))
                feats = [k for k in sorted(axes) if not _one(x[k]) and k in rf]
                if not feats or any(k not in feats and not _one(x[k]) for k in axes):
                    continue
                if am.weights_the_sequence(n.output[0]):
                    continue
                yield self.finding(n, am, use.tensor, x, sorted(axes), feats, t, ctx)

    def finding(self, n, am, src, x, axes, feats, t, ctx):
        name = n.name or n.output[0]
        desc = describe(am, src)
        proj = feats[0] in am.projected_axes(src)
        what = "projected features (classes)" if proj else "hidden units"
        msg = (f"{n.op_type} {name!r} reduces axis {', '.join(map(str, feats))} of the output of "
               f"{source_of(am, src, t)} {desc}, the {what}, and keeps time (axis {t}): the result "
               f"{format_shape(ctx.shape(n.output[0]))} has one value per step instead of one vector per sequence")
        batch_first = t == 1
        op = n.op_type if n.op_type in OPS else ("ReduceMean" if n.op_type == "GlobalAveragePool" else "ReduceMax")
        fix = (f"pool over time: PyTorch out.{_torch(op)}(dim={t}) ({'batch_first' if batch_first else 'time-major'}); "
               f"Keras GlobalAveragePooling1D() / GlobalMaxPooling1D() (channels_last) or ops.mean(x, axis={t})"
               + ctx.for_jax(f"jnp.{_torch(op).replace('amax', 'max').replace('amin', 'min')}(ys, axis={t}) over the "
                             "steps of an nnx.RNN's (B, T, H) output"))
        edit = None
        if n.op_type in OPS and src == n.input[0]:
            new_axes = sorted({t} | {k for k in axes if k not in feats})
            edit = Fix(f"reduce {name!r} over axes {new_axes} (time) instead of {axes}",
                       lambda m, o=n.output[0], op=n.op_type, v=new_axes: _set_axes(m, o, op, v))
            if not keeps_shapes_consistent(ctx, edit):
                edit = None  # a layer downstream is sized by the steps: it needs resizing too
                fix += "; then size the next layer to the pooled features (nn.Linear(hidden_size, ...); Dense infers it)"
        return ctx.finding(n, msg, fix=fix, tensor=src, edit=edit)


def _torch(op):
    return {"ReduceMean": "mean", "ReduceSum": "sum", "ReduceMax": "amax", "ReduceMin": "amin"}[op]


def _set_axes(model, out, op, axes):
    ed = Editor(model)
    node = ed.node(out, op)
    if any(a.name == "axes" for a in node.attribute) or len(node.input) < 2 or not node.input[1]:
        if len(node.input) < 2 and (op == "ReduceSum" and ed.opset >= 13 or ed.opset >= 18):
            node.input.append(ed.ints(f"{node.name or out}/axes", axes))
        else:
            ed.set_attr(node, "axes", list(axes))
    else:
        node.input[1] = ed.ints(f"{node.name or out}/axes", axes)
    ed.forget_shapes(ed.downstream(out))


def _one(d) -> bool:
    return isinstance(d, int) and d == 1
