"""``shapelint verify``: every fixture under onnxruntime, and the child process's failure modes.

The fixtures' descriptions (``metadata_props["shapelint.description"]``) say
whether each bad model fails in onnxruntime (at session creation or at run)
or runs silently; verify must agree, and never find an inferred shape that
differs from onnxruntime's (SL900).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from shapelint import verify as V
from shapelint.cli import main
from shapelint.graph import ModelGraph
from shapelint.infer import infer

from .conftest import FIXTURES, expected_pairs, fixture_files, parse

FILES = fixture_files()


def description(path: Path) -> str:
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}.get("shapelint.description", "")


def expected_runtime(path: Path, symbols: set[str]) -> str:
    """``session``, ``run`` or ``runs``: what the fixture's description says onnxruntime does."""
    desc = description(path)
    cond = re.search(r"with (\w+) (\d+) it fails in onnxruntime", desc)
    if cond and cond.group(1) not in symbols:
        return "runs"  # fails only at a size the graph's inputs do not let verify choose
    if "fails in onnxruntime at session creation" in desc:
        return "session"
    if "fails in onnxruntime at run" in desc:
        return "run"
    if "runs in onnxruntime at every" in desc:
        return "runs"  # silently wrong (a literal that keeps the element count)
    if path.parent.name.startswith("SL5") and path.name.startswith("bad"):
        return "run"  # a baked-in traced size: fails at any other size
    return "runs"


@pytest.fixture(scope="module")
def verified(rules):
    """Each fixture verified once, shared by the tests below."""
    cache: dict[Path, object] = {}

    def get(path: Path):
        if path not in cache:
            cache[path] = V.verify(path, rules=rules)
        return cache[path]

    return get


def symbols_of(path: Path) -> set[str]:
    return set(V._input_symbols(onnx.load(str(path), load_external_data=False)))


#: inference bugs verify found (SL900), by fixture: remove an entry once shapelint/infer is fixed (strict xfail)
KNOWN_INFERENCE_BUGS: dict[str, str] = {}  # fixture -> why its inferred shapes disagree with onnxruntime


def _with_known_bugs(paths):
    out = []
    for p in paths:
        rel = str(p.relative_to(FIXTURES))
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_INFERENCE_BUGS[rel])] if rel in KNOWN_INFERENCE_BUGS else []
        out.append(pytest.param(p, id=rel, marks=marks))
    return out


@pytest.mark.parametrize("path", _with_known_bugs(FILES))
def test_every_fixture_runs_with_no_inferred_shape_disagreeing_with_onnxruntime(path, verified):
    report = verified(path)
    assert report.error is None, report.error
    rt = report.runtime
    assert rt is not None and rt["bindings"], rt
    assert not [d.message for d in report.diagnostics if d.rule in ("SL900", "SL902")]
    assert rt["disagreements"] == 0
    assert rt["tensors_compared"] > 0 or all(b["status"] != "ok" for b in rt["bindings"])
    for name in symbols_of(path):
        values = {b["dims"][name] for b in rt["bindings"]}
        assert len(values) >= 2, f"{name} was run at {values} only"


HEALTHY = [p for p in FILES if not expected_pairs(p)]
BAD = [p for p in FILES if expected_pairs(p)]


@pytest.mark.parametrize("path", HEALTHY, ids=[str(p.relative_to(FIXTURES)) for p in HEALTHY])
def test_a_healthy_fixture_runs_clean_at_every_binding(path, verified):
    report = verified(path)
    rt = report.runtime
    assert [b["status"] for b in rt["bindings"]] == ["ok"] * len(rt["bindings"]), rt["bindings"]
    assert not [d for d in report.diagnostics if d.rule.startswith("SL9")]


