"""What the output-projection rules (SL401-SL405) share: message text about recurrent outputs.

The axes themselves come from the one axis analysis (``shapelint.axes``, ``ctx.axis_map``); this
module only words them.
"""

from __future__ import annotations

from shapelint.axes import DENSE_OPS

#: what onnxruntime's quantizer puts between a tensor and the Dense that reads it
QUANTIZERS = ("DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear")

#: the closing paragraph of every SL40x rule's documentation: what the axis tracking follows
TRACKING_LIMITS = """\
Recurrences followed (``shapelint.axes``): ONNX LSTM/GRU/RNN (both layouts,
any direction) and onnxruntime's ``DynamicQuantizeLSTM``, Scan and Loop (the
axis they iterate over, also a sequence carried as loop state as jax2onnx
writes ``lax.scan``, a ``tf.while_loop``'s own step counter, and TorchScript's
scripted loops that append each state to a sequence), and unrolled cells
whose steps feed each other (Keras 3 on torch, tf2onnx's unrolled LSTMs,
``nn.LSTMCell`` loops).  Not followed: other sequence ops, other
contrib-domain recurrent ops, Einsum projections.
"""


def describe(am, tensor: str) -> str:
    """``(seq, 2, batch, 64) [time, direction, batch, hidden]``."""
    return am.labelled(tensor)


def source_of(am, tensor: str, k: int) -> str:
    """The recurrence whose time axis is axis ``k`` of ``tensor``, in words."""
    ax = am.axis(tensor, k) or ()
    for rc in am.recurrences:
        rax = am.axis(rc.tensor, rc.time_axis)
        if rax and any(f in ax or any(g.source is f.source for g in ax) for f in rax):
            return rc.describe()
    return "the recurrent layer"


def reaches(am, ctx, tensor: str, outputs, follow, depth: int = 8, first_operand: bool = False) -> str | None:
    """The model output or the Dense (a MatMul/Gemm against a weight) that ``tensor`` goes on to, in words,
    through the consumers ``follow(node)`` accepts; None if neither is met within ``depth`` ops.
    ``first_operand``: the Dense must read it as its data operand (not as a Gemm's bias)."""
    seen, frontier = {tensor}, [tensor]
    for _ in range(depth):
        nxt = []
        for t in frontier:
            if t in outputs:
                return f"the model output {t!r}"
            for c in ctx.consumers(t):
                if c.op_type in DENSE_OPS and len(c.input) > 1 and am.is_weight(c.input[1]) \
                        and (not first_operand or c.input[0] == t):
                    return f"{c.op_type} {c.name or c.output[0]!r}"
                if not follow(c) and c.op_type not in QUANTIZERS:
                    continue
                for o in c.output:
                    if o and o not in seen:
                        seen.add(o)
                        nxt.append(o)
        frontier = nxt
    return None
