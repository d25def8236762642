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

What the axes hold comes from the axis algebra (``shapelint.axes``): a fold
keeps the batch and time factors side by side in one axis, a per-frame Conv
or Dense reads that axis as its samples, and an exact unfold
``(B*T, ...) -> (B, T, ...)`` gives the two factors back.  A recurrent op
whose batch slot holds the folded factors while its time slot is one step
long (or the reverse) is reported whatever the dims are named or if they are
static.  So is an unfold in the wrong order, ``(B*T, F) -> (T, B, F)`` without
a Transpose: its cut puts part of the batch into the time axis (static sizes)
or lines up only when ``B == T`` (symbolic sizes), and the recurrent layer
then reads that mix.

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
is reported too: ignore the code for such models (``--ignore SL302``).  A
folded *output* is reported only when one of the folded axes is known to be
time (a recurrent layer reads it, or, where no op says, its dim name).
"""

from __future__ import annotations

from shapelint.dims import format_shape
from shapelint.rule import Rule, Severity

MERGERS = ("Reshape", "Flatten")


def literal_stands_for_dynamic(ctx, sc) -> bool:
    """A scrambling reshape whose output has a literal size that none of the mixed axes has: a traced size
    baked in where a dynamic axis was (SL501's finding), not an unfold in the wrong order."""
    y = ctx.shape(sc.node.output[0])
    if y is None:
        return False
    sizes = {s.size for s in sc.mixed if isinstance(s.size, int)}
    literals = [y[k] for k in sc.axes if isinstance(y[k], int) and y[k] > 1]
    return any(v not in sizes for v in literals) and any(not isinstance(s.size, int) for s in sc.mixed)


class TimeFoldNotUnfolded(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL302", "time-fold-not-unfolded", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        reported = set()
        for rc in am.recurrences:
            with ctx.isolated(rc.node):
                tb = [am.axis(rc.tensor, rc.time_axis),
                      am.axis(rc.tensor, rc.batch_axis) if rc.batch_axis is not None else None]
                if tb[0] is None:
                    continue
                # 1. a folded axis as the batch with a one-step sequence, or as the sequence with a batch of one
                for fold_k, other_k, as_what in ((rc.batch_axis, rc.time_axis, "batch, with a one-step sequence"),
                                                 (rc.time_axis, rc.batch_axis, "sequence, with a batch of one")):
                    if fold_k is None or other_k is None:
                        continue
                    fold, other = am.axis(rc.tensor, fold_k), am.axis(rc.tensor, other_k)
                    if other != () or not self.folded(am, fold):
                        continue
                    folder = am.origin(rc.tensor, fold_k)
                    if folder is None or folder.op_type not in MERGERS or id(folder) in reported:
                        continue
                    reported.add(id(folder))
                    src, out = folder.input[0], folder.output[0]
                    msg = (
                        f"{folder.op_type} folds time into the batch, {am.labelled(src)} "
                        f"-> {format_shape(ctx.shape(out))}, and the fold is never undone: {rc.describe()} gets "
                        f"{am.labelled(rc.tensor)}, the folded axis as its {as_what}"
                    )
                    fix = (
                        "unfold before the recurrent layer: PyTorch feats.unflatten(0, (B, T)) (or .view(B, T, -1)) after "
                        "the per-frame layers that ran on x.flatten(0, 1); Keras TimeDistributed(...) around the "
                        "per-frame layers, which folds and unfolds for you"
                    ) + ctx.for_jax("x.reshape(B, T, -1) after the per-frame layers that ran on x.reshape(B * T, ...), "
                                    "or nnx.vmap / jax.vmap them over the time axis")
                    yield ctx.finding(folder, msg, fix=fix, tensor=out)
                # 2. unfolded in the wrong order: the recurrence's time and batch slots share a cut source or a mix
                culprit = None
                for k in (rc.time_axis, rc.batch_axis):
                    sc = am.scramble_of(am.axis(rc.tensor, k)) if k is not None else None
                    if sc is not None and sc.node.op_type in MERGERS and self.was_fold(am, sc.mixed) \
                            and not literal_stands_for_dynamic(ctx, sc):
                        culprit = sc.node
                        break
                if culprit is None and tb[1] is not None and am.split_across(tb[0], tb[1]):
                    if self.was_fold(am, [f.source for f in tb[0] + tb[1]]):
                        culprit = am.origin(rc.tensor, rc.time_axis) or am.origin(rc.tensor, rc.batch_axis)
                if culprit is not None and culprit.op_type in MERGERS and id(culprit) not in reported:
                    reported.add(id(culprit))
                    msg = (
                        f"{culprit.op_type} unfolds {am.labelled(culprit.input[0])} into "
                        f"{format_shape(ctx.shape(culprit.output[0]))} in the wrong order: the folded axis holds each "
                        f"sample's steps together, so this cut mixes samples and steps, and {rc.describe()} reads "
                        f"{am.labelled(rc.tensor)}"
                    )
                    fix = (
                        "unfold in the order of the fold, then transpose: PyTorch feats.view(B, T, -1).transpose(0, 1) "
                        "for a time-major LSTM (not feats.view(T, B, -1)), or nn.LSTM(batch_first=True) on "
                        "feats.view(B, T, -1); Keras TimeDistributed(...) around the per-frame layers"
                    ) + ctx.for_jax("feats.reshape(B, T, -1) in the order of the fold (not (T, B, -1)), then "
                                    "jnp.swapaxes(feats, 0, 1) only for a time-major scan")
                    yield ctx.finding(culprit, msg, fix=fix, tensor=culprit.output[0])
        yield from self.folded_outputs(ctx, am, reported)

    @staticmethod
    def folded(am, ax) -> bool:
        """One axis holding several samples' worth of axes that a per-frame layer (or a name) says hold time."""
        srcs = am.sources_of(ax)
        if len(srcs) < 2:
            return False
        if any(am.is_(s, "time") for s in srcs) and not all(am.is_(s, "time") for s in srcs):
            return True
        return all(am.has_label(s, "sample") for s in srcs)

    @staticmethod
    def was_fold(am, sources) -> bool:
        """These sources were folded into one axis that a per-frame layer read as samples (batch and time)."""
        srcs = list({id(s): s for s in sources}.values())
        if len(srcs) < 2:
            return False
        if all(am.has_label(s, "sample") for s in srcs):
            return True
        return any(am.is_(s, "batch") for s in srcs) and any(am.is_(s, "time") for s in srcs)

    def folded_outputs(self, ctx, am, reported):
        """Graph outputs still folded after per-frame Conv/Dense layers ran on the fold."""
        for vi in ctx.graph.graph.output:
            for k, ax in enumerate(am.axes(vi.name) or ()):
                srcs = am.sources_of(ax)
                if len(srcs) < 2 or not all(am.has_label(s, "sample") for s in srcs):
                    continue
                times = [am.is_(s, "time") for s in srcs]
                if not any(times) or all(times):
                    continue  # no time in it, or time alone (a scrambled time axis is SL202's): not batch and time
                folder = am.origin(vi.name, k)
                if folder is None or folder.op_type not in MERGERS or id(folder) in reported:
                    continue
                reported.add(id(folder))
                src = folder.input[0]
                msg = (
                    f"{folder.op_type} folds time into the batch, {am.labelled(src)} "
                    f"-> {format_shape(ctx.shape(folder.output[0]))}, for the per-frame layers, and the fold is never "
                    f"undone: graph output {vi.name!r} is {am.labelled(vi.name)}, "
                    f"axis {k} still holds batch and time together"
                )
                fix = (
                    "unfold after the per-frame layers: PyTorch logits.unflatten(0, (B, T)) (or .reshape(B, T, -1)) "
                    "with B, T read from the input; Keras TimeDistributed(...) around the per-frame layers"
                ) + ctx.for_jax("logits.reshape(B, T, -1) with B, T from x.shape")
                yield ctx.finding(folder, msg, fix=fix, tensor=folder.output[0])
