"""``shapelint fix``: edits applied to a copy, re-checked, and confirmed under onnxruntime.

Few built-in rules carry an edit yet, so most tests use a rule of their own
(``TST501``) that replaces the literal batch of a baked Reshape target by 0
(copy the axis); the last tests run every built-in edit found on the fixtures.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnx.parser
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from shapelint import plugins
from shapelint.cli import main
from shapelint.fix import FixError, fix_model, graph_diff, render_fix_text
from shapelint.rule import Fix, Rule, Severity

from .conftest import FIXTURES, expected_pairs, fixture_files, loader_with
from .test_verify import baked_model


def _set_first(name: str, value: int, scale_w: float | None = None):
    def apply(model: onnx.ModelProto) -> None:
        for t in model.graph.initializer:
            if t.name == name:
                v = numpy_helper.to_array(t).copy()
                v[0] = value
                t.CopyFrom(numpy_helper.from_array(v, name))
            elif scale_w is not None and t.name == "w":
                t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * scale_w, "w"))

    return apply


class LiteralBatch(Rule):
    """A Reshape target holds a literal where its input has a dynamic axis 0."""

    code, slug, severity = "TST501", "literal-batch-in-reshape", Severity.ERROR
    op_types = ("Reshape",)
    #: how the edit behaves: "copy" (right), "raise", "wrong-values" (changes w but claims to preserve outputs)
    mode = "copy"

    def check(self, node, ctx):
        target = ctx.const(node.input[1])
        x = ctx.shape(node.input[0])
        if target is None or x is None or isinstance(x[0], int) or int(target.reshape(-1)[0]) in (0, -1):
            return
        name = node.input[1]
        if self.mode == "raise":
            def apply(model):
                raise RuntimeError("this edit is broken")
        elif self.mode == "wrong-values":
            apply = _set_first(name, 0, scale_w=2.0)
        else:
            apply = _set_first(name, 0)
        yield ctx.finding(node, f"literal {int(target.reshape(-1)[0])} for axis 0",
                          edit=Fix(f"copy axis 0 of {node.input[0]!r} (0 in the target)", apply, preserves_outputs=True))


class MatMulNote(Rule):
    """Every MatMul, reported without a mechanical fix."""

    code, slug, severity = "TST100", "matmul-note", Severity.WARNING
    op_types = ("MatMul",)

    def check(self, node, ctx):
        yield ctx.finding(node, "look at this MatMul", fix="by hand")


@pytest.fixture
def with_rule(rules):
    return [*rules, LiteralBatch]


@pytest.fixture
def cli_rules(monkeypatch):
    """The CLI's rules plus TST501."""
    monkeypatch.setattr(plugins, "load_rules", loader_with("TST501", LiteralBatch))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fix_repairs_a_copy_that_then_runs_at_every_binding_and_keeps_its_outputs(tmp_path, with_rule):
    src, out = tmp_path / "baked.onnx", tmp_path / "fixed.onnx"
    baked_model(src)
    before = digest(src)
    result = fix_model(str(src), str(out), rules=with_rule)
    assert result.exit_code == 0, render_fix_text(result)
    assert digest(src) == before, "the input file was written"
    assert [(a.rule, a.node, a.ok) for a in result.applied] == [("TST501", "/flat/Reshape", True)]
    assert result.applied[0].changes == ["~ initializer 's': [4, -1] -> [0, -1]"]
    assert {d.rule for d in result.before.diagnostics} == {"SL501", "TST501"}
    assert result.after.diagnostics == [] and not result.new and not result.remaining
    assert [d.rule for d in result.also_gone] == ["SL501"]
    v = result.verification
    # the original's bindings (1, the prime 3 that the literal 4 does not share, the traced 4), then the copy's own
    # (it has no literal left: the smallest prime, 2)
    assert [(r["dims"]["batch"], r["original"], r["fixed"]) for r in v["bindings"]] == [
        (1, "error", "runs"), (3, "error", "runs"), (4, "runs", "runs"), (2, "error", "runs")]
    assert v["confirmed"] and v["outputs_compared"] == 1 and v["outputs_equal"] == 1
    fixed = onnx.load(str(out))
    assert numpy_helper.to_array(next(t for t in fixed.graph.initializer if t.name == "s")).tolist() == [0, -1]
    text = render_fix_text(result)
    assert "fixed  [TST501] /flat/Reshape" in text and "wrote" in text and "confirmed under onnxruntime" in text


