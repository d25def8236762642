"""Annotation: what onnxruntime did, written onto the static findings, plus verify's own codes.

Each static finding gets ``runtime``: confirmed (onnxruntime fails at or
below its node, or computes a graph output other than the declared one),
not reproduced, or not checked.  A finding confirmed by a failure at a size
the model's inputs declare valid becomes an error whatever its rule's
severity, and says so.  Failures no finding explains are SL901, crashes and
hangs SL902, inferred shapes that differ from onnxruntime's SL900.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import onnx

from ..diagnostics import Diagnostic, FileReport
from ..dims import format_dim, format_shape, parse_dim
from .codes import RUNTIME_CODES
from .evidence import conditions, evaluate
from .execute import Execution, index_of
from .messages import Failure
from .plan import Binding
from .prepare import Prepared
from .worker import RunResult

__all__ = ["Disagreement", "annotate", "compare_shapes"]


# --------------------------------------------------------------------- compare
@dataclass
class Disagreement:
    tensor: str
    node: onnx.NodeProto | None
    inferred: tuple
    expected: tuple  # inferred, evaluated at the binding (None where unknown)
    runtime: tuple
    binding: Binding


def compare_shapes(result, ex: Execution):
    """``(disagreements, tensors compared)`` over every run that produced shapes."""
    out: list[Disagreement] = []
    compared = 0
    table = result.table
    producers = {o: n for n in result.model.graph.node for o in n.output if o}
    runs = list(enumerate(ex.main)) + list(ex.upstream.items())
    for i, r in runs:
        if r.status != "ok":
            continue
        b = ex.bindings[i]
        subs = b.subs
        for name, rt in r.shapes.items():
            shape = table.shape(name) if rt is not None else None
            if shape is None:
                continue
            compared += 1
            expected = tuple(evaluate(d, subs) for d in shape)
            if len(expected) != len(rt) or any(e is not None and e != x for e, x in zip(expected, rt)):
                out.append(Disagreement(name, producers.get(name), tuple(shape), expected, tuple(rt), b))
    return out, compared


# ------------------------------------------------------------------- wording
def _at(bindings: list[Binding]) -> str:
    """``batch=1 and batch=3``; ``(batch=1, seq=1) and (batch=3, seq=3)``."""
    labels = [b.label for b in bindings]
    if any("," in x for x in labels):
        labels = [f"({x})" for x in labels]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _label(node: onnx.NodeProto | None, op_type: str | None = None, model: onnx.ModelProto | None = None) -> str:
    if node is None:
        return f"a {op_type} node" if op_type else "an unknown node"
    if node.name:
        return f"{node.op_type} {node.name!r}"
    idx = index_of(model, node) if model is not None else None
    return f"the unnamed {node.op_type}" + (f" (node #{idx})" if idx is not None else "")


def _shape_at(shape, subs) -> str:
    if shape is None:
        return "(?)"
    vals = tuple(evaluate(d, subs) for d in shape)
    return format_shape(tuple(v if v is not None else d for v, d in zip(vals, shape)))


def _inputs_text(f: Failure, table, upstream: RunResult | None, b: Binding, model) -> str:
    """The failing node's inputs: symbolic shape, and what reached it at runtime."""
    if f.node is None:
        return ""
    subs = b.subs
    inits = {t.name: t for t in model.graph.initializer}
    parts = []
    for name in list(dict.fromkeys(n for n in f.node.input if n))[:4]:
        shape = table.shape(name)
        sym = format_shape(shape)
        rt = upstream.shapes.get(name) if upstream is not None and upstream.status == "ok" else None
        if rt is None and name in inits:
            rt = list(inits[name].dims)
        if rt is None and shape is not None and all(evaluate(d, subs) is not None for d in shape):
            rt = [evaluate(d, subs) for d in shape]
        if rt is not None and sym != format_shape(tuple(rt)):
            parts.append(f"{name} {sym} = {format_shape(tuple(rt))}")
        else:
            parts.append(f"{name} {sym if rt is None else format_shape(tuple(rt))}")
    return "inputs " + ", ".join(parts) if parts else ""


def _failure_text(f: Failure, where: str, result, ex: Execution, i0: int) -> str:
    text = f"onnxruntime fails {where} in {_label(f.node, f.op_type, result.model)}: {f.message}"
    inputs = _inputs_text(f, result.table, ex.upstream.get(i0), ex.bindings[i0], result.model)
    if inputs:
        text += f" ({inputs} at {ex.bindings[i0].label})" if ex.bindings[i0].dims else f" ({inputs})"
    return text


