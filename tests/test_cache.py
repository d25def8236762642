"""The result cache (issue 16, point 4): an unchanged model checked the same way is read, not checked again."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import threading
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from shapelint.cache import ResultCache
from shapelint.check import check_paths
from shapelint.cli import main
from shapelint.diagnostics import FileReport
from shapelint.report import render
from shapelint.rule import Rule, Severity

from .conftest import FIXTURES, parse

check_module = importlib.import_module("shapelint.check")  # ``shapelint.check`` is the function

MATMUL_BAD = """<ir_version: 10, opset_import: ["" : 17]>
g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }"""
BAKED = FIXTURES / "SL501-traced-size-baked-in"
SAMPLE = sorted(FIXTURES.glob("SL5*/*.onnx")) + sorted(FIXTURES.glob("SL205*/*.onnx")) + sorted(FIXTURES.glob("healthy/mlp*.onnx"))


@pytest.fixture(autouse=True)
def _cache_on(monkeypatch, tmp_path):
    """conftest turns the cache off for every other test; here it is what is tested (in a folder of the test's:
    a run without --cache-dir writes ./.shapelint_cache)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHAPELINT_NO_CACHE", raising=False)
    monkeypatch.delenv("SHAPELINT_CACHE_DIR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)


@pytest.fixture
def models(tmp_path) -> Path:
    """Copies of a few fixtures (findings, a fixable one, healthy ones) and a hand-made bad model."""
    folder = tmp_path / "models"
    for src in SAMPLE:
        target = folder / src.parent.name / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, target)
    onnx.save(parse(MATMUL_BAD), folder / "matmul.onnx")
    return folder


@pytest.fixture
def calls(monkeypatch):
    """How many times ``check()`` ran in this process (the cache's whole point is that it does not)."""
    real = check_module.check
    seen: list[str] = []

    def counting(path, **kw):
        seen.append(str(path))
        return real(path, **kw)

    monkeypatch.setattr(check_module, "check", counting)
    return seen


def run(*args, env=None):
    return CliRunner().invoke(main, ["check", "--isolated", *map(str, args)], env=env)


def entries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.json"))


# ---------------------------------------------------------------- hits
def test_a_second_run_reads_every_report_from_the_cache(models, tmp_path, calls):
    cache = tmp_path / "cache"
    first = run("--format", "json", "-j", "1", "--cache-dir", cache, models)
    n = len(json.loads(first.stdout)["files"])
    assert first.exit_code == 1 and len(calls) == n == len(entries(cache)) > 5
    calls.clear()
    second = run("--format", "json", "-j", "1", "--cache-dir", cache, models)
    assert calls == [], "a cached file was checked again"
    assert second.stdout == first.stdout and second.exit_code == first.exit_code


def test_cached_output_is_identical_to_an_uncached_run_in_every_format(models, tmp_path, calls):
    cache = tmp_path / "cache"
    for fmt in ("json", "text", "sarif", "github", "jsonl"):
        plain = run("--format", fmt, "-j", "1", "--no-cache", models)
        run("--format", fmt, "-j", "1", "--cache-dir", cache, models)
        calls.clear()
        cached = run("--format", fmt, "-j", "1", "--cache-dir", cache, models)
        assert calls == []
        if fmt == "text":  # the summary line ends with the run's time
            assert plain.stdout.rsplit("(", 1)[0] == cached.stdout.rsplit("(", 1)[0]
            assert "[*]" in cached.stdout  # fixable findings stay fixable
        elif fmt == "jsonl":
            assert sorted(plain.stdout.splitlines()) == sorted(cached.stdout.splitlines())
        else:
            assert plain.stdout == cached.stdout, fmt
        assert plain.exit_code == cached.exit_code == 1
    stats = [run("--statistics", "--format", "json", "-j", "1", *flags, models).stdout
             for flags in (("--no-cache",), ("--cache-dir", cache))]
    assert stats[0] == stats[1] and '"fixable": true' in stats[0]


def test_with_two_jobs_the_cache_gives_the_same_reports(models, tmp_path, rules):
    plain = check_paths([models], jobs=1, rules=rules)
    cache = ResultCache(tmp_path / "cache")
    cold = check_paths([models], jobs=2, rules=rules, cache=cache)
    assert cache.misses == cache.stored == len(plain.files) and cache.hits == 0
    warm_cache = ResultCache(tmp_path / "cache")
    warm = check_paths([models], jobs=2, rules=rules, cache=warm_cache)
    assert warm_cache.hits == len(plain.files) and warm_cache.misses == 0
    for got in (cold, warm):
        assert render(got, "json") == render(plain, "json")
        assert [[d.fixable for d in f.diagnostics] for f in got.files] == [[d.fixable for d in f.diagnostics] for f in plain.files]


