"""If, Loop and Scan: infer the bodies with the outer tensors in scope."""

from __future__ import annotations

import logging

import numpy as np
import onnx

from ..dims import Relation, compare, fresh_symbol
from .fallback import from_type_proto
from .registry import NodeContext, values_of
from .table import TensorInfo

__all__ = ["infer_control_flow"]

logger = logging.getLogger(__name__)


def _graph_attr(node: onnx.NodeProto, name: str) -> onnx.GraphProto | None:
    for a in node.attribute:
        if a.name == name and a.type == onnx.AttributeProto.GRAPH:
            return a.g
    return None


def _walk_body(inf, body: onnx.GraphProto, bound: dict[str, TensorInfo], opset_imports) -> list[TensorInfo]:
    table = inf.table.tensors
    for t in body.initializer:
        table[t.name] = inf.initializer_info(t)
    for name, info in bound.items():
        table[name] = info
    inf._depth += 1
    try:
        if inf._depth > 64:
            return [TensorInfo() for _ in body.output]
        inf.walk(list(body.node), opset_imports)
    finally:
        inf._depth -= 1
    outs = []
    for vi in body.output:
        got = table.get(vi.name)
        if got is None or (got.shape is None and got.dtype is None and (got.kind == "tensor" or got.elem is None)):
            got = from_type_proto(vi.type)
        outs.append(got)
    return outs


