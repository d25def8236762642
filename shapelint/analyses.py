"""The analyses of one model, each computed once: a registry keyed by what computes them.

An analysis (the axis algebra, the LSTM output roles, an index of Loop
bodies) is computed from the graph and the shape table on first use and
shared by every rule, by ``verify`` and by ``fix``; it lives as long as the
shape table.  The key is the function (or class) that computes the value,
never a string, so two rules cannot collide on a name and a type checker
knows what :meth:`Analyses.get` returns.

>>> def width(graph, table):
...     return 8
>>> a = Analyses()
>>> width in a, a.peek(width)
(False, None)
>>> a.get(width, None, None), width in a
(8, True)
>>> a.get("axes")
Traceback (most recent call last):
...
TypeError: analyses are keyed by the function or class that computes them, not by 'axes'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Analyses"]

T = TypeVar("T")


class Analyses:
    """Values computed from one model's graph and shapes, each once, keyed by the callable computing it."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done: dict[Callable[..., Any], Any] = {}

    @staticmethod
    def _key(key):
        if isinstance(key, str) or not callable(key):
            raise TypeError(f"analyses are keyed by the function or class that computes them, not by {key!r}")
        return key

    def get(self, key: Callable[..., T], *args: Any) -> T:
        """The value of ``key(*args)``, computed on the first call only (``args`` are ignored afterwards)."""
        key = self._key(key)
        try:
            return self._done[key]
        except KeyError:
            value = self._done[key] = key(*args)
            return value

    def peek(self, key: Callable[..., T]) -> T | None:
        """The value if it was computed already, else None (nothing is computed)."""
        return self._done.get(self._key(key))

    def put(self, key: Callable[..., T], value: T) -> T:
        """Record a value computed elsewhere (e.g. by a test) under ``key``."""
        self._done[self._key(key)] = value
        return value

    def __contains__(self, key) -> bool:
        return self._key(key) in self._done

    def __len__(self) -> int:
        return len(self._done)

    def __repr__(self) -> str:
        names = ", ".join(getattr(k, "__qualname__", repr(k)) for k in self._done)
        return f"Analyses({names})"
