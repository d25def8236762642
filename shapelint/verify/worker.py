"""The onnxruntime child process, seen from the parent: start it, send it jobs, survive its crashes.

The child is :mod:`shapelint.verify_worker` (``python -m
shapelint.verify_worker``), with a memory limit, its HOME and TMPDIR in a
temp folder of its own, and ``PR_SET_PDEATHSIG`` so it dies with shapelint.
One child per configuration is kept alive between requests; a crash or a
hang costs the run in flight, not the others.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
import onnx

from .codes import PROVIDERS, ProviderUnavailable, VerifyError
from .messages import classify, clean_message

__all__ = ["RunResult", "Worker", "provider_available", "require_provider", "run_jobs", "save_model", "shutdown_workers"]


@dataclass
class RunResult:
    """One run of one job at one binding."""

    status: str  # ok | error | crash | timeout | memory | not-run
    message: str = ""
    shapes: dict[str, list[int] | None] = field(default_factory=dict)
    seconds: float = 0.0
    phase: str = "run"  # "session" when the session could not be created
    values: dict[str, np.ndarray] | None = None


def _child_env(home: str) -> dict:
    """The worker's environment: HOME, TMPDIR and the caches point into ``home``; imports still work."""
    import site

    env = dict(os.environ)
    env.setdefault("PYTHONUSERBASE", site.getuserbase())  # packages installed with --user stay importable
    cache = os.path.join(home, ".cache")
    env.update(HOME=home, TMPDIR=home, TMP=home, TEMP=home, XDG_CACHE_HOME=cache)
    return env


def _onnxruntime():
    """``import onnxruntime`` with HOME and TMPDIR in a temp folder, removed afterwards.

    The import writes ``$HOME/.cache/Microsoft/DeveloperTools/.onnxruntime/``
    and ``$TMPDIR/.ses``; the parent only lists providers, so nothing of it
    is kept (the child gets a HOME of its own, see :class:`Worker`).
    """
    if "onnxruntime" in sys.modules:
        return sys.modules["onnxruntime"]
    home = tempfile.mkdtemp(prefix="shapelint-ort-")
    saved = {k: os.environ.get(k) for k in ("HOME", "TMPDIR", "TMP", "TEMP", "XDG_CACHE_HOME", "PYTHONUSERBASE")}
    try:
        os.environ.update(_child_env(home))
        import onnxruntime
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(home, ignore_errors=True)
    return onnxruntime


def provider_available(provider: str) -> bool:
    """True when this onnxruntime offers ``provider`` (``cpu`` or ``cuda``)."""
    return PROVIDERS[provider] in _onnxruntime().get_available_providers()


def require_provider(provider: str) -> None:
    """Raise :class:`ProviderUnavailable` (or :class:`VerifyError` for an unknown name) unless ``provider`` runs here."""
    if provider not in PROVIDERS:
        raise VerifyError(f"unknown provider {provider!r}: choose cpu or cuda")
    if not provider_available(provider):
        ort = _onnxruntime()
        hint = " (no GPU on this machine, or the onnxruntime-gpu package is not installed)" if provider == "cuda" else ""
        raise ProviderUnavailable(
            f"onnxruntime {ort.__version__} has no {PROVIDERS[provider]}{hint}; available: "
            f"{', '.join(ort.get_available_providers())}"
        )


def worker_command(config: dict) -> list[str]:
    """The child process's command line (tests replace it to simulate crashes)."""
    return [sys.executable, "-m", "shapelint.verify_worker", json.dumps(config)]


def save_model(model: onnx.ModelProto, path: str) -> None:
    if model.ByteSize() > 1_800_000_000:
        onnx.save(model, path, save_as_external_data=True, location=os.path.basename(path) + ".data")
    else:
        with open(path, "wb") as fh:
            fh.write(model.SerializeToString())


def signal_name(rc: int | None) -> str:
    if rc is None:
        return "no exit status"
    try:
        return signal.Signals(-rc).name if rc < 0 else f"exit status {rc}"
    except (ValueError, AttributeError):
        return f"exit status {rc}"


