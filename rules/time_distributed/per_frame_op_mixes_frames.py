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
  steps after ``out.transpose(1, 2)``) or on its way in.

The time axis is taken from evidence only: graph-input dims named like
``time``/``seq_len``/``frames`` and recurrent outputs (see
``shapelint.roles``), never from what the Conv itself reads.  A Conv3d over
``(B, C, T, H, W)`` (time as depth) is the genuine article and is silent.

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
Needs named time dims or a recurrent layer upstream; a Dense or Conv over
time with no recurrent layer after it (DLinear-style forecasters,
token-mixing MLPs) is legitimate and not reported, except a rank-5 Conv
with frames as channels.
"""

from __future__ import annotations

from shapelint.dims import format_dim
from shapelint.roles import recurrences_for, roles_for
from shapelint.rule import Rule, Severity


class PerFrameOpMixesFrames(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL303", "per-frame-op-mixes-frames", Severity.WARNING
    # time read as Conv3d channels also fails the channel check ("valid only when time == 4"): say it once, here
    supersedes = ("SL501", "SL101")
    op_types = ("Conv", "ConvInteger", "QLinearConv", "MatMul", "Gemm")

    def check(self, node, ctx):
        if ctx.graph.info(node).scope or not node.input or not node.output:
            return
        x = node.input[0]
        shape = ctx.shape(x)
        if shape is None:
            yield from ctx.skip("input shape unknown")
            return
        conv = node.op_type in ("Conv", "ConvInteger", "QLinearConv")
        if not recurrences_for(ctx) and not (conv and len(shape) == 5):
            return  # away from a recurrent layer only a Conv3d reading time as channels is reported
        evidence = roles_for(ctx, hints=False)
        roles = roles_for(ctx)
        if node.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            if len(shape) < 3 or evidence.axis(x, 1).role != "time":
                return
            if len(shape) != 5 and not self.near_recurrence(node, roles):
                return
            kind = {3: "Conv1d", 4: "Conv2d", 5: "Conv3d"}.get(len(shape), node.op_type)
            msg = (
                f"{node.op_type} ({kind}) reads axis 1 of {evidence.labelled(x)} as its input "
                f"channels, but axis 1 ({format_dim(shape[1])}) is the time axis: every output channel blends all frames"
            )
            if len(shape) == 5:
                fix = ("put channels at axis 1 and time at axis 2: PyTorch conv3d(video.transpose(1, 2)) on (B, C, T, H, W), "
                       "or a per-frame Conv2d on video.flatten(0, 1) then .unflatten(0, (B, T)); Keras "
                       "TimeDistributed(Conv2D(...)) or Conv3D on channels-last (T, H, W, C)")
            else:
                fix = ("move the features to axis 1 first: PyTorch conv(x.transpose(1, 2)) for a (B, T, F) sequence, "
                       "then .transpose(1, 2) back before the LSTM; Keras Conv1D works on (T, F) channels-last as is")
            yield ctx.finding(node, msg, fix=fix, tensor=x)
            return
        if len(node.input) < 2 or not roles.is_weight(node.input[1]):
            return
        if node.op_type == "Gemm":
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            axis = 0 if trans_a else 1
        else:
            axis = len(shape) - 1
        if len(shape) < 2 or evidence.axis(x, axis).role != "time" or not self.near_recurrence(node, roles):
            return
        if roles.after_recurrence(x):
            effect = ("it blends the recurrent layer's steps with one fixed weight per step position, so the model "
                      f"only works for sequences of exactly {format_dim(shape[axis])} steps")
        else:
            effect = "it mixes the steps that the recurrent layer after it should see one by one"
        msg = (
            f"{node.op_type} applies a Dense weight across axis {axis} of {evidence.labelled(x)}, the time axis "
            f"({format_dim(shape[axis])} steps): {effect}"
        )
        fix = ("apply the Dense per step on the features and reduce over time explicitly: PyTorch nn.Linear on the last "
               "(feature) axis, then out[:, -1] or .mean(dim=1) (or attention weights from a softmax over time); "
               "Keras TimeDistributed(Dense(...)) or Dense on (T, F), then GlobalAveragePooling1D, not Permute((2, 1)) "
               "then Dense")
        yield ctx.finding(node, msg, fix=fix, tensor=x)

    @staticmethod
    def near_recurrence(node, roles) -> bool:
        """The op reads a recurrent layer's output, or feeds a recurrent layer."""
        return roles.after_recurrence(node.input[0]) or roles.reaches_recurrence(node.output[0])
