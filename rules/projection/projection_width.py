"""A projection of a recurrent output expects a width other than the hidden size it is fed.

## What it does
Follows the hidden axis of LSTM/GRU/RNN outputs (and of unrolled Keras
cells) to the first MatMul/Gemm that contracts it, and knows what that axis
holds: ``hidden_size`` features per direction, and which directions, layers
and time steps were concatenated into it.  Reports the projection when:

* its weight's input width differs from ``hidden`` (``2*hidden`` when both
  directions are concatenated): only one direction of a bidirectional layer
  reaches a head sized for both, or a head sized for a bidirectional layer
  gets a unidirectional one.  The generic SL103 ``matmul-inner-dim`` sees
  the same refuted inner dims; this finding replaces it on that node (it
  says which direction and which hidden size), and it is also given where
  inference lost the width but the recurrent op still tells it;
* the width fits but only by accident: the same hidden state is
  concatenated twice (``torch.cat([h_n[-1], h_n[-1]], 1)``), so a layer
  sized for ``2*hidden`` "both directions" sees one direction twice.

## Why is this bad?
A width mismatch fails in onnxruntime ("MatMul dimension mismatch"); the
usual cause is a head written for ``bidirectional=True`` kept after the
layer changed, or a final state taken from one direction only.  The
duplicated state runs and trains, but the classifier never sees the other
direction: half of the bidirectional layer's work is thrown away.

## Example
```python
self.lstm = nn.LSTM(64, 128, bidirectional=True)
self.fc = nn.Linear(256, 10)
_, (h_n, _) = self.lstm(x)
logits = self.fc(torch.cat([h_n[-1], h_n[-1]], dim=1))   # backward twice
```

## Use instead
```python
logits = self.fc(torch.cat([h_n[-2], h_n[-1]], dim=1))   # forward, backward
# or: nn.Linear(2 * hidden_size, classes) fed out[:, -1, :]
```
Keras: ``Bidirectional(LSTM(128), merge_mode="concat")`` then ``Dense(10)``
(Dense infers its input width).

## Options
None.

## Limitations
Only the first projection after the recurrence is judged (a second Linear
reads projected features).  What the projected axis holds comes from the
axis analysis: a recurrence's hidden units (an LSTM/GRU/RNN op, a Loop or
Scan body's cell, an unrolled cell), directions merged before them, and
pieces concatenated side by side; "the same state twice" means two pieces
computed by the same ops from the same tensors (equal indices included, also
when computed from Shape).  Widths are compared symbolically; an unknown
hidden size skips the node, and says so under ``--verbose``.
"""

from __future__ import annotations

from shapelint.dims import Relation, add, compare, format_dim, format_shape, mul
from shapelint.rule import Rule, Severity

from ._tracking import TRACKING_LIMITS, describe


