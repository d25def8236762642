"""Constant folding of small nodes whose inputs are all known constants.

Runs the op with onnx's reference implementation (numpy) so shapes that
depend on values (a Range over constants, a Reshape of an embedded shape)
come out exact.  Only small tensors, and never ops whose output could be
large or random: folding must not allocate what a declared shape claims.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import onnx

from .table import TensorInfo

__all__ = ["fold", "FOLD_LIMIT"]

logger = logging.getLogger(__name__)

#: total input and output elements a fold may touch
FOLD_LIMIT = 1 << 16

_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
# output size bounded by input size, safe to run even when it is not known beforehand
_BOUNDED = {"NonZero", "Unique", "Compress", "TopK", "NonMaxSuppression", "StringNormalizer", "Slice", "Split", "Gather"}


def fold(node, inputs: list[TensorInfo], outputs: list[TensorInfo], opset_imports, functions=()) -> list[TensorInfo] | None:
    """Evaluate ``node`` on constant inputs; None when not foldable."""
    if any(n and not info.has_const for n, info in zip(node.input, inputs)):
        return None
    if node.op_type in _NONDETERMINISTIC or node.domain not in ("", "ai.onnx"):
        return None
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return None
    present = [(n, i) for n, i in zip(node.input, inputs) if n]
    if not all(i.has_const for _, i in present):
        return None
    if any(i.const is None for _, i in present):
        return None
    total = sum(int(i.const.size) for _, i in present)
    if total > FOLD_LIMIT:
        return None
    if node.op_type not in _BOUNDED:
        for o in outputs:
            n = o.numel
            if not isinstance(n, int) or n > FOLD_LIMIT:
                return None
    try:
        from onnx.reference import ReferenceEvaluator
    except ImportError:  # pragma: no cover
        return None
    names = [n for n, _ in present]
    graph = onnx.helper.make_graph(
        [node],
        "fold",
        [onnx.helper.make_tensor_value_info(n, onnx.helper.np_dtype_to_tensor_dtype(i.const.dtype), None) for n, i in present],
        [onnx.helper.make_tensor_value_info(o, 0, None) for o in node.output if o],
    )
    model = onnx.helper.make_model(graph, opset_imports=list(opset_imports))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                ref = ReferenceEvaluator(model)
                results = ref.run(None, {n: i.const for n, i in present})
    except Exception as exc:  # noqa: BLE001 - the reference kernels raise anything
        logger.debug("fold of %s failed: %s", node.op_type, exc)
        return None
    out = []
    it = iter(results)
    for name in node.output:
        if not name:
            out.append(TensorInfo())
            continue
        r = next(it, None)
        if isinstance(r, np.generic):
            r = np.asarray(r)
        if not isinstance(r, np.ndarray) or r.dtype == object:
            return None
        try:
            dtype = onnx.helper.np_dtype_to_tensor_dtype(r.dtype)
        except Exception:  # noqa: BLE001
            return None
        small = r if r.size <= FOLD_LIMIT else None
        out.append(TensorInfo(dtype=dtype, shape=tuple(int(d) for d in r.shape), const=small))
    return out