class Worker:
    """One onnxruntime child process, kept alive between requests.

    It is started with its memory limit and provider; :meth:`request` sends
    one request and collects its events until ``done``, the child's death,
    or the deadline (then the child is killed).
    """

    def __init__(self, config: dict):
        self.config = config
        self.command = worker_command(config)
        self.stderr = tempfile.TemporaryFile()
        # the child's HOME and TMPDIR: onnxruntime's cache database and session files stay in here, removed at close
        self.home = tempfile.mkdtemp(prefix="shapelint-ort-")
        self.busy = False
        try:
            self.proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                         close_fds=True, env=_child_env(self.home))
        except BaseException:
            shutil.rmtree(self.home, ignore_errors=True)
            self.stderr.close()
            raise
        self._buf = b""
        self.ready: dict | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def _events(self, deadline: float):
        """Yield events until ``done``; then ``("eof", rc)`` or ``("timeout", None)`` as the last item."""
        import selectors

        fd = self.proc.stdout.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                while b"\n" in self._buf:
                    line, self._buf = self._buf.split(b"\n", 1)
                    try:
                        ev = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    yield ev
                    if ev.get("event") in ("done", "fatal", "ready"):
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    yield {"event": "timeout"}
                    return
                if not sel.select(timeout=min(left, 1.0)):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    rc = self.proc.wait()
                    yield {"event": "eof", "rc": rc}
                    return
                self._buf += chunk
        finally:
            sel.close()

    def start(self, deadline: float) -> dict:
        """Wait for ``ready`` (or ``fatal``/death/timeout); returns that event."""
        for ev in self._events(deadline):
            self.ready = ev
        return self.ready

    def request(self, req: dict, deadline: float) -> list[dict]:
        self.busy = True  # until the answer is complete: an interrupted request means a kill at close
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.busy = False
            return [{"event": "eof", "rc": self.proc.wait()}]
        events = list(self._events(deadline))
        self.busy = False
        return events

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            text = self.stderr.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        return lines[-1] if lines else ""

    def close(self, kill: bool = False) -> None:
        """Stop the child (killed at once when ``kill`` or when a request was interrupted) and remove its HOME."""
        if self.proc.poll() is None:
            if kill or self.busy:
                self.proc.kill()
            else:
                try:
                    self.proc.stdin.close()
                    self.proc.wait(timeout=5)
                except (OSError, subprocess.TimeoutExpired):
                    self.proc.kill()
            self.proc.wait()
        for fh in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                fh.close()
            except (OSError, AttributeError):
                pass
        shutil.rmtree(self.home, ignore_errors=True)


_POOL: dict[tuple, Worker] = {}


def _worker(config: dict, deadline: float) -> tuple[Worker | None, dict]:
    """A ready worker for ``config`` (reused when alive), or ``(None, why)``."""
    key = tuple(worker_command(config))
    w = _POOL.get(key)
    if w is not None and w.alive:
        return w, w.ready
    if w is not None:
        w.close(kill=True)
        _POOL.pop(key, None)
    w = Worker(config)
    ev = w.start(deadline)
    if ev is None or ev.get("event") != "ready":
        if ev is not None and ev.get("event") == "eof":
            ev = {"event": "fatal", "message": f"the onnxruntime child process died at start ({signal_name(ev.get('rc'))})"
                  + (f": {clean_message(w.stderr_tail())}" if w.stderr_tail() else "")}
        w.close(kill=True)
        return None, ev or {"event": "fatal", "message": "the onnxruntime child process did not start"}
    _POOL[key] = w
    return w, ev


def shutdown_workers() -> None:
    """Stop every child process verify started (also run at exit)."""
    for key in list(_POOL):
        _POOL.pop(key).close()


atexit.register(shutdown_workers)

#: intra-op threads of each child; ``verify --jobs N`` divides the CPUs among its N workers
THREADS: list[int | None] = [None]


