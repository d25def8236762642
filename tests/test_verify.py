"""``shapelint verify``: every fixture under onnxruntime, and the child process's failure modes.

What onnxruntime does with each bad fixture was recorded when the fixtures
were made (``fixtures/runtime_expect.json``, by ``fixtures/record_runtime.py``
with onnxruntime alone, at a fixed grid of bindings): verify must agree at
every binding it shares with the record, find a failure whenever the record
has one, and never find an inferred shape that differs from onnxruntime's
(SL900).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import numpy_helper

from shapelint import verify as V
from shapelint.check import check
from shapelint.cli import main
from shapelint.graph import ModelGraph
from shapelint.infer import infer
from shapelint.verify import worker as W

from .conftest import FIXTURES, expected_pairs, fixture_files, parse

FILES = fixture_files()


#: what onnxruntime does with each bad fixture at fixed bindings, recorded by fixtures/record_runtime.py
#: (onnxruntime alone, no shapelint): the truth verify is compared with, never a run made in the same test
RECORD = json.loads((FIXTURES / "runtime_expect.json").read_text(encoding="utf-8"))["fixtures"]


def recorded(path: Path) -> dict:
    """``{binding key: "runs" | (node, op, phase)}`` for one fixture, from the record."""
    entry = RECORD[str(path.relative_to(FIXTURES))]
    out = {k: "runs" for k in entry["runs"]}
    for f in entry["fails"]:
        out.update({k: (f["node"], f["op"], f["phase"]) for k in f["at"]})
    return out


def binding_key(dims: dict, symbols: list[str]) -> str:
    return ",".join(f"{k}={dims[k]}" for k in symbols)


@pytest.fixture(scope="module")
def verified(rules):
    """Each fixture verified once, shared by the tests below."""
    cache: dict[Path, object] = {}

    def get(path: Path):
        if path not in cache:
            cache[path] = V.verify(path, rules=rules).release()  # the report only: graphs and tables stay small
        return cache[path]

    return get


def symbols_of(path: Path) -> set[str]:
    return set(V.input_symbols(check(path)))


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


def test_every_bad_fixture_has_a_recorded_runtime_expectation():
    missing = [str(p.relative_to(FIXTURES)) for p in BAD if str(p.relative_to(FIXTURES)) not in RECORD]
    assert not missing, f"run python fixtures/record_runtime.py: {missing}"


@pytest.mark.parametrize("path", BAD, ids=[str(p.relative_to(FIXTURES)) for p in BAD])
def test_a_bad_fixture_behaves_in_onnxruntime_as_recorded(path, verified):
    """verify agrees with the recorded onnxruntime runs, binding by binding, and finds what they show."""
    record = recorded(path)
    entry = RECORD[str(path.relative_to(FIXTURES))]
    report = verified(path)
    rows = report.runtime["bindings"]
    compared = 0
    for row in rows:
        want = record.get(binding_key(row["dims"], entry["symbols"]))
        if want is None:
            continue  # a binding the grid does not hold
        compared += 1
        if want == "runs":
            assert row["status"] == "ok", (row, want)
        else:
            node, op, phase = want
            assert row["status"] == "fails", (row, want)
            assert row["phase"] == phase and (op is None or row["op_type"] == op), (row, want)
            assert node is None or row["node"] == node, (row, want)
    assert compared, f"none of verify's bindings {[r['dims'] for r in rows]} is in the record"
    failing = [r for r in rows if r["status"] == "fails"]
    fails_somewhere = any(v != "runs" for v in record.values())
    assert bool(failing) == fails_somewhere, (rows, "the record fails somewhere" if fails_somewhere else "it never fails")
    if not failing:
        expected = set(expected_pairs(path))
        found = [d for d in report.diagnostics if (d.rule, d.node) in expected]
        assert all(d.runtime["status"] in ("not-reproduced", "confirmed") and not d.runtime["fails"] for d in found)
        assert not [d for d in report.diagnostics if d.rule == "SL901"]
        return
    # the mistake shows at some binding: verify's plan exposes it, and every confirmed finding is an error (exit 1)
    expected = set(expected_pairs(path))
    found = [d for d in report.diagnostics if (d.rule, d.node) in expected]
    missed = expected - {(d.rule, d.node) for d in found}
    sl901 = [d for d in report.diagnostics if d.rule == "SL901"]
    assert all(d.runtime["status"] == "confirmed" for d in found), [d.runtime["summary"] for d in found]
    assert all(d.severity == "error" for d in found if d.runtime["fails"])
    if not missed:
        assert not sl901, [d.message for d in sl901]
    else:  # static rules missed it: verify reports it, or another finding on that path explains it
        others = [d for d in report.diagnostics if d.runtime and d.runtime["status"] == "confirmed"]
        assert sl901 or others, missed
    if path.parent.name.startswith("SL5"):
        # a baked-in traced size: it runs at the traced size (when the model shows it) and fails at another
        traced = [b for b in rows if any(w.startswith("the traced size") or "valid only when" in w for w in b["why"])]
        assert all(b["status"] == "ok" for b in traced), rows
        assert any(b["status"] == "fails" for b in rows if b not in traced)


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


def plan(model, **check_options):
    result = check(model, **check_options)
    return V.plan_bindings(result), result.graph, result.table


def test_bindings_include_1_another_size_and_the_traced_size_read_from_a_reshape():
    bindings, _, _ = plan(baked_model())
    assert [b.dims["batch"] for b in bindings] == [1, 3, 4]
    assert any("traced" in w for w in bindings[2].why) and any("batch == 4" in w for w in bindings[2].why)


def test_the_size_that_exposes_assumptions_is_a_prime_sharing_no_factor_with_the_literals_and_the_traced_size():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, 3] x) => (y) <int64[2] s = {3, -1}> { y = Reshape(x, s) }""")
    bindings, _, _ = plan(m)
    # 3 is the literal and the traced size: 2 is the smallest prime dividing neither; 5 avoids the traced 3
    assert [b.dims["batch"] for b in bindings] == [1, 2, 5, 3]
    assert "smallest prime" in bindings[1].why[0] and "(3)" in bindings[1].why[0]
    assert bindings[3].why[0].startswith("the traced size")


