"""A per-frame layer is applied across the time axis: a Conv reads frames as channels, a Dense mixes steps.

## What it does
Finds layers that should run once per frame but mix frames instead:

* a Conv whose input channel axis (axis 1) is the time axis: a Conv3d
  applied to ``(B, T, C, H, W)`` as if it were ``(B, C, D, H, W)``, or a
  Conv1d/Conv2d applied to a batch-first sequence without moving its
  features to axis 1 (reported for rank 3 and 4 when the result goes on to
  a recurrent layer);
* a Dense (MatMul or Gemm with a weight) whose contracted axis is the time
  axis next to a recurrent layer: on its output (``Linear(T, 1)`` over the
  steps after ``out.transpose(1, 2)``) or on its way in;
* a normalisation whose statistics run over the time axis next to a
  recurrent layer: ``LayerNormalization`` over axes that include time, the
  same written out (``x - mean(x, axis=time)``, as jax2onnx and tf2onnx
  export ``LayerNorm``), or a ``BatchNormalization`` whose channel axis is
  time (one statistic per step position).

The time axis is what a recurrent layer reads as its sequence (an LSTM/GRU
op by its ``layout``, the axis a Scan or Loop iterates over, the steps of an
unrolled cell), followed through the graph by the axis algebra
(``shapelint.axes``), whatever the dims are named or if they are static;
where no op says, a graph-input dim named like ``time``/``seq_len``/``frames``
breaks the tie.  What the Conv or Dense itself reads is never evidence.  A
Conv3d over ``(B, C, T, H, W)`` (time as depth) is the genuine article and is
silent, and so is a per-step LayerNorm over the features.

## Why is this bad?
With a static length it runs and silently computes something else: each
output channel is a blend of frames, so the recurrent layer after it sees
no time order.  With a dynamic length, the weight's input channels or
input size were sized for the traced length only.

## Example
```python
self.conv = nn.Conv3d(T, 16, 3)         # sized by the number of frames
feats = self.conv(video)                # video: (B, T, C, H, W)
```
```python
x = x.transpose(1, 2)                   # (B, F, T) for a Conv1d ...
x = self.fc(x)                          # ... and a Linear over T instead of F
```

## Use instead
```python
feats = self.conv(video.transpose(1, 2))        # (B, C, T, H, W): time as depth
# or per frame: self.conv2d(video.flatten(0, 1)).unflatten(0, (B, T))
```
Keras: ``TimeDistributed(Conv2D(...))`` on ``(T, H, W, C)``, or
``Conv3D`` on channels-last ``(T, H, W, C)``; ``Dense`` acts on the last
axis, so keep features last (``Permute`` back after a ``Conv1D`` on
channels-first data).

## Options
None.

## Limitations
Needs a recurrent layer before or after the op; a Dense or Conv over time
with no recurrent layer near it (DLinear-style forecasters, token-mixing
MLPs) is legitimate and not reported, except a rank-5 Conv with frames (by
name) as channels.  A mean over time that is pooling, not centring (the
result is not subtracted from its input), is not a normalisation.
"""

from __future__ import annotations

from shapelint.axes import DENSE_OPS
from shapelint.dims import format_dim
from shapelint.rule import Rule, Severity

CONVS = ("Conv", "ConvInteger", "QLinearConv", "FusedConv")  # FusedConv: onnxruntime's optimizer's Conv+activation
NORMS = ("LayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization")


