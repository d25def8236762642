"""A batch-first tensor is fed to a time-major recurrent op (or the reverse).

## What it does
Looks at what the axes of a recurrent op's ``X`` are (see
``shapelint.roles``): the batch and sequence axes are traced back to graph
inputs whose dims are named like ``batch``/``batch_size``/``N`` and
``seq``/``seq_len``/``time``/``frames``, through embeddings, Dense layers,
Transposes, reshapes and earlier recurrent layers.  An LSTM, GRU or RNN with
``layout=0`` reads ``X`` as ``[seq, batch, input]``; if its axis 0 is the
batch axis (or axis 1 the sequence axis) with no Transpose in between, the
two are swapped.  ``layout=1`` is checked the other way round.

## Why is this bad?
Nothing fails when both sizes are dynamic: the op runs the whole batch as
one sequence and the positions of the sequence as independent samples, so
the hidden state leaks across samples and the results are wrong.  With a
static sequence length the exporter may also have baked the traced batch
size in.  It is the classic ``nn.LSTM(batch_first=False)`` fed a
``(batch, seq, features)`` tensor.

## Example
```python
self.lstm = nn.LSTM(8, 6)                      # batch_first=False by default
out, _ = self.lstm(self.embedding(tokens))     # tokens: (batch, seq)
```

## Use instead
```python
self.lstm = nn.LSTM(8, 6, batch_first=True)    # or self.lstm(x.transpose(0, 1))
```
Keras recurrent layers are always batch-major; in a converted or hand-built
graph put ``Transpose(perm=[1, 0, 2])`` in front of the ``layout=0`` op.

## Options
None.

## Limitations
Only axes with evidence count: named input dims, embeddings, Conv and
recurrent outputs.  A model whose inputs have anonymous or static dims is
not checked (an interpretation by the op itself is never used as evidence
against it).
"""

from __future__ import annotations

from shapelint.dims import format_dim
from shapelint.roles import roles_for
from shapelint.rule import Rule, Severity


class BatchTimeSwapped(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL204", "batch-time-swapped", Severity.WARNING
    op_types = ("LSTM", "GRU", "RNN")

    def check(self, node, ctx):
        if not node.input or not node.input[0]:
            return
        x = node.input[0]
        shape = ctx.shape(x)
        if shape is None or len(shape) != 3:
            yield from ctx.skip("X is not a known rank-3 tensor")
            return
        roles = roles_for(ctx, hints=False)
        r = roles.of(x)
        layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
        t_ax, b_ax = (1, 0) if layout else (0, 1)
        at, ab = r[t_ax].role, r[b_ax].role
        if not ((at == "batch" or ab == "time") and at != "time" and ab != "batch"):
            return
        name = node.name or node.op_type
        reads = "[batch, seq, input]" if layout else "[seq, batch, input]"
        what = []
        if at == "batch":
            what.append(f"axis {t_ax} ({format_dim(shape[t_ax])}) holds the batch")
        if ab == "time":
            what.append(f"axis {b_ax} ({format_dim(shape[b_ax])}) the sequence" if what else
                        f"axis {b_ax} ({format_dim(shape[b_ax])}) holds the sequence")
        msg = (
            f"{node.op_type} {name!r} has layout={layout} and reads X as {reads}, but X {roles.labelled(x)} is "
            f"{'time' if layout else 'batch'}-first: {' and '.join(what)}; the sequence "
            "positions run as separate samples and the batch as one sequence"
        )
        if layout == 0:
            fix = (
                "make the layer batch-first or transpose its input: PyTorch nn.LSTM(..., batch_first=True), or "
                "lstm(x.transpose(0, 1)) and transpose the output back; Keras layers are batch-major, so in a "
                "converted graph insert Transpose(perm=[1, 0, 2]) before X"
            )
        else:
            fix = (
                "feed a (batch, seq, features) tensor or use a time-major op: PyTorch nn.LSTM(batch_first=False) "
                "for a (seq, batch, features) input, or x.transpose(0, 1) first; in the graph set layout=0 "
                "(onnxruntime rejects layout=1 anyway)"
            )
        yield ctx.finding(node, msg, fix=fix, tensor=x)
