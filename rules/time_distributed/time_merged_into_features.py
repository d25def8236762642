"""The time axis is merged into the features before a recurrent layer: the sequence becomes one step.

## What it does
Finds a Flatten or Reshape that merges the time axis of a sequence with its
per-frame axes (``(B, T, C, H, W) -> (B, T*C*H*W)``, or ``(B, T, F) ->
(B, T*F)``) when what it computes reaches a recurrent layer as

* a one-step sequence: the recurrent op's time axis is 1 (typically an
  ``Unsqueeze`` after the flatten, maybe with a Dense in between), or
* the channels of a per-frame CNN: ``(B, T, C, H, W) -> (B, T*C, H, W)``
  then a Conv whose output goes on to the recurrent layer.

What was merged comes from the axis algebra (``shapelint.axes``): the
merged axis holds the factors of the axes it was made of.  Reported when it
holds a time axis (one a recurrent layer iterates over, or, where no op
says, a graph-input dim named like ``time``/``frames``) beside other axes,
or axes 1 and 2 of a clip input ``(B, T, C, H, W)`` stacked as a Conv's
channels; or, for a recurrent layer that runs a single step, when the features it reads
were made (through per-step layers and Dense weights) from a merge of two or
more of the sample's own input axes, not of a conv map's channels and
positions: with static or anonymous dims the one-step recurrence is the
evidence.  The finding is anchored on the reshape that merged time.

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
Merging time into features with no recurrent layer after it (a classifier
head over a whole clip) is legitimate and not reported; nor is a merged
vector repeated over a new sequence (``RepeatVector``), nor a conv map
flattened per image into a one-step recurrence (image captioning).
"""

from __future__ import annotations

from shapelint.dims import format_dim, format_shape, product
from shapelint.rule import Rule, Severity

CONVS = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv")
MERGERS = ("Reshape", "Flatten")
# per-step ops a one-step sequence's features may pass through after the merge
PASS = frozenset("Identity Cast Relu Tanh Sigmoid LeakyRelu Elu Selu Gelu Softplus Dropout Add Sub Mul Div "
                 "Unsqueeze Squeeze Reshape Flatten Transpose MatMul Gemm LayerNormalization BatchNormalization "
                 "Expand".split())


