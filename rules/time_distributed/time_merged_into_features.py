"""The time axis is merged into the features before a recurrent layer: the sequence becomes one step.

## What it does
Finds a Flatten or Reshape that merges the time axis of a sequence with its
per-frame axes (``(B, T, C, H, W) -> (B, T*C*H*W)``, or ``(B, T, F) ->
(B, T*F)``) when what it computes reaches a recurrent layer as

* a one-step sequence: the recurrent op's time axis is 1 (typically an
  ``Unsqueeze`` after the flatten, maybe with a Dense in between), or
* the channels of a per-frame CNN: ``(B, T, C, H, W) -> (B, T*C, H, W)``
  then a Conv whose output goes on to the recurrent layer.

Which axis is time comes from the graph input's dim names (``time``,
``seq_len``, ``frames``, ...) or from a recurrent layer that reads it (see
``shapelint.roles``).  The finding is anchored on the reshape that merged
time.

## Why is this bad?
The model runs, but the LSTM sees one step holding every frame (or a CNN
that mixes frames through its first layer's channels), so it has no
sequence to learn from; with a dynamic length, the flattened width (and the
Dense or Conv weight sized for it) also only fits the traced length.  The
per-frame layers should have been applied frame by frame: Keras
``TimeDistributed``, or the fold-time-into-batch pattern in PyTorch.

## Example
```python
feats = self.cnn(video.flatten(1, 2))          # (B, T*C, H, W): frames become channels
out, _ = self.lstm(feats.flatten(1).unsqueeze(1))   # one step
```
Keras: ``Flatten()`` on ``(T, H, W, C)`` then ``Reshape((1, -1))`` before ``LSTM``.

## Use instead
```python
b, t = video.shape[:2]
feats = self.cnn(video.flatten(0, 1))          # (B*T, C, H, W): fold time into batch
out, _ = self.lstm(feats.unflatten(0, (b, t)).flatten(2))   # (B, T, F)
```
Keras: ``TimeDistributed(Conv2D(...))``, ``TimeDistributed(Flatten())``,
then ``LSTM``.

## Options
None.

## Limitations
Needs a time axis with evidence (a named input dim or a recurrent layer
reading it).  Merging time into features with no recurrent layer after it
(a classifier head over a whole clip) is legitimate and not reported; nor is
a merged vector repeated over a new sequence (``RepeatVector``).
"""

from __future__ import annotations

from shapelint.dims import format_dim, format_shape, product
from shapelint.roles import recurrences_for, roles_for
from shapelint.rule import Rule, Severity

CONVS = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv")
MERGERS = ("Reshape", "Flatten")


class TimeMergedIntoFeatures(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL301", "time-merged-into-features", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        if not recurrences_for(ctx):
            return  # both findings need a recurrent layer downstream of the merge
        roles = roles_for(ctx)
        reported = set()
        for n in ctx.graph.nodes:
            if n.op_type not in CONVS or not n.input or not n.output:
                continue
            a = roles.axis(n.input[0], 1)
            if not a.merges_time_into_features or not roles.reaches_recurrence(n.output[0]):
                continue
            merger = self.culprit(a, roles, ctx)
            if merger is not None and id(merger) not in reported:
                reported.add(id(merger))
                how = (f"{n.op_type} {n.name or n.op_type!r} then reads the frames as input channels and blends "
                       "them before the recurrent layer")
                yield self.finding(ctx, roles, merger, how)
        for rc in roles.recurrences:
            shape = ctx.shape(rc.tensor)
            if shape is None or not 0 <= rc.time_axis < len(shape) or shape[rc.time_axis] != 1:
                continue
            for merger in self.mergers_upstream(rc.tensor, roles, ctx):
                if id(merger) not in reported:
                    reported.add(id(merger))
                    how = (f"{rc.describe()} then runs a single step: it reads {roles.labelled(rc.tensor)}, whose "
                           f"time axis {rc.time_axis} is 1 long")
                    yield self.finding(ctx, roles, merger, how)

    def mergers_upstream(self, tensor, roles, ctx, limit: int = 512):
        """Reshapes that merged time into features, upstream of ``tensor``."""
        found, seen, stack = [], set(), [tensor]
        while stack and len(seen) < limit:
            t = stack.pop()
            if t in seen or roles.is_weight(t):
                continue
            seen.add(t)
            hit = next((a for a in roles.of(t) or () if a.merges_time_into_features), None)
            if hit is not None:
                merger = self.culprit(hit, roles, ctx)
                if merger is not None and all(m is not merger for m in found):
                    found.append(merger)
                continue
            p = ctx.producer(t)
            if p is not None and p.op_type not in ("Shape", "Size"):
                stack.extend(i for i in p.input if i)
        return found

    def culprit(self, role, roles, ctx, depth: int = 16):
        """The Reshape/Flatten where time was first merged with per-frame axes."""
        node = ctx.producer(role.origin) if role.origin else None
        while node is not None and node.op_type in MERGERS and depth > 0:
            earlier = next((a for a in roles.of(node.input[0]) or () if a.merges_time_into_features and a.origin), None)
            if earlier is None:
                return node
            prev = ctx.producer(earlier.origin)
            if prev is None or prev.op_type not in MERGERS:
                return node
            node, depth = prev, depth - 1
        return node if node is not None and node.op_type in MERGERS else None

    def finding(self, ctx, roles, merger, how):
        src, out = merger.input[0], merger.output[0]
        axis = next((k for k, a in enumerate(roles.of(out) or ()) if a.merges_time_into_features), None)
        where = "one axis packs the time steps with each step's values"
        if axis is not None:
            a = roles.axis(out, axis)
            where = f"axis {axis} packs the time steps with each step's values"
            if len(a.sizes) == len(a.parts) and a.sizes[0] is not None and a.parts[0] == "time":
                rest = product(a.sizes[1:])
                if rest is not None:
                    where = (f"axis {axis} packs the {format_dim(a.sizes[0])} time steps with {format_dim(rest)} "
                             "values per step")
        msg = (
            f"{merger.op_type} merges the time axis into the features: {roles.labelled(src)} becomes "
            f"{format_shape(ctx.shape(out))}, whose {where}; {how}"
        )
        fix = (
            "apply the per-frame layers frame by frame instead: PyTorch x.flatten(0, 1) (fold time into batch), the "
            "per-frame Conv/Linear, then .unflatten(0, (B, T)).flatten(2) into the LSTM; Keras TimeDistributed(Conv2D"
            "(...)) / TimeDistributed(Flatten()) before the LSTM instead of Flatten() or Reshape((1, -1))"
        )
        return ctx.finding(merger, msg, fix=fix, tensor=out)