class PerFrameOpMixesFrames(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL303", "per-frame-op-mixes-frames", Severity.WARNING
    # time read as Conv3d channels also fails the channel check ("valid only when time == 4"): say it once, here
    supersedes = ("SL501", "SL101")
    op_types = CONVS + DENSE_OPS + ("BatchNormalization", "ReduceMean", "ReduceSum") + NORMS

    def check(self, node, ctx):
        if not node.input or not node.output or not node.input[0]:
            return
        x = node.input[0]
        shape = ctx.shape(x)
        if shape is None:
            yield from ctx.skip("input shape unknown")
            return
        am = ctx.axis_map
        conv = node.op_type in CONVS
        if not am.recurrences and not (conv and len(shape) == 5):
            return  # away from a recurrent layer only a Conv3d reading time as channels is reported
        xa = am.axes(x)
        if xa is None or len(xa) != len(shape):
            yield from ctx.skip("what the input's axes hold is unknown")
            return
        near = am.after_recurrence(x) or am.reaches_recurrence(node.output[0])
        if conv:
            yield from self.conv(node, ctx, am, x, shape, xa, near)
        elif node.op_type in DENSE_OPS:
            yield from self.dense(node, ctx, am, x, shape, xa, near)
        elif near:
            yield from self.norm(node, ctx, am, x, shape, xa)

    def conv(self, node, ctx, am, x, shape, xa, near):
        if len(shape) < 3:
            return
        out = am.axes(node.output[0]) or ()
        # a recurrence after it iterates over this Conv's output channels: the steps were its input channels
        steps_are_channels = False
        chan = {id(f.source) for f in (out[1] if len(out) > 1 else ()) or () if f.source.node is node}
        for rc in am.recurrences if chan else ():
            tax = am.axis(rc.tensor, rc.time_axis) or ()
            reshaped = self.reshape_between(am, node.output[0], rc.tensor)
            if any(id(f.source) in chan for f in tax) and not reshaped:
                steps_are_channels = True  # (through a Reshape it is SL202's scramble of channels instead)
        if not (self.time(am, xa[1], node) or (near and self.dynamic(am, xa[1])) or steps_are_channels):
            return
        if len(shape) != 5 and not near:
            return
        kind = {3: "Conv1d", 4: "Conv2d", 5: "Conv3d"}.get(len(shape), node.op_type)
        what = ("the time axis" if self.time(am, xa[1], node)
                else "a dynamic axis of the sequence, not channels (a Conv's weight has a fixed number of them)"
                if self.dynamic(am, xa[1]) else
                "what the recurrent layer after it iterates over: it reads the Conv's output channels as its steps")
        msg = (
            f"{node.op_type} ({kind}) reads axis 1 of {am.labelled(x)} as its input "
            f"channels, but axis 1 ({format_dim(shape[1])}) is {what}: every output channel blends all frames"
        )
        if len(shape) == 5:
            fix = ("put channels at axis 1 and time at axis 2: PyTorch conv3d(video.transpose(1, 2)) on (B, C, T, H, W), "
                   "or a per-frame Conv2d on video.flatten(0, 1) then .unflatten(0, (B, T)); Keras "
                   "TimeDistributed(Conv2D(...)) or Conv3D on channels-last (T, H, W, C)"
                   + ctx.for_jax("Flax convs are channels-last: a 2-D nnx.Conv on video.reshape(B * T, H, W, C), "
                                 "or a 3-D one on (B, T, H, W, C) as is"))
        else:
            fix = ("move the features to axis 1 first: PyTorch conv(x.transpose(1, 2)) for a (B, T, F) sequence, "
                   "then .transpose(1, 2) back before the LSTM; Keras Conv1D works on (T, F) channels-last as is"
                   + ctx.for_jax("nnx.Conv is channels-last: apply it to the (B, T, F) sequence as is, "
                                 "not to jnp.swapaxes(x, 1, 2)"))
        yield ctx.finding(node, msg, fix=fix, tensor=x)

    def dense(self, node, ctx, am, x, shape, xa, near):
        if len(node.input) < 2 or not am.is_weight(node.input[1]) or len(shape) < 2 or not near:
            return
        if node.op_type == "FusedMatMul" and any(a.i for a in node.attribute if a.name.startswith("trans")):
            return  # a transposed operand: which axis it contracts is not followed
        if node.op_type in ("Gemm", "FusedGemm"):
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            axis = 0 if trans_a else 1
        else:
            axis = len(shape) - 1
        out_axes = am.axes(node.output[0]) or ()
        made = out_axes[-1] if out_axes else None  # the Dense's own output width
        # the Dense's output is iterated over as time while the recurrence's features are rows the Dense kept
        rows = {id(f.source) for k, ax in enumerate(xa) if k not in (0, axis) for f in ax or ()}
        rows |= {id(f.source) for f in (xa[0] or ())[1:]}  # a folded (batch*rows) first axis
        makes_steps = bool(made) and all(f.whole for f in made) and any(
            f.source.node is node and am.has_label(f.source, "time") for f in made) and any(
            am.has_label(s, "feature") and id(s) in rows for s in am.sources)
        dynamic = self.dynamic(am, xa[axis])
        if not self.only_time(am, xa[axis], node) and not makes_steps and not dynamic:
            return  # (a Flatten of every step into a fixed-length head contracts time with the features)
        if makes_steps and not self.only_time(am, xa[axis], node):
            effect = ("a recurrent layer then iterates over its output as the time axis, so each of its 'steps' "
                      "is a blend of the input steps")
        elif am.after_recurrence(x):
            effect = ("it blends the recurrent layer's steps with one fixed weight per step position, so the model "
                      f"only works for sequences of exactly {format_dim(shape[axis])} steps")
        else:
            effect = "it mixes the steps that the recurrent layer after it should see one by one"
        what = ("the time axis" if self.only_time(am, xa[axis], node) or (not makes_steps and not dynamic)
                else "a dynamic axis of the sequence (not features: a Dense weight has a fixed width)"
                if dynamic and not makes_steps else "where the steps are")
        steps = {axis: "time"} if what == "where the steps are" else None  # what the Dense's slot calls features
        msg = (
            f"{node.op_type} applies a Dense weight across axis {axis} of {am.labelled(x, steps)}, {what} "
            f"({format_dim(shape[axis])} steps): {effect}"
        )
        fix = ("apply the Dense per step on the features and reduce over time explicitly: PyTorch nn.Linear on the last "
               "(feature) axis, then out[:, -1] or .mean(dim=1) (or attention weights from a softmax over time); "
               "Keras TimeDistributed(Dense(...)) or Dense on (T, F), then GlobalAveragePooling1D, not Permute((2, 1)) "
               "then Dense" + ctx.for_jax("nnx.Linear on the features of (B, T, F) as is (not on jnp.swapaxes(x, 1, 2)), "
                                          "then ys[:, -1] or ys.mean(axis=1)"))
        yield ctx.finding(node, msg, fix=fix, tensor=x)

    def norm(self, node, ctx, am, x, shape, xa):
        op = node.op_type
        rank = len(shape)
        if op == "BatchNormalization":
            # one statistic per step position: the channel axis is time alone (Keras 2 runs a per-step
            # LayerNorm as a BatchNorm whose channels are every batch*time row: that is per sample)
            if rank < 3 or not self.only_time(am, xa[1], node):
                return
            axes, what = (1,), "one mean and variance per step position, pooled over the batch"
        else:
            axes = self.norm_axes(node, ctx, am, rank)
            if axes is None or not any(self.time(am, xa[k], node) for k in axes):
                return
            if op in ("ReduceMean", "ReduceSum") and not self.centres(node, ctx):
                return  # a mean over time that pools, not one that normalises
            what = "statistics over every step of the sequence, so each step is normalised with the others' values"
        again = self.same_statistics(node, ctx, am, x, axes, rank) if op in ("ReduceMean", "ReduceSum") else []
        if any(am.order.get(id(c), -1) < am.order.get(id(node), -1) for c in again):
            return  # one normalisation that takes its mean twice (jax2onnx's jnp.var): reported at the first
        t = next(k for k in axes if self.time(am, xa[k], node))
        msg = (
            f"{op} normalises {am.labelled(x)} over axis {t}, the time axis ({format_dim(shape[t])} steps): {what}; "
            "a per-step normalisation runs over the features only"
        )
        if again:
            msg += "; " + ", ".join(f"{c.op_type} {c.name or c.output[0]!r}" for c in again) + \
                " takes the same mean over time again (one finding for both)"
        fix = ("normalise each step over its features: PyTorch nn.LayerNorm(features) on (B, T, F) (not over (T, F)), "
               "BatchNorm1d on x.transpose(1, 2) so the features are the channels; Keras LayerNormalization(axis=-1), "
               "BatchNormalization(axis=-1)" + ctx.for_jax("nnx.LayerNorm(features) (reduction_axes=-1) on (B, T, F), "
                                                           "or jnp.mean / jnp.var over axis=-1"))
        yield ctx.finding(node, msg, fix=fix, tensor=x)

    @staticmethod
    def norm_axes(node, ctx, am, rank):
        if node.op_type in NORMS:
            axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
            axis = axis + rank if axis < 0 else axis
            return tuple(range(axis, rank)) if 0 <= axis < rank else None
        use = next((u for u in am.uses if u.node is node), None)
        return use.axes if use is not None else None

    @classmethod
    def same_statistics(cls, node, ctx, am, x: str, axes, rank: int) -> list:
        """The other reductions of ``x`` over the same axes that centre it too: one normalisation writing its mean
        twice, as jax2onnx exports ``(x - x.mean(axis)) / sqrt(x.var(axis))``."""
        out = []
        for c in ctx.consumers(x):
            if c is node or c.op_type not in ("ReduceMean", "ReduceSum") or not c.input or c.input[0] != x \
                    or not c.output or not c.output[0]:
                continue
            near = am.after_recurrence(x) or am.reaches_recurrence(c.output[0])  # it would be reported too
            if near and cls.norm_axes(c, ctx, am, rank) == axes and cls.centres(c, ctx):
                out.append(c)
        return out

    @staticmethod
    def centres(node, ctx) -> bool:
        """``x - mean(x)``: the mean is subtracted from the tensor it was taken of, directly or written out
        (jax2onnx's ``jnp.mean``: ReduceSum, a Div by the count, a Reshape/Expand back)."""
        frontier, seen = [node.output[0]], set()
        for _ in range(4):
            nxt = []
            for t in frontier:
                for c in ctx.consumers(t):
                    if c.op_type == "Sub" and len(c.input) == 2 and c.input[1] == t and c.input[0] == node.input[0]:
                        return True
                    if c.op_type in ("Div", "Mul", "Reshape", "Expand", "Unsqueeze", "Cast") and c.input \
                            and c.input[0] == t:
                        nxt.extend(o for o in c.output if o and o not in seen)
                        seen.update(c.output)
            frontier = nxt
        return False

    @staticmethod
    def reshape_between(am, start: str, end: str, limit: int = 128) -> bool:
        """A Reshape/Flatten lies on a data path from ``start`` to ``end``."""
        seen, stack = set(), [(end, False)]
        while stack and len(seen) < limit:
            t, via = stack.pop()
            if t == start:
                if via:
                    return True
                continue
            if (t, via) in seen or am.is_weight(t):
                continue
            seen.add((t, via))
            p = am.graph.producer(t)
            if p is None:
                continue
            now = via or p.op_type in ("Reshape", "Flatten")
            stack.extend((i, now) for i in p.input if i)
        return False

    @staticmethod
    def dynamic(am, ax) -> bool:
        """The axis is one graph-input axis of dynamic size: a sequence axis, never channels or features (a
        Conv's or Dense's weight has a fixed input width)."""
        srcs = am.sources_of(ax)
        return len(srcs) == 1 and srcs[0].kind == "input" and not isinstance(srcs[0].size, int) \
            and not am.is_(srcs[0], "batch")

    @classmethod
    def only_time(cls, am, ax, node) -> bool:
        """The axis is time and nothing else (not a fold, not time merged with the features)."""
        return len(am.sources_of(ax)) == 1 and cls.time(am, ax, node)

    @staticmethod
    def time(am, ax, node) -> bool:
        """The axis holds time by another op's slot (or, where no op says, by its dim name)."""
        for f in ax or ():
            others = [n for n in am.labels(f).get("time", []) if n is not node]
            if others or (not am.labels(f).get("time") and am.is_(f, "time")):
                return True
        return False
