"""Apply the findings' machine-applicable fixes to a copy, re-check it, then run it.

``shapelint fix MODEL... -o FIXED.onnx|DIR``:

1. check the model (:func:`shapelint.check.check`, the same config,
   ``--dim``, selection and severities as ``check``); each finding whose
   rule attached a :class:`~shapelint.rule.Fix` (:func:`is_fixable`) is
   applied to a copy, one at a time, re-checking in between (so that an edit
   never acts on a graph another edit already changed);
2. when no edit applies, **nothing is written**: the findings without a
   machine-applicable fix are listed;
3. re-check the copy: the fixed findings must be gone and no new one appear;
4. run both under onnxruntime (:mod:`shapelint.verify`) at the same
   bindings and inputs: the copy must run wherever the original failed,
   tensors no edit touches must keep their values (the outputs too, for
   edits marked ``preserves_outputs``), and each edit's own claim must hold
   (:mod:`shapelint.verify.properties`: a fixed softmax sums to 1 over the
   classes, a fixed reshape keeps each frame's values, ...), with a word on
   whether the trained weights now see other values (retraining needed).

The input file is never written; ``-o`` may not name it.  Exit codes: 0 no
finding at or above ``--fail-on`` remains (the copy, or the model when
nothing was written) and the copy is confirmed; 1 such findings remain (no
mechanical fix, or the copy still fails where the original did); 2 errors
(unreadable model, an edit that raises or makes the graph invalid, a copy
that is worse than the original or breaks its own claim).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .diagnostics import Diagnostic, FileReport
from .safeio import atomic_target, atomic_write, is_same_file, replace_from

__all__ = ["AppliedFix", "FixError", "FixResult", "fix_model", "fix_outputs", "fix_to_json", "graph_diff", "is_fixable",
           "render_fix_text"]

logger = logging.getLogger(__name__)

MAX_PASSES = 64


class FixError(Exception):
    """``fix`` cannot run (bad output path, unreadable model); ``str`` is the reason."""


def is_fixable(finding) -> bool:
    """True when ``shapelint fix`` has a machine-applicable edit for this finding (ruff's ``[*]``).

    Works on a :class:`~shapelint.diagnostics.Diagnostic` (also after it
    crossed processes, when its ``edit`` was dropped: ``fixable`` stays) and
    on a rule's :class:`~shapelint.rule.Finding`.

    >>> from shapelint.diagnostics import Diagnostic
    >>> d = Diagnostic("SL403", "softmax-over-time", "warning", "/Softmax", "Softmax", None, "over time")
    >>> is_fixable(d), is_fixable(Diagnostic(**{**d.__dict__, "fixable": True}))
    (False, True)
    """
    return getattr(finding, "edit", None) is not None or bool(getattr(finding, "fixable", False))


@dataclass
class AppliedFix:
    """One edit as it was applied (or refused)."""

    rule: str
    node: str | None
    description: str
    ok: bool
    error: str | None = None
    preserves_outputs: bool = False
    changes: list[str] = field(default_factory=list)
    #: names of the main-graph nodes the edit changed and inserted (what the property checks look at)
    changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


@dataclass
class FixResult:
    """What ``fix`` did and how the copy fared."""

    path: str
    output: str | None
    dry_run: bool = False
    before: FileReport | None = None
    after: FileReport | None = None
    applied: list[AppliedFix] = field(default_factory=list)
    unfixable: list[Diagnostic] = field(default_factory=list)  # findings without a mechanical fix
    remaining: list[Diagnostic] = field(default_factory=list)  # had a fix, still reported after it
    new: list[Diagnostic] = field(default_factory=list)  # reported on the copy only
    also_gone: list[Diagnostic] = field(default_factory=list)  # no edit of their own, removed by the others
    verification: dict | None = None
    error: str | None = None
    written: bool = False
    seconds: float = 0.0
    fail_on: str = "error"

    @property
    def broken(self) -> list[str]:
        """Reasons the copy is worse than the original (exit 2)."""
        out = [f"edit of {a.rule} on {a.node or '<graph>'} failed: {a.error}" for a in self.applied if not a.ok]
        out += [f"new finding on the copy: {d.rule} {d.node or '<graph>'}: {d.message}" for d in self.new]
        v = self.verification or {}
        out += v.get("regressions", [])
        out += [f"the edit of {p['rule']} on {p['node'] or '<graph>'} breaks its own claim ({p['claim']}): "
                + "; ".join(f"{_label(r['dims'])}: {r['detail']}" for r in p["bindings"] if r["ok"] is False)
                for p in v.get("properties", ()) if p["status"] == "broken"]
        return out

    @property
    def left(self) -> list[Diagnostic]:
        """The findings still there: the copy's, or the model's own when nothing was written."""
        report = self.after if self.after is not None else self.before
        return list(report.diagnostics) if report is not None else []

    @property
    def exit_code(self) -> int:
        """2 errors; 1 findings at or above ``fail_on`` remain (or the copy still fails); 0 clean."""
        if self.error is not None or self.broken:
            return 2
        v = self.verification or {}
        threshold = {"error": 2, "warning": 1, "info": 0}[self.fail_on]
        rank = {"error": 2, "warning": 1, "info": 0}
        if any(rank[d.severity] >= threshold for d in self.left) or v.get("still_failing"):
            return 1
        return 0


def _label(dims: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in dims.items()) or "static shapes"


def _key(d: Diagnostic) -> tuple:
    return (d.rule, d.node, d.tensor)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


# ------------------------------------------------------------------ graph diff
def _attr_text(a: onnx.AttributeProto) -> str:
    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, (onnx.GraphProto, onnx.TensorProto)) or (isinstance(v, list) and v and not isinstance(v[0], (int, float, bytes, str))):
        return f"{a.name}=<{type(v).__name__}>"
    return f"{a.name}={v}"


def _node_text(n: onnx.NodeProto) -> str:
    attrs = ", ".join(_attr_text(a) for a in n.attribute)
    return (f"{n.op_type} {n.name!r} ({', '.join(n.input)}) -> ({', '.join(n.output)})"
            + (f" [{attrs}]" if attrs else ""))


def _value_text(t: onnx.TensorProto) -> str:
    n = int(np.prod(t.dims)) if t.dims else 1
    if n <= 16 and t.data_location != onnx.TensorProto.EXTERNAL:
        try:
            return str(numpy_helper.to_array(t).tolist())
        except Exception:
            logger.debug("cannot read initializer %s", t.name, exc_info=True)
    return f"<{onnx.helper.tensor_dtype_to_string(t.data_type)} {list(t.dims)}>"


def graph_diff(before: onnx.ModelProto, after: onnx.ModelProto) -> list[str]:
    """The main graph's edits, one line each: ``+`` added, ``-`` removed, ``~`` changed.

    >>> import onnx.parser
    >>> a = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[2] x) => (y) { y = Relu(x) }''')
    >>> b = onnx.ModelProto(); b.CopyFrom(a); b.graph.node[0].op_type = "Neg"
    >>> graph_diff(a, b)
    ["- Relu '' (x) -> (y)", "+ Neg '' (x) -> (y)"]
    """
    out: list[str] = []
    old = [n.SerializeToString() for n in before.graph.node]
    new = [n.SerializeToString() for n in after.graph.node]
    old_named = {n.name: n for n in before.graph.node if n.name}
    old_set, new_set = set(old), set(new)
    changed_names = set()
    for n in after.graph.node:
        if n.SerializeToString() in old_set:
            continue
        if n.name and n.name in old_named:
            o = old_named[n.name]
            parts = []
            if list(o.input) != list(n.input):
                parts.append(f"inputs ({', '.join(o.input)}) -> ({', '.join(n.input)})")
            if list(o.output) != list(n.output):
                parts.append(f"outputs ({', '.join(o.output)}) -> ({', '.join(n.output)})")
            oa = {a.name: _attr_text(a) for a in o.attribute}
            na = {a.name: _attr_text(a) for a in n.attribute}
            for k in sorted(set(oa) | set(na)):
                if oa.get(k) != na.get(k):
                    parts.append(f"attribute {oa.get(k) or k} -> {na.get(k) or 'removed'}")
            if o.op_type != n.op_type:
                parts.append(f"op {o.op_type} -> {n.op_type}")
            changed_names.add(n.name)
            out.append(f"~ {n.op_type} {n.name!r}: " + "; ".join(parts))
    for n in before.graph.node:
        if n.SerializeToString() not in new_set and not (n.name and n.name in changed_names):
            out.append(f"- {_node_text(n)}")
    for n in after.graph.node:
        if n.SerializeToString() not in old_set and not (n.name and n.name in changed_names):
            out.append(f"+ {_node_text(n)}")
    bi = {t.name: t for t in before.graph.initializer}
    ai = {t.name: t for t in after.graph.initializer}
    for name in sorted(set(bi) | set(ai)):
        if name not in ai:
            out.append(f"- initializer {name!r} {_value_text(bi[name])}")
        elif name not in bi:
            out.append(f"+ initializer {name!r} {_value_text(ai[name])}")
        elif bi[name].SerializeToString() != ai[name].SerializeToString():
            out.append(f"~ initializer {name!r}: {_value_text(bi[name])} -> {_value_text(ai[name])}")
    for kind in ("input", "output"):
        bo = [v.SerializeToString() for v in getattr(before.graph, kind)]
        ao = [v.SerializeToString() for v in getattr(after.graph, kind)]
        if bo != ao:
            out.append(f"~ graph {kind}s: {', '.join(v.name for v in getattr(before.graph, kind))} -> "
                       f"{', '.join(v.name for v in getattr(after.graph, kind))}")
    return out


def _touched(before: onnx.ModelProto, after: onnx.ModelProto) -> set[str]:
    """Tensors of ``after`` whose value an edit may have changed: outputs of new or
    changed nodes, tensors fed by changed initializers or inputs, and everything below them."""
    old = {n.SerializeToString() for n in before.graph.node}
    bi = {t.name: t.SerializeToString() for t in before.graph.initializer}
    seeds = set()
    for t in after.graph.initializer:
        if bi.get(t.name) != t.SerializeToString():
            seeds.add(t.name)
    for n in after.graph.node:
        if n.SerializeToString() not in old:
            seeds.update(o for o in n.output if o)
    from .verify.properties import downstream

    return downstream(after, seeds)


# ------------------------------------------------------------------- fix loop
def _apply_fixes(model: onnx.ModelProto, checked, result: FixResult):
    """Apply the edits one at a time; the first pass reads the check already made, later ones re-check the copy."""
    current = _copy(model)
    attempted: set[tuple] = set()
    report = checked
    for _ in range(MAX_PASSES):
        if report is None:
            report = checked.settings.check(current)
        todo = [d for d in report.diagnostics if d.edit is not None and _key(d) not in attempted]
        report = None
        if not todo:
            break
        d = todo[0]
        attempted.add(_key(d))
        trial = _copy(current)
        rec = AppliedFix(d.rule, d.node, d.edit.description, ok=True,
                         preserves_outputs=bool(getattr(d.edit, "preserves_outputs", False)))
        try:
            d.edit.apply(trial)
            onnx.checker.check_model(trial)
        except Exception as exc:  # noqa: BLE001 - a rule's edit is plugin code: report, never crash
            rec.ok, rec.error = False, f"{type(exc).__name__}: {exc}"
            result.applied.append(rec)
            continue
        rec.changes = graph_diff(current, trial)
        from .verify.properties import edited_nodes

        rec.changed, rec.added = edited_nodes(current, trial)
        result.applied.append(rec)
        current = trial
    return current


def _targets(output: str) -> tuple[Path, Path]:
    """The files ``-o output`` may write: the model and its external-data sidecar (symlinks followed)."""
    target = atomic_target(output)
    return target, atomic_target(target.parent / (target.name + ".data"))


def _all_tensors(model: onnx.ModelProto):
    from onnx.external_data_helper import _get_all_tensors

    return _get_all_tensors(model)


def _save(model: onnx.ModelProto, output: str, external: bool) -> None:
    """Write ``model`` atomically; with external data (a copy is saved: onnx.save empties the tensors it moves out).

    Both files are written into a temp folder next to the destination,
    fsync'ed, and renamed over the old ones (the sidecar first): an
    interrupted run leaves the old copy in place and no half-written file.
    """
    target = atomic_target(output)
    if external or model.ByteSize() > 1_800_000_000:
        loc = target.name + ".data"
        tmp = tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            staged = os.path.join(tmp, target.name)
            # onnx checks the location against the working directory, not the model's folder: a sidecar left
            # there by an earlier run ("fixed.onnx.data") would refuse the save. Stage under a fresh name,
            # then point the tensors at the final one.
            scratch = f".{uuid.uuid4().hex}.data"
            onnx.save(_copy(model), staged, save_as_external_data=True, all_tensors_to_one_file=True,
                      location=scratch, size_threshold=0 if external else 1024)
            saved = onnx.load(staged, load_external_data=False)
            for t in _all_tensors(saved):
                for entry in t.external_data:
                    if entry.key == "location" and entry.value == scratch:
                        entry.value = loc
            with open(staged, "wb") as fh:
                fh.write(saved.SerializeToString())
                fh.flush()
                os.fsync(fh.fileno())
            if os.path.exists(os.path.join(tmp, scratch)):
                replace_from(os.path.join(tmp, scratch), target.parent / loc)
            replace_from(staged, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        atomic_write(target, model.SerializeToString())


def _refuse_aliases(path: str, output: str, data_files) -> None:
    """``-o`` (or the sidecar it brings) may not be a file the input reads: its model file or any data file.

    Compared after resolving symlinks and by inode (hard links), whether or
    not the files exist yet.
    """
    target, data = _targets(output)
    inputs = [Path(path), *data_files]
    for out, mine in ((Path(output), ""), (target, ""), (data, f"its external-data file {data.name!r} ")):
        for k, inp in enumerate(inputs):
            if is_same_file(out, inp):
                whose = "the input file" if k == 0 else f"the input's external data {inp.name!r}"
                raise FixError(f"-o {output}{': ' + mine if mine else ' '}is {whose}: fix never overwrites its input "
                               "(the model or its weights); choose another path")


def _check_output_folder(output: str) -> None:
    """The copy is a regular file in an existing folder (a rename over ``/dev/full`` would replace the device)."""
    for target in _targets(output):
        try:  # a name the system cannot hold is bad usage, whether or not anything gets written
            os.lstat(target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise FixError(f"-o {output}: {exc.strerror or exc}") from None
        if os.path.isdir(target):
            raise FixError(f"-o {output}: {target} is a folder: give the fixed copy's file name, e.g. fixed.onnx")
        if os.path.lexists(target) and not os.path.isfile(target):
            raise FixError(f"-o {output}: {target} exists and is not a regular file (a device, FIFO or socket): refused")
        if not os.path.isdir(target.parent):
            raise FixError(f"-o {output}: the folder {target.parent} does not exist")


def fix_model(path: str, output: str | None, dry_run: bool = False, rules=None, select=None, ignore=None,
              dims: dict[str, int] | None = None, provider: str = "cpu", timeout: float | None = None,
              memory_mb: int | None = None, run: bool = True, fail_on: str = "error",
              severity_overrides: dict | None = None, rule_options: dict | None = None) -> FixResult:
    """Fix ``path`` into ``output`` (see the module doc); never raises on a bad model.

    The model is checked with ``rules``, ``select``/``ignore``, ``dims``
    pinned (as ``check --dim``), ``severity_overrides`` and
    ``rule_options``; the copy is re-checked with the same settings.
    Nothing is written when no edit applies.

    Raises
    ------
    FixError
        ``output`` is missing (without ``dry_run``), its folder does not
        exist, it (or the external-data file it would write) is a file the
        input reads (the model, any of its data files; through symlinks and
        hard links too), or it cannot be written (a full device).
    """
    from . import verify as V
    from .check import check
    from .load import LoadError

    start = time.perf_counter()
    path = os.fspath(path)
    if output is None and not dry_run:
        raise FixError("give the fixed copy's path with -o FIXED.onnx (or use --dry-run)")
    if output is not None and is_same_file(path, output):
        raise FixError(f"-o {output} is the input file: fix never overwrites its input; choose another path")
    if output is not None and not dry_run:
        _check_output_folder(output)
    result = FixResult(path, output, dry_run, fail_on=fail_on)
    checked = check(path, select=select, ignore=ignore, bindings=dims, rules=rules,
                    severity_overrides=severity_overrides, rule_options=rule_options, missing_weights_ok=True)
    if checked.error is not None:
        result.error = checked.error
        return result
    try:
        prepared = V.prepare(checked, name_dims=False)
    except LoadError as exc:
        result.error = str(exc)
        return result
    if output is not None:
        _refuse_aliases(path, output, prepared.data_files)
    result.before = checked
    if not any(is_fixable(d) for d in checked.diagnostics):  # nothing to apply: nothing is written
        result.unfixable = list(checked.diagnostics)
        result.seconds = time.perf_counter() - start
        return result
    if prepared.weights.startswith("random"):
        result.error = f"cannot write a fixed copy: {prepared.weights}; put the data file next to the model"
        if not dry_run:
            return result
    original = prepared.model
    fixed = _apply_fixes(original, checked, result)
    if not any(a.ok for a in result.applied):  # every edit failed: the copy would be the original
        result.seconds = time.perf_counter() - start
        return result
    after = checked.settings.check(fixed)
    if not dry_run:
        try:
            _save(fixed, output, external=prepared.weights.startswith("external"))
            result.written = True
            after = checked.settings.check(output, missing_weights_ok=False)  # the copy as written, re-read from disk
        except OSError as exc:  # a full device, a folder that went away: nothing half-written is left
            raise FixError(f"cannot write {output}: {exc.strerror or exc}") from None
    after.path = output or "<dry run>"
    result.after = after
    ok_keys = {(a.rule, a.node) for a in result.applied if a.ok}
    before_keys = {_key(d) for d in checked.diagnostics}
    result.remaining = [d for d in after.diagnostics if (d.rule, d.node) in ok_keys]
    result.new = [d for d in after.diagnostics if _key(d) not in before_keys and (d.rule, d.node) not in ok_keys]
    fixed_keys = {(a.rule, a.node) for a in result.applied}
    after_keys = {_key(a) for a in after.diagnostics}
    result.unfixable = [d for d in checked.diagnostics if (d.rule, d.node) not in fixed_keys and _key(d) in after_keys]
    result.also_gone = [d for d in checked.diagnostics if (d.rule, d.node) not in fixed_keys and _key(d) not in after_keys]
    if run and not dry_run:
        try:
            result.verification = _verify_copy(checked, prepared, after, result, provider, timeout, memory_mb)
        except V.ProviderUnavailable as exc:
            result.error = str(exc)
        except V.VerifyError as exc:
            result.verification = {"skipped": str(exc), "regressions": [], "still_failing": []}
    result.seconds = time.perf_counter() - start
    return result


def fix_outputs(models: list[str], output: str | None, dry_run: bool = False) -> list[tuple[str, str | None]]:
    """``(model, copy)`` for each model: ``-o`` names the copy of one model, or a folder for several.

    Raises
    ------
    FixError
        several models and ``-o`` is not an existing folder, or two models would be written to the same name.
    """
    if output is None:
        if not dry_run:
            raise FixError("give the fixed copy's path with -o FIXED.onnx (or -o DIR for several models), or use --dry-run")
        return [(m, None) for m in models]
    if len(models) == 1 and not os.path.isdir(output):
        return [(models[0], output)]
    if not os.path.isdir(output):
        raise FixError(f"-o {output}: with {len(models)} models, -o names an existing folder for the fixed copies")
    out, seen = [], {}
    for m in models:
        target = os.path.join(output, os.path.basename(m))
        if target in seen:
            raise FixError(f"-o {output}: {m} and {seen[target]} would both be written to {target}; fix them one at a time")
        seen[target] = m
        out.append((m, target))
    return out


def _status(r) -> str:
    return "runs" if r.status == "ok" else r.status


def _verify_copy(checked, p0, after, result: FixResult, provider, timeout, memory_mb) -> dict:
    """Run the original and the copy at the same bindings; compare values; check each edit's claim."""
    from . import verify as V
    from .verify.properties import check_properties

    timeout = timeout or V.DEFAULT_TIMEOUT
    memory_mb = memory_mb if memory_mb is not None else V.DEFAULT_MEMORY_MB
    p0 = V.prepare(checked)  # names the anonymous dims, so both models bind them alike
    p1 = V.prepare(after)
    bindings = V.plan_bindings(checked)
    seen = {b.key() for b in bindings}
    for b in V.plan_bindings(after):
        if b.key() not in seen:
            bindings.append(b)
            seen.add(b.key())
    ex0 = V.execute(p0, checked, bindings, provider=provider, timeout=timeout, memory_mb=memory_mb, keep_values=True)
    ex1 = V.execute(p1, after, bindings, provider=provider, timeout=timeout, memory_mb=memory_mb, keep_values=True)
    original, fixed = p0.model, p1.model
    touched = _touched(original, fixed)
    preserving = [a for a in result.applied if a.ok]
    preserving = bool(preserving) and all(a.preserves_outputs for a in preserving)
    outputs = {v.name for v in original.graph.output}
    rows, regressions, still = [], [], []
    compared = equal = compared_out = equal_out = compared_ref = equal_ref = 0
    refs = {}
    if preserving:
        todo = [i for i in range(len(bindings)) if ex0.main[i].status != "ok" and ex1.main[i].status == "ok"]
        try:
            refs = V.reference_run(p0, checked, bindings, todo, timeout=timeout, memory_mb=memory_mb)
        except V.VerifyError as exc:  # the reference implementation is a bonus: say why it is missing
            logger.info("onnx.reference could not run the original: %s", exc)
    for i, b in enumerate(bindings):
        r0, r1 = ex0.main[i], ex1.main[i]
        row = {"dims": b.dims, "why": b.why, "original": _status(r0), "fixed": _status(r1)}
        if i in ex0.failures:
            f = ex0.failures[i][0]
            row["original_node"] = f.node.name if f.node is not None else None
            row["original_message"] = f.message
        if i in ex1.failures:
            f = ex1.failures[i][0]
            row["fixed_node"] = f.node.name if f.node is not None else None
            row["fixed_message"] = f.message
        if r1.status != "ok":
            if r0.status != "ok":
                still.append(f"the copy still fails at {b.label}: {row.get('fixed_message') or r1.message}")
            else:
                regressions.append(f"the copy fails at {b.label}, where the original ran: "
                                   f"{row.get('fixed_message') or r1.message}")
        # values: the original's run, or the part above its failing node
        v0 = r0.values if r0.status == "ok" else (ex0.upstream[i].values if i in ex0.upstream else None)
        v1 = r1.values
        changed = []
        if v0 and v1:
            for name, a in v0.items():
                if name not in v1:
                    continue
                if name in touched and not (preserving and r0.status == "ok"):
                    continue
                is_out = name in outputs
                same = a.shape == v1[name].shape and np.allclose(a, v1[name], rtol=1e-4, atol=1e-5, equal_nan=True)
                compared += 1
                equal += same
                if is_out:
                    compared_out += 1
                    equal_out += same
                if not same:
                    changed.append(name)
        # the original failed under onnxruntime: what it means comes from onnx's reference implementation
        ref = refs.get(i)
        if ref is not None and ref.status == "ok" and ref.values and v1:
            row["original_reference"] = "runs"
            for name in sorted(outputs):
                if name in ref.values and name in v1:
                    a = ref.values[name]
                    same = a.shape == v1[name].shape and np.allclose(a, v1[name], rtol=1e-4, atol=1e-5, equal_nan=True)
                    compared_ref += 1
                    equal_ref += same
                    if not same:
                        changed.append(f"{name} (vs onnx.reference)")
        elif ref is not None:
            row["original_reference"] = ref.status
        if changed:
            what = "outputs the edit should preserve" if preserving else "tensors no edit touches"
            regressions.append(f"at {b.label}, {what} changed value: {', '.join(changed[:5])}"
                               + (f" and {len(changed) - 5} more" if len(changed) > 5 else ""))
        rows.append(row)
    props = [p.to_json() for p in check_properties(result.applied, original, fixed, bindings, ex0, ex1,
                                                   provider=provider, timeout=timeout, memory_mb=memory_mb,
                                                   references=refs, fixed_result=after)]
    broken = [p for p in props if p["status"] == "broken"]
    return {"provider": provider, "bindings": rows, "tensors_compared": compared, "tensors_equal": equal,
            "outputs_compared": compared_out, "outputs_equal": equal_out, "preserves_outputs": preserving,
            "reference_outputs_compared": compared_ref, "reference_outputs_equal": equal_ref,
            "regressions": regressions, "still_failing": still, "properties": props,
            "confirmed": not regressions and not still and not broken}


# --------------------------------------------------------------------- output
def _count(report: FileReport | None) -> str:
    if report is None:
        return "?"
    e, w = report.count("error"), report.count("warning")
    n = len(report.diagnostics)
    return f"{n} finding{'s' if n != 1 else ''} ({e} error{'s' if e != 1 else ''}, {w} warning{'s' if w != 1 else ''})"


def render_fix_text(result: FixResult) -> str:
    """The before/after summary ``shapelint fix`` prints."""
    lines = []
    if result.dry_run:
        head = f"{result.path} (dry run: nothing written)"
    elif result.written:
        head = f"{result.path} -> {result.output}"
    else:
        head = f"{result.path} (nothing written)"
    lines.append(head)
    if result.error and result.before is None:
        lines.append(f"  error: {result.error}")
        return "\n".join(lines)
    for a in result.applied:
        tag = ("would fix" if result.dry_run else "fixed ") if a.ok else "FAILED"
        lines.append(f"  {tag} [{a.rule}] {a.node or '<graph>'}: {a.description}" + (f" ({a.error})" if a.error else ""))
        if result.dry_run or len(a.changes) <= 12:
            lines.extend(f"           {c}" for c in a.changes)
        else:
            lines.extend(f"           {c}" for c in a.changes[:12])
            lines.append(f"           ... {len(a.changes) - 12} more")
    for d in result.unfixable:
        lines.append(f"  no fix [{d.rule}] {d.node or '<graph>'}: {d.message} (no machine-applicable fix)")
        if d.fix:
            lines.append(f"           by hand: {d.fix}")
    if result.after is not None:
        lines.append(f"  before: {_count(result.before)}; after: {_count(result.after)}")
    else:
        lines.append(f"  findings: {_count(result.before)}")
    for d in result.also_gone:
        lines.append(f"  also gone: [{d.rule}] {d.node or '<graph>'} (no edit of its own; the fixes above removed it)")
    for d in result.remaining:
        lines.append(f"  still reported after its fix: [{d.rule}] {d.node or '<graph>'}: {d.message}")
    for d in result.new:
        lines.append(f"  NEW on the copy: [{d.rule}] {d.node or '<graph>'}: {d.message}")
    v = result.verification
    if v and "skipped" in v:
        lines.append(f"  onnxruntime: not run ({v['skipped']})")
    elif v:
        lines.append(f"  onnxruntime ({v['provider']}):")
        width = max(len(", ".join(f"{k}={x}" for k, x in r["dims"].items()) or "static shapes") for r in v["bindings"])
        for r in v["bindings"]:
            label = ", ".join(f"{k}={x}" for k, x in r["dims"].items()) or "static shapes"
            o = r["original"] if r["original"] == "runs" else f"fails in {r.get('original_node') or '?'}"
            f = r["fixed"] if r["fixed"] == "runs" else f"fails in {r.get('fixed_node') or '?'}"
            lines.append(f"    {label:<{width}}  original: {o:<40} copy: {f}")
        scope = ("all tensors where the original ran, as the edits preserve outputs; elsewhere those above the edits"
                 if v["preserves_outputs"] else "tensors no edit touches")
        if v.get("reference_outputs_compared"):
            lines.append(f"    outputs: {v['reference_outputs_equal']}/{v['reference_outputs_compared']} equal to the "
                         "original's as computed by onnx.reference where onnxruntime refused the original")
        if v["tensors_compared"]:
            lines.append(f"    values: {v['tensors_equal']}/{v['tensors_compared']} tensors equal in original and copy ({scope})"
                         + (f"; graph outputs {v['outputs_equal']}/{v['outputs_compared']} equal" if v["outputs_compared"] else ""))
        else:
            lines.append("    values: no tensor of the original's onnxruntime runs is left untouched by the edits")
        for p in v.get("properties", ()):
            judged = [r for r in p["bindings"] if r["ok"] is not None]
            shown = next((r for r in judged if r["ok"] is False), judged[-1] if judged else None)
            status = {"holds": "holds", "broken": "BROKEN", "not-checked": "not checked"}[p["status"]]
            lines.append(f"    claim of [{p['rule']}] {p['node'] or '<graph>'}: {p['claim']}: {status}"
                         + (f" at {len([r for r in judged if r['ok']])}/{len(p['bindings'])} bindings" if judged else "")
                         + (f" ({_label(shown['dims'])}: {shown['detail']})" if shown else ""))
            if p["retrain"]:
                lines.append(f"      weights: {p['retrain']['why']}")
        for msg in v["regressions"]:
            lines.append(f"    REGRESSION: {msg}")
        for msg in v["still_failing"]:
            lines.append(f"    still failing: {msg}")
    if result.error:
        lines.append(f"  error: {result.error}")
    for msg in (m for m in result.broken if not m.startswith(("new finding", "the copy", "at "))):
        lines.append(f"  error: {msg}")
    lines.append("  " + _verdict(result))
    return "\n".join(lines)


def _verdict(result: FixResult) -> str:
    """The last line: what was written and what is left, never more than happened."""
    code = result.exit_code
    left = result.left
    rank = {"error": 2, "warning": 1, "info": 0}
    above = [d for d in left if rank[d.severity] >= rank[result.fail_on]]
    fixed = sum(1 for a in result.applied if a.ok)
    v = result.verification or {}
    if code == 2:
        text = "errors: see above"
    elif not result.before or not result.before.diagnostics:
        text = "no findings: nothing to fix"
    elif not fixed:
        text = (f"no machine-applicable fix for {'any of ' if len(left) > 1 else ''}the {len(left)} finding"
                f"{'s' if len(left) != 1 else ''}")
    else:
        text = f"{fixed} fixed"
        if left:
            text += f", {len(left)} finding{'s' if len(left) != 1 else ''} left"
        if v.get("confirmed"):
            text += ", the copy confirmed under onnxruntime"
        if v.get("still_failing"):
            text += ", the copy still fails under onnxruntime"
    if code != 2 and above:
        text += f" ({len(above)} at or above --fail-on {result.fail_on})"
    elif code == 0 and left:
        text += f" (none at or above --fail-on {result.fail_on})"
    if result.written:
        return f"wrote {result.output}: {text}"
    return f"{text}; nothing written" if not result.dry_run else text


def fix_to_json(result: FixResult) -> dict:
    """The JSON form of ``shapelint fix --format json``."""
    from . import __version__

    return {
        "tool": {"name": "shapelint", "version": __version__},
        "input": result.path,
        "output": result.output,
        "dry_run": result.dry_run,
        "written": result.written,
        "error": result.error,
        "applied": [{"rule": a.rule, "node": a.node, "description": a.description, "ok": a.ok, "error": a.error,
                     "preserves_outputs": a.preserves_outputs, "changes": a.changes} for a in result.applied],
        "fail_on": result.fail_on,
        "unfixable": [d.to_json() for d in result.unfixable],
        "remaining": [d.to_json() for d in result.remaining],
        "new": [d.to_json() for d in result.new],
        "also_gone": [d.to_json() for d in result.also_gone],
        "before": result.before.to_json() if result.before else None,
        "after": result.after.to_json() if result.after else None,
        "verification": result.verification,
        "exit_code": result.exit_code,
    }
