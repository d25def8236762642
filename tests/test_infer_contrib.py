"""onnxruntime's contrib and quantized ops, one node at a time, against what onnxruntime computes.

Each case is a one-node model with symbolic batch/sequence axes on its data inputs; it is run by
onnxruntime (CPU) at two sizes, and the shape inference gives for every output, with the symbols
substituted, must be the shape onnxruntime produced.  Ops without a CPU kernel in the installed
onnxruntime are skipped, not guessed.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from shapelint.check import check
from shapelint.dims import symbol
from shapelint.graph import ModelGraph
from shapelint.infer import infer

ort = pytest.importorskip("onnxruntime")

MS = "com.microsoft"
RNG = np.random.default_rng(0)
F32, I8, U8, I32, I64 = np.float32, np.int8, np.uint8, np.int32, np.int64


def f(*shape):
    return RNG.standard_normal(shape).astype(F32)


def q(*shape, dtype=U8):
    lo, hi = (0, 255) if dtype == U8 else (-127, 127)
    return RNG.integers(lo, hi, shape).astype(dtype)


def scalar(v, dtype=F32):
    return np.array(v, dtype)


class In:
    """A graph input: ``make(b, s)`` builds its value; ``axes`` maps an axis to the symbol it is declared with."""

    def __init__(self, make, axes=None):
        self.make, self.axes = make, dict(axes or {})


class W:
    """A weight (initializer): the same at every size."""

    def __init__(self, value):
        self.value = value


SIZES = [(2, 3), (3, 5)]


def build(op, inputs, attrs=None, n_out=1, domain=MS, opset=17, outputs=None):
    graph_inputs, inits, names = [], [], []
    for k, spec in enumerate(inputs):
        if spec is None:
            names.append("")
            continue
        name = f"in{k}"
        names.append(name)
        if isinstance(spec, W):
            inits.append(numpy_helper.from_array(spec.value, name))
        else:
            value = spec.make(*SIZES[0])
            dims = [spec.axes.get(a, d) for a, d in enumerate(value.shape)]
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(value.dtype), dims))
    outs = outputs or [f"out{k}" for k in range(n_out)]
    node = helper.make_node(op, names, outs, domain=domain, **(attrs or {}))
    g = helper.make_graph([node], "g", graph_inputs, [onnx.ValueInfoProto(name=o) for o in outs if o],
                          initializer=inits)
    imports = [helper.make_opsetid("", opset), helper.make_opsetid(MS, 1)]
    return helper.make_model(g, opset_imports=imports, ir_version=9)


def runtime_shapes(model, inputs):
    """``(symbol values, {output: shape})`` per size, the symbols' values read off the arrays fed."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - no CPU kernel for this op in this onnxruntime
        pytest.skip(f"onnxruntime has no CPU kernel for it: {str(exc).splitlines()[0][:160]}")
    got = []
    for b, s in SIZES:
        feeds, subs = {}, {}
        for k, spec in enumerate(inputs):
            if isinstance(spec, In):
                feeds[f"in{k}"] = value = spec.make(b, s)
                subs.update({symbol(name): value.shape[a] for a, name in spec.axes.items()})
        outs = [o.name for o in sess.get_outputs()]
        got.append((subs, dict(zip(outs, (list(np.shape(v)) for v in sess.run(outs, feeds))))))
    return got


def evaluate(shape, subs):
    out = []
    for d in shape:
        if isinstance(d, int):
            out.append(d)
        else:
            v = d.subs(subs)
            out.append(v if isinstance(v, int) else int(v) if getattr(v, "is_Integer", False) else None)
    return out


BS = {0: "B", 1: "S"}

