"""Fuzzing: hostile files never crash, hang or flood; valid random graphs give no conflict.

Every case runs ``shapelint.check.check`` in a forked child with a time limit
(:data:`CASE_SECONDS`) and a memory limit, so a hang or a memory bomb fails
the test instead of stalling CI.  CI runs a bounded, derandomized number of
cases; a longer campaign is one environment variable away::

    SHAPELINT_FUZZ_EXAMPLES=20000 SHAPELINT_FUZZ_KEEP_GOING=1 \\
    SHAPELINT_FUZZ_SAVE=/tmp/fuzz pytest tests/test_fuzz.py -p no:cacheprovider

``SHAPELINT_FUZZ_KEEP_GOING`` records failures under ``SHAPELINT_FUZZ_SAVE``
(one file per failing input plus ``summary-<test>.json``) instead of
stopping at the first; files that once broke shapelint belong in
``tests/corpus/`` (see ``tests/corpus/README.md``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings

from .fuzzing import BINDINGS, mutated_bytes, mutated_models, seed_bytes, valid_graphs
from .isolated import run_isolated, summarize_check

#: wall-clock limit for one file (load + infer + rules), in seconds
CASE_SECONDS = 5.0
ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"

_CAMPAIGN = int(os.environ.get("SHAPELINT_FUZZ_EXAMPLES", "0"))
_KEEP_GOING = bool(os.environ.get("SHAPELINT_FUZZ_KEEP_GOING"))
_SAVE = os.environ.get("SHAPELINT_FUZZ_SAVE")


def _settings(ci_examples: int):
    return settings(
        max_examples=_CAMPAIGN or ci_examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example],
    )


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory):
    """Where each case is written; holds a real ``w.bin`` and a FIFO ``fifo.bin``.

    External data naming ``fifo.bin`` would block forever if the loader ever
    opened it: the time limit turns that into a failure.
    """
    d = tmp_path_factory.mktemp("fuzz")
    (d / "w.bin").write_bytes(b"\0" * 4096)
    os.mkfifo(d / "fifo.bin")
    # warm the parent: children inherit imports, entry points and sympy caches
    for data in seed_bytes()[:3]:
        (d / "warm.onnx").write_bytes(data)
        summarize_check(str(d / "warm.onnx"))
    return d


class _Tally:
    """Counts of what the cases did; written out in campaign mode."""

    def __init__(self):
        self.counts: dict[str, Counter] = {}
        self.failures: dict[str, list[str]] = {}
        self.swallowed: dict[str, Counter] = {}

    def add(self, test: str, outcome: str, problem: str | None = None, swallowed=()):
        self.counts.setdefault(test, Counter())[outcome] += 1
        if _SAVE and sum(self.counts[test].values()) % 500 == 0:
            self.dump(test)  # a long campaign shows its progress
        if problem:
            self.failures.setdefault(test, []).append(problem)
        for msg in swallowed:
            self.swallowed.setdefault(test, Counter())[msg.split(":")[0]] += 1

    def dump(self, test: str):
        if not _SAVE:
            return
        Path(_SAVE).mkdir(parents=True, exist_ok=True)
        out = {
            "cases": sum(self.counts.get(test, Counter()).values()),
            "outcomes": dict(self.counts.get(test, Counter())),
            "failures": self.failures.get(test, []),
            "swallowed_handler_errors": dict(self.swallowed.get(test, Counter()).most_common()),
        }
        (Path(_SAVE) / f"summary-{test}.json").write_text(json.dumps(out, indent=2))


TALLY = _Tally()


#: Rule crashes already reported, with a strict-xfail reproducer in tests/corpus/: (rule, exception, file).
#: The fuzz tests count them as "known" instead of failing; remove an entry with its fix (the corpus
#: entry then passes, and its xfail mark must go too).
KNOWN_RULE_CRASHES: dict[tuple[str, str, str], str] = {}


def _known_crash(message: str) -> str | None:
    """The corpus entry of an already-reported rule crash, from its "internal error in rule" message."""
    m = re.match(r"internal error in rule (\w+) .*?: (\w+): .* at ([\w.]+):\d+$", message)
    return KNOWN_RULE_CRASHES.get(m.groups()) if m else None


def _problem(outcome, allow_known: bool = False) -> str | None:
    """Why a case failed, or None: no escape, no hang, errors in one line."""
    if outcome.status != "ok":
        return f"{outcome.status}: {outcome.detail.strip().splitlines()[-1] if outcome.detail.strip() else ''}"
    value = outcome.value
    err = value["error"]
    if err is not None and (not err.strip() or "\n" in err):
        return f"error is not one line: {err!r}"
    if err is not None and err.startswith("internal error"):
        return f"internal error: {err}"
    for rule, _sev, _node, message in value["diagnostics"]:
        if message.startswith("internal error in rule") and not (allow_known and _known_crash(message)):
            return f"rule crashed: {message}"
    return None


def _run_case(test: str, case_dir: Path, data: bytes):
    path = case_dir / "case.onnx"
    path.write_bytes(data)
    outcome = run_isolated(summarize_check, str(path), seconds=CASE_SECONDS)
    problem = _problem(outcome, allow_known=True)
    kind = outcome.status if outcome.status != "ok" else ("error" if outcome.value["error"] else "checked")
    if problem is None and _problem(outcome) is not None:
        kind = "known-rule-crash"
    TALLY.add(test, kind, problem, outcome.value["swallowed"] if outcome.status == "ok" else ())
    swallowed = outcome.status == "ok" and outcome.value["swallowed"]
    if (problem is not None or swallowed) and _SAVE:
        digest = hashlib.sha256(data).hexdigest()[:12]
        Path(_SAVE).mkdir(parents=True, exist_ok=True)
        (Path(_SAVE) / f"{test}-{'soft-' if problem is None else ''}{digest}.onnx").write_bytes(data)
    if problem is not None:
        digest = hashlib.sha256(data).hexdigest()[:12]
        if not _KEEP_GOING:
            pytest.fail(f"{problem} (input sha256 {digest}, {len(data)} bytes)")


@_settings(ci_examples=100)
@given(data=mutated_bytes())
def test_truncated_or_corrupted_bytes_never_escape_check(case_dir, data):
    _run_case("bytes", case_dir, data)


@_settings(ci_examples=100)
@given(data=mutated_models())
def test_broken_protobuf_fields_never_escape_check(case_dir, data):
    _run_case("fields", case_dir, data)


# ------------------------------------------------------------ soundness


def _infer_under_bindings(path: str, outputs: list[str]) -> dict:
    from shapelint.graph import ModelGraph
    from shapelint.infer import infer
    from shapelint.load import load_model

    summary = summarize_check(path)
    mg = ModelGraph.from_model(load_model(path))
    table = infer(mg, dict(BINDINGS))
    shapes = {}
    for name in outputs:
        shape = table.shape(name)
        shapes[name] = None if shape is None else [d if isinstance(d, int) else None for d in shape]
    summary["shapes"] = shapes
    return summary


@_settings(ci_examples=40)
@given(case=valid_graphs())
def test_random_valid_graphs_give_no_conflict_and_the_shapes_onnxruntime_computes(case_dir, case):
    onnx.checker.check_model(case.model, full_check=True)  # a generator bug, not a shapelint one: always fails
    data = case.model.SerializeToString()
    path = case_dir / "valid.onnx"
    path.write_bytes(data)
    outcome = run_isolated(_infer_under_bindings, str(path), case.outputs, seconds=CASE_SECONDS)
    problem = _problem(outcome) or _unsound(outcome.value, case, data)
    TALLY.add("valid", "unsound" if problem and outcome.status == "ok" else outcome.status if outcome.status != "ok" else "checked",
              problem)
    if problem is not None:
        if _SAVE:
            Path(_SAVE).mkdir(parents=True, exist_ok=True)
            (Path(_SAVE) / f"valid-{hashlib.sha256(data).hexdigest()[:12]}.onnx").write_bytes(data)
        if not _KEEP_GOING:
            pytest.fail(problem)


def _unsound(got: dict, case, data: bytes) -> str | None:
    """Why shapelint's answer on a valid graph is wrong, or None: no conflict, onnxruntime's shapes."""
    import onnxruntime as ort

    if got["error"] is not None:
        return f"a valid graph was refused: {got['error']}"
    conflicts = [d for d in got["diagnostics"] if d[0].startswith("SL1") or d[0] == "SL002"]
    if conflicts:
        return f"{conflicts} on a valid graph built from {case.ops}"
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {k: np.random.default_rng(0).standard_normal(v).astype(np.float32) for k, v in case.feeds.items()}
    for name, value in zip(case.outputs, sess.run(case.outputs, feeds)):
        inferred = got["shapes"][name]
        if inferred is None:
            continue
        if len(inferred) != value.ndim:
            return f"{name}: rank {len(inferred)} inferred, {value.ndim} at run time ({case.ops})"
        for k, (a, b) in enumerate(zip(inferred, value.shape)):
            if a is not None and a != b:
                return f"{name}: axis {k} inferred {a}, onnxruntime gives {b} ({case.ops}, {BINDINGS})"
    return None


# ------------------------------------------------------------ the CLI


def _hostile_files(folder: Path) -> dict[str, str]:
    """Bad files for one CLI run, each with the status the JSON report must give it."""
    from onnx import TensorProto, helper

    seed = min((p for p in (ROOT / "fixtures" / "healthy").glob("*.onnx")), key=lambda p: p.stat().st_size).read_bytes()
    files = {
        "a_truncated.onnx": (seed[: len(seed) // 3], "error"),
        "b_garbage.onnx": (b"\x08\x07garbage", "error"),
        "c_empty.onnx": (b"", "error"),
        "d_flipped.onnx": (bytes(b ^ 0x5A if i % 97 == 3 else b for i, b in enumerate(seed)), None),
    }
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["(lambda: __import__('os')._exit(77))()", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    code = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                             opset_imports=[helper.make_opsetid("", 17)])
    files["e_code_in_dim_param.onnx"] = (code.SerializeToString(), "ok")  # were it run, the CLI would exit 77
    big = helper.make_tensor("s", TensorProto.INT64, [2], [2**40, 2**40])
    huge = helper.make_model(helper.make_graph(
        [helper.make_node("Constant", [], ["s"], value=big), helper.make_node("ConstantOfShape", ["s"], ["y"])],
        "g", [], [y]), opset_imports=[helper.make_opsetid("", 17)])
    files["f_huge_constant_of_shape.onnx"] = (huge.SerializeToString(), None)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    e = w.external_data.add()
    e.key, e.value = "location", "../../../../etc/passwd"
    ext = helper.make_model(helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])], [y], [w]),
                            opset_imports=[helper.make_opsetid("", 17)])
    files["g_escaping_external_data.onnx"] = (ext.SerializeToString(), "error")
    out = {}
    for name, (data, status) in files.items():
        (folder / name).write_bytes(data)
        out[name] = status
    for k, p in enumerate(sorted((ROOT / "fixtures" / "healthy").glob("*.onnx"), key=lambda p: p.stat().st_size)[:2]):
        (folder / f"z_good{k}.onnx").write_bytes(p.read_bytes())
        out[f"z_good{k}.onnx"] = "ok"
    return out


def test_the_cli_reports_each_bad_file_in_one_line_and_still_checks_the_others(tmp_path):
    expected = _hostile_files(tmp_path)
    res = subprocess.run([sys.executable, "-m", "shapelint.cli", "check", "--format", "json", "--jobs", "1", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    data = json.loads(res.stdout)
    got = {Path(f["path"]).name: f for f in data["files"]}
    assert set(got) == set(expected)
    for name, status in expected.items():
        if status is not None:
            assert got[name]["status"] == status, (name, got[name])
        if got[name]["error"] is not None:
            assert got[name]["error"].strip() and "\n" not in got[name]["error"]
    text = subprocess.run([sys.executable, "-m", "shapelint.cli", "check", "--jobs", "2", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert text.returncode == 2 and "Traceback" not in text.stderr + text.stdout
    failed = sorted(name for name, f in got.items() if f["error"] is not None)
    error_lines = [ln for ln in text.stdout.splitlines() if ": error: " in ln]
    assert sorted(Path(ln.split(": error: ")[0]).name for ln in error_lines) == failed


# ------------------------------------------------------------ the corpus


def _corpus():
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    out = []
    for name in sorted(manifest):
        entry = manifest[name]
        marks = [pytest.mark.xfail(reason=entry["xfail"], strict=True)] if entry.get("xfail") else []
        out.append(pytest.param(name, entry, id=name, marks=marks))
    return out


@pytest.mark.parametrize("name, entry", _corpus())
def test_every_file_that_once_broke_shapelint_is_now_checked_cleanly(case_dir, name, entry):
    """Each corpus file: no escape, no hang, and the outcome its manifest entry records."""
    path = CORPUS / name
    assert path.stat().st_size < 50_000
    # a pending bug (xfail) is given less time: fixed, it answers in well under a second
    outcome = run_isolated(summarize_check, str(path), seconds=2.0 if entry.get("xfail") else CASE_SECONDS)
    problem = _problem(outcome)
    assert problem is None, f"{name}: {problem} ({entry['what']})"
    assert not outcome.value["swallowed"], f"{name}: a handler raised: {outcome.value['swallowed']}"
    expect = entry.get("expect")
    if expect == "error":
        assert outcome.value["error"] is not None, entry["what"]
    elif expect:
        assert outcome.value["error"] is None, outcome.value["error"]
        assert expect in {d[0] for d in outcome.value["diagnostics"]}, entry["what"]


def test_zz_campaign_summary_is_written():
    """Writes the tallies under SHAPELINT_FUZZ_SAVE (campaign mode); last in the file, so it runs last."""
    for test in TALLY.counts:
        TALLY.dump(test)
