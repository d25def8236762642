"""Which ``.onnx`` files a run checks: folders walked, globs expanded, excludes and ``.gitignore`` applied.

The rules follow ruff's:

- a **file named on the command line is always checked**, whatever the
  excludes say (``force_exclude`` applies the ``exclude`` patterns to it too,
  for pre-commit, which passes every staged file by name);
- a **folder** is walked recursively for ``*.onnx``; below it, anything an
  ``exclude`` pattern or a ``.gitignore`` matches is skipped, folders without
  being entered (``.git``, ``.venv``, ``node_modules`` and the rest of
  :data:`DEFAULT_EXCLUDE` by default);
- a **glob** (``'models/**/*.onnx'``) is expanded, and its hits are filtered
  like a walk's below the glob's literal prefix.

Patterns are gitignore patterns (pathspec's ``GitIgnoreSpec``): a pattern
without a slash (``.venv``, ``*.egg-info``) matches a name at any depth; one
with a slash is anchored at the root (the configuration file's folder, or the
working directory).  ``.gitignore`` files are read from the repository's top
(the folder holding ``.git``) down, deeper files overriding shallower ones,
plus ``.git/info/exclude``; outside a repository, from the walked folder down.

>>> DEFAULT_EXCLUDE[:3]
('.bzr', '.direnv', '.eggs')
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DEFAULT_EXCLUDE", "Discovery", "bad_pattern", "discover", "git_toplevel"]

logger = logging.getLogger(__name__)

#: folders and names never walked into unless named on the command line (``exclude`` replaces this list)
DEFAULT_EXCLUDE = (
    ".bzr", ".direnv", ".eggs", ".git", ".git-rewrite", ".hg", ".ipynb_checkpoints", ".mypy_cache", ".nox",
    ".pytest_cache", ".ruff_cache", ".shapelint_cache", ".svn", ".tox", ".venv", "__pycache__", "__pypackages__",
    "_build", "buck-out", "build", "dist", "node_modules", "site-packages", "venv", "*.egg-info",
)
#: a .gitignore larger than this is not read
_MAX_IGNORE_BYTES = 4 * 2**20


@dataclass
class Discovery:
    """The files to check, in a stable order, and the folder arguments that held none."""

    files: list[str] = field(default_factory=list)
    #: folder (or glob) arguments under which no ``.onnx`` file was found
    empty: list[str] = field(default_factory=list)


def git_toplevel(path: str | os.PathLike) -> Path | None:
    """The folder holding ``.git`` (a folder, or a file for worktrees and submodules) at or above ``path``."""
    try:
        here = Path(os.path.abspath(os.fspath(path)))
    except (ValueError, OSError):
        return None
    if not os.path.isdir(here):
        here = here.parent
    for folder in (here, *here.parents):
        if os.path.lexists(folder / ".git"):
            return folder
    return None


def _spec(lines):
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines(lines)


def _own_match(spec, rel: str, is_dir: bool) -> bool | None:
    """``spec``'s verdict on ``rel`` itself: None when no pattern decides, or when the match is only inherited.

    A gitignore pattern matches everything below a folder it matches
    (pathspec answers True for ``build/b.onnx`` under ``build``).  Entries
    are only ever asked about below folders that were walked, so an
    inherited match comes from a folder named on the command line (or above
    it), which is checked whatever the patterns say: as in ruff, the match
    must be the entry's own.
    """
    result = spec.check_file(rel + "/" if is_dir else rel)
    if result.include:
        deciding = spec.patterns[result.index]
        parts = rel.split("/")
        for k in range(1, len(parts)):
            if deciding.match_file("/".join(parts[:k]) + "/") is not None:
                return None
    return result.include


def bad_pattern(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable gitignore pattern (one line), or None.

    >>> bad_pattern("legacy/"), bad_pattern("!")
    (None, 'not a gitignore pattern')
    """
    if not pattern.strip() or "\x00" in pattern or len(pattern) > 4096:
        return "not a file or folder pattern"
    try:
        _spec([pattern])
    except Exception:  # noqa: BLE001 - pathspec raises several types on a malformed pattern
        return "not a gitignore pattern"
    return None


def _usable(lines) -> list[str]:
    """The lines of a .gitignore that pathspec can compile (git, too, skips what it cannot read)."""
    out = []
    for line in lines:
        if bad_pattern(line) is None or not line.strip() or line.lstrip().startswith("#"):
            out.append(line)
        else:
            logger.debug("skipping the .gitignore line %r", line)
    return out


