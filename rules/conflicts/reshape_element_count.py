"""A Reshape's target shape cannot hold the input's element count.

## What it does
Compares the input's element count with the product of the target shape
(after resolving ``0`` and ``-1``), symbolically: ``(batch, 12, 64)`` into
``(batch, 12, 32)`` is refuted for every batch size.

## Why is this bad?
onnxruntime fails with "The input tensor cannot be reshaped to the requested
shape" at run time, usually on the first real input.

## Example
```python
x = x.view(x.size(0), 12, 32)   # x is (batch, 12, 64)
```

## Use instead
```python
x = x.view(x.size(0), 12, 64)   # or x.view(x.size(0), -1)
```
Keras: ``Reshape((12, 64))``; the target excludes the batch axis.

## Options
None.

## Limitations
A count that is wrong only for some values of a symbolic dim is reported by
SL501 (traced-size-baked-in) instead.
"""

from __future__ import annotations

from shapelint.rule import Severity

from ._conflict import ConflictRule


class ReshapeElementCount(ConflictRule):
    __doc__ = __doc__
    code, slug, severity = "SL102", "reshape-element-count", Severity.ERROR
    kinds = ("reshape",)
    fix_hint = "use -1 for the one dim to infer, or take the sizes from the input (x.size(i)) instead of literals"