def test_fix_never_writes_over_its_input(tmp_path, with_rule):
    src = tmp_path / "baked.onnx"
    baked_model(src)
    with pytest.raises(FixError, match="never overwrites its input"):
        fix_model(str(src), str(src), rules=with_rule)
    with pytest.raises(FixError, match="never overwrites its input"):
        fix_model(str(src), str(tmp_path / "." / "baked.onnx"), rules=with_rule)


def test_dry_run_shows_the_edits_and_writes_nothing(tmp_path, with_rule):
    src, out = tmp_path / "baked.onnx", tmp_path / "fixed.onnx"
    baked_model(src)
    result = fix_model(str(src), str(out), dry_run=True, rules=with_rule)
    assert not out.exists() and not result.written and result.verification is None
    text = render_fix_text(result)
    assert "dry run: nothing written" in text and "would fix [TST501]" in text
    assert "~ initializer 's': [4, -1] -> [0, -1]" in text


def test_a_finding_without_a_mechanical_fix_is_left_and_counts_against_fail_on_the_others_are_applied(tmp_path, with_rule):
    src, out = tmp_path / "baked.onnx", tmp_path / "fixed.onnx"
    baked_model(src)
    result = fix_model(str(src), str(out), rules=[*with_rule, MatMulNote], fail_on="warning")
    assert result.exit_code == 1  # the TST100 warning is still there, and warnings fail this run
    assert [d.rule for d in result.unfixable] == ["TST100"]
    assert result.written and out.exists()
    assert result.verification["confirmed"]
    text = render_fix_text(result)
    assert "no fix [TST100] /fc/MatMul" in text and "no machine-applicable fix" in text
    assert text.splitlines()[-1].endswith("1 fixed, 1 finding left, the copy confirmed under onnxruntime "
                                          "(1 at or above --fail-on warning)")
    # below the default --fail-on error the same warning does not fail, and the last line says why
    again = fix_model(str(src), str(tmp_path / "again.onnx"), rules=[*with_rule, MatMulNote])
    assert again.exit_code == 0 and "(none at or above --fail-on error)" in render_fix_text(again)


def _matmul_conflict(path: Path) -> Path:
    """x @ w with inner dims 8 vs 4: SL103, an error no rule has an edit for."""
    m = onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x) => (y) { y = MatMul(x, w) }""")
    m.graph.initializer.append(numpy_helper.from_array(np.ones((4, 3), np.float32), "w"))
    onnx.save(m, str(path))
    return path


def test_fix_with_no_edit_writes_nothing_names_the_findings_and_exits_1(tmp_path, rules):
    src, out = _matmul_conflict(tmp_path / "bad.onnx"), tmp_path / "fixed.onnx"
    result = fix_model(str(src), str(out), rules=rules)
    assert not out.exists() and not result.written and not result.applied and result.verification is None
    assert result.exit_code == 1 and [d.rule for d in result.unfixable] == ["SL103"]
    text = render_fix_text(result)
    assert "(nothing written)" in text.splitlines()[0] and "wrote" not in text and "every finding fixed" not in text
    assert "no fix [SL103]" in text and "(no machine-applicable fix)" in text
    assert text.splitlines()[-1] == ("  no machine-applicable fix for the 1 finding (1 at or above --fail-on error); "
                                     "nothing written")
    res = CliRunner().invoke(main, ["fix", "--isolated", str(src), "-o", str(out)])
    assert res.exit_code == 1 and not out.exists(), res.output


def test_fix_on_a_clean_model_writes_nothing_and_exits_0(tmp_path, rules):
    src, out = tmp_path / "clean.onnx", tmp_path / "fixed.onnx"
    onnx.save(onnx.parser.parse_model("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 8] x) => (y) { y = Relu(x) }"""), str(src))
    result = fix_model(str(src), str(out), rules=rules)
    assert result.exit_code == 0 and not out.exists() and not result.written
    assert render_fix_text(result).splitlines()[-1] == "  no findings: nothing to fix; nothing written"
    res = CliRunner().invoke(main, ["fix", "--isolated", str(src), "-o", str(out)])
    assert res.exit_code == 0 and not out.exists() and "nothing written" in res.output