def test_a_reshape_assuming_divisibility_meets_a_coprime_binding_and_a_divisible_one():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[n, width] x) => (y) <int64[3] s = {0, -1, 2}> { y = Reshape(x, s) }""")
    bindings, _, _ = plan(m)
    by_why = {b.why[0].split(" (")[0].split(":")[0]: b.dims for b in bindings}
    coprime = next(b.dims for b in bindings if "smallest primes" in b.why[0])
    assert coprime == {"n": 3, "width": 5}  # 2 divides the literal 2: the next primes, one each
    divisible = next(b.dims for b in bindings if "divides evenly" in b.why[0])
    assert divisible["width"] % 2 == 0 and "width raised to 4" in next(b.why[0] for b in bindings if b.dims == divisible)
    assert len(by_why) == len(bindings)


def test_the_divisibility_assumption_of_the_issue_is_exposed_at_the_plan_level():
    """((batch*time)//6, 6, F): the old plan chose (6, 1) and (4, 3), both divisible by 6."""
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, time, 16] x) => (y) <int64[3] s = {-1, 6, 16}> { y = Reshape(x, s) }""")
    bindings, _, _ = plan(m)
    assert any((b.dims["batch"] * b.dims["time"]) % 6 for b in bindings if b.dims != {"batch": 1, "time": 1})


def test_a_convolution_keeps_a_positive_output_size():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[1, 1, 4, w] x, float[1, 1, 3, 3] k) => (y) { y = Conv(x, k) }""")
    bindings, _, _ = plan(m)
    assert all(b.dims["w"] >= 3 for b in bindings)
    coprime = next(b for b in bindings if "prime" in b.why[0])
    # 2 leaves no room for the 3-wide kernel, and 3 is where "every dim at 1" was raised to: the next prime
    assert coprime.dims["w"] == 5 and "w raised to 5" in coprime.why[0]
    assert len({b.dims["w"] for b in bindings}) >= 2


