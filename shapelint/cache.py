"""The result cache: a model that has not changed since it was last checked the same way is not checked again.

As ruff's cache does, one entry per checked file lives in ``.shapelint_cache/``
next to the configuration file (the working directory when there is none;
``--cache-dir`` elsewhere, ``--no-cache`` or ``cache = false`` not at all).
An entry holds the file's :class:`~shapelint.diagnostics.FileReport` and is
used only when all of these are what they were:

- the **model file's bytes** (SHA-256 of its content; never its mtime alone);
- for each **external-data file** the model names: where it resolves, its
  size, type and mtime (``check`` never reads those bytes, only their size
  and location, so their content cannot change a report; a new mtime still
  makes a miss, to be safe);
- the **environment**: shapelint's version, a hash of the sources of
  ``shapelint`` and of the built-in rules (so an edited checkout is never
  served old results), the versions of onnx, protobuf, sympy, symengine and
  networkx, and Python's;
- the **rules that run**: code, origin (plugin name and version), class and,
  for a rule outside shapelint, a hash of its module's source;
- the **settings that shape a report**: select, ignore, severity overrides,
  rule options, ``--dim`` bindings.  Not ``--fail-on``, ``--format``,
  ``per-file-ignores`` nor baselines, which act on the report afterwards.

What is **not cached**: a file that could not be checked (``error`` set: no
such file, truncated, external data missing or outside the model's folder, a
worker that died, an internal error), because several of those depend on
things outside the file and all of them are cheap to find again; a report
holding a rule's internal error (a crash may come from memory or recursion
limits); and everything under ``--verify`` or ``--graph``, which need the
model's graph in memory (:func:`shapelint.check.check_paths` bypasses the
cache when ``after`` is given).

An entry that cannot be read, does not parse, or does not match is a miss and
is rewritten; a cache folder that cannot be written is one warning, and the
run goes on without storing.  Entries are written by rename (one file per
key), so concurrent runs and ``--jobs`` workers never see half an entry.

>>> import tempfile
>>> from shapelint.diagnostics import FileReport
>>> cache = ResultCache(tempfile.mkdtemp())
>>> cache.bind({"rules": []})
>>> folder = tempfile.mkdtemp(); model = folder + "/m.onnx"
>>> _ = open(model, "wb").write(b"not really a model")
>>> report, probe = cache.lookup(model)
>>> report is None, probe is not None
(True, True)
>>> cache.store(probe, FileReport(model, seconds=0.5), data_files=[])
>>> cache.lookup(model)[0] == FileReport(model, seconds=0.5)
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import sys
import threading
from dataclasses import dataclass, fields
from pathlib import Path

from . import __version__
from .diagnostics import Diagnostic, FileReport

__all__ = ["CACHE_DIR_NAME", "Probe", "ResultCache", "cacheable", "default_cache_dir", "environment_key", "settings_key"]

logger = logging.getLogger(__name__)

#: the folder's name, next to the configuration file or in the working directory
CACHE_DIR_NAME = ".shapelint_cache"
#: bumped when an entry's layout changes
FORMAT = 1
#: an entry larger than this is not read (a model with that many findings is checked again)
MAX_ENTRY_BYTES = 256 * 2**20
#: models larger than one protobuf can hold are refused by ``check``: not hashed
MAX_MODEL_BYTES = 2**31 - 1
#: a rule's crash, as :func:`shapelint.runner.run_rules` reports it
_CRASH_PREFIX = "internal error in rule "
_LIBRARIES = ("onnx", "protobuf", "sympy", "symengine", "networkx")
_TAG = (b"Signature: 8a477f597d28d172789f06886806bc55\n"
        b"# This file is a cache directory tag created by shapelint.\n"
        b"# For information about cache directory tags, see https://bford.info/cachedir/\n")
_GITIGNORE = b"# Automatically created by shapelint.\n*\n"


def default_cache_dir(config_path: str | os.PathLike | None) -> Path:
    """``.shapelint_cache`` next to the configuration file, else in the working directory."""
    return (Path(config_path).parent if config_path is not None else Path.cwd()) / CACHE_DIR_NAME


# ---------------------------------------------------------------- keys
_source_digest: str | None = None
_file_digests: dict[str, str | None] = {}


def _sources_digest() -> str:
    """SHA-256 of every ``.py`` file of the ``shapelint`` and ``shapelint_rules`` packages (names and bytes).

    Computed once per process (a few milliseconds): a checkout edited since
    the last run, at the same version number, never reads old results.
    """
    global _source_digest
    if _source_digest is None:
        import importlib.util

        roots = [("shapelint", Path(__file__).resolve().parent)]
        try:
            spec = importlib.util.find_spec("shapelint_rules")
        except (ImportError, ValueError):
            spec = None
        for loc in (spec.submodule_search_locations or []) if spec is not None else []:
            roots.append(("shapelint_rules", Path(loc).resolve()))
        h = hashlib.sha256()
        for name, root in roots:
            for f in sorted(root.rglob("*.py")):
                if "__pycache__" in f.parts:
                    continue
                try:
                    data = f.read_bytes()
                except OSError:
                    data = b"<unreadable>"
                h.update(f"{name}/{f.relative_to(root).as_posix()}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
                h.update(data)
        _source_digest = h.hexdigest()
    return _source_digest


def _module_digest(module: str) -> str | None:
    """SHA-256 of a (plugin) rule's module source, or None when it has no file."""
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    if path not in _file_digests:
        try:
            with open(path, "rb") as fh:
                _file_digests[path] = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            _file_digests[path] = None
    return _file_digests[path]


