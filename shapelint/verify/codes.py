"""verify's own codes (SL900–SL902), its errors and its limits."""

from __future__ import annotations

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "MAX_BINDINGS",
    "MAX_FEED_BYTES",
    "MAX_KEPT_VALUES_BYTES",
    "MAX_RANDOM_BYTES",
    "MAX_ROUNDS",
    "PROVIDERS",
    "RUNTIME_CODES",
    "SEED",
    "ProviderUnavailable",
    "VerifyError",
    "explain_runtime_code",
]

#: codes verify reports itself: code -> (slug, severity, summary)
RUNTIME_CODES = {
    "SL900": ("inference-disagrees-with-runtime", "error",
              "A shape inferred by shapelint differs from the one onnxruntime computes: a bug in shapelint's inference."),
    "SL901": ("runtime-failure-unexplained", "error",
              "onnxruntime fails on the model at a binding of its dynamic dims, and no static finding explains it."),
    "SL902": ("runtime-crash", "error",
              "onnxruntime crashed, hung or ran out of memory in the child process that ran the model."),
}

_RUNTIME_DOCS = {
    "SL900": """## What it does
Compares every tensor's shape under onnxruntime with the shape shapelint
inferred, evaluated at the same binding of the symbolic dims.

## Why is this bad?
Every static finding rests on inference; a wrong inferred shape can hide a
real mistake or report one that is not there.  It is a bug in shapelint, not
in the model.

## What to do
Report it with the model (or the node, its op type and input shapes from
the message).  The node named is the first one whose output disagrees while
its inputs agree; the count of tensors below it that disagree as a
consequence is given.""",
    "SL901": """## What it does
Reports a node that fails under onnxruntime at one of the bindings verify
runs when no static finding is anchored on that node or above it.

## Why is this bad?
The model breaks for some input sizes and the static rules did not see why:
either a rule is missing, or the failure comes from values (an index out of
range) rather than shapes.

## What to do
Read onnxruntime's message and the shapes that reached the node (given in
the message); the bindings where the model runs are listed too.  verify's
integer inputs are token ids below the embedding's row count, or 0/1.""",
    "SL902": """## What it does
Reports a run of onnxruntime that crashed (a signal), hung past ``--timeout``
or ran out of the ``--memory`` limit in the child process verify starts.

## Why is this bad?
A kernel that crashes takes the serving process with it; one that needs
more memory than expected usually means a shape far larger than intended
(a broadcast or Expand gone wrong).

## What to do
Rerun ``shapelint verify`` with a larger ``--timeout``/``--memory`` to tell
a slow model from a broken one; the binding that crashed is named.""",
}


def explain_runtime_code(code: str) -> str | None:
    """``shapelint explain SL900``: the doc of verify's own codes, or None.

    >>> explain_runtime_code("runtime-crash").splitlines()[0]
    'SL902 (runtime-crash) · error · shapelint verify'
    """
    code = code.upper()
    found = RUNTIME_CODES.get(code) or next((v for k, v in RUNTIME_CODES.items() if v[0] == code.lower()), None)
    if found is None:
        return None
    code = next(k for k, v in RUNTIME_CODES.items() if v is found)
    slug, severity, summary = found
    return f"{code} ({slug}) · {severity} · shapelint verify\n\n{summary}\n\n{_RUNTIME_DOCS[code]}"


DEFAULT_TIMEOUT = 120.0
DEFAULT_MEMORY_MB = 4096
MAX_BINDINGS = 8
#: reruns without the failing nodes, to find independent failures
MAX_ROUNDS = 6
SEED = 0
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
#: random stand-in weights larger than this are not made up in the parent process
MAX_RANDOM_BYTES = 2**31
#: the inputs verify builds for one binding, all together: a declared [2**40, 6] input is refused, not allocated
MAX_FEED_BYTES = 512 * 2**20
#: values one execute() (or reference_run()) brings into this process for comparison, all runs together: with
#: the child's caps (32 MiB a tensor, 128 MiB a run) alone, fix held 6 runs' worth at once (> 900 MB)
MAX_KEPT_VALUES_BYTES = 40 * 2**20


class VerifyError(Exception):
    """verify cannot run at all (bad usage, no provider); ``str`` is the reason."""


class ProviderUnavailable(VerifyError):
    """The requested execution provider is not available in this onnxruntime."""
