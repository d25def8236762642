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
    from .config import suggest

    known = [cls.code for cls in rules] + list(_RUNTIME_CODES)
    for sel in codes or ():
        if sel != "ALL" and not any(c.startswith(sel) for c in known):
            hint = suggest(sel, known)
            _fail(f"{flag}: {sel[:40]!r} matches no installed rule"
                  + (f" (did you mean {hint!r}?)" if hint else "; `shapelint rules` lists them"))


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


def resolve_color(flag: bool | None) -> bool:
    """``--color``/``--no-color``, else ``FORCE_COLOR``, else ``NO_COLOR`` (any non-empty value), else a terminal.

    FORCE_COLOR wins over NO_COLOR, as in ruff; a flag wins over both.
    """
    if flag is not None:
        return flag
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _set_color(ctx: click.Context, _param, value: bool | None) -> None:
    """``--color/--no-color`` after the subcommand: the same as before it."""
    if value is None:
        return
    settings = ctx.find_object(Settings)
    if settings is not None:
        settings.color = value
    ctx.color = value  # click.echo keeps (or strips) the ANSI codes accordingly, even when piped


_COLOR = click.option("--color/--no-color", default=None, expose_value=False, callback=_set_color, is_eager=True,
                      help="Colour the text output [default: on a terminal; env FORCE_COLOR, NO_COLOR].")


def _set_verbose(ctx: click.Context, _param, value: int) -> None:
    """``-v`` after the subcommand (``shapelint check -v M``): adds to the ``-v`` given before it."""
    if not value:
        return
    settings = ctx.find_object(Settings)
    if settings is not None:
        settings.verbose += value
        logging.getLogger().setLevel(logging.WARNING - 10 * min(settings.verbose, 2))


_VERBOSE = click.option("-v", "--verbose", count=True, expose_value=False, callback=_set_verbose,
                        help="More detail: why sequence rules were undecided, more logging (-vv for debug).")


