"""Completeness as a measured figure: over every healthy fixture, the share of tensors whose shape is known.

A shape is known when its rank is and every dim is a number or an expression of the inputs' declared
dims (no anonymous ``?N``).  Where onnx's own inference (``onnx.shape_inference.infer_shapes`` with
``data_prop=True``, run on a copy stripped of the exporter's ``value_info`` and output shapes, so it
infers rather than repeats them) knows a tensor's shape, shapelint must know it too, and no static dim
may disagree with onnx's.  onnx counts as knowing a dim when it gives a number or one of the inputs'
own dim names (``unk__N`` names it invents for a merge or a data-dependent size say nothing).
The figure is printed with ``-s``; README.md quotes it.
"""

from __future__ import annotations

import onnx
import pytest

from shapelint.dims import is_named
from shapelint.graph import ModelGraph
from shapelint.infer import infer

from .conftest import FIXTURES, expected_pairs, fixture_files

HEALTHY = [p for p in fixture_files() if not expected_pairs(p)]


def known(shape) -> bool:
    return shape is not None and all(
        isinstance(d, int) or (d is not None and all(is_named(s) for s in d.free_symbols)) for d in shape)


def onnx_knows(model: onnx.ModelProto) -> dict[str, list]:
    """Tensor -> dims onnx infers for it: an int, an input's dim name, or None where it does not know."""
    declared = {d.dim_param for vi in model.graph.input if vi.type.HasField("tensor_type")
                for d in vi.type.tensor_type.shape.dim if d.dim_param}
    del model.graph.value_info[:]
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type"):
            vi.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - onnx refuses some valid models (contrib ops): it knows nothing there
        return {}
    out = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output]:
        if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
            continue
        out[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param if d.dim_param in declared else None)
                        for d in vi.type.tensor_type.shape.dim]
    return out


@pytest.fixture(scope="module")
def measured():
    rows = []
    for path in HEALTHY:
        model = onnx.load(str(path), load_external_data=False)
        theirs = onnx_knows(onnx.load(str(path), load_external_data=False))
        table = infer(ModelGraph.from_model(model))
        for node in model.graph.node:
            for name in node.output:
                if name:
                    rows.append((str(path.relative_to(FIXTURES)), name, table.shape(name), theirs.get(name)))
    ours = sum(known(s) for _, _, s, _ in rows)
    onnx_count = sum(1 for *_, t in rows if t is not None and None not in t)
    print(f"\ncompleteness over {len(HEALTHY)} healthy fixtures, {len(rows)} tensors: shapelint knows "
          f"{ours} ({ours / len(rows):.1%}), onnx data_prop {onnx_count} ({onnx_count / len(rows):.1%})")
    return rows


def test_every_shape_onnx_knows_is_known(measured):
    missing = [(f, t, s, o) for f, t, s, o in measured if o is not None and None not in o and not known(s)]
    assert not missing, missing[:10]


def test_no_static_dim_disagrees_with_onnx(measured):
    wrong = []
    for f, t, s, o in measured:
        if s is None or o is None:
            continue
        if len(s) != len(o) or any(isinstance(a, int) and isinstance(b, int) and a != b for a, b in zip(s, o)):
            wrong.append((f, t, s, o))
    assert not wrong, wrong[:10]


def test_nearly_every_tensor_of_the_healthy_fixtures_is_known(measured):
    """Onnx or not: what is left is by design (an If whose branches return widths 4 and 6)."""
    assert sum(known(s) for _, _, s, _ in measured) >= 0.999 * len(measured)
