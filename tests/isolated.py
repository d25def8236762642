"""Run one call in a forked child with a time and a memory limit.

The fuzz, corpus and security tests check hostile files: a hang or a memory
bomb must fail the test in seconds, not stall CI or take the machine down.
The child inherits the parent's imports and caches (fork), so a case costs
milliseconds, and it sends back a small picklable summary.
"""

from __future__ import annotations

import os
import pickle
import resource
import select
import signal
import time
import traceback
from dataclasses import dataclass

__all__ = ["Outcome", "run_isolated", "summarize_check"]

#: extra address space a child may map on top of what the parent holds
DEFAULT_MEMORY = 1 << 30


@dataclass
class Outcome:
    """How the child ended: ``ok`` (with ``value``), ``raised``, ``timeout`` or ``died``."""

    status: str
    value: object = None
    detail: str = ""
    seconds: float = 0.0


def _vm_size() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc``); 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


#: a child that burns little CPU (blocked on a FIFO, starved on a busy machine) gets this many times ``seconds``
WALL_FACTOR = 6


def run_isolated(fn, *args, seconds: float = 5.0, memory: int | None = DEFAULT_MEMORY) -> Outcome:
    """``fn(*args)`` in a forked child, at most ``memory`` more bytes.

    The child is killed once it has used ``seconds`` of CPU (a busy loop, even
    on a machine shared with other jobs) or ``WALL_FACTOR * seconds`` of wall
    time (blocked: a FIFO, a lock).
    """
    read_fd, write_fd = os.pipe()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if memory is not None and _vm_size():
                limit = _vm_size() + memory
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                result = ("ok", fn(*args), "")
            except BaseException:  # noqa: BLE001 - every escape is what the test looks for
                result = ("raised", None, traceback.format_exc())
            try:
                data = pickle.dumps(result)
            except Exception:  # noqa: BLE001
                data = pickle.dumps(("raised", None, "result could not be pickled:\n" + traceback.format_exc()))
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(data)
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks = []
    deadline = start + WALL_FACTOR * seconds
    timed_out = False
    with os.fdopen(read_fd, "rb") as fh:
        while True:
            left = deadline - time.perf_counter()
            if left <= 0 or _cpu_seconds(pid) > seconds:
                timed_out = True
                break
            ready, _, _ = select.select([fh], [], [], min(left, 0.05))
            if not ready:
                continue
            chunk = os.read(fh.fileno(), 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    if timed_out:
        return Outcome("timeout", detail=f"no answer after {seconds:.1f} s of CPU ({elapsed:.1f} s wall)", seconds=elapsed)
    if not chunks:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        return Outcome("died", detail=f"child ended without an answer ({how})", seconds=elapsed)
    kind, value, detail = pickle.loads(b"".join(chunks))
    return Outcome(kind, value, detail, seconds=elapsed)


def summarize_check(path, **kwargs) -> dict:
    """``shapelint.check.check`` reduced to plain data a pipe can carry.

    Also records inference handlers that raised and were swallowed by the
    walk (logged as "inference of ... failed"): not escapes, but bugs.
    """
    import logging

    from shapelint.check import check

    swallowed: list[str] = []

    class _Catch(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("inference of"):
                swallowed.append(record.getMessage())

    logger = logging.getLogger("shapelint.infer.walk")
    handler = _Catch(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        report = check(path, **kwargs)
    finally:
        logger.removeHandler(handler)
    return {
        "error": report.error,
        "diagnostics": [(d.rule, d.severity, d.node, d.message) for d in report.diagnostics],
        "swallowed": swallowed,
        "seconds": report.seconds,
    }
