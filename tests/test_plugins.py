"""Rule plugins: the example package in a fresh venv, clashing codes, crashing rules, options."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
from click.testing import CliRunner

from shapelint import plugins
from shapelint.check import check, check_paths
from shapelint.cli import main
from shapelint.config import parse_config
from shapelint.rule import Rule, Severity

from .conftest import FIXTURES, ROOT, parse

EXAMPLE = ROOT / "examples" / "shapelint-acme"
HEALTHY = sorted((FIXTURES / "healthy").glob("*.onnx"))
IDENTITY = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 8] x) => (y, z) { t = Identity(x)  y = Relu(t)  z = Identity(y) }"""
MATMUL_BAD = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""


class Impostor(Rule):
    """A plugin rule that took a built-in's code."""

    code, slug, severity = "SL103", "impostor", Severity.ERROR
    op_types = ("MatMul",)

    def check(self, node, ctx):
        return iter(())


class Evil(Rule):
    """A well-behaved plugin rule with its own prefix."""

    code, slug, severity = "EVIL101", "evil-op", Severity.WARNING
    op_types = ("Relu",)

    def check(self, node, ctx):
        yield ctx.finding(node, f"options {sorted(ctx.options.items())}")


class Boom(Rule):
    """A plugin rule with a bug."""

    code, slug, severity = "BOOM101", "boom", Severity.WARNING
    op_types = ()
    origin = "shapelint-boom 1.2.3"

    def check(self, node, ctx):
        raise ZeroDivisionError("division by zero")


class FakeDist:
    metadata = {"Name": "shapelint-evil"}
    version = "6.6.6"


def with_plugin(monkeypatch, *entries):
    """Make ``entry_points`` also return ``entries`` ((code, "module:Class")) of a fake distribution."""
    real = metadata.entry_points

    def fake(**kw):
        eps = list(real(**kw))
        for name, value in entries:
            eps.append(metadata.EntryPoint(name, value, plugins.GROUP)._for(FakeDist()))
        return eps

    monkeypatch.setattr(plugins.metadata, "entry_points", fake)


