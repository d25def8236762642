"""Conformance of shape inference against onnx's backend node test suite.

Each case of ``onnx.backend.test.case.node.collect_testcases(None)`` is one
node (or a small expanded function) with reference inputs and outputs.  We
strip the declared output shapes, infer them, and compare with the shapes of
the reference outputs, in two variants: inputs as runtime graph inputs, and
inputs embedded as constant initializers.

Run directly (``python -m tests.conformance.harness``) to print the figures.
"""

from __future__ import annotations

import collections
import dataclasses
import warnings

import numpy as np
import onnx
from onnx import numpy_helper


@dataclasses.dataclass
class Outcome:
    name: str
    variant: str  # "runtime" | "constant"
    exact: bool
    wrong: list  # (output index, reference shape, inferred shape)


def load_cases():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return collect_testcases(None)


def reference_shape(value):
    if isinstance(value, np.ndarray):
        return tuple(value.shape)
    if isinstance(value, np.generic):
        return ()
    if isinstance(value, onnx.TensorProto):
        return tuple(int(d) for d in value.dims)
    return None  # sequences, optionals, maps: not compared


def as_tensor(value, name):
    if isinstance(value, onnx.TensorProto):
        t = onnx.TensorProto()
        t.CopyFrom(value)
        t.name = name
        return t
    if isinstance(value, (np.ndarray, np.generic)):
        return numpy_helper.from_array(np.asarray(value), name)
    return None


def prepare(case, constant: bool) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    g = model.graph
    for o in g.output:
        if o.type.HasField("tensor_type"):
            o.type.tensor_type.ClearField("shape")
    del g.value_info[:]
    if constant:
        inputs = case.data_sets[0][0]
        keep = []
        for vi, value in zip(list(g.input), inputs):
            t = as_tensor(value, vi.name)
            if t is None:
                keep.append(vi)
            else:
                g.initializer.append(t)
        keep += list(g.input)[len(inputs):]
        del g.input[:]
        g.input.extend(keep)
    return model


def declared_shapes(model: onnx.ModelProto):
    out = []
    for vi in model.graph.output:
        t = vi.type
        if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            out.append(None)
            continue
        out.append(tuple(d.dim_value if d.HasField("dim_value") else None for d in t.tensor_type.shape.dim))
    return out


def judge(ref, got):
    exact, wrong = True, []
    for i, r in enumerate(ref):
        if r is None:
            continue
        g = got[i] if i < len(got) else None
        if g is None or any(d is None for d in g) or tuple(g) != r:
            exact = False
        if g is not None and (len(g) != len(r) or any(a is not None and a != b for a, b in zip(g, r))):
            wrong.append((i, r, g))
    return exact, wrong


def run(cases, infer_fn, variants=("runtime", "constant")):
    """``infer_fn(model) -> model with outputs filled``; returns a list of Outcome."""
    outcomes = []
    for case in cases:
        if case.model is None or not case.data_sets:
            continue
        ref = [reference_shape(v) for v in case.data_sets[0][1]]
        if all(r is None for r in ref):
            continue
        for variant in variants:
            model = prepare(case, variant == "constant")
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    got = declared_shapes(infer_fn(model))
            except Exception:  # noqa: BLE001 - an engine that gives up knows nothing
                got = [None] * len(ref)
            exact, wrong = judge(ref, got)
            outcomes.append(Outcome(case.name, variant, exact, wrong))
    return outcomes


def onnx_infer(model):
    return onnx.shape_inference.infer_shapes(model, data_prop=True)


def shapelint_infer(model):
    from shapelint.shapes import infer_shapes

    return infer_shapes(model)


def summarize(outcomes):
    by = collections.defaultdict(lambda: [0, 0, 0])
    for o in outcomes:
        s = by[o.variant]
        s[0] += 1
        s[1] += o.exact
        s[2] += bool(o.wrong)
    return {v: {"cases": n, "exact": e, "exact_rate": e / n if n else 0.0, "wrong": w} for v, (n, e, w) in by.items()}


if __name__ == "__main__":  # pragma: no cover
    import sys
    import time

    cases = load_cases()
    for label, fn in (("onnx (data_prop)", onnx_infer), ("shapelint", shapelint_infer)):
        t = time.perf_counter()
        out = run(cases, fn)
        s = summarize(out)
        print(f"{label:18s}", {v: f"{d['exact_rate']:.1%} exact, {d['wrong']} wrong of {d['cases']}" for v, d in s.items()}, f"{time.perf_counter() - t:.1f}s")
        if label == "shapelint" and "-v" in sys.argv:
            for o in out:
                if o.wrong:
                    print("WRONG", o.variant, o.name, o.wrong)
