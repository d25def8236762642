"""What a fix claims, checked on onnxruntime's values: "it runs" is not enough.

``shapelint fix`` runs the original and the fixed copy at the same bindings
and inputs, keeping the values; for each edit this module reads what the
edit did to the graph (which node changed, which nodes were inserted) and
checks the property that edit claims, at every binding where the copy ran:

* a Softmax/LogSoftmax moved to the class axis: every step's scores sum to 1
  over the classes (the last axis, whose size does not change with the
  binding);
* an ArgMax/ArgMin moved to the class axis: it picks the largest class of each step;
* a reduction moved to the time axis: the result is the input reduced over
  that axis, and keeps the feature axis;
* the first step replaced by the last: the result is the last step;
* a Squeeze of a length-1 direction axis: the same values, one axis fewer;
* a Transpose inserted before a Reshape: a probe input whose every element
  is distinct (its flat position) goes through the inserted nodes alone, and
  each element must land in the output frame it came from (same time step,
  same sample), every element exactly once;
* an edit that claims to preserve outputs: the graph outputs are equal.

Each edit also says whether it changes what the trained weights see: a
weighted op (MatMul, Gemm, Conv, a recurrence, a normalisation) below the
edit whose input values differ between the original and the copy means a
model trained with the mistake must be retrained after the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["PropertyCheck", "check_properties", "edited_nodes"]

#: ops whose trained weights read their data input
WEIGHTED = {"MatMul", "Gemm", "Conv", "ConvTranspose", "ConvInteger", "MatMulInteger", "LSTM", "GRU", "RNN", "Einsum",
            "LayerNormalization", "BatchNormalization", "InstanceNormalization", "GroupNormalization"}
_ATOL = 1e-4


@dataclass
class PropertyCheck:
    """The property one edit claims, and what onnxruntime's values said at each binding."""

    rule: str
    node: str | None
    claim: str
    status: str = "not-checked"  # holds | broken | not-checked
    bindings: list[dict] = field(default_factory=list)  # {"dims", "ok", "detail"}
    retrain: dict = field(default_factory=dict)  # {"needed": bool | None, "why": str}

    def to_json(self) -> dict:
        return {"rule": self.rule, "node": self.node, "claim": self.claim, "status": self.status,
                "bindings": self.bindings, "retrain": self.retrain}


def edited_nodes(before: onnx.ModelProto, after: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """``(changed, added)``: names of the main-graph nodes an edit changed (same name) and inserted."""
    old = {n.name: n.SerializeToString() for n in before.graph.node if n.name}
    changed, added = [], []
    for n in after.graph.node:
        if n.name in old:
            if old[n.name] != n.SerializeToString():
                changed.append(n.name)
        else:
            added.append(n.name)
    return changed, added


def _const(model: onnx.ModelProto, name: str):
    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output and n.output[0] == name:
            from ..graph import constant_node_value

            return constant_node_value(n)
    return None


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _node(model, name):
    return next((n for n in model.graph.node if n.name == name), None)


def _values(run, *names):
    if run is None or run.status != "ok" or not run.values:
        return None
    got = [run.values.get(n) for n in names]
    return None if any(v is None for v in got) else got


# ------------------------------------------------------------------ claims
def _normalised(node, x, y):
    """Softmax/LogSoftmax: each step's scores sum to 1 over the classes (the last axis)."""
    probs = np.exp(y) if node.op_type == "LogSoftmax" else y
    sums = probs.sum(axis=-1)
    worst = float(np.abs(sums - 1).max()) if sums.size else 0.0
    over_time = ""
    if y.ndim >= 3 and y.shape[1] > 1:
        t = probs.sum(axis=1)
        over_time = f"; over the steps they sum to {float(t.min()):.3g}..{float(t.max()):.3g}"
    return worst <= _ATOL, f"sums over the {y.shape[-1]} classes within {worst:.1e} of 1{over_time}"


def _argmax(node, x, y):
    keep = int(_attr(node, "keepdims", 1))
    want = (np.argmax if node.op_type == "ArgMax" else np.argmin)(x, axis=-1)
    if keep:
        want = np.expand_dims(want, -1)
    ok = want.shape == y.shape and np.array_equal(want, y)
    return ok, f"{'equals' if ok else 'differs from'} the {node.op_type[3:].lower()} over the {x.shape[-1]} classes of each step"


_REDUCE = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}


