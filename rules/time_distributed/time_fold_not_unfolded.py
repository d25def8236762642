"""Time was folded into the batch for per-frame layers and never unfolded (before the recurrent layer or the output).

## What it does
Finds a Reshape/Flatten that folds the time axis into the batch
(``(B, T, C, H, W) -> (B*T, C, H, W)``, the right first half of a
TimeDistributed layer) whose ``B*T`` axis reaches a recurrent layer still
folded: as the recurrent op's batch with a one-step sequence
(``(B*T, 1, F)``), or as its sequence with a batch of one
(``(1, B*T, F)``); or that reaches a graph output still folded after the
per-frame Conv/Dense layers ran on it (per-frame logits returned as
``(B*T, classes)``).  The finding is anchored on the reshape that folded.

Which axes are batch and time comes from the graph input's dim names
(``batch``, ``frames``, ``seq_len``, ...) or from layers that read them (see
``shapelint.roles``); the unfold ``(B*T, ...) -> (B, T, ...)`` is recognised
by its symbolic sizes.

## Why is this bad?
The model runs, but the recurrent layer never sees a sequence: either every
frame is a separate one-step sample, or the whole batch is one long
sequence whose state flows from one video into the next.  The per-frame
features must be unfolded back to ``(B, T, F)`` first.  A folded output
mixes clips and frames in one axis: callers cannot tell which rows belong
to which clip, and its declared shape no longer says ``(batch, time, ...)``.

## Example
```python
feats = self.cnn(video.flatten(0, 1))         # (B*T, F)
out, _ = self.lstm(feats.unsqueeze(1))        # (B*T, 1, F): one step per frame
```

## Use instead
```python
b, t = video.shape[:2]
out, _ = self.lstm(feats.unflatten(0, (b, t)))   # (B, T, F), batch_first=True
```
Keras: wrap the per-frame layers in ``TimeDistributed(...)`` instead of
``Reshape((-1, H, W, C))`` by hand; it folds and unfolds for you.

## Options
None.

## Limitations
A fold that reaches a recurrent layer iterating over another real axis (a
character LSTM inside each word, batch ``B*words``) is legitimate and not
reported.  A ``(B*T, classes)`` output made on purpose (per-frame losses)
is reported too: ignore the code for such models (``--ignore SL302``).
Recurrences exported as Loop/Scan are checked through their scanned axis
only.
"""

from __future__ import annotations

from shapelint.dims import format_shape
from shapelint.roles import recurrences_for, roles_for
from shapelint.rule import Rule, Severity

MERGERS = ("Reshape", "Flatten")
PER_FRAME = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MatMul", "Gemm")


class TimeFoldNotUnfolded(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL302", "time-fold-not-unfolded", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        if not recurrences_for(ctx) and not self.may_fold(ctx):
            return
        roles = roles_for(ctx)
        reported = set()
        for rc in roles.recurrences:
            if rc.batch_axis is None:
                continue
            shape = ctx.shape(rc.tensor)
            r = roles.of(rc.tensor)
            if shape is None or r is None or max(rc.batch_axis, rc.time_axis) >= len(shape):
                continue
            for fold_ax, other in ((rc.batch_axis, rc.time_axis), (rc.time_axis, rc.batch_axis)):
                a = r[fold_ax]
                if not (a.folds_time_into_batch and a.origin) or shape[other] != 1:
                    continue
                folder = ctx.producer(a.origin)
                if folder is None or folder.op_type not in MERGERS or id(folder) in reported:
                    continue
                reported.add(id(folder))
                as_what = "batch, with a one-step sequence" if fold_ax == rc.batch_axis else "sequence, with a batch of one"
                src, out = folder.input[0], folder.output[0]
                msg = (
                    f"{folder.op_type} folds time into the batch, {roles.labelled(src)} "
                    f"-> {format_shape(ctx.shape(out))}, and the fold is never undone: {rc.describe()} gets "
                    f"{roles.labelled(rc.tensor)}, the folded axis as its {as_what}"
                )
                fix = (
                    "unfold before the recurrent layer: PyTorch feats.unflatten(0, (B, T)) (or .view(B, T, -1)) after "
                    "the per-frame layers that ran on x.flatten(0, 1); Keras TimeDistributed(...) around the "
                    "per-frame layers, which folds and unfolds for you"
                )
                yield ctx.finding(folder, msg, fix=fix, tensor=out)
        yield from self.folded_outputs(ctx, roles, reported)

    @staticmethod
    def may_fold(ctx) -> bool:
        """A Reshape/Flatten and a per-frame layer: without both, no output can be left folded."""
        ops = {n.op_type for n in ctx.graph.nodes}
        return not ops.isdisjoint(MERGERS) and not ops.isdisjoint(PER_FRAME)

    def folded_outputs(self, ctx, roles, reported):
        """Graph outputs still folded after per-frame Conv/Dense layers ran on the fold."""
        per_frame = set()
        for n in ctx.graph.nodes:
            if n.op_type in PER_FRAME and n.input and n.input[0]:
                a = roles.axis(n.input[0], 0)
                if a.folds_time_into_batch and a.origin:
                    per_frame.add(a.origin)
        for vi in ctx.graph.graph.output:
            for k, a in enumerate(roles.of(vi.name) or ()):
                if not (a.folds_time_into_batch and a.origin in per_frame):
                    continue
                folder = ctx.producer(a.origin)
                if folder is None or folder.op_type not in MERGERS or id(folder) in reported:
                    continue
                reported.add(id(folder))
                src = folder.input[0]
                msg = (
                    f"{folder.op_type} folds time into the batch, {roles.labelled(src)} "
                    f"-> {format_shape(ctx.shape(a.origin))}, for the per-frame layers, and the fold is never undone: "
                    f"graph output {vi.name!r} is {roles.labelled(vi.name)}, "
                    f"axis {k} still holds batch and time together"
                )
                fix = (
                    "unfold after the per-frame layers: PyTorch logits.unflatten(0, (B, T)) (or .reshape(B, T, -1)) "
                    "with B, T read from the input; Keras TimeDistributed(...) around the per-frame layers"
                )
                yield ctx.finding(folder, msg, fix=fix, tensor=a.origin)
