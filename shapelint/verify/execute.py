"""Running the model: every intermediate exposed, at each binding, in the child process.

When a node fails, the graph runs again at that binding without the node
and everything that depends on it (up to ``MAX_ROUNDS`` times): the shapes
that reached it become known (and are compared too), and failures in
independent branches are found.  Node identities are those of the checked
model (``result.model``): the prepared copy has the same nodes in the same
order, with its weights read in.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import onnx

from .codes import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, MAX_KEPT_VALUES_BYTES, MAX_ROUNDS
from .feeds import make_feeds
from .messages import Failure, node_names, translate_ort_message
from .plan import Binding
from .prepare import Prepared
from .worker import RunResult, require_provider, run_jobs, save_model

__all__ = ["Execution", "execute", "exposed", "index_of", "reference_run"]


@dataclass
class Execution:
    """Everything one verify run learned from onnxruntime."""

    bindings: list[Binding]
    main: list[RunResult]
    #: binding index -> the failures found there, first the one the full model hit
    failures: dict[int, list[Failure]] = field(default_factory=dict)
    #: binding index -> the run of the graph without the failing nodes and what depends on them
    upstream: dict[int, RunResult] = field(default_factory=dict)
    provider: str = "cpu"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int | None = DEFAULT_MEMORY_MB


def exposed(model: onnx.ModelProto, keep: list[int] | None = None) -> onnx.ModelProto:
    """A copy whose main-graph node outputs are all graph outputs (untyped).

    With ``keep`` (node indices) only those nodes stay: the part of the
    graph above a failing node.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    names = node_names(model)
    for i, node in enumerate(g.node):
        node.name = names[i]
    if keep is not None:
        keep_set = set(keep)
        nodes = [n for i, n in enumerate(g.node) if i in keep_set]
        del g.node[:]
        g.node.extend(nodes)
        produced = {o for n in nodes for o in n.output if o}
        passthrough = {vi.name for vi in g.input} | {t.name for t in g.initializer}
        olds = [vi for vi in g.output if vi.name in produced or vi.name in passthrough]
        del g.output[:]
        g.output.extend(olds)
    present = {vi.name for vi in g.output}
    for node in g.node:
        for name in node.output:
            if name and name not in present:
                present.add(name)
                g.output.append(onnx.ValueInfoProto(name=name))
    return out


def _cone(model: onnx.ModelProto, index: int) -> set[int]:
    """The main-graph node at ``index`` and every node that depends on its outputs."""
    from ..graph import _all_inputs

    nodes = list(model.graph.node)
    consumers: dict[str, list[int]] = {}
    for j, n in enumerate(nodes):
        for t in set(_all_inputs(n)):
            consumers.setdefault(t, []).append(j)
    out, stack = {index}, [index]
    while stack:
        j = stack.pop()
        for t in nodes[j].output:
            for k in consumers.get(t, ()):
                if k not in out:
                    out.add(k)
                    stack.append(k)
    return out


def index_of(model: onnx.ModelProto, node: onnx.NodeProto) -> int | None:
    for i, n in enumerate(model.graph.node):
        if n is node:
            return i
    return None


def _write_feeds(prepared: Prepared, result, bindings, tmp: str, notes: list[str], probe: bool = False) -> list[str]:
    paths = []
    for i, b in enumerate(bindings):
        feeds, more = make_feeds(prepared.model, result.graph, result.table, b, probe=probe)
        notes.extend(n for n in more if n not in notes)
        p = os.path.join(tmp, f"feeds{i}.npz")
        np.savez(p, **feeds)
        paths.append(p)
    return paths


def execute(prepared: Prepared, result, bindings: list[Binding], provider: str = "cpu",
            timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB,
            keep_values: bool = False, probe: bool = False) -> Execution:
    """Run the model at each binding (see the module doc); ``result`` is the model's check result.

    ``probe``: float inputs hold distinct values that encode each element's
    position (:func:`~shapelint.verify.feeds.probe_values`), for property checks.
    """
    require_provider(provider)
    start = time.perf_counter()
    model = result.model  # node identities for translation; prepared.model is what runs
    ex = Execution(bindings, [], provider=provider, timeout=timeout, memory_mb=memory_mb if provider == "cpu" else None)
    tmp = tempfile.mkdtemp(prefix="shapelint-verify-")
    try:
        feeds_paths = _write_feeds(prepared, result, bindings, tmp, ex.notes, probe)
        main_path = os.path.join(tmp, "main.onnx")
        save_model(exposed(prepared.model), main_path)

        def values_path(job, i):
            return os.path.join(tmp, f"values-{job}-{i}.npz") if keep_values else None

        jobs = [{"id": "main", "model": main_path,
                 "runs": [{"index": i, "feeds": p, "values": values_path("main", i)} for i, p in enumerate(feeds_paths)]}]
        results = run_jobs(jobs, provider, timeout, memory_mb)
        ex.main = [results[("main", i)] for i in range(len(bindings))]
        budget = [MAX_KEPT_VALUES_BYTES]
        _load_values(ex.main, jobs[0], keep_values, budget)
        excluded: dict[int, set[int]] = {}
        for i, r in enumerate(ex.main):
            if r.status in ("error", "memory") and r.message:
                f = translate_ort_message(r.message, model)
                f.phase = r.phase
                ex.failures[i] = [f]
                idx = index_of(model, f.node) if f.node is not None else None
                if idx is not None and r.status == "error":
                    excluded[i] = _cone(model, idx)
        for round_ in range(MAX_ROUNDS):
            if not excluded or time.perf_counter() - start > timeout:
                break
            excluded = _rerun_without(prepared, model, ex, excluded, feeds_paths, tmp, round_, values_path, budget,
                                      keep_values, provider, max(1.0, timeout - (time.perf_counter() - start)), memory_mb)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ex.seconds = time.perf_counter() - start
    return ex