class ProjectionWidth(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL402", "projection-width", Severity.ERROR
    op_types = ()
    supersedes = ("SL103",)

    def check(self, node, ctx):
        am = ctx.axis_map
        if not am.recurrences:
            return
        for n in ctx.graph.topological_order():
            with ctx.isolated(n):
                if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2 or not n.input[0]:
                    continue
                if not am.is_weight(n.input[1]) or am.is_weight(n.input[0]):
                    continue
                found = self.projection(n, am, ctx)
                if found:
                    yield found

    def projection(self, n, am, ctx):
        a = n.input[0]
        if am.several_directions(a):
            return None  # SL401 reports projections that keep the direction axis
        x, w = ctx.shape(a), ctx.shape(n.input[1])
        if x is None or w is None:
            return None
        if n.op_type == "Gemm":
            if len(x) != 2 or len(w) != 2:
                return None
            k = 0 if _attr(n, "transA", 0) else 1
            k_w = w[1] if _attr(n, "transB", 0) else w[0]
        else:
            if len(x) < 1 or len(w) < 2:
                return None
            k, k_w = len(x) - 1, w[-2]
        states = am.states(a, k)
        if not states:
            return None
        name = n.name or n.output[0]
        rec = [s for s in states if s.recurrence is not None]
        for i, s in enumerate(rec):
            for t in rec[i + 1:]:
                if s.direction == t.direction and s.recurrence is t.recurrence and am.same_value(s.tensor, t.tensor):
                    return self.duplicate(n, name, am, a, s, rec, ctx)
        widths = [s.width for s in states]
        if k_w is None or any(wd is None for wd in widths):
            ctx.skip(f"{name}: the recurrent width or the weight's input width is unknown")
            return None
        expected = widths[0]
        for wd in widths[1:]:
            expected = add(expected, wd)
        if expected is None or compare(expected, k_w).relation != Relation.DIFFERENT:
            return None
        fed = x[k]
        if fed is not None and compare(fed, k_w).relation == Relation.EQUAL:
            return None  # the shapes fit: trust them over the analysis
        if fed is not None and compare(fed, expected).relation == Relation.DIFFERENT:
            return None  # the analysis disagrees with inference: say nothing rather than guess
        return self.width(n, name, am, a, rec, expected, k_w, w, ctx)

    def width(self, n, name, am, a, rec, expected, k_w, w, ctx):
        rc = rec[0].recurrence
        hidden = rec[0].width
        label = rc.describe()
        bidirectional = rc.direction == "bidirectional"
        both = _equal(k_w, mul(2, hidden)) if hidden is not None else False
        if bidirectional and len(rec) == 1 and both:
            which = "backward" if rec[0].direction == "reverse" else "forward"
            what = (f"only the {which} direction's {_step_text(rec[0])} ({format_dim(hidden)} features) of "
                    f"bidirectional {label}, but its weight {format_shape(w)} expects {format_dim(k_w)} = both "
                    "directions")
            fix = ("feed both directions: PyTorch torch.cat([h_n[-2], h_n[-1]], dim=1) or out[:, -1, :] of the "
                   "bidirectional layer; Keras Bidirectional(LSTM(units), merge_mode=\"concat\")"
                   + ctx.for_jax("nnx.Bidirectional's output (both directions concatenated) into nnx.Linear(2 * hidden, "
                                 "...)"))
        elif not bidirectional and both and len(rec) == 1:
            what = (f"the {format_dim(hidden)} hidden features of {label}, which has one direction, but its weight "
                    f"{format_shape(w)} expects {format_dim(k_w)}, as for a bidirectional layer")
            fix = (f"size the projection to the hidden size: PyTorch nn.Linear({format_dim(hidden)}, ...) (or make the "
                   "recurrent layer bidirectional=True); Keras Dense(...) infers its input width, "
                   "Bidirectional(LSTM(units)) gives 2*units"
                   + ctx.for_jax(f"nnx.Linear({format_dim(hidden)}, ...) after a one-direction nnx.RNN"))
        else:
            nd = len(rec)
            parts = (f"{nd} concatenated states of {format_dim(hidden)} = {format_dim(expected)}" if nd > 1
                     else f"{format_dim(expected)}")
            what = (f"{describe(am, a)} from {label} (hidden size {format_dim(hidden)}; {parts} features), but its "
                    f"weight {format_shape(w)} expects {format_dim(k_w)}")
            fix = (f"size the projection to the recurrent output: PyTorch nn.Linear(in_features={format_dim(expected)}, "
                   "...) (hidden_size * 2 for bidirectional=True with both directions concatenated); Keras Dense(...) "
                   "infers it" + ctx.for_jax(f"nnx.Linear(in_features={format_dim(expected)}, ...)"))
        return ctx.finding(n, f"{n.op_type} {name!r} projects {what}", fix=fix, tensor=a)

    def duplicate(self, n, name, am, a, s, rec, ctx):
        rc = s.recurrence
        missing = ""
        if rc.direction == "bidirectional" and len({t.direction for t in rec}) == 1:
            other = "forward" if s.direction == "reverse" else "backward"
            missing = f"; the {other} direction never reaches it"
        elif rc.direction != "bidirectional":
            partner = am.partner(rc)
            if partner is not None and all(t.recurrence is not partner for t in rec):
                missing = f"; the other pass, {partner.describe()}, never reaches it"
        d = {"forward": "forward direction", "reverse": "backward direction"}.get(s.direction, "state")
        msg = (f"{n.op_type} {name!r} is fed {describe(am, a)}, which holds the same {d} {_step_text(s)} of "
               f"{rc.describe()} twice{missing}: the width matches the layer only by repetition")
        fix = ("concatenate the two directions of the last layer: PyTorch torch.cat([h_n[-2], h_n[-1]], dim=1) or "
               "h_n[-2:].transpose(0, 1).reshape(B, -1), or from the output torch.cat([out[:, -1, :H], out[:, 0, H:]], "
               "-1) (the backward half's final state is at step 0); Keras Bidirectional(LSTM(units), "
               "merge_mode=\"concat\")"
               + ctx.for_jax("jnp.concatenate([fwd[:, -1], bwd[:, 0]], -1) (the backward pass's final state is at "
                             "step 0)"))
        return ctx.finding(n, msg, fix=fix, tensor=a, severity=Severity.WARNING)


def _equal(a, b) -> bool:
    return a is not None and b is not None and compare(a, b).relation == Relation.EQUAL


def _step_text(state) -> str:
    return {"final": "final state", "selected": "selected step", "pooled": "pooled state"}.get(state.step, "states")


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default
