"""Checking on a Dask cluster (issue 16, point 5): the same reports as ``--jobs 1``, streamed, resumable."""

from __future__ import annotations

import json
import logging
import sys
from importlib.util import find_spec

import pytest
from click.testing import CliRunner

from shapelint.cache import ResultCache
from shapelint.check import check_paths
from shapelint.cli import main
from shapelint.report import render

from .conftest import FIXTURES

HEALTHY = FIXTURES / "healthy"


def run(*args, env=None):
    return CliRunner().invoke(main, ["check", "--isolated", *map(str, args)], env=env)


def one_error_line(res, *words) -> None:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("shapelint: error: "), res.stderr
    for w in words:
        assert w in lines[0], lines[0]


# ---------------------------------------------------------------- without a cluster
def test_without_distributed_scheduler_is_one_line_and_exit_2(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    one_error_line(run("--scheduler", "local:2", HEALTHY), "the dask extra", "pip install distributed")
    one_error_line(run("--scheduler", "tcp://127.0.0.1:8786", HEALTHY), "the dask extra", "pip install distributed")


@pytest.mark.parametrize("value, words", [
    ("127.0.0.1:8786", "expected tcp://HOST:PORT"),
    ("local:0", "1 to 256 workers"),
    ("local:x", "expected tcp://HOST:PORT"),
    ("", "expected tcp://HOST:PORT"),
])
def test_a_bad_scheduler_is_one_line_and_exit_2(value, words):
    one_error_line(run("--scheduler", value, HEALTHY), words)


def test_the_scheduler_runs_the_static_check_only():
    one_error_line(run("--scheduler", "local:2", "--verify", HEALTHY), "--verify and --graph")


# ---------------------------------------------------------------- on a local cluster
needs_dask = pytest.mark.skipif(find_spec("distributed") is None,
                                reason="Dask's distributed is not installed (the dask extra: pip install '.[dask]')")


@pytest.fixture(scope="module")
def client():
    """Two workers in this process (threads): starts in a fraction of a second; the CLI test below uses processes."""
    import gc

    import distributed

    thresholds = gc.get_threshold()  # check() raises them while it runs; two threads may restore them out of order
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0",
                                       silence_logs=logging.ERROR)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()
    gc.set_threshold(*thresholds)


@needs_dask
def test_a_local_cluster_gives_the_same_json_as_one_job_on_the_fixtures(client, rules):
    one = check_paths([FIXTURES], jobs=1, rules=rules)
    seen = []
    got = check_paths([FIXTURES], scheduler=client, rules=rules, progress=seen.append)
    assert render(got, "json") == render(one, "json")
    assert sorted(r.path for r in seen) == sorted(f.path for f in one.files)  # each streamed as it finished


@needs_dask
def test_the_command_line_on_two_worker_processes_matches_jobs_1():
    one = run("--format", "json", "-j", "1", FIXTURES)
    res = run("--format", "json", "--scheduler", "local:2", FIXTURES)
    assert res.exit_code == one.exit_code == 1 and res.stderr == ""
    assert res.stdout == one.stdout


@needs_dask
def test_jsonl_streams_one_report_a_line(client, tmp_path):
    address = client.scheduler.address
    res = run("--format", "jsonl", "--scheduler", address, HEALTHY, tmp_path / "missing.onnx")
    lines = [json.loads(ln) for ln in res.stdout.splitlines()]
    whole = json.loads(run("--format", "json", "-j", "1", HEALTHY, tmp_path / "missing.onnx").stdout)
    assert sorted(lines, key=lambda f: f["path"]) == sorted(whole["files"], key=lambda f: f["path"])
    assert res.exit_code == 2  # the missing file


@needs_dask
def test_a_run_resumes_through_the_cache_and_cached_files_are_never_sent(client, tmp_path, rules, monkeypatch):
    import shapelint.cluster as cluster_module

    sent = []
    real = cluster_module.run_on_cluster
    monkeypatch.setattr(cluster_module, "run_on_cluster", lambda items, *a: sent.append(len(items)) or real(items, *a))
    folder = tmp_path / "cache"
    first = check_paths([HEALTHY], scheduler=client, rules=rules, cache=ResultCache(folder))
    n = len(first.files)
    entries = sorted(folder.rglob("*.json"))
    for entry in entries[: n // 2]:  # as if the first run had stopped half-way
        entry.unlink()
    again = ResultCache(folder)
    second = check_paths([HEALTHY], scheduler=client, rules=rules, cache=again)
    assert sent == [n, n // 2] and again.hits == n - n // 2
    assert render(second, "json") == render(first, "json")
    # everything cached: the scheduler is never contacted (this address has nothing listening)
    third = check_paths([HEALTHY], scheduler="tcp://127.0.0.1:9", rules=rules, cache=ResultCache(folder))
    assert render(third, "json") == render(first, "json") and len(sent) == 2


@needs_dask
def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    res = run("--no-cache", "--scheduler", "tcp://127.0.0.1:9", HEALTHY, env={"SHAPELINT_SCHEDULER_TIMEOUT": "1s"})
    one_error_line(res, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")


@needs_dask
def test_a_worker_with_other_code_checks_nothing(rules):
    from shapelint.cluster import _Job, _remote_check

    job = _Job({"rules": rules}, environment="0" * 64)
    report, data_files = _remote_check(str(HEALTHY / "mlp_ts.onnx"), job)
    assert "another shapelint or rule set" in report.error and data_files is None