def test_fix_takes_several_models_into_a_folder(tmp_path, cli_rules):
    b, c = tmp_path / "a.onnx", _matmul_conflict(tmp_path / "b.onnx")
    baked_model(b)  # TST501 has an edit for it
    out = tmp_path / "out"
    out.mkdir()
    res = CliRunner().invoke(main, ["fix", "--isolated", str(b), str(c), "-o", str(out), "--format", "json"])
    data = json.loads(res.output)
    assert [r["input"] for r in data["results"]] == [str(b), str(c)]
    assert [r["written"] for r in data["results"]] == [True, False]
    assert sorted(p.name for p in out.iterdir()) == ["a.onnx"]  # b has nothing to apply: nothing written for it
    assert res.exit_code == 1 == data["exit_code"]  # b's SL103 remains
    res = CliRunner().invoke(main, ["fix", "--isolated", str(b), str(c), "-o", str(tmp_path / "one.onnx")])
    assert res.exit_code == 2 and "names an existing folder" in res.stderr
    other = tmp_path / "sub"
    other.mkdir()
    baked_model(other / "a.onnx")
    res = CliRunner().invoke(main, ["fix", "--isolated", str(b), str(other / "a.onnx"), "-o", str(out)])
    assert res.exit_code == 2 and "would both be written" in res.stderr


def test_is_fixable_marks_the_findings_fix_can_repair_also_after_they_crossed_processes(tmp_path, with_rule):
    from shapelint.check import check_paths
    from shapelint.fix import is_fixable

    src = tmp_path / "baked.onnx"
    baked_model(src)
    for jobs in (1, 2):
        report = check_paths([str(src), str(src)], jobs=jobs, rules=with_rule)
        marks = {(d.rule, is_fixable(d)) for d in report.diagnostics}
        assert marks == {("TST501", True), ("SL501", False)}, jobs
        assert all(d.edit is None for d in report.diagnostics)  # the edits stayed behind; the mark did not


def test_an_edit_that_raises_is_reported_and_exits_2(tmp_path, with_rule, monkeypatch):
    src, out = tmp_path / "baked.onnx", tmp_path / "fixed.onnx"
    baked_model(src)
    monkeypatch.setattr(LiteralBatch, "mode", "raise")
    result = fix_model(str(src), str(out), rules=with_rule)
    assert result.exit_code == 2
    assert result.applied[0].ok is False and "this edit is broken" in result.applied[0].error
    assert "FAILED [TST501]" in render_fix_text(result)


def test_an_edit_that_changes_values_it_claims_to_keep_is_caught(tmp_path, with_rule, monkeypatch):
    src, out = tmp_path / "baked.onnx", tmp_path / "fixed.onnx"
    baked_model(src)
    monkeypatch.setattr(LiteralBatch, "mode", "wrong-values")
    result = fix_model(str(src), str(out), rules=with_rule)
    assert result.exit_code == 2
    assert any("changed value: y" in r for r in result.verification["regressions"]), result.verification