@pytest.mark.parametrize("path", BAD, ids=[str(p.relative_to(FIXTURES)) for p in BAD])
def test_a_bad_fixture_behaves_in_onnxruntime_as_its_description_says(path, verified):
    report = verified(path)
    rt = report.runtime
    expected = set(expected_pairs(path))
    found = [d for d in report.diagnostics if (d.rule, d.node) in expected]
    missed = expected - {(d.rule, d.node) for d in found}
    failing = [b for b in rt["bindings"] if b["status"] == "fails"]
    want = expected_runtime(path, symbols_of(path))
    if want == "runs" and "runs in onnxruntime" not in description(path) and failing:
        want = "fails"  # the description does not say: what onnxruntime does decides
    sl901 = [d for d in report.diagnostics if d.rule == "SL901"]
    if want == "runs":
        assert not failing, rt["bindings"]
        assert all(d.runtime["status"] in ("not-reproduced", "confirmed") and not d.runtime["fails"] for d in found)
        assert not sl901
        return
    assert failing, rt["bindings"]
    if want in ("session", "run"):
        assert failing[0]["phase"] == want, failing
    if path.parent.name.startswith("SL002"):
        return  # a malformed graph fails as a whole at session creation: no node to confirm
    # each expected finding is confirmed, or, where the static rules missed it, verify reports the failure itself
    assert all(d.runtime["status"] == "confirmed" for d in found), [d.runtime["summary"] for d in found]
    if not missed:
        assert not sl901, [d.message for d in sl901]
    else:  # static rules missed it: verify reports it, or another finding on that path explains it
        others = [d for d in report.diagnostics if d.runtime and d.runtime["status"] == "confirmed"]
        assert sl901 or others, missed
    if path.parent.name.startswith("SL5"):
        # a baked-in traced size: it runs at the traced size (when the model shows it) and fails at another
        traced = [b for b in rt["bindings"] if any(w.startswith("the traced size") or "valid only when" in w for w in b["why"])]
        assert all(b["status"] == "ok" for b in traced), rt["bindings"]
        assert any(b["status"] == "fails" for b in rt["bindings"] if b not in traced)


# ------------------------------------------------------------------ planning
BAKED = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 4, 8] x) => (float[batch, 5] y) <int64[2] s = {4, -1}> { r = Reshape(x, s)  y = MatMul(r, w) }"""


def baked_model(path: Path | None = None) -> onnx.ModelProto:
    """x.view(4, -1) @ w: traced at batch 4, fails at any other batch."""
    m = parse(BAKED)
    m.graph.initializer.append(numpy_helper.from_array(np.random.default_rng(0).standard_normal((32, 5)).astype(np.float32), "w"))
    m.graph.node[0].name, m.graph.node[1].name = "/flat/Reshape", "/fc/MatMul"
    if path is not None:
        onnx.save(m, str(path))
    return m


def plan(model):
    mg = ModelGraph.from_model(model)
    table = infer(mg)
    return V.plan_bindings(model, mg, table), mg, table


def test_bindings_include_1_another_size_and_the_traced_size_read_from_a_reshape():
    bindings, _, _ = plan(baked_model())
    assert [b.dims["batch"] for b in bindings] == [1, 3, 4]
    assert any("traced" in w for w in bindings[2].why) and any("batch == 4" in w for w in bindings[2].why)


def test_the_size_other_than_the_traced_one_avoids_the_traced_value():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 3] x) => (y) <int64[2] s = {3, -1}> { y = Reshape(x, s) }""")
    bindings, _, _ = plan(m)
    assert [b.dims["batch"] for b in bindings] == [1, 5, 3]


def test_a_dim_that_a_reshape_divides_gets_multiples():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[n, width] x) => (y) <int64[3] s = {0, -1, 2}> { y = Reshape(x, s) }""")
    bindings, _, _ = plan(m)
    assert [b.dims["width"] % 2 for b in bindings] == [0, 0]
    assert [b.dims["n"] for b in bindings] == [1, 3]


def test_a_convolution_keeps_a_positive_output_size():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 1, 4, w] x, float[1, 1, 3, 3] k) => (y) { y = Conv(x, k) }""")
    bindings, _, _ = plan(m)
    assert all(b.dims["w"] >= 3 for b in bindings)


