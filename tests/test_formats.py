"""Machine output: SARIF 2.1.0 (validated against the OASIS schema) and GitHub annotations."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest
from click.testing import CliRunner

from shapelint.check import check_paths
from shapelint.cli import main
from shapelint.diagnostics import Diagnostic, FileReport, RunReport
from shapelint.report.github import escape_data, escape_property, render_github
from shapelint.report.sarif import FINGERPRINT_KEY, to_sarif

from .conftest import FIXTURES, ROOT, parse

SCHEMA = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
BAD = sorted({p.parent: p for p in sorted(FIXTURES.glob("SL*/bad*.onnx"), reverse=True)}.values())  # one per rule
HEALTHY = sorted((FIXTURES / "healthy").glob("*.onnx"))
MATMUL_BAD = """<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""


def diag(**kw) -> Diagnostic:
    base = dict(rule="SL103", name="matmul-inner-dim", severity="error", node="/fc/MatMul", op_type="MatMul",
                tensor="x", message="inner dimensions differ: 8 vs 4", fix="nn.Linear(in_features=8)", source=None)
    base.update(kw)
    return Diagnostic(**base)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, rules):
    """Bad fixtures, a healthy model and a file that cannot be read."""
    tmp = tmp_path_factory.mktemp("mixed")
    broken = tmp / "broken.onnx"
    broken.write_bytes(b"not a model")
    return check_paths([*map(str, BAD), str(HEALTHY[0]), str(broken)], rules=rules)


# ---------------------------------------------------------------- SARIF
def test_sarif_validates_against_the_oasis_schema(mixed_run, rules):
    if not SCHEMA.is_file():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SCHEMA} (it is read from there, never copied into the repo)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    log = to_sarif(mixed_run, rules)
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    # a run with a located source line and every severity validates too
    extra = RunReport([FileReport("m.onnx", [diag(source="enc.fc (model.py:42)"), diag(severity="info", node=None)])])
    assert not list(validator.iter_errors(to_sarif(extra, rules)))


def test_sarif_rules_have_stable_ids_and_docs(mixed_run, rules):
    run = to_sarif(mixed_run, rules)["runs"][0]
    descriptors = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in descriptors] == sorted(r.code for r in rules)
    sl103 = next(r for r in descriptors if r["id"] == "SL103")
    assert sl103["name"] == "matmul-inner-dim"
    assert sl103["shortDescription"]["text"].startswith("MatMul/Gemm operands")
    assert "## Why is this bad?" in sl103["help"]["markdown"]
    assert sl103["fullDescription"]["text"] and "##" not in sl103["fullDescription"]["text"]
    for result in run["results"]:
        assert descriptors[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_locations_prefer_the_exporter_source_line_when_it_is_in_the_repository(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "model.py").write_text("# the exporter's module\n")
    model = str(tmp_path / "models" / "m.onnx")
    log = to_sarif(RunReport([FileReport(model, [diag(source="enc.fc (src/model.py:42)"), diag(node="/b")])]))
    run = log["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": tmp_path.resolve().as_uri() + "/"}}
    located, plain = run["results"]
    phys = located["locations"][0]["physicalLocation"]
    assert phys == {"artifactLocation": {"uri": "src/model.py", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 42}}
    assert located["relatedLocations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "models/m.onnx", "uriBaseId": "%SRCROOT%"}
    assert located["locations"][0]["logicalLocations"][0]["name"] == "/fc/MatMul"
    assert plain["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "models/m.onnx", "uriBaseId": "%SRCROOT%"}}


def test_sarif_keeps_the_model_primary_when_the_source_file_is_not_in_the_repository(tmp_path):
    (tmp_path / ".git").mkdir()
    model = str(tmp_path / "m.onnx")
    diags = [diag(source="enc.fc (model.py:42)"), diag(node="/b", source="x (/usr/lib/python3/site-packages/torch/nn/x.py:7)")]
    absent, outside = to_sarif(RunReport([FileReport(model, diags)]))["runs"][0]["results"]
    for result in (absent, outside):
        assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "m.onnx", "uriBaseId": "%SRCROOT%"}}
    rel = absent["relatedLocations"][0]["physicalLocation"]
    assert rel == {"artifactLocation": {"uri": "model.py"}, "region": {"startLine": 42}}
    rel = outside["relatedLocations"][0]["physicalLocation"]
    assert rel["artifactLocation"]["uri"].startswith("file:///usr/lib/") and "uriBaseId" not in rel["artifactLocation"]


