"""shapelint: a static shape checker and graph linter for ONNX models.

>>> import shapelint
>>> callable(shapelint.infer_shapes) and callable(shapelint.check)
True
"""

__version__ = "0.1.0"

# Bound after the submodules load, so ``shapelint.check`` is the function, not the module.
from .check import check  # noqa: E402
from .shapes import infer_shapes  # noqa: E402

__all__ = ["__version__", "check", "infer_shapes"]
