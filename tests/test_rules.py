"""Every fixture model gives exactly the findings recorded in its metadata.

``fixtures/make_fixtures.py`` stores the expected ``(code, node)`` pairs in
each model's ``metadata_props``; a healthy model records none.  Findings of
severity info (SL001 on custom ops) count too.
"""

from __future__ import annotations

import pytest

from shapelint.check import check

from .conftest import FIXTURES, expected_pairs, fixture_files

FILES = fixture_files()

# Fixtures whose recorded findings shapelint does not give yet: ``tests/known_gaps.txt`` holds one
# ``relative/path.onnx  reason`` a line.  Each is a strict xfail, so a gap that closes must leave the list.
KNOWN_GAPS = {}
for _line in (FIXTURES.parent / "tests" / "known_gaps.txt").read_text(encoding="utf-8").splitlines():
    if _line.strip() and not _line.startswith("#"):
        _rel, _, _why = _line.strip().partition(" ")
        KNOWN_GAPS[_rel] = _why.strip() or "known gap"


def _param(path):
    rel = str(path.relative_to(FIXTURES))
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[rel])] if rel in KNOWN_GAPS else []
    return pytest.param(path, id=rel, marks=marks)


def test_known_gaps_name_existing_fixtures():
    missing = [rel for rel in KNOWN_GAPS if not (FIXTURES / rel).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("path", [_param(p) for p in FILES])
def test_fixture_reports_exactly_the_recorded_findings(path, rules):
    want = sorted(set(expected_pairs(path)))
    report = check(path, rules=rules)
    assert report.error is None, report.error
    got = sorted({(d.rule, d.node) for d in report.diagnostics})
    assert got == want, "\n".join(f"{d.rule} {d.node}: {d.message}" for d in report.diagnostics)


def test_there_are_healthy_and_bad_fixtures():
    healthy = [p for p in FILES if not expected_pairs(p)]
    bad = [p for p in FILES if expected_pairs(p)]
    assert len(healthy) >= 5 and len(bad) >= 5


@pytest.mark.parametrize("path", [p for p in FILES if p.parent.name[:2] == "SL"], ids=lambda p: str(p.relative_to(FIXTURES)))
def test_a_rule_folder_holds_bad_models_of_its_own_code(path):
    code = path.parent.name.split("-", 1)[0]
    pairs = expected_pairs(path)
    if path.name.startswith("good"):
        assert all(c != code for c, _ in pairs)
    else:
        assert any(c == code for c, _ in pairs), pairs


# rules whose fixes name the framework calls to use: JAX/Flax wording is added for jax2onnx's models only
_SEQUENCE_RULES = ("SL202", "SL204", "SL301", "SL302", "SL303", "SL401", "SL402", "SL403", "SL404", "SL405")


def test_fixes_speak_jax_to_the_models_jax2onnx_wrote_and_only_to_them(rules):
    import onnx

    jax_seen = other_seen = 0
    for path in FILES:
        if not expected_pairs(path):
            continue
        made_by = onnx.load(str(path), load_external_data=False).producer_name
        for d in check(path, rules=rules).diagnostics:
            if d.rule not in _SEQUENCE_RULES or not d.fix:
                continue
            if made_by == "jax2onnx":
                jax_seen += 1
                assert "; JAX/Flax: " in d.fix or "JAX jax.lax.scan" in d.fix, (path, d.rule, d.fix)  # (a Scan's own)
            else:
                other_seen += 1
                assert "JAX/Flax:" not in d.fix and "Flax:" not in d.fix, (path, d.rule, d.fix)
    assert jax_seen >= 10 and other_seen >= 30, (jax_seen, other_seen)


def _reshape_to(shape: str, target: list[int]) -> list:
    from shapelint.check import check

    from .conftest import parse

    m = parse(f'''<ir_version: 8, opset_import: ["" : 17]>
g (float{shape} x) => (y) {{ t = Constant <value = int64[{len(target)}] {{{", ".join(map(str, target))}}}> ()
                              y = Reshape (x, t) }}''')
    return [(d.rule, d.message) for d in check(m).diagnostics]


def test_sl501_a_literal_reshape_pins_a_product_of_dynamic_dims():
    # (B, T, 10) -> (24, 10): valid for the few (B, T) with B*T == 24 only (onnxruntime fails elsewhere)
    got = _reshape_to("[B, T, 10]", [24, 10])
    assert [r for r, _ in got] == ["SL501"] and "only when B * T == 24" in got[0][1]
    got = _reshape_to("[B, T, 2, 5]", [4, 6, 10])
    assert [r for r, _ in got] == ["SL501"] and "only when B * T == 24" in got[0][1]


def test_sl501_a_literal_reshape_that_merges_or_cannot_match_is_not_pinned_twice():
    assert [r for r, _ in _reshape_to("[B, T, 10]", [-1, 10])] == []  # -1 takes B*T: fine
    assert "B * T == 7" in _reshape_to("[B, T, 10]", [7, 10])[0][1]  # (1, 7) and (7, 1): still pinned
    assert "SL501" not in [r for r, _ in _reshape_to("[B, T, 10]", [7, 3])]  # 21 is no B*T*10: no size to pin
    one = _reshape_to("[B, 10]", [40])  # one dim: inference's own "valid only when B == 4", reported once
    assert [r for r, _ in one] == ["SL501"] and "B == 4" in one[0][1]
