"""Every rule is documented, uniquely coded and has fixtures."""

from __future__ import annotations

import re

import pytest

from shapelint.plugins import load_rules

from .conftest import FIXTURES, expected_pairs

RULES = list(load_rules())
HEADINGS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead")


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_doc_has_the_user_headings(rule):
    doc = rule.doc()
    for h in HEADINGS:
        assert h in doc, f"{rule.code} doc lacks {h!r}"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_is_named_after_its_file(rule):
    module = rule.__module__.rsplit(".", 1)[-1]
    assert module == rule.slug.replace("-", "_")
    assert rule.__name__.lower() == rule.slug.replace("-", "")
    assert re.fullmatch(r"SL\d{3}", rule.code)
    assert not rule.slug.startswith(("no-", "bad-"))


def test_codes_are_unique():
    codes = [r.code for r in RULES]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_every_rule_fires_on_some_fixture(rule):
    firing = [p for p in FIXTURES.rglob("*.onnx") if any(c == rule.code for c, _ in expected_pairs(p))]
    assert firing, f"no fixture records a {rule.code} finding"
