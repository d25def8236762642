"""Diagnostics and reports: what ``check`` returns and every formatter reads."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from .rule import Fix

__all__ = ["Diagnostic", "FileReport", "RunReport"]

logger = logging.getLogger(__name__)


@dataclass
class Diagnostic:
    """One finding, anchored on an ONNX node (None only for graph-level findings)."""

    rule: str
    name: str
    severity: str  # "error" | "warning" | "info"
    node: str | None
    op_type: str | None
    tensor: str | None
    message: str
    fix: str | None = None
    source: str | None = None
    edit: Fix | None = field(default=None, repr=False, compare=False)
    #: the rule offered a machine-applicable edit (kept when ``edit`` is dropped to cross processes)
    fixable: bool = field(default=False, repr=False, compare=False)
    #: ``--graph``: the SVG of the finding's neighbourhood, drawn where the graph was (not in the JSON)
    picture: str | None = field(default=None, repr=False, compare=False)
    #: set by ``verify``: {"status": "confirmed" | "not-reproduced" | "not-checked", "summary": str, ...}
    runtime: dict | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("edit")
        d.pop("fixable")
        d.pop("picture")
        if d.get("runtime") is None:
            d.pop("runtime", None)
        return d

    def sort_key(self):
        return (-{"error": 2, "warning": 1, "info": 0}[self.severity], self.rule, self.node or "")


@dataclass
class FileReport:
    """The result for one model file."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: set by ``verify``: provider, weights, bindings run, tensors compared, notes
    runtime: dict | None = None
    #: what a rule could not decide, and why: ``{"rule": code, "reason": text}``
    skipped: list = field(default_factory=list)
    #: recurrences the sequence rules looked at: ``{"total": n, "undecided": k}`` (None: no sequence rule ran)
    recurrences: dict | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return "findings" if self.diagnostics else "ok"

    def count(self, severity: str) -> int:
        return sum(1 for d in self.diagnostics if d.severity == severity)

    def to_json(self) -> dict:
        return {
            "path": self.path,
            "status": self.status,
            "error": self.error,
            "diagnostics": [d.to_json() for d in self.diagnostics],
            "skipped": list(self.skipped),
            **({"recurrences": self.recurrences} if self.recurrences is not None else {}),
            **({"runtime": self.runtime} if self.runtime is not None else {}),
        }


@dataclass
class RunReport:
    """Every file of one run, in the order the paths were given."""

    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for f in self.files for d in f.diagnostics]

    def summary(self) -> dict:
        return {
            "files": len(self.files),
            "errors": sum(f.count("error") for f in self.files),
            "warnings": sum(f.count("warning") for f in self.files),
            "infos": sum(f.count("info") for f in self.files),
            "failed_files": sum(1 for f in self.files if f.error is not None),
            "recurrences": sum((f.recurrences or {}).get("total", 0) for f in self.files),
            "undecided_recurrences": sum((f.recurrences or {}).get("undecided", 0) for f in self.files),
        }

    def exit_code(self, fail_on: str = "error") -> int:
        """0 clean, 1 findings at or above ``fail_on``, 2 a file could not be checked."""
        if any(f.error is not None for f in self.files):
            return 2
        threshold = {"error": 2, "warning": 1, "info": 0}[fail_on]
        rank = {"error": 2, "warning": 1, "info": 0}
        return 1 if any(rank[d.severity] >= threshold for d in self.diagnostics) else 0
