"""Shared test helpers: fixture discovery and tiny inline models."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import onnx.parser
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def fixture_files():
    return sorted(FIXTURES.rglob("*.onnx"))


def expected_pairs(path: Path) -> list[tuple[str, str | None]]:
    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return [tuple(p) for p in json.loads(props.get("shapelint.expect", "[]"))]


def parse(text: str) -> onnx.ModelProto:
    """A model from onnx's textual syntax (``onnx.parser``)."""
    return onnx.parser.parse_model(text)


@pytest.fixture(autouse=True)
def _no_result_cache(monkeypatch):
    """The CLI's result cache is off in tests (and in the processes they start): a test that changes what
    ``check`` does (a monkeypatched step, a test-only rule) must never read a report an earlier test stored,
    nor leave a ``.shapelint_cache`` in the working directory.  tests/test_cache.py turns it back on."""
    monkeypatch.setenv("SHAPELINT_NO_CACHE", "1")


def loader_with(code: str, rule):
    """``shapelint.plugins.load_rules`` as it is now, plus the test-only ``rule`` under ``code``: what a test
    sets ``plugins.load_rules`` to so that the CLI runs that rule too."""
    from shapelint import plugins

    real = plugins.load_rules

    def load_rules(extra=None):
        rs = real(extra)
        rs.rules[code] = rule
        return rs

    return load_rules


@pytest.fixture(scope="session")
def rules():
    from shapelint.plugins import load_rules

    return list(load_rules())
