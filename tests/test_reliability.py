"""Regression tests for the outside robustness campaign (issue 12): one or more per reproducer.

Every model is rebuilt here with ``onnx.helper``; the reproducer it stands
for is named in each test's docstring (``/work/shared/reliability/<name>``
in the campaign's hand-off).  What is checked each time: one clear line and
exit status 2 for an input that cannot be used, never a traceback, never a
hang, never a file written that the run reads.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from shapelint import verify as V
from shapelint.check import check, check_paths
from shapelint.cli import main
from shapelint.fix import fix_model
from shapelint.load import LoadError, load_model
from shapelint.rule import Rule, Severity

from .conftest import loader_with

ROOT = Path(__file__).resolve().parent.parent


def _vi(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def _model(nodes, inputs, outputs, inits=(), functions=(), sparse=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits), sparse_initializer=list(sparse))
    imports = [helper.make_opsetid("", opset)] + ([helper.make_opsetid("local", 1)] if functions else [])
    return helper.make_model(g, opset_imports=imports, functions=list(functions))


def _external(t: TensorProto, location: str, **entries) -> TensorProto:
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    for k, v in {"location": location, **entries}.items():
        e = t.external_data.add()
        e.key, e.value = k, str(v)
    t.ClearField("float_data")
    t.ClearField("raw_data")
    return t


def weight_model(location: str, **entries) -> onnx.ModelProto:
    """y = x @ W, W a 4x4 float stored in ``location`` (64 bytes)."""
    w = _external(TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4]), location, **entries)
    return _model([helper.make_node("MatMul", ["x", "W"], ["y"], name="/fc/MatMul")], [_vi("x", ["batch", 4])],
                  [_vi("y", ["batch", 4])], [w])


def function_constant_model(location: str) -> onnx.ModelProto:
    """y = F(x), F a model-local function whose Constant value is external (ext_function_and_sparse_not_validated)."""
    c = _external(TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[4, 4]), location)
    body = [helper.make_node("Constant", [], ["c"], value=c), helper.make_node("MatMul", ["a", "c"], ["b"])]
    fn = helper.make_function("local", "F", ["a"], ["b"], body, [helper.make_opsetid("", 17)])
    return _model([helper.make_node("F", ["x"], ["y"], domain="local", name="/F")], [_vi("x", ["batch", 4])],
                  [_vi("y", None)], functions=[fn])


def sparse_model(location: str) -> onnx.ModelProto:
    """A sparse initializer whose values are external (ext_function_and_sparse_not_validated)."""
    values = _external(TensorProto(name="W_values", data_type=TensorProto.FLOAT, dims=[2]), location)
    indices = helper.make_tensor("W_indices", TensorProto.INT64, [2], [0, 5])
    sp = helper.make_sparse_tensor(values, indices, [4, 4])
    return _model([helper.make_node("MatMul", ["x", "W_values"], ["y"])], [_vi("x", ["batch", 4])], [_vi("y", None)],
                  sparse=[sp])


def save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx") -> Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def one_line_error(res, words: str = "") -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert words in lines[0], lines[0]
    return lines[0]


def cli(*args, **kw):
    return CliRunner().invoke(main, list(map(str, args)), **kw)


def run_cli(*args, timeout=60, env=None, cwd=None):
    """The CLI in a fresh process, with a time limit (for what could block or read forever)."""
    return subprocess.run([sys.executable, "-m", "shapelint.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


# ------------------------------------------------------- external data, everywhere
@pytest.mark.parametrize("make", [function_constant_model, sparse_model], ids=["function-constant", "sparse-values"])
@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "link.bin"])
def test_external_data_outside_the_folder_is_refused_in_function_bodies_and_sparse_initializers(tmp_path, make, location):
    """ext_function_and_sparse_not_validated: check, verify and fix all refuse, without opening the file."""
    folder = tmp_path / "m"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64)
    (folder / "link.bin").symlink_to(tmp_path / "secret.bin")
    path = save(make(location), folder)
    report = check(path)
    assert report.error and ("outside the model's folder" in report.error or "absolute path" in report.error)
    v = V.verify(path)
    assert v.error and not v.error.startswith("internal error"), v.error
    result = fix_model(str(path), str(tmp_path / "out.onnx"))
    assert result.exit_code == 2 and result.error and not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("entries, words", [
    ({"offset": "-1"}, "offset '-1'"),
    ({"offset": "abc"}, "offset 'abc'"),
    ({"length": "-5"}, "length '-5'"),
    ({"length": "1e3"}, "length '1e3'"),
    ({"length": str(2**63)}, "length"),
    ({"length": str(10**12)}, "past the end"),
    ({"offset": "4095", "length": "100"}, "past the end"),
    ({"offset": "8192"}, "past the end"),
    ({"length": "32"}, "need 64 bytes"),
    ({"offset": "4060"}, "holds 36 bytes"),
])
def test_bad_offsets_and_lengths_are_one_clean_error_in_check_verify_and_fix(tmp_path, entries, words):
    """fix_negative_external_offset and ext_verify_internal_errors (off_*, len_*)."""
    (tmp_path / "w.bin").write_bytes(b"\0" * 4096)
    path = save(weight_model("w.bin", **entries), tmp_path)
    report = check(path)
    assert report.error and words in report.error, report.error
    v = V.verify(path)
    assert v.error and words in v.error and "internal error" not in v.error
    res = cli("fix", path, "-o", tmp_path / "out.onnx")
    assert res.exit_code == 2 and "Traceback" not in res.output and words in res.output
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("case", ["nul", "link_loop", "long_name"])
def test_locations_check_refuses_are_refused_by_verify_too(tmp_path, case):
    """ext_verify_internal_errors: verify said 'internal error while verifying: ValueError/RuntimeError/OSError'."""
    if case == "link_loop":
        (tmp_path / "loop_a").symlink_to("loop_b")
        (tmp_path / "loop_b").symlink_to("loop_a")
    location = {"nul": "w.bin\0../../secret.bin", "link_loop": "loop_a", "long_name": "a" * 5000}[case]
    path = save(weight_model(location), tmp_path)
    assert check(path).error
    v = V.verify(path)
    assert v.error and "internal error" not in v.error, v.error
    res = cli("verify", path)
    assert res.exit_code == 2 and "internal error" not in res.output and "Traceback" not in res.output


def test_verify_reads_only_the_bytes_a_tensor_needs_from_a_huge_data_file(tmp_path):
    """verify_parent_reads_3gib_weights: a 4x4 W backed by a sparse 3 GiB file costs 64 bytes, not 3 GiB."""
    with open(tmp_path / "huge.bin", "wb") as fh:
        fh.truncate(3 * 2**30)
    path = save(weight_model("huge.bin"), tmp_path)
    assert check(path).error is None
    tracemalloc.start()
    try:
        prepared = V.prepare(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert len(prepared.model.graph.initializer[0].raw_data) == 64
    # with the 3 GiB length written out, the reference does not fit the tensor: refused everywhere
    path = save(weight_model("huge.bin", length=3 * 2**30), tmp_path, "explicit.onnx")
    assert "need 64 bytes" in check(path).error
    with pytest.raises(LoadError, match="need 64 bytes"):
        V.prepare(path)


def test_overlapping_references_cannot_multiply_what_verify_reads(tmp_path):
    (tmp_path / "w.bin").write_bytes(b"\0" * 64)
    m = weight_model("w.bin")
    w2 = TensorProto()
    w2.CopyFrom(m.graph.initializer[0])
    w2.name = "W2"
    m.graph.initializer.append(w2)
    m.graph.node.append(helper.make_node("MatMul", ["y", "W2"], ["z"]))
    m.graph.output.append(_vi("z", None))
    path = save(m, tmp_path)
    with pytest.raises(LoadError, match="overlap"):
        V.prepare(path)


# ------------------------------------------------------------ hostile CLI inputs
BASELINES = {
    "count_str": {"version": 1, "files": {"model.onnx": [{"rule": "SL103", "node": "/fc/MatMul", "tensor": None, "count": "x"}]}},
    "node_list": {"version": 1, "files": {"model.onnx": [{"rule": "SL103", "node": ["a"], "tensor": None, "count": 1}]}},
    "count_bool": {"version": 1, "files": {"model.onnx": [{"rule": "SL103", "node": None, "tensor": None, "count": True}]}},
    "count_negative": {"version": 1, "files": {"model.onnx": [{"rule": "SL103", "node": None, "tensor": None, "count": -3}]}},
    "rule_int": {"version": 1, "files": {"model.onnx": [{"rule": 103, "node": None, "tensor": None, "count": 1}]}},
}


def _bad_model(folder: Path) -> Path:
    """x @ w with 8 vs 4 inner dims: one SL103 finding."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], [0.0] * 12)
    return save(_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="/fc/MatMul")], [_vi("x", ["batch", 8])],
                       [_vi("y", None)], [w]), folder)


