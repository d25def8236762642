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


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FIXTURES)) for p in FILES])
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
