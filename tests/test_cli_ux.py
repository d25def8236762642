"""What a ruff or flake8 user expects of the command line (issue 15)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from shapelint.cli import main

from .conftest import FIXTURES, ROOT, parse

HEALTHY = FIXTURES / "healthy" / "mlp_ts.onnx"
MATMUL_BAD = """<ir_version: 10, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""
MATMUL_K = """<ir_version: 10, opset_import: ["" : 17]>
g (float[batch, k] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""
ANSI = "\x1b["


@pytest.fixture(autouse=True)
def _no_colour_from_the_environment(monkeypatch):
    """The colour settings of the machine that runs the tests must not leak into what they compare."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


def run(*args, env=None, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, **kw)


def write_model(path: Path, text: str = MATMUL_BAD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(parse(text), path)
    return path


def rules_of(res) -> list[str]:
    return sorted(d["rule"] for f in json.loads(res.stdout)["files"] for d in f["diagnostics"])


def one_error_line(res, *words) -> None:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("shapelint: error: "), res.stderr
    assert "Traceback" not in res.output
    for w in words:
        assert w in lines[0], lines[0]


# ---------------------------------------------------------------- 1. selectors
@pytest.mark.parametrize("flag", ["--select", "--ignore", "--extend-select", "--extend-ignore"])
def test_an_unknown_code_on_the_command_line_is_an_error_with_a_hint(flag, tmp_path):
    model = write_model(tmp_path / "m.onnx")
    one_error_line(run("check", flag, "SL130", model), f"{flag}: 'SL130' matches no installed rule", "did you mean 'SL103'?")
    one_error_line(run("check", flag, "SL999", model), "SL999")


@pytest.mark.parametrize("key", ["extend-select", "extend-ignore"])
def test_an_unknown_code_in_the_config_extend_keys_is_an_error(key, tmp_path):
    model = write_model(tmp_path / "m.onnx")
    (tmp_path / "shapelint.toml").write_text(f'{key} = ["SL130"]\n')
    one_error_line(run("check", model), f"{key}: 'SL130' matches no installed rule", "did you mean 'SL103'?")


def test_extend_select_and_extend_ignore_add_to_the_config_and_the_flags(tmp_path):
    model = write_model(tmp_path / "m.onnx", MATMUL_K)
    (tmp_path / "shapelint.toml").write_text('format = "json"\nselect = ["SL1"]\n[dims]\nk = 8\n')
    assert rules_of(run("check", model, "--dim", "k=5")) == ["SL103"]
    # SL501 needs a dynamic k: the config's select drops it, --extend-select brings it back
    assert rules_of(run("check", model, "--isolated", "--format", "json")) == ["SL501"]
    (tmp_path / "shapelint.toml").write_text('format = "json"\nselect = ["SL1"]\nextend-select = ["SL5"]\n')
    assert rules_of(run("check", model)) == ["SL501"]
    (tmp_path / "shapelint.toml").write_text('format = "json"\nselect = ["SL1"]\n')
    assert rules_of(run("check", model)) == []
    assert rules_of(run("check", "--extend-select", "SL501", model)) == ["SL501"]
    (tmp_path / "shapelint.toml").write_text('format = "json"\nignore = ["SL1"]\nextend-ignore = ["SL0"]\n')
    assert rules_of(run("check", model)) == ["SL501"]
    assert rules_of(run("check", "--extend-ignore", "SL5", model)) == []
    assert rules_of(run("check", "--ignore", "SL0", model)) == ["SL501"]  # --ignore replaces the file's ignore only


# ---------------------------------------------------------------- 2. file discovery
@pytest.fixture
def project(tmp_path):
    """A repository with one model of its own and models where a tree walk must not go."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    for rel in ("models/m.onnx", ".venv/lib/site-packages/onnx/test.onnx", "node_modules/x/a.onnx", "build/b.onnx",
                "dist/c.onnx", "pkg.egg-info/d.onnx", "__pycache__/e.onnx", ".git/f.onnx", "ignored/g.onnx",
                "models/scratch/h.onnx", "models/keep.onnx"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(HEALTHY, root / rel)
    (root / ".gitignore").write_text("ignored/\n")
    (root / "models" / ".gitignore").write_text("scratch/\n")
    return root


def shown(res, root: Path) -> list[str]:
    assert res.exit_code == 0, res.output
    return sorted(Path(ln).resolve().relative_to(root.resolve()).as_posix() for ln in res.stdout.splitlines())


def test_a_folder_walk_skips_default_excludes_and_gitignored_paths(project):
    assert shown(run("check", "--show-files", project), project) == ["models/keep.onnx", "models/m.onnx"]
    everything = shown(run("check", "--show-files", "--exclude", "", "--no-respect-gitignore", project), project)
    assert len(everything) == 11
    # the bare API walks the same way
    from shapelint.check import collect_paths

    assert sorted(Path(p).name for p in collect_paths([str(project)])) == ["keep.onnx", "m.onnx"]


def test_exclude_and_extend_exclude_from_flags_and_config(project):
    assert shown(run("check", "--show-files", "--extend-exclude", "keep.onnx", project), project) == ["models/m.onnx"]
    (project / "shapelint.toml").write_text('extend-exclude = ["models/m.onnx"]\n')
    assert shown(run("check", "--show-files", project), project) == ["models/keep.onnx"]
    (project / "shapelint.toml").write_text('exclude = ["node_modules"]\nrespect-gitignore = false\n')
    got = shown(run("check", "--show-files", project), project)
    assert "node_modules/x/a.onnx" not in got and "build/b.onnx" in got and "ignored/g.onnx" in got


def test_a_folder_named_on_the_command_line_is_walked_even_when_excluded(project, monkeypatch):
    monkeypatch.chdir(project)
    (project / ".gitignore").write_text("ignored/\nbuild/\n")
    (project / "build" / "node_modules").mkdir()
    shutil.copy(HEALTHY, project / "build" / "node_modules" / "x.onnx")
    shutil.copy(HEALTHY, project / "build" / "sub.onnx")
    assert shown(run("check", "--show-files", "build"), project) == ["build/b.onnx", "build/sub.onnx"]
    assert shown(run("check", "--show-files", "ignored"), project) == ["ignored/g.onnx"]
    assert shown(run("check", "--show-files", "build/*.onnx"), project) == ["build/b.onnx", "build/sub.onnx"]
    assert shown(run("check", "--show-files", "**/*.onnx"), project) == ["models/keep.onnx", "models/m.onnx"]


def test_a_file_named_on_the_command_line_is_always_checked_unless_force_exclude(project):
    named = project / ".venv" / "lib" / "site-packages" / "onnx" / "test.onnx"
    res = run("check", "--format", "json", named)
    assert res.exit_code == 0 and len(json.loads(res.stdout)["files"]) == 1
    assert shown(run("check", "--show-files", project / "build"), project) == ["build/b.onnx"]  # a named folder too
    res = run("check", "--show-files", "--force-exclude", named, project / "models" / "m.onnx")
    assert shown(res, project) == ["models/m.onnx"]


def test_a_folder_without_models_is_a_warning_and_exit_0(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".venv").mkdir()
    shutil.copy(HEALTHY, tmp_path / "empty" / ".venv" / "x.onnx")
    res = run("check", tmp_path / "empty")
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == f"shapelint: warning: no .onnx files found under {tmp_path / 'empty'}"
    res = run("check", tmp_path / "empty", HEALTHY)
    assert res.exit_code == 0 and "no .onnx files found" in res.stderr and "Checked 1 file" in res.stdout
    assert run("check", "-q", tmp_path / "empty").stderr == ""


def test_show_settings_prints_the_effective_settings(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    (tmp_path / "shapelint.toml").write_text('select = ["SL1"]\nextend-exclude = ["old/"]\n[dims]\nbatch = 2\n')
    res = run("check", "--show-settings", "--extend-select", "SL5", "-j", "1", model)
    assert res.exit_code == 0, res.output
    rows = dict(ln.split(" = ", 1) for ln in res.stdout.splitlines())
    assert json.loads(rows["config"]) == str((tmp_path / "shapelint.toml").resolve())
    assert json.loads(rows["select"]) == ["SL1", "SL5"] and json.loads(rows["dims"]) == {"batch": 2}
    assert json.loads(rows["extend-exclude"]) == ["old/"] and ".venv" in json.loads(rows["exclude"])
    assert json.loads(rows["jobs"]) == 1 and "SL501" in json.loads(rows["rules"]) and "SL201" not in json.loads(rows["rules"])


@pytest.mark.parametrize("table, words", [
    ('exclude = 3', "exclude: expected a list of patterns"),
    ('extend-exclude = [""]', "is not a file or folder pattern"),
    ('respect-gitignore = "yes"', "respect-gitignore: expected true or false"),
    ('force_exclude = true', "did you mean 'force-exclude'"),
])
def test_a_bad_discovery_setting_is_one_line_and_exit_2(tmp_path, table, words):
    model = write_model(tmp_path / "m.onnx")
    (tmp_path / "shapelint.toml").write_text(table + "\n")
    one_error_line(run("check", model), words)


# ---------------------------------------------------------------- 3. colour
def test_color_flags_and_environment(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    assert ANSI not in run("check", model).stdout  # not a terminal
    assert ANSI in run("check", "--color", model).stdout  # forced even when piped
    assert ANSI in run("--color", "check", model).stdout
    assert ANSI in run("check", model, env={"FORCE_COLOR": "1"}).stdout
    assert ANSI not in run("check", "--no-color", model, env={"FORCE_COLOR": "1"}).stdout
    assert ANSI not in run("--no-color", "check", model, env={"FORCE_COLOR": "1"}).stdout
    assert ANSI in run("check", model, env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout  # ruff: FORCE_COLOR wins
    assert ANSI not in run("check", model, env={"NO_COLOR": "1"}).stdout
    assert ANSI not in run("check", "--color", "--format", "json", model).stdout
    for cmd in (["shapes", HEALTHY], ["rules"], ["explain", "SL103"]):
        assert run(*cmd, "--no-color").exit_code == 0


def test_no_color_wins_over_a_terminal(monkeypatch):
    from shapelint.cli import resolve_color

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert resolve_color(None) is False and resolve_color(True) is True
    monkeypatch.setenv("NO_COLOR", "")
    assert resolve_color(None) is True


# ---------------------------------------------------------------- 4. ruff's small flags
def test_dash_capital_v_is_the_version():
    from shapelint import __version__

    for flag in ("-V", "--version"):
        res = run(flag)
        assert res.exit_code == 0 and __version__ in res.stdout


def test_exit_zero_quiet_silent_and_jobs_auto(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    assert run("check", model).exit_code == 1
    assert run("check", "--exit-zero", model).exit_code == 0
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"nope")
    assert run("check", "--exit-zero", model, broken).exit_code == 2  # a file that could not be checked stays 2
    quiet = run("check", "-q", model)
    assert quiet.exit_code == 1 and "[SL103]" in quiet.stdout and "Checked" not in quiet.stdout
    for args in (["-qq"], ["--silent"]):
        res = run("check", *args, model)
        assert res.exit_code == 1 and res.stdout == "" and res.stderr == ""
    assert run("check", "-j", "auto", model).exit_code == 1
    assert run("check", model, env={"SHAPELINT_JOBS": "auto"}).exit_code == 1
    for bad in ("0", "many", "257"):
        res = run("check", "-j", bad, model)
        assert res.exit_code == 2 and "Traceback" not in res.output


def test_statistics_counts_findings_per_rule(tmp_path):
    a = write_model(tmp_path / "a.onnx")
    b = write_model(tmp_path / "b.onnx")
    lstm = next(FIXTURES.glob("SL205-*/bad*.onnx"))
    res = run("check", "--statistics", a, b, lstm)
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert re.fullmatch(r"2  SL103  \[ \] matmul-inner-dim", lines[0]), lines
    assert any(re.fullmatch(r"1  SL205  \[\*\] batchwise-recurrent-layout", ln) for ln in lines), lines
    assert "Checked" not in res.stdout and "inner dimensions" not in res.stdout
    data = json.loads(run("check", "--statistics", "--format", "json", a, b).stdout)
    assert data == [{"code": "SL103", "name": "matmul-inner-dim", "severity": "error", "count": 2, "fixable": False}]


# ---------------------------------------------------------------- 5. text and JSON output
def test_every_text_finding_states_its_severity_and_fixable_ones_are_marked(tmp_path):
    model = write_model(tmp_path / "m.onnx")
    lstm = next(FIXTURES.glob("SL205-*/bad*.onnx"))
    res = run("check", model, lstm)
    findings = [ln for ln in res.stdout.splitlines() if re.search(r" \[SL\d{3}\] ", ln)]
    assert findings
    for ln in findings:
        assert re.search(r" \[SL\d{3}\]( \[\*\])? (error|warning|info): ", ln), ln
    assert any(" [SL103] error: inner dimensions differ" in ln for ln in findings)
    assert any(" [SL205] [*] warning: " in ln for ln in findings)
    assert not any("[SL103] [*]" in ln for ln in findings)


def test_the_json_report_has_a_schema_version_and_every_summary_count(tmp_path):
    from shapelint.report.json import SCHEMA_VERSION

    model = write_model(tmp_path / "m.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"nope")
    data = json.loads(run("check", "--format", "json", model, broken).stdout)
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert data["summary"]["infos"] == 0 and data["summary"]["failed_files"] == 1 and data["summary"]["errors"] == 1


# ---------------------------------------------------------------- 6. SARIF and GitHub paths
def test_sarif_from_a_repository_uses_srcroot_and_repository_relative_paths(project, monkeypatch):
    monkeypatch.chdir(project / "models")
    res = run("check", "--format", "sarif", "--select", "SL5", project / "models" / "m.onnx", "--exit-zero")
    assert res.exit_code == 0
    run_ = json.loads(res.stdout)["runs"][0]
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == project.resolve().as_uri() + "/"
    bad = write_model(project / "models" / "bad.onnx")
    log = json.loads(run("check", "--format", "sarif", bad).stdout)["runs"][0]
    (result,) = log["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "models/bad.onnx", "uriBaseId": "%SRCROOT%"}


def test_github_paths_are_relative_to_the_repository_and_use_a_source_line_only_when_it_exists(tmp_path):
    from shapelint.diagnostics import Diagnostic, FileReport, RunReport
    from shapelint.report.github import render_github

    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "net.py").write_text("")

    def d(source):
        return Diagnostic("SL103", "matmul-inner-dim", "error", "/fc", "MatMul", None, "8 vs 4", source=source)

    model = str(tmp_path / "models" / "m.onnx")
    report = RunReport([FileReport(model, [d("fc (src/net.py:12)"), d("fc (/opt/elsewhere/net.py:3)"), d(None)])])
    inside, outside, plain = render_github(report).splitlines()
    assert inside.startswith("::error file=src/net.py,line=12,title=SL103::/fc: 8 vs 4") and inside.endswith("%0Amodel: models/m.onnx")
    assert outside.startswith("::error file=models/m.onnx,title=SL103::") and outside.endswith("%0Asource: fc (/opt/elsewhere/net.py:3)")
    assert plain == "::error file=models/m.onnx,title=SL103::/fc: 8 vs 4"


# ---------------------------------------------------------------- 7. Git LFS pointers
def test_a_git_lfs_pointer_says_so_and_the_other_files_are_still_checked(tmp_path):
    pointer = tmp_path / "model.onnx"
    pointer.write_text("version https://git-lfs.github.com/spec/v1\n"
                       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n")
    good = tmp_path / "good.onnx"
    shutil.copy(HEALTHY, good)
    res = run("check", "--format", "json", pointer, good)
    assert res.exit_code == 2
    files = json.loads(res.stdout)["files"]
    assert [f["status"] for f in files] == ["error", "ok"]
    assert files[0]["error"].startswith("Git LFS pointer, not the model: run `git lfs pull`")
    assert "not a valid ONNX file" not in files[0]["error"]


# ---------------------------------------------------------------- 8. suppressions in the model
def _suppress(model: onnx.ModelProto, codes: str, node: str | None = None) -> onnx.ModelProto:
    if node is None:
        onnx.helper.set_model_props(model, {"shapelint.ignore": codes})
    else:
        target = next(n for n in model.graph.node if n.name == node)
        entry = target.metadata_props.add()
        entry.key, entry.value = "shapelint.ignore", codes
    return model


def _bad(name="mm") -> onnx.ModelProto:
    model = parse(MATMUL_BAD)
    model.graph.node[0].name = name
    return model


def test_a_node_or_model_suppression_drops_its_findings_and_the_file_is_not_written(tmp_path, rules):
    from shapelint.check import check

    assert [d.rule for d in check(_bad(), rules=rules).diagnostics] == ["SL103"]
    assert check(_suppress(_bad(), "SL103", node="mm"), rules=rules).diagnostics == []
    assert check(_suppress(_bad(), "SL1"), rules=rules).diagnostics == []
    assert check(_suppress(_bad(), "sl501, SL103"), rules=rules).diagnostics[0].rule == "SL009"  # SL501 is unused
    path = tmp_path / "m.onnx"
    onnx.save(_suppress(_bad(), "SL103", node="mm"), path)
    before = path.read_bytes()
    res = run("check", path)
    assert res.exit_code == 0 and "[SL103]" not in res.stdout
    assert path.read_bytes() == before


def test_a_suppression_that_suppresses_nothing_is_sl009(tmp_path, rules):
    from shapelint.check import check

    model = parse(MATMUL_K.replace("float[4, 3] w", "float[k, 3] w"))
    model.graph.node[0].name = "mm"
    _suppress(_suppress(model, "SL204"), "SL103, SL510", node="mm")
    found = {(d.rule, d.node): d for d in check(model, rules=rules).diagnostics}
    assert set(found) == {("SL009", None), ("SL009", "mm")}
    assert "SL204 reported nothing here" in found["SL009", None].message
    node = found["SL009", "mm"].message
    assert "SL103 reported nothing here" in node and "SL510 matches no installed rule" in node
    assert found["SL009", None].severity == "warning"
    # a code whose rule did not run is not "unused"; SL009 itself can be ignored
    assert check(model, rules=rules, select=["SL009"]).diagnostics[0].message.endswith("SL510 matches no installed rule")
    assert check(model, rules=rules, ignore=["SL009"]).diagnostics == []
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    res = run("check", "--fail-on", "warning", path)
    assert res.exit_code == 1 and "[SL009] warning: shapelint.ignore on node 'mm' suppresses nothing" in res.stdout


def test_explain_documents_the_suppression_rule():
    res = run("explain", "SL009")
    assert res.exit_code == 0 and "shapelint.ignore" in res.stdout and "## What it does" in res.stdout


# ---------------------------------------------------------------- 9. shapes -o
def test_shapes_writes_a_copy_with_the_inferred_shapes(tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(HEALTHY, model)
    before = model.read_bytes()
    out = tmp_path / "inferred.onnx"
    res = run("shapes", model, "-o", out)
    assert res.exit_code == 0, res.output
    copy = onnx.load(str(out))
    assert copy.graph.value_info and copy.graph.value_info[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert len(copy.graph.node) == len(onnx.load(str(model)).graph.node)
    assert model.read_bytes() == before


def test_shapes_refuses_to_write_onto_its_input_or_its_weights(tmp_path):
    model = tmp_path / "m.onnx"
    shutil.copy(HEALTHY, model)
    before = model.read_bytes()
    one_error_line(run("shapes", model, "-o", model), "is the input model")
    os.symlink(model, tmp_path / "alias.onnx")
    one_error_line(run("shapes", model, "-o", tmp_path / "alias.onnx"), "is the input model")
    assert model.read_bytes() == before
    one_error_line(run("shapes", model, "-o", tmp_path / "missing" / "x.onnx"), "does not exist")
    # a model with external data: the data file is not a target either
    ext = tmp_path / "ext"
    ext.mkdir()
    m = onnx.load(str(HEALTHY))
    onnx.save(m, ext / "w.onnx", save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin", size_threshold=0)
    data = (ext / "w.bin").read_bytes()
    one_error_line(run("shapes", ext / "w.onnx", "-o", ext / "w.bin"), "external data 'w.bin'")
    assert (ext / "w.bin").read_bytes() == data
    res = run("shapes", ext / "w.onnx", "-o", ext / "w_inferred.onnx")
    assert res.exit_code == 0 and onnx.load(str(ext / "w_inferred.onnx")).graph.value_info


# ---------------------------------------------------------------- 10. docs
def _synopsis() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Commands", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    out: dict[str, set[str]] = {}
    current = None
    for line in block.splitlines():
        m = re.match(r"shapelint (\S+)", line)
        if m:
            current = m.group(1)
        if current:
            code = line.split("#", 1)[0]
            out.setdefault(current, set()).update(re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-zA-Z]{1,2})(?![\w-])", code))
    return out


def _options(name: str) -> set[str]:
    cmd = main.commands[name]
    opts = set()
    for p in cmd.params:
        if isinstance(p, __import__("click").Option):
            opts.update(p.opts)
            opts.update(p.secondary_opts)
    return opts - {"-h", "--help"}


def test_the_readme_synopsis_of_check_matches_its_help():
    synopsis = _synopsis()
    import click

    listed = synopsis["check"] - {"-qq"}
    options = [p for p in main.commands["check"].params if isinstance(p, click.Option) and p.name != "help"]
    missing = [p.opts[0] for p in options if not listed & {*p.opts, *p.secondary_opts}]
    assert not missing, f"the README's synopsis of check lacks {missing}"
    assert listed <= _options("check"), f"the README gives options check does not have: {sorted(listed - _options('check'))}"
    help_text = run("check", "--help").stdout
    for opt in listed:
        assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", help_text), opt


def test_every_option_the_readme_gives_another_command_exists():
    for name, opts in _synopsis().items():
        if name in main.commands and name != "check":
            missing = {o for o in opts if o not in _options(name)}
            assert not missing, (name, missing)


def test_the_readme_starts_with_what_a_newcomer_needs():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:15])
    assert "Python 3.10" in head and "venv" in head and "pip install ." in head
    assert "status 1" in head and "fixtures/" in head


def test_docs_and_rule_docs_refer_to_nothing_a_user_does_not_have(rules):
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text()
        for word in ("DESIGN.md", "STYLE.md", "seed article"):
            assert word not in text, (doc.name, word)
    for cls in rules:
        for word in ("DESIGN.md", "STYLE.md", "seed article"):
            assert word not in cls.doc(), (cls.code, word)


def test_ci_recipes_install_from_a_path_and_pin_pre_commit_to_a_commit():
    text = (ROOT / "docs" / "ci.md").read_text()
    assert not re.search(r"pip install shapelint\b(?![-\w])", text)
    revs = re.findall(r"^\s*rev:\s*(\S+)", text, flags=re.MULTILINE)
    assert revs and all(re.fullmatch(r"[0-9a-f]{40}", r) for r in revs), revs
    installs = re.findall(r"pip install (\S+)", text)
    assert all(i.startswith((".", "/", "-e")) for i in installs), installs


# ---------------------------------------------------------------- 11. start-up imports
_PROBE = """
import sys
sys.argv = ["shapelint", *{args!r}]
from shapelint.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nLOADED " + " ".join(m for m in ("sympy", "onnxruntime") if m in sys.modules) + "\\n")
"""


def _heavy_imports(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, check=False)
    return proc.stderr.rsplit("LOADED", 1)[1].strip()


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["--help"], ["check", "--help"]], ids=" ".join)
def test_start_up_commands_import_neither_sympy_nor_onnxruntime(args):
    assert _heavy_imports(*args) == ""


@pytest.mark.parametrize("args", [["rules"], ["explain", "SL103"]], ids=" ".join)
def test_rules_and_explain_import_neither_sympy_nor_onnxruntime(args):
    assert _heavy_imports(*args) == ""


@pytest.mark.parametrize("model", ["hf_gpt2_ts", "hf_llama_dynamo", "hf_bert_ts", "cnn_lstm_ts",
                                   "bilstm_text_classifier_dynamo", "jax2onnx_transformer_block"])
def test_check_of_polynomial_dims_imports_neither_sympy_nor_onnxruntime(model):
    """Transformers and CNN-LSTMs with dynamic batch and sequence: products and sums of sizes, no sympy."""
    assert _heavy_imports("check", "--no-cache", f"fixtures/healthy/{model}.onnx") == ""


def test_check_imports_sympy_for_the_floors_of_a_dynamic_strided_size():
    """An FPN over a dynamic height and width: ceil(H/32) needs sympy, and only sympy (never onnxruntime)."""
    assert _heavy_imports("check", "--no-cache", "fixtures/healthy/fpn_ts.onnx") == "sympy"


def test_the_rule_catalogue_is_what_the_rule_classes_say():
    """``rules``/``explain`` read shapelint/_rule_catalog.py; regenerate it with ``python -m shapelint.catalog``."""
    from shapelint import catalog
    from shapelint.plugins import load_rules

    assert catalog._FILE.read_text() == catalog.generate(), "stale: run python -m shapelint.catalog"
    infos, broken = catalog.describe_rules()
    rs = load_rules()
    assert [(i.code, i.slug, i.severity, i.summary, i.doc) for i in infos] == \
        [(r.code, r.slug, r.severity.value, r.summary(), r.doc()) for r in rs]
    assert broken == list(rs.broken)


def test_v_after_the_subcommand_says_why_a_recurrence_was_undecided():
    # the summary line tells the user "(-v says why)": `shapelint check -v M` must work as `shapelint -v check M`
    from click.testing import CliRunner

    model = Path(__file__).resolve().parent.parent / "fixtures/SL501-traced-size-baked-in/bad_jax2onnx_config_frames.onnx"
    runner = CliRunner()
    plain = runner.invoke(main, ["check", "--no-cache", str(model)])
    assert "(-v says why)" in plain.output and "undecided [sequence]" not in plain.output
    for argv in (["check", "-v", "--no-cache", str(model)], ["-v", "check", "--no-cache", str(model)]):
        got = runner.invoke(main, argv)
        assert got.exit_code == 1, got.output
        assert "undecided [sequence] Loop" in got.output and "(-v says why)" not in got.output, argv
