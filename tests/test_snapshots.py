"""The rendered text of every fixture's findings, against a committed snapshot (ruff-style).

Any change of wording, of a fix hint, of a source line or of which findings
a fixture gets shows here as a diff to review.  ``tests/snapshots/fixture_findings.txt``
holds one section per fixture (``## <path>`` then ``check``'s text output
for it, without the summary line).  To accept a change, regenerate it and
review the diff::

    SHAPELINT_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_snapshots.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shapelint.check import check
from shapelint.diagnostics import RunReport
from shapelint.report.text import render_text

from .conftest import FIXTURES, fixture_files

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "fixture_findings.txt"
UPDATE = os.environ.get("SHAPELINT_UPDATE_SNAPSHOTS") == "1"
FILES = fixture_files()
HOW = "SHAPELINT_UPDATE_SNAPSHOTS=1 python -m pytest -q tests/test_snapshots.py, then review the diff"


def _rel(path: Path) -> str:
    return (Path("fixtures") / path.relative_to(FIXTURES)).as_posix()


def rendered(path: Path, rules) -> str:
    report = check(path, rules=rules).release()
    report.path = _rel(path)  # the same text wherever the tests run from
    return render_text(RunReport(files=[report]), quiet=True)


def _sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = line[3:]
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v).strip("\n") for k, v in out.items()}


@pytest.fixture(scope="module")
def snapshot(rules) -> dict[str, str]:
    if UPDATE:
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"## {_rel(p)}\n{rendered(p, rules)}\n\n" for p in FILES)
        SNAPSHOT.write_text("# check's text output for every fixture: tests/test_snapshots.py; regenerate with\n"
                            f"# {HOW}\n\n" + body, encoding="utf-8")
    if not SNAPSHOT.exists():
        pytest.fail(f"no snapshot at {SNAPSHOT}: {HOW}")
    return _sections(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FIXTURES)) for p in FILES])
def test_the_rendered_findings_of_a_fixture_match_the_snapshot(path, snapshot, rules):
    rel = _rel(path)
    assert rel in snapshot, f"{rel} has no snapshot yet: {HOW}"
    assert rendered(path, rules) == snapshot[rel], f"the rendered findings of {rel} changed: {HOW}"


def test_the_snapshot_names_no_fixture_that_is_gone(snapshot):
    gone = sorted(set(snapshot) - {_rel(p) for p in FILES})
    assert not gone, f"stale sections {gone}: {HOW}"


def test_the_snapshot_holds_findings_not_just_empty_sections(snapshot):
    """A snapshot of nothing passes every comparison: it must hold the bad fixtures' findings."""
    with_findings = [k for k, v in snapshot.items() if "[SL" in v]
    assert len(with_findings) >= 50, len(with_findings)
