"""The command line: formats, exit codes, many files, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from shapelint.cli import main

from .conftest import FIXTURES

HEALTHY = sorted((FIXTURES / "healthy").glob("*.onnx"))


@pytest.fixture
def runner():
    return CliRunner()


def test_a_healthy_model_exits_0(runner):
    res = runner.invoke(main, ["check", str(HEALTHY[0])])
    assert res.exit_code == 0, res.output
    assert "0 errors" in res.output


def test_findings_exit_1_with_one_line_each(runner, tmp_path):
    bad = next(FIXTURES.glob("SL103-*/bad*.onnx"))
    res = runner.invoke(main, ["check", str(bad)])
    assert res.exit_code == 1
    assert "[SL103]" in res.output and "fix:" in res.output


def test_json_output_follows_the_contract(runner):
    bad = next(FIXTURES.glob("multi-conflict/bad*.onnx"))
    res = runner.invoke(main, ["check", "--format", "json", str(bad), str(HEALTHY[0])])
    data = json.loads(res.output)
    assert data["tool"]["name"] == "shapelint"
    assert [f["status"] for f in data["files"]] == ["findings", "ok"]
    diags = data["files"][0]["diagnostics"]
    assert len({d["node"] for d in diags}) == 3
    for d in diags:
        assert set(d) == {"rule", "name", "severity", "node", "op_type", "tensor", "message", "fix", "source"}
    # the contract's keys, then the extensions (extend only: a consumer of the contract keys keeps working)
    assert {k: data["summary"][k] for k in ("files", "errors", "warnings")} == {"files": 2, "errors": 3, "warnings": 0}
    assert {"infos", "failed_files", "recurrences", "undecided_recurrences"} <= set(data["summary"])
    assert all(isinstance(f["skipped"], list) for f in data["files"])


def test_a_bad_file_is_an_error_line_and_the_others_are_still_checked(runner, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"garbage")
    good = tmp_path / "good.onnx"
    shutil.copy(HEALTHY[0], good)
    res = runner.invoke(main, ["check", "--format", "json", str(broken), str(good)])
    assert res.exit_code == 2
    data = json.loads(res.output)
    assert [f["status"] for f in data["files"]] == ["error", "ok"]
    assert "Traceback" not in res.output
    text = runner.invoke(main, ["check", str(broken), str(good)])
    assert text.exit_code == 2 and "broken.onnx: error:" in text.output


def test_folders_are_searched_recursively_and_globs_expand(runner):
    res = runner.invoke(main, ["check", "--format", "json", str(FIXTURES / "healthy")])
    assert len(json.loads(res.output)["files"]) == len(HEALTHY)
    res = runner.invoke(main, ["check", "--format", "json", str(FIXTURES / "healthy" / "*.onnx")])
    assert len(json.loads(res.output)["files"]) == len(HEALTHY)


def test_select_and_ignore_filter_codes(runner):
    bad = next(FIXTURES.glob("multi-conflict/bad*.onnx"))
    res = runner.invoke(main, ["check", "--format", "json", "--select", "SL103", str(bad)])
    assert {d["rule"] for d in json.loads(res.output)["files"][0]["diagnostics"]} == {"SL103"}
    res = runner.invoke(main, ["check", "--format", "json", "--ignore", "SL1", str(bad)])
    assert json.loads(res.output)["files"][0]["diagnostics"] == []


def test_fail_on_warning_turns_warnings_into_exit_1(runner, tmp_path):
    import onnx

    text = """<ir_version: 8, opset_import: ["" : 17, "com.acme" : 1]>
    g (float[batch, 4] x) => (y) { y = com.acme.FancyNorm(x) }"""
    p = tmp_path / "custom.onnx"
    onnx.save(onnx.parser.parse_model(text), p)
    assert runner.invoke(main, ["check", str(p)]).exit_code == 0
    assert runner.invoke(main, ["check", "--fail-on", "info", str(p)]).exit_code == 1


def test_jobs_give_the_same_output_in_the_same_order(runner):
    paths = [str(p) for p in sorted(FIXTURES.rglob("*.onnx"))]
    one = runner.invoke(main, ["check", "--format", "json", "--jobs", "1", *paths])
    two = runner.invoke(main, ["check", "--format", "json", "--jobs", "2", *paths])
    assert json.loads(one.output) == json.loads(two.output)


def test_bad_usage_exits_2(runner):
    assert runner.invoke(main, ["check", "--dim", "batch", "x.onnx"]).exit_code == 2
    assert runner.invoke(main, ["explain", "SL999"]).exit_code == 2


def test_shapes_prints_every_node_and_json(runner):
    res = runner.invoke(main, ["shapes", str(HEALTHY[0])])
    assert res.exit_code == 0 and "batch" in res.output
    data = json.loads(runner.invoke(main, ["shapes", "--format", "json", str(HEALTHY[0])]).output)
    assert data["nodes"] and all("outputs" in n for n in data["nodes"])


def test_shapes_on_a_bad_file_exits_2(runner, tmp_path):
    p = tmp_path / "x.onnx"
    p.write_bytes(b"")
    assert runner.invoke(main, ["shapes", str(p)]).exit_code == 2


def test_rules_and_explain(runner):
    res = runner.invoke(main, ["rules"])
    assert "SL501" in res.output and "built-in" in res.output
    res = runner.invoke(main, ["explain", "SL501"])
    assert "## Why is this bad?" in res.output
    assert runner.invoke(main, ["explain", "traced-size-baked-in"]).exit_code == 0