@pytest.mark.parametrize("case", [*BASELINES, "deep", "huge_number", "truncated", "not_utf8"])
def test_a_malformed_baseline_is_one_line_and_exit_2(tmp_path, case):
    """config_cli: baseline_count_str / baseline_node_list / baseline_deep / baseline_huge_number."""
    model = _bad_model(tmp_path)
    p = tmp_path / "baseline.json"
    if case in BASELINES:
        p.write_text(json.dumps(BASELINES[case]))
    elif case == "deep":
        p.write_text('{"version": 1, "files": ' + "[" * 5000 + "]" * 5000 + "}")
    elif case == "huge_number":
        p.write_text('{"version": 1, "files": {"model.onnx": [{"rule": "SL103", "count": ' + "1" * 5001 + "}]}}")
    elif case == "truncated":
        p.write_text('{"version": 1, "files": {')
    else:
        p.write_bytes(b"\xff\xfe{}")
    one_line_error(cli("check", "--isolated", "--baseline", p, model), "baseline.json")


def test_a_deeply_nested_config_is_one_line_and_exit_2(tmp_path):
    """config_cli/deep_toml: tomllib's RecursionError."""
    model = _bad_model(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.shapelint]\nselect = " + "[" * 2000 + "]" * 2000 + "\n")
    one_line_error(cli("check", model), "nested too deep")


