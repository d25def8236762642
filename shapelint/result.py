"""What one ``check`` of one model leaves behind: the report and everything it was computed from.

``check`` returns a :class:`CheckResult`: the :class:`~shapelint.diagnostics.FileReport`
(it *is* one, so every formatter and caller reads it as before) plus the
model, its :class:`~shapelint.graph.ModelGraph`, the
:class:`~shapelint.infer.ShapeTable`, the analyses cached on it, and the
:class:`CheckSettings` it was made with.  ``verify``, ``fix`` and ``--graph``
take this object and never rebuild the pipeline; a copy ``fix`` edits is
checked with the same settings (``result.settings.check(copy)``).

Across worker processes only the report travels (:meth:`CheckResult.report`):
graphs and tables are large and hold callables.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .diagnostics import FileReport

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from .analyses import Analyses
    from .graph import ModelGraph
    from .infer import ShapeTable

__all__ = ["CheckResult", "CheckSettings", "Hooks"]


@dataclass(frozen=True)
class CheckSettings:
    """The options a check ran with: the same config, ``--dim``, selection and severities for every later step."""

    select: tuple | None = None
    ignore: tuple | None = None
    #: ``--dim`` and the config's ``dims``: symbolic dims pinned to sizes, for inference and for verify's runs
    bindings: tuple = ()
    rules: tuple | None = None
    options: tuple = ()
    severity_overrides: tuple = ()
    rule_options: tuple = ()
    #: external data files may be absent (``verify`` fills them with random weights, and says so)
    missing_weights_ok: bool = False

    @classmethod
    def make(cls, *, select=None, ignore=None, bindings=None, rules=None, options=None, severity_overrides=None,
             rule_options=None, missing_weights_ok=False) -> CheckSettings:
        return cls(
            select=tuple(select) if select else None,
            ignore=tuple(ignore) if ignore else None,
            bindings=tuple(sorted((bindings or {}).items())),
            rules=tuple(rules) if rules is not None else None,
            options=tuple(sorted((options or {}).items())),
            severity_overrides=tuple(sorted((severity_overrides or {}).items())),
            rule_options=tuple(sorted((k, tuple(sorted(v.items()))) for k, v in (rule_options or {}).items())),
            missing_weights_ok=missing_weights_ok,
        )

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`shapelint.check.check` that reproduce these settings."""
        return {
            "select": list(self.select) if self.select else None,
            "ignore": list(self.ignore) if self.ignore else None,
            "bindings": dict(self.bindings) or None,
            "rules": list(self.rules) if self.rules is not None else None,
            "options": dict(self.options) or None,
            "severity_overrides": dict(self.severity_overrides) or None,
            "rule_options": {k: dict(v) for k, v in self.rule_options} or None,
            "missing_weights_ok": self.missing_weights_ok,
        }

    @property
    def dims(self) -> dict[str, int]:
        return dict(self.bindings)

    def check(self, model_or_path, **changes) -> CheckResult:
        """Check another model (a copy ``fix`` edited) exactly as this one was checked."""
        from .check import check

        return check(model_or_path, **{**self.kwargs(), **changes})

    def replace(self, **changes) -> CheckSettings:
        return replace(self, **changes)


@dataclass(eq=False)
class CheckResult(FileReport):
    """A :class:`FileReport` that keeps the model, graph, shape table and analyses it was computed from.

    ``graph``, ``table`` and ``model`` are None when the file could not be
    read (``error`` set) and after :meth:`release`.
    """

    model: onnx.ModelProto | None = field(default=None, repr=False)
    graph: ModelGraph | None = field(default=None, repr=False)
    table: ShapeTable | None = field(default=None, repr=False)
    settings: CheckSettings = field(default_factory=CheckSettings, repr=False)

    @property
    def analyses(self) -> Analyses | None:
        """The analyses computed for this model (the registry on its shape table)."""
        return self.table.analyses if self.table is not None else None

    @property
    def ok(self) -> bool:
        """The model was read and analysed (graph and table are available)."""
        return self.error is None and self.graph is not None and self.table is not None

    @property
    def report(self) -> FileReport:
        """The plain report (sharing this result's diagnostics): what crosses processes and formatters read."""
        return FileReport(**{f.name: getattr(self, f.name) for f in fields(FileReport)})

    def release(self) -> FileReport:
        """Drop the model, graph and table (and the edits, which hold callables); returns the plain report."""
        self.model = self.graph = self.table = None
        return self.report


@dataclass
class Hooks:
    """Several ``check_paths(after=...)`` steps in a row (verify, then the pictures); each gets the result."""

    steps: tuple

    def __call__(self, result):
        for step in self.steps:
            result = step(result)
        return result

    def close(self) -> None:
        for step in self.steps:
            close = getattr(step, "close", None)
            if close is not None:
                close()