def _is_below(mg, anchor: onnx.NodeProto, node: onnx.NodeProto) -> bool:
    """``node`` is ``anchor`` or depends on its outputs."""
    if anchor is node:
        return True
    import networkx as nx

    try:
        a, n = mg.info(anchor).key, mg.info(node).key
    except KeyError:
        return False
    return nx.has_path(mg.nx, a, n)


def _diag(code: str, node, message: str, tensor=None, mg=None, op_type=None) -> Diagnostic:
    slug, severity, _ = RUNTIME_CODES[code]
    return Diagnostic(
        rule=code, name=slug, severity=severity,
        node=(node.name or None) if node is not None else None,
        op_type=node.op_type if node is not None else op_type,
        tensor=tensor, message=message,
        source=mg.source(node) if (mg is not None and node is not None) else None,
    )


def _wanted(code: str, select, ignore) -> bool:
    from ..runner import matches

    if select and not matches(code, select):
        return False
    return not (ignore and matches(code, ignore))


def _fname(f: Failure) -> str | None:
    return (f.node.name or None) if f.node is not None else None


# --------------------------------------------------------------- confirmation
def _declared_outputs(model: onnx.ModelProto) -> dict[str, list]:
    """Graph outputs' declared dims (ints, parsed dim_params, or None)."""
    out = {}
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            out[vi.name] = [int(d.dim_value) if d.HasField("dim_value") else (parse_dim(d.dim_param) if d.dim_param else None)
                            for d in vi.type.tensor_type.shape.dim]
    return out


def _declared_mismatch(tensor: str, declared: dict, ex: Execution):
    """``(binding, runtime shape, declared text)`` where a graph output's runtime shape breaks its declaration."""
    if tensor not in declared:
        return None
    dims = declared[tensor]
    for i, b in enumerate(ex.bindings):
        runs = [r for r in (ex.main[i], ex.upstream.get(i)) if r is not None and r.status == "ok"]
        rt = next((r.shapes.get(tensor) for r in runs if r.shapes.get(tensor) is not None), None)
        if rt is None:
            continue
        want = [evaluate(d, b.subs) if d is not None else None for d in dims]
        if len(want) != len(rt) or any(w is not None and w != x for w, x in zip(want, rt)):
            text = format_shape(tuple(dims))
            shown = format_shape(tuple("?" if w is None else w for w in want))
            return b, rt, text if text == shown else f"{text} = {shown}"
    return None


def _ran(anchor, tensor, ex: Execution, i: int) -> bool:
    """The anchor node's outputs (or the finding's tensor) exist at binding ``i``."""
    names = [o for o in anchor.output if o] if anchor is not None else ([tensor] if tensor else [])
    for r in (ex.main[i], ex.upstream.get(i)):
        if r is not None and r.status == "ok":
            if not names or any(n in r.shapes for n in names):
                return True
    return False


def _conditions_text(result, d: Diagnostic, fails: list[Binding], runs: list[Binding]) -> str:
    """How the bindings relate to the finding's "valid only when" conditions."""
    conds = conditions(result, d)
    if not conds:
        return ""
    parts = []
    for c in conds:
        broke = [b for b in fails if c.name in b.dims and not c.holds(b.dims)]
        held = [b for b in runs if c.holds(b.dims)]
        if broke:
            parts.append(f"{_at(broke)} break{'s' if len(broke) == 1 else ''} its condition {c}"
                         + (f", which {_at(held)} meet{'s' if len(held) == 1 else ''}" if held else ""))
    return "; ".join(parts)


_NAMED = re.compile(r"\(([^()\s]+)\)|'([^'\s]+)'")


def _names_the_same(message: str, d: Diagnostic) -> bool:
    """A failure onnxruntime could not pin on a node names a tensor or node the finding names too."""
    mine = {d.node, d.tensor} | {a or b for a, b in _NAMED.findall(d.message or "")}
    return any((a or b) in mine for a, b in _NAMED.findall(message or "")) if mine - {None} else False


def _promote(d: Diagnostic, fails: list[Binding], session: bool) -> str:
    """A failure at a size the inputs declare valid is an error, whatever the rule's severity."""
    valid = [b for b in fails if b.valid]
    if not (valid or session):
        return (f"; onnxruntime fails only at sizes the model's inputs do not declare valid "
                f"({'; '.join(b.invalid for b in fails if b.invalid)})")
    if d.severity == "error":
        return ""
    was, d.severity = d.severity, "error"
    where = "when the session is created" if session else f"at {_at(valid)}, which the model's inputs declare valid"
    return f"; an error, whatever the rule's severity ({was}): onnxruntime fails {where}"


