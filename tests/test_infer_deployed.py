"""Deployed models: onnxruntime's optimizer, quantizers and saved sessions, against onnxruntime's own run.

``fixtures/deployed/`` holds small BERT, GPT-2, Llama, CNN and LSTM models as onnxruntime's tools leave
them (fused attention and layer norms, QDQ and QLinear* quantization, 4-bit MatMulNBits, FusedConv...).
``fixtures/deployed/runtime_shapes.json`` records, from when each fixture was made, the shape onnxruntime
gave every tensor at two bindings of the dynamic axes.  Inference must know every one of those shapes and
agree with both runs once the symbols are substituted, and the models must check clean: no SL001.
"""

from __future__ import annotations

import json

import onnx
import pytest

from shapelint.check import check
from shapelint.dims import is_named, symbol
from shapelint.graph import ModelGraph
from shapelint.infer import infer

from .conftest import FIXTURES

DEPLOYED = FIXTURES / "deployed"
TRUTH = json.loads((DEPLOYED / "runtime_shapes.json").read_text(encoding="utf-8"))
MODELS = sorted(TRUTH)


def known(shape) -> bool:
    return shape is not None and all(
        isinstance(d, int) or (d is not None and all(is_named(s) for s in d.free_symbols)) for d in shape)


def at(shape, dims: dict) -> list:
    subs = {symbol(k): v for k, v in dims.items()}
    out = []
    for d in shape:
        v = d if isinstance(d, int) else d.subs(subs)
        out.append(int(v) if isinstance(v, int) or v.is_Integer else None)
    return out


def test_the_fixtures_cover_the_fused_and_quantized_ops():
    ops = {op for entry in TRUTH.values() for op in entry["ops"]}
    want = {
        "com.microsoft.Attention", "com.microsoft.MultiHeadAttention", "com.microsoft.QAttention",
        "com.microsoft.EmbedLayerNormalization", "com.microsoft.QEmbedLayerNormalization",
        "com.microsoft.SkipLayerNormalization", "com.microsoft.SkipSimplifiedLayerNormalization",
        "SimplifiedLayerNormalization", "com.microsoft.BiasGelu", "com.microsoft.FastGelu", "com.microsoft.QuickGelu",
        "com.microsoft.FusedMatMul", "com.microsoft.MatMulNBits", "com.microsoft.DynamicQuantizeMatMul",
        "com.microsoft.DynamicQuantizeLSTM", "com.microsoft.FusedConv", "com.microsoft.QGemm",
        "com.microsoft.QLinearAdd", "com.microsoft.QLinearMul", "com.microsoft.QLinearConcat",
        "com.microsoft.QLinearSigmoid", "com.microsoft.QLinearLeakyRelu", "com.microsoft.QLinearAveragePool",
        "com.microsoft.QLinearGlobalAveragePool", "QLinearConv", "QuantizeLinear", "DequantizeLinear",
        "DynamicQuantizeLinear", "MatMulInteger",
    }
    assert want <= ops, sorted(want - ops)
    assert len(MODELS) == len(list(DEPLOYED.glob("*.onnx")))


@pytest.mark.parametrize("name", MODELS)
def test_every_shape_is_known_and_equals_onnxruntimes(name):
    entry = TRUTH[name]
    model = onnx.load(str(DEPLOYED / name), load_external_data=False)
    table = infer(ModelGraph.from_model(model))
    unknown = [t for t in entry["tensors"] if not known(table.shape(t))]
    assert not unknown, f"{len(unknown)} of {len(entry['tensors'])} tensors unknown: {unknown[:5]}"
    wrong = []
    for tensor, shapes in entry["tensors"].items():
        for dims, want in zip(entry["bindings"], shapes):
            got = at(table.shape(tensor), dims)
            if got != want:
                wrong.append(f"{tensor} at {dims}: inferred {table.shape(tensor)} = {got}, onnxruntime {want}")
    assert not wrong, "\n".join(wrong[:10])


@pytest.mark.parametrize("name", MODELS)
def test_a_deployed_model_checks_clean(name):
    report = check(DEPLOYED / name)
    assert report.error is None
    assert not report.diagnostics, [f"{d.rule} {d.node}: {d.message}" for d in report.diagnostics]
