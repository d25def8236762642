"""Configuration files: discovery, every key, clear errors, flags over the file."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from shapelint.cli import main
from shapelint.config import Config, ConfigError, find_config, load_config, parse_config

from .conftest import parse

MATMUL_K = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, k] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""
MATMUL_BAD = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""


def write_model(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(parse(text), path)
    return path


def run(*args, env=None):
    return CliRunner().invoke(main, list(args), env=env)


def rules_of(res) -> list[str]:
    return [d["rule"] for f in json.loads(res.stdout)["files"] for d in f["diagnostics"]]


# ---------------------------------------------------------------- parsing
def test_every_key_is_read_into_the_config():
    cfg = parse_config(
        {
            "select": ["sl1", "SL501"],
            "ignore": "SL106",
            "per-file-ignores": {"legacy/*.onnx": ["SL5"]},
            "severity": {"SL501": "warning"},
            "fail-on": "warning",
            "dims": {"batch": 8, "seq_len": 128},
            "jobs": 3,
            "format": "sarif",
            "plugins": {"acme101": {"allow-graph-outputs": False}, "shapelint-acme": {"x": 1}},
        }
    )
    assert cfg.select == ["SL1", "SL501"] and cfg.ignore == ["SL106"]
    assert cfg.per_file_ignores == {"legacy/*.onnx": ["SL5"]}
    assert cfg.severity == {"SL501": "warning"} and cfg.fail_on == "warning"
    assert cfg.dims == {"batch": 8, "seq_len": 128} and cfg.jobs == 3 and cfg.format == "sarif"
    assert cfg.plugins == {"ACME101": {"allow-graph-outputs": False}, "shapelint-acme": {"x": 1}}
    assert parse_config({"jobs": "auto"}).jobs is None


@pytest.mark.parametrize(
    "table, words",
    [
        ({"fail_on": "error"}, "did you mean 'fail-on'"),
        ({"colour": True}, "unknown key 'colour'"),
        ({"select": "SL1,SL2"}, "'SL1,SL2' is not a rule code"),
        ({"select": 3}, "expected a list of codes"),
        ({"ignore": ["sl-201"]}, "is not a rule code"),
        ({"severity": {"SL501": "fatal"}}, "severity.SL501: 'fatal' is not one of error, warning, info"),
        ({"severity": {"batch": "error"}}, "'batch' is not a rule code"),
        ({"fail-on": "warn"}, "fail-on: 'warn' is not one of"),
        ({"dims": {"batch": -1}}, "dims.batch: expected an integer >= 0"),
        ({"dims": {"batch": "8"}}, "dims.batch: expected an integer >= 0"),
        ({"dims": {"batch": True}}, "dims.batch"),
        ({"dims": [1, 2]}, "dims: expected a table"),
        ({"jobs": 0}, "jobs: expected an integer from 1 to 256"),
        ({"jobs": "many"}, "jobs:"),
        ({"format": "xml"}, "format: 'xml' is not one of text, json, jsonl, sarif, github"),
        ({"plugins": {"ACME101": 1}}, "plugins.ACME101: expected a table"),
        ({"per-file-ignores": ["x"]}, "per-file-ignores: expected a table"),
        ({"per-file-ignores": {"*.onnx": ["bad code"]}}, "is not a rule code"),
    ],
)
def test_a_bad_key_or_value_is_a_one_line_error(table, words):
    with pytest.raises(ConfigError) as err:
        parse_config(table)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_codes_that_name_no_installed_rule_are_errors(rules):
    with pytest.raises(ConfigError, match="'SL99' matches no installed rule"):
        parse_config({"select": ["SL99"]}).validate_against(rules)
    with pytest.raises(ConfigError, match=r"'SL130' matches no installed rule \(did you mean"):
        parse_config({"severity": {"SL130": "info"}}).validate_against(rules)
    with pytest.raises(ConfigError, match="neither an installed rule code nor a plugin name"):
        parse_config({"plugins": {"nope": {}}}).validate_against(rules)
    parse_config({"select": ["ALL", "SL1"], "severity": {"SL103": "info"}, "plugins": {"SL103": {}}}).validate_against(rules)


# ---------------------------------------------------------------- discovery
def test_the_config_is_found_by_walking_up_from_the_checked_path(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.shapelint]\nfail-on = "warning"\n')
    (tmp_path / "models" / "sub").mkdir(parents=True)
    (tmp_path / "models" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no table: passed over
    model = tmp_path / "models" / "sub" / "m.onnx"
    assert find_config(model) == (tmp_path / "pyproject.toml").resolve()
    assert find_config(tmp_path / "models" / "sub" / "*.onnx") == (tmp_path / "pyproject.toml").resolve()
    (tmp_path / "models" / "shapelint.toml").write_text('fail-on = "info"\n')
    assert find_config(model) == (tmp_path / "models" / "shapelint.toml").resolve()
    assert load_config(start=model).fail_on == "info"


def test_a_shapelint_toml_wins_over_a_pyproject_in_the_same_folder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.shapelint]\nfail-on = "warning"\n')
    (tmp_path / "shapelint.toml").write_text('fail-on = "info"\n')
    assert load_config(start=tmp_path).fail_on == "info"


def test_errors_name_the_file_and_the_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.shapelint]\nfail-on = "sometimes"\n')
    with pytest.raises(ConfigError) as err:
        load_config(start=tmp_path)
    assert str(err.value).startswith(f"{(tmp_path / 'pyproject.toml').resolve()}: [tool.shapelint] fail-on:")
    (tmp_path / "pyproject.toml").write_text("[tool.shapelint\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(start=tmp_path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")


def test_per_file_ignores_match_paths_relative_to_the_config_and_bare_names(tmp_path):
    cfg = Config(per_file_ignores={"legacy/*.onnx": ["SL5"], "exp_*.onnx": ["SL1"]}, path=tmp_path / "shapelint.toml")
    assert cfg.ignored_for(str(tmp_path / "legacy" / "a.onnx")) == ["SL5"]
    assert cfg.ignored_for(str(tmp_path / "x" / "exp_1.onnx")) == ["SL1"]
    assert cfg.ignored_for(str(tmp_path / "models" / "a.onnx")) == []


# ---------------------------------------------------------------- the command line
def test_the_file_sets_select_format_and_fail_on(tmp_path):
    model = write_model(tmp_path / "m.onnx", MATMUL_K)
    (tmp_path / "shapelint.toml").write_text('format = "json"\nselect = ["SL1"]\n')
    res = run("check", "--jobs", "1", str(model))
    assert res.exit_code == 0, res.output
    assert rules_of(res) == []  # SL501 is not selected
    (tmp_path / "shapelint.toml").write_text('format = "json"\nseverity = {SL501 = "warning"}\nfail-on = "warning"\n')
    res = run("check", "--jobs", "1", str(model))
    assert res.exit_code == 1 and rules_of(res) == ["SL501"]
    assert json.loads(res.stdout)["files"][0]["diagnostics"][0]["severity"] == "warning"


def test_flags_and_environment_override_the_file(tmp_path):
    model = write_model(tmp_path / "m.onnx", MATMUL_K)
    (tmp_path / "shapelint.toml").write_text('format = "json"\nselect = ["SL1"]\nfail-on = "info"\n')
    res = run("check", "--select", "SL5", "--fail-on", "error", str(model))
    assert res.exit_code == 1 and rules_of(res) == ["SL501"]
    res = run("check", "--format", "text", str(model))
    assert "Checked 1 file" in res.stdout
    res = run("check", str(model), env={"SHAPELINT_FORMAT": "github"})
    assert res.stdout == ""  # no findings: no annotations
    res = run("check", "--isolated", str(model))
    assert "[SL501]" in res.stdout  # defaults: text, every rule


def test_dims_from_the_file_bind_symbols_and_dim_flags_win(tmp_path):
    model = write_model(tmp_path / "m.onnx", MATMUL_K)
    (tmp_path / "shapelint.toml").write_text('format = "json"\n[dims]\nk = 8\n')
    assert rules_of(run("check", str(model))) == ["SL103"]
    assert rules_of(run("check", "--dim", "k=4", str(model))) == []


def test_per_file_ignores_from_the_file_drop_findings(tmp_path):
    bad = write_model(tmp_path / "legacy" / "old.onnx", MATMUL_BAD)
    new = write_model(tmp_path / "new.onnx", MATMUL_BAD)
    (tmp_path / "pyproject.toml").write_text('[tool.shapelint]\nformat = "json"\n[tool.shapelint.per-file-ignores]\n"legacy/*" = ["SL103"]\n')
    res = run("check", "--jobs", "1", str(bad), str(new))
    data = json.loads(res.stdout)
    assert [f["status"] for f in data["files"]] == ["ok", "findings"]


def test_config_flag_points_at_a_file_anywhere(tmp_path):
    model = write_model(tmp_path / "models" / "m.onnx", MATMUL_K)
    cfg = tmp_path / "elsewhere" / "pyproject.toml"
    cfg.parent.mkdir()
    cfg.write_text('[tool.shapelint]\nformat = "json"\nignore = ["SL5"]\n')
    res = run("check", "--config", str(cfg), str(model))
    assert res.exit_code == 0 and rules_of(res) == []
    empty = tmp_path / "elsewhere" / "other.toml"
    empty.write_text("")
    assert run("check", "--config", str(empty), str(model)).exit_code == 1  # an empty shapelint.toml: defaults


def test_a_bad_config_is_a_one_line_error_with_exit_2(tmp_path):
    model = write_model(tmp_path / "m.onnx", MATMUL_K)
    (tmp_path / "shapelint.toml").write_text('fail-on = "sometimes"\n')
    res = run("check", str(model))
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "fail-on: 'sometimes' is not one of error, warning, info" in res.stderr
    (tmp_path / "shapelint.toml").write_text('select = ["SL9"]\n')
    res = run("check", str(model))
    assert res.exit_code == 2 and "shapelint.toml: select: 'SL9' matches no installed rule" in res.stderr
    assert run("check", "--isolated", str(model)).exit_code == 1  # --isolated skips the broken file
    assert run("check", "--isolated", "--config", str(tmp_path / "shapelint.toml"), str(model)).exit_code == 2


def test_jobs_default_to_the_cores_and_the_file_can_set_them(tmp_path, monkeypatch):
    import sys

    check_mod = sys.modules["shapelint.check"]

    seen = []
    real = check_mod.check_paths

    def spy(paths, jobs=1, **kw):
        seen.append(jobs)
        return real(paths, jobs=1, **kw)

    monkeypatch.setattr(check_mod, "check_paths", spy)
    model = write_model(tmp_path / "m.onnx", MATMUL_K)
    from shapelint.config import default_jobs

    run("check", str(model))
    (tmp_path / "shapelint.toml").write_text("jobs = 3\n")
    run("check", str(model))
    run("check", "-j", "2", str(model))
    run("check", str(model), env={"SHAPELINT_JOBS": "5"})
    assert seen == [min(n, default_jobs()) for n in (default_jobs(), 3, 2, 5)]  # capped at the CPUs


# ---------------------------------------------------------------- docs and integrations
def test_every_config_key_and_format_is_documented():
    from shapelint.config import FORMATS, KEYS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "ci.md").read_text()
    for key in KEYS:
        assert f"| `{key}` |" in doc, key
    for fmt in FORMATS:
        assert f"- **{fmt}**" in doc, fmt


def test_the_pre_commit_hook_runs_shapelint_check_on_onnx_files():
    yaml = pytest.importorskip("yaml")
    import re

    (hook,) = yaml.safe_load((Path(__file__).resolve().parent.parent / ".pre-commit-hooks.yaml").read_text())
    # --force-exclude: pre-commit names every staged file, and the project's excludes must still apply (ruff's hook does the same)
    assert hook["id"] == "shapelint" and hook["entry"] == "shapelint check --force-exclude" and hook["language"] == "python"
    assert re.search(hook["files"], "models/a.onnx") and not re.search(hook["files"], "a.onnx.json")