def _reduction(model, node, x, y):
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = _const(model, node.input[1])
    axes = tuple(int(a) % x.ndim for a in np.asarray(axes).reshape(-1)) if axes is not None else tuple(range(x.ndim))
    keep = bool(_attr(node, "keepdims", 1))
    want = _REDUCE[node.op_type](x, axis=axes, keepdims=keep)
    ok = want.shape == y.shape and np.allclose(want, y, atol=_ATOL, rtol=1e-4)
    kept = x.ndim - 1 not in axes
    return ok and kept, (f"{node.op_type} over axes {list(axes)} ({'the steps' if kept else 'including the features'})"
                         f" {'matches' if ok else 'does not match'} numpy; the {x.shape[-1]} features "
                         f"{'are kept' if kept else 'are reduced away'}")


def _last_step(model, node, x, y):
    if node.op_type == "Gather":
        axis = int(_attr(node, "axis", 0)) % x.ndim
        idx = _const(model, node.input[1])
        want = np.take(x, idx, axis=axis) if idx is not None else None
        is_last = idx is not None and np.all((np.asarray(idx) == -1) | (np.asarray(idx) == x.shape[axis] - 1))
    else:  # Slice
        starts, ends = _const(model, node.input[1]), _const(model, node.input[2])
        axes = _const(model, node.input[3]) if len(node.input) > 3 and node.input[3] else None
        axes = list(range(len(starts))) if axes is None else [int(a) % x.ndim for a in axes]
        index = [slice(None)] * x.ndim
        for s, e, a in zip(starts, ends, axes):
            index[a] = slice(int(s), int(min(e, 2**62)))
        want = x[tuple(index)]
        axis = next((a for s, a in zip(starts, axes) if int(s) == -1), axes[0])
        is_last = any(int(s) == -1 for s in starts)
    ok = bool(is_last) and want is not None and want.shape == y.shape and np.allclose(want, y, atol=_ATOL)
    differs = x.shape[axis] > 1 and not np.allclose(np.take(x, [0], axis=axis), np.take(x, [-1], axis=axis), atol=_ATOL)
    return ok, (f"{'is' if ok else 'is not'} step {x.shape[axis] - 1} (the last) of the {x.shape[axis]} along axis {axis}"
                + ("; it differs from the first step" if differs else ""))


def _squeezed(model, node, x, y):
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1:
        axes = _const(model, node.input[1])
    axes = tuple(int(a) % x.ndim for a in np.asarray(axes).reshape(-1))
    ok = all(x.shape[a] == 1 for a in axes) and np.array_equal(np.squeeze(x, axis=axes), y)
    return ok, f"{'the same' if ok else 'not the same'} values with the length-1 axis {list(axes)} removed"


def frame_axes(result, tensor: str) -> list[int] | None:
    """The axes of ``tensor`` that are its frames (time steps and samples), from the axis algebra of the check."""
    if result is None or result.graph is None:
        return None
    from ..axes import analyse

    am = result.analyses.get(analyse, result.graph, result.table)
    axes = am.axes(tensor)
    if axes is None:
        return None
    out = []
    for k, ax in enumerate(axes):
        labels = set()
        for f in ax or ():
            labels |= set(am.labels(f.source)) if hasattr(am, "labels") else set()
        if labels & {"time", "batch"}:
            out.append(k)
    return out or None


