"""MatMul/Gemm operands whose inner dimensions differ.

## What it does
Checks ``A[..., k] @ B[..., k, n]`` (and Gemm's ``op(A)`` (M, K) @ ``op(B)``
(K, N), honouring ``transA``/``transB``) with symbolic dims.

## Why is this bad?
The product is undefined: onnxruntime fails with "MatMul dimension
mismatch".  The usual cause is a projection whose ``in_features`` is not the
width it is fed, or a weight stored transposed.

## Example
```python
fc = nn.Linear(256, 10)     # fed (batch, 128) features
```

## Use instead
```python
fc = nn.Linear(128, 10)     # Keras: Dense infers its input width
```

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Severity

from ._conflict import ConflictRule


class MatmulInnerDim(ConflictRule):
    __doc__ = __doc__
    code, slug, severity = "SL103", "matmul-inner-dim", Severity.ERROR
    kinds = ("matmul",)
    fix_hint = "make the weight's input width equal the features it is fed (nn.Linear(in_features=...)), or transpose it"