def test_irrelevant_settings_still_hit(models, tmp_path, calls):
    cache = tmp_path / "cache"
    run("-j", "1", "--cache-dir", cache, models)
    calls.clear()
    for flags in (("--fail-on", "warning"), ("--format", "sarif"), ("--exit-zero",), ("-q",), ("--statistics",)):
        run("-j", "1", "--cache-dir", cache, *flags, models)
    assert calls == []


# ---------------------------------------------------------------- misses
def test_changed_bytes_miss_and_only_that_file_is_checked_again(models, tmp_path, calls):
    cache = tmp_path / "cache"
    run("-j", "1", "--cache-dir", cache, models)
    target = models / "matmul.onnx"
    m = onnx.load(target)
    m.graph.input[1].type.tensor_type.shape.dim[0].dim_value = 8  # now x(batch, 8) @ w(8, 3) is fine
    m.graph.input[1].type.tensor_type.shape.dim[0].ClearField("dim_param")
    stat = os.stat(target)
    target.write_bytes(m.SerializeToString())
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the content decides
    calls.clear()
    res = run("-j", "1", "--format", "json", "--cache-dir", cache, models)
    assert calls == [str(target)]
    (got,) = [f for f in json.loads(res.stdout)["files"] if f["path"] == str(target)]
    assert got["status"] == "ok"


@pytest.mark.parametrize("flags", [
    ("--select", "SL5"),
    ("--ignore", "SL103"),
    ("--dim", "batch=4"),
])
def test_a_setting_that_changes_reports_misses(models, tmp_path, calls, flags):
    cache = tmp_path / "cache"
    run("-j", "1", "--cache-dir", cache, models)
    n = len(calls)
    calls.clear()
    run("-j", "1", "--cache-dir", cache, *flags, models)
    assert len(calls) == n


@pytest.mark.parametrize("table", ['[severity]\nSL103 = "warning"\n', '[plugins.SL501]\nanything = 1\n'])
def test_severity_overrides_and_rule_options_from_the_config_miss(models, tmp_path, calls, table):
    cache = tmp_path / "cache"
    config = tmp_path / "shapelint.toml"
    config.write_text("")
    args = ["check", "--config", str(config), "-j", "1", "--cache-dir", str(cache), str(models)]
    CliRunner().invoke(main, args)
    n = len(calls)
    calls.clear()
    config.write_text(table)
    CliRunner().invoke(main, args)
    assert len(calls) == n


class ExtraRule(Rule):
    """Flags every MatMul (test-only)."""

    code, slug, severity = "TST101", "every-matmul", Severity.INFO
    op_types = ("MatMul",)

    def check(self, node, ctx):
        yield ctx.finding(node, "a MatMul")


def test_another_rule_set_misses(models, tmp_path, rules):
    folder = tmp_path / "cache"
    check_paths([models], rules=rules, cache=ResultCache(folder))
    more = ResultCache(folder)
    got = check_paths([models], rules=[*rules, ExtraRule], cache=more)
    assert more.hits == 0 and any(d.rule == "TST101" for d in got.diagnostics)
    fewer = ResultCache(folder)
    check_paths([models], rules=[r for r in rules if r.code != "SL501"], cache=fewer)
    assert fewer.hits == 0
    again = ResultCache(folder)
    check_paths([models], rules=rules, cache=again)
    assert again.misses == 0


def test_the_same_bytes_under_another_path_is_another_entry(models, tmp_path, calls):
    cache = tmp_path / "cache"
    res = run("-j", "1", "--format", "json", "--cache-dir", cache, models / "matmul.onnx")
    shutil.copy(models / "matmul.onnx", models / "copy.onnx")
    calls.clear()
    other = run("-j", "1", "--format", "json", "--cache-dir", cache, models / "copy.onnx")
    assert calls == [str(models / "copy.onnx")]
    assert json.loads(other.stdout)["files"][0]["path"] == str(models / "copy.onnx") != json.loads(res.stdout)["files"][0]["path"]


