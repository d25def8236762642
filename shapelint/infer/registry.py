"""Per-op inference handlers and the context they are given.

A handler takes a :class:`NodeContext` and returns one :class:`TensorInfo` per
output (``None`` for "let the onnx fallback decide").  It reports conflicts
with :meth:`NodeContext.conflict` and returns what can still be known, so one
run reports every conflict.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import onnx

from ..dims import Comparison, Dim, Relation, compare, format_dim, format_shape, fresh_symbol, simplify
from .table import Conflict, ShapeTable, TensorInfo, UNKNOWN

__all__ = ["register", "handler_for", "NodeContext", "Handler", "values_of", "int_values"]

logger = logging.getLogger(__name__)

Handler = Callable[["NodeContext"], "list[TensorInfo | None] | None"]
_HANDLERS: dict[tuple[str, str], Handler] = {}


def register(*op_types: str, domain: str = ""):
    """Decorator: ``@register("Reshape")`` makes the function the Reshape handler."""

    def deco(fn: Handler) -> Handler:
        for op in op_types:
            _HANDLERS[(domain, op)] = fn
        return fn

    return deco


def handler_for(domain: str, op_type: str) -> Handler | None:
    if domain == "ai.onnx":
        domain = ""
    return _HANDLERS.get((domain, op_type))


class NodeContext:
    """Everything a handler may read about one node, and how it reports."""

    __slots__ = ("node", "table", "opset", "_attrs", "_inputs", "scope_name")

    def __init__(self, node: onnx.NodeProto, table: ShapeTable, opset: int, scope_name: str = ""):
        self.node = node
        self.table = table
        self.opset = opset
        self._attrs: dict | None = None
        self._inputs: list[TensorInfo] | None = None
        self.scope_name = scope_name

    # ------------------------------------------------------------- inputs
    @property
    def inputs(self) -> list[TensorInfo]:
        if self._inputs is None:
            self._inputs = [self.table.get(name) for name in self.node.input]
        return self._inputs

    def input(self, i: int) -> TensorInfo:
        """The i-th input, or an unknown tensor when absent/optional-empty."""
        ins = self.inputs
        return ins[i] if i < len(ins) else UNKNOWN

    def has_input(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def shape(self, i: int):
        return self.input(i).shape

    def dtype(self, i: int) -> int | None:
        return self.input(i).dtype

    # ------------------------------------------------------------ attributes
    @property
    def attrs(self) -> dict:
        if self._attrs is None:
            out = {}
            for a in self.node.attribute:
                if a.ref_attr_name:
                    continue
                try:
                    out[a.name] = onnx.helper.get_attribute_value(a)
                except Exception:  # noqa: BLE001
                    continue
            self._attrs = out
        return self._attrs

    def attr(self, name: str, default=None):
        v = self.attrs.get(name, default)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if default is not None and v is not default and not _same_kind(v, default):
            raise AttributeTypeError(f"attribute {name!r} is a {type(v).__name__}, the op needs {_a(type(default).__name__)}")
        if default is None and v is not None and name in _INT_ATTRS and not isinstance(v, int):
            raise AttributeTypeError(f"attribute {name!r} is a {type(v).__name__}, the op needs an int")
        if default is None and v is not None and name in _INTS_ATTRS and not (isinstance(v, list) and all(isinstance(i, int) for i in v)):
            raise AttributeTypeError(f"attribute {name!r} is a {type(v).__name__}, the op needs a list of ints")
        return v

    def ints(self, i: int) -> list[Dim] | None:
        """Input ``i`` as a list of (symbolic) integers: constant or propagated value."""
        if not self.has_input(i):
            return None
        return int_values(self.input(i))

    # ------------------------------------------------------------- reporting
    def conflict(
        self,
        kind: str,
        message: str,
        requirement: str = "",
        cmp: Comparison | None = None,
        tensor: str | None = None,
        inputs: list[int] | None = None,
    ) -> None:
        idx = range(len(self.node.input)) if inputs is None else inputs
        shown = [(self.node.input[i], self.input(i).shape) for i in idx if i < len(self.node.input) and self.node.input[i]]
        relation = "different"
        when = None
        if cmp is not None and cmp.relation == Relation.ONLY_WHEN:
            relation, when = "only_when", cmp
        self.table.conflicts.append(
            Conflict(self.node, kind, message, requirement, shown, relation, when, tensor)
        )

    def require_equal(self, a: Dim, b: Dim, kind: str, what: str, requirement: str, inputs=None) -> Dim:
        """Check ``a == b``; report when refuted or only conditionally true.

        Returns the dim to carry on with (the more informative side).
        """
        if a is b or (type(a) is int and a == b):
            return a
        cmp = compare(a, b)
        if cmp.relation in (Relation.DIFFERENT, Relation.ONLY_WHEN) and callable(what):
            what = what()
        if cmp.relation == Relation.DIFFERENT:
            self.conflict(kind, f"{what}: {format_dim(a)} vs {format_dim(b)}", requirement, cmp, inputs=inputs)
        elif cmp.relation == Relation.ONLY_WHEN:
            self.conflict(
                kind,
                f"{what}: {format_dim(a)} vs {format_dim(b)}, equal only when {cmp.describe()}",
                requirement,
                cmp,
                inputs=inputs,
            )
            return a if not isinstance(a, int) else b  # assume it holds downstream: keep the symbol
        elif cmp.relation == Relation.UNKNOWN:
            from .constraints import require_equal_when

            if require_equal_when(ctx=self, a=a, b=b, why=f"{self.node.op_type} needs {requirement or 'them equal'}"):
                from .ops._common import simpler

                return simpler(a, b)
        return pick(a, b)

    def out(self, dtype=None, shape=None, value=None, const=None) -> TensorInfo:
        if shape is not None:
            shape = tuple(simplify(d) if d is not None else fresh_symbol() for d in shape)
        return TensorInfo(dtype=dtype, shape=shape, value=value, const=const)

    def describe_inputs(self) -> str:
        return ", ".join(format_shape(self.shape(i)) for i in range(len(self.node.input)) if self.has_input(i))


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


class AttributeTypeError(ValueError):
    """An attribute of the wrong type (a hostile or broken file): the node's outputs stay unknown."""


