"""The feature width fed to a recurrent op differs from its weight's ``input_size``.

## What it does
Compares ``X``'s last axis with ``W``'s ``input_size`` (W is
``[num_directions, gates*hidden, input_size]``) for LSTM, GRU and RNN.

## Why is this bad?
onnxruntime fails at run time ("Input X must have shape {.., input_size}").
It happens when the conv before the LSTM changed (more channels, another
pooling) and the LSTM was not resized, or when H*W*C was computed for
another input resolution.

## Example
```python
self.lstm = nn.LSTM(input_size=64, hidden_size=128, batch_first=True)
out, _ = self.lstm(seq)            # seq is (N, T, 32*7*7)
```

## Use instead
```python
self.lstm = nn.LSTM(input_size=32 * 7 * 7, hidden_size=128, batch_first=True)
```
Keras infers the LSTM's input width; check the ``Reshape`` target instead.

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity


class RecurrentInputSize(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL203", "recurrent-input-size", Severity.ERROR
    op_types = ()

    def check(self, node, ctx):
        for c in ctx.conflicts("rnn-input-size"):
            yield ctx.finding(
                c.node,
                c.message,
                fix="set the recurrent layer's input_size to the width it is fed (nn.LSTM(input_size=...)), "
                "or fix the reshape before it",
                tensor=c.node.input[0],
            )