def test_sarif_root_is_the_config_folder_outside_a_repository(tmp_path):
    from shapelint.report.locations import repository_root

    (tmp_path / "shapelint.toml").write_text("")
    model = tmp_path / "sub" / "m.onnx"
    root = repository_root([str(model)], config_path=tmp_path / "shapelint.toml")
    assert root == tmp_path.resolve()
    run = to_sarif(RunReport([FileReport(str(model), [diag()])]), root=root)["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "sub/m.onnx", "uriBaseId": "%SRCROOT%"}


def test_sarif_fingerprints_are_stable_and_ignore_message_numbers():
    def fp(*diags, path="m.onnx"):
        log = to_sarif(RunReport([FileReport(path, list(diags))]))
        return [r["partialFingerprints"][FINGERPRINT_KEY] for r in log["runs"][0]["results"]]

    assert fp(diag()) == fp(diag(message="inner dimensions differ: 16 vs 4", fix=None))
    assert fp(diag()) != fp(diag(node="/other/MatMul"))
    assert fp(diag()) != fp(diag(tensor="y"))
    assert fp(diag()) != fp(diag(), path="n.onnx")
    assert fp(diag()) != fp(diag(rule="SL104"))
    twice = fp(diag(), diag())
    assert len(set(twice)) == 2 and twice[0] == fp(diag())[0]


def test_sarif_reports_unreadable_files_as_notifications(mixed_run, rules):
    invocation = to_sarif(mixed_run, rules)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["level"] == "error" and "broken.onnx" in note["message"]["text"]


def test_sarif_from_the_command_line(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    res = CliRunner().invoke(main, ["check", "--format", "sarif", "--jobs", "1", str(model)])
    assert res.exit_code == 1
    log = json.loads(res.stdout)
    assert log["version"] == "2.1.0"
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["SL103"]


# ---------------------------------------------------------------- GitHub
def test_github_escaping_follows_the_actions_toolkit():
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a,b:c%\n") == "a%2Cb%3Ac%25%0A"


def test_github_annotations_one_line_per_finding():
    report = RunReport(
        [
            FileReport("models/m.onnx", [diag(), diag(severity="warning", rule="SL501", source="enc (model.py:3)"), diag(severity="info", node=None)]),
            FileReport("models/x,y.onnx", error="not an ONNX model"),
        ]
    )
    lines = render_github(report).splitlines()
    assert lines[0] == (
        "::error file=models/m.onnx,title=SL103::/fc/MatMul: inner dimensions differ: 8 vs 4%0Afix: nn.Linear(in_features=8)"
    )
    assert lines[1].startswith("::warning file=models/m.onnx,title=SL501::") and lines[1].endswith("%0Asource: enc (model.py:3)")
    assert lines[2].startswith("::notice file=models/m.onnx,title=SL103::inner")
    assert lines[3] == "::error file=models/x%2Cy.onnx,title=shapelint::could not be checked: not an ONNX model"
    assert len(lines) == 4


def test_github_format_from_the_command_line(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(parse(MATMUL_BAD), model)
    shutil.copy(HEALTHY[0], tmp_path / "ok.onnx")
    res = CliRunner().invoke(main, ["check", "--format", "github", str(model), str(tmp_path / "ok.onnx")])
    assert res.exit_code == 1
    (line,) = res.stdout.splitlines()
    assert line.startswith(f"::error file={model},title=SL103::")