def _frames(model, nodes, shape, provider, timeout, memory_mb, frames=None):
    """Run the inserted Transpose (and the Reshape it feeds) alone on a probe; each element must stay in its frame.

    ``frames``: the input's frame axes (time, batch) as the axis algebra of the
    checked copy labels them; without it, the edit's own permutation says.
    """
    from .execute import run_model
    from .feeds import probe_values

    tr = next(n for n in nodes if n.op_type == "Transpose")
    perm = list(_attr(tr, "perm", list(reversed(range(len(shape))))))
    reshape = next((n for n in model.graph.node if n.op_type == "Reshape" and n.input and n.input[0] == tr.output[0]), None)
    inits, graph_nodes = [], [tr]
    out = tr.output[0]
    if reshape is not None:
        target = _const(model, reshape.input[1])
        if target is None:
            return None, "the Reshape's target is not a constant: no probe"
        inits.append(numpy_helper.from_array(np.asarray(target, dtype=np.int64), reshape.input[1]))
        graph_nodes.append(reshape)
        out = reshape.output[0]
    probe = probe_values(shape, np.float32)
    g = helper.make_graph(graph_nodes, "probe", [helper.make_tensor_value_info(tr.input[0], onnx.TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    (res,) = run_model(m, [{tr.input[0]: probe}], timeout=timeout, memory_mb=memory_mb, provider=provider)
    if res.status != "ok" or not res.values or out not in res.values:
        return False, f"the probe did not run: {res.message or res.status}"
    y = res.values[out]
    src = np.rint(y * 1024).astype(np.int64).reshape(-1) - 1
    if sorted(src.tolist()) != list(range(probe.size)):
        return False, "the probe's values did not each land exactly once"
    where = np.array(np.unravel_index(src, shape)).T.reshape(*y.shape, len(shape))
    kept = len(y.shape) - 1  # the leading axes of the result are the frames; the last one merges the rest
    frames = list(frames) if frames is not None and len(frames) == kept else perm[:kept]
    for k in range(kept):
        idx = np.indices(y.shape)[k]
        if not np.array_equal(where[..., frames[k]], idx):
            return False, (f"output axis {k} does not follow input axis {frames[k]}: a frame holds values of several "
                           f"{'steps' if k == 0 else 'samples'}")
    rest = [a for a in range(len(shape)) if a not in frames]
    return True, (f"a probe of {probe.size} distinct values {tuple(shape)}: every value lands once, in the frame it came "
                  f"from (output axes {list(range(kept))} = input axes {frames}, axes {rest} merged last)")


def _judge(kind: str, model, node, x, y):
    """``(holds, detail)`` of one value claim, from the edited node's input ``x`` and output ``y``."""
    if kind == "normalised":
        return _normalised(node, x, y)
    if kind == "argmax":
        return _argmax(node, x, y)
    if kind == "reduction":
        return _reduction(model, node, x, y)
    if kind == "last-step":
        return _last_step(model, node, x, y)
    return _squeezed(model, node, x, y)


def _claim(model, name, applied):
    """``(kind, claim text, nodes)`` of one edit, read from what it did to the graph."""
    changed = [_node(model, n) for n in applied.changed]
    added = [_node(model, n) for n in applied.added]
    changed, added = [n for n in changed if n is not None], [n for n in added if n is not None]
    if applied.preserves_outputs:
        return "preserves", "every graph output is unchanged (a layout rewrite)", changed + added
    if any(n.op_type == "Transpose" for n in added):
        return "frames", "each frame's values stay in their frame (a Transpose moves the axis before the merge)", added
    for n in changed:
        if n.op_type in ("Softmax", "LogSoftmax"):
            return "normalised", "each step's scores sum to 1 over the classes", [n]
        if n.op_type in ("ArgMax", "ArgMin"):
            return "argmax", f"it takes the {n.op_type[3:].lower()} over the classes of each step", [n]
        if n.op_type in _REDUCE:
            return "reduction", "it reduces over the steps and keeps the features", [n]
        if n.op_type in ("Gather", "Slice"):
            return "last-step", "it takes the last step of the sequence", [n]
    if any(n.op_type == "Squeeze" for n in added):
        return "squeezed", "the length-1 direction axis is removed, the values unchanged", [n for n in added if n.op_type == "Squeeze"]
    return None, applied.description, changed + added


# -------------------------------------------------------------- retraining
def downstream(model, seeds: set[str]) -> set[str]:
    """``seeds`` and every tensor of ``model`` computed from them."""
    touched, changed = set(seeds), True
    while changed:
        changed = False
        for n in model.graph.node:
            if any(i in touched for i in n.input) and not all(o in touched for o in n.output if o):
                touched.update(o for o in n.output if o)
                changed = True
    return touched


def _retrain(original, fixed, nodes, bindings, ex0, ex1, preserved: bool | None) -> dict:
    if preserved:
        return {"needed": False, "why": "the edit changes no value (the outputs are equal): no retraining"}
    inits = {t.name: t for t in fixed.graph.initializer}
    seeds = {o for n in nodes for o in n.output if o}
    touched = downstream(fixed, seeds)
    weighted = [n for n in fixed.graph.node if n.op_type in WEIGHTED
                and any(i in touched for i in n.input)
                and any(i in inits and len(inits[i].dims) >= 1 and int(np.prod(inits[i].dims)) > 1 for i in n.input)]
    if not weighted:
        return {"needed": False, "why": "no trained weight reads the edited values, only the outputs change: the weights "
                                        "need no retraining (a loss computed through this op during training saw the mistake)"}
    first = weighted[0]
    w = next(i for i in first.input if i in inits)
    where = f"{first.op_type} {first.name!r} (weight {w!r} {tuple(inits[w].dims)})"
    before = _node(original, first.name)
    failed_there = [i for i in range(len(bindings)) if any(f.node is not None and f.node.name == first.name
                                                          for f in ex0.failures.get(i, ()))]
    if before is not None and failed_there and all(ex1.main[i].status == "ok" for i in failed_there) \
            and not any(ex0.main[i].status == "ok" for i in range(len(bindings))):
        return {"needed": False, "why": f"the original fails at {where} at every binding: it cannot have been trained "
                                        "in this form, and the weights now get the input they are sized for"}
    compared = differ = 0
    for i in range(len(bindings)):
        r0 = ex0.main[i] if ex0.main[i].status == "ok" else ex0.upstream.get(i)
        a = _values(r0, before.input[0]) if before is not None else None
        b = _values(ex1.main[i], first.input[0])
        if a is None or b is None:
            continue
        compared += 1
        # the same values in the same order (a length-1 axis squeezed away changes nothing the weights see)
        if a[0].size != b[0].size or not np.allclose(a[0].reshape(-1), b[0].reshape(-1), atol=_ATOL, rtol=1e-4):
            differ += 1
    if compared == 0:
        return {"needed": None, "why": f"cannot tell: the original never computed the input of {where}"}
    if differ:
        return {"needed": True, "why": f"retraining needed: {where} was trained on the values the mistake produced; after "
                                       f"the fix it reads other values ({differ} of {compared} bindings)"}
    return {"needed": False, "why": f"{where} reads the same values as before at every binding ({compared} compared): "
                                    "no retraining"}


# ---------------------------------------------------------------------- entry
def check_properties(applied, original: onnx.ModelProto, fixed: onnx.ModelProto, bindings, ex0, ex1,
                     provider="cpu", timeout=60.0, memory_mb=None, references=None,
                     fixed_result=None) -> list[PropertyCheck]:
    """One :class:`PropertyCheck` per edit applied (``applied``: ``fix``'s ``AppliedFix`` records).

    ``references``: binding index -> the original's outputs under ``onnx.reference`` where onnxruntime
    refused it (what an edit that preserves outputs is compared with there).  ``fixed_result``: the
    copy's check result, whose axis algebra says which axes are frames (time, batch) for the probe.
    """
    references = references or {}
    out = []
    outputs = [v.name for v in original.graph.output]
    for a in applied:
        if not a.ok:
            continue
        kind, claim, nodes = _claim(fixed, a.node, a)
        pc = PropertyCheck(a.rule, a.node, claim)
        for i, b in enumerate(bindings):
            r1 = ex1.main[i]
            ok, detail = None, None
            if kind == "preserves":
                ref = ex0.main[i] if ex0.main[i].status == "ok" else references.get(i)
                got = _values(ref, *outputs), _values(r1, *outputs)
                if got[0] is not None and got[1] is not None:
                    ok = all(x.shape == y.shape and np.allclose(x, y, atol=_ATOL, rtol=1e-4) for x, y in zip(*got))
                    whose = "the original's" if ref is ex0.main[i] else "the original's under onnx.reference"
                    detail = f"{len(outputs)} graph output(s) {'equal to' if ok else 'differ from'} {whose}"
            elif kind == "frames":
                tr = next(n for n in nodes if n.op_type == "Transpose")
                if r1.status == "ok" and r1.shapes.get(tr.input[0]) is not None:
                    ok, detail = _frames(fixed, nodes, tuple(r1.shapes[tr.input[0]]), provider, timeout, memory_mb,
                                         frame_axes(fixed_result, tr.input[0]))
            elif kind is not None and nodes:
                n = nodes[0]
                got = _values(r1, n.input[0], n.output[0])
                if got is not None:
                    ok, detail = _judge(kind, fixed, n, *got)
            if ok is None:
                detail = detail or ("the copy did not run here" if r1.status != "ok" else "values not kept")
            pc.bindings.append({"dims": b.dims, "ok": ok, "detail": detail})
        judged = [r["ok"] for r in pc.bindings if r["ok"] is not None]
        pc.status = "not-checked" if not judged else ("holds" if all(judged) else "broken")
        pc.retrain = _retrain(original, fixed, nodes, bindings, ex0, ex1,
                              pc.status == "holds" if kind == "preserves" else None)
        out.append(pc)
    return out