def _producers(body: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    """A body's tensor name -> the node writing it (built once per Loop or Scan)."""
    return {o: n for n in body.node for o in n.output if o}


def _invariant(body: onnx.GraphProto, body_in: int, body_out: int, producers: dict) -> bool:
    """The body hands carried input ``body_in`` on unchanged as output ``body_out`` (tf2onnx carries its weights
    and bounds so): only then is the initial value the value of every iteration."""
    if body_in >= len(body.input) or body_out >= len(body.output):
        return False
    want, t = body.input[body_in].name, body.output[body_out].name
    for _ in range(8):
        if t == want:
            return True
        p = producers.get(t)
        if p is None or p.op_type != "Identity" or not p.input:
            return False
        t = p.input[0]
    return False


def _state(info: TensorInfo, invariant: bool) -> TensorInfo:
    """A carried state as the body sees it: its initial value (a sequence's length) only where no iteration
    changes it."""
    if invariant or (info.value is None and not info.has_const and info.length is None):
        return info
    return TensorInfo(dtype=info.dtype, shape=info.shape, kind=info.kind, elem=info.elem)


def _empty(info: TensorInfo) -> bool:
    """A sequence known to hold no element (SequenceEmpty's)."""
    return info.length is not None and compare(info.length, 0).relation == Relation.EQUAL


def _appends_once(body: onnx.GraphProto, body_in: int, body_out: int, producers: dict) -> bool:
    """The body's new value of a carried sequence is the old one with one SequenceInsert (``outs.append(h)``)."""
    if body_in >= len(body.input) or body_out >= len(body.output):
        return False
    p = producers.get(body.output[body_out].name)
    return p is not None and p.op_type == "SequenceInsert" and len(p.input) == 2 and \
        p.input[0] == body.input[body_in].name


def _merge(a: TensorInfo, b: TensorInfo) -> TensorInfo:
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorInfo(dtype=a.dtype or b.dtype, kind=a.kind, elem=a.elem)
    dims = tuple(x if compare(x, y).relation == Relation.EQUAL else fresh_symbol() for x, y in zip(a.shape, b.shape))
    return TensorInfo(dtype=a.dtype or b.dtype, shape=dims)


def _runs_every_trip(ctx: NodeContext, body: onnx.GraphProto) -> bool:
    """No condition, or a condition that starts true and that the body passes on unchanged (jax2onnx's scans)."""
    if not ctx.has_input(1):
        return True
    cond = values_of(ctx.input(1))
    if not cond or len(cond) != 1 or cond[0] != 1 or len(body.input) < 2 or not body.output:
        return False
    out, cond_in = body.output[0].name, body.input[1].name
    if out == cond_in:
        return True
    for n in body.node:
        if n.op_type == "Identity" and list(n.output) == [out] and len(n.input) == 1:
            if n.input[0] == cond_in:
                return True
            # TorchScript's `for` loops: the condition out is Identity of an outer constant true
            src = n.input[0]
            if all(src not in m.output for m in body.node) and src not in {vi.name for vi in body.input}:
                v = values_of(ctx.table.get(src)) if src in ctx.table else None
                return v is not None and len(v) == 1 and v[0] == 1
    return False


def _counted_while(ctx: NodeContext, body: onnx.GraphProto, producers: dict):
    """Iterations of a while loop that counts: a carried counter starting at 0, raised by 1 each iteration,
    and a condition ``counter < N`` with ``N`` loop-invariant (tf2onnx writes Keras RNN loops so); None
    when the loop does not have that form."""
    if len(body.input) < 3 or not body.output:
        return None

    def through(t):
        for _ in range(4):
            p = producers.get(t)
            if p is None or p.op_type not in ("Cast", "Identity") or not p.input:
                return t
            t = p.input[0]
        return t

    cond = producers.get(through(body.output[0].name))
    if cond is not None and cond.op_type == "And" and len(cond.input) == 2:
        # tf2onnx's tf.scan / maximum_iterations loops: (counter < N) and (iteration < K)
        counts = [_counted_branch(ctx, body, producers.get(through(i)), through, producers) for i in cond.input]
        if any(c is None for c in counts):
            return None
        if all(type(c) is int for c in counts):
            return min(counts)
        return counts[0] if all(c == counts[0] for c in counts) else None
    return _counted_branch(ctx, body, cond, through, producers)


def _counted_branch(ctx: NodeContext, body: onnx.GraphProto, less, through, producers):
    """The iterations one ``Less`` of a while loop's condition allows (see :func:`_counted_while`): a carried
    counter raised by 1 before the test, ``counter < N``: N; the Loop's own iteration number, ``i < K``: K + 1
    (tested after iteration i); None for anything else."""
    if less is None or less.op_type != "Less" or len(less.input) != 2:
        return None
    counter, bound = through(less.input[0]), through(less.input[1])
    if counter == body.input[0].name:
        k = _whole_number(ctx, body, bound)
        return None if k is None or k < 0 else k + 1
    inc = producers.get(counter)
    carried = [vi.name for vi in body.input[2:]]
    outs = [o.name for o in body.output[1:]]
    if inc is None or inc.op_type != "Add" or len(inc.input) != 2:
        return None
    state = next((i for i in inc.input if i in carried), None)
    one = next((i for i in inc.input if i != state), None)
    if state is None or one is None:
        return None
    k = carried.index(state)
    one_v = values_of(ctx.table.get(one)) or _const_value(body, one)
    if one_v is None or tuple(one_v) != (1,) or k >= len(outs) or through(outs[k]) not in (counter, inc.output[0]):
        return None
    start = values_of(ctx.input(k + 2)) if ctx.has_input(k + 2) else None
    if start is None or tuple(start) != (0,):
        return None
    if bound in carried:
        j = carried.index(bound)
        if j >= len(outs) or through(outs[j]) != bound:
            return None  # the bound changes inside the loop
        n = values_of(ctx.input(j + 2)) if ctx.has_input(j + 2) else None
    else:
        n = values_of(ctx.table.get(bound)) if bound in ctx.table else None
        if n is None:
            w = _whole_number(ctx, body, bound)  # a float bound: tf2onnx compares float counters
            n = (w,) if w is not None else None
    if not n or len(n) != 1 or n[0] is None or isinstance(n[0], int) and n[0] < 0:
        return None
    return n[0]


def _whole_number(ctx: NodeContext, body: onnx.GraphProto, name: str) -> int | None:
    """A one-element constant that is a whole number, integer or float (tf2onnx compares counters as floats)."""
    info = ctx.table.get(name) if name in ctx.table else None
    v = info.const if info is not None else None
    if v is None:
        v = _const_value(body, name)
    if v is None:
        return None
    flat = np.asarray(v).reshape(-1)
    if flat.size != 1 or not np.isfinite(flat[0]) or float(flat[0]) != int(flat[0]):
        return None
    return int(flat[0])


def _const_value(body: onnx.GraphProto, name: str):
    for t in body.initializer:
        if t.name == name:
            from onnx import numpy_helper

            return tuple(numpy_helper.to_array(t).reshape(-1).tolist())
    for n in body.node:
        if n.op_type == "Constant" and list(n.output) == [name]:
            from ..graph import constant_node_value

            v = constant_node_value(n)
            return tuple(v.reshape(-1).tolist()) if v is not None else None
    return None


def infer_control_flow(inf, ctx: NodeContext, opset_imports):
    node = ctx.node
    if node.op_type == "If":
        then_g, else_g = _graph_attr(node, "then_branch"), _graph_attr(node, "else_branch")
        if then_g is None or else_g is None:
            return None
        cond = values_of(ctx.input(0))
        if cond is not None and len(cond) == 1 and isinstance(cond[0], int):
            return _walk_body(inf, then_g if cond[0] else else_g, {}, opset_imports)
        a = _walk_body(inf, then_g, {}, opset_imports)
        b = _walk_body(inf, else_g, {}, opset_imports)
        return [_merge(x, y) for x, y in zip(a, b)]
    body = _graph_attr(node, "body")
    if body is None:
        return None
    producers = _producers(body)
    if node.op_type == "Loop":
        # inputs: M, cond, v_initial...; body inputs: iter, cond, v...
        carried = [ctx.input(i) for i in range(2, len(node.input))]
        bound = {}
        if len(body.input) >= 2:
            bound[body.input[0].name] = TensorInfo(dtype=onnx.TensorProto.INT64, shape=())
            bound[body.input[1].name] = TensorInfo(dtype=onnx.TensorProto.BOOL, shape=())
        for k, (vi, info) in enumerate(zip(body.input[2:], carried)):
            declared = from_type_proto(vi.type)
            known = info.dtype is not None or (info.kind == "sequence" and info.elem is not None)
            bound[vi.name] = _state(info, _invariant(body, k + 2, k + 1, producers)) if known else declared
            if info.kind == "sequence" and _empty(info) and _appends_once(body, k + 2, k + 1, producers):
                inf.table.appended.add(vi.name)
        outs = _walk_body(inf, body, bound, opset_imports)
        n_carried = len(carried)
        final = []
        trip = values_of(ctx.input(0)) if ctx.has_input(0) else None
        n = trip[0] if trip and trip[0] is not None and _runs_every_trip(ctx, body) else None
        if n is None:
            n = _counted_while(ctx, body, producers)
            if type(n) is int and trip and type(trip[0]) is int and trip[0] >= 0:
                n = min(n, trip[0])  # the trip count M caps a counted while loop too
        for k, info in enumerate(outs[1 : 1 + n_carried]):
            init = carried[k] if k < len(carried) else TensorInfo()
            if init.kind == "sequence" and info.kind == "sequence":
                empty = _empty(init)
                if empty:
                    elem = info.elem  # only this loop's appends
                else:
                    elem = _merge(init.elem, info.elem) if init.elem is not None and info.elem is not None else None
                length = init.length + n if init.length is not None and n is not None and \
                    _appends_once(body, k + 2, k + 1, producers) else None
                final.append(TensorInfo(dtype=info.dtype, kind="sequence", elem=elem, length=length))
                continue
            final.append(_merge(init, info) if init.shape is not None else TensorInfo(dtype=info.dtype))
        for info in outs[1 + n_carried :]:
            if info.shape is None:
                final.append(TensorInfo(dtype=info.dtype))
            else:
                final.append(TensorInfo(dtype=info.dtype, shape=(n if n is not None else fresh_symbol(),) + tuple(info.shape)))
        return final[: len(node.output)]
    if node.op_type == "Scan":
        n_scan_in = ctx.attr("num_scan_inputs", 0)
        ins = [ctx.input(i) for i in range(len(node.input))]
        if ctx.opset < 9:
            return None  # the sequence_lens input of Scan-8 shifts everything
        if not isinstance(n_scan_in, int) or not 0 <= n_scan_in <= len(ins):
            return None
        n_state = len(ins) - n_scan_in
        in_axes = list(ctx.attr("scan_input_axes") or [0] * n_scan_in)
        bound = {}
        seq_len = None
        for k, vi in enumerate(body.input):
            if k >= len(ins):
                break
            info = ins[k]
            if k >= n_state and info.shape is not None:
                ax = in_axes[k - n_state] if k - n_state < len(in_axes) else 0
                ax = ax + len(info.shape) if ax < 0 else ax
                if ax >= len(info.shape):
                    return None
                seq_len = seq_len if seq_len is not None else info.shape[ax]
                info = TensorInfo(dtype=info.dtype, shape=tuple(d for i, d in enumerate(info.shape) if i != ax))
            elif k < n_state:
                info = _state(info, _invariant(body, k, k, producers))
            bound[vi.name] = info
        outs = _walk_body(inf, body, bound, opset_imports)
        final = [_merge(ins[k], outs[k]) if ins[k].shape is not None else outs[k] for k in range(n_state)]
        out_axes = list(ctx.attr("scan_output_axes") or [0] * max(0, len(outs) - n_state))
        for j, info in enumerate(outs[n_state:]):
            if info.shape is None:
                final.append(TensorInfo(dtype=info.dtype))
                continue
            ax = out_axes[j] if j < len(out_axes) else 0
            r = len(info.shape) + 1
            ax = ax + r if ax < 0 else ax
            dims = list(info.shape)
            dims.insert(ax, seq_len if seq_len is not None else fresh_symbol())
            final.append(TensorInfo(dtype=info.dtype, shape=tuple(dims)))
        return final[: len(node.output)]
    return None
