"""shapelint: a static shape checker and graph linter for ONNX models.

>>> import shapelint
>>> callable(shapelint.infer_shapes) and callable(shapelint.check)
True
"""

import sys as _sys
import types as _types

__version__ = "0.1.0"

__all__ = ["__version__", "check", "infer_shapes"]

#: the public functions, imported on first use: ``shapelint --version``, ``--help`` and the CLI's start-up
#: must not pay for onnx, networkx and sympy
_LAZY = {"check": ("check", "check"), "infer_shapes": ("shapes", "infer_shapes")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(_types.ModuleType):
    """Keeps ``shapelint.check`` the function once the submodule ``shapelint.check`` is imported.

    Importing a submodule sets it as an attribute of its package; with the
    function bound lazily, ``from shapelint.check import check_paths`` would
    otherwise make ``shapelint.check`` the module.
    """

    def __setattr__(self, name: str, value) -> None:
        if name == "check" and isinstance(value, _types.ModuleType):
            value = value.check
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


def __dir__():
    return sorted(set(globals()) | set(__all__))
