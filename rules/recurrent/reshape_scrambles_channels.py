"""A Reshape turns a conv map into a sequence without moving the channels: steps mix channels and positions.

## What it does
Finds a Reshape that regroups the channel and spatial axes of a conv feature
map into (steps, features) axes that do not line up with them, typically
``(N, C, H, W) -> (N, H*W, C)`` with no Transpose before it, when the result
reaches a recurrent layer (an LSTM/GRU/RNN op, or an LSTM that Keras 3
unrolled into per-step MatMul cells) as its time or feature axis.

The check is on what each axis *holds* (the axis algebra, ``shapelint.axes``):
channels are born at the Conv, positions come from its spatial axes, and the
Reshape lays them out in memory order and cuts them at the new shape's
boundaries.  Reported when the recurrence's **time** axis holds channels (a
cut that lines up, e.g. ``C == H*W``: the channels become the steps) or a
*scramble* (a cut that does not line up with the axes, e.g. ``C = 6`` and
``H*W = 16``: every step mixes channels and positions), or its **feature**
axis holds a scramble, or its time axis holds part of a row with part of a
column (an NHWC map cut to ``(N, W, H*C)`` without swapping H and W first).
The sizes do not matter: the same mistake is found
at ``C = 6, H*W = 16`` and at ``C = 16, H*W = 64``, with static or dynamic
dims, whatever they are named, NCHW or NHWC behind Transposes, and for a
recurrence written as an LSTM/GRU/RNN op, a Scan, a Loop or unrolled steps.
The well-formed ways to build a sequence are silent:

* ``x.permute(0, 2, 3, 1).reshape(N, H*W, C)``: one step per position;
* ``x.flatten(2).transpose(1, 2)``: the same, transposed after the merge;
* ``x.permute(0, 3, 1, 2).reshape(N, W, C*H)`` or ``x.view(N, C*H, W)`` then
  a permute: the CRNN pattern, one step per image column.

## Why is this bad?
Nothing fails: the element count is right and the model runs.  But a
``(N, C, H, W)`` map stored channel-major is read back as ``H*W`` "steps" of
``C`` values that are runs of one channel's pixels, so step ``k`` mixes
channels of several positions.  The LSTM learns from scrambled input and the
accuracy quietly suffers.  It is the classic CNN-to-LSTM mistake (Keras
``Reshape((H*W, C))``) applied to a channels-first map.

## Example
```python
f = self.conv(image)                  # (N, C, H, W)
n, c, h, w = f.shape
seq = f.reshape(n, h * w, c)          # no permute: channels and positions scrambled
out, _ = self.lstm(seq)               # batch_first=True
```
Keras: ``Conv2D(..., data_format="channels_first")`` then
``Reshape((H * W, C))``.

## Use instead
```python
seq = f.permute(0, 2, 3, 1).reshape(n, h * w, c)   # or f.flatten(2).transpose(1, 2)
```
Keras: keep ``data_format="channels_last"`` (the default) before
``Reshape((H * W, C))``, or add ``Permute((2, 3, 1))`` first.

## Options
None.

## Limitations
Needs the channels to come from a Conv (or ConvTranspose) the analysis can
follow to the Reshape; a cut that depends on a dim inference could not
compute (an unknown size) is not judged.  A time axis made of channels
without any Reshape (a Conv1d map fed to a batch-first recurrence without its
permute) is not this rule's finding.
"""

from __future__ import annotations

from shapelint.dims import format_shape
from shapelint.rule import Rule, Severity


