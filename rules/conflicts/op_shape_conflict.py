"""An op's input shapes conflict with what the op requires.

## What it does
Reports every node whose inputs cannot satisfy the op's shape contract, for
ops not covered by a more specific rule: a Conv whose weight expects other
in-channels, a LayerNormalization whose scale has the wrong width, an axis
out of range, a Squeeze of an axis that is not 1, a Split whose sizes do not
add up; also a node with more or fewer inputs or outputs than its schema
allows, or an attribute of the wrong type.  Inference carries on past the
node, so one run lists every conflict.

## Why is this bad?
onnxruntime refuses the model at session creation or fails on the first
run, far from the layer that caused it.  The framework usually accepted it
because the mistake was introduced after export (graph surgery, a swapped
weight) or in a hand-built graph.

## Example
```python
# PyTorch: the conv was edited to take 16 channels, the previous layer gives 8
conv.weight = nn.Parameter(torch.randn(32, 16, 3, 3))
```

## Use instead
Make the producer and the consumer agree: ``nn.Conv2d(8, 32, 3)`` or a
previous layer with 16 output channels.  Keras: ``Conv2D`` infers its input
channels; rebuild the layer instead of assigning weights by hand.

## Options
None.
"""

from __future__ import annotations

from shapelint.rule import Severity

from ._conflict import ConflictRule


class OpShapeConflict(ConflictRule):
    __doc__ = __doc__
    code, slug, severity = "SL101", "op-shape-conflict", Severity.ERROR
    kinds = ("op",)
    fix_hint = "make the producing layer's output agree with this op's requirement (see the shapes above)"
