"""Elementwise operands that cannot broadcast.

## What it does
Applies numpy broadcasting to the operands of Add, Mul, Where, Expand, the
batch axes of MatMul and Gemm's bias, axis by axis from the right: each pair
must be equal or one of them 1.

## Why is this bad?
onnxruntime fails with "axis == 1 || axis == largest was false".  A bias of
the wrong width, or a mask built for another sequence length, is the common
cause.

## Example
```python
y = x + torch.zeros(1, 10)   # x is (batch, 12)
```

## Use instead
```python
y = x + torch.zeros(1, 12)
```

## Options
None.

## Limitations
A pair that broadcasts only for one value of a symbolic dim (``batch`` vs 4)
is reported by SL501 (traced-size-baked-in).
"""

from __future__ import annotations

from shapelint.rule import Severity

from ._conflict import ConflictRule


class BroadcastIncompatible(ConflictRule):
    __doc__ = __doc__
    code, slug, severity = "SL104", "broadcast-incompatible", Severity.ERROR
    kinds = ("broadcast",)
    fix_hint = "give the smaller operand the same size on that axis, or size 1 to broadcast"