def test_user_dims_are_added_as_their_own_binding():
    m = baked_model()
    mg = ModelGraph.from_model(m)
    bindings = V.plan_bindings(m, mg, infer(mg), {"batch": 8})
    assert {"batch": 8} in [b.dims for b in bindings]


def test_a_static_model_runs_once():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3] x) => (y) { y = Relu(x) }""")
    bindings, _, _ = plan(m)
    assert [b.dims for b in bindings] == [{}]


def test_anonymous_input_dims_get_a_name_so_they_can_be_bound():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[?, 3] x) => (y) { y = Relu(x) }""")
    prepared = V.prepare(m)
    assert prepared.model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dim0"
    bindings, _, _ = plan(prepared.model)
    assert [b.dims for b in bindings] == [{"x_dim0": 1}, {"x_dim0": 3}]


# --------------------------------------------------------------------- feeds
def test_token_ids_stay_below_the_rows_of_the_embedding_they_index():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (int64[batch, seq] ids, bool[batch, seq] mask, int64[2] shape, float[batch, 4] x) => (e, r)
    { c = Cast <to = 7> (ids)  e = Gather(table, c)  r = Reshape(x, shape) }""")
    m.graph.initializer.append(numpy_helper.from_array(np.zeros((7, 4), np.float32), "table"))
    mg = ModelGraph.from_model(m)
    table = infer(mg)
    feeds, _ = V.make_feeds(m, mg, table, V.Binding({"batch": 3, "seq": 50}))
    assert feeds["ids"].shape == (3, 50) and feeds["ids"].dtype == np.int64
    assert feeds["ids"].min() >= 0 and feeds["ids"].max() < 7 and feeds["ids"].max() >= 2
    assert feeds["mask"].dtype == np.bool_ and feeds["mask"].all()
    assert feeds["shape"].tolist() == [0, 0]  # a Reshape target: copy the input's dims
    assert feeds["x"].dtype == np.float32 and feeds["x"].shape == (3, 4)


def test_the_same_binding_gives_the_same_feeds():
    m = baked_model()
    mg = ModelGraph.from_model(m)
    table = infer(mg)
    a, _ = V.make_feeds(m, mg, table, V.Binding({"batch": 3}))
    b, _ = V.make_feeds(m, mg, table, V.Binding({"batch": 3}))
    np.testing.assert_array_equal(a["x"], b["x"])


# ----------------------------------------------------------- error messages
def test_an_onnxruntime_run_error_is_translated_into_the_node_and_a_clean_message():
    m = baked_model()
    msg = ("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running MatMul node. "
           "Name:'/fc/MatMul' Status Message: /onnxruntime_src/onnxruntime/core/providers/cpu/math/"
           "matmul_helper.h:59 Compute MatMul dimension mismatch")
    f = V.translate_ort_message(msg, m)
    assert (f.node.name, f.op_type, f.message, f.phase) == ("/fc/MatMul", "MatMul", "MatMul dimension mismatch", "run")


def test_a_session_error_names_the_node_from_onnxruntimes_shape_inference():
    m = baked_model()
    f = V.translate_ort_message("[ONNXRuntimeError] : 1 : FAIL : Node (/flat/Reshape) Op (Reshape) "
                                "[ShapeInferenceError] bad target", m)
    assert (f.node.name, f.phase, f.message) == ("/flat/Reshape", "session", "[ShapeInferenceError] bad target")


def test_a_kernel_constructor_error_is_matched_to_the_only_node_of_its_op_type():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[2, 3, 4] x, float[1, 8, 4] w, float[1, 8, 2] r) => (y) { y = LSTM <hidden_size = 2, layout = 1> (x, w, r) }""")
    m.graph.node[0].name = "enc/lstm"
    msg = ("[ONNXRuntimeError] : 1 : FAIL : Exception during initialization: /onnxruntime_src/onnxruntime/core/"
           "providers/cpu/rnn/lstm_base.h:53 onnxruntime::LSTMBase::LSTMBase(const onnxruntime::OpKernelInfo&) "
           "layout_ == 0 was false. Batchwise recurrent operations (layout == 1) are not supported.")
    f = V.translate_ort_message(msg, m)
    assert f.node.name == "enc/lstm" and f.message.startswith("layout_ == 0 was false")