class ReshapeScramblesChannels(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL202", "reshape-scrambles-channels", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return  # the scrambled map matters where a recurrent layer reads it
        reported = set()
        for rc in am.recurrences:
            with ctx.isolated(rc.node):
                slots = [(rc.time_axis, "time")]
                if rc.feature_axis is not None:
                    slots.append((rc.feature_axis, "feature"))
                for k, slot in slots:
                    ax = am.axis(rc.tensor, k)
                    culprit, why = self.culprit(am, rc.tensor, k, ax, slot)
                    if culprit is None or id(culprit) in reported:
                        continue
                    reported.add(id(culprit))
                    yield self.finding(ctx, am, culprit, why, rc)

    @staticmethod
    def culprit(am, tensor, k, ax, slot):
        sc = am.scramble_of(ax)
        if sc is not None and sc.node.op_type in ("Reshape", "Flatten"):
            kinds = {s.kind for s in sc.mixed}
            conv_map = all(s.kind in ("channel", "spatial") or am.has_label(s, "spatial") or am.has_label(s, "channel")
                           for s in sc.mixed)
            if "channel" in kinds and len(sc.mixed) > 1 and conv_map:
                return sc.node, "mix"  # (a scramble that also mixes in the batch is a baked size: SL501)
        if slot == "time" and ax and not any(f.source.kind == "channel" for f in ax):
            parts = [f for f in ax if not f.whole and (f.source.kind == "spatial" or am.has_label(f.source, "spatial"))]
            if parts and len(am.sources_of(ax)) > 1:
                origin = am.origin(tensor, k)
                if origin is not None and origin.op_type in ("Reshape", "Flatten"):
                    return origin, "positions"  # rows and columns cut apart: each step is part of a row
        if slot == "time" and ax and any(f.source.kind == "channel" for f in ax):
            # the channels are the steps: blame the Reshape that made the map a sequence (it formed an axis)
            rank = len(am.axes(tensor) or ())
            for j in [k] + [j for j in range(rank) if j != k]:
                origin = am.origin(tensor, j)
                if origin is not None and origin.op_type in ("Reshape", "Flatten"):
                    return origin, "channels"
            # through per-step layers (an input projection over every step): the reshape that made the map,
            # still holding these channels, a sequence
            chan = {id(f.source) for f in ax if f.source.kind == "channel"}
            seen, stack = set(), [tensor]
            while stack and len(seen) < 64:
                t = stack.pop()
                if t in seen or am.is_weight(t):
                    continue
                seen.add(t)
                p = am.graph.producer(t)
                if p is None:
                    continue
                if p.op_type in ("Reshape", "Flatten") and p.input:
                    a_in, a_out = am.axes(p.input[0]) or (), am.axes(t) or ()
                    if len(a_out) < len(a_in) and any(id(f.source) in chan for a in a_out for f in a or ()):
                        return p, "channels"
                stack.extend(i for i in p.input if i)
        return None, None

    def finding(self, ctx, am, reshape, why, rc):
        src, out = reshape.input[0], reshape.output[0]
        oa = am.axes(out) or ()
        become = "the time steps" if rc.kind != "op" else "the time steps and features"
        if why == "mix":
            mixed = [k for k, a in enumerate(oa) if a and any(f.source.kind == "scramble" for f in a)]
            where = " and ".join(str(k) for k in mixed)
            noun = "axis" if len(mixed) == 1 else "axes"
            each = "each mix" if len(mixed) > 1 else "mixes"
            what = f"{noun} {where} of the result {each} channels with spatial positions, and they become {become}"
        elif why == "positions":
            cut = [k for k, a in enumerate(oa) if a and any(not f.whole for f in a)]
            where = " and ".join(str(k) for k in cut) or "?"
            what = (f"the cut does not fall between the image's rows and columns: axis {where} of the result "
                    f"each hold parts of several rows or columns, and they become {become}")
        else:
            chan = [k for k, a in enumerate(oa) if a and any(f.source.kind == "channel" for f in a)]
            where = " and ".join(str(k) for k in chan) or "?"
            what = (f"axis {where} of the result holds the channels, so the channels become the time steps "
                    f"and each step's features are spatial positions")
        how = ("without bringing the axis it steps over first (a Transpose of rows and columns)"
               if why == "positions" else "without moving the channels last")
        msg = (
            f"{reshape.op_type} turns {am.labelled(src)} into {format_shape(ctx.shape(out))} {how}: {what} "
            f"of {rc.describe()}"
        )
        ia = am.axes(src) or ()
        order = [am.word(a) for a in ia if am.word(a) in ("channel", "spatial")]
        if order and order[0] == "channel":
            fix = (
                "move channels last before flattening the positions: PyTorch x.permute(0, 2, 3, 1).reshape(N, H*W, C) "
                "or x.flatten(2).transpose(1, 2) (CRNN: x.permute(0, 3, 1, 2).reshape(N, W, C*H)); Keras "
                "Permute((2, 3, 1)) before Reshape((H*W, C)), or data_format='channels_last'"
            ) + ctx.for_jax("Flax convs are channels-last, so x.reshape(N, H * W, C) on their (N, H, W, C) output; "
                            "for one step per column jnp.transpose(x, (0, 2, 1, 3)).reshape(N, W, H * C)")
        else:
            fix = (
                "reshape only along the axes' own order, and permute to put the axis you iterate over first: "
                "PyTorch x.reshape(N, H*W, C) on an (N, H, W, C) map, x.permute(...) before it otherwise; "
                "Keras Reshape((H*W, C)) on channels_last maps, Permute((2, 1, 3)) before Reshape((W, H*C)) for "
                "one step per image column"
            ) + ctx.for_jax("x.reshape(N, H * W, C) on a channels-last (N, H, W, C) map, jnp.transpose(x, ...) "
                            "first to put the axis the nnx.RNN iterates over after the batch")
        return ctx.finding(reshape, msg, fix=fix, tensor=out)
