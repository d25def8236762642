"""Baselines: adopt shapelint on models that already have findings; only new ones fail."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest
from click.testing import CliRunner

from shapelint.baseline import BaselineError, baseline_from, filter_report, read_baseline
from shapelint.cli import main
from shapelint.diagnostics import Diagnostic, FileReport, RunReport

from .conftest import FIXTURES, parse

BAD = sorted(FIXTURES.glob("SL*/bad*.onnx"))
MATMUL_BAD = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""


def run(*args):
    return CliRunner().invoke(main, ["check", "--isolated", "--jobs", "1", "--fail-on", "info", *args])


def copy_into(tmp_path, sources):
    """A copy of ``sources``, laid out as in a repository."""
    models = tmp_path / "models"
    for p in sources:
        target = models / p.parent.name / p.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    return tmp_path


@pytest.fixture
def repo(tmp_path):
    """A few bad fixtures (one per rule folder) in a repository."""
    firsts = {p.parent: p for p in reversed(BAD)}
    return copy_into(tmp_path, sorted(firsts.values())[:6])


def test_a_baseline_of_the_bad_fixtures_makes_the_next_run_pass_and_a_new_finding_fails_it(tmp_path, monkeypatch):
    repo = copy_into(tmp_path, BAD)
    monkeypatch.chdir(repo)
    assert BAD, "no bad fixtures"
    assert run("models").exit_code == 1
    res = run("--write-baseline", "shapelint-baseline.json", "models")
    assert res.exit_code == 0, res.output
    assert "wrote" in res.stderr
    data = json.loads((repo / "shapelint-baseline.json").read_text())
    assert all(not name.startswith("/") and name.startswith("models/") for name in data["files"])
    assert run("--baseline", "shapelint-baseline.json", "models").exit_code == 0

    onnx.save(parse(MATMUL_BAD), repo / "models" / "new.onnx")
    res = run("--baseline", "shapelint-baseline.json", "--format", "json", "models")
    assert res.exit_code == 1
    found = [(f["path"], d["rule"]) for f in json.loads(res.stdout)["files"] for d in f["diagnostics"]]
    assert found == [("models/new.onnx", "SL103")]


def test_baseline_paths_are_relative_to_the_baseline_file_not_the_working_directory(repo, monkeypatch):
    monkeypatch.chdir(repo)
    assert run("--write-baseline", "ci/baseline.json", "models").exit_code == 0
    assert next(iter(json.loads((repo / "ci" / "baseline.json").read_text())["files"])).startswith("../models/")
    monkeypatch.chdir(repo / "models")
    assert run("--baseline", str(repo / "ci" / "baseline.json"), ".").exit_code == 0


def test_a_copy_of_a_baselined_model_under_a_new_path_is_new(repo, monkeypatch):
    monkeypatch.chdir(repo)
    onnx.save(parse(MATMUL_BAD), repo / "models" / "own.onnx")
    run("--write-baseline", "b.json", "models")
    assert run("--baseline", "b.json", "models").exit_code == 0
    shutil.copy(repo / "models" / "own.onnx", repo / "models" / "copy.onnx")
    assert run("--baseline", "b.json", "models").exit_code == 1


def diag(node="/fc/MatMul", message="8 vs 4") -> Diagnostic:
    return Diagnostic("SL103", "matmul-inner-dim", "error", node, "MatMul", "x", message)


def test_counts_let_only_as_many_findings_through_as_were_recorded(tmp_path):
    old = RunReport([FileReport(str(tmp_path / "m.onnx"), [diag()])])
    data = baseline_from(old, tmp_path)
    assert data["files"] == {
        "m.onnx": [{"rule": "SL103", "node": "/fc/MatMul", "tensor": "x", "count": 1, "fingerprint": data["files"]["m.onnx"][0]["fingerprint"]}]
    }
    now = RunReport([FileReport(str(tmp_path / "m.onnx"), [diag(message="16 vs 4"), diag(message="16 vs 4"), diag(node="/b")])])
    result = filter_report(now, data, tmp_path)
    assert result.dropped == 1 and [d.node for d in now.diagnostics] == ["/fc/MatMul", "/b"]


def test_fixed_findings_are_reported_as_stale(repo, monkeypatch):
    monkeypatch.chdir(repo)
    run("--write-baseline", "b.json", "models")
    first = sorted((repo / "models").rglob("*.onnx"))[0]
    first.unlink()
    onnx.save(parse(MATMUL_BAD.replace("8] x", "4] x")), first)  # now healthy
    res = run("--baseline", "b.json", "models")
    assert res.exit_code == 0 and "no longer occur" in res.stderr


def test_a_missing_or_malformed_baseline_is_a_one_line_error(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    res = run("--baseline", str(tmp_path / "nope.json"), str(model))
    assert res.exit_code == 2 and "no such baseline file" in res.stderr and res.stderr.count("\n") == 1
    (tmp_path / "b.json").write_text('{"version": 7}')
    assert run("--baseline", str(tmp_path / "b.json"), str(model)).exit_code == 2
    with pytest.raises(BaselineError, match="not a shapelint baseline"):
        (tmp_path / "c.json").write_text("[1,")
        read_baseline(tmp_path / "c.json")