_INT_ATTRS = {"axis", "to", "hidden_size", "group", "keepdims", "k", "num_outputs", "num_scan_inputs", "transA", "transB"}
_INTS_ATTRS = {"perm", "axes", "kernel_shape", "strides", "pads", "dilations", "split", "shape", "output_shape", "output_padding"}


def _same_kind(v, default) -> bool:
    if isinstance(default, bool) or isinstance(default, int):
        return isinstance(v, int)
    if isinstance(default, float):
        return isinstance(v, (int, float))
    if isinstance(default, str):
        return isinstance(v, str)
    if isinstance(default, (list, tuple)):
        return isinstance(v, (list, tuple))
    return True


def pick(a: Dim, b: Dim) -> Dim:
    """Of two dims meant to be equal, the one that says more."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    from ..dims import free_names

    if free_names(b) and not free_names(a):
        return b
    return a


def values_of(info: TensorInfo) -> tuple | None:
    """Flat symbolic elements of a small integer tensor, if known."""
    if info.value is not None:
        return info.value
    c = info.const
    if c is not None and c.dtype.kind in "iub" and c.size <= 4096:
        flat = c.reshape(-1)
        return tuple((flat if c.dtype.kind != "b" else flat.astype(np.int64)).tolist())  # Python ints
    if info.shape is not None and any(isinstance(d, int) and d == 0 for d in info.shape):
        return ()  # an empty tensor's value is known whatever it was fed
    return None


def int_values(info: TensorInfo) -> list[Dim] | None:
    v = values_of(info)
    return None if v is None else list(v)


def const_array(info: TensorInfo) -> np.ndarray | None:
    return info.const
