"""What the output-projection rules (SL401-SL405) share: message text about recurrent outputs.

The axes themselves come from the one axis analysis (``shapelint.axes``, ``ctx.axis_map``); this
module only words them.
"""

from __future__ import annotations

#: the closing paragraph of every SL40x rule's documentation: what the axis tracking follows
TRACKING_LIMITS = """\
Recurrences followed (``shapelint.axes``): ONNX LSTM/GRU/RNN (both layouts,
any direction), Scan and Loop (the axis they iterate over, also a sequence
carried as loop state as jax2onnx writes ``lax.scan``), and unrolled cells
whose steps feed each other (Keras 3 on torch, tf2onnx's unrolled LSTMs,
``nn.LSTMCell`` loops).  Not followed: sequence ops (``ConcatFromSequence``),
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