@pytest.mark.parametrize("flag", ["--baseline", "--config", "model"])
def test_a_fifo_or_a_device_as_input_never_blocks(tmp_path, flag):
    """config_cli: 'mkfifo f.json; --baseline f.json' blocked forever; '--baseline /dev/zero' read 3 GiB in 3.5 s."""
    model = _bad_model(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for bad in (fifo, Path("/dev/zero")):
        args = ["check", "--isolated", bad] if flag == "model" else ["check", flag, bad, model]
        if flag == "--config":
            args = ["check", "--config", bad, model]
        start = time.monotonic()
        res = run_cli(*args, timeout=60)
        assert time.monotonic() - start < 30
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "not a regular file" in res.stderr + res.stdout


@pytest.mark.parametrize("where", ["report", "baseline", "graph", "graph_parent_missing", "report_missing_dir"])
def test_outputs_on_bad_paths_are_one_line_and_exit_2(tmp_path, where):
    """config_cli: -o /nonexistent/dir/x.json, -o /dev/full, --write-baseline /dev/full, --graph /dev/full/x, --graph /proc/nope."""
    model = _bad_model(tmp_path)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    args = {
        "report": ["-o", "/dev/full"],
        "report_missing_dir": ["-o", tmp_path / "nope" / "x.json"],
        "baseline": ["--write-baseline", "/dev/full"],
        "graph": ["--graph", a_file / "x"],
        "graph_parent_missing": ["--graph", "/proc/nope"],
    }[where]
    res = cli("check", "--isolated", *args, model)
    one_line_error(res, "shapelint: error:")
    assert Path("/dev/full").is_char_device()


@pytest.mark.parametrize("flag", ["-o", "--write-baseline"])
def test_report_and_baseline_never_overwrite_a_checked_model(tmp_path, flag):
    model = _bad_model(tmp_path)
    before = model.read_bytes()
    os.link(model, tmp_path / "hard.json")
    for target in (model, tmp_path / "hard.json"):
        one_line_error(cli("check", "--isolated", flag, target, model), "never overwrites")
    assert model.read_bytes() == before


def test_the_report_file_is_written_atomically(tmp_path, monkeypatch):
    model = _bad_model(tmp_path)
    out = tmp_path / "report.json"
    res = cli("check", "--isolated", "--format", "json", "-o", out, model)
    assert res.exit_code == 1 and json.loads(out.read_text())["files"][0]["path"] == str(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "report.json"]


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_verify_timeout_must_be_a_finite_positive_number(tmp_path, value):
    """config_cli: 'verify --timeout nan' gave 'internal error while verifying: ValueError'."""
    model = _bad_model(tmp_path)
    one_line_error(cli("verify", "--timeout", value, model), "--timeout")
    one_line_error(cli("fix", model, "-o", tmp_path / "f.onnx", "--timeout", value), "--timeout")


def test_unknown_codes_and_dims_past_int64_on_the_command_line_are_errors(tmp_path):
    """config_cli: '--select SL9999' selected nothing (exit 0); '--dim batch=10**23' was accepted."""
    model = _bad_model(tmp_path)
    one_line_error(cli("check", "--isolated", "--select", "SL9999", model), "SL9999")
    one_line_error(cli("check", "--isolated", "--ignore", "XYZ1", model), "XYZ1")
    res = cli("check", "--isolated", "--dim", "batch=99999999999999999999999", model)
    assert res.exit_code == 2 and "int64" in res.output and "Traceback" not in res.output
    assert cli("check", "--isolated", "--select", "SL1", model).exit_code == 1


def test_a_folder_reports_fifos_dangling_symlinks_and_devices_named_onnx(tmp_path):
    """folder_skips_non_regular: they were left out of the report (1 file, exit 0)."""
    d = tmp_path / "d"
    d.mkdir()
    _bad_model(d).rename(d / "good.onnx")
    os.mkfifo(d / "fifo.onnx")
    (d / "dangling.onnx").symlink_to("/nowhere")
    (d / "zero.onnx").symlink_to("/dev/zero")
    res = run_cli("check", "--isolated", "--format", "json", d, timeout=60)
    assert res.returncode == 2, res.stderr
    files = {Path(f["path"]).name: f.get("error") for f in json.loads(res.stdout)["files"]}
    assert set(files) == {"good.onnx", "fifo.onnx", "dangling.onnx", "zero.onnx"}
    assert files["good.onnx"] is None
    assert "not a regular file" in files["fifo.onnx"] and "not a regular file" in files["zero.onnx"]
    assert "does not exist" in files["dangling.onnx"]


# ------------------------------------------------------------------------ --jobs
def test_jobs_is_capped_at_the_cpus_with_a_note(tmp_path, monkeypatch):
    """jobs_256: --jobs 256 started min(256, files) processes on a 2-core machine."""
    import shapelint.config as config

    monkeypatch.setattr(config, "default_jobs", lambda: 2)
    model = _bad_model(tmp_path)
    for i in range(5):
        (tmp_path / f"m{i}.onnx").write_bytes(model.read_bytes())
    res = cli("check", "--isolated", "--jobs", "256", tmp_path)
    assert res.exit_code == 1
    assert "shapelint: note: --jobs 256 capped at 2" in res.stderr
    assert "capped" not in cli("check", "--isolated", "--jobs", "2", tmp_path).stderr
    # the API caps too: never more workers than CPUs, whatever is asked
    seen = []
    check_mod = sys.modules["shapelint.check"]
    real = check_mod._run_pool
    monkeypatch.setattr(check_mod, "_run_pool", lambda files, kw, jobs, progress: seen.append(jobs) or real(files, kw, jobs, progress))
    assert len(check_paths([tmp_path], jobs=256).files) == 6 and seen == [2]


class KillOnVictim(Rule):
    """Test-only: SIGKILLs the worker process that checks a file named victim.onnx (what the OOM killer does)."""

    code, slug, severity = "TST900", "kill-on-victim", Severity.INFO
    op_types = ()
    parent = 0

    def check(self, node, ctx):
        if ctx.path.endswith("victim.onnx") and os.getpid() != KillOnVictim.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return ()


def test_a_killed_worker_costs_its_file_and_the_run_goes_on(tmp_path, monkeypatch, rules):
    """jobs_worker_killed: BrokenProcessPool ended the run with no report and exit 1."""
    import shapelint.config as config

    monkeypatch.setattr(config, "default_jobs", lambda: 2)
    KillOnVictim.parent = os.getpid()
    model = _bad_model(tmp_path)
    names = ["a.onnx", "b.onnx", "victim.onnx", "c.onnx", "d.onnx", "e.onnx"]
    for n in names:
        (tmp_path / n).write_bytes(model.read_bytes())
    model.unlink()
    run = check_paths([tmp_path], jobs=2, rules=[*rules, KillOnVictim])
    got = {Path(f.path).name: f for f in run.files}
    assert sorted(got) == sorted(names)
    assert "worker process checking this file died (killed by SIGKILL" in got["victim.onnx"].error
    assert all(got[n].error is None and [d.rule for d in got[n].diagnostics] == ["SL103"] for n in names if n != "victim.onnx")
    assert run.exit_code("error") == 2


def test_a_killed_worker_on_the_command_line_is_one_error_line_and_exit_2(tmp_path, monkeypatch):
    import shapelint.config as config
    from shapelint import plugins

    monkeypatch.setattr(config, "default_jobs", lambda: 2)
    KillOnVictim.parent = os.getpid()
    monkeypatch.setattr(plugins, "load_rules", loader_with("TST900", KillOnVictim))
    model = _bad_model(tmp_path)
    for n in ["a.onnx", "victim.onnx", "b.onnx"]:
        (tmp_path / n).write_bytes(model.read_bytes())
    model.unlink()
    res = cli("check", "--isolated", "--jobs", "2", "--format", "json", tmp_path)
    assert res.exit_code == 2, res.output
    data = json.loads(res.stdout)
    errors = {Path(f["path"]).name: f.get("error") for f in data["files"]}
    assert len(errors) == 3 and errors["a.onnx"] is None and errors["b.onnx"] is None
    assert "died" in errors["victim.onnx"]


# ------------------------------------------------------------------------ verify
LOOP_FOREVER = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch,4] x) => (float[batch,4] y) {
   t = Constant <value: tensor = bool {1}> ()
   y = Loop ("", t, x) <body: graph = b (int64 i, bool c, float[batch,4] v) => (bool co, float[batch,4] vo) {
      co = Identity (c)
      vo = Identity (v)
   }>
}"""


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and PR_SET_PDEATHSIG are Linux")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_to_verify_kills_the_onnxruntime_child_and_sigterm_removes_the_temp_dirs(tmp_path, sig):
    """verify_loop_forever: after SIGTERM the child spun at 100% CPU forever and shapelint-verify-* stayed."""
    import onnx.parser

    pytest.importorskip("onnxruntime")
    model = tmp_path / "loop.onnx"
    onnx.save(onnx.parser.parse_model(LOOP_FOREVER), str(model))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "shapelint.cli", "verify", "--timeout", "300", str(model)],
                            env={**os.environ, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        children = []
        while time.monotonic() < deadline and not (children and list(tmp.glob("shapelint-verify-*"))):
            time.sleep(0.2)
            children = _children(proc.pid)
        assert children, "the onnxruntime child did not start"
        time.sleep(1.0)  # the child is in the endless Loop now
        proc.send_signal(sig)
        proc.wait(timeout=30)
        end = time.monotonic() + 10
        while time.monotonic() < end and any(_alive(c) for c in children):
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), "the onnxruntime child outlived shapelint"
        if sig == signal.SIGTERM:
            assert sorted(p.name for p in tmp.iterdir()) == [], "temp files left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_onnxruntime_child_keeps_its_cache_and_temp_files_in_its_own_temp_dir(tmp_path, monkeypatch, rules):
    """verify_writes_outside_tmp: $HOME/.cache/.../onnxruntime.db and $TMPDIR/.ses were left behind."""
    pytest.importorskip("onnxruntime")
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr("tempfile.tempdir", None)
    code = (
        "import sys\n"
        "from shapelint import verify as V\n"
        "from shapelint.check import check\n"
        f"r = V.verify({str(_bad_model(tmp_path))!r})\n"
        "assert r.runtime and r.runtime['bindings'], r.runtime\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(home), "TMPDIR": str(tmp)})
    assert res.returncode == 0, res.stderr
    assert list(home.rglob("*")) == [] and list(tmp.iterdir()) == []


# ---------------------------------------------------------------- wrong answers
def test_a_node_that_consumes_its_own_output_is_a_cycle():
    """self_loop_not_reported: y = Add(r, y) gave 0 findings."""
    for position in (0, 1):
        inputs = ["r", "y"] if position else ["y", "r"]
        nodes = [helper.make_node("Relu", ["x"], ["r"], name="/Relu"), helper.make_node("Add", inputs, ["y"], name="/Add"),
                 helper.make_node("Neg", ["y"], ["z"], name="/Neg")]
        report = check(_model(nodes, [_vi("x", [2])], [_vi("z", [2])]))
        (d,) = [d for d in report.diagnostics if d.rule == "SL002"]
        assert d.node == "/Add" and "consumes its own output 'y'" in d.message


def test_a_graph_output_nothing_produces_is_sl002():
    """graph_output_never_produced: 0 findings for 44 of 44 mutants."""
    report = check(_model([helper.make_node("Relu", ["x"], ["r"])], [_vi("x", [2])], [_vi("y", [2])]))
    assert [(d.rule, d.message) for d in report.diagnostics if d.rule == "SL002"] == [
        ("SL002", "missing-output: graph output 'y' is produced by no node, graph input or initializer")]
    # an input or an initializer passed straight through is an output like any other
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [0.0, 0.0])
    ok = _model([helper.make_node("Relu", ["x"], ["r"])], [_vi("x", [2])], [_vi("r", [2]), _vi("x", [2]), _vi("w", [2])], [w])
    assert [d for d in check(ok).diagnostics if d.rule == "SL002"] == []


def _no_warning(caplog):
    assert not [r for r in caplog.records if r.levelname == "WARNING"], [r.getMessage() for r in caplog.records]


def test_a_constant_of_shape_value_with_3_bytes_is_a_finding_on_the_node(caplog):
    """constantofshape_value_raw_data_3_bytes: a swallowed 'buffer size must be a multiple of element size'."""
    value = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[1], raw_data=b"\0\0\0")
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["y"], name="/Fill", value=value)]
    report = check(_model(nodes, [_vi("x", ["batch", 4])], [_vi("y", None)]))
    _no_warning(caplog)
    (d,) = [d for d in report.diagnostics if d.node == "/Fill"]
    assert d.rule == "SL101" and "3 bytes of raw data" in d.message and "needs 4" in d.message


def test_a_dim_past_int64_is_a_finding_and_shape_of_it_does_not_crash(caplog):
    """shape_of_dim_int64_max: Concat(x, x) of a 2**63-1 dim, then Shape: 'Python int too large to convert to C long'."""
    nodes = [helper.make_node("Concat", ["x", "x"], ["xx"], name="/Concat", axis=0), helper.make_node("Shape", ["xx"], ["y"])]
    report = check(_model(nodes, [_vi("x", [2**63 - 1, 4])], [_vi("y", None)]))
    _no_warning(caplog)
    (d,) = [d for d in report.diagnostics if d.node == "/Concat"]
    assert d.rule == "SL101" and "past the int64 limit" in d.message


def test_a_negative_dim_is_a_finding_and_slice_of_it_does_not_crash(caplog):
    """slice_of_negative_dim: Expand to (-1000, batch, 8), then Slice: 'length should not be negative'."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], start=0, end=1),
        helper.make_node("Concat", ["neg", "s", "eight"], ["target"], axis=0),
        helper.make_node("Expand", ["zero", "target"], ["zeros"], name="/Expand"),
        helper.make_node("Slice", ["zeros", "starts", "ends", "axes"], ["y"], name="/Slice"),
    ]
    inits = [helper.make_tensor("neg", TensorProto.INT64, [1], [-1000]), helper.make_tensor("eight", TensorProto.INT64, [1], [8]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]), helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
             helper.make_tensor("ends", TensorProto.INT64, [1], [5]), helper.make_tensor("axes", TensorProto.INT64, [1], [0])]
    report = check(_model(nodes, [_vi("x", ["batch", 3])], [_vi("y", None)], inits))
    _no_warning(caplog)
    (d,) = [d for d in report.diagnostics if d.node == "/Expand"]
    assert d.rule == "SL101" and "-1000, negative" in d.message