def _library_versions() -> dict[str, str | None]:
    from importlib import metadata

    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
        except Exception:  # noqa: BLE001 - a broken installation's metadata: still a key
            out[name] = "?"
    return out


def _describe_rules(rules) -> list:
    own = ("shapelint.", "shapelint_rules.")
    rows = []
    for cls in sorted(rules or (), key=lambda c: (str(c.code), c.__module__, c.__qualname__)):
        module = cls.__module__
        rows.append([cls.code, getattr(cls, "origin", None), module, cls.__qualname__,
                     None if module.startswith(own) else _module_digest(module)])
    return rows


def environment_key(rules) -> str:
    """What the code that checks is: shapelint's version and sources, the libraries, Python, the rules.

    A Dask worker compares its own with the client's before it checks: a
    worker with other code would store reports this run cannot vouch for.
    """
    data = {
        "format": FORMAT,
        "shapelint": __version__,
        "sources": _sources_digest(),
        "python": list(sys.version_info[:2]),
        "libraries": _library_versions(),
        "rules": _describe_rules(rules),
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=repr).encode()).hexdigest()


def settings_key(kwargs: dict) -> str:
    """The settings of :func:`shapelint.check.check` that change a report (not the rules: see environment_key)."""
    from .result import CheckSettings

    known = {k: kwargs.get(k) for k in ("select", "ignore", "bindings", "options", "severity_overrides",
                                        "rule_options")}
    s = CheckSettings.make(**known, missing_weights_ok=bool(kwargs.get("missing_weights_ok")))
    data = {f.name: getattr(s, f.name) for f in fields(s) if f.name != "rules"}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=repr).encode()).hexdigest()


# ---------------------------------------------------------------- entries
@dataclass(frozen=True)
class Probe:
    """What a lookup saw of one model file: its content hash and its identity (dev, inode, size, mtime)."""

    path: str
    entry: Path
    digest: str
    size: int
    signature: tuple