def _external_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    w = numpy_helper.from_array(__import__("numpy").zeros((4, 3), "float32"), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = folder / "ext.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="w.bin",
              size_threshold=0)
    return path


def test_external_data_is_part_of_the_key_and_its_errors_are_never_cached(tmp_path, rules):
    model = _external_model(tmp_path / "ext")
    data = model.parent / "w.bin"
    folder = tmp_path / "cache"
    cache = ResultCache(folder)
    ok = check_paths([model], rules=rules, cache=cache)
    assert ok.files[0].error is None and cache.stored == 1
    good = data.read_bytes()
    data.write_bytes(good[:8])  # now the tensor is past the end of its file
    cache = ResultCache(folder)
    bad = check_paths([model], rules=rules, cache=cache)
    assert cache.hits == 0 and "past the end" in bad.files[0].error and cache.stored == 0
    data.unlink()
    cache = ResultCache(folder)
    assert "missing" in check_paths([model], rules=rules, cache=cache).files[0].error and cache.stored == 0
    data.write_bytes(good)
    cache = ResultCache(folder)
    assert check_paths([model], rules=rules, cache=cache).files[0].error is None and cache.hits == 0
    cache = ResultCache(folder)
    check_paths([model], rules=rules, cache=cache)
    assert cache.hits == 1


def test_files_that_cannot_be_checked_are_not_cached(tmp_path, rules):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "truncated.onnx").write_bytes(parse(MATMUL_BAD).SerializeToString()[:-7])
    (folder / "empty.onnx").write_bytes(b"")
    os.mkfifo(folder / "fifo.onnx")
    missing = str(folder / "missing.onnx")
    cache = ResultCache(tmp_path / "cache")
    run_ = check_paths([folder, missing], rules=rules, cache=cache)
    assert all(f.error for f in run_.files) and len(run_.files) == 4
    assert cache.stored == 0 and entries(tmp_path / "cache") == []


class Crashes(Rule):
    """Raises on every MatMul (test-only)."""

    code, slug, severity = "TST102", "crashes", Severity.ERROR
    op_types = ("MatMul",)

    def check(self, node, ctx):
        raise RuntimeError("boom")


def test_a_report_with_a_rule_crash_is_not_cached(models, tmp_path, rules):
    cache = ResultCache(tmp_path / "cache")
    got = check_paths([models / "matmul.onnx"], rules=[*rules, Crashes], cache=cache)
    assert any("internal error in rule TST102" in d.message for d in got.diagnostics) and cache.stored == 0


