"""Confirm static findings by running the model under onnxruntime.

The runtime side of shapelint, and the only package that reads weights.  It
works on the :class:`~shapelint.result.CheckResult` of ``check`` (same
config, ``--dim``, selection and severities; the graph, shape table and
analyses reused), one module a job:

========================  ===================================================================
:mod:`.prepare`           the weights: the checked model with its external data read in
:mod:`.plan`              binding choice: the sizes of the symbolic dims, and why each
:mod:`.feeds`             the inputs at one binding (token ids below the embedding's rows, ...)
:mod:`.worker`            the onnxruntime child process (:mod:`shapelint.verify_worker`)
:mod:`.execute`           every intermediate exposed, reruns without a failing node
:mod:`.messages`          onnxruntime's messages translated into the node and a clean text
:mod:`.annotate`          findings confirmed / not reproduced; SL900–SL902
:mod:`.properties`        what a fix claims, checked on the fixed copy's runtime values
:mod:`.run`               the entry points: :func:`verify`, :func:`verify_paths`
========================  ===================================================================

Codes of its own:

========  ================================  ==========================================
SL900     inference-disagrees-with-runtime  an inferred shape differs from onnxruntime's
SL901     runtime-failure-unexplained       onnxruntime fails where no finding says why
SL902     runtime-crash                     the child crashed, hung or ran out of memory
========  ================================  ==========================================
"""

from __future__ import annotations

from .annotate import Disagreement, annotate, compare_shapes
from .codes import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    MAX_BINDINGS,
    RUNTIME_CODES,
    ProviderUnavailable,
    VerifyError,
    explain_runtime_code,
)
from .evidence import conditions, evaluate, shape_literals
from .execute import Execution, execute, reference_run, run_model
from .feeds import make_feeds, probe_values
from .messages import Failure, translate_ort_message
from .plan import Binding, declared_valid, input_symbols, plan_bindings
from .prepare import Prepared, prepare
from .run import VerifyHook, verify, verify_paths, verify_result
from .worker import RunResult, provider_available, require_provider, shutdown_workers

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "MAX_BINDINGS",
    "RUNTIME_CODES",
    "Binding",
    "Disagreement",
    "Execution",
    "Failure",
    "Prepared",
    "ProviderUnavailable",
    "RunResult",
    "VerifyError",
    "VerifyHook",
    "annotate",
    "compare_shapes",
    "conditions",
    "declared_valid",
    "evaluate",
    "execute",
    "explain_runtime_code",
    "input_symbols",
    "make_feeds",
    "plan_bindings",
    "prepare",
    "probe_values",
    "provider_available",
    "reference_run",
    "require_provider",
    "run_model",
    "shape_literals",
    "shutdown_workers",
    "translate_ort_message",
    "verify",
    "verify_paths",
    "verify_result",
]
