"""A recurrent op (LSTM/GRU/RNN) is fed a tensor that is not rank 3.

## What it does
Checks that the ``X`` input of LSTM, GRU and RNN is rank 3:
``[seq, batch, input]`` (``layout=0``) or ``[batch, seq, input]``
(``layout=1``).  A rank-4 conv feature map (N, C, H, W) or a rank-5 video
tensor reaching the op means the flatten step was forgotten.

## Why is this bad?
onnxruntime fails at run time ("Input X must have 3 dimensions only").
The framework often caught it, unless the graph was edited or converted.

## Example
```python
feats = self.cnn(x)               # (N, C, H, W)
out, _ = self.lstm(feats)         # rank 4 into nn.LSTM
```

## Use instead
```python
n, c, h, w = feats.shape
seq = feats.permute(0, 2, 3, 1).reshape(n, h * w, c)   # (N, H*W, C)
out, _ = self.lstm(seq)           # batch_first=True
```
Keras: ``Reshape((H * W, C))`` after the ``Conv2D`` (channels-last), or
``TimeDistributed(Flatten())`` for a sequence of frames.

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity


class LstmInputRank(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL201", "lstm-input-rank", Severity.ERROR
    op_types = ()

    def check(self, node, ctx):
        for c in ctx.conflicts("rnn-rank"):
            x = ctx.shape(c.node.input[0])
            if x is not None and len(x) == 4:
                fix = ("flatten the map to rank 3 first: PyTorch x.permute(0, 2, 3, 1).reshape(N, H*W, C); "
                       "Keras Reshape((H*W, C))")
            elif x is not None and len(x) == 5:
                fix = ("fold time into batch for the per-frame layers and flatten each frame: PyTorch "
                       "x.flatten(0, 1) ... .unflatten(0, (B, T)).flatten(2); Keras TimeDistributed(Flatten())")
            else:
                fix = "reshape the input to (seq, batch, features), or (batch, seq, features) with batch_first"
            yield ctx.finding(c.node, c.message, fix=fix, tensor=c.node.input[0])