def test_a_file_changed_while_it_was_checked_is_not_stored(models, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    cache.bind({"rules": []})
    target = str(models / "matmul.onnx")
    report, probe = cache.lookup(target)
    assert report is None
    with open(target, "ab") as fh:
        fh.write(b"\0")
    cache.store(probe, FileReport(target), data_files=[])
    assert cache.stored == 0


def test_verify_and_pictures_bypass_the_cache(models, tmp_path):
    class Hook:
        def __call__(self, result):
            return result

    cache = ResultCache(tmp_path / "cache")
    check_paths([models / "matmul.onnx"], cache=cache)
    assert cache.stored == 1
    cache = ResultCache(tmp_path / "cache")
    check_paths([models / "matmul.onnx"], after=Hook(), cache=cache)
    assert cache.hits == cache.misses == cache.stored == 0
    res = run("-j", "1", "--cache-dir", tmp_path / "c2", "--graph", tmp_path / "pics", models / "matmul.onnx")
    assert res.exit_code == 1 and not (tmp_path / "c2").exists()


def test_baselines_and_per_file_ignores_act_after_the_cache(models, tmp_path, calls):
    cache = tmp_path / "cache"
    base = tmp_path / "baseline.json"
    target = models / "matmul.onnx"
    assert run("-j", "1", "--cache-dir", cache, "--write-baseline", base, target).exit_code == 0
    assert run("-j", "1", "--cache-dir", cache, "--baseline", base, target).exit_code == 0
    calls.clear()
    assert run("-j", "1", "--cache-dir", cache, target).exit_code == 1  # the cached report still has the finding
    config = tmp_path / "shapelint.toml"
    config.write_text('[per-file-ignores]\n"matmul.onnx" = ["SL103"]\n')
    res = CliRunner().invoke(main, ["check", "--config", str(config), "-j", "1", "--cache-dir", str(cache), str(target)])
    assert res.exit_code == 0 and calls == []


# ---------------------------------------------------------------- a damaged cache
@pytest.mark.parametrize("damage", [b"", b"{not json", b"[1, 2]", b'{"format": 1}', b"\xff\xfe", b"[" * 100_000,
                                    "valid-json-wrong-fields"])
def test_a_corrupt_entry_is_ignored_and_rebuilt(models, tmp_path, calls, damage):
    cache = tmp_path / "cache"
    first = run("-j", "1", "--format", "json", "--cache-dir", cache, models)
    for entry in entries(cache):
        if damage == "valid-json-wrong-fields":
            data = json.loads(entry.read_text())
            if data["report"]["diagnostics"]:
                data["report"]["diagnostics"][0]["severity"] = "catastrophic"
            else:
                data["report"]["skipped"] = "nope"
            entry.write_text(json.dumps(data))
        else:
            entry.write_bytes(damage)
    calls.clear()
    second = run("-j", "1", "--format", "json", "--cache-dir", cache, models)
    assert second.stdout == first.stdout and "Traceback" not in second.output and second.stderr == ""
    assert len(calls) == len(entries(cache))  # every entry was rebuilt
    calls.clear()
    run("-j", "1", "--format", "json", "--cache-dir", cache, models)
    assert calls == []


def test_an_entry_that_is_a_symlink_is_replaced_never_written_through(models, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    target = models / "matmul.onnx"
    check_paths([target], cache=cache)
    (entry,) = entries(tmp_path / "cache")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    entry.unlink()
    entry.symlink_to(victim)
    check_paths([target], cache=ResultCache(tmp_path / "cache"))
    assert victim.read_text() == "precious" and not entry.is_symlink()


def test_concurrent_writers_of_one_key_leave_a_whole_entry(models, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    cache.bind({"rules": []})
    target = str(models / "matmul.onnx")
    report = FileReport(target, skipped=[{"rule": "SL204", "reason": "x" * 5000}])
    _, probe = cache.lookup(target)
    errors = []

    def write():
        for _ in range(30):
            cache.store(probe, report, data_files=[])

    def read():
        for _ in range(60):
            try:
                got, _probe = cache.lookup(target)
                assert got is None or got == report
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

    threads = [threading.Thread(target=f) for f in (write, write, read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and cache.lookup(target)[0] == report
    assert [p.name for p in (tmp_path / "cache").rglob("*.tmp")] == []


def test_an_unwritable_cache_folder_is_one_warning_and_the_run_goes_on(models, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    plain = run("-j", "1", "--format", "json", "--no-cache", models)
    for where in (blocker, blocker / "sub"):
        res = run("-j", "1", "--format", "json", "--cache-dir", where, models)
        assert res.exit_code == plain.exit_code == 1 and res.stdout == plain.stdout
        warnings = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(warnings) == 1 and warnings[0].startswith("shapelint: warning: cannot write the cache in "), res.stderr
        assert blocker.read_text() == "not a folder"
    assert run("-j", "1", "-q", "--cache-dir", blocker, models).stderr == ""
    res = run("--cache-dir", "", models)
    assert res.exit_code == 2 and "--cache-dir" in res.stderr


# ---------------------------------------------------------------- where, and turning it off
def test_the_folder_is_next_to_the_config_file_else_in_the_working_directory(models, tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(models, project / "models")
    (project / "shapelint.toml").write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    CliRunner().invoke(main, ["check", "-j", "1", str(project / "models" / "matmul.onnx")])
    cache = project / ".shapelint_cache"
    assert len(entries(cache)) == 1 and not (elsewhere / ".shapelint_cache").exists()
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    CliRunner().invoke(main, ["check", "--isolated", "-j", "1", str(project / "models" / "matmul.onnx")])
    assert len(entries(elsewhere / ".shapelint_cache")) == 1
    (project / "shapelint.toml").write_text('cache-dir = "build/lint-cache"\n')
    CliRunner().invoke(main, ["check", "-j", "1", str(project / "models" / "matmul.onnx")])
    assert len(entries(project / "build" / "lint-cache")) == 1
    res = CliRunner().invoke(main, ["check", "--show-settings", str(project / "models" / "matmul.onnx")])
    assert json.loads(dict(ln.split(" = ", 1) for ln in res.stdout.splitlines())["cache-dir"]) == str(project / "build" / "lint-cache")


def test_tags_are_never_written_among_someone_elses_files(models, tmp_path):
    run("-j", "1", "--cache-dir", models, models / "matmul.onnx")
    assert not (models / ".gitignore").exists() and not (models / "CACHEDIR.TAG").exists()
    assert len(entries(models / "0.1.0")) == 1


def test_no_cache_env_and_config_turn_it_off(models, tmp_path, monkeypatch, calls):
    monkeypatch.chdir(tmp_path)
    target = models / "matmul.onnx"
    run("-j", "1", "--no-cache", target)
    run("-j", "1", target, env={"SHAPELINT_NO_CACHE": "1"})
    (tmp_path / "shapelint.toml").write_text("cache = false\n")
    CliRunner().invoke(main, ["check", "--config", str(tmp_path / "shapelint.toml"), "-j", "1", str(target)])
    assert not (tmp_path / ".shapelint_cache").exists() and len(calls) == 3
    run("-j", "1", target, env={"SHAPELINT_CACHE_DIR": str(tmp_path / "from-env")})
    assert len(entries(tmp_path / "from-env")) == 1


@pytest.mark.parametrize("table, words", [
    ("cache = 1", "cache: expected true or false"),
    ('cache-dir = ""', "cache-dir: expected a folder path"),
    ("cache_dir = 'x'", "did you mean 'cache-dir'"),
])
def test_a_bad_cache_setting_is_one_line_and_exit_2(models, tmp_path, table, words):
    (tmp_path / "shapelint.toml").write_text(table + "\n")
    res = CliRunner().invoke(main, ["check", "--config", str(tmp_path / "shapelint.toml"), str(models)])
    assert res.exit_code == 2 and words in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_the_checkout_s_sources_are_part_of_the_key(monkeypatch, tmp_path, models, rules):
    from shapelint import cache as cache_module

    check_paths([models / "matmul.onnx"], rules=rules, cache=ResultCache(tmp_path / "cache"))
    monkeypatch.setattr(cache_module, "_source_digest", "0" * 64)  # as if a source file had been edited
    again = ResultCache(tmp_path / "cache")
    check_paths([models / "matmul.onnx"], rules=rules, cache=again)
    assert again.hits == 0 and again.misses == 1


def test_jsonl_applies_per_file_ignores_and_the_baseline_to_each_streamed_line(models, tmp_path):
    target = models / "matmul.onnx"
    base = tmp_path / "baseline.json"
    cache = tmp_path / "cache"
    run("-j", "1", "--cache-dir", cache, "--write-baseline", base, target)
    res = run("-j", "1", "--cache-dir", cache, "--format", "jsonl", "--baseline", base, target, models / "SL205-batchwise-recurrent-layout")
    lines = [json.loads(ln) for ln in res.stdout.splitlines()]
    (mine,) = [f for f in lines if f["path"] == str(target)]
    assert mine["diagnostics"] == [] and len(lines) == 1 + len(list((models / "SL205-batchwise-recurrent-layout").glob("*.onnx")))
    config = tmp_path / "shapelint.toml"
    config.write_text('[per-file-ignores]\n"matmul.onnx" = ["SL103"]\n')
    res = CliRunner().invoke(main, ["check", "--config", str(config), "--format", "jsonl", "-j", "1", str(target)])
    assert res.exit_code == 0 and json.loads(res.stdout)["diagnostics"] == []
    out = tmp_path / "report.jsonl"
    res = run("-j", "1", "--format", "jsonl", "-o", out, models)
    files = [json.loads(ln) for ln in out.read_text().splitlines()]
    whole = json.loads(run("-j", "1", "--format", "json", models).stdout)["files"]
    assert res.stdout == "" and files == whole  # at the end, in input order


def test_two_runs_at_once_share_a_new_cache_folder(models, tmp_path):
    import subprocess
    import sys

    cache = tmp_path / "fresh" / "cache"
    cmd = [sys.executable, "-m", "shapelint.cli", "check", "--isolated", "--format", "json", "-j", "2",
           "--cache-dir", str(cache), str(models)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    plain = run("--format", "json", "-j", "1", "--no-cache", models).stdout
    for out, err in outs:
        assert err == "" and out == plain
    assert all(json.loads(e.read_text())["report"] is not None for e in entries(cache))
    assert len(entries(cache)) == len(json.loads(plain)["files"])
