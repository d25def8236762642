"""Fuzzing the command line: a derandomised slice of tests/fuzzing_cli.py, and its corpus of past failures.

The slice runs :data:`CI_CASES` cases of the CLI fuzz target (configs,
baselines, output paths, flags, models, ``--jobs`` worker death, verify,
fix) with the campaign's oracles; a longer campaign is
``python -m tests.fuzzing_cli --cases 10000 --seed 1`` (docs/robustness.md).
Every invocation that once broke the CLI is in ``tests/corpus/cli/`` and is
replayed here with the exit status and words its entry expects.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from . import fuzzing_cli as F

CI_CASES = int(os.environ.get("SHAPELINT_CLI_FUZZ_CASES", "120"))
CI_SEED = 20240601
CORPUS = Path(__file__).resolve().parent / "corpus" / "cli"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    F._warm()
    return tmp_path_factory.mktemp("cli-fuzz")


def test_a_derandomised_slice_of_the_cli_fuzz_target_finds_nothing(root):
    failures, kinds, modes = [], {}, {}
    for i in range(CI_CASES):
        case = F.generate(CI_SEED * 1_000_000 + i, subprocess_fraction=0.03)
        rec = F.run_case(case, root)
        kinds[case.kind] = kinds.get(case.kind, 0) + 1
        modes[rec["mode"]] = modes.get(rec["mode"], 0) + 1
        if rec["problems"]:
            failures.append(f"seed {case.seed} ({case.kind}, {rec['mode']}; replay: python -m tests.fuzzing_cli "
                            f"--replay {case.seed} -v): {rec['problems']} args={case.args!r}")
    assert not failures, "\n".join(failures)
    assert len(kinds) >= 8 and modes.get("subprocess", 0) >= 1, (kinds, modes)


def test_the_same_seed_gives_the_same_case():
    a, b = F.generate(123456), F.generate(123456)
    assert a.to_json() == b.to_json()
    assert F.generate(123457).to_json() != a.to_json()


def _corpus():
    return [pytest.param(p, id=p.stem) for p in sorted(CORPUS.glob("*.json"))]


@pytest.mark.parametrize("path", _corpus())
def test_every_invocation_that_once_broke_the_cli_now_passes_the_oracles(root, path):
    doc = json.loads(path.read_text())
    case = F.Case.from_json(doc)
    rec = F.run_case(case, root)
    assert rec["problems"] == [], f"{path.name} ({doc['what']}): {rec['problems']}"
    res = rec["result"]
    expect = doc["expect"]
    if expect.get("exit") is not None:
        assert res["exit"] == expect["exit"], (res["exit"], res["stdout"], res["stderr"])
    assert expect["words"] in res["stdout"] + res["stderr"], (res["stdout"], res["stderr"])


def test_the_killed_worker_oracle_sees_a_worker_die(root):
    """The jobs_death cases are not vacuous: with 2 CPUs or more a worker really is killed on victim.onnx."""
    from shapelint.config import default_jobs

    if default_jobs() < 2:
        pytest.skip("one CPU: --jobs runs in-process, no worker to kill")
    case = F.Case(0, "jobs_death", ["check", "--isolated", "--jobs", "2", "--format", "json", "f0.onnx", "victim.onnx", "f1.onnx"])
    for name in ("f0.onnx", "victim.onnx", "f1.onnx"):
        case.files[name] = F.fixture(__import__("random").Random(1), "good_")
    case.protected = sorted(case.files)
    case.killer, case.victim = True, "victim.onnx"
    rec = F.run_case(case, root)
    assert rec["problems"] == [] and rec["outcome"] == "worker-killed", rec
    files = {os.path.basename(f["path"]): f for f in json.loads(rec["result"]["stdout"])["files"]}
    assert "died" in files["victim.onnx"]["error"] and files["f0.onnx"]["error"] is None and files["f1.onnx"]["error"] is None


def test_a_report_into_a_fifo_that_a_process_reads_is_still_written(tmp_path):
    """The FIFO fix refuses only a FIFO nobody reads: ``check -o pipe`` with ``cat pipe`` running still works."""
    import threading

    from shapelint.safeio import atomic_write

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    for _ in range(200):  # until the reader has the FIFO open
        try:
            atomic_write(fifo, "report\n" * 20_000)  # more than a pipe buffer: the write blocks until read
            break
        except OSError:
            import time

            time.sleep(0.01)
    reader.join(timeout=10)
    assert got == [b"report\n" * 20_000]
    assert fifo.is_fifo()