class TimeMergedIntoFeatures(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL301", "time-merged-into-features", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return  # both findings need a recurrent layer downstream of the merge
        reported = set()
        for n in ctx.graph.nodes:
            with ctx.isolated(n):
                if n.op_type not in CONVS or not n.input or not n.output:
                    continue
                ax = am.axis(n.input[0], 1)
                if not (self.has_time(am, ax) or self.clip_frames(am, ax, n)) or not am.reaches_recurrence(n.output[0]):
                    continue
                merger = am.origin(n.input[0], 1)
                if merger is not None and merger.op_type in MERGERS and id(merger) not in reported:
                    reported.add(id(merger))
                    how = (f"{n.op_type} {n.name or n.op_type!r} then reads the frames as input channels and blends "
                           "them before the recurrent layer")
                    yield self.finding(ctx, am, merger, how)
        for rc in am.recurrences:
            with ctx.isolated(rc.node):
                if am.axis(rc.tensor, rc.time_axis) != ():
                    continue
                for merger, k in self.mergers_upstream(rc.tensor, am, ctx):
                    if id(merger) not in reported:
                        reported.add(id(merger))
                        how = (f"{rc.describe()} then runs a single step: it reads {am.labelled(rc.tensor)}, whose "
                               f"time axis {rc.time_axis} is 1 long")
                        yield self.finding(ctx, am, merger, how, k)

    @staticmethod
    def has_time(am, ax) -> bool:
        """A merged axis holding a time axis beside other axes."""
        srcs = am.sources_of(ax)
        if any(am.is_(s, "batch") or am.has_label(s, "sample") or am.has_label(s, "folded-batch") for s in srcs):
            return False  # time folded into the batch: SL302's finding
        return len(srcs) >= 2 and any(am.is_(s, "time") for s in srcs) and not all(am.is_(s, "time") for s in srcs)

    @staticmethod
    def sample_merge(am, ax, reader=None) -> bool:
        """Two or more whole input axes of the sample merged (not a conv map's channels and positions).

        ``reader``: the op that reads the merged axis; what it says of the axis is not evidence."""
        if not ax or len(ax) < 2 or not all(f.whole for f in ax):
            return False
        srcs = am.sources_of(ax)
        if any(am.is_(s, "batch") or am.has_label(s, "sample") or am.has_label(s, "folded-batch") for s in srcs):
            return False
        def said(s, role):
            return any(n is not reader for n in am.labels(s).get(role, []))

        return len(srcs) >= 2 and all(s.kind == "input" and not said(s, "spatial") and not said(s, "channel")
                                      for s in srcs)

    @staticmethod
    def unfolded_into_features(am, ax) -> bool:
        """An axis that per-frame layers read as samples (folded with the batch), unfolded into each frame's
        features (tf2onnx merges TimeDistributed's unfold with a Flatten into one Reshape)."""
        srcs = am.sources_of(ax)
        if len(srcs) < 2:
            return False
        frames = [s for s in srcs if am.has_label(s, "sample") and not am.is_(s, "batch")]
        per_frame = [s for s in srcs if s.kind in ("channel", "spatial") or am.has_label(s, "spatial")
                     or am.has_label(s, "channel")]
        return bool(frames) and bool(per_frame)

    @staticmethod
    def scrambled_merge(am, ax) -> bool:
        """A reshape that merged the sample's axes with a literal width (Keras ``Flatten`` traced at one length,
        ``(B, T, F) -> (-1, T*F)``): it lines up only at the traced length, so the algebra records a scramble."""
        sc = am.scramble_of(ax)
        if sc is None or sc.node.op_type not in MERGERS:
            return False
        inputs = [s for s in sc.mixed if s.kind == "input"]
        return len(inputs) >= 2 and sum(not am.is_(s, "batch") for s in inputs) >= 2

    @classmethod
    def clip_frames(cls, am, ax, reader) -> bool:
        """Axis 1 of a clip ``(B, T, C, H, W)`` (a rank-5 input) merged with its colour planes into channels."""
        if not cls.sample_merge(am, ax, reader):
            return False
        srcs = am.sources_of(ax)
        rank = {len(am.table.shape(s.tensor) or ()) for s in srcs}
        return rank == {5} and len({s.tensor for s in srcs}) == 1 and any(s.axis == 1 for s in srcs)

    def mergers_upstream(self, tensor, am, ctx, limit: int = 256):
        """Reshapes upstream of a one-step sequence that merged time (or the sample's axes) into features."""
        found, seen, stack = [], set(), [tensor]
        while stack and len(seen) < limit:
            t = stack.pop()
            if t in seen or am.is_weight(t):
                continue
            seen.add(t)
            for k, ax in enumerate(am.axes(t) or ()):
                if self.has_time(am, ax) or self.sample_merge(am, ax) or self.scrambled_merge(am, ax) \
                        or self.unfolded_into_features(am, ax):
                    merger = am.origin(t, k)
                    if merger is not None and merger.op_type in MERGERS and all(m is not merger for m, _ in found):
                        found.append((merger, k))
            p = ctx.producer(t)
            if p is not None and p.op_type in PASS:
                stack.extend(i for i in p.input if i)
        return found

    def finding(self, ctx, am, merger, how, axis=None):
        src, out = merger.input[0], merger.output[0]
        oa = am.axes(out) or ()
        if axis is None:
            axis = next((k for k, ax in enumerate(oa) if self.has_time(am, ax)), None)
        where = "one axis packs the time steps with each step's values"
        steps = None  # the input axis the message calls the time steps, labelled so in the brackets too
        if axis is not None and axis < len(oa):
            ax = oa[axis]
            where = f"axis {axis} packs the time steps with each step's values"
            if ax and len(ax) >= 2:
                first, rest = ax[0].size, product([f.size for f in ax[1:]])
                if first is not None and rest is not None:
                    where = (f"axis {axis} packs the {format_dim(first)} time steps with {format_dim(rest)} "
                             "values per step")
                    held = next((j for j, a in enumerate(am.axes(src) or ())
                                 if len(a) == 1 and a[0].source is ax[0].source), None)
                    steps = {held: "time"} if held is not None else None
        msg = (
            f"{merger.op_type} merges the time axis into the features: {am.labelled(src, steps)} becomes "
            f"{format_shape(ctx.shape(out))}, whose {where}; {how}"
        )
        fix = (
            "apply the per-frame layers frame by frame instead: PyTorch x.flatten(0, 1) (fold time into batch), the "
            "per-frame Conv/Linear, then .unflatten(0, (B, T)).flatten(2) into the LSTM; Keras TimeDistributed(Conv2D"
            "(...)) / TimeDistributed(Flatten()) before the LSTM instead of Flatten() or Reshape((1, -1))"
        ) + ctx.for_jax("the per-frame layers on x.reshape(B * T, ...) (or nnx.vmap over time), then "
                        ".reshape(B, T, -1) into the nnx.RNN")
        return ctx.finding(merger, msg, fix=fix, tensor=out)