class _Matcher:
    """Answers "is this entry excluded?" for entries below an explicit root."""

    def __init__(self, exclude, root: Path, respect_gitignore: bool):
        self._patterns = list(exclude)
        self._exclude = None  # compiled on first use: a run over named files never needs pathspec
        self.root = root
        self.respect_gitignore = respect_gitignore
        self._ignores: dict[Path, object] = {}
        self._tops: dict[Path, Path | None] = {}

    # ------------------------------------------------------------ exclude patterns
    def _rel(self, path: Path, base: Path) -> str | None:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            return None

    def excluded_by_pattern(self, path: Path, is_dir: bool, walk_root: Path) -> bool:
        rel = self._rel(path, self.root)
        if rel is None or rel == ".":
            rel = self._rel(path, walk_root) or path.name
        if self._exclude is None:
            self._exclude = _spec(self._patterns)
        return bool(rel) and rel != "." and bool(_own_match(self._exclude, rel, is_dir))

    # ------------------------------------------------------------ .gitignore
    def _gitignore(self, folder: Path):
        if folder not in self._ignores:
            spec = None
            lines: list[str] = []
            from .safeio import read_regular

            # .git/info/exclude first: a .gitignore line, read later, wins over it (git's precedence)
            for name in ((os.path.join(".git", "info", "exclude"),) if self._top(folder) == folder else ()) + (".gitignore",):
                p = folder / name
                if not os.path.isfile(p):
                    continue
                try:
                    lines.extend(read_regular(p, _MAX_IGNORE_BYTES).decode("utf-8", "replace").splitlines())
                except OSError as exc:  # unreadable: as if absent (a note in the debug log)
                    logger.debug("cannot read %s: %s", p, exc)
            if lines:
                try:
                    spec = _spec(_usable(lines))
                except Exception as exc:  # noqa: BLE001 - a malformed .gitignore line is git's problem, not a crash
                    logger.debug("cannot parse %s: %s", folder / ".gitignore", exc)
            self._ignores[folder] = spec
        return self._ignores[folder]

    def _top(self, folder: Path) -> Path | None:
        if folder not in self._tops:
            self._tops[folder] = git_toplevel(folder)
        return self._tops[folder]

    def ignored_by_git(self, path: Path, is_dir: bool, walk_root: Path) -> bool:
        if not self.respect_gitignore:
            return False
        top = self._top(walk_root) or walk_root
        folders = [path.parent]
        while folders[-1] != top:
            if folders[-1] == folders[-1].parent:
                return False  # not below the top: no .gitignore of this walk applies
            folders.append(folders[-1].parent)
        decided = None
        for folder in reversed(folders):  # shallow to deep: a deeper .gitignore overrides
            spec = self._gitignore(folder)
            if spec is None:
                continue
            got = _own_match(spec, path.relative_to(folder).as_posix(), is_dir)
            if got is not None:
                decided = got
        return bool(decided)

    def skip(self, path: Path, is_dir: bool, walk_root: Path) -> bool:
        return self.excluded_by_pattern(path, is_dir, walk_root) or self.ignored_by_git(path, is_dir, walk_root)

    def skip_below(self, path: Path, walk_root: Path) -> bool:
        """Any folder between ``walk_root`` and ``path`` (exclusive), or ``path`` itself, is skipped."""
        try:
            parts = path.relative_to(walk_root).parts
        except ValueError:
            return False
        here = walk_root
        for k, part in enumerate(parts):
            here = here / part
            last = k == len(parts) - 1
            if self.skip(here, not last or os.path.isdir(here), walk_root):
                return True
        return False

    def force_excluded(self, raw: str) -> bool:
        """``--force-exclude``: the exclude patterns (not .gitignore) applied to a path named on the command line,
        and to each folder above it (below the root)."""
        p = Path(os.path.abspath(raw))
        base = self.root if self._rel(p, self.root) is not None else Path(p.anchor)
        for here in (p, *p.parents):
            if here == base or here == here.parent:
                return False
            if self.excluded_by_pattern(here, here != p or os.path.isdir(here), base):
                return True
        return False


def _walk(top: str, matcher: _Matcher) -> list[str]:
    """Every entry named ``*.onnx`` below ``top`` that is not a folder (a FIFO or a dangling symlink too:
    those are reported as files that could not be checked, never silently left out)."""
    walk_root = Path(os.path.abspath(top))
    out = []
    for folder, dirs, files in os.walk(top):
        here = Path(os.path.abspath(folder))
        dirs[:] = [d for d in dirs if not matcher.skip(here / d, True, walk_root)]
        for name in files:
            if name.endswith(".onnx") and not matcher.skip(here / name, False, walk_root):
                out.append(str(Path(folder, name)))  # as pathlib spells it: "./a" is "a"
    return sorted(out)


def _literal_prefix(pattern: str) -> str:
    parts = []
    for part in Path(pattern).parts:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    return os.path.join(*parts) if parts else "."


def discover(paths, *, exclude=None, extend_exclude=(), respect_gitignore: bool = True,
             force_exclude: bool = False, root: str | os.PathLike | None = None) -> Discovery:
    """The ``.onnx`` files ``paths`` name (see the module doc).

    ``exclude`` replaces :data:`DEFAULT_EXCLUDE`; ``extend_exclude`` adds to
    it.  ``root`` anchors patterns with a slash (default: the working
    directory).  A path that matches nothing is kept, so that its report says
    "no such file".
    """
    patterns = [*(DEFAULT_EXCLUDE if exclude is None else exclude), *extend_exclude]
    matcher = _Matcher(patterns, Path(os.path.abspath(root if root is not None else os.getcwd())), respect_gitignore)
    result = Discovery()
    out: list[str] = []
    for raw in paths:
        raw = os.fspath(raw)
        # os.path's predicates, not Path's: a name too long or with a NUL byte is a file that does not exist
        if force_exclude and os.path.lexists(raw) and matcher.force_excluded(raw):
            continue
        if os.path.isdir(raw):
            found = _walk(raw, matcher)
            if not found:
                result.empty.append(raw)
            out.extend(found)
        elif any(ch in raw for ch in "*?[") and not os.path.exists(raw):
            try:
                hits = sorted(h for h in glob.glob(raw, recursive=True) if not os.path.isdir(h))
            except (OSError, ValueError):
                hits = []
            if hits:
                base = Path(os.path.abspath(_literal_prefix(raw)))
                kept = [h for h in hits if not matcher.skip_below(Path(os.path.abspath(h)), base)]
                if not kept:
                    result.empty.append(raw)
                out.extend(kept)
            else:
                out.append(raw)
        else:
            out.append(raw)
    seen: set[str] = set()
    result.files = [p for p in out if not (p in seen or seen.add(p))]
    return result
