"""Rule discovery through the ``shapelint.rules`` entry-point group.

The built-in pack registers there exactly like a team's plugin does.  An
entry point names a :class:`~shapelint.rule.Rule` subclass, or a module or
list holding several.  Two rules with one code are a loud error; a plugin
that fails to import is reported, and the other rules still run.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from importlib import metadata

from .rule import CODE_PATTERN, Rule

__all__ = ["load_rules", "RuleSet", "PluginError", "GROUP"]

logger = logging.getLogger(__name__)

GROUP = "shapelint.rules"


class PluginError(Exception):
    """A rule set that cannot be used (duplicate code, malformed rule)."""


@dataclass
class RuleSet:
    rules: dict[str, type[Rule]] = field(default_factory=dict)  # code -> class, sorted
    broken: list[tuple[str, str]] = field(default_factory=list)  # (entry point, error)

    def __iter__(self):
        return iter(self.rules.values())

    def get(self, code: str) -> type[Rule] | None:
        return self.rules.get(code.upper())


def _expand(obj) -> list[type[Rule]]:
    if inspect.isclass(obj) and issubclass(obj, Rule):
        return [obj]
    if inspect.ismodule(obj):
        return [v for v in vars(obj).values() if inspect.isclass(v) and issubclass(v, Rule) and v is not Rule and v.code and v.__module__ == obj.__name__]
    if isinstance(obj, (list, tuple)):
        return [r for item in obj for r in _expand(item)]
    raise PluginError(f"{obj!r} is not a Rule subclass, a module of rules or a list of them")


def _builtin_entries():
    """Fallback when running from a source tree that was never installed."""
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    if not pyproject.is_file():
        return []
    data = tomllib.loads(pyproject.read_text())
    eps = data.get("project", {}).get("entry-points", {}).get(GROUP, {})
    return [metadata.EntryPoint(name, value, GROUP) for name, value in eps.items()]


def load_rules(extra: list[type[Rule]] | None = None) -> RuleSet:
    """Every rule installed in the environment, keyed by code."""
    rs = RuleSet()
    eps = list(metadata.entry_points(group=GROUP))
    own = [ep for ep in eps if ep.value.startswith("shapelint_rules.")]
    if not own:
        eps = _builtin_entries() + eps
    origins: dict[str, str] = {}
    for ep in sorted(eps, key=lambda e: (not e.value.startswith("shapelint_rules."), e.name)):
        dist = getattr(ep, "dist", None)
        if ep.value.startswith("shapelint_rules."):
            origin = "built-in"
        elif dist is not None:
            origin = f"{dist.metadata['Name']} {dist.version}"
        else:
            origin = ep.value.split(":")[0].split(".")[0]
        try:
            loaded = ep.load()
            classes = _expand(loaded)
        except PluginError as exc:
            rs.broken.append((f"{ep.name} = {ep.value}", str(exc)))
            continue
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the run
            rs.broken.append((f"{ep.name} = {ep.value} ({origin})", f"{type(exc).__name__}: {exc}"))
            continue
        for cls in classes:
            _add(rs, cls, origin, origins)
    for cls in extra or []:
        _add(rs, cls, getattr(cls, "origin", "") or "api", origins)
    rs.rules = dict(sorted(rs.rules.items()))
    return rs


def _add(rs: RuleSet, cls: type[Rule], origin: str, origins: dict[str, str]) -> None:
    code = cls.code
    if not CODE_PATTERN.match(code or ""):
        raise PluginError(f"rule {cls.__module__}.{cls.__name__} from {origin} has an invalid code {code!r} (want e.g. ACME101)")
    if not cls.slug:
        raise PluginError(f"rule {code} from {origin} has no slug")
    existing = rs.rules.get(code)
    if existing is not None and existing is not cls:
        raise PluginError(
            f"rule code {code} is defined twice: {existing.__module__}.{existing.__name__} ({origins[code]}) "
            f"and {cls.__module__}.{cls.__name__} ({origin}); give the plugin's rules their own prefix"
        )
    cls.origin = origin
    origins[code] = origin
    rs.rules[code] = cls