def test_external_weights_are_written_next_to_the_copy(tmp_path, with_rule):
    src, out = tmp_path / "ext.onnx", tmp_path / "out" / "fixed.onnx"
    out.parent.mkdir()
    onnx.save(baked_model(), str(src), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.onnx.data", size_threshold=0)
    result = fix_model(str(src), str(out), rules=with_rule)
    assert result.exit_code == 0, render_fix_text(result)
    assert (tmp_path / "out" / "fixed.onnx.data").exists()
    w = numpy_helper.to_array(next(t for t in onnx.load(str(out)).graph.initializer if t.name == "w"))
    np.testing.assert_array_equal(w, numpy_helper.to_array(next(t for t in baked_model().graph.initializer if t.name == "w")))


def test_graph_diff_names_added_changed_and_removed_nodes():
    a = baked_model()
    b = onnx.ModelProto()
    b.CopyFrom(a)
    b.graph.node[1].input[0] = "r2"
    b.graph.node.insert(1, onnx.helper.make_node("Relu", ["r"], ["r2"], name="/act/Relu"))
    lines = graph_diff(a, b)
    assert "~ MatMul '/fc/MatMul': inputs (r, w) -> (r2, w)" in lines
    assert "+ Relu '/act/Relu' (r) -> (r2)" in lines


# ------------------------------------------------------------------------ CLI
def test_cli_fix_prints_before_and_after_and_exits_0(tmp_path, monkeypatch, rules):
    src, out = tmp_path / "baked.onnx", tmp_path / "fixed.onnx"
    baked_model(src)
    monkeypatch.setattr(plugins, "load_rules", loader_with("TST501", LiteralBatch))
    result = CliRunner().invoke(main, ["fix", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "before: 2 findings" in result.output and "after: 0 findings" in result.output
    assert "batch=3" in result.output and "copy: runs" in result.output
    js = CliRunner().invoke(main, ["fix", str(src), "-o", str(tmp_path / "again.onnx"), "--format", "json"])
    data = json.loads(js.output)
    assert data["exit_code"] == 0 and data["applied"][0]["rule"] == "TST501" and data["verification"]["confirmed"]


def test_cli_fix_refuses_to_overwrite_the_input_and_needs_an_output(tmp_path):
    src = tmp_path / "baked.onnx"
    baked_model(src)
    result = CliRunner().invoke(main, ["fix", str(src), "-o", str(src)])
    assert result.exit_code == 2 and "never overwrites its input" in result.output
    result = CliRunner().invoke(main, ["fix", str(src)])
    assert result.exit_code == 2


# --------------------------------------------------------- built-in edits
def _fixable_fixtures():
    """Bad fixtures whose own rule (the folder's code) attached an edit to its finding."""
    from shapelint.check import check
    from shapelint.plugins import load_rules

    rs = list(load_rules())
    out = []
    for p in fixture_files():
        pairs = set(expected_pairs(p))
        if not pairs:
            continue
        report = check(p, rules=rs)
        if any(d.edit is not None and (d.rule, d.node) in pairs for d in report.diagnostics):
            out.append(p)
    return out


FIXABLE = _fixable_fixtures()


@pytest.mark.parametrize("path", FIXABLE, ids=[str(p.relative_to(FIXTURES)) for p in FIXABLE])
def test_a_fixture_whose_rule_offers_an_edit_is_repaired_and_runs_at_every_binding(path, tmp_path, rules):
    out = tmp_path / "fixed.onnx"
    result = fix_model(str(path), str(out), rules=rules)
    text = render_fix_text(result)
    assert result.error is None and not result.broken, text
    assert all(a.ok for a in result.applied) and result.applied, text
    assert not result.remaining and not result.new, text
    v = result.verification
    assert v is not None and not v["still_failing"] and not v["regressions"], text
    assert all(r["fixed"] == "runs" for r in v["bindings"]), text
    # beyond "it runs": every edit's own claim is checked on onnxruntime's values, at every binding, and holds
    assert len(v["properties"]) == len(result.applied), text
    for p in v["properties"]:
        assert p["status"] == "holds" and all(r["ok"] is True for r in p["bindings"]), p
        assert p["retrain"]["needed"] in (True, False), p
    rank = {"error": 2, "warning": 1, "info": 0}
    assert result.exit_code == (1 if any(rank[d.severity] == 2 for d in result.after.diagnostics) else 0), text


def test_at_least_one_built_in_rule_offers_an_edit():
    assert FIXABLE, "no fixture has a finding with a machine-applicable fix"