# ---------------------------------------------------- the verify run itself
def test_a_baked_batch_is_confirmed_where_it_breaks_and_runs_at_the_traced_size(tmp_path, rules):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    report = V.verify(path, rules=rules)
    sl501 = [d for d in report.diagnostics if d.rule == "SL501"]
    assert len(sl501) == 1 and sl501[0].node == "/flat/Reshape"
    rt = sl501[0].runtime
    assert rt["status"] == "confirmed"
    assert [f["dims"] for f in rt["fails"]] == [{"batch": 1}, {"batch": 3}] and rt["runs"] == [{"batch": 4}]
    assert all(f["node"] == "/fc/MatMul" for f in rt["fails"])
    assert "MatMul '/fc/MatMul': MatMul dimension mismatch" in rt["summary"]
    assert "r (4, batch*8) = (4, 8)" in rt["summary"]  # the symbolic shape and what reached the node
    assert report.runtime["disagreements"] == 0 and report.runtime["tensors_compared"] > 0


def test_a_failure_no_static_finding_explains_is_sl901(tmp_path, rules):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    report = V.verify(path, rules=rules, select=["SL9"])
    (d,) = report.diagnostics
    assert (d.rule, d.node, d.severity) == ("SL901", "/fc/MatMul", "error")
    assert "no static finding predicted this" in d.message and "runs at batch=4" in d.message


def test_an_inferred_shape_that_differs_from_onnxruntime_is_sl900(tmp_path, monkeypatch, rules):
    path = tmp_path / "m.onnx"
    onnx.save(parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 4] x) => (y) { t = Relu(x)  y = Neg(t) }"""), str(path))
    real = V.infer

    def wrong(mg, bindings=None):  # an inference bug: t said to have 5 columns
        table = real(mg, bindings)
        table.tensors["t"].shape = (table.tensors["t"].shape[0], 5)
        return table

    monkeypatch.setattr(V, "infer", wrong)
    report = V.verify(path, rules=rules)
    (d,) = [d for d in report.diagnostics if d.rule == "SL900"]
    assert d.tensor == "t" and d.severity == "error"
    assert "inferred (batch, 5) = (1, 5), onnxruntime (1, 4)" in d.message
    assert "1 tensor(s) below it disagree" not in d.message  # y was inferred right: only t is reported
    assert report.runtime["disagreements"] >= 2


def _fake_worker(monkeypatch, body: str):
    """Replace the child with a script: ``body`` runs inside the real worker's answer loop."""
    code = (
        "import json, os, signal, sys, time\n"
        "import shapelint.verify_worker as W\n"
        "real = W.answer\n"
        "def answer(request, config, ort, np, emit):\n"
        "    def hooked(**event):\n"
        f"{''.join('        ' + line + chr(10) for line in body.splitlines())}"
        "        emit(**event)\n"
        "    real(request, config, ort, np, hooked)\n"
        "W.answer = answer\n"
        "sys.exit(W.main(sys.argv[1:]))\n"
    )
    monkeypatch.setattr(V, "_worker_command", lambda config: [sys.executable, "-c", code, json.dumps(config)])


