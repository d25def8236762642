"""Softmax, LogSoftmax, ArgMax or ArgMin of per-step predictions taken over the time axis.

## What it does
After a recurrent layer and a projection, per-step scores are ``(batch,
time, classes)`` (or ``(time, batch, classes)``).  The rule knows which axis
is time and which holds the projected classes, and reports a
Softmax/LogSoftmax/ArgMax/ArgMin whose axis is time.

Before opset 13, Softmax and LogSoftmax coerce their input to 2-D
``[prod(shape[:axis]), prod(shape[axis:])]``: ``axis`` (default 1) and every
axis after it are normalised *together*, so a 3-D ``(batch, time, classes)``
with ``axis=1`` is normalised over time and classes at once.  That counts as
over time too.

## Why is this bad?
Nothing fails: the output has the right shape.  But each class's scores sum
to 1 across the steps instead of each step's across the classes, and an
ArgMax picks the step with the highest score for each class instead of the
class of each step.

## Example
```python
logits = self.fc(out)                  # (batch, seq, classes)
probs = logits.softmax(dim=1)          # over seq
```
Keras: ``Softmax(axis=1)`` after ``TimeDistributed(Dense(classes))``.

## Use instead
```python
probs = logits.softmax(dim=-1)         # over classes; logits.argmax(dim=-1)
```
Keras: ``TimeDistributed(Dense(classes, activation="softmax"))`` or
``Softmax(axis=-1)``.  The attached edit sets ``axis`` to the class axis;
before opset 13 that only works with the classes last (``axis=rank-1``
then normalises one axis): otherwise transpose the classes last first.

## Options
None.

## Limitations
Only scores that went through a projection (MatMul/Gemm of the hidden
axis) are judged, and a softmax over time whose result weights the
sequence (attention pooling: multiplied back with the recurrent output) is
left alone.
"""

from __future__ import annotations

from shapelint.dims import format_dim
from shapelint.rule import Fix, Rule, Severity

from ._edit import Editor, keeps_shapes_consistent
from ._tracking import TRACKING_LIMITS, describe, source_of

OPS = ("Softmax", "LogSoftmax", "ArgMax", "ArgMin")


class SoftmaxOverTime(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL403", "softmax-over-time", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return
        opset = ctx.graph.opset
        for n in ctx.graph.topological_order():
            with ctx.isolated(n):
                if n.op_type not in OPS or not n.input or not n.input[0]:
                    continue
                x = ctx.shape(n.input[0])
                xa = am.axes(n.input[0])
                if x is None or xa is None or len(x) != len(xa):
                    if am.after_recurrence(n.input[0]):
                        ctx.skip(f"{n.name}: input shape unknown")
                    continue
                if not am.after_recurrence(n.input[0]):
                    continue
                times, feats = am.time_axes(n.input[0]), am.projected_axes(n.input[0])
                if len(times) != 1 or not feats:
                    continue
                t, f = times[0], feats[-1]
                if t == f or _one(x[f]) or _one(x[t]):
                    continue
                rank = len(x)
                softmax = n.op_type in ("Softmax", "LogSoftmax")
                coerced = softmax and opset < 13
                axis = _attr(n, "axis", (1 if coerced else -1) if softmax else 0)
                a = axis + rank if axis < 0 else axis
                if not 0 <= a < rank:
                    continue
                covered = set(range(a, rank)) if coerced else {a}
                if t not in covered:
                    continue
                if softmax and am.weights_the_sequence(n.output[0]):
                    continue
                yield self.finding(n, am, x, a, f, t, coerced, covered, opset, ctx)

    def finding(self, n, am, x, a, f, t, coerced, covered, opset, ctx):
        name = n.name or n.output[0]
        rank = len(x)
        desc = describe(am, n.input[0])
        src = source_of(am, n.input[0], t)
        if n.op_type in ("ArgMax", "ArgMin"):
            what = (f"picks, for each class, the step with the {'highest' if n.op_type == 'ArgMax' else 'lowest'} score "
                    "instead of the class of each step")
        else:
            what = "makes each class's scores sum to 1 over the steps instead of each step's over the classes"
        if coerced and len(covered) > 1:
            where = (f"opset {opset} {n.op_type} with axis={a} flattens {desc} to 2-D and normalises axes {a}..{rank - 1} "
                     f"together, time (axis {t}, the sequence of {src}) included")
        else:
            where = f"{n.op_type} over axis {a} of {desc} runs over time (the {format_dim(x[t])} steps of {src})"
        msg = f"{where}: it {what}"
        fix = ("take it over the class axis: PyTorch logits.softmax(dim=-1), torch.log_softmax(logits, dim=-1), "
               "logits.argmax(dim=-1); Keras TimeDistributed(Dense(classes, activation=\"softmax\")) or Softmax(axis=-1)"
               + ctx.for_jax("jax.nn.softmax(logits, axis=-1), jax.nn.log_softmax(logits, axis=-1), "
                             "jnp.argmax(logits, axis=-1)"))
        edit = None
        target = f if f != rank - 1 else -1
        if coerced:
            fix += (f"; before opset 13 {n.op_type}(axis=a) normalises axes a.. together, so keep the classes last and "
                    f"use axis={rank - 1}")
            if f == rank - 1:
                target = rank - 1
            else:
                target = None
                fix += " (transpose them last first)"
        if target is not None:
            edit = Fix(f"set axis={target} on {name!r} (the class axis)",
                       lambda m, o=n.output[0], op=n.op_type, v=target: _set_axis(m, o, op, v),
                       preserves_outputs=False)
            if n.op_type in ("ArgMax", "ArgMin") and not keeps_shapes_consistent(ctx, edit):
                edit = None
        return ctx.finding(n, msg, fix=fix, tensor=n.input[0], edit=edit)


def _set_axis(model, out, op, value):
    ed = Editor(model)
    node = ed.node(out, op)
    ed.set_attr(node, "axis", value)
    if op in ("ArgMax", "ArgMin"):
        ed.forget_shapes(ed.downstream(out))


def _one(d) -> bool:
    return isinstance(d, int) and d == 1


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default
