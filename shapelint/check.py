"""The spine: load → graph → infer → rules → report.

>>> import onnx.parser
>>> m = onnx.parser.parse_model('''
... <ir_version: 8, opset_import: ["" : 17]>
... g (float[batch, 8] x, float[4, 3] w) => (y) { y = MatMul(x, w) }''')
>>> [d.rule for d in check(m).diagnostics]
['SL103']
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time

import onnx

from .diagnostics import FileReport
from .graph import ModelGraph
from .infer import infer
from .load import LoadError, load_model, validate_model
from .plugins import load_rules
from .result import CheckResult, CheckSettings
from .runner import run_rules, select_rules

__all__ = ["CheckResult", "CheckSettings", "check", "check_file", "check_paths", "collect_paths"]

logger = logging.getLogger(__name__)


def check(
    model_or_path: onnx.ModelProto | str | os.PathLike,
    *,
    select=None,
    ignore=None,
    bindings: dict[str, int] | None = None,
    rules=None,
    options: dict | None = None,
    severity_overrides: dict | None = None,
    rule_options: dict[str, dict] | None = None,
    missing_weights_ok: bool = False,
) -> CheckResult:
    """Check one model; a file that cannot be read gives a report with ``error`` set.

    Returns a :class:`~shapelint.result.CheckResult`: the report, plus the
    model, graph, shape table and analyses that ``verify``, ``fix`` and
    ``--graph`` reuse, and the settings (``result.settings``) to check an
    edited copy the same way.  ``missing_weights_ok``: absent external-data
    files are not an error (``verify`` runs with random weights then).
    """
    start = time.perf_counter()
    settings = CheckSettings.make(select=select, ignore=ignore, bindings=bindings, rules=rules, options=options,
                                  severity_overrides=severity_overrides, rule_options=rule_options,
                                  missing_weights_ok=missing_weights_ok)
    path = "<model>" if isinstance(model_or_path, onnx.ModelProto) else os.fspath(model_or_path)
    try:
        if isinstance(model_or_path, onnx.ModelProto):
            model = model_or_path
            validate_model(model)  # the loader's checks, for a model built in memory too
        else:
            model = load_model(model_or_path, missing_weights_ok=missing_weights_ok)
    except LoadError as exc:
        return CheckResult(path, error=str(exc), seconds=time.perf_counter() - start, settings=settings)
    with _fewer_gc_passes():
        mg = ModelGraph.from_model(model)
        table = infer(mg, bindings)
        chosen = select_rules(rules if rules is not None else load_rules(), select, ignore)
        skipped: list = []
        diags = run_rules(chosen, mg, table, path, options, severity_overrides, rule_options=rule_options,
                          skipped=skipped)
        recurrences = _recurrence_coverage(table, skipped)
    return CheckResult(path, diags, seconds=time.perf_counter() - start, skipped=skipped, recurrences=recurrences,
                       model=model, graph=mg, table=table, settings=settings)


def _recurrence_coverage(table, skipped: list) -> dict | None:
    """How many recurrences the sequence rules could read whole; each one they could not is a skip.

    Known only where a rule asked for the axis map (a sequence rule ran): ``None`` otherwise.
    """
    from .axes import analyse

    am = table.analyses.peek(analyse)
    if am is None:
        return None
    undecided = 0
    for rc in am.recurrences:
        axes = am.axes(rc.tensor)
        why = None
        if axes is None:
            why = "its input's rank is unknown"
            t, node = rc.tensor, None
            for _ in range(32):  # back to the op where the trail went cold
                p = am.graph.producer(t)
                if p is None or not p.input or am.axes(p.input[0]) is not None:
                    node = p
                    break
                t = p.input[0]
            if node is not None:
                why += f" (from {node.op_type} {node.name or node.output[0]!r}, whose output is not followed)"
        else:
            blind = [k for k, ax in enumerate(axes) if any(f.source.kind == "opaque" for f in ax or ())]
            if blind:
                ops = sorted({f.source.node.op_type for k in blind for f in axes[k]
                              if f.source.kind == "opaque" and f.source.node is not None})
                why = (f"what axis {', '.join(map(str, blind))} of its input holds is unknown"
                       + (f" ({', '.join(ops)} not followed)" if ops else ""))
        if why is not None:
            undecided += 1
            skipped.append({"rule": "sequence", "reason": f"{rc.describe()}: {why}"})
    return {"total": len(am.recurrences), "undecided": undecided}


@contextlib.contextmanager
def _fewer_gc_passes():
    """Collect cycles less often while one model is checked.

    Checking allocates millions of small objects that live until the end of
    the check and form almost no cycles; with the default thresholds Python
    rescans all of them in repeated full collections (about a tenth of the time
    on a 10^5-node graph, for nothing collected).  mypy raises its thresholds
    for the same reason.  Restored afterwards, also on errors.
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], 100_000), max(old[1], 20), max(old[2], 20))
    try:
        yield
    finally:
        gc.set_threshold(*old)


