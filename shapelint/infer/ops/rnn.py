"""LSTM, GRU and RNN.

ONNX layouts: ``layout=0`` X is ``[seq, batch, input]`` and Y is
``[seq, num_directions, batch, hidden]``; ``layout=1`` X is
``[batch, seq, input]`` and Y is ``[batch, seq, num_directions, hidden]``.
W is ``[num_directions, gates*hidden, input]``.
"""

from __future__ import annotations

from ...dims import Relation, compare, format_dim, format_shape, floordiv
from ..registry import NodeContext, register

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


@register("LSTM", "GRU", "RNN")
def recurrent(ctx: NodeContext):
    op = ctx.node.op_type
    x, w, r = ctx.input(0), ctx.input(1), ctx.input(2)
    dtype = x.dtype or w.dtype
    layout = ctx.attr("layout", 0)
    direction = ctx.attr("direction", "forward")
    num_dir = 2 if direction == "bidirectional" else 1
    hidden = ctx.attr("hidden_size")
    if hidden is None and r.shape is not None and len(r.shape) == 3:
        hidden = r.shape[2]
    if hidden is None and w.shape is not None and len(w.shape) == 3:
        hidden = floordiv(w.shape[1], GATES[op])
    if x.shape is None:
        return None
    if len(x.shape) != 3:
        ctx.conflict(
            "rnn-rank",
            f"{op} needs a rank-3 input "
            f"({'[batch, seq, input]' if layout else '[seq, batch, input]'}), got rank {len(x.shape)} {x}",
            f"X is {'[batch, seq, input_size]' if layout else '[seq_length, batch_size, input_size]'}",
            inputs=[0],
        )
        return [ctx.out(dtype, None) for _ in ctx.node.output]
    seq, batch = (x.shape[1], x.shape[0]) if layout else (x.shape[0], x.shape[1])
    if w.shape is not None and len(w.shape) == 3:
        cmp = compare(x.shape[2], w.shape[2])
        if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
            ctx.conflict(
                "rnn-input-size",
                f"{op} is fed {format_dim(x.shape[2])} features per step but its weight W{format_shape(w.shape)} "
                f"expects input_size {format_dim(w.shape[2])}",
                "X's last axis equals W's input_size (W is [num_directions, gates*hidden, input_size])",
                cmp,
                inputs=[0, 1],
            )
        d = compare(w.shape[0], num_dir)
        if d.relation == Relation.DIFFERENT:
            ctx.conflict(
                "op",
                f"{op} direction={direction} needs {num_dir} weight set(s) but W{format_shape(w.shape)} has {format_dim(w.shape[0])}",
                "W's axis 0 is num_directions",
                d,
                inputs=[1],
            )
    # initial_h / initial_c: [num_directions, batch, hidden] ([batch, num_directions, hidden] with layout=1)
    for idx in ((5, 6) if op == "LSTM" else (5,)):
        h = ctx.input(idx) if ctx.has_input(idx) else None
        if h is None or h.shape is None or len(h.shape) != 3:
            continue
        hb = h.shape[0] if layout else h.shape[1]
        cmp = compare(hb, batch)
        if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN):
            which = "initial_h" if idx == 5 else "initial_c"
            ctx.conflict(
                "op",
                f"{op} {which} {format_shape(h.shape)} is for a batch of {format_dim(hb)} but X {x} has batch "
                f"{format_dim(batch)}" + (f" (equal only when {cmp.describe()})" if cmp.relation == Relation.ONLY_WHEN else ""),
                f"{which} is {'[batch, num_directions, hidden]' if layout else '[num_directions, batch, hidden]'}",
                cmp,
                inputs=[0, idx],
            )
    if layout:
        y = (batch, seq, num_dir, hidden)
        yh = (batch, num_dir, hidden)
    else:
        y = (seq, num_dir, batch, hidden)
        yh = (num_dir, batch, hidden)
    outs = [ctx.out(dtype, y), ctx.out(dtype, yh)]
    if op == "LSTM":
        outs.append(ctx.out(dtype, yh))
    return outs[: len(ctx.node.output)]
