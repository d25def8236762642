"""A model output is time-major: ACME's serving API takes batch-first tensors.

## What it does
Reports each graph output whose axis 0 is the time axis of a recurrent layer
(an LSTM/GRU/RNN op, a Scan or Loop, or an unrolled cell), as the axis
algebra sees it (``ctx.axis_map``): it follows the axis from the recurrence
to the output through any Transpose, Reshape or per-step layer, whatever the
dims are named.

## Why is this bad?
ACME's serving code slices outputs by sample along axis 0.  A time-major
output ``(seq, batch, classes)`` is sliced by step instead, and nothing fails
while the predictions of different clients get swapped.

## Example
```python
out, _ = self.lstm(x)             # nn.LSTM(batch_first=False): (seq, batch, hidden)
return self.head(out)             # (seq, batch, classes)
```

## Use instead
```python
return self.head(out).transpose(0, 1)     # (batch, seq, classes), or batch_first=True
```

## Options
None.

## Limitations
An output whose axes the analysis cannot follow (an op it does not know) is
not judged.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity

__all__ = ["TimeMajorOutput"]


class TimeMajorOutput(Rule):
    __doc__ = __doc__
    code, slug, severity = "ACME201", "time-major-output", Severity.WARNING
    op_types = ()  # once per model

    def check(self, node, ctx):
        am = ctx.axis_map  # the one axis analysis: factors of every axis, slot labels, recurrences
        for out in ctx.graph.graph.output:
            if 0 not in am.time_axes(out.name) or len(ctx.axes(out.name) or ()) < 2:
                continue
            producer = ctx.producer(out.name)
            yield ctx.finding(
                producer,
                f"output {out.name!r} {am.labelled(out.name)} has the time axis first; the serving API takes "
                "batch-first tensors",
                fix="transpose the time axis after the batch (PyTorch out.transpose(0, 1), or batch_first=True)",
                tensor=out.name,
            )
