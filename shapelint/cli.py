"""The ``shapelint`` command: check, shapes, rules, explain."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

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
        if n > 2**63 - 1:
            raise click.BadParameter(f"{v[:60]!r}: dims are int64 in ONNX, below 2**63", param_hint="--dim")
        out[name.strip()] = n
    return out


def _codes(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [c.strip().upper() for c in value.split(",") if c.strip()]


#: verify's own codes, selectable although no rule class carries them
_RUNTIME_CODES = ("SL900", "SL901", "SL902")


def _known_codes(flag: str, codes, rules) -> None:
    """A ``--select``/``--ignore`` code that matches no rule is an error, as in the config file."""
    import difflib

    known = [cls.code for cls in rules] + list(_RUNTIME_CODES)
    for sel in codes or ():
        if sel != "ALL" and not any(c.startswith(sel) for c in known):
            hint = difflib.get_close_matches(sel, known, n=1)
            _fail(f"{flag}: {sel[:40]!r} matches no installed rule"
                  + (f" (did you mean {hint[0]!r}?)" if hint else "; `shapelint rules` lists them"))


def _seconds(value: float) -> float:
    """``--timeout``: a finite number of seconds from 0.1 to a day (nan, inf and negatives are errors)."""
    import math

    if not math.isfinite(value) or not 0.1 <= value <= 86400:
        _fail(f"--timeout {value}: expected seconds from 0.1 to 86400")
    return value


def _write_text(path: str, text: str, protect, what: str) -> None:
    """Write a report atomically; never over one of the checked models; one line and exit 2 when it fails."""
    from .safeio import atomic_write

    if path in protect:
        _fail(f"{what} {path} is one of the checked models: shapelint never overwrites an input; choose another path")
    try:
        atomic_write(path, text)
    except OSError as exc:
        _fail(f"cannot write {what} {path}: {exc.strerror or exc}")


def _weights_of(files) -> list[str]:
    """The external-data files the models name (resolved from each model's folder), valid references or not.

    Only asked when an output path already exists: ``check -o w.bin m.onnx``
    must not overwrite the weights of ``m.onnx``.  A file that cannot be
    parsed names none (check reports it).
    """
    from .load import MAX_PROTO_BYTES, external_data_locations, parse_model_bytes
    from .safeio import read_regular

    out = []
    for f in files:
        try:
            model = parse_model_bytes(read_regular(f, MAX_PROTO_BYTES))
            locations = external_data_locations(model)
        except Exception:  # noqa: BLE001 - a bad file is check's to report, not this guard's
            continue
        base = os.path.dirname(f)
        out.extend(os.path.join(base, loc) for _name, loc in locations if loc and "\x00" not in loc)
    return out


def _cap_jobs(jobs: int) -> int:
    """At most the CPUs this process may use; a note on stderr when the request was larger."""
    from .config import default_jobs

    cpus = default_jobs()
    if jobs > cpus:
        click.echo(f"shapelint: note: --jobs {jobs} capped at {cpus}, the CPUs this process may use", err=True)
        return cpus
    return jobs


def _terminate_cleanly() -> None:
    """SIGTERM (timeout(1), CI cancellation, systemd) unwinds like Ctrl-C: child processes and temp dirs go too."""
    import signal

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, on_term)
    except (ValueError, OSError):  # not the main thread (an embedding app): its own business
        pass


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
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default=None, envvar="SHAPELINT_FORMAT", help="Output format [default: text] (env SHAPELINT_FORMAT).")
@click.option("--select", help="Comma-separated codes or prefixes to run (e.g. SL1,SL501).")
@click.option("--ignore", help="Comma-separated codes or prefixes to skip.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default=None, envvar="SHAPELINT_FAIL_ON", help="Lowest severity that makes the exit code 1 [default: error] (env SHAPELINT_FAIL_ON).")
@click.option("--jobs", "-j", type=click.IntRange(1, 256), default=None, envvar="SHAPELINT_JOBS", help="Worker processes [default: the machine's cores] (env SHAPELINT_JOBS).")
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Bind a symbolic dim to a size, e.g. --dim batch=8.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to a file instead of stdout.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="SHAPELINT_CONFIG", help="Read this shapelint.toml or pyproject.toml instead of searching upwards from PATH (env SHAPELINT_CONFIG).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), help="Drop findings recorded in this baseline: only new ones fail.")
@click.option("--write-baseline", "write_baseline_file", type=click.Path(dir_okay=False), help="Record the current findings in this baseline file (exit 0 unless a file could not be checked).")
@click.option("--graph", "graph_dir", type=click.Path(file_okay=False), help="Write an SVG picture of each finding's neighbourhood into this folder.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: on a terminal, for 10 files or more].")
@click.option("--verify", "run_verify", is_flag=True, help="Also run each model under onnxruntime and confirm the findings (see `shapelint verify`).")
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, envvar="SHAPELINT_PROVIDER", help="onnxruntime execution provider for --verify (env SHAPELINT_PROVIDER).")
@click.pass_obj
def check(settings: Settings, paths, fmt, select, ignore, fail_on, jobs, dims, output, config_file, isolated, baseline_file, write_baseline_file, graph_dir, progress, run_verify=False, provider="cpu") -> None:
    """Check ONNX models (files, folders searched for *.onnx, or globs).

    Settings come from the nearest shapelint.toml or [tool.shapelint] in a
    pyproject.toml above the first PATH; flags and environment variables
    override them.  Exit status: 0 nothing at or above --fail-on, 1
    findings, 2 a file could not be checked or bad usage.
    """
    from .baseline import BaselineError, filter_report, read_baseline, write_baseline
    from .check import check_paths, collect_paths
    from .config import Config, ConfigError, default_jobs, load_config
    from .plugins import PluginError, load_rules
    from .report import render
    from .runner import select_rules

    if isolated and config_file:
        raise click.UsageError("--isolated and --config exclude each other")
    try:
        cfg = Config() if isolated else load_config(config_file, start=paths[0])
        rules = load_rules()
        cfg.validate_against(list(rules))
        baseline = read_baseline(baseline_file) if baseline_file else None
    except (ConfigError, PluginError, BaselineError) as exc:
        _fail(str(exc))
    for name, err in rules.broken:
        click.echo(f"shapelint: warning: rule plugin {name} could not be loaded: {err}", err=True)
    if run_verify:
        _terminate_cleanly()
    fmt = fmt or cfg.format or "text"
    fail_on = fail_on or cfg.fail_on or "error"
    jobs = _cap_jobs(jobs or cfg.jobs or default_jobs())
    chosen_select = _codes(select) if select is not None else cfg.select
    chosen_ignore = _codes(ignore) if ignore is not None else cfg.ignore
    _known_codes("--select", _codes(select), rules)
    _known_codes("--ignore", _codes(ignore), rules)
    bindings = {**cfg.dims, **_parse_dims(dims)}
    files = collect_paths(paths)
    from .safeio import Protected

    protect = Protected(files)  # no output of this run may be one of its inputs, nor their weights
    if any(o and os.path.lexists(o) for o in (output, write_baseline_file, graph_dir)):
        for data_file in _weights_of(files):
            protect.add(data_file)
    if graph_dir and graph_dir in protect:
        _fail(f"--graph {graph_dir} is one of the checked models: choose a folder")
    if progress is None:
        progress = len(files) >= 10 and sys.stderr.isatty() and (bool(output) or sys.stdout.isatty())
    bar = click.progressbar(length=len(files), label="Checking", file=sys.stderr) if progress else None
    with bar if bar is not None else _nothing():
        report = check_paths(
            files, jobs=jobs, progress=(lambda _r: bar.update(1)) if bar is not None else None,
            select=chosen_select, ignore=chosen_ignore, bindings=bindings, rules=list(rules),
            severity_overrides=cfg.severity or None, rule_options=cfg.rule_options(rules) or None,
        )
    cfg.apply_per_file_ignores(report)
    if run_verify:
        report = _verify_checked(report, provider, bindings, chosen_select, chosen_ignore)
    done = None
    if write_baseline_file:
        try:
            data = write_baseline(report, write_baseline_file, protect=protect)
        except BaselineError as exc:
            _fail(str(exc))
        n = sum(e["count"] for entries in data["files"].values() for e in entries)
        click.echo(f"shapelint: wrote {n} finding(s) in {len(data['files'])} file(s) to {write_baseline_file}", err=True)
        done = 0
    if baseline is not None:
        result = filter_report(report, baseline, base_dir=Path(baseline_file).parent)
        if result.stale:
            click.echo(f"shapelint: {result.stale} baselined finding(s) no longer occur; rewrite the baseline to drop them", err=True)
    if graph_dir:
        from .picture import write_pictures

        try:
            written = write_pictures(report, graph_dir, bindings=bindings, jobs=jobs, protect=protect)
        except OSError as exc:
            _fail(f"--graph {graph_dir}: cannot write the pictures: {exc.strerror or exc}")
        click.echo(f"shapelint: wrote {len(written)} picture(s) to {graph_dir} (index.html)", err=True)
    text = render(report, fmt, rules=select_rules(rules, chosen_select, chosen_ignore),
                  color=settings.color and not output and fmt == "text",
                  **({"verbose": settings.verbose} if fmt == "text" else {}))
    if output:
        _write_text(output, text + "\n", protect, "the report")
    elif text:
        click.echo(text)
    code = report.exit_code(fail_on)
    sys.exit(code if done is None or code == 2 else done)


def _fail(message: str) -> None:
    """A one-line usage error on stderr, exit 2 (a newline in a file name is shown as \\n)."""
    message = message.replace("\r", "\\r").replace("\n", "\\n")
    click.echo(f"shapelint: error: {message}", err=True)
    sys.exit(2)


@contextlib.contextmanager
def _nothing():
    yield


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
        from .verify import explain_runtime_code

        doc = explain_runtime_code(code)
        if doc:
            click.echo(doc)
            return
        raise click.UsageError(f"unknown rule {code!r}; `shapelint rules` lists them")
    click.echo(f"{rule.code} ({rule.slug}) · {rule.severity.value} · {rule.origin}\n")
    click.echo(rule.doc())


_PROVIDER = click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, envvar="SHAPELINT_PROVIDER", help="onnxruntime execution provider; cuda never falls back to CPU silently (env SHAPELINT_PROVIDER).")
_TIMEOUT = click.option("--timeout", type=float, default=120.0, show_default=True, metavar="S", help="Time limit of the onnxruntime child process per model, in seconds.")
_MEMORY = click.option("--memory", "memory_mb", type=click.IntRange(min=64, max=2**40), default=4096, show_default=True, metavar="MB", help="Memory limit (address space) of the onnxruntime child process on CPU, in MB.")


def _verify_checked(report, provider, bindings, select, ignore, timeout=120.0, memory_mb=4096):
    """``check --verify``: run each checked file under onnxruntime; no provider is a usage error."""
    from .verify import ProviderUnavailable, verify_report

    try:
        return verify_report(report, dims=bindings, provider=provider, timeout=timeout, memory_mb=memory_mb, select=select, ignore=ignore)
    except ProviderUnavailable as exc:
        _fail(f"--provider {provider}: {exc}")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Also run at this size of a symbolic dim, e.g. --dim batch=8 (repeatable).")
@_PROVIDER
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text", show_default=True, help="Output format, as for check.")
@_TIMEOUT
@_MEMORY
@click.option("--select", help="Comma-separated codes or prefixes to report (SL900-SL902 are verify's own).")
@click.option("--ignore", help="Comma-separated codes or prefixes to skip.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default="error", show_default=True, help="Lowest severity that makes the exit code 1.")
@click.pass_obj
def verify(settings: Settings, paths, dims, provider, fmt, timeout, memory_mb, select, ignore, fail_on) -> None:
    """Run models under onnxruntime and confirm the static findings.

    Each symbolic input dim runs at 1, at a size other than the traced one,
    at the traced size when the model shows it, at the values inference
    relates it to, and at every --dim.  Every intermediate shape is compared
    with the inferred one (SL900 when they disagree); a runtime failure no
    finding explains is SL901; a crash, hang or memory blow-up of the child
    process is SL902.  Exit status as for check; 2 also when the provider is
    missing.
    """
    from .plugins import PluginError, load_rules
    from .report import render
    from .verify import ProviderUnavailable, verify_paths

    bindings = _parse_dims(dims)
    timeout = _seconds(timeout)
    try:
        rules = load_rules()
    except PluginError as exc:
        _fail(str(exc))
    _known_codes("--select", _codes(select), rules)
    _known_codes("--ignore", _codes(ignore), rules)
    _terminate_cleanly()
    try:
        report = verify_paths(paths, dims=bindings, provider=provider, timeout=timeout, memory_mb=memory_mb, rules=list(rules), select=_codes(select), ignore=_codes(ignore))
    except ProviderUnavailable as exc:
        _fail(f"--provider {provider}: {exc}")
    click.echo(render(report, fmt, rules=list(rules), color=settings.color and fmt == "text"))
    sys.exit(report.exit_code(fail_on))


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(), help="Where to write the fixed copy (never the input nor its weights).")
@click.option("--dry-run", is_flag=True, help="Show the edits and the re-check; write nothing, run nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--select", help="Comma-separated codes or prefixes whose findings to fix.")
@click.option("--ignore", help="Comma-separated codes or prefixes to leave alone.")
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Also confirm the copy at this size of a symbolic dim.")
@_PROVIDER
@_TIMEOUT
@_MEMORY
@click.pass_obj
def fix(settings: Settings, model, output, dry_run, fmt, select, ignore, dims, provider, timeout, memory_mb) -> None:
    """Apply the findings' machine-applicable fixes to a copy, then confirm it.

    The copy is re-checked (the fixed findings are gone, none is new) and run
    under onnxruntime at the same bindings as the original: it must run where
    the original failed, and tensors no edit touches keep their values.
    Exit status: 0 every finding fixed and the copy confirmed; 1 some
    findings have no mechanical fix (the others are still applied and
    written); 2 errors.
    """
    from .fix import FixError, fix_model, fix_to_json, render_fix_text
    from .plugins import PluginError, load_rules

    if not output and not dry_run:
        raise click.UsageError("give the fixed copy's path with -o FIXED.onnx, or use --dry-run")
    timeout = _seconds(timeout)
    _terminate_cleanly()
    try:
        rules = load_rules()
        result = fix_model(model, output, dry_run=dry_run, rules=list(rules), select=_codes(select), ignore=_codes(ignore), dims=_parse_dims(dims), provider=provider, timeout=timeout, memory_mb=memory_mb)
    except (PluginError, FixError) as exc:
        _fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps(fix_to_json(result), indent=2))
    else:
        click.echo(render_fix_text(result))
    sys.exit(result.exit_code)


if __name__ == "__main__":  # pragma: no cover
    main()
