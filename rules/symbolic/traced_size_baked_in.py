"""A shape holds only for one value of a dynamic dim: the traced size was baked in.

## What it does
Finds shapes that are consistent only when a symbolic dim declared on a
graph input (``batch``, ``seq``) takes one particular value, proven
symbolically, and anchors the finding on the Reshape, Expand, Tile or
ConstantOfShape whose constant shape froze that value.  The patterns:

* a consumer needs ``batch*32 == 128``, true only when ``batch == 4``;
* a Reshape with a constant target turns an axis that was ``batch`` into
  the literal 4 (the rest is absorbed by ``-1``);
* a Reshape puts a literal where a dynamic axis ends, so its cut lines up
  with the axes it came from for one value only (the axis algebra,
  ``shapelint.axes``): ``(batch*time, F) -> (-1, 6, F)`` meant to unfold the
  frames is right only when ``time == 6``, whether the target is a constant
  or computed (``x.size(0) // 6``);
* a Reshape to an all-literal shape of a tensor whose size is a product of
  several dynamic dims: ``(B, T, 10) -> (24, 10)`` holds only when
  ``B * T == 24`` (JAX checks nothing where there is no ``-1``);
* a recurrence unrolled at export over an axis declared dynamic reads only
  the traced steps (Keras 3 exports a ``None`` time axis this way: one step),
  so a longer sequence is cut without an error; anchored on the Gather that
  reads the first step.

The dims may be named anything (``batch``, tf2onnx's ``unk__N``, dynamo's
``s0``, jax2onnx's ``B``).  A zero state, Expand or Tile built at the traced
batch is anchored on the node that built it, also when it is a Loop's or a
Scan's initial state and the mismatch shows inside the body.

## Why is this bad?
It is the most common way an exported model breaks in production: it runs
at the batch size (or sequence length) it was traced with and fails, or
silently mixes samples, at any other, although its input is declared
dynamic.

## Example
```python
def forward(self, x):                     # traced with batch 4
    return self.fc(x.view(4, -1))         # torch.onnx records the literal 4
```

## Use instead
```python
    return self.fc(x.view(x.size(0), -1))   # or x.flatten(1)
```
Keras: ``Reshape`` targets exclude the batch axis; avoid ``tf.reshape(x,
(4, -1))`` with a Python int.

## Options
None.

## Limitations
Only dims declared on the graph's inputs are tracked; a size that is baked
in and never meets a dynamic one (the whole graph is static) is not reported.
A literal that is the static size of one of the axes it cuts is an unfold in
the wrong order (SL302), not a baked size.
"""

from __future__ import annotations

from collections import deque

from shapelint.dims import Relation, compare, format_shape, free_names, product
from shapelint.dims import format_dim as format_dim_
from shapelint.rule import Rule, Severity

SHAPERS = ("Reshape", "Expand", "Tile", "ConstantOfShape")