check_file = check


def collect_paths(paths) -> list[str]:
    """Files as given, folders searched recursively for ``*.onnx``, globs expanded.

    Folders skip the default excludes (``.git``, ``.venv``, ``node_modules``,
    …) and what ``.gitignore`` files ignore; see :mod:`shapelint.discovery`.
    A path that matches nothing is kept, so its report says "no such file".
    """
    from .discovery import discover

    return discover(paths).files


def _check_for_pool(args):
    path, kwargs = args
    return _check_one(path, kwargs)[0]


def _check_one(path: str, kwargs: dict) -> tuple[FileReport, list[str] | None]:
    """One file's plain report, and (``kwargs["data_files"]``) the external-data locations its model names.

    The locations are what the result cache stamps next to the model's
    hash; None when the model was not read.
    """
    after = kwargs.get("after")
    want_data = kwargs.get("data_files", False)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("after", "data_files")}
    data_files = None
    try:
        report = check(path, **kwargs)
        if want_data and report.model is not None:
            from .load import external_data_locations

            data_files = sorted({loc for _name, loc in external_data_locations(report.model)})
        if after is not None:  # verify, pictures: on the same result, in the same process, before it is freed
            report = after(report)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one file never stops the run
        logger.debug("check crashed on %s", path, exc_info=True)
        return FileReport(path, error=f"internal error while checking: {type(exc).__name__}: {exc}"), None
    if isinstance(report, CheckResult):
        report = report.release()  # graphs and tables stay in the process that made them
    for d in report.diagnostics:
        d.edit = None  # graph edits hold callables; they do not cross processes (``d.fixable`` says there was one)
    return report, data_files


def check_paths(paths, jobs: int = 1, progress=None, after=None, cache=None, scheduler=None, **kwargs):
    """Check many files, in worker processes when ``jobs > 1``; reports keep the input order.

    ``jobs`` is capped at the CPUs this process may use.  A worker that dies
    (SIGKILL, the OOM killer) costs the file it held, reported as an error;
    a new worker takes its place for the files left.  ``after(result)``, when
    given, runs on each file's :class:`~shapelint.result.CheckResult` in the
    process that checked it (``verify``, ``--graph``) and returns the report
    to keep; it must be picklable, and its ``close()``, if any, runs when a
    worker stops.  ``progress(report)`` is called in this process as each
    file finishes (cached ones first).

    ``cache``: a :class:`~shapelint.cache.ResultCache`, a folder to open one
    in, or True (``.shapelint_cache`` in the working directory): a file whose
    bytes, rules and settings are unchanged since it was stored is not
    checked again, and each file checked is stored.  Ignored when ``after``
    is given (``verify`` and pictures need the graph).

    ``scheduler``: check on a Dask cluster instead of local processes (see
    :mod:`shapelint.cluster`): ``"tcp://HOST:PORT"``, ``"local"`` or
    ``"local:N"`` (a local cluster of N worker processes, started and stopped
    here), or a ``distributed.Client``.  Files the cache holds are never sent.
    """
    from .config import default_jobs
    from .diagnostics import RunReport

    start = time.perf_counter()
    files = collect_paths(paths)
    if "rules" not in kwargs or kwargs["rules"] is None:
        kwargs["rules"] = list(load_rules())
    if after is not None:
        kwargs["after"] = after
        cache = None
    if cache is False:
        cache = None
    if cache is not None and not hasattr(cache, "lookup"):
        from .cache import ResultCache, default_cache_dir

        cache = ResultCache(default_cache_dir(None) if cache is True else cache)
    results: list[FileReport | None] = [None] * len(files)
    probes: dict = {}
    todo = list(range(len(files)))
    if cache is not None and files:
        cache.bind(kwargs)
        kwargs["data_files"] = True
        todo = []
        for index, (report, probe) in enumerate(_lookups(cache, files)):
            if report is None:
                probes[index] = probe
                todo.append(index)
            else:
                results[index] = report
                if progress:
                    progress(report)

    def finish(index: int, report: FileReport, data_files) -> None:
        results[index] = report
        if cache is not None:
            cache.store(probes.get(index), report, data_files)
        if progress:
            progress(report)

    items = [(index, files[index]) for index in todo]
    if scheduler is not None:
        from .cluster import run_on_cluster

        if items:
            run_on_cluster(items, kwargs, scheduler, finish)
    else:
        jobs = max(1, min(jobs, default_jobs(), len(items)))
        if jobs > 1:
            _run_pool(items, kwargs, jobs, finish)
        else:
            for index, path in items:
                finish(index, *_check_one(path, kwargs))
    return RunReport(files=[r for r in results if r is not None], seconds=time.perf_counter() - start)


