"""shapelint: a static shape checker and graph linter for ONNX models."""

__version__ = "0.1.0"
