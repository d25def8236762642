"""What inference knows about each tensor, and the conflicts it met."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..analyses import Analyses
from ..dims import Comparison, Dim, Shape, format_shape, product
from ..graph import tensor_value

__all__ = ["TensorInfo", "Conflict", "ShapeTable", "UNKNOWN"]

logger = logging.getLogger(__name__)


@dataclass(slots=True, init=False)
class TensorInfo:
    """One tensor: element type, symbolic shape and, for small ones, its value.

    ``value`` holds the elements of a small integer tensor symbolically (a flat
    tuple of dims, e.g. the output of ``Shape``); ``const`` holds the exact
    numpy value of a small constant.  ``kind`` is ``tensor``, ``sequence``,
    ``optional`` or ``map``; ``elem`` describes a sequence's element.
    """

    dtype: int | None = None
    shape: Shape = None
    value: tuple | None = None
    _const: np.ndarray | None = None
    kind: str = "tensor"
    elem: "TensorInfo | None" = None
    #: an initializer whose value is read only when a handler asks for it
    proto: onnx.TensorProto | None = None
    #: a sequence's number of elements, where it is known (SequenceEmpty, one SequenceInsert per Loop iteration)
    length: "Dim" = None

    def __init__(self, dtype=None, shape=None, value=None, const=None, kind="tensor", elem=None, proto=None,
                 length=None):
        self.dtype, self.shape, self.value, self._const = dtype, shape, value, const
        self.kind, self.elem, self.proto, self.length = kind, elem, proto, length

    @property
    def const(self) -> np.ndarray | None:
        if self._const is None and self.proto is not None:
            self._const = tensor_value(self.proto)
            self.proto = None
        return self._const

    @const.setter
    def const(self, value) -> None:
        self._const, self.proto = value, None

    @property
    def has_const(self) -> bool:
        """True when a constant value is (or can be) known, without reading it."""
        return self._const is not None or self.proto is not None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def numel(self) -> Dim:
        return None if self.shape is None else product(self.shape)

    def __str__(self) -> str:
        return format_shape(self.shape)


UNKNOWN = TensorInfo()


@dataclass
class Conflict:
    """An op whose inputs cannot all be right.

    ``relation`` is ``different`` (fails for every value of the symbols) or
    ``only_when`` (holds only for the values in ``when``, e.g. batch == 4).
    """

    node: onnx.NodeProto
    kind: str  # "matmul" | "broadcast" | "concat" | "reshape" | "op" | "declared" | "unsupported"
    message: str
    requirement: str = ""
    inputs: list[tuple[str, Shape]] = field(default_factory=list)
    relation: str = "different"
    when: Comparison | None = None
    tensor: str | None = None


@dataclass
class ShapeTable:
    """Inference results: tensor name → :class:`TensorInfo`, plus conflicts."""

    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)
    # main-graph node name -> names of the subgraph tensors inferred for it
    declared: dict[str, TensorInfo] = field(default_factory=dict)
    #: conditions on the inputs' dynamic dims that inference needed (:mod:`shapelint.infer.constraints`)
    constraints: list = field(default_factory=list)
    #: how inference read the model where it departs from the file's words (a ``dim_value: -1`` input axis)
    notes: list[str] = field(default_factory=list)
    #: Loop-body inputs of a sequence the loop starts empty and appends to once an iteration: what it holds
    #: when the body runs are earlier iterations' appends, so an append gives the elements' shape
    appended: set[str] = field(default_factory=set)
    #: analyses computed from this table (e.g. axis roles), keyed by the function computing each
    #: (:class:`shapelint.analyses.Analyses`), shared by the rules, verify and fix, freed with it
    analyses: Analyses = field(default_factory=Analyses, repr=False, compare=False)

    def get(self, name: str) -> TensorInfo:
        return self.tensors.get(name, UNKNOWN) if name else UNKNOWN

    def shape(self, name: str) -> Shape:
        return self.get(name).shape

    def __contains__(self, name: str) -> bool:
        return name in self.tensors
