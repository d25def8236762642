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
Only the first projection after the recurrent op is judged (a second Linear
reads projected features).  Widths are compared symbolically; an unknown
hidden size (no ``hidden_size`` attribute, unknown ``R``) skips the node.
"""

from __future__ import annotations

from shapelint.dims import Relation, add, compare, format_dim, format_shape, mul
from shapelint.rule import Rule, Severity

from ._lstm_axes import DIRECTION, HIDDEN, TRACKING_LIMITS, analyse, describe_axes


class ProjectionWidth(Rule):
    __doc__ = __doc__ + TRACKING_LIMITS
    code, slug, severity = "SL402", "projection-width", Severity.ERROR
    op_types = ()
    supersedes = ("SL103",)

    def check(self, node, ctx):
        an = analyse(ctx)
        if not an.sources:
            return
        for n in ctx.graph.topological_order():
            if n.op_type not in ("MatMul", "Gemm") or len(n.input) < 2:
                continue
            found = self.projection(n, an, ctx)
            if found:
                yield found

    def projection(self, n, an, ctx):
        r = an.get(n.input[0])
        if r is None or any(an.get(t) is not None for t in n.input[1:]):
            return None
        if r.find(DIRECTION) is not None:
            return None  # SL401 reports projections that keep the direction axis
        x, w = an.shape(n.input[0]), an.shape(n.input[1])
        engine = ctx.shape(n.input[0])
        if n.op_type == "Gemm":
            if r.rank != 2 or w is None or len(w) != 2:
                return None
            k = 0 if _attr(n, "transA", 0) else 1
            k_w = w[1] if _attr(n, "transB", 0) else w[0]
        else:
            if r.rank < 1 or w is None or len(w) < 2:
                return None
            k, k_w = r.rank - 1, w[-2]
        ax = r.axes[k]
        if ax.role != HIDDEN:
            return None
        name = n.name or n.output[0]
        desc = describe_axes(r, x)
        rec = [s for s in r.segs if s.source is not None]
        concatenated = DIRECTION in ax.parts  # directions (or several states) side by side in the features
        if concatenated:
            seen = set()
            for s in rec:
                key = (s.source, s.direction, s.step)
                if key in seen:
                    return self.duplicate(n, name, r, desc, s, rec, ctx)
                seen.add(key)
            widths = [s.width for s in r.segs]
        else:
            widths = [r.segs[0].width] if r.segs and all(s.width == r.segs[0].width for s in r.segs) else [None]
        if k_w is None or any(wd is None for wd in widths):
            ctx.skip(f"{name}: the recurrent width or the weight's input width is unknown")
            return None
        expected = widths[0]
        for wd in widths[1:]:
            expected = add(expected, wd)
        if expected is None or compare(expected, k_w).relation != Relation.DIFFERENT:
            return None
        fed = engine[k] if engine is not None and len(engine) == r.rank else None
        if fed is not None and compare(fed, k_w).relation == Relation.EQUAL:
            return None  # the shapes fit: trust them over the roles
        if fed is not None and compare(fed, expected).relation == Relation.DIFFERENT:
            return None  # the roles disagree with inference: say nothing rather than guess
        return self.width(n, name, r, desc, rec, expected, k_w, w, ctx)

    def width(self, n, name, r, desc, rec, expected, k_w, w, ctx):
        src = r.source
        hidden = src.hidden
        dirs = {s.direction for s in rec}
        both = _equal(k_w, mul(2, hidden)) if hidden is not None else False
        if src.num_directions == 2 and len(rec) == 1 and both:
            which = "backward" if dirs == {"reverse"} else "forward"
            state = _step_text(rec[0])
            what = (f"only the {which} direction's {state} ({format_dim(hidden)} features) of bidirectional "
                    f"{src.label()}, but its weight {format_shape(w)} expects {format_dim(k_w)} = both directions")
            fix = ("feed both directions: PyTorch torch.cat([h_n[-2], h_n[-1]], dim=1) or out[:, -1, :] of the "
                   "bidirectional layer; Keras Bidirectional(LSTM(units), merge_mode=\"concat\")")
        elif src.num_directions == 1 and both and len(rec) == 1:
            what = (f"the {format_dim(hidden)} hidden features of {src.label()}, which has one direction, but its weight "
                    f"{format_shape(w)} expects {format_dim(k_w)}, as for a bidirectional layer")
            fix = (f"size the projection to the hidden size: PyTorch nn.Linear({format_dim(hidden)}, ...) (or make the "
                   "recurrent layer bidirectional=True); Keras Dense(...) infers its input width, "
                   "Bidirectional(LSTM(units)) gives 2*units")
        else:
            nd = len(rec)
            parts = f"{nd} concatenated states of {format_dim(hidden)} = {format_dim(expected)}" if nd > 1 else f"{format_dim(expected)}"
            what = (f"{desc} from {src.label()} (hidden size {format_dim(hidden)}; {parts} features), but its weight "
                    f"{format_shape(w)} expects {format_dim(k_w)}")
            fix = (f"size the projection to the recurrent output: PyTorch nn.Linear(in_features={format_dim(expected)}, ...) "
                   "(hidden_size * 2 for bidirectional=True with both directions concatenated); Keras Dense(...) infers it")
        msg = f"{n.op_type} {name!r} projects {what}"
        return ctx.finding(n, msg, fix=fix, tensor=n.input[0])

    def duplicate(self, n, name, r, desc, s, rec, ctx):
        src = r.source.label()
        dirs = {t.direction for t in rec}
        missing = ""
        if r.source.num_directions == 2 and len(dirs) == 1:
            other = "forward" if s.direction == "reverse" else "backward"
            missing = f"; the {other} direction never reaches it"
        step = _step_text(s)
        msg = (f"{n.op_type} {name!r} is fed {desc}, which holds the same {s.describe()} {step} of {src} twice{missing}: "
               "the width matches the layer only by repetition")
        fix = ("concatenate the two directions of the last layer: PyTorch torch.cat([h_n[-2], h_n[-1]], dim=1) or "
               "h_n[-2:].transpose(0, 1).reshape(B, -1); Keras Bidirectional(LSTM(units), merge_mode=\"concat\")")
        return ctx.finding(n, msg, fix=fix, tensor=n.input[0], severity=Severity.WARNING)


def _equal(a, b) -> bool:
    return a is not None and b is not None and compare(a, b).relation == Relation.EQUAL


def _step_text(seg) -> str:
    return {"final": "final state", "index": "selected step", "pooled": "pooled state"}.get((seg.step or ("all",))[0], "states")


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default