def test_a_crashing_child_is_a_finding_and_the_other_bindings_still_run(tmp_path, monkeypatch, rules):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    _fake_worker(monkeypatch, "if event.get('event') == 'start' and event['index'] == 1:\n"
                              "    emit(**event)\n"
                              "    os.kill(os.getpid(), signal.SIGSEGV)")
    report = V.verify(path, rules=rules)
    statuses = [b["status"] for b in report.runtime["bindings"]]
    assert statuses == ["fails", "crash", "ok"], report.runtime["bindings"]
    (crash,) = [d for d in report.diagnostics if d.rule == "SL902"]
    assert "crashed at batch=3" in crash.message and "SIGSEGV" in crash.message
    sl501 = next(d for d in report.diagnostics if d.rule == "SL501")
    assert sl501.runtime["status"] == "confirmed"  # still confirmed by batch=1


def test_a_hanging_child_is_killed_at_the_time_limit_and_reported(tmp_path, monkeypatch, rules):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    _fake_worker(monkeypatch, "if event.get('event') == 'start' and event['index'] == 0:\n"
                              "    emit(**event)\n"
                              "    time.sleep(60)")
    report = V.verify(path, rules=rules, timeout=3)
    rows = report.runtime["bindings"]
    assert rows[0]["status"] == "timeout" and all(r["status"] == "not-run" for r in rows[1:]), rows
    (hang,) = [d for d in report.diagnostics if d.rule == "SL902"]
    assert "hung (time limit 3s) at batch=1" in hang.message


