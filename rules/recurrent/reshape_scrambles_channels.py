"""A Reshape turns a conv map into a sequence without moving the channels: steps mix channels and positions.

## What it does
Finds a Reshape that regroups the channel and spatial axes of a conv feature
map into (steps, features) axes that do not line up with them, typically
``(N, C, H, W) -> (N, H*W, C)`` with no Transpose before it, when the result
reaches a recurrent layer (an LSTM/GRU/RNN op, or an LSTM that Keras 3
unrolled into per-step MatMul cells) as its time or feature axis.

The check is on what each axis *holds* (see ``shapelint.roles``): channels
come from the Conv, positions from its spatial axes.  The well-formed ways
to build a sequence are silent:

* ``x.permute(0, 2, 3, 1).reshape(N, H*W, C)``: one step per position;
* ``x.flatten(2).transpose(1, 2)``: the same, transposed after the merge;
* ``x.permute(0, 3, 1, 2).reshape(N, W, C*H)`` or ``x.view(N, C*H, W)`` then
  a permute: the CRNN pattern, one step per image column.

## Why is this bad?
Nothing fails: the element count is right and the model runs.  But a
``(N, C, H, W)`` map stored channel-major is read back as ``H*W`` "steps" of
``C`` values that are runs of one channel's pixels, so step ``k`` mixes
channels of several positions.  The LSTM learns from scrambled input and the
accuracy quietly suffers.  It is the seed article's Example 1 (Keras
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
Needs the channel and spatial axes to be known: they come from a Conv or
pooling layer (or from input dims named like ``height``).  A Reshape whose
groups happen to line up numerically (``C == H*W``) is not reported, since
the axes are then merely swapped, not scrambled.  Recurrences exported as
Loop/Scan are recognised through their scanned axis only.
"""

from __future__ import annotations

from shapelint.dims import format_shape
from shapelint.roles import recurrences_for, roles_for
from shapelint.rule import Rule, Severity


class ReshapeScramblesChannels(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL202", "reshape-scrambles-channels", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        if not recurrences_for(ctx):
            return  # the scrambled map matters where a recurrent layer reads it
        roles = roles_for(ctx)
        reported = set()
        for rc in roles.recurrences:
            r = roles.of(rc.tensor)
            if r is None:
                continue
            axes = [k for k in (rc.time_axis, rc.feature_axis) if k is not None and k < len(r)]
            for k in axes:
                a = r[k]
                if not (a.mixed and a.has("channel", "spatial") and a.origin):
                    continue
                reshape = ctx.producer(a.origin)
                if reshape is None or reshape.op_type not in ("Reshape", "Flatten") or id(reshape) in reported:
                    continue
                reported.add(id(reshape))
                yield self.finding(ctx, roles, reshape, rc)

    def finding(self, ctx, roles, reshape, rc):
        src, out = reshape.input[0], reshape.output[0]
        in_roles = roles.of(src) or ()
        mixed = [k for k, a in enumerate(roles.of(out) or ()) if a.mixed]
        where = " and ".join(str(k) for k in mixed)
        noun = "axis" if len(mixed) == 1 else "axes"
        become = "the time steps" if rc.kind != "op" else "the time steps and features"
        msg = (
            f"{reshape.op_type} turns {roles.labelled(src)} into {format_shape(ctx.shape(out))} without moving "
            f"the channels last: {noun} {where} of the result each "
            f"mix channels with spatial positions, and they become {become} of {rc.describe()}"
        )
        order = [a.role for a in in_roles if a.role in ("channel", "spatial")]
        if order and order[0] == "channel":
            fix = (
                "move channels last before flattening the positions: PyTorch x.permute(0, 2, 3, 1).reshape(N, H*W, C) "
                "or x.flatten(2).transpose(1, 2) (CRNN: x.permute(0, 3, 1, 2).reshape(N, W, C*H)); Keras "
                "Permute((2, 3, 1)) before Reshape((H*W, C)), or data_format='channels_last'"
            )
        else:
            fix = (
                "reshape only along the axes' own order, and permute to put the axis you iterate over first: "
                "PyTorch x.reshape(N, H*W, C) on an (N, H, W, C) map, x.permute(...) before it otherwise; "
                "Keras Reshape((H*W, C)) on channels_last maps"
            )
        return ctx.finding(reshape, msg, fix=fix, tensor=out)
