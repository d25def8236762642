"""Checking on a Dask cluster: the same per-file check, on many machines (the ``dask`` extra: ``pip install '.[dask]'``).

``shapelint check --scheduler tcp://HOST:PORT PATHS`` (or ``--scheduler
local:N``, a :class:`distributed.LocalCluster` of N worker processes started
for the run) sends each file that the result cache does not hold to the
cluster as one task, and hands back each report as its task finishes
(``--format jsonl`` prints them then).  The client stores each report in
the cache as it arrives, so an interrupted run resumes where it stopped:
files already stored are never sent again.

From Python, the same through :func:`shapelint.check.check_paths`::

    from shapelint.check import check_paths
    run = check_paths(["models/"], scheduler="tcp://10.0.0.5:8786", cache=".shapelint_cache",
                      progress=lambda report: print(report.path, report.status))

The workers need shapelint, the same version and the same rule plugins, and
must reach the models at the same absolute paths (a shared filesystem); a
worker whose shapelint or rules differ (version, sources, plugins) answers
each file with an error instead of checking it, so no report of other code
reaches the cache.  Only the static check runs there: ``--verify`` and
``--graph`` need the model in this process.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import uuid

from .diagnostics import FileReport

__all__ = ["ClusterError", "distributed_installed", "parse_scheduler", "require_distributed", "run_on_cluster"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "install the dask extra (pip install '.[dask]' in shapelint's source folder, or pip install distributed)"
_LOCAL = re.compile(r"^local(?::([0-9]{1,3}))?\Z")
_ADDRESS = re.compile(r"^[a-z][a-z0-9+.-]*://\S+\Z")


class ClusterError(Exception):
    """A scheduler that cannot be used (bad address, unreachable, ``distributed`` missing); ``str()`` is one line."""


def parse_scheduler(text: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local`` / ``local:N`` (N None: the cores), ``(address, None)`` for an address.

    >>> parse_scheduler("local:2"), parse_scheduler("tcp://10.0.0.5:8786")
    (('local', 2), ('tcp://10.0.0.5:8786', None))
    >>> parse_scheduler("10.0.0.5:8786")
    Traceback (most recent call last):
    ...
    shapelint.cluster.ClusterError: --scheduler '10.0.0.5:8786': expected tcp://HOST:PORT (or another Dask address), local or local:N
    """
    value = text.strip()
    m = _LOCAL.match(value)
    if m:
        n = int(m.group(1)) if m.group(1) else None
        if n is not None and not 1 <= n <= 256:
            raise ClusterError(f"--scheduler {value!r}: a local cluster has 1 to 256 workers")
        return "local", n
    if not _ADDRESS.match(value):
        raise ClusterError(f"--scheduler {text[:80]!r}: expected tcp://HOST:PORT (or another Dask address), local or local:N")
    return value, None


def distributed_installed() -> None:
    """A :class:`ClusterError` saying how to install ``distributed`` when it is absent (found, not imported: fast)."""
    from importlib.util import find_spec

    try:
        found = find_spec("distributed") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["distributed"] is None
        found = False
    if not found:
        raise ClusterError(f"--scheduler needs Dask's distributed package, which is not installed: {INSTALL_HINT}")


def require_distributed():
    """The ``distributed`` module, or a :class:`ClusterError` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(f"--scheduler needs Dask's distributed package, which is not installed ({exc}): "
                           f"{INSTALL_HINT}") from None
    return distributed


@contextlib.contextmanager
def _quiet_dask():
    """Dask's own INFO logs (scheduler start, connections closing) only at ``-vv``: the run's output is shapelint's."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [lg.level for lg in loggers]
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@contextlib.contextmanager
def connect(scheduler):
    """A ``distributed.Client`` for ``scheduler`` (a client given is used as is and left open)."""
    distributed = require_distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    with _quiet_dask(), _connect(distributed, scheduler) as client:
        yield client


@contextlib.contextmanager
def _connect(distributed, scheduler):
    kind, n = parse_scheduler(str(scheduler))
    if kind == "local":
        from .config import default_jobs

        try:
            cluster = distributed.LocalCluster(n_workers=n or default_jobs(), threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                               silence_logs=logging.ERROR)
        except Exception as exc:  # noqa: BLE001 - ports, fork limits: one line
            raise ClusterError(f"cannot start a local Dask cluster: {type(exc).__name__}: {exc}") from None
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(kind, timeout=os.environ.get("SHAPELINT_SCHEDULER_TIMEOUT", "20s"))
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, a bad scheme: one line
        raise ClusterError(f"cannot reach the Dask scheduler at {kind}: {type(exc).__name__}: {exc}") from None
    try:
        yield client
    finally:
        client.close()


class _Job:
    """What every task shares, sent to each worker once: check's keyword arguments and the client's code key.

    A rule's ``origin`` ("built-in", "shapelint-acme 0.1.0") is set on its
    class by the client's :func:`~shapelint.plugins.load_rules`; a class
    unpickled on a worker has only its default, so the origins travel too
    (they are in messages: "internal error in rule X (origin)").
    """

    def __init__(self, kwargs: dict, environment: str):
        self.kwargs = kwargs
        self.environment = environment
        self.origins = [(cls, getattr(cls, "origin", None)) for cls in kwargs.get("rules") or ()]


@functools.lru_cache(maxsize=8)
def _worker_environment(rules: tuple, origins: tuple = ()) -> str:
    from .cache import environment_key

    return environment_key(rules)


def _remote_check(path: str, job: _Job):
    """A Dask task: one file's report and its external-data locations, as ``--jobs`` workers give them."""
    from .check import _check_one

    for cls, origin in job.origins:
        if getattr(cls, "origin", None) != origin:
            cls.origin = origin
    mine = _worker_environment(tuple(job.kwargs.get("rules") or ()), tuple(o for _, o in job.origins))
    if mine != job.environment:
        return FileReport(path, error="the Dask worker runs another shapelint or rule set than this client "
                                      "(version, sources or plugins differ): install the same on the workers"), None
    return _check_one(path, job.kwargs)


def run_on_cluster(items: list[tuple[int, str]], kwargs: dict, scheduler, finish) -> None:
    """Check ``items`` (``(index, path)``) on the cluster; ``finish(index, report, data_files)`` as each task ends.

    Workers get absolute paths (their working directory is not this one's);
    each report carries the path as it was given.  A task that fails (a
    worker lost, a task cancelled) is that file's error; the others go on.
    """
    from .cache import environment_key

    distributed = require_distributed()
    with connect(scheduler) as client:
        [job] = client.scatter([_Job(kwargs, environment_key(kwargs.get("rules")))], broadcast=True, hash=False)
        token = uuid.uuid4().hex[:12]
        keys = [f"shapelint-check-{token}-{index}" for index, _ in items]
        futures = client.map(_remote_check, [os.path.abspath(p) for _, p in items], job=job, key=keys, pure=False)
        given = {f.key: item for f, item in zip(futures, items)}
        try:
            for future in distributed.as_completed(futures):
                index, path = given[future.key]
                try:
                    report, data_files = future.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, CancelledError, a lost connection
                    report, data_files = FileReport(path, error=f"the Dask task checking this file failed: "
                                                                f"{type(exc).__name__}: {exc}"), None
                report.path = path
                finish(index, report, data_files)
                future.release()
        finally:
            client.cancel([f for f in futures if not f.done()])
