"""Where a finding is, for code scanning: paths relative to the repository root.

SARIF's ``%SRCROOT%`` and GitHub's annotation paths are both relative to
the root of the repository the workflow checked out.  The root is the git
top level of the first model (the folder holding ``.git``), else the folder
of the configuration file, else the working directory.

An exporter's recorded source line (``model.py:42``, an absolute
``/home/ci/...`` path, a ``site-packages`` frame) is used as a location only
when that file exists inside the root: looked up as recorded when absolute,
else relative to the root, to the working directory and to the model's
folder.

>>> loc = Locator("/nonexistent/repo")
>>> loc.relative("/nonexistent/repo/models/a.onnx"), loc.relative("/elsewhere/a.onnx") is None
('models/a.onnx', True)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["Locator", "repository_root", "source_line"]

_SOURCE_LINE = re.compile(r"([\w./\\:~+-]*[\w-]\.py):(\d+)")


def source_line(source: str | None) -> tuple[str, int] | None:
    """The ``file.py:LINE`` an exporter recorded, if ``source`` holds one.

    >>> source_line("encoder.lstm (model.py:42)")
    ('model.py', 42)
    >>> source_line("x (/home/ci/src/net.py:7)")
    ('/home/ci/src/net.py', 7)
    >>> source_line("encoder.lstm") is None
    True
    """
    if not source:
        return None
    m = _SOURCE_LINE.search(source)
    if m is None or int(m.group(2)) < 1:
        return None
    return m.group(1), int(m.group(2))


def repository_root(paths=(), config_path: str | os.PathLike | None = None) -> Path:
    """The git top level of the first of ``paths``, else the config file's folder, else the working directory."""
    from ..discovery import git_toplevel

    for p in paths:
        top = git_toplevel(p)
        if top is not None:
            return top.resolve()
        break
    if config_path is not None:
        return Path(os.path.abspath(os.fspath(config_path))).parent.resolve()
    return Path.cwd().resolve()


class Locator:
    """Paths relative to ``root``, and the exporter's source files that lie inside it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(os.path.abspath(os.fspath(root)))
        try:
            self.root = self.root.resolve()
        except (OSError, RuntimeError):
            pass
        self._sources: dict[tuple[str, str], str | None] = {}

    def relative(self, path: str) -> str | None:
        """``path`` as a posix path relative to the root, or None when it is outside."""
        try:
            p = Path(os.path.abspath(path))
            try:
                p = p.resolve()
            except (OSError, RuntimeError):
                pass
            rel = p.relative_to(self.root).as_posix()
        except (ValueError, OSError):
            return None
        return rel if rel != "." else None

    def source_in_repo(self, source: str | None, model_path: str) -> tuple[str, int] | None:
        """``(path relative to the root, line)`` of the recorded source when that file is in the repository."""
        where = source_line(source)
        if where is None:
            return None
        file, line = where
        key = (file, os.path.dirname(os.path.abspath(model_path)))
        if key not in self._sources:
            self._sources[key] = self._find(file, key[1])
        rel = self._sources[key]
        return (rel, line) if rel is not None else None

    def _find(self, file: str, model_dir: str) -> str | None:
        file = file.replace("\\", "/")
        candidates = [file] if os.path.isabs(file) else [str(self.root / file), os.path.join(os.getcwd(), file),
                                                          os.path.join(model_dir, file)]
        for cand in candidates:
            try:
                if os.path.isfile(cand):
                    rel = self.relative(cand)
                    if rel is not None:
                        return rel
            except (OSError, ValueError):
                continue
        return None
