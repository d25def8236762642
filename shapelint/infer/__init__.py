"""Symbolic shape inference over a :class:`~shapelint.graph.ModelGraph`."""

from .table import Conflict, ShapeTable, TensorInfo
from .walk import Inferencer, infer

__all__ = ["infer", "Inferencer", "ShapeTable", "TensorInfo", "Conflict"]
