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
from .runner import run_rules, select_rules

__all__ = ["check", "check_file", "check_paths", "collect_paths"]

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
) -> FileReport:
    """Check one model; a file that cannot be read gives a report with ``error`` set."""
    start = time.perf_counter()
    path = "<model>" if isinstance(model_or_path, onnx.ModelProto) else os.fspath(model_or_path)
    try:
        if isinstance(model_or_path, onnx.ModelProto):
            model = model_or_path
            validate_model(model)  # the loader's checks, for a model built in memory too
        else:
            model = load_model(model_or_path)
    except LoadError as exc:
        return FileReport(path, error=str(exc), seconds=time.perf_counter() - start)
    with _fewer_gc_passes():
        mg = ModelGraph.from_model(model)
        table = infer(mg, bindings)
        chosen = select_rules(rules if rules is not None else load_rules(), select, ignore)
        diags = run_rules(chosen, mg, table, path, options, severity_overrides, rule_options=rule_options)
    return FileReport(path, diags, seconds=time.perf_counter() - start)


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

    A path that matches nothing is kept, so its report says "no such file".
    """
    import glob
    from pathlib import Path

    out: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(str(f) for f in p.rglob("*.onnx") if f.is_file()))
        elif any(ch in str(raw) for ch in "*?[") and not p.exists():
            hits = sorted(h for h in glob.glob(str(raw), recursive=True) if Path(h).is_file())
            out.extend(hits if hits else [str(raw)])
        else:
            out.append(str(raw))
    seen = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def _check_for_pool(args):
    path, kwargs = args
    try:
        report = check(path, **kwargs)
    except Exception as exc:  # noqa: BLE001 - last line of defence: one file never stops the run
        logger.debug("check crashed on %s", path, exc_info=True)
        return FileReport(path, error=f"internal error while checking: {type(exc).__name__}: {exc}")
    for d in report.diagnostics:
        d.edit = None  # graph edits hold callables; they do not cross processes
    return report


def check_paths(paths, jobs: int = 1, progress=None, **kwargs):
    """Check many files, in worker processes when ``jobs > 1``; reports keep the input order."""
    from .diagnostics import RunReport

    start = time.perf_counter()
    files = collect_paths(paths)
    if "rules" not in kwargs or kwargs["rules"] is None:
        kwargs["rules"] = list(load_rules())
    work = [(p, kwargs) for p in files]
    reports: list[FileReport] = []
    if jobs > 1 and len(files) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(files))) as pool:
            for report in pool.map(_check_for_pool, work, chunksize=max(1, len(files) // (jobs * 8))):
                reports.append(report)
                if progress:
                    progress(report)
    else:
        for item in work:
            report = _check_for_pool(item)
            reports.append(report)
            if progress:
                progress(report)
    return RunReport(files=reports, seconds=time.perf_counter() - start)