def _hash_model(path: str) -> tuple[str, int, tuple]:
    """(SHA-256, size, stat signature) of a regular file, opened without blocking; OSError otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not 0 < st.st_size <= MAX_MODEL_BYTES:
            raise OSError("not a file check can read")  # check reports it; nothing to cache
        h = hashlib.sha256()
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            h.update(chunk)
    finally:
        os.close(fd)
    return h.hexdigest(), st.st_size, _signature(st)


def _signature(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _data_stamps(model_path: str, data_files) -> list:
    """Where each external-data location resolves, with its size, type and mtime; ``[loc, None]`` when absent."""
    if not data_files:
        return []
    base = Path(model_path).resolve().parent
    out = []
    for loc in data_files:
        target = base / loc
        try:
            st = os.stat(target)
            out.append([loc, os.path.realpath(target), st.st_size, stat.S_IFMT(st.st_mode), st.st_mtime_ns])
        except (OSError, ValueError):
            out.append([loc, None])
    return out


def _report_to_json(report: FileReport) -> dict:
    out = {f.name: getattr(report, f.name) for f in fields(FileReport) if f.name != "diagnostics"}
    out["diagnostics"] = [{f.name: getattr(d, f.name) for f in fields(Diagnostic) if f.name not in ("edit", "picture")}
                          for d in report.diagnostics]
    return out


_OPTIONAL_TEXT = ("node", "op_type", "tensor", "fix", "source")


def _report_from_json(data: dict, path: str) -> FileReport | None:
    """The report an entry holds, or None when any field is not what shapelint writes (a corrupt entry)."""
    diags = []
    raw = data.get("diagnostics")
    if not isinstance(raw, list):
        return None
    for d in raw:
        if not isinstance(d, dict):
            return None
        if not all(isinstance(d.get(k), str) for k in ("rule", "name", "message")):
            return None
        if d.get("severity") not in ("error", "warning", "info"):
            return None
        if not all(d.get(k) is None or isinstance(d.get(k), str) for k in _OPTIONAL_TEXT):
            return None
        if not isinstance(d.get("fixable", False), bool) or not isinstance(d.get("runtime"), (dict, type(None))):
            return None
        try:
            diags.append(Diagnostic(**d))
        except TypeError:  # a field this version does not have
            return None
    skipped, recurrences, seconds = data.get("skipped"), data.get("recurrences"), data.get("seconds", 0.0)
    if not isinstance(skipped, list) or not all(isinstance(s, dict) for s in skipped):
        return None
    if recurrences is not None and not (isinstance(recurrences, dict)
                                        and all(type(v) is int for v in recurrences.values())):
        return None
    if type(seconds) not in (int, float) or data.get("error") is not None or data.get("path") != path:
        return None
    rest = {k: v for k, v in data.items() if k not in ("diagnostics", "skipped", "recurrences", "seconds")}
    try:
        return FileReport(**{**rest, "diagnostics": diags, "skipped": skipped, "recurrences": recurrences,
                             "seconds": float(seconds)})
    except TypeError:
        return None


def cacheable(report: FileReport) -> bool:
    """A report the cache may keep: the file was checked, and no rule crashed on it."""
    return report.error is None and not any(isinstance(d.message, str) and d.message.startswith(_CRASH_PREFIX)
                                            for d in report.diagnostics)


class ResultCache:
    """The entries of one cache folder, for one run's rules and settings (:meth:`bind`).

    ``warn(message)`` is called once, the first time an entry cannot be
    written (the folder is read-only, the device full, ``--cache-dir`` names
    a file); the run then goes on without storing.  ``hits``, ``misses`` and
    ``stored`` count what happened.
    """

    def __init__(self, folder: str | os.PathLike, warn=None):
        self.folder = Path(folder)
        self.warn = warn
        self.hits = self.misses = self.stored = 0
        self._run: str | None = None
        self._writable = True
        self._prepared = False
        self._lock = threading.Lock()  # lookups run in a few threads

    def __repr__(self) -> str:
        return f"ResultCache({str(self.folder)!r})"

    # ------------------------------------------------------------ keys
    def bind(self, kwargs: dict) -> None:
        """Key the entries on the rules (``kwargs["rules"]``) and the settings of :func:`shapelint.check.check`."""
        self._run = hashlib.sha256(f"{environment_key(kwargs.get('rules'))}\0{settings_key(kwargs)}".encode()).hexdigest()

    def _entry(self, path: str) -> Path:
        if self._run is None:
            raise RuntimeError("ResultCache.bind(kwargs) first")
        name = hashlib.sha256(f"{self._run}\0{path}".encode("utf-8", "surrogateescape")).hexdigest()
        return self.folder / __version__ / name[:2] / f"{name}.json"

    # ------------------------------------------------------------ reads
    def lookup(self, path: str) -> tuple[FileReport | None, Probe | None]:
        """``(report, probe)``: the cached report when the entry matches (probe None), else ``(None, probe)``.

        The probe is what :meth:`store` needs; it is None also when the file
        cannot be read (``check`` reports that, and it is not cached).
        """
        path = os.fspath(path)
        try:
            digest, size, signature = _hash_model(path)
        except (OSError, ValueError):
            return None, None
        probe = Probe(path, self._entry(path), digest, size, signature)
        report = self._read(probe)
        with self._lock:
            if report is None:
                self.misses += 1
            else:
                self.hits += 1
        return (None, probe) if report is None else (report, None)

    def _read(self, probe: Probe) -> FileReport | None:
        from .safeio import read_regular

        try:
            data = json.loads(read_regular(probe.entry, MAX_ENTRY_BYTES))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:  # unreadable or corrupt: rebuilt by the next store
            logger.debug("cache entry %s ignored: %s", probe.entry, exc)
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("run") != self._run:
            return None
        if data.get("path") != probe.path or data.get("model") != [probe.digest, probe.size]:
            return None
        files = data.get("data")
        if not isinstance(files, list) or not all(isinstance(f, list) and f and isinstance(f[0], str) for f in files):
            return None
        if _data_stamps(probe.path, [f[0] for f in files]) != files:
            return None
        report = data.get("report")
        return _report_from_json(report, probe.path) if isinstance(report, dict) else None

    # ------------------------------------------------------------ writes
    def store(self, probe: Probe | None, report: FileReport, data_files) -> None:
        """Keep ``report`` for the file ``probe`` saw, unless it is not :func:`cacheable` or the file changed since.

        ``data_files``: the external-data locations the model names (None:
        unknown, nothing is stored).
        """
        if probe is None or data_files is None or not self._writable or not cacheable(report):
            return
        try:
            if _signature(os.stat(probe.path)) != probe.signature:
                return  # changed while it was checked: the report may be of either version
        except OSError:
            return
        entry = {"format": FORMAT, "run": self._run, "path": probe.path, "model": [probe.digest, probe.size],
                 "data": _data_stamps(probe.path, sorted(set(data_files))), "report": _report_to_json(report)}
        try:
            text = json.dumps(entry, separators=(",", ":"))
        except (TypeError, ValueError):  # a plugin's message that is not text: checked again next time
            return
        try:
            self._prepare()
            probe.entry.parent.mkdir(parents=True, exist_ok=True)
            from .safeio import replace_file

            replace_file(probe.entry, text.encode())
        except OSError as exc:
            self._writable = False
            message = (f"cannot write the cache in {self.folder} ({getattr(exc, 'strerror', None) or exc}); "
                       "going on without it (--no-cache turns it off)")
            if self.warn is not None:
                self.warn(message)
            else:
                logger.warning(message)
            return
        self.stored += 1

    def _prepare(self) -> None:
        """Create the folder, with a ``.gitignore`` of ``*`` and a ``CACHEDIR.TAG`` (backup tools skip it).

        The two files are written only into a folder shapelint created, an
        empty one, or one that already has the tag: never among someone
        else's files (``--cache-dir`` naming a folder of models).
        """
        if self._prepared:
            return
        from .safeio import replace_file

        try:
            self.folder.mkdir(parents=True)
            created = True
        except FileExistsError:  # also when a concurrent run has just made it
            if not os.path.isdir(self.folder):
                raise NotADirectoryError(20, "exists and is not a folder") from None
            created = False
        tag, ignore = self.folder / "CACHEDIR.TAG", self.folder / ".gitignore"
        if created or os.path.isfile(tag) or not any(os.scandir(self.folder)):
            for f, data in ((tag, _TAG), (ignore, _GITIGNORE)):
                if not os.path.lexists(f):
                    replace_file(f, data)
        self._prepared = True
