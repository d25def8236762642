"""One pipeline: ``check`` returns one result; ``verify``, ``fix``, ``--graph`` and the API reuse it.

They never rebuild it (inference runs once per model), and they honour what
``check`` honours: the config (severity overrides, ignores), ``--dim`` and
``--select``.  ``verify`` exits 1 whenever onnxruntime fails at a size the
model's inputs declare valid, whatever the static severity.
"""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from shapelint.analyses import Analyses
from shapelint.axes import analyse
from shapelint.check import check, check_paths
from shapelint.cli import main
from shapelint.diagnostics import FileReport
from shapelint.result import CheckResult

from .conftest import FIXTURES
from .test_verify import baked_model

C = sys.modules["shapelint.check"]


@pytest.fixture
def count_inference(monkeypatch):
    """How many times inference ran, whoever called it (every walk goes through ``Inferencer.run``)."""
    from shapelint.infer.walk import Inferencer

    calls = []
    real = Inferencer.run

    def counted(self):
        calls.append(self.mg)
        return real(self)

    monkeypatch.setattr(Inferencer, "run", counted)
    return calls


def test_check_returns_one_result_holding_the_report_graph_shapes_and_analyses():
    r = check(baked_model())
    assert isinstance(r, CheckResult) and isinstance(r, FileReport)
    assert r.graph is not None and r.table is not None and r.model is not None
    assert isinstance(r.analyses, Analyses) and r.analyses is r.table.analyses
    am = r.analyses.get(analyse, r.graph, r.table)
    assert r.analyses.get(analyse) is am  # computed once, keyed by the function, shared with every rule
    with pytest.raises(TypeError, match="not by 'axes'"):
        r.analyses.get("axes")
    assert [d.rule for d in r.report.diagnostics] == [d.rule for d in r.diagnostics]
    assert type(r.report) is FileReport and r.release().diagnostics == r.diagnostics and r.graph is None


def test_a_rule_asking_for_the_axis_map_gets_the_one_on_the_result():
    r = check(FIXTURES / "SL202-reshape-scrambles-channels" / "bad_torchscript.onnx")
    assert analyse in r.analyses  # a sequence rule asked for it during the check: kept for verify and fix


def test_verify_and_the_pictures_reuse_checks_inference(tmp_path, count_inference, rules):
    from shapelint import verify as V

    path = tmp_path / "baked.onnx"
    baked_model(path)
    V.verify(path, rules=rules)
    assert len(count_inference) == 1
    count_inference.clear()
    res = CliRunner().invoke(main, ["check", "--isolated", "--jobs", "1", "--verify", "--graph", str(tmp_path / "pics"),
                                    str(path)])
    assert res.exit_code == 1, res.output
    assert len(count_inference) == 1, "check --verify --graph rebuilt the pipeline"
    assert list((tmp_path / "pics").rglob("*.svg"))
    assert "runtime: confirmed" in res.output


def test_fix_reuses_the_check_of_the_original(tmp_path, count_inference, rules):
    from shapelint.fix import fix_model

    path = tmp_path / "baked.onnx"
    baked_model(path)
    fix_model(str(path), str(tmp_path / "out.onnx"), rules=rules)  # no built-in edit for SL501: nothing to apply
    assert len(count_inference) == 1


def test_verify_honours_the_config_ignore_and_severity_in_its_static_pass(tmp_path):
    model = tmp_path / "baked.onnx"
    baked_model(model)
    crnn = tmp_path / "crnn.onnx"
    crnn.write_bytes((FIXTURES / "SL202-reshape-scrambles-channels" / "bad_tf2onnx_crnn.onnx").read_bytes())

    def run(*args):
        res = CliRunner().invoke(main, ["verify", "--format", "json", *args])
        return res.exit_code, json.loads(res.stdout)["files"]

    code, files = run(str(model), str(crnn))
    by = {f["path"]: f for f in files}
    assert [d["rule"] for d in by[str(model)]["diagnostics"]] == ["SL501"]
    assert [(d["rule"], d["severity"]) for d in by[str(crnn)]["diagnostics"]] == [("SL202", "warning")]
    (tmp_path / "shapelint.toml").write_text('ignore = ["SL501"]\n[severity]\nSL202 = "info"\n')
    code, files = run(str(model), str(crnn))
    by = {f["path"]: f for f in files}
    # SL501 ignored by the config: the failure it explained is now verify's own SL901
    assert [d["rule"] for d in by[str(model)]["diagnostics"]] == ["SL901"] and code == 1
    # the config's severity: SL202 (onnxruntime runs it, values scrambled) is reported as info
    assert [(d["rule"], d["severity"]) for d in by[str(crnn)]["diagnostics"]] == [("SL202", "info")]
    code, files = run("--isolated", str(crnn))
    assert [(d["rule"], d["severity"]) for d in files[0]["diagnostics"]] == [("SL202", "warning")]