CASES = {
    "SkipLayerNormalization": (
        "SkipLayerNormalization", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, s, 8), BS), W(f(8)), W(f(8)), W(f(8))],
        {"epsilon": 1e-5}, 4),
    "SkipLayerNormalization-2d-skip": (
        "SkipLayerNormalization", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(s, 8), {0: "S"}), W(f(8))], {}, 1),
    "SkipSimplifiedLayerNormalization": (
        "SkipSimplifiedLayerNormalization", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, s, 8), BS), W(f(8))], {}, 4),
    "SimplifiedLayerNormalization": (
        "SimplifiedLayerNormalization", [In(lambda b, s: f(b, s, 8), BS), W(f(8))], {"axis": -1}, 2, ""),
    "BiasGelu": ("BiasGelu", [In(lambda b, s: f(b, s, 8), BS), W(f(8))], {}, 1),
    "FastGelu": ("FastGelu", [In(lambda b, s: f(b, s, 8), BS), W(f(8))], {}, 1),
    "FastGelu-no-bias": ("FastGelu", [In(lambda b, s: f(b, s, 8), BS)], {}, 1),
    "Gelu": ("Gelu", [In(lambda b, s: f(b, s, 8), BS)], {}, 1),
    "QuickGelu": ("QuickGelu", [In(lambda b, s: f(b, s, 8), BS)], {"alpha": 1.702}, 1),
    "BiasAdd": ("BiasAdd", [In(lambda b, s: f(b, s, 8), BS), W(f(8)), In(lambda b, s: f(b, s, 8), BS)], {}, 1),
    "BiasSplitGelu": ("BiasSplitGelu", [In(lambda b, s: f(b, s, 8), BS), W(f(8))], {}, 1),
    "BiasSoftmax": ("BiasSoftmax", [In(lambda b, s: f(b, 2, s, s), {0: "B", 2: "S", 3: "S"}), In(lambda b, s: f(b, 1, 1, s), {0: "B", 3: "S"})],
                    {"axis": -1, "is_inner_broadcast": 0}, 1),
    "BiasDropout": ("BiasDropout", [In(lambda b, s: f(b, s, 8), BS), W(f(8)), In(lambda b, s: f(b, s, 8), BS)], {}, 2),
    "Attention": (
        "Attention", [In(lambda b, s: f(b, s, 8), BS), W(f(8, 24)), W(f(24)), In(lambda b, s: np.ones((b, s), I32), BS)],
        {"num_heads": 2}, 1),
    "Attention-present": (
        "Attention", [In(lambda b, s: f(b, s, 8), BS), W(f(8, 24)), W(f(24)), None, In(lambda b, s: f(2, b, 2, 4, 4), {1: "B"})],
        {"num_heads": 2, "unidirectional": 1}, 2),
    "Attention-qkv-sizes": (
        "Attention", [In(lambda b, s: f(b, s, 8), BS), W(f(8, 20)), W(f(20))], {"num_heads": 2, "qkv_hidden_sizes": [4, 4, 12]}, 1),
    "MultiHeadAttention": (
        "MultiHeadAttention", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, s + 1, 8), {0: "B", 1: "L"}),
                               In(lambda b, s: f(b, s + 1, 12), {0: "B", 1: "L"})], {"num_heads": 2}, 1),
    "MultiHeadAttention-past": (
        "MultiHeadAttention", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, s, 8), BS),
                               None, None, None, In(lambda b, s: f(b, 2, 3, 4), {0: "B"}), In(lambda b, s: f(b, 2, 3, 4), {0: "B"})],
        {"num_heads": 2}, 3),
    "MultiHeadAttention-cross-bnsh": (
        "MultiHeadAttention", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, 2, 7, 4), {0: "B"}),
                               In(lambda b, s: f(b, 2, 7, 4), {0: "B"})], {"num_heads": 2}, 1),
    "GroupQueryAttention-prompt": (
        "GroupQueryAttention", [In(lambda b, s: f(b, s, 32), BS), In(lambda b, s: f(b, s, 16), BS), In(lambda b, s: f(b, s, 16), BS),
                                None, None, In(lambda b, s: np.full((b,), s - 1, I32), {0: "B"}), In(lambda b, s: np.array(s, I32))],
        {"num_heads": 4, "kv_num_heads": 2}, 3),
    "GroupQueryAttention-decode": (
        "GroupQueryAttention", [In(lambda b, s: f(b, 1, 32), {0: "B"}), In(lambda b, s: f(b, 1, 16), {0: "B"}),
                                In(lambda b, s: f(b, 1, 16), {0: "B"}), In(lambda b, s: f(b, 2, 6, 8), {0: "B"}),
                                In(lambda b, s: f(b, 2, 6, 8), {0: "B"}), In(lambda b, s: np.full((b,), 6, I32), {0: "B"}),
                                W(np.array(7, I32))], {"num_heads": 4, "kv_num_heads": 2}, 3),
    "GroupQueryAttention-packed": (
        "GroupQueryAttention", [In(lambda b, s: f(b, 1, 64), {0: "B"}), None, None,
                                In(lambda b, s: f(b, 2, 6, 8), {0: "B"}), In(lambda b, s: f(b, 2, 6, 8), {0: "B"}),
                                In(lambda b, s: np.full((b,), 6, I32), {0: "B"}), W(np.array(7, I32))],
        {"num_heads": 4, "kv_num_heads": 2}, 3),
    "RotaryEmbedding": (
        "RotaryEmbedding", [In(lambda b, s: f(b, s, 16), BS), In(lambda b, s: np.tile(np.arange(s, dtype=I64), (b, 1)), BS),
                            W(f(16, 4)), W(f(16, 4))], {"num_heads": 2}, 1),
    "EmbedLayerNormalization": (
        "EmbedLayerNormalization", [In(lambda b, s: RNG.integers(0, 10, (b, s)).astype(I32), BS),
                                    In(lambda b, s: np.zeros((b, s), I32), BS), W(f(10, 8)), W(f(16, 8)), W(f(2, 8)), W(f(8)), W(f(8)),
                                    In(lambda b, s: np.ones((b, s), I32), BS)], {}, 3),
    "FusedMatMul": ("FusedMatMul", [In(lambda b, s: f(b, 4, s), {0: "B", 2: "S"}), In(lambda b, s: f(b, 6, 4), {0: "B"})],
                    {"transA": 1, "transB": 1, "alpha": 0.5}, 1),
    "FusedMatMul-transBatchA": ("FusedMatMul", [In(lambda b, s: f(s, b, 3, 4), {0: "S", 1: "B"}), In(lambda b, s: f(b, 3, 4, 5), {0: "B"})],
                                {"transBatchA": 1}, 1),
    "FusedMatMul-transBatchB": ("FusedMatMul", [In(lambda b, s: f(b, 2, 3, 4), {0: "B"}), In(lambda b, s: f(4, b, 2, 5), {1: "B"})],
                                {"transBatchB": 1}, 1),
    "MatMulNBits": ("MatMulNBits", [In(lambda b, s: f(b, s, 32), BS), W(q(16, 1, 16)), W(f(16, 1))],
                    {"K": 32, "N": 16, "bits": 4, "block_size": 32}, 1),
    "MatMulIntegerToFloat": ("MatMulIntegerToFloat", [In(lambda b, s: q(b, s, 8), BS), W(q(8, 6, dtype=I8)), W(scalar(0.1)),
                                                      W(scalar(0.2)), W(np.array(3, U8))], {}, 1),
    "DynamicQuantizeMatMul": ("DynamicQuantizeMatMul", [In(lambda b, s: f(b, s, 8), BS), W(q(8, 6, dtype=I8)), W(scalar(0.1))], {}, 1),
    "DynamicQuantizeLSTM": (
        "DynamicQuantizeLSTM", [In(lambda b, s: f(s, b, 6), {0: "S", 1: "B"}), W(q(2, 6, 20, dtype=I8)), W(q(2, 5, 20, dtype=I8)),
                                None, None, None, None, None, W(np.full(2, 0.1, F32)), W(np.zeros(2, I8)),
                                W(np.full(2, 0.1, F32)), W(np.zeros(2, I8))],
        {"hidden_size": 5, "direction": "bidirectional"}, 3),
    "QLinearAdd": ("QLinearAdd", [In(lambda b, s: q(b, s, 8), BS), W(scalar(0.1)), W(np.array(3, U8)), W(q(8)), W(scalar(0.1)),
                                  W(np.array(3, U8)), W(scalar(0.2)), W(np.array(5, U8))], {}, 1),
    "QLinearMul": ("QLinearMul", [In(lambda b, s: q(b, 1, 8), {0: "B"}), W(scalar(0.1)), W(np.array(3, U8)),
                                  In(lambda b, s: q(s, 8), {0: "S"}), W(scalar(0.1)), W(np.array(3, U8)), W(scalar(0.2)),
                                  W(np.array(5, U8))], {}, 1),
    "QLinearSigmoid": ("QLinearSigmoid", [In(lambda b, s: q(b, s, 8), BS), W(scalar(0.1)), W(np.array(3, U8)), W(scalar(0.2)),
                                          W(np.array(5, U8))], {}, 1),
    "QLinearLeakyRelu": ("QLinearLeakyRelu", [In(lambda b, s: q(b, s, 8), BS), W(scalar(0.1)), W(np.array(3, U8)), W(scalar(0.2)),
                                              W(np.array(5, U8))], {"alpha": 0.1}, 1),
    "QLinearSoftmax": ("QLinearSoftmax", [In(lambda b, s: q(b, s, 8), BS), W(scalar(0.1)), W(np.array(3, U8)), W(scalar(1 / 256)),
                                          W(np.array(0, U8))], {"axis": -1, "opset": 13}, 1),
    "QLinearConcat": ("QLinearConcat", [W(scalar(0.2)), W(np.array(5, U8)), In(lambda b, s: q(b, 2, s), {0: "B", 2: "S"}), W(scalar(0.1)),
                                        W(np.array(3, U8)), In(lambda b, s: q(b, 3, s), {0: "B", 2: "S"}), W(scalar(0.1)), W(np.array(3, U8))],
                      {"axis": 1}, 1),
    "QLinearGlobalAveragePool": ("QLinearGlobalAveragePool", [In(lambda b, s: q(b, 4, s, s + 1), {0: "B", 2: "S", 3: "L"}), W(scalar(0.1)),
                                                              W(np.array(3, U8)), W(scalar(0.2)), W(np.array(5, U8))], {}, 1),
    "QLinearGlobalAveragePool-nhwc": ("QLinearGlobalAveragePool", [In(lambda b, s: q(b, s, s + 1, 4), {0: "B", 1: "S", 2: "L"}), W(scalar(0.1)),
                                                                   W(np.array(3, U8)), W(scalar(0.2)), W(np.array(5, U8))],
                                      {"channels_last": 1}, 1),
    "QLinearAveragePool": ("QLinearAveragePool", [In(lambda b, s: q(b, 4, 2 * s + 3, 9), {0: "B", 2: "H"}), W(scalar(0.1)), W(np.array(3, U8)),
                                                  W(scalar(0.2)), W(np.array(5, U8))],
                           {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, 1),
    "QLinearConv-nhwc": ("QLinearConv", [In(lambda b, s: q(b, s + 4, 9, 3), {0: "B", 1: "H"}), W(scalar(0.1)), W(np.array(3, U8)),
                                         W(q(5, 3, 3, 3, dtype=I8)), W(scalar(0.1)), W(np.array(0, I8)), W(scalar(0.2)),
                                         W(np.array(5, U8))], {"channels_last": 1, "strides": [2, 2]}, 1),
    "NhwcMaxPool": ("NhwcMaxPool", [In(lambda b, s: q(b, s + 4, 9, 3), {0: "B", 1: "H"})], {"kernel_shape": [2, 2], "strides": [2, 2]}, 1),
    "QGemm": ("QGemm", [In(lambda b, s: q(b, 8), {0: "B"}), W(scalar(0.1)), W(np.array(3, U8)), W(q(6, 8, dtype=I8)), W(scalar(0.1)),
                        W(np.array(0, I8)), W(np.zeros(6, I32)), W(scalar(0.2)), W(np.array(5, U8))], {"transB": 1}, 1),
    "QGemm-float": ("QGemm", [In(lambda b, s: q(b, 8), {0: "B"}), W(scalar(0.1)), W(np.array(3, U8)), W(q(8, 6, dtype=I8)),
                              W(scalar(0.1)), W(np.array(0, I8))], {}, 1),
    "QAttention": ("QAttention", [In(lambda b, s: q(b, s, 8), BS), W(q(8, 24, dtype=I8)), W(f(24)), W(scalar(0.1)),
                                  W(scalar(0.1)), In(lambda b, s: np.full((b,), s, I32), {0: "B"}), W(np.array(0, U8)), W(np.array(0, I8))],
                   {"num_heads": 2}, 1),
    "FusedConv": ("FusedConv", [In(lambda b, s: f(b, 3, s + 4, 7), {0: "B", 2: "H"}), W(f(4, 3, 3, 3)), W(f(4))],
                  {"activation": "Relu", "strides": [2, 1], "pads": [1, 1, 1, 1]}, 1),
    "FusedGemm": ("FusedGemm", [In(lambda b, s: f(b, 8), {0: "B"}), W(f(6, 8)), W(f(6))], {"transB": 1, "activation": "Relu"}, 1),
    "Inverse": ("Inverse", [In(lambda b, s: np.eye(3, dtype=F32)[None].repeat(b, 0), {0: "B"})], {}, 1),
    "Trilu": ("Trilu", [In(lambda b, s: f(b, s, s), {0: "B", 1: "S", 2: "S"})], {"upper": 0}, 1),
    "QLinearWhere": ("QLinearWhere", [In(lambda b, s: RNG.random((b, s)) > 0.5, BS), In(lambda b, s: q(b, s), BS), W(scalar(0.1)),
                                      W(np.array(3, U8)), W(q(1)), W(scalar(0.1)), W(np.array(3, U8)), W(scalar(0.2)),
                                      W(np.array(5, U8))], {}, 1),
    "GatherBlockQuantized": ("GatherBlockQuantized", [W(q(10, 16, dtype=U8)), In(lambda b, s: RNG.integers(0, 10, (b, s)).astype(I64), BS),
                                                      W(f(10, 1))], {"gather_axis": 0, "quantize_axis": 1, "block_size": 32, "bits": 4}, 1),
    "CDist": ("CDist", [In(lambda b, s: f(b, 4), {0: "B"}), In(lambda b, s: f(s, 4), {0: "S"})], {"metric": "euclidean"}, 1),
    "MurmurHash3": ("MurmurHash3", [In(lambda b, s: RNG.integers(0, 9, (b, s)).astype(I32), BS)], {"positive": 1}, 1),
    "GroupNorm": ("GroupNorm", [In(lambda b, s: f(b, s, s, 8), {0: "B", 1: "S", 2: "S"}), W(f(8)), W(f(8))],
                  {"groups": 2, "activation": 0, "epsilon": 1e-5, "channels_last": 1}, 1),
    "DynamicQuantizeLinear": ("DynamicQuantizeLinear", [In(lambda b, s: f(b, s, 8), BS)], {}, 3, ""),
    "MatMulInteger": ("MatMulInteger", [In(lambda b, s: q(b, s, 8), BS), W(q(8, 6, dtype=I8)), W(np.array(3, U8))], {}, 1, ""),
    "QLinearMatMul": ("QLinearMatMul", [In(lambda b, s: q(b, s, 8), BS), W(scalar(0.1)), W(np.array(3, U8)), W(q(8, 6)), W(scalar(0.1)),
                                        W(np.array(3, U8)), W(scalar(0.2)), W(np.array(5, U8))], {}, 1, ""),
    "ConvInteger": ("ConvInteger", [In(lambda b, s: q(b, 3, s + 4, 7), {0: "B", 2: "H"}), W(q(4, 3, 3, 3)), W(np.array(3, U8))], {}, 1, ""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inferred_shapes_equal_onnxruntimes(name):
    op, inputs, attrs, n_out, *rest = CASES[name]
    domain = rest[0] if rest else MS
    model = build(op, inputs, attrs, n_out, domain=domain)
    runs = runtime_shapes(model, inputs)
    report = check(model)
    assert not [d for d in report.diagnostics], [f"{d.rule}: {d.message}" for d in report.diagnostics]
    table = infer(ModelGraph.from_model(model))
    for subs, shapes in runs:
        for out, want in shapes.items():
            got = table.shape(out)
            assert got is not None, f"{out}: rank unknown, onnxruntime gave {want}"
            assert evaluate(got, subs) == want, f"{out} at {subs}: inferred {got}, onnxruntime {want}"


def test_every_output_of_an_optional_output_op_is_typed():
    model = build("SkipLayerNormalization", CASES["SkipLayerNormalization"][1], {}, 4)
    table = infer(ModelGraph.from_model(model))
    assert [table.get(f"out{k}").dtype for k in range(4)] == [TensorProto.FLOAT] * 4


def test_a_missing_middle_output_is_left_out():
    """SkipLayerNormalization with only its output and input+skip sum: the empty names in between are no tensors."""
    model = build("SkipLayerNormalization", CASES["SkipLayerNormalization"][1], {}, outputs=["y", "", "", "sum"])
    runs = runtime_shapes(model, CASES["SkipLayerNormalization"][1])
    table = infer(ModelGraph.from_model(model))
    for subs, shapes in runs:
        for out, want in shapes.items():
            assert evaluate(table.shape(out), subs) == want
    assert not check(model).diagnostics


def test_an_attention_whose_weights_do_not_match_its_input_is_a_conflict():
    model = build("Attention", [In(lambda b, s: f(b, s, 8), BS), W(f(6, 24)), W(f(24))], {"num_heads": 2})
    assert [d.rule for d in check(model).diagnostics] == ["SL103"]


def test_a_contrib_op_without_a_handler_keeps_sl001():
    model = build("WordConvEmbedding", [In(lambda b, s: np.zeros((b, s, 4), I32), BS), W(f(3, 4, 2, 2)), W(f(3)), W(f(10, 2))])
    assert [d.rule for d in check(model).diagnostics] == ["SL001"]


def test_a_contrib_op_documented_as_shape_preserving_keeps_sl001_and_the_shape():
    """No handler for GatedAdd, but onnxruntime's schema says its output has the input's shape: SL001 says so."""
    model = build("GatedAdd", [In(lambda b, s: f(b, s, 8), BS), In(lambda b, s: f(b, s, 8), BS)], {})
    diags = check(model).diagnostics
    assert [d.rule for d in diags] == ["SL001"] and "shaped like its input" in diags[0].message
    table = infer(ModelGraph.from_model(model))
    assert table.shape("out0") == (symbol("B"), symbol("S"), 8)


def test_the_same_shape_contrib_ops_are_what_onnxruntimes_schemas_document():
    """check never imports onnxruntime: the list is kept in the code, and compared here with the schemas."""
    from shapelint.infer import walk
    from shapelint.verify.worker import _onnxruntime

    ort = _onnxruntime()  # imported with HOME and TMPDIR in a temp folder, as verify does
    if ort.__version__ != walk.ORT_SCHEMAS_VERSION:
        pytest.skip(f"the list was read from onnxruntime {walk.ORT_SCHEMAS_VERSION}, this is {ort.__version__}")
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_c

    assert walk.ort_same_shape_ops_from_schemas(ort_c.get_all_operator_schema()) == walk.ORT_SAME_SHAPE_OPS


def test_check_of_a_model_with_an_unknown_contrib_op_does_not_import_onnxruntime(tmp_path):
    import subprocess
    import sys

    m = helper.make_model(helper.make_graph(
        [helper.make_node("FancyNorm", ["x"], ["y"], domain="com.microsoft")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    code = ("import sys; from shapelint.check import check; r = check(sys.argv[1]); "
            "print('onnxruntime' in sys.modules, [d.rule for d in r.diagnostics])")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "False", out