# ---------------------------------------------------------------- the example package
@pytest.mark.slow
def test_the_example_plugin_installs_in_a_fresh_venv_and_its_rule_fires(tmp_path):
    venv = tmp_path / "venv"
    # --without-pip: the system pip is reached through --system-site-packages. The build runs
    # isolated, as a user's `pip install -e` does: the interpreter's own setuptools may be too old to
    # build editable wheels (no bdist_wheel before setuptools 70.1), so pip brings the backend that
    # pyproject.toml asks for.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    acme = tmp_path / "shapelint-acme"
    shutil.copytree(EXAMPLE, acme, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    pip = subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "-e", str(ROOT), "-e", str(acme)],
        env=env, capture_output=True, text=True,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    exe = venv / "bin" / "shapelint"
    rules = subprocess.run([str(exe), "rules"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert rules.returncode == 0, rules.stderr
    line = next(ln for ln in rules.stdout.splitlines() if ln.startswith("ACME101"))
    assert "useless-identity" in line and "shapelint-acme 0.1.0" in line
    assert "built-in" in rules.stdout
    explain = subprocess.run([str(exe), "explain", "ACME101"], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert "## Why is this bad?" in explain.stdout and "shapelint-acme 0.1.0" in explain.stdout

    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    onnx.save(parse(IDENTITY), model)
    res = subprocess.run([str(exe), "check", "--format", "json", str(model)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr  # a warning does not fail the default --fail-on error
    found = [(d["rule"], d["tensor"]) for d in json.loads(res.stdout)["files"][0]["diagnostics"]]
    assert found == [("ACME101", "x")]  # the Identity that renames the output z is allowed by default

    # plugin options from the config file reach ctx.options
    (tmp_path / "models" / "shapelint.toml").write_text('fail-on = "warning"\n[plugins.shapelint-acme]\nallow-graph-outputs = false\n')
    res = subprocess.run([str(exe), "check", "--format", "json", str(model)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert [d["rule"] for d in json.loads(res.stdout)["files"][0]["diagnostics"]] == ["ACME101", "ACME101"]


# ---------------------------------------------------------------- clashes
def test_duplicate_rule_codes_are_an_error_naming_both_origins(monkeypatch, tmp_path):
    with_plugin(monkeypatch, ("SL103", "tests.test_plugins:Impostor"))
    with pytest.raises(plugins.PluginError) as err:
        plugins.load_rules()
    assert "SL103" in str(err.value) and "built-in" in str(err.value) and "shapelint-evil 6.6.6" in str(err.value)
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    res = CliRunner().invoke(main, ["check", "--isolated", str(model)])
    assert res.exit_code == 2
    assert "defined twice" in res.stderr and "built-in" in res.stderr and "shapelint-evil 6.6.6" in res.stderr
    assert CliRunner().invoke(main, ["rules"]).exit_code == 2


def test_rules_lists_a_plugin_with_its_name_and_version(monkeypatch):
    with_plugin(monkeypatch, ("EVIL101", "tests.test_plugins:Evil"))
    res = CliRunner().invoke(main, ["rules"])
    assert res.exit_code == 0
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("EVIL101"))
    assert "evil-op" in line and "shapelint-evil 6.6.6" in line
    rows = json.loads(CliRunner().invoke(main, ["rules", "--format", "json"]).stdout)
    assert {r["code"]: r["origin"] for r in rows}["EVIL101"] == "shapelint-evil 6.6.6"


def test_a_plugin_that_fails_to_import_is_a_warning_and_the_rest_run(monkeypatch, tmp_path):
    with_plugin(monkeypatch, ("GONE101", "shapelint_no_such_module:Rule"))
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    res = CliRunner().invoke(main, ["check", "--isolated", "--jobs", "1", str(model)])
    assert res.exit_code == 1 and "[SL103]" in res.stdout
    assert "could not be loaded" in res.stderr and "shapelint-evil 6.6.6" in res.stderr


# ---------------------------------------------------------------- crashes
def test_a_rule_that_raises_is_an_internal_error_of_that_rule_and_the_rest_go_on(rules, tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    report = check_paths([str(model), str(HEALTHY[0])], rules=[*rules, Boom], jobs=1)
    assert [f.status for f in report.files] == ["findings", "findings"]
    bad, healthy = report.files
    assert {d.rule for d in bad.diagnostics} == {"SL103", "BOOM101"}
    crash = next(d for d in healthy.diagnostics if d.rule == "BOOM101")
    assert crash.severity == "error"
    assert "internal error in rule BOOM101 (shapelint-boom 1.2.3)" in crash.message
    assert "ZeroDivisionError" in crash.message and "test_plugins.py:" in crash.message


def test_a_crashing_plugin_rule_through_the_command_line(monkeypatch, tmp_path):
    real = plugins.load_rules
    monkeypatch.setattr(plugins, "load_rules", lambda extra=None: real(extra=[Boom]))
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    res = CliRunner().invoke(main, ["check", "--isolated", "--jobs", "1", str(model), str(HEALTHY[0])])
    assert res.exit_code == 1
    assert res.stdout.count("internal error in rule BOOM101 (shapelint-boom 1.2.3)") == 2
    assert "[SL103]" in res.stdout and "Checked 2 files" in res.stdout


# ---------------------------------------------------------------- options
def test_rule_options_reach_ctx_options_per_rule():
    model = parse(IDENTITY)
    report = check(model, rules=[Evil], options={"shared": 1}, rule_options={"EVIL101": {"depth": 3}})
    assert report.diagnostics[0].message == "options [('depth', 3), ('shared', 1)]"
    assert check(model, rules=[Evil]).diagnostics[0].message == "options []"


def test_plugin_tables_apply_to_every_rule_of_the_plugin_and_codes_win():
    class A(Evil):
        code, origin = "EVIL101", "shapelint-evil 6.6.6"

    class B(Evil):
        code, origin = "EVIL102", "shapelint-evil 6.6.6"

    cfg = parse_config({"plugins": {"shapelint-evil": {"level": 1, "x": 0}, "EVIL102": {"level": 2}}})
    assert cfg.rule_options([A, B]) == {"EVIL101": {"level": 1, "x": 0}, "EVIL102": {"level": 2, "x": 0}}


# ---------------------------------------------------------------- the axis algebra in a team rule
TAGGER = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[n, t, 4] x, float[1, 16, 4] W, float[1, 16, 4] R, float[4, 3] P) => (float[a, b, 3] y) {
    xt = Transpose <perm = [1, 0, 2]> (x)
    Y = LSTM <hidden_size = 4> (xt, W, R)
    one = Constant <value = int64[1] {1}> ()
    s = Squeeze(Y, one)
    HEAD
}"""


def test_the_example_plugins_time_major_rule_reads_ctx_axis_map(rules):
    import sys

    sys.path.insert(0, str(EXAMPLE / "src"))
    try:
        from shapelint_acme.time_major_output import TimeMajorOutput
    finally:
        sys.path.remove(str(EXAMPLE / "src"))
    TimeMajorOutput.origin = "shapelint-acme 0.1.0"

    def acme(head):
        m = parse(TAGGER.replace("HEAD", head))
        for name in ("W", "R", "P"):  # weights as initializers, so the head is a Dense
            vi = next(i for i in m.graph.input if i.name == name)
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            m.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros(dims, np.float32), name))
        return [(d.op_type, d.tensor) for d in check(m, rules=[TimeMajorOutput]).diagnostics if d.rule == "ACME201"]

    assert acme("y = MatMul(s, P)") == [("MatMul", "y")]  # (t, n, 3): time first, whatever the dims are named
    assert acme("""z = MatMul(s, P)
    y = Transpose <perm = [1, 0, 2]> (z)""") == []  # (n, t, 3)


def test_a_whole_graph_rule_that_crashes_on_one_node_still_reports_the_others():
    """ctx.isolated(node): the crash is an internal error on that node, the rule's other findings stay."""
    import onnx.parser

    from shapelint.check import check
    from shapelint.rule import Rule, Severity

    class EveryRelu(Rule):
        code, slug, severity = "ZZT901", "every-relu", Severity.INFO
        op_types = ()

        def check(self, node, ctx):
            for n in ctx.graph.topological_order():
                with ctx.isolated(n):
                    if n.name == "r1":
                        raise ValueError("boom")
                    yield ctx.finding(n, "seen")

    m = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 17]>
    g (float[2] x) => (float[2] y) {
        a = Relu(x)
        b = Relu(a)
        y = Relu(b)
    }""")
    for i, n in enumerate(m.graph.node):
        n.name = f"r{i}"
    diags = check(m, rules=[EveryRelu]).diagnostics
    got = sorted((d.node, "internal error" in d.message) for d in diags)
    assert got == [("r0", False), ("r1", True), ("r2", False)]