def test_declared_dim_value_minus_one_stays_an_unknown_dim():
    report = check(_model([helper.make_node("Relu", ["x"], ["y"], name="/Relu")], [_vi("x", [-1, 4])], [_vi("y", None)]))
    assert [d for d in report.diagnostics if d.rule == "SL101"] == []


@pytest.mark.parametrize("n", [2**28, 2**62])
def test_scan_with_an_absurd_num_scan_inputs_is_refused_cheaply(n):
    """scan_num_scan_inputs_2e28 / 2e62 (no scan_input_axes): 29.7 s and 4.3 GB, or a MemoryError in the roles."""
    body = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "body", [_vi("a", [4])], [_vi("b", [4])])
    node = helper.make_node("Scan", ["x"], ["y"], name="/Scan", body=body, num_scan_inputs=n)
    model = _model([node], [_vi("x", [3, 4])], [_vi("y", None)])
    start = time.perf_counter()
    tracemalloc.start()
    try:
        report = check(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 5 and peak < 50 * 2**20
    assert report.error and f"num_scan_inputs={n}" in report.error


def test_load_model_refuses_a_scan_with_more_scan_inputs_than_inputs(tmp_path):
    body = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "body", [_vi("a", [4])], [_vi("b", [4])])
    path = save(_model([helper.make_node("Scan", ["x"], ["y"], body=body, num_scan_inputs=2**28)], [_vi("x", [3, 4])],
                       [_vi("y", None)]), tmp_path)
    with pytest.raises(LoadError, match="num_scan_inputs"):
        load_model(path)


def test_a_string_index_after_an_lstm_is_no_rule_crash():
    """gather_string_index_after_lstm: a Gather whose index is a STRING constant 'abc' after an LSTM."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 16, 3], [0.1] * 48)
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 16, 4], [0.1] * 64)
    idx = helper.make_tensor("idx", TensorProto.STRING, [], [b"abc"])
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], name="/lstm/LSTM", hidden_size=4),
             helper.make_node("Gather", ["Y", "idx"], ["y"], name="/Gather", axis=0)]
    report = check(_model(nodes, [_vi("x", ["seq", "batch", 3])], [_vi("y", None)], [w, r, idx]))
    assert report.error is None
    assert not [d for d in report.diagnostics if "internal error" in d.message], report.diagnostics
