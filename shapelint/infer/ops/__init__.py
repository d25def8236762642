"""Op handlers, one module per family; importing this package registers them all."""

from . import contrib, conv, elementwise, linalg, misc, reduce, rnn, sequence, shape_ops  # noqa: F401

__all__: list[str] = []
