"""A Softmax, LogSoftmax, Hardmax, ArgMax or ArgMin over the one unit of a projection: its result is constant.

## What it does
Reports a Softmax, LogSoftmax or Hardmax whose axis has a single element
(before opset 13: whose coerced trailing axes hold a single element), or an
ArgMax/ArgMin over such an axis, when that element is the only output unit
of a Dense (MatMul/Gemm against a weight with one output column, through a
bias, an activation or the Reshapes that apply a Dense to an N-D tensor).

## Why is this bad?
A softmax over one value is 1 whatever the value (a LogSoftmax 0, a Hardmax
1), and an ArgMax over one value is 0.  Nothing fails: a binary classifier
written ``Dense(1, activation="softmax")`` answers 1.0 for every input, and
attention pooling whose ``(batch, time, 1)`` scores are normalised over the
last axis weights every step by 1, a sum instead of an attention.

## Example
```python
out = keras.layers.Dense(1, activation="softmax")(h)      # always 1.0
w = keras.layers.Softmax()(keras.layers.Dense(1)(seq))    # axis=-1 of (B, T, 1): all ones
```
PyTorch: ``torch.softmax(self.score(h), dim=-1)`` with ``self.score = nn.Linear(H, 1)``.

## Use instead
```python
out = keras.layers.Dense(1, activation="sigmoid")(h)      # or Dense(2, activation="softmax")
w = keras.layers.Softmax(axis=1)(keras.layers.Dense(1)(seq))   # over the steps
```
PyTorch: ``torch.sigmoid(logit)``, or ``torch.softmax(scores, dim=1)`` over time.

## Options
None.

## Limitations
Only a length-1 axis made by a Dense's single output unit is reported: a
softmax over attention keys that happen to number one (a decoder exported
at its first step) normalises over what the data holds and is left alone.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity

OPS = ("Softmax", "LogSoftmax", "Hardmax", "ArgMax", "ArgMin")
#: ops between the Dense and the softmax that keep its one output unit where it is
THROUGH = ("Add", "Sub", "Mul", "Div", "Tanh", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid",
           "Identity", "Cast", "Dropout", "Reshape")
RESULT = {"Softmax": "every output is 1", "LogSoftmax": "every output is 0", "Hardmax": "every output is 1",
          "ArgMax": "every index is 0", "ArgMin": "every index is 0"}


class SoftmaxOverOneUnit(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL406", "softmax-over-one-unit", Severity.WARNING
    op_types = OPS

    def check(self, node, ctx):
        if not node.input or not node.input[0] or not node.output or not node.output[0]:
            return
        x = ctx.shape(node.input[0])
        if not x or ctx.const(node.input[0]) is not None:
            return
        rank = len(x)
        normalises = node.op_type in ("Softmax", "LogSoftmax", "Hardmax")
        coerced = normalises and ctx.graph.opset < 13
        axis = _attr(node, "axis", (1 if coerced else -1) if normalises else 0)
        if type(axis) is not int or not -rank <= axis < rank:
            return
        a = axis + rank if axis < 0 else axis
        covered = range(a, rank) if coerced else (a,)
        if any(not (type(x[k]) is int and x[k] == 1) for k in covered):
            return
        dense = self.single_unit_dense(node.input[0], a, ctx)
        if dense is None:
            return
        name = node.name or node.output[0]
        what = f"axis {a}" if not coerced else f"axes {a}..{rank - 1} (opset {ctx.graph.opset} coerces to 2-D)"
        shown = "(" + ", ".join(str(d) if type(d) is int else getattr(d, "name", None) or str(d) for d in x) + ")"
        msg = (f"{node.op_type} {name!r} runs over {what} of {shown}, the single output unit of "
               f"{dense.op_type} {dense.name or dense.output[0]!r}: {RESULT[node.op_type]} whatever the input")
        if rank >= 3 and a == rank - 1:
            msg += f"; over the {x[1] if type(x[1]) is int else 'T'} steps of axis 1 was probably meant (attention weights)"
        fix = ("normalise over the axis that holds the alternatives: attention scores (B, T, 1) over the steps, Keras "
               "Softmax(axis=1), PyTorch torch.softmax(scores, dim=1); a binary output with a sigmoid, Keras "
               "Dense(1, activation=\"sigmoid\"), PyTorch torch.sigmoid(logit), or two units with a softmax"
               + ctx.for_jax("jax.nn.softmax(scores, axis=1), or jax.nn.sigmoid(logit)"))
        yield ctx.finding(node, msg, fix=fix, tensor=node.input[0])

    @staticmethod
    def single_unit_dense(tensor, axis, ctx, depth: int = 6):
        """The MatMul/Gemm against a one-column weight whose output unit is axis ``axis`` of ``tensor``."""
        for _ in range(depth):
            p = ctx.producer(tensor)
            if p is None or not p.input:
                return None
            shape = ctx.shape(tensor)
            if shape is None:
                return None
            if p.op_type in ("MatMul", "Gemm") and len(p.input) >= 2:
                w = ctx.shape(p.input[1])
                if w is None or len(w) < 2 or not _is_weight(ctx, p.input[1]):
                    return None
                trans_b = p.op_type == "Gemm" and _attr(p, "transB", 0)
                unit = w[0] if trans_b else w[-1]
                return p if axis == len(shape) - 1 and type(unit) is int and unit == 1 else None
            if p.op_type not in THROUGH:
                return None
            if p.op_type == "Reshape":
                src = ctx.shape(p.input[0])
                # the Reshapes around a Dense on an N-D tensor keep the one unit last
                if src is None or axis != len(shape) - 1 or not src or not (type(src[-1]) is int and src[-1] == 1):
                    return None
                axis = len(src) - 1
                tensor = p.input[0]
                continue
            data = [i for i in p.input if i and not _is_weight(ctx, i)]
            if len(data) != 1:
                return None  # two computed operands: not a bias or a scale on the Dense's output
            tensor = data[0]
        return None


def _is_weight(ctx, name: str) -> bool:
    """An initializer (asked first: its values are not read) or a small constant."""
    return ctx.graph.initializer(name) is not None or ctx.const(name) is not None


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default