def test_dims_of_different_inputs_the_graph_needs_equal_share_a_prime_but_one_inputs_dims_do_not():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[b1, t] x, float[b2, t] y, float[t, b1] z) => (s, u) { s = Add(x, y)  u = Add(x, z) }""")
    bindings, _, _ = plan(m)
    coprime = next(b.dims for b in bindings if "prime" in b.why[0])
    assert coprime["b1"] == coprime["b2"]  # one axis named twice (x's batch and y's)
    assert coprime["t"] != coprime["b1"]  # x + z needs b1 == t: an assumption to expose, not a precondition


def test_dims_pinned_by_dim_stay_pinned_in_every_binding():
    bindings, _, _ = plan(baked_model(), bindings={"batch": 8})
    assert [b.dims for b in bindings] == [{"batch": 8}] and "pinned" in bindings[0].why[0]
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[batch, seq] x) => (y) { y = Relu(x) }""")
    bindings, _, _ = plan(m, bindings={"seq": 12})
    assert {b.dims["seq"] for b in bindings} == {12} and len({b.dims["batch"] for b in bindings}) >= 2


def test_a_binding_the_inputs_do_not_declare_valid_is_marked():
    m = parse("""<ir_version: 8, opset_import: ["" : 17]>
    g (float[n, 4] x, float["n - 1", 4] y) => (z) { z = Relu(x) }""")
    result = check(m)
    assert V.declared_valid(result, {"n": 2}) is None
    assert "would be 0" in V.declared_valid(result, {"n": 1})


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
    bindings, _, _ = plan(m)
    assert [b.dims for b in bindings] == [{"x_dim0": 1}, {"x_dim0": 2}, {"x_dim0": 3}]


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
    C = sys.modules["shapelint.check"]  # the module: ``shapelint.check`` is also the function
    real = C.infer

    def wrong(mg, bindings=None):  # an inference bug: t said to have 5 columns
        table = real(mg, bindings)
        table.tensors["t"].shape = (table.tensors["t"].shape[0], 5)
        return table

    monkeypatch.setattr(C, "infer", wrong)  # verify uses check's shapes: the same bug shows
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
    monkeypatch.setattr(W, "worker_command", lambda config: [sys.executable, "-c", code, json.dumps(config)])


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
    assert "ran out of the 1024 MB memory limit at batch=1, batch=7 and batch=3" in d.message
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
    monkeypatch.setattr(W, "provider_available", lambda p: p == "cpu")
    with pytest.raises(V.ProviderUnavailable, match="CUDAExecutionProvider"):
        V.verify(path, provider="cuda")
    result = CliRunner().invoke(main, ["verify", str(path), "--provider", "cuda"])
    assert result.exit_code == 2
    assert "CUDAExecutionProvider" in result.output


def test_a_cuda_session_that_falls_back_to_cpu_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "baked.onnx"
    baked_model(path)
    monkeypatch.setattr(W, "provider_available", lambda p: True)
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
    monkeypatch.setattr(W, "worker_command", lambda config: [sys.executable, "-c", code])
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
    # the fixtures under CUDA: every tensor has the CPU run's shape wherever both ran (CUDA kernels may refuse or
    # accept other layouts than the CPU ones: a bad fixture's statuses may differ); healthy ones run everywhere
    healthy = sorted((FIXTURES / "healthy").glob("*.onnx"))[:6]
    for p in healthy + BAD[:20]:
        gpu, ex_gpu = V.verify(p, provider="cuda", rules=rules, return_execution=True)
        _cpu, ex_cpu = V.verify(p, provider="cpu", rules=rules, return_execution=True)
        assert gpu.runtime["disagreements"] == 0, p
        if p in healthy:
            assert all(b["status"] == "ok" for b in gpu.runtime["bindings"]), (p, gpu.runtime["bindings"])
        for g, c in zip(ex_gpu.main, ex_cpu.main):
            if g.status == c.status == "ok":
                assert g.shapes == c.shapes, p


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
    assert [b["dims"]["batch"] for b in f["runtime"]["bindings"]] == [6]  # --dim pins batch, as for check
    assert all(b["why"] and "valid" in b for b in f["runtime"]["bindings"])
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
