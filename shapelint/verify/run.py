"""verify's entry points: one model, a check result, or many paths (``--jobs``, a progress callback).

Every entry goes through :func:`shapelint.check.check` once and works on the
:class:`~shapelint.result.CheckResult` it returns: the static findings are
check's own (same config, ``--dim``, selection and severities), and the
graph, shape table and analyses are reused, never rebuilt.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from ..diagnostics import FileReport, RunReport
from ..load import LoadError
from ..result import CheckResult
from . import worker as _worker
from .annotate import annotate
from .codes import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, ProviderUnavailable, VerifyError
from .execute import execute
from .plan import plan_bindings
from .prepare import prepare

__all__ = ["VerifyHook", "verify", "verify_paths", "verify_result"]

logger = logging.getLogger(__name__)


def verify_result(result: CheckResult, provider: str = "cpu", timeout: float = DEFAULT_TIMEOUT,
                  memory_mb: int | None = DEFAULT_MEMORY_MB, select=None, ignore=None, keep_values: bool = False,
                  return_execution: bool = False):
    """Run the checked model under onnxruntime and annotate ``result`` in place; returns it.

    ``select``/``ignore`` filter verify's own codes (SL900–SL902) as they
    filtered the rules.  Raises :class:`ProviderUnavailable` when
    ``provider`` is missing.
    """
    start = time.perf_counter()
    if result.error is not None or not result.ok:
        return (result, None) if return_execution else result
    try:
        prepared = prepare(result)
    except LoadError as exc:
        result.error = str(exc)
        return (result, None) if return_execution else result
    bindings = plan_bindings(result)
    try:
        ex = execute(prepared, result, bindings, provider=provider, timeout=timeout, memory_mb=memory_mb,
                     keep_values=keep_values)
    except ProviderUnavailable:
        raise
    except VerifyError as exc:
        result.runtime = {"provider": provider, "weights": prepared.weights, "bindings": [], "tensors_compared": 0,
                          "disagreements": 0, "notes": [f"not verified: {exc}"], "seconds": 0.0}
        return (result, None) if return_execution else result
    annotate(result, prepared, result, ex, select=select, ignore=ignore)
    result.seconds += time.perf_counter() - start
    return (result, ex) if return_execution else result


def verify(model_or_path, dims: dict[str, int] | None = None, provider: str = "cpu",
           timeout: float = DEFAULT_TIMEOUT, memory_mb: int | None = DEFAULT_MEMORY_MB, rules=None,
           select=None, ignore=None, static: CheckResult | None = None, keep_values: bool = False,
           return_execution: bool = False, severity_overrides: dict | None = None,
           rule_options: dict | None = None):
    """Check a model, then run it under onnxruntime and confirm the findings.

    Returns the :class:`~shapelint.result.CheckResult` (a ``FileReport``)
    whose diagnostics carry ``runtime`` and whose ``runtime`` summarises the
    bindings run.  ``static``, or a ``CheckResult`` as ``model_or_path``,
    reuses a check already made; otherwise the model is checked with
    ``dims`` pinned (as ``check --dim``), ``rules``, ``select``/``ignore``,
    ``severity_overrides`` and ``rule_options``.  Raises
    :class:`ProviderUnavailable` when ``provider`` is missing; a model that
    cannot be read gives a report with ``error`` set.
    """
    from ..check import check

    if isinstance(static, CheckResult) and static.ok:
        result = static
    elif isinstance(model_or_path, CheckResult):
        result = model_or_path
    else:
        result = check(model_or_path, select=select, ignore=ignore, bindings=dims, rules=rules,
                       severity_overrides=severity_overrides, rule_options=rule_options, missing_weights_ok=True)
    return verify_result(result, provider=provider, timeout=timeout, memory_mb=memory_mb, select=select,
                         ignore=ignore, keep_values=keep_values, return_execution=return_execution)


@dataclass
class VerifyHook:
    """``check_paths(after=VerifyHook(...))``: verify each file right after its check, in the same process."""

    provider: str = "cpu"
    timeout: float = DEFAULT_TIMEOUT
    memory_mb: int | None = DEFAULT_MEMORY_MB
    select: list | None = None
    ignore: list | None = None
    #: intra-op threads of each onnxruntime child (``--jobs`` divides the CPUs)
    threads: int | None = None

    def __call__(self, result: CheckResult) -> FileReport:
        if self.threads:
            _worker.THREADS[0] = self.threads
        try:
            return verify_result(result, provider=self.provider, timeout=self.timeout, memory_mb=self.memory_mb,
                                 select=self.select, ignore=self.ignore)
        except ProviderUnavailable as exc:
            result.error = f"--provider {self.provider}: {exc}"
        except Exception as exc:
            logger.debug("verify crashed on %s", result.path, exc_info=True)
            result.error = f"internal error while verifying: {type(exc).__name__}: {exc}"
        return result

    def close(self) -> None:
        _worker.shutdown_workers()


def verify_paths(paths, dims=None, provider="cpu", timeout=DEFAULT_TIMEOUT, memory_mb=DEFAULT_MEMORY_MB,
                 rules=None, select=None, ignore=None, progress=None, jobs: int = 1,
                 severity_overrides: dict | None = None, rule_options: dict | None = None) -> RunReport:
    """``shapelint verify PATH...``: check and verify each file, ``jobs`` at a time; reports keep the input order.

    Raises :class:`ProviderUnavailable` before anything runs when ``provider`` is missing.
    """
    from ..check import check_paths
    from ..config import default_jobs

    _worker.require_provider(provider)
    jobs = max(1, min(jobs, default_jobs()))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    hook = VerifyHook(provider, timeout, memory_mb, select, ignore, threads)
    return check_paths(paths, jobs=jobs, progress=progress, after=hook, select=select, ignore=ignore, bindings=dims,
                       rules=rules, severity_overrides=severity_overrides, rule_options=rule_options,
                       missing_weights_ok=True)