def _lookups(cache, files: list[str]):
    """The cache's answer for each file, in order; hashing overlaps in a few threads (hashlib releases the GIL)."""
    if len(files) < 16:
        return [cache.lookup(f) for f in files]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(cache.lookup, files))


def _pool_worker(conn, kwargs) -> None:
    """A worker process: check each path it is sent, answer with its report, until told to stop."""
    try:
        while True:
            item = conn.recv()
            if item is None:
                return
            index, path = item
            conn.send((index, *_check_one(path, kwargs)))
    except (EOFError, OSError, KeyboardInterrupt):
        return
    finally:  # a forked worker skips atexit: what the hook started (verify's onnxruntime child) stops here
        close = getattr(kwargs.get("after"), "close", None)
        if close is not None:
            close()


def _died(proc) -> str:
    import signal

    rc = proc.exitcode
    if rc is not None and rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def _run_pool(items: list[tuple[int, str]], kwargs: dict, jobs: int, finish) -> None:
    """``jobs`` worker processes, each holding one file at a time, so a dead worker costs exactly its file.

    ``items`` are ``(index, path)``; ``finish(index, report, data_files)`` is
    called in this process as each file is done.

    (``concurrent.futures`` cannot say which file a killed worker held, and
    a BrokenProcessPool ends the whole run.)
    """
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context()
    files = dict(items)
    todo = [index for index, _ in reversed(items)]  # popped from the end: input order
    busy: dict = {}  # connection -> (process, index or None)

    def spawn():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_pool_worker, args=(child, kwargs), daemon=True)
        proc.start()
        child.close()
        busy[parent] = (proc, None)
        feed(parent)

    def feed(conn):
        proc, _ = busy[conn]
        if not todo:
            busy[conn] = (proc, None)
            return
        index = todo.pop()
        busy[conn] = (proc, index)
        try:
            conn.send((index, files[index]))
        except OSError:
            pass  # it died already: its sentinel says so next

    clean = False
    try:
        for _ in range(jobs):
            spawn()
        while any(index is not None for _, index in busy.values()):
            conns = [c for c, (_, index) in busy.items() if index is not None]
            ready = wait(conns + [busy[c][0].sentinel for c in conns])
            for conn in conns:
                proc, index = busy[conn]
                if conn in ready or proc.sentinel in ready:
                    try:
                        got = conn.recv() if conn.poll() else None
                    except (EOFError, OSError):
                        got = None
                    if got is not None:
                        finish(*got)
                        feed(conn)
                        continue
                    if proc.is_alive() and proc.sentinel not in ready:
                        continue
                    proc.join()
                    logger.debug("worker %s died on %s", proc.pid, files[index])
                    finish(index, FileReport(files[index], error=f"the worker process checking this file died "
                                                                  f"({_died(proc)}; out of memory?)"), None)
                    conn.close()
                    del busy[conn]
                    if todo:
                        spawn()
        clean = True
    finally:  # idle workers are told to stop; after an interrupt every worker is killed at once
        for conn, (proc, _) in list(busy.items()):
            try:
                conn.send(None)
            except OSError:
                pass
        for conn, (proc, _) in list(busy.items()):
            proc.join(timeout=5 if clean else 0)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