def _rerun_without(prepared, model, ex, excluded, feeds_paths, tmp, round_, values_path, budget, keep_values,
                   provider, left, memory_mb) -> dict[int, set[int]]:
    """One round: the graph without each binding's failing nodes; returns what to exclude next round."""
    groups: dict[frozenset, list[int]] = {}
    for i, ex_set in excluded.items():
        groups.setdefault(frozenset(ex_set), []).append(i)
    jobs = []
    for k, (ex_set, idxs) in enumerate(groups.items()):
        keep = [j for j in range(len(model.graph.node)) if j not in ex_set]
        if not keep:
            continue
        path = os.path.join(tmp, f"without{round_}-{k}.onnx")
        save_model(exposed(prepared.model, keep), path)
        job_id = f"r{round_}g{k}"
        jobs.append({"id": job_id, "model": path,
                     "runs": [{"index": i, "feeds": feeds_paths[i], "values": values_path(job_id, i)} for i in idxs]})
    if not jobs:
        return {}
    res = run_jobs(jobs, provider, left, memory_mb)
    nxt: dict[int, set[int]] = {}
    for job in jobs:
        rs = [res[(job["id"], r["index"])] for r in job["runs"]]
        _load_values(rs, job, keep_values, budget)
        for r, out in zip(job["runs"], rs):
            i = r["index"]
            if out.status == "ok":
                ex.upstream[i] = out
                continue
            if out.status != "error" or not out.message:
                continue
            f = translate_ort_message(out.message, model)
            f.phase = out.phase
            idx = index_of(model, f.node) if f.node is not None else None
            gone = set().union(*(_cone(model, index_of(model, g.node)) for g in ex.failures[i] if g.node is not None))
            if idx is None or idx in gone:
                continue
            ex.failures[i].append(f)
            nxt[i] = gone | _cone(model, idx)
    return nxt


def reference_run(prepared: Prepared, result, bindings: list[Binding], indices: list[int],
                  timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB) -> dict[int, RunResult]:
    """Graph outputs of the model at ``bindings[i]`` for ``i`` in ``indices``, under ``onnx.reference``.

    For a model onnxruntime refuses (an op layout its kernels lack), this is
    what the model means; it runs in the same child process, with the same
    limits, and with the same inputs as :func:`execute`.
    """
    if not indices:
        return {}
    tmp = tempfile.mkdtemp(prefix="shapelint-reference-")
    try:
        path = os.path.join(tmp, "model.onnx")
        save_model(prepared.model, path)
        runs = []
        for i in indices:
            feeds, _ = make_feeds(prepared.model, result.graph, result.table, bindings[i])
            fp = os.path.join(tmp, f"feeds{i}.npz")
            np.savez(fp, **feeds)
            runs.append({"index": i, "feeds": fp, "values": os.path.join(tmp, f"values{i}.npz")})
        job = {"id": "reference", "engine": "reference", "model": path, "runs": runs}
        res = run_jobs([job], "cpu", timeout, memory_mb)
        out = [res[("reference", i)] for i in indices]
        _load_values(out, job, True, [MAX_KEPT_VALUES_BYTES])
        return dict(zip(indices, out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_model(model: onnx.ModelProto, feeds: list[dict], timeout: float = DEFAULT_TIMEOUT,
              memory_mb: int | None = DEFAULT_MEMORY_MB, provider: str = "cpu") -> list[RunResult]:
    """Run a small model (a probe) at each of ``feeds`` in the child, keeping every output's value."""
    tmp = tempfile.mkdtemp(prefix="shapelint-probe-")
    try:
        path = os.path.join(tmp, "probe.onnx")
        save_model(model, path)
        runs = []
        for i, f in enumerate(feeds):
            fp = os.path.join(tmp, f"feeds{i}.npz")
            np.savez(fp, **f)
            runs.append({"index": i, "feeds": fp, "values": os.path.join(tmp, f"values{i}.npz")})
        job = {"id": "probe", "model": path, "runs": runs}
        res = run_jobs([job], provider, timeout, memory_mb)
        out = [res[("probe", i)] for i in range(len(feeds))]
        _load_values(out, job, True, [MAX_KEPT_VALUES_BYTES])
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load_values(results: list[RunResult], job: dict, keep: bool, budget: list[int]) -> None:
    """Read the values the child saved, while ``budget[0]`` bytes last (the rest are not compared)."""
    if not keep:
        return
    for res, r in zip(results, job["runs"]):
        p = r.get("values")
        if res.status != "ok" or not p or not os.path.exists(p):
            continue
        with open(p + ".json", encoding="utf-8") as fh:
            index = json.load(fh)
        res.values = {}
        with np.load(p, allow_pickle=False) as data:
            for name, key in index.items():
                size = _npz_member_bytes(data, key)
                if size is None or size > budget[0]:
                    continue
                res.values[name] = data[key]
                budget[0] -= res.values[name].nbytes


def _npz_member_bytes(data, key: str) -> int | None:
    """The size of one array of an open ``.npz``, from its zip entry (the array is not read)."""
    try:
        return data.zip.getinfo(f"{key}.npy").file_size
    except (AttributeError, KeyError):
        return None
