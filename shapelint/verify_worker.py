"""The child process of ``shapelint verify``: runs models under onnxruntime.

Started by :mod:`shapelint.verify` as ``python -m shapelint.verify_worker
CONFIG_JSON`` and kept alive between requests; it never imports the rest of
shapelint.  It sets its own memory limit first (``RLIMIT_AS`` on Linux), then
reads one request per line on stdin and answers with one JSON event per line
on stdout, flushed each time, so that when a kernel crashes or hangs the
parent knows which run was in flight.

Config: ``{"provider": "cpu" | "cuda", "memory_mb": 4096 | null, "threads": 4, "parent": PID}``;
with ``parent`` the child asks Linux to kill it when that process dies
(``PR_SET_PDEATHSIG``).  The parent starts it with HOME and TMPDIR in a
temp folder of its own, so onnxruntime's cache files are removed with it.

Request::

    {"jobs": [{"id": "main", "model": "/tmp/.../main.onnx",
               "runs": [{"index": 0, "feeds": "/tmp/.../feeds0.npz", "values": null}]}],
     "skip": [["main", 0]]}

A job with ``"engine": "reference"`` runs under ``onnx.reference`` instead
(``shapelint fix`` uses it to compute what a model onnxruntime refuses
would output).

Events: ``ready``, ``fatal`` (cannot run at all), ``session-start``,
``session`` (status ok|error|no-provider), ``start`` (a run began), ``run``
(status ok|error, the shape of every output), ``done`` (the request is
answered).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

__all__ = ["PROVIDERS", "main", "serve"]

logger = logging.getLogger(__name__)

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: values kept for the parent's comparisons (``fix``): per tensor, and per run in all
MAX_VALUE_BYTES = 32 * 2**20
MAX_VALUES_BYTES = 128 * 2**20


def _limit_memory(megabytes) -> None:
    if not megabytes or not sys.platform.startswith("linux"):
        return
    import resource

    limit = int(megabytes) * 2**20
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _die_with_parent(parent) -> None:
    """Linux: SIGKILL this process when the parent dies (even by SIGKILL), so a hung kernel is never orphaned."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - no libc or prctl: the parent still kills us on its normal paths
        return
    if parent and os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(3)


def _describe(value):
    """(shape, kind) of one onnxruntime output."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return [int(d) for d in shape], "tensor"
    if isinstance(value, list):
        return None, "sequence"
    if isinstance(value, dict):
        return None, "map"
    if value is None:
        return None, "optional"
    return None, type(value).__name__


def _session(ort, path, config):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 4
    threads = int(config.get("threads") or 0)
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    provider = PROVIDERS[config.get("provider", "cpu")]
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    return ort.InferenceSession(path, opts, providers=providers)


def answer(request: dict, config: dict, ort, np, emit) -> None:
    """Run every job of one request, emitting events as they happen."""
    want = PROVIDERS[config.get("provider", "cpu")]
    skip = {tuple(s) for s in request.get("skip", ())}
    for job in request["jobs"]:
        runs = [r for r in job["runs"] if (job["id"], r["index"]) not in skip]
        if not runs:
            continue
        emit(event="session-start", job=job["id"])
        t0 = time.perf_counter()
        reference = job.get("engine") == "reference"
        try:
            if reference:  # onnx's own Python implementation: slow, but it runs what a provider refuses
                from onnx.reference import ReferenceEvaluator

                sess = ReferenceEvaluator(job["model"])
            else:
                sess = _session(ort, job["model"], config)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
            emit(event="session", job=job["id"], status="error", message=str(exc), seconds=time.perf_counter() - t0)
            continue
        used = ["onnx.reference"] if reference else sess.get_providers()
        if not reference and want not in used:
            emit(event="session", job=job["id"], status="no-provider", providers=used,
                 message=f"onnxruntime did not start {want} (the session would run on {', '.join(used)})")
            continue
        emit(event="session", job=job["id"], status="ok", providers=used, seconds=time.perf_counter() - t0)
        names = list(sess.output_names) if reference else [o.name for o in sess.get_outputs()]
        for r in runs:
            emit(event="start", job=job["id"], index=r["index"])
            with np.load(r["feeds"], allow_pickle=False) as data:
                feeds = {k: data[k] for k in data.files}
            t0 = time.perf_counter()
            try:
                outs = sess.run(None, feeds)
            except Exception as exc:  # noqa: BLE001
                emit(event="run", job=job["id"], index=r["index"], status="error", message=str(exc),
                     seconds=time.perf_counter() - t0)
                continue
            seconds = time.perf_counter() - t0
            shapes, kinds = {}, {}
            for name, value in zip(names, outs):
                shapes[name], kinds[name] = _describe(value)
            if r.get("values"):
                # the parent compares these in memory: large tensors are left out, so that its memory stays bounded
                arrays, total = {}, 0
                for i, v in enumerate(outs):
                    if isinstance(v, np.ndarray) and v.dtype != object and v.nbytes <= MAX_VALUE_BYTES \
                            and total + v.nbytes <= MAX_VALUES_BYTES:
                        arrays[f"t{i}"] = v
                        total += v.nbytes
                np.savez(r["values"], **arrays)
                with open(r["values"] + ".json", "w", encoding="utf-8") as fh:
                    json.dump({names[int(k[1:])]: k for k in arrays}, fh)
            emit(event="run", job=job["id"], index=r["index"], status="ok", shapes=shapes,
                 kinds={k: v for k, v in kinds.items() if v != "tensor"}, seconds=seconds)
            del outs
        del sess


def serve(config: dict, stdin=None, stdout=None) -> int:
    """Answer requests from ``stdin`` until it closes."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout

    def emit(**event):
        stdout.write(json.dumps(event) + "\n")
        stdout.flush()

    try:
        import numpy as np
        import onnxruntime as ort
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        emit(event="fatal", message=f"cannot import onnxruntime: {type(exc).__name__}: {exc}")
        return 3
    want = PROVIDERS[config.get("provider", "cpu")]
    if want not in ort.get_available_providers():
        emit(event="fatal", status="no-provider",
             message=f"onnxruntime {ort.__version__} has no {want} here (available: {', '.join(ort.get_available_providers())})")
        return 3
    emit(event="ready", version=ort.__version__)
    for line in stdin:
        if not line.strip():
            continue
        answer(json.loads(line), config, ort, np, emit)
        emit(event="done")
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config = json.loads(argv[0]) if argv else {}
    _die_with_parent(config.get("parent"))
    _limit_memory(config.get("memory_mb"))
    # events own the real stdout; anything a library prints goes to stderr
    events = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    return serve(config, stdout=events)


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
