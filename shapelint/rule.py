"""The rule contract: what a built-in rule or a team's plugin implements.

A rule is one class: metadata (``code``, ``slug``, ``severity``, ``op_types``)
plus ``check(node, ctx)``, a generator of findings.  With ``op_types`` set it
is called for each node of those types; with ``op_types = ()`` it is called
once per model with ``node=None``.  The class docstring is the user doc
(``shapelint explain CODE`` prints it).

>>> class NoIdentity(Rule):
...     '''An Identity node that could be removed.'''
...     code, slug, severity = "ACME101", "useless-identity", Severity.INFO
...     op_types = ("Identity",)
...     def check(self, node, ctx):
...         yield ctx.finding(node, "Identity does nothing here")
>>> NoIdentity.summary()
'An Identity node that could be removed.'
"""

from __future__ import annotations

import contextlib

import enum
import inspect
import logging
import re
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterable, Iterator

import onnx

from .dims import Shape, format_shape
from .graph import ModelGraph
from .infer import ShapeTable, TensorInfo
from .infer.table import Conflict

__all__ = ["Rule", "Severity", "Context", "Finding", "Fix", "CODE_PATTERN"]

logger = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"^[A-Z]{1,8}[0-9]{3}$")


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass
class Fix:
    """A machine-applicable repair: ``apply(model)`` edits a copy of the model in place.

    ``preserves_outputs``: the edit changes no value wherever the original
    model ran (a layout rewrite, a literal shape replaced by the runtime
    one); ``shapelint fix`` then also compares the outputs downstream of it.
    """

    description: str
    apply: Callable[[onnx.ModelProto], None]
    preserves_outputs: bool = False


@dataclass
class Finding:
    """What a rule reports; the runner turns it into a :class:`~shapelint.diagnostics.Diagnostic`."""

    node: onnx.NodeProto | None
    message: str
    fix: str | None = None
    tensor: str | None = None
    edit: Fix | None = None
    severity: Severity | None = None  # overrides the rule's default when set


class Rule:
    """Base class of every rule; subclasses set the class attributes and ``check``."""

    code: ClassVar[str] = ""
    slug: ClassVar[str] = ""
    severity: ClassVar[Severity] = Severity.ERROR
    op_types: ClassVar[tuple[str, ...]] = ()
    #: codes whose findings on the same node this rule's finding replaces (a more specific diagnosis)
    supersedes: ClassVar[tuple[str, ...]] = ()
    #: set by the plugin loader: "built-in" or "<distribution> <version>"
    origin: ClassVar[str] = ""

    def check(self, node: onnx.NodeProto | None, ctx: "Context") -> Iterable[Finding]:
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def summary(cls) -> str:
        return cls.doc().splitlines()[0] if cls.doc() else ""


@dataclass
class Context:
    """What a rule may ask about the model under check."""

    graph: ModelGraph
    table: ShapeTable
    path: str = ""
    options: dict = field(default_factory=dict)
    rule: type[Rule] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _claimed: set = field(default_factory=set)
    #: (node, exception) a rule hit inside :meth:`isolated`; the runner reports each as an internal error
    crashes: list = field(default_factory=list)

    # -- shapes
    def info(self, tensor: str) -> TensorInfo:
        return self.table.get(tensor)

    def shape(self, tensor: str) -> Shape:
        return self.table.shape(tensor)

    def fmt(self, tensor: str) -> str:
        return format_shape(self.shape(tensor))

    # -- analyses shared by every rule (computed once per model, keyed by the function computing each)
    @property
    def analyses(self):
        """The model's :class:`shapelint.analyses.Analyses`: ``ctx.analyses.get(fn, *args)`` computes ``fn`` once."""
        return self.table.analyses

    # -- what axes are (the axis algebra, shapelint.axes)
    @property
    def axis_map(self):
        """The model's :class:`shapelint.axes.AxisMap` (computed on first use, shared by every rule)."""
        from .axes import axis_map_for

        return axis_map_for(self)

    def axes(self, tensor: str):
        """Factors of each axis of ``tensor`` (see :mod:`shapelint.axes`), or None when its rank is unknown."""
        return self.axis_map.axes(tensor)

    # -- structure
    def producer(self, tensor: str) -> onnx.NodeProto | None:
        return self.graph.producer(tensor)

    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return self.graph.consumers(tensor)

    def const(self, tensor: str):
        """Exact value of a small constant tensor (initializer, Constant, or folded)."""
        v = self.graph.const(tensor)
        if v is None:
            v = self.table.get(tensor).const
        return v

    def source(self, node: onnx.NodeProto | None) -> str | None:
        return self.graph.source(node)

    def conflicts(self, *kinds: str, relation: str | None = "different") -> Iterator[Conflict]:
        """Conflicts inference found, filtered by kind and relation."""
        for c in self.table.conflicts:
            if kinds and c.kind not in kinds:
                continue
            if relation is not None and c.relation != relation:
                continue
            yield c

    # -- wording
    @property
    def exporter(self) -> str:
        """Who wrote the model, from its ``producer_name`` in lower case (``pytorch``, ``tf2onnx``, ``jax2onnx``), or "".

        For wording only: what a rule finds never depends on it.
        """
        name = self.graph.model.producer_name
        return name.lower() if type(name) is str else ""

    def for_jax(self, text: str) -> str:
        """``"; JAX/Flax: <text>"`` for a model jax2onnx wrote (its authors wrote JAX, not the PyTorch and Keras a
        fix names), else ``""``: a fix's JAX wording, shown only to the people who can use it."""
        return f"; JAX/Flax: {text}" if self.exporter.startswith("jax2onnx") else ""

    # -- reporting
    def finding(self, node, message: str, fix: str | None = None, tensor: str | None = None, edit: Fix | None = None, severity: Severity | None = None) -> Finding:
        return Finding(node, message, fix, tensor, edit, severity)

    @contextlib.contextmanager
    def isolated(self, node):
        """Run one node's part of a whole-graph rule: an exception there is reported as an internal error on
        that node and the rule goes on with the next node (as the runner does for per-op rules)::

            for n in ctx.graph.topological_order():
                with ctx.isolated(n):
                    ...
        """
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - one node's bug must not hide the rule's other findings
            self.crashes.append((node, exc))

    def skip(self, reason: str) -> Iterator[Finding]:
        """Say why the rule could not decide (unknown shapes); yields nothing."""
        self.skipped.append((self.rule.code if self.rule else "", reason))
        return iter(())
