"""The first time step of a forward recurrent output is taken as the sequence summary.

## What it does
Reports a Gather or Slice that takes step 0 of the time axis of a forward
LSTM/GRU/RNN output (a unidirectional layer, or the forward half of a
bidirectional one) when that step goes on to the model's output or to its
classifier: the last step was meant.  Step 0 of the *backward* direction
is its final state and is not reported, neither is ``Y_h``, nor a step 0
that a per-step layer takes and stacks back along time
(``TimeDistributed``, unrolled).

## Why is this bad?
The forward state at step 0 has read one element of the sequence.  A
classifier fed it ignores everything after the first token or frame; the
model runs, trains poorly and the mistake is invisible in the shapes.

## Example
```python
out, _ = self.lstm(x)             # (batch, seq, hidden), batch_first
logits = self.fc(out[:, 0, :])    # the state after the first step
```
Keras: ``Lambda(lambda t: t[:, 0])`` after ``LSTM(return_sequences=True)``.

## Use instead
```python
logits = self.fc(out[:, -1, :])   # or h_n[-1]
# bidirectional: torch.cat([out[:, -1, :H], out[:, 0, H:]], dim=-1), or h_n[-2:]
```
Keras: ``LSTM(units, return_sequences=False)``.  For a unidirectional
layer the attached edit takes the last step instead (index -1).

## Options
None.

## Limitations
Only constant indices are judged.  With padded batches the last valid step
depends on each sequence's length; that is not checked.  ``out[:, -1]`` of a
*bidirectional* layer is not reported either, though its backward half there
has read only the last step (it is the summary many tutorials take); use the
bidirectional form above, or ``h_n``, where both directions should summarise
the whole sequence.
"""

from __future__ import annotations

from shapelint.rule import Fix, Rule, Severity

from ._edit import Editor
from ._tracking import TRACKING_LIMITS, describe, reaches

#: consumers that stack per-step results back: not where a summary leaves
STACKERS = ("Concat", "ConcatFromSequence", "SequenceConstruct", "SequenceInsert")
INT64_MAX = 2**63 - 1


class FirstStepTaken(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL405", "first-step-taken", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return
        outputs = {o.name for o in ctx.graph.graph.output}
        for n in ctx.graph.topological_order():
            with ctx.isolated(n):
                if n.op_type not in ("Gather", "Slice", "Split") or not n.input or not n.output or not n.output[0]:
                    continue
                st = am.step(n.output[0])
                if st is None or st[1] != 0 or st[3] != n.input[0]:
                    continue
                data, axis = n.input[0], st[2]
                if not am.after_recurrence(data):
                    continue  # step 0 of the input, before any recurrence
                rc = am.recurrence_of(st[0])
                if rc is None or rc.direction == "reverse":
                    continue  # not a recurrence's time axis, or a backward one (its step 0 is its final state)
                if am.step_series(data, axis) - {0}:
                    continue  # per-step layers (TimeDistributed, a stacked unrolled layer) take every step
                bidir = rc.direction == "bidirectional"
                if bidir and not self.has_direction(am, data):
                    continue  # the direction was picked before: which one is not followed
                where = self.reaches(am, ctx, n.output[0], outputs)
                if where is None:
                    continue
                yield self.finding(n, am, rc, data, axis, bidir, where, ctx)

    @staticmethod
    def has_direction(am, tensor) -> bool:
        return any(f.source.kind == "direction" for ax in am.axes(tensor) or () for f in ax or ())

    @staticmethod
    def reaches(am, ctx, tensor, outputs, depth: int = 8):
        """The model output or the classifier (a Dense) the step goes on to, before being stacked back."""
        return reaches(am, ctx, tensor, outputs, lambda c: c.op_type not in STACKERS, depth)

    def finding(self, n, am, rc, data, axis, bidir, where, ctx):
        name = n.name or n.output[0]
        desc = describe(am, data)
        msg = (f"{n.op_type} {name!r} takes step 0 of the time axis (axis {axis}) of the output of {rc.describe()} "
               f"{desc}{' (its forward half)' if bidir else ''}: the forward state there has read only the first "
               f"step of the sequence, and it reaches {where}"
               + (" (step 0 of the backward half is its final state and is fine)" if bidir else ""))
        fix = ("take the last step: PyTorch out[:, -1, :] (batch_first; out[-1] time-major) or h_n[-1]"
               + ("; bidirectional: torch.cat([out[:, -1, :H], out[:, 0, H:]], dim=-1) or "
                  "h_n[-2:].transpose(0, 1).reshape(B, -1)" if bidir else "")
               + "; Keras LSTM(units, return_sequences=False), or x[:, -1, :]"
               + ctx.for_jax("ys[:, -1] of a forward nnx.RNN (batch-major; ys[-1] of lax.scan's time-major outputs), "
                             "or the final carry (nnx.RNN(return_carry=True), lax.scan's first result)"
                             + ("; bidirectional: each direction's final carry, concatenated" if bidir else "")))
        edit = None
        if not bidir:
            if n.op_type == "Gather":
                edit = Fix(f"take step -1 instead of 0 in {name!r}", lambda m, o=n.output[0]: _gather_last(m, o))
            elif n.op_type == "Slice" and len(n.input) >= 3:
                rank = len(am.axes(data) or ())
                edit = Fix(f"slice the last step instead of the first in {name!r}",
                           lambda m, o=n.output[0], a=axis, k=rank: _slice_last(m, o, a, k))
        return ctx.finding(n, msg, fix=fix, tensor=n.output[0], edit=edit)


def _gather_last(model, out):
    ed = Editor(model)
    node = ed.node(out, "Gather")
    old = _const(model, node.input[1])
    shape = () if old is None else old.shape
    import numpy as np

    node.input[1] = ed.ints(f"{node.name or out}/last", np.full(shape, -1, dtype=np.int64))


def _slice_last(model, out, axis, rank):
    import numpy as np

    ed = Editor(model)
    node = ed.node(out, "Slice")
    starts, ends = _const(model, node.input[1]), _const(model, node.input[2])
    axes = _const(model, node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if starts is None or ends is None:
        raise ValueError("Slice bounds are not constants")
    axes = list(range(len(starts))) if axes is None else [int(a) + rank if a < 0 else int(a) for a in axes]
    k = axes.index(axis)
    starts, ends = starts.astype(np.int64).copy(), ends.astype(np.int64).copy()
    starts[k], ends[k] = -1, INT64_MAX
    base = node.name or out
    node.input[1] = ed.ints(f"{base}/starts", starts)
    node.input[2] = ed.ints(f"{base}/ends", ends)


def _const(model, name):
    from onnx import numpy_helper

    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            from shapelint.graph import constant_node_value

            return constant_node_value(n)
    return None
