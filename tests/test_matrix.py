"""The generated matrix (``tests/matrix.py``): each seed rule's mistake and its twin, in many disguises.

Two tests per variant:

* ``test_variant_truth``: independent of shapelint.  The model passes
  ``onnx.checker`` (full_check); a twin runs under onnxruntime at every
  binding of its dynamic dims (two, or one when static); a bad model runs
  at every binding when its mistake is silent, and fails off the traced
  size when that is what it declares (``Variant.bad_runs``).
* ``test_variant_shapelint``: a bad variant gets its rule's code on the
  culprit node, and nothing else except findings on that node, SL001 info,
  or the consequences the family declares; a twin gets no sequence-rule
  finding (SL2xx, SL3xx, SL4xx, SL5xx) at all.

What shapelint does not get right yet is listed in ``tests/matrix_gaps.txt``
(gaps first, then a ``# false positives`` section, and a ``# internal errors``
section for variants on which a rule crashes): each is a strict xfail,
so a variant that starts passing fails the run until it leaves the list.
Regenerate the list with ``python -m tests.matrix --write-gaps``.
"""

from __future__ import annotations

import onnx
import pytest

from . import matrix

VARIANTS = matrix.variants()
GAPS, FALSE_POSITIVES, INTERNAL_ERRORS = matrix.read_gaps()


def _shapelint_param(v):
    marks = []
    if v.id in INTERNAL_ERRORS:
        marks.append(pytest.mark.xfail(strict=True, reason="a rule crashes: see tests/matrix_gaps.txt"))
    elif v.id in FALSE_POSITIVES:
        marks.append(pytest.mark.xfail(strict=True, reason="false positive: see tests/matrix_gaps.txt"))
    elif v.id in GAPS:
        marks.append(pytest.mark.xfail(strict=True, reason="axis algebra: issue 11"))
    return pytest.param(v, id=v.id, marks=marks)


def test_gaps_list_names_existing_variants():
    ids = {v.id for v in VARIANTS}
    listed = GAPS | FALSE_POSITIVES | INTERNAL_ERRORS
    assert not listed - ids, sorted(listed - ids)[:20]
    bad = {v.id for v in VARIANTS if v.bad}
    assert GAPS <= bad, "twins belong in the '# false positives' section: " + ", ".join(sorted(GAPS - bad)[:10])
    assert not FALSE_POSITIVES & bad, sorted(FALSE_POSITIVES & bad)[:10]


def test_matrix_is_large_and_covers_every_rule_both_ways():
    assert len(VARIANTS) >= 300
    for fam in matrix.FAMILIES:
        mine = [v for v in VARIANTS if v.rule == fam.rule]
        assert any(v.bad for v in mine) and any(not v.bad for v in mine), fam.rule


def test_every_mistake_has_its_twin():
    ids = {v.id for v in VARIANTS}
    for v in VARIANTS:
        if v.bad:
            assert v.id[: -len("bad")] + "good" in ids, v.id


@pytest.mark.parametrize("v", [pytest.param(v, id=v.id) for v in VARIANTS])
def test_variant_truth(v):
    if v.bad and v.bad_runs == "none":
        onnx.checker.check_model(v.model)  # a refuted width: onnx's strict inference refuses it as onnxruntime does
    else:
        onnx.checker.check_model(v.model, full_check=True)
    assert (v.culprit is not None) == v.bad
    if v.bad:
        names = {n.name for n in v.model.graph.node}
        assert v.culprit in names, f"culprit {v.culprit} is not a top-level node"
    results = matrix.run_ort(v)
    ran = [r is None for r in results]
    if not v.bad or v.bad_runs == "all":
        assert all(ran), f"{v.id} must run at {v.bindings}: {results}"
    elif v.bad_runs == "none":
        assert not any(ran), f"{v.id} should fail at every binding {v.bindings}: {results}"
    else:  # trace-only: runs at the traced binding, fails at the other one
        assert ran[0], f"{v.id} must run at its traced binding {v.bindings[0]}: {results[0]}"
        assert len(ran) > 1 and not any(ran[1:]), f"{v.id} should fail off the trace {v.bindings[1:]}: {results}"


@pytest.mark.parametrize("v", [_shapelint_param(v) for v in VARIANTS])
def test_variant_shapelint(v, rules):
    ok, why = matrix.shapelint_verdict(v, rules)
    assert ok, why