def _confirm(d: Diagnostic, result, ex: Execution, groups, ok: list[int], declared, explained: set, by_name) -> None:
    model, mg = result.model, result.graph
    anchor = by_name.get(d.node) if d.node else None
    hits = []
    for key, members in groups.items():
        f = members[0][1]
        if (anchor is not None and f.node is not None and _is_below(mg, anchor, f.node)
                or anchor is None and d.node is None and d.op_type is None
                or f.node is None and _names_the_same(f.message, d)):
            hits.append((key, members))
    runs = [ex.bindings[i] for i in ok]
    if hits:
        explained.update(k for k, _ in hits)
        i0, f = hits[0][1][0]
        fails = sorted({i for _, ms in hits for i, _ in ms})
        session = f.phase == "session"
        where = "at session creation" if session else "at " + _at([ex.bindings[i] for i in fails])
        summary = "confirmed: " + _failure_text(f, where, result, ex, i0)
        if ok:
            summary += "; runs at " + _at(runs)
        cond = _conditions_text(result, d, [ex.bindings[i] for i in fails], runs)
        if cond:
            summary += f" ({cond})"
        was = d.severity
        summary += _promote(d, [ex.bindings[i] for i in fails], session)
        d.runtime = {"status": "confirmed", "summary": summary,
                     "fails": [{"dims": ex.bindings[i].dims, "node": _fname(g), "message": g.message}
                               for _, ms in hits for i, g in ms],
                     "runs": [b.dims for b in runs],
                     **({"severity_was": was} if was != d.severity else {})}
        return
    seen_at = _declared_mismatch(d.tensor, declared, ex) if d.tensor else None
    if seen_at is not None:
        b, rt, decl = seen_at
        d.runtime = {"status": "confirmed", "fails": [], "runs": [x.dims for x in runs],
                     "summary": f"confirmed: onnxruntime computes {format_shape(tuple(rt))} for graph output "
                                f"{d.tensor!r}, declared {decl} at {b.label}"}
        return
    ran = [i for i in range(len(ex.main)) if _ran(anchor, d.tensor, ex, i)]
    if ran:
        others = "" if len(ran) == len(ex.main) else "; other bindings fail elsewhere"
        what = _label(anchor, d.op_type, model) if anchor is not None else "the model"
        d.runtime = {"status": "not-reproduced", "fails": [], "runs": [ex.bindings[i].dims for i in ran],
                     "summary": f"not reproduced: onnxruntime runs {what} without error at "
                                f"{_at([ex.bindings[i] for i in ran])}{others} (a finding about values "
                                "or layout, or a declared shape, shows no runtime error)"}
    else:
        d.runtime = {"status": "not-checked", "fails": [], "runs": [],
                     "summary": "not checked: onnxruntime did not reach this node at any binding"}


# ------------------------------------------------------------ verify's codes
def _unexplained(result, ex: Execution, groups, explained: set, ok: list[int]) -> list[Diagnostic]:
    """SL901: failures no static finding explains."""
    out = []
    for key, members in groups.items():
        if key in explained:
            continue
        i0, f = members[0]
        idxs = sorted({i for i, _ in members})
        where = "at session creation" if f.phase == "session" else "at " + _at([ex.bindings[i] for i in idxs])
        msg = _failure_text(f, where, result, ex, i0)
        if ok:
            msg += "; it runs at " + _at([ex.bindings[i] for i in ok])
        msg += "; no static finding predicted this"
        out.append(_diag("SL901", f.node, msg, mg=result.graph, op_type=f.op_type))
    return out


def _crashes(result, ex: Execution, crashes: list[int]) -> list[Diagnostic]:
    """SL902: crashes, hangs, memory."""
    groups: dict[tuple, list[int]] = {}
    for i in crashes:
        r, f = ex.main[i], (ex.failures.get(i) or [None])[0]
        msg = f.message if f is not None else r.message
        groups.setdefault((r.status, id(f.node) if f is not None else None, msg), []).append(i)
    out = []
    for (status, _node, msg), idxs in groups.items():
        f = (ex.failures.get(idxs[0]) or [None])[0]
        limit = f"ran out of the {ex.memory_mb} MB memory limit" if ex.memory_mb else "ran out of memory"
        what = {"timeout": f"hung (time limit {ex.timeout:g}s)", "memory": limit, "crash": "crashed"}.get(status, status)
        where = f" in {_label(f.node, f.op_type, result.model)}" if f is not None and (f.node is not None or f.op_type) else ""
        out.append(_diag("SL902", f.node if f is not None else None,
                         f"onnxruntime {what} at {_at([ex.bindings[i] for i in idxs])}{where}: {msg}; shapelint carried on",
                         mg=result.graph, op_type=f.op_type if f is not None else None))
    return out