class TracedSizeBakedIn(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL501", "traced-size-baked-in", Severity.ERROR
    op_types = ()

    def check(self, node, ctx):
        reported = set()
        for n in ctx.graph.topological_order():
            if n.op_type == "Reshape":
                with ctx.isolated(n):
                    found = self.reshape_freezes_axis(n, ctx) or self.reshape_pins_product(n, ctx)
                    if found:
                        reported.add(id(n))
                        yield found
        for found in self.literal_cuts(ctx, reported):
            yield found
        yield from self.unrolled_at_export(ctx, reported)
        by_condition: dict[str, set] = {}
        for c in ctx.conflicts(relation="only_when"):
            with ctx.isolated(c.node):
                when = c.when.when if c.when is not None else ()
                cond_key = c.when.describe() if c.when is not None else ""
                seen = by_condition.setdefault(cond_key, set())
                if self.is_consequence(c.node, seen, ctx):
                    continue  # downstream of a node already reported for the same condition
                culprit = self.culprit(c.node, when, ctx)
                seen.add(id(c.node))
                if id(culprit) in reported:
                    continue
                reported.add(id(culprit))
                seen.add(id(culprit))
                cond = c.when.describe() if c.when is not None else "one value of a dynamic dim"
                if culprit is c.node:
                    msg = f"{c.node.op_type} is valid only when {cond}: {c.message}"
                else:
                    msg = (f"{culprit.op_type} bakes in a constant shape {self.shape_text(culprit, ctx)}; downstream, "
                           f"{c.node.op_type} {c.node.name!r} is then valid only when {cond}: {c.message}")
                yield ctx.finding(culprit, msg, fix=self.fix_text(culprit), tensor=culprit.output[0] if culprit.output else None)

    # -- a recurrence unrolled at export for the traced number of steps, over a dynamic axis
    def unrolled_at_export(self, ctx, reported):
        am = ctx.axis_map
        for node, tensor, k, n in am.unrolled_over_dynamic():
            if node is None or id(node) in reported:
                continue
            with ctx.isolated(node):
                reported.add(id(node))
                dim = format_dim_(ctx.shape(tensor)[k])
                steps = "step 0" if n == 1 else f"steps 0..{n - 1}"
                msg = (f"{node.op_type} {node.name or node.output[0]!r} starts a recurrence unrolled at export: it "
                       f"reads only {steps} of axis {k} of {am.labelled(tensor)}, whose length {dim} is declared "
                       f"dynamic, so a sequence longer than {n} is cut to {n} step{'s' if n > 1 else ''} without an "
                       f"error" + (" and a shorter one fails" if n > 1 else ""))
                fix = ("export the recurrence as a loop over the whole sequence, or declare the length static: Keras 3 "
                       "keras.Input((T, F)) with the real T (its export unrolls recurrent layers), Keras 2 through "
                       "tf2onnx keeps a dynamic length; PyTorch nn.LSTM/nn.GRU instead of a Python loop over a cell")
                yield ctx.finding(node, msg, fix=fix, tensor=tensor)

    # -- a Reshape whose constant target replaces a dynamic axis by a literal
    def reshape_freezes_axis(self, n, ctx):
        """(batch, 16) → target (4, -1): batch lands in the -1 dim mixed with a literal.

        A legitimate merge puts a symbol into the ``-1`` dim as the product of a
        contiguous run of input axes ((B, T, C) → (B*T, C)); a baked size leaves
        a literal where the symbol was and a ``-1`` dim that no run of input
        axes explains.
        """
        if len(n.input) < 2 or not n.output:
            return None
        target = ctx.const(n.input[1])
        x = ctx.shape(n.input[0])
        y = ctx.shape(n.output[0])
        if target is None or x is None or y is None:
            return None
        target = [int(v) for v in target.reshape(-1)]
        if -1 not in target or len(y) != len(target):
            return None
        q = target.index(-1)
        runs = {product(x[i:j]) for i in range(len(x)) for j in range(i + 1, len(x) + 1)}
        if any(compare(y[q], r).relation == Relation.EQUAL for r in runs):
            return None
        for axis, d in enumerate(x):
            if isinstance(d, int) or not d.is_Symbol or not free_names(d) or axis >= q:
                continue
            t = target[axis]
            if t in (0, -1) or t <= 1 or d.name not in free_names(y[q]):
                continue
            return ctx.finding(
                n,
                f"Reshape to the constant shape {tuple(target)} turns axis {axis} ({d.name}) of {format_shape(x)} into "
                f"the literal {t}; the result {format_shape(y)} is right only when {d.name} == {t}",
                fix=self.fix_text(n),
                tensor=n.output[0],
            )
        return None

    # -- a Reshape to an all-literal shape of a tensor whose size is a product of several dynamic dims
    def reshape_pins_product(self, n, ctx):
        """(B, T, 10) -> (24, 10): the element count ``B*T*10`` equals 240 only for the few (B, T) whose
        product is 24, the traced sizes among them.  One dim alone (``batch*16 == 64``) is a conflict of
        inference, reported on its own; a count that can never match is SL102's."""
        if len(n.input) < 2 or not n.output:
            return None
        target, x = ctx.const(n.input[1]), ctx.shape(n.input[0])
        if target is None or x is None:
            return None
        target = [int(v) for v in target.reshape(-1)]
        if not target or any(v <= 0 for v in target):
            return None  # -1 and 0 take sizes from the input: not all literal
        total = product(x)
        names = free_names(total) if total is not None and not isinstance(total, int) else set()
        terms = getattr(total, "terms", None)
        if len(names) < 2 or not terms or len(terms) != 1 or not terms[0][0]:
            return None  # not c * a monomial of named dims: no finite set of sizes to pin
        (_, coeff), = terms
        known = product(target)
        if known % coeff or compare(total, known).relation != Relation.UNKNOWN:
            return None
        static = product([d for d in x if isinstance(d, int)])
        if known % static:
            return None
        mono = " * ".join(format_dim_(d) for d in x if not isinstance(d, int))
        return ctx.finding(
            n,
            f"Reshape to the constant shape {tuple(target)} holds {format_dim_(known)} elements, and its input "
            f"{format_shape(x)} has that many only when {mono} == {known // static}, the sizes it was traced at: "
            f"{' and '.join(sorted(names))} are declared dynamic, and at other sizes the Reshape fails",
            fix=self.fix_text(n) + ctx.for_jax("x.reshape(-1, F), or x.reshape(B * T, F) with B, T = x.shape[:2], "
                                               "not a configured constant"),
            tensor=n.output[0],
        )

    # -- a literal that cuts a dynamic axis: (b*t, F) -> (-1, 6, F) is right only when t == 6
    def literal_cuts(self, ctx, reported):
        """Reshapes whose constant target puts a literal where a dynamic axis ends (the axis algebra's
        scrambles that line up only for one value): ``(batch*time, F) -> (-1, 6, F)`` meant ``time == 6``."""
        am = ctx.axis_map
        for sc in am.scrambles:
            n = sc.node
            if n.op_type != "Reshape" or not sc.generic or id(n) in reported or len(n.input) < 2:
                continue
            target = ctx.const(n.input[1])
            y = ctx.shape(n.output[0])
            if y is None:
                continue
            static = {1}
            for size in (src.size for src in sc.mixed if isinstance(src.size, int)):
                static |= {v * size for v in static}  # products of the static axes it mixes: 2*7 is no literal
            static.discard(1)
            literals = [int(y[k]) for k in sc.axes if isinstance(y[k], int) and y[k] > 1 and y[k] not in static]
            dynamic = [src for src in sc.mixed if src.kind == "input" and not isinstance(src.size, int)
                       and free_names(src.size)]
            if not literals or not dynamic:
                continue  # (a literal that is one of the mixed axes' own sizes: an order mistake, SL302's)
            lit, dim = literals[-1], dynamic[-1]
            name = format_dim_(dim.size)
            reported.add(id(n))
            yield ctx.finding(
                n,
                (f"Reshape to the constant shape {tuple(int(v) for v in target.reshape(-1))} cuts " if target is not None
                 else f"Reshape to {format_shape(y)} cuts ")
                +
                f"{am.labelled(n.input[0])} at the literal {lit}: the result {format_shape(y)} lines up with the axes "
                f"it came from ({' and '.join(format_dim_(s.size) for s in sc.mixed)}) only when {name} == {lit}, "
                f"the size it was traced at; at any other {name} each row mixes samples",
                fix=("unfold with the runtime sizes: PyTorch x.view(B, T, -1) with B, T = x.shape[:2] (or "
                     "unflatten(0, (B, T))), not a literal; Keras Reshape((T, F)) only when T is fixed by the model"),
                tensor=n.output[0],
            )

    def is_consequence(self, node, reported_ids, ctx, limit=64):
        """True if ``node`` reads, within ``limit`` hops, the output of a reported node."""
        if not reported_ids:
            return False
        queue = deque([(node, 0)])
        seen = {id(node)}
        while queue:
            n, depth = queue.popleft()
            if depth >= limit:
                continue
            for t in n.input:
                p = ctx.producer(t) if t else None
                if p is None or id(p) in seen:
                    continue
                if id(p) in reported_ids:
                    return True
                seen.add(id(p))
                queue.append((p, depth + 1))
        return False

    # -- walk upstream to the node whose constant shape holds the baked value
    def culprit(self, start, when, ctx):
        values = {v for _, v in when}
        names = {k for k, _ in when}
        queue = deque([(start, 0)])
        seen = {id(start)}
        while queue:
            n, depth = queue.popleft()
            if n.op_type in SHAPERS and self.bakes(n, values, names, ctx):
                return n
            if depth >= 64:
                continue
            for t in n.input:
                p = ctx.producer(t) if t else None
                if p is None and t:
                    p = self.outer_producer(t, ctx)  # a Loop/Scan body's carried state: where it starts outside
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    queue.append((p, depth + 1))
        return start

    @staticmethod
    def outer_producer(t, ctx):
        """The producer, outside, of what a Loop/Scan body input starts as (its carried state)."""
        index = ctx.table.analyses.get(_body_inputs, ctx.graph)  # once per model
        outer = index.get(t)
        return ctx.producer(outer) if outer else None

    def bakes(self, n, values, names, ctx):
        idx = 0 if n.op_type == "ConstantOfShape" else 1
        if len(n.input) <= idx:
            return False
        shape = ctx.const(n.input[idx])
        if shape is None:
            return False
        literal = [int(v) for v in shape.reshape(-1)]
        hits = [k for k, v in enumerate(literal) if v in values]
        if not hits:
            return False
        if n.op_type != "Reshape":
            return True
        # a literal that sizes an axis carried whole from a static input axis (a feature width that happens
        # to equal the traced length) froze nothing: the axis algebra says what each output axis holds
        out = ctx.axes(n.output[0]) or ()
        return any(k >= len(out) or not out[k] or any(not isinstance(f.source.size, int) or f.source.kind in
                                                        ("opaque", "scramble") for f in out[k]) for k in hits)

    def shape_text(self, n, ctx):
        idx = 0 if n.op_type == "ConstantOfShape" else 1
        v = ctx.const(n.input[idx]) if len(n.input) > idx else None
        return str(tuple(int(x) for x in v.reshape(-1))) if v is not None else "?"

    def fix_text(self, n):
        if n.op_type == "Reshape":
            return ("take the dynamic size from the tensor instead of a literal: PyTorch x.view(x.size(0), -1) "
                    "or x.flatten(1); Keras Reshape((...)) without the batch axis")
        return ("build the target shape from the input's runtime shape: PyTorch x.expand(y.size(0), -1, -1) or "
                "repeat(...) with sizes taken from tensors, not Python ints")


def _body_inputs(graph) -> dict[str, str]:
    """Loop/Scan body input name -> the outer tensor it starts as (computed once per model)."""
    index: dict[str, str] = {}
    for n in graph.nodes:
        if n.op_type not in ("Loop", "Scan"):
            continue
        body = next((a.g for a in n.attribute if a.name == "body"), None)
        for k, vi in enumerate(body.input if body is not None else ()):
            # Loop: [M, cond, states...] (the iteration number and condition have no outer tensor);
            # Scan: [states..., scans...]
            if (n.op_type == "Scan" or k >= 2) and k < len(n.input) and n.input[k]:
                index.setdefault(vi.name, n.input[k])
    return index
