"""Configuration files: ``[tool.shapelint]`` in pyproject.toml, or a shapelint.toml.

The file is found by walking up from the first checked path (then from the
working directory): in each folder ``shapelint.toml`` wins over a
``pyproject.toml``, and a ``pyproject.toml`` without a ``[tool.shapelint]``
table is passed over (ruff's rule).  Every key and value is checked: a typo
is a one-line :class:`ConfigError`, never silently ignored.

>>> cfg = parse_config({"select": ["SL1"], "fail-on": "warning", "dims": {"batch": 8}})
>>> cfg.select, cfg.fail_on, cfg.dims
(['SL1'], 'warning', {'batch': 8})
>>> parse_config({"fail_on": "warning"})
Traceback (most recent call last):
...
shapelint.config.ConfigError: unknown key 'fail_on' (did you mean 'fail-on'?)
"""

from __future__ import annotations

import difflib
import fnmatch
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "FORMATS",
    "KEYS",
    "SEVERITIES",
    "Config",
    "ConfigError",
    "default_jobs",
    "find_config",
    "load_config",
    "parse_config",
    "plugin_name",
]

logger = logging.getLogger(__name__)

FORMATS = ("text", "json", "jsonl", "sarif", "github")
SEVERITIES = ("error", "warning", "info")
#: every key a config file may hold, with what it expects (the reference in docs/ci.md)
KEYS = {
    "select": "list of codes or prefixes to run",
    "extend-select": "list of codes or prefixes to run in addition to select",
    "ignore": "list of codes or prefixes to skip",
    "extend-ignore": "list of codes or prefixes to skip in addition to ignore",
    "per-file-ignores": "table: glob -> list of codes or prefixes",
    "severity": "table: code -> error | warning | info",
    "fail-on": "error | warning | info",
    "dims": "table: dim name -> integer >= 0",
    "jobs": 'integer >= 1, or "auto"',
    "format": " | ".join(FORMATS),
    "plugins": "table: rule code or plugin name -> table of options",
    "exclude": "list of gitignore-style patterns of files and folders not to walk into (replaces the defaults)",
    "extend-exclude": "list of patterns excluded in addition to exclude",
    "respect-gitignore": "boolean: skip what .gitignore files ignore",
    "force-exclude": "boolean: apply exclude patterns to paths named on the command line too",
    "cache": "boolean: read and write the result cache",
    "cache-dir": "folder of the result cache, relative to the config file's folder",
}
#: a dim is an int64 in ONNX
MAX_DIM = 2**63 - 1
_SELECTOR = re.compile(r"^(ALL|[A-Z]{1,8}[0-9]{0,3})\Z")  # \Z: "$" would let a trailing newline in
_DIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]*\Z")


class ConfigError(Exception):
    """A configuration file that cannot be used; ``str()`` is one line."""