def _disagreements(result, dis: list[Disagreement]) -> list[Diagnostic]:
    """SL900: inference disagrees with runtime (the first tensor of each chain, with the count below it)."""
    import networkx as nx

    mg, table = result.graph, result.table
    bad_tensors = {x.tensor for x in dis}
    first: dict[str, list[Disagreement]] = {}
    for x in dis:
        first.setdefault(x.tensor, []).append(x)
    out = []
    for name, xs in first.items():
        node = xs[0].node
        if node is not None and any(t in bad_tensors for t in node.input):
            continue
        downstream = 0
        if node is not None:
            try:
                desc = nx.descendants(mg.nx, mg.info(node).key)
                downstream = sum(1 for t in bad_tensors if t != name and mg.producer(t) is not None
                                 and mg.info(mg.producer(t)).key in desc)
            except KeyError:
                downstream = 0
        inputs = ""
        if node is not None:
            subs = xs[0].binding.subs
            parts = []
            for t in dict.fromkeys(t for t in node.input if t):
                sym, at = format_shape(table.shape(t)), _shape_at(table.shape(t), subs)
                value = table.get(t).value
                shown = f" holding [{', '.join(format_dim(v) for v in value)}]" if value is not None and len(value) <= 8 else ""
                parts.append(f"{t} {sym}" + (f" = {at}" if at != sym else "") + shown)
            inputs = f"; {node.op_type} inputs: " + ", ".join(parts) if parts else ""
        at = "; ".join(f"{y.binding.label}: inferred {format_shape(y.inferred)} = "
                       f"{format_shape(tuple('?' if e is None else e for e in y.expected))}, onnxruntime {format_shape(y.runtime)}"
                       for y in xs[:3])
        more = f"; and {downstream} tensor(s) below it disagree as a consequence" if downstream else ""
        out.append(_diag("SL900", node, f"shape inference disagrees with onnxruntime on {name!r} at {at}{inputs}{more} "
                         "(a bug in shapelint's inference: please report it)", tensor=name, mg=mg))
    return out


def _binding_rows(ex: Execution) -> list[dict]:
    rows = []
    for i, (b, r) in enumerate(zip(ex.bindings, ex.main)):
        status = "ok" if r.status == "ok" else ("fails" if i in ex.failures and r.status == "error" else r.status)
        row = {"dims": b.dims, "why": b.why, "status": status, "valid": b.valid, "seconds": round(r.seconds, 4)}
        if b.invalid:
            row["invalid"] = b.invalid
        if i in ex.failures:
            first = ex.failures[i][0]
            row.update(node=_fname(first), message=first.message, phase=first.phase, op_type=first.op_type)
            if len(ex.failures[i]) > 1:
                row["also"] = [{"node": _fname(g), "message": g.message, "phase": g.phase} for g in ex.failures[i][1:]]
        elif r.status != "ok":
            row["message"] = r.message
        rows.append(row)
    return rows


def annotate(report: FileReport, prepared: Prepared, result, ex: Execution, select=None, ignore=None) -> FileReport:
    """Mark the static findings confirmed or not, add SL900–SL902; returns ``report``.

    ``result`` is the model's :class:`~shapelint.result.CheckResult` (often ``report`` itself).
    """
    groups: dict[tuple, list[tuple[int, Failure]]] = {}
    crashes: list[int] = []
    for i, r in enumerate(ex.main):
        if r.status in ("crash", "timeout", "memory"):
            crashes.append(i)
            continue
        for f in ex.failures.get(i, ()):
            key = (id(f.node), f.phase) if f.node is not None else (f.op_type, f.message, f.phase)
            groups.setdefault(key, []).append((i, f))
    ok = [i for i, r in enumerate(ex.main) if r.status == "ok"]
    declared = _declared_outputs(result.model)
    explained: set[tuple] = set()
    by_name: dict[str, onnx.NodeProto] = {}
    for n in result.model.graph.node:
        if n.name:
            by_name.setdefault(n.name, n)
    for d in report.diagnostics:
        if d.rule not in RUNTIME_CODES:
            _confirm(d, result, ex, groups, ok, declared, explained, by_name)
    dis, compared = compare_shapes(result, ex)
    added = _unexplained(result, ex, groups, explained, ok) + _crashes(result, ex, crashes) + _disagreements(result, dis)
    report.diagnostics.extend(d for d in added if _wanted(d.rule, select, ignore))
    report.runtime = {
        "provider": ex.provider,
        "weights": prepared.weights,
        "bindings": _binding_rows(ex),
        "tensors_compared": compared,
        "disagreements": len(dis),
        "notes": prepared.notes + ex.notes + [f"{k}: name given to {v}" for k, v in prepared.renamed_dims.items()],
        "seconds": round(ex.seconds, 3),
    }
    return report