def test_a_model_that_exceeds_the_memory_limit_is_a_finding_not_a_crash(tmp_path, rules):
    path = tmp_path / "big.onnx"
    onnx.save(parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 4] x) => (y) <int64[2] s = {30000, 30000}> { big = ConstantOfShape(s)  r = ReduceSum(big)  y = Add(x, r) }"""), str(path))
    report = V.verify(path, rules=rules, memory_mb=1024)
    (d,) = [d for d in report.diagnostics if d.rule == "SL902"]
    assert "ran out of the 1024 MB memory limit at batch=1 and batch=3" in d.message
    assert "ConstantOfShape" in d.message


def _external(tmp_path: Path) -> Path:
    m = baked_model()
    path = tmp_path / "ext.onnx"
    onnx.save(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="ext.onnx.data", size_threshold=0)
    return path


def test_external_weights_are_loaded_by_verify_only(tmp_path):
    path = _external(tmp_path)
    prepared = V.prepare(path)
    assert prepared.weights.startswith("external data loaded")
    w = next(t for t in prepared.model.graph.initializer if t.name == "w")
    np.testing.assert_array_equal(numpy_helper.to_array(w), numpy_helper.to_array(next(t for t in baked_model().graph.initializer if t.name == "w")))


def test_absent_external_weights_become_random_weights_and_the_report_says_so(tmp_path, rules):
    path = _external(tmp_path)
    (tmp_path / "ext.onnx.data").unlink()
    report = V.verify(path, rules=rules)
    assert report.runtime["weights"].startswith("random")
    assert any("random" in n for n in report.runtime["notes"])
    assert [b["status"] for b in report.runtime["bindings"]] == ["fails", "fails", "ok"]


def test_external_data_outside_the_models_folder_is_refused(tmp_path):
    path = _external(tmp_path)
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../../etc/passwd"
    onnx.save(m, str(path))
    report = V.verify(path)
    assert report.error and "outside the model's folder" in report.error


# ------------------------------------------------------------------ providers
def test_cuda_that_is_not_available_is_a_clear_error_never_a_silent_cpu_run(tmp_path, monkeypatch):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    monkeypatch.setattr(V, "provider_available", lambda p: p == "cpu")
    with pytest.raises(V.ProviderUnavailable, match="CUDAExecutionProvider"):
        V.verify(path, provider="cuda")
    result = CliRunner().invoke(main, ["verify", str(path), "--provider", "cuda"])
    assert result.exit_code == 2
    assert "CUDAExecutionProvider" in result.output


def test_a_cuda_session_that_falls_back_to_cpu_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    monkeypatch.setattr(V, "provider_available", lambda p: True)
    # the child sees onnxruntime start the session on CPU only, as it does when CUDA libraries fail to load
    code = (
        "import json, sys\n"
        "print(json.dumps({'event': 'ready'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    print(json.dumps({'event': 'session-start', 'job': 'main'}), flush=True)\n"
        "    print(json.dumps({'event': 'session', 'job': 'main', 'status': 'no-provider', "
        "'message': 'onnxruntime did not start CUDAExecutionProvider'}), flush=True)\n"
        "    print(json.dumps({'event': 'done'}), flush=True)\n"
    )
    monkeypatch.setattr(V, "_worker_command", lambda config: [sys.executable, "-c", code])
    with pytest.raises(V.ProviderUnavailable, match="did not start CUDAExecutionProvider"):
        V.verify(path, provider="cuda")


@pytest.mark.gpu
def test_verify_runs_under_cuda_when_a_gpu_is_present(tmp_path, rules):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime CUDAExecutionProvider not available: no GPU on this machine")
    path = tmp_path / "baked.onnx"
    baked_model(path)
    report = V.verify(path, provider="cuda", rules=rules)
    assert report.runtime["provider"] == "cuda"
    assert [b["status"] for b in report.runtime["bindings"]] == ["fails", "fails", "ok"]
    assert report.runtime["disagreements"] == 0
    healthy = sorted((FIXTURES / "healthy").glob("*.onnx"))[:3]
    for p in healthy:
        r = V.verify(p, provider="cuda", rules=rules)
        assert r.runtime["disagreements"] == 0 and all(b["status"] == "ok" for b in r.runtime["bindings"])


# ------------------------------------------------------------------------ CLI
def test_cli_verify_prints_the_confirmation_and_exits_like_check(tmp_path):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    result = CliRunner().invoke(main, ["verify", str(path)])
    assert result.exit_code == 1, result.output
    assert "[SL501]" in result.output
    assert "runtime: confirmed: onnxruntime fails at batch=1 and batch=3 in MatMul '/fc/MatMul'" in result.output
    assert "batch=4 runs" in result.output


def test_cli_verify_json_extends_the_check_contract(tmp_path):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    result = CliRunner().invoke(main, ["verify", str(path), "--format", "json", "--dim", "batch=6"])
    data = json.loads(result.output)
    f = data["files"][0]
    assert set(f) >= {"path", "status", "error", "diagnostics", "runtime"}
    assert [b["dims"]["batch"] for b in f["runtime"]["bindings"]] == [1, 3, 4, 6]
    d = f["diagnostics"][0]
    assert {"rule", "name", "severity", "node", "op_type", "tensor", "message", "fix", "source"} <= set(d)
    assert d["runtime"]["status"] == "confirmed"


def test_cli_verify_exits_0_on_a_healthy_model():
    path = next((FIXTURES / "healthy").glob("*.onnx"))
    result = CliRunner().invoke(main, ["verify", str(path)])
    assert result.exit_code == 0, result.output
    assert " runs; " in result.output and "0 disagree" in result.output


def test_check_with_verify_annotates_the_findings(tmp_path):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    result = CliRunner().invoke(main, ["check", "--isolated", "--verify", "--format", "json", str(path)])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["files"][0]["diagnostics"][0]["runtime"]["status"] == "confirmed"


def test_check_without_verify_keeps_the_json_contract_unchanged(tmp_path):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    result = CliRunner().invoke(main, ["check", "--isolated", "--format", "json", str(path)])
    f = json.loads(result.output)["files"][0]
    assert "runtime" not in f and "runtime" not in f["diagnostics"][0]


def test_explain_documents_verifys_own_codes():
    result = CliRunner().invoke(main, ["explain", "SL900"])
    assert result.exit_code == 0 and "inference-disagrees-with-runtime" in result.output
