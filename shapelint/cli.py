"""The ``shapelint`` command: check, shapes, rules, explain."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field

import click

from . import __version__

__all__ = ["main", "Settings"]

logger = logging.getLogger(__name__)


@dataclass
class Settings:
    """Options shared by every command, built once by the group."""

    color: bool = False
    verbose: int = 0
    extra: dict = field(default_factory=dict)


def _parse_dims(values) -> dict[str, int]:
    out = {}
    for v in values:
        name, sep, num = v.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{v!r}: expected NAME=INT, e.g. batch=8", param_hint="--dim")
        try:
            n = int(num)
        except ValueError:
            raise click.BadParameter(f"{v!r}: {num!r} is not an integer", param_hint="--dim") from None
        if n < 0:
            raise click.BadParameter(f"{v!r}: dims are >= 0", param_hint="--dim")
        out[name.strip()] = n
    return out


def _codes(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [c.strip().upper() for c in value.split(",") if c.strip()]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shapelint")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("--color/--no-color", default=None, help="Colour the text output (default: when a terminal).")
@click.pass_context
def main(ctx: click.Context, verbose: int, color: bool | None) -> None:
    """Static shape checker and graph linter for ONNX models."""
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Settings(color=sys.stdout.isatty() if color is None else color, verbose=verbose)


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, envvar="SHAPELINT_FORMAT", help="Output format (env SHAPELINT_FORMAT).")
@click.option("--select", help="Comma-separated codes or prefixes to run (e.g. SL1,SL501).")
@click.option("--ignore", help="Comma-separated codes or prefixes to skip.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error", show_default=True, envvar="SHAPELINT_FAIL_ON", help="Lowest severity that makes the exit code 1 (env SHAPELINT_FAIL_ON).")
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=1, show_default=True, envvar="SHAPELINT_JOBS", help="Worker processes (env SHAPELINT_JOBS).")
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Bind a symbolic dim to a size, e.g. --dim batch=8.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to a file instead of stdout.")
@click.pass_obj
def check(settings: Settings, paths, fmt, select, ignore, fail_on, jobs, dims, output) -> None:
    """Check ONNX models (files, folders searched for *.onnx, or globs).

    Exit status: 0 nothing at or above --fail-on, 1 findings, 2 a file could
    not be checked or bad usage.
    """
    from .check import check_paths
    from .plugins import PluginError, load_rules
    from .report import render

    bindings = _parse_dims(dims)
    try:
        rules = load_rules()
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None
    for name, err in rules.broken:
        click.echo(f"shapelint: warning: rule plugin {name} could not be loaded: {err}", err=True)
    report = check_paths(paths, jobs=jobs, select=_codes(select), ignore=_codes(ignore), bindings=bindings, rules=list(rules))
    text = render(report, fmt, color=settings.color and not output)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    else:
        click.echo(text)
    sys.exit(report.exit_code(fail_on))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Bind a symbolic dim to a size.")
@click.pass_obj
def shapes(settings: Settings, model, fmt, dims) -> None:
    """Every tensor's inferred shape, node by node (like Keras model.summary())."""
    from .graph import ModelGraph
    from .infer import infer
    from .load import LoadError, load_model
    from .shapes import shape_rows

    try:
        proto = load_model(model)
    except LoadError as exc:
        click.echo(f"{model}: error: {exc}", err=True)
        sys.exit(2)
    mg = ModelGraph.from_model(proto)
    table = infer(mg, _parse_dims(dims))
    rows = list(shape_rows(proto, table, mg))
    inputs = [{"tensor": vi.name, "shape": None if table.shape(vi.name) is None else [str(d) for d in _fmt_dims(table.shape(vi.name))]} for vi in proto.graph.input if vi.name not in {t.name for t in proto.graph.initializer}]
    if fmt == "json":
        click.echo(json.dumps({"model": model, "inputs": inputs, "nodes": rows}, indent=2))
        return
    from .dims import format_shape

    width_node = min(48, max([len(r["node"] or r["op_type"]) for r in rows] + [10]))
    width_op = max([len(r["op_type"]) for r in rows] + [7])
    click.echo(f"Model: {model}")
    for vi in inputs:
        click.echo(f"  input  {vi['tensor']}: {format_shape(table.shape(vi['tensor']))}")
    click.echo(f"{'node':<{width_node}}  {'op':<{width_op}}  output shape")
    click.echo("-" * (width_node + width_op + 30))
    for r in rows:
        name = (r["node"] or "")[-width_node:]
        for k, o in enumerate(r["outputs"] or [{"text": ""}]):
            left = f"{name:<{width_node}}  {r['op_type']:<{width_op}}" if k == 0 else " " * (width_node + width_op + 2)
            extra = f"  [{o['tensor']}]" if len(r["outputs"]) > 1 else ""
            click.echo(f"{left}  {o['text']}{extra}")
    unknown = sum(1 for r in rows for o in r["outputs"] if o["shape"] is None or "?" in o["text"])
    click.echo("-" * (width_node + width_op + 30))
    click.echo(f"{len(rows)} nodes, {sum(len(r['outputs']) for r in rows)} tensors, {unknown} with unknown shape")


def _fmt_dims(shape):
    from .dims import format_dim

    return [format_dim(d) for d in shape]


@main.command(name="rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_cmd(fmt) -> None:
    """List every rule: code, name, severity, origin and summary."""
    from .plugins import PluginError, load_rules

    try:
        rs = load_rules()
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None
    rows = [{"code": r.code, "name": r.slug, "severity": r.severity.value, "origin": r.origin, "summary": r.summary()} for r in rs]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['code']}  {row['name']:<32} {row['severity']:<8} {row['origin']:<12} {row['summary']}")
    for name, err in rs.broken:
        click.echo(f"(not loaded) {name}: {err}")


@main.command()
@click.argument("code")
def explain(code) -> None:
    """Print a rule's documentation."""
    from .plugins import PluginError, load_rules

    try:
        rs = load_rules()
    except PluginError as exc:
        raise click.UsageError(str(exc)) from None
    rule = rs.get(code) or next((r for r in rs if r.slug == code), None)
    if rule is None:
        raise click.UsageError(f"unknown rule {code!r}; `shapelint rules` lists them")
    click.echo(f"{rule.code} ({rule.slug}) · {rule.severity.value} · {rule.origin}\n")
    click.echo(rule.doc())


if __name__ == "__main__":  # pragma: no cover
    main()