def run_jobs(jobs: list[dict], provider: str, timeout: float, memory_mb: int | None,
             threads: int | None = None) -> dict[tuple[str, int], RunResult]:
    """Run ``jobs`` in the child process; a crash or hang costs the run in flight, not the rest.

    ``jobs``: ``[{"id", "model" (path), "runs": [{"index", "feeds" (path), "values"}]}]``.
    """
    results: dict[tuple[str, int], RunResult] = {}
    done: set[tuple[str, int]] = set()
    wanted = [(j["id"], r["index"]) for j in jobs for r in j["runs"]]
    deadline = time.monotonic() + timeout
    if threads is None:
        threads = THREADS[0] or max(1, min(4, os.cpu_count() or 1))
    config = {"provider": provider, "memory_mb": memory_mb if provider == "cpu" else None, "threads": threads,
              "parent": os.getpid()}  # the child dies with this process (PR_SET_PDEATHSIG)
    for _attempt in range(len(wanted) + 1):
        todo = [w for w in wanted if w not in done]
        if not todo:
            break
        if deadline - time.monotonic() <= 0:
            for w in todo:
                results[w] = RunResult("not-run", f"not run: the {timeout:g}s time limit was spent")
                done.add(w)
            break
        worker, ev = _worker(config, deadline)
        if worker is None:
            if ev.get("event") == "timeout":
                for w in todo:
                    results[w] = RunResult("timeout", f"the onnxruntime child process did not start within {timeout:g}s")
                    done.add(w)
                break
            if ev.get("status") == "no-provider":
                raise ProviderUnavailable(ev["message"])
            raise VerifyError(ev.get("message", "the verify worker failed"))
        events = worker.request({"jobs": jobs, "skip": sorted(done)}, deadline)
        in_flight = _read_events(events, todo, results, done)
        end = events[-1] if events else {"event": "eof", "rc": None}
        if end.get("event") == "done":
            continue
        culprit = in_flight or [w for w in todo if w not in done][:1]
        if end.get("event") == "timeout":
            worker.close(kill=True)
            _POOL.pop(tuple(worker.command), None)
            for w in culprit:
                results[w] = RunResult("timeout", f"onnxruntime did not finish within the {timeout:g}s time limit")
                done.add(w)
            for w in wanted:
                if w not in done:
                    results[w] = RunResult("not-run", "not run: an earlier run used up the time limit")
                    done.add(w)
            break
        # the child died
        tail = worker.stderr_tail()
        worker.close(kill=True)
        _POOL.pop(tuple(worker.command), None)
        rc = end.get("rc")
        why = (f"the onnxruntime child process died ({signal_name(rc)})" if rc is not None and rc < 0
               else f"the onnxruntime child process exited ({signal_name(rc)})")
        status = "memory" if ("MemoryError" in tail or "bad_alloc" in tail) else "crash"
        for w in culprit:
            results[w] = RunResult(status, why + (f": {clean_message(tail)}" if tail else ""))
            done.add(w)
    for w in wanted:
        results.setdefault(w, RunResult("not-run", "not run"))
    return results


def _read_events(events, todo, results, done) -> list:
    """Record the runs the events answer; returns the runs in flight when the events stop."""
    in_flight: list[tuple[str, int]] = []
    for ev in events:
        kind, job = ev.get("event"), ev.get("job")
        if kind == "session-start":
            in_flight = [w for w in todo if w[0] == job]
        elif kind == "session":
            if ev["status"] == "no-provider":
                raise ProviderUnavailable(ev["message"])
            if ev["status"] != "ok":
                msg = ev.get("message", "")
                for w in todo:
                    if w[0] == job:
                        results[w] = RunResult(classify(msg), msg, phase="session", seconds=ev.get("seconds", 0.0))
                        done.add(w)
            in_flight = []
        elif kind == "start":
            in_flight = [(job, ev["index"])]
        elif kind == "run":
            w = (job, ev["index"])
            status = "ok" if ev["status"] == "ok" else classify(ev.get("message", ""))
            results[w] = RunResult(status, ev.get("message", ""), ev.get("shapes", {}), ev.get("seconds", 0.0))
            done.add(w)
            in_flight = []
    return in_flight