class _Jobs(click.ParamType):
    """``--jobs``: an integer from 1 to 256, or ``auto`` (the cores this process may use)."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        try:
            n = int(text)
        except ValueError:
            self.fail(f"{str(value)[:40]!r} is not an integer from 1 to 256, nor 'auto'", param, ctx)
        if not 1 <= n <= 256:
            self.fail(f"{n} is not in the range 1<=x<=256 (or 'auto')", param, ctx)
        return n


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="shapelint")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.option("--color/--no-color", default=None, help="Colour the text output [default: on a terminal; env FORCE_COLOR, NO_COLOR].")
@click.pass_context
def main(ctx: click.Context, verbose: int, color: bool | None) -> None:
    """Static shape checker and graph linter for ONNX models."""
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Settings(color=resolve_color(color), verbose=verbose)
    ctx.color = ctx.obj.color


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json", "jsonl", "sarif", "github"]), default=None, envvar="SHAPELINT_FORMAT", help="Output format [default: text]; jsonl: one file's JSON report a line, as files finish (env SHAPELINT_FORMAT).")
@click.option("--select", metavar="CODES", help="Comma-separated codes or prefixes to run (e.g. SL1,SL501).")
@click.option("--extend-select", metavar="CODES", help="Codes or prefixes to run in addition to the selected ones.")
@click.option("--ignore", metavar="CODES", help="Comma-separated codes or prefixes to skip.")
@click.option("--extend-ignore", metavar="CODES", help="Codes or prefixes to skip in addition to the ignored ones.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default=None, envvar="SHAPELINT_FAIL_ON", help="Lowest severity that makes the exit code 1 [default: error] (env SHAPELINT_FAIL_ON).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings (2 still means a file could not be checked).")
@click.option("--jobs", "-j", type=_Jobs(), default=None, envvar="SHAPELINT_JOBS", help="Worker processes, or auto [default: auto, the machine's cores] (env SHAPELINT_JOBS).")
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Bind a symbolic dim to a size, e.g. --dim batch=8.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write the report to a file instead of stdout.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="SHAPELINT_CONFIG", help="Read this shapelint.toml or pyproject.toml instead of searching upwards from PATH (env SHAPELINT_CONFIG).")
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option("--exclude", metavar="PATTERNS", help="Comma-separated gitignore-style patterns not to walk into (replaces the defaults: .git, .venv, node_modules, build, ...).")
@click.option("--extend-exclude", metavar="PATTERNS", help="Patterns to exclude in addition to the defaults (or to --exclude).")
@click.option("--respect-gitignore/--no-respect-gitignore", default=None, help="Skip what .gitignore files ignore [default: on].")
@click.option("--force-exclude/--no-force-exclude", default=None, help="Apply the exclude patterns to files named on the command line too (pre-commit).")
@click.option("--show-files", is_flag=True, help="Print the files that would be checked, and exit.")
@click.option("--show-settings", is_flag=True, help="Print the effective settings, and exit.")
@click.option("--statistics", is_flag=True, help="Print how many findings each rule has, instead of the findings.")
@click.option("-q", "--quiet", count=True, help="Print the findings only: no summary, notes or warnings (-qq: nothing; the exit status says it).")
@click.option("--silent", is_flag=True, help="The same as -qq.")
@click.option("--baseline", "baseline_file", type=click.Path(dir_okay=False), help="Drop findings recorded in this baseline: only new ones fail.")
@click.option("--write-baseline", "write_baseline_file", type=click.Path(dir_okay=False), help="Record the current findings in this baseline file (exit 0 unless a file could not be checked).")
@click.option("--graph", "graph_dir", type=click.Path(file_okay=False), help="Write an SVG picture of each finding's neighbourhood into this folder.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: on a terminal, for 10 files or more].")
@click.option("--verify", "run_verify", is_flag=True, help="Also run each model under onnxruntime and confirm the findings (see `shapelint verify`).")
@click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, envvar="SHAPELINT_PROVIDER", help="onnxruntime execution provider for --verify (env SHAPELINT_PROVIDER).")
@click.option("--no-cache", is_flag=True, default=False, envvar="SHAPELINT_NO_CACHE", help="Check every file, without reading or writing the result cache (env SHAPELINT_NO_CACHE, config cache = false).")
@click.option("--cache-dir", metavar="DIR", envvar="SHAPELINT_CACHE_DIR", help="Where the result cache lives [default: .shapelint_cache next to the config file, else in the working directory] (env SHAPELINT_CACHE_DIR).")
@click.option("--scheduler", metavar="ADDRESS", help="Check on a Dask cluster: tcp://HOST:PORT, or local[:N] for a local cluster of N worker processes (the dask extra: pip install '.[dask]' in shapelint's source folder).")
@_COLOR
@_VERBOSE
@click.pass_obj
def check(settings: Settings, paths, fmt, select, ignore, fail_on, jobs, dims, output, config_file, isolated, baseline_file, write_baseline_file, graph_dir, progress, run_verify=False, provider="cpu",
          extend_select=None, extend_ignore=None, exit_zero=False, exclude=None, extend_exclude=None, respect_gitignore=None,
          force_exclude=None, show_files=False, show_settings=False, statistics=False, quiet=0, silent=False,
          no_cache=False, cache_dir=None, scheduler=None) -> None:
    """Check ONNX models (files, folders searched for *.onnx, or globs).

    Settings come from the nearest shapelint.toml or [tool.shapelint] in a
    pyproject.toml above the first PATH; flags and environment variables
    override them.  A file whose bytes, rules and settings are unchanged
    since the last run is read from the result cache (.shapelint_cache).
    Exit status: 0 nothing at or above --fail-on, 1 findings, 2 a file
    could not be checked or bad usage.
    """
    from .baseline import BaselineError, filter_report, read_baseline, write_baseline
    from .check import check_paths
    from .config import Config, ConfigError, default_jobs, load_config
    from .discovery import DEFAULT_EXCLUDE, discover
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
    quiet = 2 if silent else quiet
    for name, err in rules.broken:
        if not quiet:
            click.echo(f"shapelint: warning: rule plugin {name} could not be loaded: {err}", err=True)
    if run_verify:
        _terminate_cleanly()
    fmt = fmt or cfg.format or "text"
    fail_on = fail_on or cfg.fail_on or "error"
    if scheduler is not None:
        _check_scheduler(scheduler, run_verify, graph_dir)
    for flag, value in (("--select", select), ("--extend-select", extend_select), ("--ignore", ignore), ("--extend-ignore", extend_ignore)):
        _known_codes(flag, _codes(value), rules)
    chosen_select, chosen_ignore = _selection(cfg, select, extend_select, ignore, extend_ignore)
    bindings = {**cfg.dims, **_parse_dims(dims)}
    walk = {
        "exclude": list(_patterns("--exclude", exclude) if exclude is not None else cfg.exclude if cfg.exclude is not None else DEFAULT_EXCLUDE),
        "extend_exclude": [*cfg.extend_exclude, *_patterns("--extend-exclude", extend_exclude)],
        "respect_gitignore": respect_gitignore if respect_gitignore is not None else cfg.respect_gitignore is not False,
        "force_exclude": force_exclude if force_exclude is not None else bool(cfg.force_exclude),
    }
    found = discover(paths, root=cfg.root, **walk)
    files = found.files
    if show_files:
        for f in files:
            click.echo(f)
        sys.exit(0)
    cache_folder = _cache_folder(cfg, no_cache, cache_dir)
    if show_settings:
        chosen_jobs = default_jobs() if jobs == "auto" else jobs or cfg.jobs or default_jobs()
        _show_settings(cfg, paths, fmt, fail_on, chosen_select, chosen_ignore, bindings, min(chosen_jobs, default_jobs()), walk,
                       select_rules(rules, chosen_select, chosen_ignore), cache_folder)
        sys.exit(0)
    if not quiet:
        for where in found.empty:
            click.echo(f"shapelint: warning: no .onnx files found under {where}", err=True)
    jobs = default_jobs() if jobs == "auto" else jobs or cfg.jobs or default_jobs()
    jobs = _cap_jobs(jobs) if not quiet else min(jobs, default_jobs())
    from .safeio import Protected

    protect = Protected(files)  # no output of this run may be one of its inputs, nor their weights
    if any(o and os.path.lexists(o) for o in (output, write_baseline_file, graph_dir)):
        for data_file in _weights_of(files):
            protect.add(data_file)
    if graph_dir and graph_dir in protect:
        _fail(f"--graph {graph_dir} is one of the checked models: choose a folder")
    # --format jsonl on stdout: each file's line as it finishes, its per-file-ignores and baseline applied then
    stream = fmt == "jsonl" and not output and not statistics and not write_baseline_file
    if progress is None:
        progress = (len(files) >= 10 and sys.stderr.isatty() and (bool(output) or sys.stdout.isatty())
                    and not stream)
    bar = click.progressbar(length=len(files), label="Checking", file=sys.stderr) if progress else None
    cache = None
    if cache_folder is not None and not run_verify and not graph_dir:
        from .cache import ResultCache

        warned = []

        def cache_warning(message: str) -> None:
            if not warned and not quiet:
                click.echo(f"shapelint: warning: {message}", err=True)
            warned.append(message)

        cache = ResultCache(cache_folder, warn=cache_warning)
    streamed = _Streamed(baseline, baseline_file) if stream else None

    def on_report(report) -> None:
        if bar is not None:
            bar.update(1)
        if streamed is not None:
            streamed(cfg, report, quiet < 2)

    if scheduler is not None and scheduler.strip().startswith("local"):
        _terminate_cleanly()  # SIGTERM stops the local cluster's workers too
    from .cluster import ClusterError

    try:
        with bar if bar is not None else _nothing():
            report = check_paths(
                files, jobs=jobs, progress=on_report if bar is not None or streamed is not None else None,
                select=chosen_select, ignore=chosen_ignore, bindings=bindings, rules=list(rules),
                severity_overrides=cfg.severity or None, rule_options=cfg.rule_options(rules) or None,
                after=_after_check(run_verify, graph_dir, provider, chosen_select, chosen_ignore, jobs),
                cache=cache, scheduler=scheduler,
            )
    except ClusterError as exc:
        _fail(str(exc))
    if cache is not None:
        logger.info("cache %s: %d hit(s), %d miss(es), %d stored", cache.folder, cache.hits, cache.misses, cache.stored)
    if streamed is None:
        cfg.apply_per_file_ignores(report)
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
        result = streamed.baseline if streamed is not None else filter_report(report, baseline, base_dir=Path(baseline_file).parent)
        if result.stale:
            click.echo(f"shapelint: {result.stale} baselined finding(s) no longer occur; rewrite the baseline to drop them", err=True)
    if graph_dir:
        from .picture import write_pictures

        try:
            written = write_pictures(report, graph_dir, bindings=bindings, jobs=jobs, protect=protect)
        except OSError as exc:
            _fail(f"--graph {graph_dir}: cannot write the pictures: {exc.strerror or exc}")
        click.echo(f"shapelint: wrote {len(written)} picture(s) to {graph_dir} (index.html)", err=True)
    from .report.locations import repository_root

    root = repository_root(files[:1], config_path=cfg.path)
    color = settings.color and not output and fmt == "text"
    if statistics:
        text = _statistics(report, fmt, color)
    elif streamed is not None:
        text = ""  # already printed, line by line
    else:
        text = render(report, fmt, rules=select_rules(rules, chosen_select, chosen_ignore), color=color, root=root,
                      **({"verbose": settings.verbose, "quiet": bool(quiet)} if fmt == "text" else {}))
    if output:
        _write_text(output, text + "\n", protect, "the report")
    elif text and quiet < 2:
        click.echo(text, color=color or None)
    code = report.exit_code(fail_on)
    if exit_zero and code == 1:
        code = 0
    sys.exit(code if done is None or code == 2 else done)


def _check_scheduler(scheduler: str, run_verify: bool, graph_dir) -> None:
    """``--scheduler``: a valid address, ``distributed`` installed, and only the static check; else one line, exit 2."""
    from .cluster import ClusterError, distributed_installed, parse_scheduler

    if run_verify or graph_dir:
        _fail("--scheduler runs the static check only: --verify and --graph need each model in this process")
    try:
        parse_scheduler(scheduler)
        distributed_installed()  # imported only when a file is sent
    except ClusterError as exc:
        _fail(str(exc))


def _cache_folder(cfg, no_cache: bool, cache_dir: str | None):
    """The result cache's folder, or None: ``--no-cache`` (env SHAPELINT_NO_CACHE) or ``cache = false`` turn it off.

    ``--cache-dir`` (env SHAPELINT_CACHE_DIR) wins over the file's
    ``cache-dir`` (relative to the file's folder); the default is
    ``.shapelint_cache`` next to the file, else in the working directory.
    """
    from .cache import default_cache_dir

    if no_cache or cfg.cache is False:
        return None
    if cache_dir is not None:
        if not cache_dir.strip():
            _fail("--cache-dir: expected a folder, got an empty string")
        return Path(cache_dir)
    if cfg.cache_dir is not None:
        return cfg.root / cfg.cache_dir
    return default_cache_dir(cfg.path)


class _Streamed:
    """``--format jsonl`` on stdout: each report printed as it finishes, per-file-ignores and baseline applied first."""

    def __init__(self, baseline, baseline_file):
        from .baseline import BaselineResult

        self.data = baseline
        self.base_dir = Path(baseline_file).parent if baseline_file else None
        self.baseline = BaselineResult()

    def __call__(self, cfg, report, echo: bool) -> None:
        from .baseline import filter_report
        from .diagnostics import RunReport

        one = RunReport(files=[report])
        cfg.apply_per_file_ignores(one)
        if self.data is not None:
            got = filter_report(one, self.data, base_dir=self.base_dir)
            self.baseline.dropped += got.dropped
            self.baseline.stale += got.stale
        if echo:
            click.echo(json.dumps(report.to_json()))
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.flush()


def _patterns(flag: str, value: str | None) -> list[str]:
    """``--exclude a,b/`` → ``["a", "b/"]``; a pattern pathspec cannot compile is a usage error."""
    from .discovery import bad_pattern

    out = [p.strip() for p in (value or "").split(",") if p.strip()]
    for p in out:
        why = bad_pattern(p)
        if why:
            _fail(f"{flag}: {p[:40]!r} is {why}")
    return out


def _selection(cfg, select, extend_select, ignore, extend_ignore) -> tuple[list[str] | None, list[str] | None]:
    """The codes to run and to skip: a flag replaces the file's key; ``extend-*`` (file and flag) add to it.

    With no ``select`` anywhere every rule runs, so ``extend-select`` adds
    nothing; ``ignore`` wins over ``select``.
    """
    chosen_select = _codes(select) if select is not None else cfg.select
    extra = [*cfg.extend_select, *(_codes(extend_select) or [])]
    if chosen_select is not None and extra:
        chosen_select = [*chosen_select, *extra]
    chosen_ignore = _codes(ignore) if ignore is not None else cfg.ignore
    more = [*cfg.extend_ignore, *(_codes(extend_ignore) or [])]
    if more:
        chosen_ignore = [*(chosen_ignore or []), *more]
    return chosen_select, chosen_ignore


def _show_settings(cfg, paths, fmt, fail_on, select, ignore, bindings, jobs, walk, rules, cache=None) -> None:
    """``--show-settings``: what this run would use, one ``key = value`` a line (values as JSON)."""
    from .report.locations import repository_root

    rows = {
        "config": str(cfg.path) if cfg.path is not None else None,
        "select": select if select is not None else ["ALL"],
        "ignore": ignore or [],
        "per-file-ignores": cfg.per_file_ignores,
        "severity": cfg.severity,
        "fail-on": fail_on,
        "dims": bindings,
        "jobs": jobs,
        "format": fmt,
        "plugins": cfg.plugins,
        "exclude": walk["exclude"],
        "extend-exclude": walk["extend_exclude"],
        "respect-gitignore": walk["respect_gitignore"],
        "force-exclude": walk["force_exclude"],
        "root": str(cfg.root),
        "repository-root": str(repository_root([paths[0]], config_path=cfg.path)),
        "rules": [cls.code for cls in rules],
        "cache-dir": str(cache) if cache is not None else None,
    }
    for key, value in rows.items():
        click.echo(f"{key} = {json.dumps(value)}")


def _statistics(report, fmt: str, color: bool = False) -> str:
    """``--statistics``: one row per rule with findings, most frequent first (ruff's layout: count, code, [*], name)."""
    counts: dict[str, list] = {}
    for d in report.diagnostics:
        row = counts.setdefault(d.rule, [0, d.name, False, d.severity])
        row[0] += 1
        row[2] = row[2] or bool(getattr(d, "fixable", False))
    rows = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    failed = [f for f in report.files if f.error is not None]
    if fmt in ("json", "jsonl"):
        data = [{"code": code, "name": name, "severity": sev, "count": n, "fixable": fix}
                for code, (n, name, fix, sev) in rows]
        return json.dumps(data, indent=2) if fmt == "json" else "\n".join(json.dumps(row) for row in data)
    style = click.style if color else (lambda s, **_: s)
    width = max([len(str(n)) for _, (n, *_rest) in rows] + [1])
    code_width = max([len(c) for c in counts] + [5])
    lines = [f"{f.path}: {style('error', fg='red', bold=True)}: {f.error}" for f in failed]
    lines += [f"{n:>{width}}  {style(f'{code:<{code_width}}', bold=True)}  {'[*]' if fix else '[ ]'} {name}"
              for code, (n, name, fix, _sev) in rows]
    return "\n".join(lines)


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
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write a copy of the model with the inferred shapes as value_info (to open in Netron); never the input.")
@_COLOR
@_VERBOSE
@click.pass_obj
def shapes(settings: Settings, model, fmt, dims, output=None) -> None:
    """Every tensor's inferred shape, node by node (like Keras model.summary())."""
    from .graph import ModelGraph
    from .infer import infer
    from .load import LoadError, load_model
    from .shapes import input_conditions, shape_rows

    try:
        proto = load_model(model)
    except LoadError as exc:
        click.echo(f"{model}: error: {exc}", err=True)
        sys.exit(2)
    if output:
        _refuse_inferred_target(model, proto, output)
    mg = ModelGraph.from_model(proto)
    table = infer(mg, _parse_dims(dims))
    rows = list(shape_rows(proto, table, mg))
    if output:
        _write_inferred(model, proto, table, output)
    inputs = [{"tensor": vi.name, "shape": None if table.shape(vi.name) is None else [str(d) for d in _fmt_dims(table.shape(vi.name))]} for vi in proto.graph.input if vi.name not in {t.name for t in proto.graph.initializer}]
    conditions = input_conditions(table)
    if fmt == "json":
        click.echo(json.dumps({"model": model, "inputs": inputs, **conditions, "nodes": rows}, indent=2))
        return
    from .dims import format_shape

    width_node = min(48, max([len(r["node"] or r["op_type"]) for r in rows] + [10]))
    width_op = max([len(r["op_type"]) for r in rows] + [7])
    click.echo(f"Model: {model}")
    for vi in inputs:
        click.echo(f"  input  {vi['tensor']}: {format_shape(table.shape(vi['tensor']))}")
    for note in conditions["notes"]:
        click.echo(f"  note: {note}")
    if conditions["input_sizes"]:
        click.echo(f"  valid input sizes: {conditions['input_sizes']}")
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


def _refuse_inferred_target(model: str, proto, output: str) -> None:
    """``shapes -o``: never the input model nor one of its external-data files; an existing folder; a regular file."""
    from .load import external_data_locations
    from .safeio import is_same_file

    base = os.path.dirname(model)
    data = [os.path.join(base, loc) for _name, loc in external_data_locations(proto) if loc and "\x00" not in loc]
    for k, inp in enumerate([model, *data]):
        if is_same_file(output, inp):
            whose = "the input model" if k == 0 else f"the input's external data {os.path.basename(inp)!r}"
            _fail(f"-o {output} is {whose}: shapelint never overwrites an input; choose another path")
    if os.path.isdir(output):
        _fail(f"-o {output} is a folder: give the copy's file name, e.g. inferred.onnx")
    if os.path.lexists(output) and not os.path.isfile(output):
        _fail(f"-o {output} exists and is not a regular file (a device, FIFO or socket): refused")
    if not os.path.isdir(os.path.dirname(os.path.abspath(output))):
        _fail(f"-o {output}: the folder {os.path.dirname(os.path.abspath(output))} does not exist")


def _write_inferred(model: str, proto, table, output: str) -> None:
    """The model as loaded (external weights stay where they are, referenced as before) plus value_info."""
    from .load import external_data_locations
    from .safeio import atomic_write
    from .shapes import write_shapes

    write_shapes(proto, table)  # the in-memory copy: the input file is never opened for writing
    try:
        atomic_write(output, proto.SerializeToString())
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    same_folder = os.path.realpath(os.path.dirname(os.path.abspath(output))) == os.path.realpath(os.path.dirname(os.path.abspath(model)))
    if external_data_locations(proto) and not same_folder:
        click.echo(f"shapelint: note: {output} refers to the weights by their location relative to {model}; "
                   "write it next to the model to open it with them", err=True)
    click.echo(f"shapelint: wrote {output} with {len(proto.graph.value_info)} inferred tensor shapes", err=True)


def _fmt_dims(shape):
    from .dims import format_dim

    return [format_dim(d) for d in shape]


@main.command(name="rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_COLOR
def rules_cmd(fmt) -> None:
    """List every rule: code, name, severity, origin and summary."""
    from .catalog import describe_rules

    try:
        infos, broken = describe_rules()
    except Exception as exc:  # a plugin set that cannot be used (imported only when plugins are installed)
        from .plugins import PluginError

        if isinstance(exc, PluginError):
            raise click.UsageError(str(exc)) from None
        raise
    rows = [{"code": r.code, "name": r.slug, "severity": r.severity, "origin": r.origin, "summary": r.summary}
            for r in infos]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"{row['code']}  {row['name']:<32} {row['severity']:<8} {row['origin']:<12} {row['summary']}")
    for name, err in broken:
        click.echo(f"(not loaded) {name}: {err}")


@main.command()
@click.argument("code")
@_COLOR
def explain(code) -> None:
    """Print a rule's documentation."""
    from .catalog import describe_rules

    try:
        infos, _ = describe_rules()
    except Exception as exc:  # a plugin set that cannot be used (imported only when plugins are installed)
        from .plugins import PluginError

        if isinstance(exc, PluginError):
            raise click.UsageError(str(exc)) from None
        raise
    rule = next((r for r in infos if r.code == code.upper() or r.slug == code), None)
    if rule is None:
        from .verify import explain_runtime_code

        doc = explain_runtime_code(code)
        if doc:
            click.echo(doc)
            return
        raise click.UsageError(f"unknown rule {code!r}; `shapelint rules` lists them")
    click.echo(f"{rule.code} ({rule.slug}) · {rule.severity} · {rule.origin}\n")
    click.echo(rule.doc)


_PROVIDER = click.option("--provider", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, envvar="SHAPELINT_PROVIDER", help="onnxruntime execution provider; cuda never falls back to CPU silently (env SHAPELINT_PROVIDER).")
_TIMEOUT = click.option("--timeout", type=float, default=120.0, show_default=True, metavar="S", help="Time limit of the onnxruntime child process per model, in seconds.")
_MEMORY = click.option("--memory", "memory_mb", type=click.IntRange(min=64, max=2**40), default=4096, show_default=True, metavar="MB", help="Memory limit (address space) of the onnxruntime child process on CPU, in MB.")


def _after_check(run_verify, graph_dir, provider, select, ignore, jobs=1, timeout=120.0, memory_mb=4096):
    """What runs on each file's check result, where it was checked: ``--verify``, then ``--graph``'s pictures.

    No provider is a usage error, before any file is checked.
    """
    steps = []
    if run_verify:
        from .verify import ProviderUnavailable, VerifyError, VerifyHook, require_provider

        try:
            require_provider(provider)
        except (ProviderUnavailable, VerifyError) as exc:
            _fail(f"--provider {provider}: {exc}")
        threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
        steps.append(VerifyHook(provider, timeout, memory_mb, select, ignore, threads))
    if graph_dir:
        from .picture import PictureHook

        steps.append(PictureHook())
    if not steps:
        return None
    from .result import Hooks

    return steps[0] if len(steps) == 1 else Hooks(tuple(steps))


def _run_config(config_file, isolated, start, rules):
    """The config ``verify`` and ``fix`` honour, found as ``check`` finds it; a bad one is one line, exit 2."""
    from .config import Config, ConfigError, load_config

    if isolated and config_file:
        raise click.UsageError("--isolated and --config exclude each other")
    try:
        cfg = Config() if isolated else load_config(config_file, start=start)
        cfg.validate_against(list(rules))
    except ConfigError as exc:
        _fail(str(exc))
    return cfg


def _chosen(cfg, select, ignore) -> tuple[list[str] | None, list[str] | None]:
    try:
        return _selection(cfg, select, None, ignore, None)
    except (TypeError, AttributeError):  # pragma: no cover - a config without the extend-* keys
        return (_codes(select) if select is not None else cfg.select), (_codes(ignore) if ignore is not None else cfg.ignore)


_CONFIG = click.option("--config", "config_file", type=click.Path(dir_okay=False), envvar="SHAPELINT_CONFIG", help="Read this shapelint.toml or pyproject.toml instead of searching upwards from the first model (env SHAPELINT_CONFIG).")
_ISOLATED = click.option("--isolated", is_flag=True, help="Ignore every configuration file.")


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Pin a symbolic dim to a size, as for check (static pass and every run), e.g. --dim batch=8.")
@_PROVIDER
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif", "github"]), default="text", show_default=True, help="Output format, as for check.")
@_TIMEOUT
@_MEMORY
@click.option("--select", help="Comma-separated codes or prefixes to report (SL900-SL902 are verify's own).")
@click.option("--ignore", help="Comma-separated codes or prefixes to skip.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default=None, help="Lowest severity that makes the exit code 1 [default: the config's, else error].")
@click.option("--jobs", "-j", type=_Jobs(), default=None, envvar="SHAPELINT_JOBS", help="Models verified at once, or auto (the cores), each with its own onnxruntime child and memory limit [default: the config's jobs, else 1] (env SHAPELINT_JOBS).")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr [default: on a terminal, for 10 files or more].")
@_CONFIG
@_ISOLATED
@_COLOR
@_VERBOSE
@click.pass_obj
def verify(settings: Settings, paths, dims, provider, fmt, timeout, memory_mb, select, ignore, fail_on, jobs=None, progress=None,
           config_file=None, isolated=False) -> None:
    """Run models under onnxruntime and confirm the static findings.

    The static pass is check's own: the same config (select, ignore,
    severity, rule options, per-file-ignores, dims), --dim and --select.
    Each free symbolic input dim runs at 1, at the smallest primes that share
    no factor with the graph's shape literals or the traced sizes (a Reshape
    that assumes divisibility fails there), at a size where every Reshape
    divides, at the traced size when the model shows it and at the values
    inference relates it to; the output says why each binding was chosen.
    Every intermediate shape is compared with the inferred one (SL900 when
    they disagree); a runtime failure no finding explains is SL901; a crash,
    hang or memory blow-up of the child process is SL902.  Exit status as for
    check, and 1 whenever onnxruntime fails at a size the model's inputs
    declare valid (the finding it confirms becomes an error); 2 also when the
    provider is missing.
    """
    from .check import collect_paths
    from .plugins import PluginError, load_rules
    from .report import render
    from .verify import ProviderUnavailable, VerifyError, verify_paths

    timeout = _seconds(timeout)
    try:
        rules = load_rules()
    except PluginError as exc:
        _fail(str(exc))
    cfg = _run_config(config_file, isolated, paths[0], rules)
    _known_codes("--select", _codes(select), rules)
    _known_codes("--ignore", _codes(ignore), rules)
    chosen_select, chosen_ignore = _chosen(cfg, select, ignore)
    bindings = {**cfg.dims, **_parse_dims(dims)}
    fail_on = fail_on or cfg.fail_on or "error"
    from .config import default_jobs

    jobs = jobs or cfg.jobs or 1
    jobs = _cap_jobs(default_jobs() if jobs == "auto" else jobs)
    _terminate_cleanly()
    files = collect_paths(paths)
    if progress is None:
        progress = len(files) >= 10 and sys.stderr.isatty() and sys.stdout.isatty()
    bar = click.progressbar(length=len(files), label="Verifying", file=sys.stderr) if progress else None
    try:
        with bar if bar is not None else _nothing():
            report = verify_paths(files, dims=bindings, provider=provider, timeout=timeout, memory_mb=memory_mb,
                                  rules=list(rules), select=chosen_select, ignore=chosen_ignore, jobs=jobs,
                                  progress=(lambda _r: bar.update(1)) if bar is not None else None,
                                  severity_overrides=cfg.severity or None,
                                  rule_options=cfg.rule_options(rules) or None)
    except (ProviderUnavailable, VerifyError) as exc:
        _fail(f"--provider {provider}: {exc}")
    cfg.apply_per_file_ignores(report)
    click.echo(render(report, fmt, rules=list(rules), color=settings.color and fmt == "text"))
    sys.exit(report.exit_code(fail_on))


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(), help="Where to write the fixed copy: a file for one model, an existing folder for several (never an input nor its weights).")
@click.option("--dry-run", is_flag=True, help="Show the edits and the re-check; write nothing, run nothing.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--select", help="Comma-separated codes or prefixes whose findings to fix.")
@click.option("--ignore", help="Comma-separated codes or prefixes to leave alone.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "info"]), default=None, help="Lowest severity that makes the exit code 1 while such findings remain [default: the config's, else error].")
@click.option("--dim", "dims", multiple=True, metavar="NAME=INT", help="Pin a symbolic dim to a size, as for check (the static pass and the runs).")
@_PROVIDER
@_TIMEOUT
@_MEMORY
@_CONFIG
@_ISOLATED
@_COLOR
@_VERBOSE
@click.pass_obj
def fix(settings: Settings, models, output, dry_run, fmt, select, ignore, fail_on, dims, provider, timeout, memory_mb,
        config_file=None, isolated=False) -> None:
    """Apply the findings' machine-applicable fixes to a copy, then confirm it.

    When no finding has a machine-applicable fix nothing is written, and the
    findings without one are listed.  Otherwise the copy is re-checked (the
    fixed findings are gone, none is new) and run under onnxruntime at the
    same bindings as the original: it must run where the original failed,
    tensors no edit touches keep their values, and each edit's claim is
    checked on the values (a fixed softmax sums to 1 over the classes, a
    fixed reshape keeps each frame's values); the output says when an edit
    changes what the trained weights see.  Exit status: 0 no finding at or
    above --fail-on remains; 1 some remain (or the copy still fails); 2
    errors (an input that cannot be read, an edit that fails or breaks its
    claim, a bad -o).
    """
    from .fix import FixError, fix_model, fix_outputs, fix_to_json, render_fix_text
    from .plugins import PluginError, load_rules

    timeout = _seconds(timeout)
    try:
        rules = load_rules()
    except PluginError as exc:
        _fail(str(exc))
    cfg = _run_config(config_file, isolated, models[0], rules)
    chosen_select, chosen_ignore = _chosen(cfg, select, ignore)
    fail_on = fail_on or cfg.fail_on or "error"
    bindings = {**cfg.dims, **_parse_dims(dims)}
    try:
        pairs = fix_outputs(list(models), output, dry_run)
    except FixError as exc:
        _fail(str(exc))
    _terminate_cleanly()
    results = []
    for model, out in pairs:
        try:
            results.append(fix_model(model, out, dry_run=dry_run, rules=list(rules), select=chosen_select,
                                     ignore=chosen_ignore, dims=bindings, provider=provider, timeout=timeout,
                                     memory_mb=memory_mb, fail_on=fail_on, severity_overrides=cfg.severity or None,
                                     rule_options=cfg.rule_options(rules) or None))
        except FixError as exc:
            _fail(str(exc))
    code = max(r.exit_code for r in results)
    if fmt == "json":
        from . import __version__

        data = [fix_to_json(r) for r in results]
        click.echo(json.dumps(data[0] if len(data) == 1 else
                              {"tool": {"name": "shapelint", "version": __version__}, "results": data, "exit_code": code},
                              indent=2))
    else:
        click.echo("\n".join(render_fix_text(r) for r in results))
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
