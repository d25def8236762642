"""A batch-first tensor is fed to a time-major recurrent op (or the reverse).

## What it does
An LSTM, GRU or RNN with ``layout=0`` reads ``X`` as ``[seq, batch, input]``
(``layout=1``: ``[batch, seq, input]``), and a Scan or Loop iterates over the
axis it scans.  The axis algebra (``shapelint.axes``) follows each axis of
``X`` back to where its data came from, through embeddings, Dense layers,
Transposes, reshapes and earlier layers, and collects what every other op
says that axis is: a Conv or another recurrent layer reading it as its batch,
a zero state sized from it (``torch.zeros(1, x.size(0), H)``) in an initial
state's batch slot, a recurrent layer iterating over it.  Reported when the
axis the op iterates over is the batch for another op, or the axis it takes
as its batch is another op's time axis.  Where no other op says, the graph
input's dim names (``batch``/``N``/``B``, ``seq``/``time``/``T``/``frames``)
break the tie.

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
An op whose batch slot is a length-1 axis the graph made (``x.unsqueeze(1)``,
a Conv's width of 1 moved there) is left alone: streaming models run a
per-chunk layer with the chunks as its batch and then the recurrence over the
chunks, batch 1, on purpose (Silero VAD does).  The op's own reading of its
input is never evidence against it: with
anonymous or static dims and no other op that reads the axes (an embedding
straight into one LSTM), there is nothing to decide from and nothing is
reported.
"""

from __future__ import annotations

from shapelint.dims import format_dim, format_shape
from shapelint.rule import Rule, Severity


class BatchTimeSwapped(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL204", "batch-time-swapped", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        am = ctx.axis_map
        for rc in am.recurrences:
            with ctx.isolated(rc.node):
                if rc.kind not in ("op", "scan", "loop") or rc.batch_axis is None:
                    continue
                x = rc.tensor
                shape = ctx.shape(x)
                xa = am.axes(x)
                if shape is None or xa is None or len(shape) != 3:
                    yield from ctx.skip(f"{rc.describe()}: X is not a known rank-3 tensor")
                    continue
                t_ax, b_ax = rc.time_axis, rc.batch_axis
                if shape[b_ax] == 1 and not xa[b_ax]:
                    continue  # a batch of one made in the graph: the frames a per-frame layer took as its batch are
                    # the steps (streaming models: a Conv over N chunks, then an LSTM over the N chunks)
                at = self.says(am, xa[t_ax], "batch", rc.node)
                ab = self.says(am, xa[b_ax], "time", rc.node)
                if not (at or ab) or self.says(am, xa[t_ax], "time", rc.node, state=False) \
                        or self.says(am, xa[b_ax], "batch", rc.node, state=False):
                    continue
                yield self.finding(ctx, am, rc, shape, t_ax, b_ax, at, ab)

    @staticmethod
    def says(am, ax, role, node, state: bool = True) -> str | None:
        """Why axis ``ax`` is ``role``: another op's slot (its name), or the dim name; None if nothing says so.

        ``state``: a zero state sized from the axis counts (exporters size the default state the way the op
        reads X, so a state that agrees with the op is no evidence for it, only one that disagrees).
        """
        for f in ax or ():
            s = f.source
            labels = am.labels(s)
            others = [n for n in labels.get(role, []) if n is not node and not BatchTimeSwapped.later(am, n, node)]
            if others:
                return f"{others[0].op_type} {others[0].name or others[0].op_type!r} reads it as the {role}"
            if state and role == "batch" and labels.get("state-batch"):
                n = labels["state-batch"][0]
                return f"the initial state of {n.op_type} {n.name or n.op_type!r} is sized from it as its batch"
        for f in ax or ():
            s = f.source
            labels = am.labels(s)
            foreign = [n for r in ("batch", "time") for n in labels.get(r, [])
                       if n is not node and not BatchTimeSwapped.later(am, n, node)]
            if not foreign and am.named(s) == role:
                return f"its dim is named {format_dim(s.size)}"
        return None

    @staticmethod
    def later(am, other, node) -> bool:
        """``other`` is a recurrence that reads the data after ``node`` does: the first reader sets the layout,
        so a later one that disagrees is the one reported, not this one."""
        if other.op_type not in ("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM", "Scan", "Loop"):
            return False
        order = am.order
        return order.get(id(other), -1) > order.get(id(node), -1)

    def finding(self, ctx, am, rc, shape, t_ax, b_ax, at, ab):
        node, x = rc.node, rc.tensor
        name = node.name or node.op_type
        if rc.kind == "op":
            layout = next((a.i for a in node.attribute if a.name == "layout"), 0)
            reads = f"has layout={layout} and reads X as " + ("[batch, seq, input]" if layout else "[seq, batch, input]")
        else:
            layout = None
            reads = f"iterates over axis {t_ax} of X {x!r}"
        what = []
        if at:
            what.append(f"axis {t_ax} ({format_dim(shape[t_ax])}) holds the batch ({at})")
        if ab:
            what.append(f"axis {b_ax} ({format_dim(shape[b_ax])}) holds the sequence ({ab})")
        first = "batch" if at else "time"
        msg = (
            f"{node.op_type} {name!r} {reads}, but X {format_shape(shape)} is {first}-first: {' and '.join(what)}; "
            "the sequence positions run as separate samples and the batch as one sequence"
        )
        if layout == 0:
            fix = (
                "make the layer batch-first or transpose its input: PyTorch nn.LSTM(..., batch_first=True), or "
                "lstm(x.transpose(0, 1)) and transpose the output back; Keras layers are batch-major, so in a "
                "converted graph insert Transpose(perm=[1, 0, 2]) before X"
            ) + ctx.for_jax("nnx.RNN is batch-major (time_major=False): feed it (B, T, F), or (T, B, F) with "
                            "time_major=True")
        elif layout == 1:
            fix = (
                "feed a (batch, seq, features) tensor or use a time-major op: PyTorch nn.LSTM(batch_first=False) "
                "for a (seq, batch, features) input, or x.transpose(0, 1) first; in the graph set layout=0 "
                "(onnxruntime rejects layout=1 anyway)"
            )
        else:
            fix = (
                "scan over the time axis: JAX jax.lax.scan(cell, h0, jnp.swapaxes(x, 0, 1)) for a (batch, time, "
                "features) x, then swap the stacked outputs back; in the graph a Transpose(perm=[1, 0, 2]) before "
                "the Scan/Loop input"
            )
        return ctx.finding(node, msg, fix=fix, tensor=x)
