"""Concat inputs that disagree on an axis other than the concat axis.

## What it does
Checks that every Concat input has the same rank and the same size on
every axis but ``axis``.

## Why is this bad?
onnxruntime fails with "Non concat axis dimensions must match".  Typical
causes: concatenating features along the wrong axis, or a skip connection
whose spatial size was changed by an extra stride.

## Example
```python
torch.cat([a, b], dim=1)    # a is (batch, 16, 32), b is (batch, 16, 30)
```

## Use instead
Concatenate on the axis that differs (``dim=2``), or crop/pad one input.

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Severity

from ._conflict import ConflictRule


class ConcatDimMismatch(ConflictRule):
    __doc__ = __doc__
    code, slug, severity = "SL105", "concat-dim-mismatch", Severity.ERROR
    kinds = ("concat",)
    fix_hint = "concatenate along the axis that differs, or crop/pad the inputs to match"
