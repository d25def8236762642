"""Formatters: text for people, JSON for machines."""

from .json import render_json
from .text import render_text

FORMATS = ("text", "json")

__all__ = ["render_text", "render_json", "FORMATS", "render"]


def render(report, fmt: str, **kw) -> str:
    if fmt == "json":
        return render_json(report)
    return render_text(report, **kw)