@dataclass
class Config:
    """The settings a config file gives; ``None`` where the file is silent."""

    select: list[str] | None = None
    ignore: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    extend_ignore: list[str] = field(default_factory=list)
    #: None: shapelint.discovery.DEFAULT_EXCLUDE
    exclude: list[str] | None = None
    extend_exclude: list[str] = field(default_factory=list)
    respect_gitignore: bool | None = None
    force_exclude: bool | None = None
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)
    fail_on: str | None = None
    dims: dict[str, int] = field(default_factory=dict)
    jobs: int | None = None  # None: the machine's cores
    format: str | None = None
    plugins: dict[str, dict] = field(default_factory=dict)
    #: None: on (``cache = false`` turns the result cache off)
    cache: bool | None = None
    #: the result cache's folder, relative to the config file's folder (None: ``.shapelint_cache`` there)
    cache_dir: str | None = None
    #: the file it came from (None: defaults); per-file-ignores globs are relative to its folder
    path: Path | None = None

    @property
    def root(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    # ------------------------------------------------------------ uses
    def ignored_for(self, file: str) -> list[str]:
        """Codes the ``per-file-ignores`` globs drop for ``file``.

        A glob is matched (fnmatch, so ``*`` crosses folders, as in flake8)
        against the file's path relative to the config's folder, and against
        its bare name.

        >>> Config(per_file_ignores={"legacy/*.onnx": ["SL5"], "x.onnx": ["SL1"]}).ignored_for("legacy/a/x.onnx")
        ['SL5', 'SL1']
        """
        if not self.per_file_ignores:
            return []
        p = Path(file)
        try:
            rel = p.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            rel = PurePosixPath(p.as_posix()).as_posix()
        out: list[str] = []
        for pattern, codes in self.per_file_ignores.items():
            pat = pattern.removeprefix("./")
            if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(p.name, pat):
                out.extend(codes)
        return out

    def apply_per_file_ignores(self, report) -> int:
        """Drop, in place, the findings ``per-file-ignores`` silences; returns how many."""
        from .runner import matches

        dropped = 0
        for f in report.files:
            codes = self.ignored_for(f.path)
            if codes:
                kept = [d for d in f.diagnostics if not matches(d.rule, codes)]
                dropped += len(f.diagnostics) - len(kept)
                f.diagnostics = kept
        return dropped

    def rule_options(self, rules) -> dict[str, dict]:
        """Per-rule options (``ctx.options``): a plugin's table, then the rule code's own on top."""
        out: dict[str, dict] = {}
        for cls in rules:
            dist = plugin_name(cls.origin)
            merged = {**self.plugins.get(dist, {}), **self.plugins.get(cls.code, {})} if dist else dict(self.plugins.get(cls.code, {}))
            if merged:
                out[cls.code] = merged
        return out

    def validate_against(self, rules) -> None:
        """Codes and plugin names that name no installed rule are errors (ruff does the same)."""
        try:
            self._validate_against(rules)
        except ConfigError as exc:
            raise ConfigError(f"{_where(self.path)}{exc}") from None

    def _validate_against(self, rules) -> None:
        codes = [cls.code for cls in rules]
        names = {plugin_name(cls.origin) for cls in rules} - {None}

        def known(sel: str) -> bool:
            return sel == "ALL" or any(c.startswith(sel) for c in codes)

        def check(key: str, sels) -> None:
            for sel in sels or ():
                if not known(sel):
                    hint = suggest(sel, codes)
                    raise ConfigError(
                        f"{key}: {sel!r} matches no installed rule"
                        + (f" (did you mean {hint!r}?)" if hint else "; `shapelint rules` lists them")
                    )

        check("select", self.select)
        check("ignore", self.ignore)
        check("extend-select", self.extend_select)
        check("extend-ignore", self.extend_ignore)
        for pattern, sels in self.per_file_ignores.items():
            check(f"per-file-ignores.{pattern!r}", sels)
        check("severity", [code for code in self.severity if code not in codes])
        for key in self.plugins:
            if key not in codes and key not in names:
                hint = difflib.get_close_matches(key, [*codes, *sorted(names)], n=1)
                raise ConfigError(
                    f"plugins: {key!r} is neither an installed rule code nor a plugin name"
                    + (f" (did you mean {hint[0]!r}?)" if hint else "")
                )


def suggest(word: str, choices) -> str | None:
    """The closest of ``choices`` to a misspelt ``word`` (difflib); ties go to the longest common prefix, then to
    a transposition (``SL130`` → ``SL103``).

    >>> suggest("SL130", ["SL103", "SL303", "SL501"]), suggest("XYZ", ["SL103"])
    ('SL103', None)
    """
    choices = list(choices)
    hits = difflib.get_close_matches(word, choices, n=8)
    if not hits:
        return None
    return max(hits, key=lambda c: (difflib.SequenceMatcher(None, word, c).ratio(), len(os.path.commonprefix([word, c])),
                                    sorted(c) == sorted(word)))


def plugin_name(origin: str | None) -> str | None:
    """``"shapelint-acme 0.1.0"`` → ``"shapelint-acme"``; None for built-ins.

    >>> plugin_name("shapelint-acme 0.1.0"), plugin_name("built-in")
    ('shapelint-acme', None)
    """
    if not origin or origin == "built-in":
        return None
    return origin.split(" ", 1)[0]


def default_jobs() -> int:
    """The cores this process may use (``os.cpu_count`` where affinity is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------- discovery
#: a config file larger than this is not read
MAX_CONFIG_BYTES = 16 * 2**20

def _table_of(path: Path) -> dict | None:
    """The shapelint table of a file: top level of shapelint.toml, ``[tool.shapelint]`` of pyproject."""
    from .safeio import read_regular

    try:
        data = tomllib.loads(read_regular(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deep") from None
    except (OSError, UnicodeDecodeError) as exc:  # also a FIFO or a device (safeio.UnsafeFile)
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        table = tool.get("shapelint") if isinstance(tool, dict) else None
        if table is not None and not isinstance(table, dict):
            raise ConfigError(f"{path}: [tool.shapelint] must be a table")
        return table
    return data


def find_config(start: str | os.PathLike | None = None) -> Path | None:
    """The nearest shapelint.toml or pyproject.toml with ``[tool.shapelint]``, walking up."""
    here = Path(start if start is not None else Path.cwd())
    here = _existing_prefix(here).resolve()
    if os.path.isfile(here):
        here = here.parent
    for folder in (here, *here.parents):
        own = folder / "shapelint.toml"
        if os.path.isfile(own):
            return own
        pyproject = folder / "pyproject.toml"
        if os.path.isfile(pyproject) and _table_of(pyproject) is not None:
            return pyproject
    return None


def _existing_prefix(p: Path) -> Path:
    """A glob or a missing path → its longest existing folder prefix."""
    parts = []
    for part in p.parts:
        if any(ch in part for ch in "*?["):
            break
        parts.append(part)
    q = Path(*parts) if parts else Path(".")
    while not os.path.exists(q) and q != q.parent:
        q = q.parent
    return q if os.path.exists(q) else Path(".")


def load_config(path: str | os.PathLike | None = None, *, start=None) -> Config:
    """Read ``path``, or the file :func:`find_config` finds from ``start``; defaults when none.

    Errors name the file: ``pyproject.toml: [tool.shapelint] fail-on: ...``.
    """
    if path is not None:
        p = Path(path)
        if not os.path.isfile(p):  # os.path: a name too long is no such file, not an OSError
            raise ConfigError(f"{p}: " + ("not a regular file: refused" if os.path.exists(p) else "no such config file"))
        table = _table_of(p)
        if table is None:
            raise ConfigError(f"{p}: has no [tool.shapelint] table")
    else:
        p = find_config(start)
        if p is None and start is not None:
            p = find_config(None)
        if p is None:
            return Config()
        table = _table_of(p)
    try:
        cfg = parse_config(table or {})
    except ConfigError as exc:
        raise ConfigError(f"{_where(p)}{exc}") from None
    cfg.path = p
    logger.debug("config from %s", p)
    return cfg


def _where(path: Path | None) -> str:
    """The prefix naming a config file (and its table) in an error."""
    if path is None:
        return ""
    return f"{path}: [tool.shapelint] " if path.name == "pyproject.toml" else f"{path}: "


# ---------------------------------------------------------------- validation
def _shown(name: str) -> str:
    """A key as an error shows it: as written, or quoted when it holds a newline or another unprintable character.

    >>> _shown("SL103"), _shown("a\\nb")
    ('SL103', "'a\\\\nb'")
    """
    return name if name.isprintable() else repr(name)


def _type_name(v) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}.get(
        type(v), type(v).__name__
    )


def _listed(key: str, value, what: str) -> list:
    """``value`` as a list (one string is a list of one); anything else is the config's error."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected a list of {what}, got {_type_name(value)}")
    return value


def _selectors(key: str, value) -> list[str]:
    value = _listed(key, value, 'codes such as ["SL1", "SL501"]')
    out = []
    for v in value:
        if not isinstance(v, str) or not _SELECTOR.match(v.strip().upper()):
            raise ConfigError(f"{key}: {v!r} is not a rule code or prefix (e.g. SL201, SL2, ACME101, ALL)")
        out.append(v.strip().upper())
    return out


def _patterns(key: str, value) -> list[str]:
    value = _listed(key, value, 'patterns such as ["legacy/", "*_int8.onnx"]')
    from .discovery import bad_pattern

    out = []
    for v in value:
        why = bad_pattern(v) if isinstance(v, str) else "not a file or folder pattern"
        if why:
            raise ConfigError(f"{key}: {str(v)[:60]!r} is {why}")
        out.append(v)
    return out


def _flag(key: str, value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {_type_name(value)}")
    return value


def _choice(key: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    return value


def _table(key: str, value) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table, got {_type_name(value)}")
    return value


_PLAIN_KEYS = {"select": _selectors, "ignore": _selectors, "extend-select": _selectors, "extend-ignore": _selectors,
               "exclude": _patterns, "extend-exclude": _patterns, "respect-gitignore": _flag, "force-exclude": _flag,
               "cache": _flag}


def parse_config(table: dict) -> Config:
    """Check every key and value of a shapelint table; build a :class:`Config`."""
    cfg = Config()
    for key, value in table.items():
        if key not in KEYS:
            hint = difflib.get_close_matches(key.replace("_", "-"), KEYS, n=1, cutoff=0.6)
            raise ConfigError(
                f"unknown key {key!r}" + (f" (did you mean {hint[0]!r}?)" if hint else f"; known keys: {', '.join(KEYS)}")
            )
        plain = _PLAIN_KEYS.get(key)
        if plain is not None:  # one value, checked by one function, stored under the key's own name
            setattr(cfg, key.replace("-", "_"), plain(key, value))
        elif key == "per-file-ignores":
            cfg.per_file_ignores = {str(g): _selectors(f"{key}.{g!r}", v) for g, v in _table(key, value).items()}
        elif key == "severity":
            out = {}
            for code, sev in _table(key, value).items():
                if not re.match(r"^[A-Z]{1,8}[0-9]{3}\Z", code.upper()):
                    raise ConfigError(f"severity: {code!r} is not a rule code (e.g. SL501)")
                out[code.upper()] = _choice(f"severity.{code}", sev, SEVERITIES)
            cfg.severity = out
        elif key == "fail-on":
            cfg.fail_on = _choice(key, value, SEVERITIES)
        elif key == "dims":
            out = {}
            for name, n in _table(key, value).items():
                if not _DIM_NAME.match(name):
                    raise ConfigError(f"dims: {name!r} is not a dim name")
                if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_DIM:
                    raise ConfigError(f"dims.{name}: expected an integer >= 0 (and below 2**63), got {str(n)[:40]}")
                out[name] = n
            cfg.dims = out
        elif key == "jobs":
            if value == "auto":
                cfg.jobs = None
            elif isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
                raise ConfigError(f'jobs: expected an integer from 1 to 256 or "auto", got {value!r}')
            else:
                cfg.jobs = value
        elif key == "format":
            cfg.format = _choice(key, value, FORMATS)
        elif key == "cache-dir":
            if not isinstance(value, str) or not value.strip() or "\x00" in value:
                raise ConfigError(f"cache-dir: expected a folder path, got {str(value)[:60]!r}")
            cfg.cache_dir = value
        elif key == "plugins":
            out = {}
            for name, opts in _table(key, value).items():
                out[name.upper() if re.match(r"^[A-Za-z]{1,8}[0-9]{3}\Z", name) else name] = dict(_table(f"plugins.{_shown(name)}", opts))
            cfg.plugins = out
    return cfg