def test_verify_pins_dim_as_check_does(tmp_path):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    checked = CliRunner().invoke(main, ["check", "--isolated", "--format", "json", "--dim", "batch=4", str(path)])
    verified = CliRunner().invoke(main, ["verify", "--isolated", "--format", "json", "--dim", "batch=4", str(path)])
    c, v = json.loads(checked.stdout)["files"][0], json.loads(verified.stdout)["files"][0]
    assert [d["rule"] for d in v["diagnostics"]] == [d["rule"] for d in c["diagnostics"]]
    assert [b["dims"] for b in v["runtime"]["bindings"]] == [{"batch": 4}] and verified.exit_code == 0


def test_verify_exits_1_when_onnxruntime_fails_at_a_valid_size_whatever_the_severity(tmp_path):
    """The issue: a model that only works at one size, whose confirmed findings were warnings, exited 0."""
    path = tmp_path / "baked.onnx"
    baked_model(path)
    (tmp_path / "shapelint.toml").write_text('[severity]\nSL501 = "warning"\n')
    checked = CliRunner().invoke(main, ["check", str(path)])
    assert checked.exit_code == 0  # statically a warning, below --fail-on error
    res = CliRunner().invoke(main, ["verify", "--format", "json", str(path)])
    assert res.exit_code == 1, res.output
    (d,) = json.loads(res.stdout)["files"][0]["diagnostics"]
    assert d["rule"] == "SL501" and d["severity"] == "error" and d["runtime"]["severity_was"] == "warning"
    assert "an error, whatever the rule's severity (warning): onnxruntime fails at batch=1 and batch=3, which " \
           "the model's inputs declare valid" in d["runtime"]["summary"]


def test_a_warning_rule_confirmed_at_session_creation_fails_verify(rules):
    from shapelint import verify as V

    path = FIXTURES / "SL205-batchwise-recurrent-layout" / "bad_torchscript.onnx"
    static = {d.rule: d.severity for d in check(path, rules=rules).diagnostics}
    assert static == {"SL205": "warning"}
    report = V.verify(path, rules=rules)
    (d,) = [d for d in report.diagnostics if d.rule == "SL205"]
    assert d.runtime["status"] == "confirmed" and d.severity == "error"
    assert "fails when the session is created" in d.runtime["summary"]


def test_verify_runs_files_in_parallel_with_a_progress_callback_and_keeps_their_order(rules):
    from shapelint import verify as V

    paths = [str(p) for p in sorted((FIXTURES / "SL501-traced-size-baked-in").glob("*view_literal*.onnx"))]
    paths += [str(FIXTURES / "healthy" / "mlp_ts.onnx")]
    seen = []
    one = V.verify_paths(paths, rules=rules, jobs=1)
    two = V.verify_paths(paths, rules=rules, jobs=2, progress=lambda r: seen.append(r.path))
    assert [f.path for f in two.files] == paths and sorted(seen) == sorted(paths)
    assert [[(d.rule, d.severity, d.runtime["status"]) for d in f.diagnostics] for f in two.files] == \
           [[(d.rule, d.severity, d.runtime["status"]) for d in f.diagnostics] for f in one.files]
    assert [[b["status"] for b in f.runtime["bindings"]] for f in two.files] == \
           [[b["status"] for b in f.runtime["bindings"]] for f in one.files]


def test_verify_says_why_each_binding_was_chosen(tmp_path):
    path = FIXTURES / "SL501-traced-size-baked-in" / "bad_reshape_frame_windows.onnx"
    res = CliRunner().invoke(main, ["verify", "--isolated", "--jobs", "2", str(path)])
    assert res.exit_code == 1
    out = res.output
    assert "binding batch=1, time=1: every dim at 1" in out
    assert ("binding batch=5, time=7: the smallest primes dividing none of the graph's shape literals and traced "
            "sizes (6, 16): a Reshape that assumes divisibility fails here") in out
    assert "runtime: confirmed: onnxruntime fails at (batch=1, time=1) and (batch=5, time=7) in Reshape '/Reshape'" in out


def test_check_paths_runs_a_hook_on_each_result_where_it_was_checked(tmp_path):
    seen = []

    class Hook:
        def __call__(self, result):
            seen.append((type(result).__name__, result.graph is not None))
            result.diagnostics = result.diagnostics[:0]
            return result

    path = tmp_path / "baked.onnx"
    baked_model(path)
    report = check_paths([str(path)], jobs=1, after=Hook())
    assert seen == [("CheckResult", True)] and report.files[0].diagnostics == []
    assert type(report.files[0]) is FileReport  # the graph and table stay behind
