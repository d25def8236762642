"""Formatters: text for people; JSON, SARIF and GitHub annotations for machines."""

from .github import render_github
from .json import render_json
from .sarif import render_sarif
from .text import render_text

FORMATS = ("text", "json", "jsonl", "sarif", "github")

__all__ = ["render_text", "render_json", "render_jsonl", "render_sarif", "render_github", "FORMATS", "render"]


def render_jsonl(report) -> str:
    """One line per file: the object ``--format json`` has in ``files[]`` (input order; ``check`` streams them)."""
    import json

    return "\n".join(json.dumps(f.to_json()) for f in report.files)


def render(report, fmt: str, rules=(), root=None, **kw) -> str:
    """``report`` in ``fmt``; ``rules`` (the classes that ran) feed SARIF's rule descriptors.

    ``root``: the repository root SARIF and GitHub paths are relative to
    (default: found from the first file, see :mod:`shapelint.report.locations`).
    """
    if fmt == "json":
        return render_json(report)
    if fmt == "jsonl":
        return render_jsonl(report)
    if fmt == "sarif":
        return render_sarif(report, rules, root=root)
    if fmt == "github":
        return render_github(report, root=root)
    return render_text(report, **kw)
