"""Constant folding of small nodes whose inputs are all known constants.

Runs the op with onnx's reference implementation (numpy) so shapes that
depend on values (a Range over constants, a Reshape of an embedded shape)
come out exact.  The few ops exporters fold most often (ConstantOfShape and
integer/float Add, Sub, Mul, Equal, Where) are computed with numpy directly:
building a reference evaluator costs about a millisecond a node, and
importing it a tenth of a second.  Only small tensors, and never ops whose output could be
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
    direct = _numpy_fold(node, [i.const for _, i in present])
    if direct is not None:
        return direct
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
    return _infos(node, results)


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Equal": np.equal}


def _numpy_fold(node, consts: list[np.ndarray]) -> list[TensorInfo] | None:
    """The common folds, without onnx.reference; None to let the reference evaluator decide."""
    op = node.op_type
    if len(node.output) != 1 or len(consts) != len(node.input):
        return None
    if op == "ConstantOfShape" and len(consts) == 1:
        dims = consts[0]
        if dims.dtype != np.int64 or dims.ndim != 1 or (dims < 0).any():
            return None
        value = next((a.t for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)
        if value is None:
            fill = np.zeros(1, np.float32)
        else:
            from onnx import numpy_helper

            fill = numpy_helper.to_array(value).reshape(-1)
            if fill.size != 1:
                return None
        return _infos(node, [np.full(tuple(int(d) for d in dims), fill[0], dtype=fill.dtype)])
    if op in _BINARY and len(consts) == 2:
        a, b = consts
        if a.dtype != b.dtype or a.dtype.kind not in "iuf" or node.attribute:
            return None  # legacy broadcast attributes and mixed types: the reference decides
        with np.errstate(all="ignore"):
            return _infos(node, [np.asarray(_BINARY[op](a, b))])
    if op == "Where" and len(consts) == 3:
        c, a, b = consts
        if c.dtype != np.bool_ or a.dtype != b.dtype:
            return None
        return _infos(node, [np.asarray(np.where(c, a, b))])
    return None


def _infos(node, results) -> list[TensorInfo] | None:
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
