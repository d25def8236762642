"""Benchmark: shapelint ``check`` against onnx's C++ shape inference, speed, memory and start-up.

Run by hand (pytest ignores ``tests/benchmarks``)::

    python tests/benchmarks/bench.py --quick         # a few minutes on 2 cores: while developing
    python tests/benchmarks/bench.py                 # the full run (~15-30 min on 2 cores)
    python tests/benchmarks/bench.py --only startup,gpt2   # parts: startup, chain, gpt2, synthetic,
                                                           # external (default); scale, jobs, profile, ort

What it prints, every figure from the same run:

* per model: shapelint ``check`` time, onnx load + ``infer_shapes(data_prop=True)`` time, their
  ratio, and the peak RSS of each;
* the marginal cost per node between GPT-2 with 12 and with 128 layers, for both tools (start-up and
  one-time costs cancel out: ``(t128 - t12) / (nodes128 - nodes12)``);
* start-up, whole processes: ``shapelint --version`` and ``shapelint check --no-cache`` of a 40-node
  model against ``python -c "import onnx; onnx.load(M)"`` on the same model (bytecode written first,
  as ``pip install`` does).

Every measurement runs the tool in a fresh child process (``--repeat`` runs per
tool, alternating, the fastest counted): the child times the
tool's work alone (imports excluded, printed as ``seconds``) and the parent
reads the child's peak RSS from ``os.wait4`` (``ru_maxrss``).  Tools:

* ``shapelint``: ``shapelint.check.check(path)``: load (graph only), infer, all rules;
* ``onnx``: ``onnx.load(path)`` + ``onnx.shape_inference.infer_shapes(model, data_prop=True)``;
* ``ort-sym`` (``--only ort``, or in the full run): ``onnx.load(path)`` + onnxruntime's
  ``SymbolicShapeInference.infer_shapes(model, auto_merge=True)``.

Models are built once and cached under ``--cache`` (default
``/tmp/shapelint-bench``):

* ``chain-N``: N nodes, each reading the one before (MatMul, Add, Relu, Transpose pairs, Mul,
  Sigmoid, Reshape to a constant shape) over ``[batch, sequence, 64]``;
* ``gpt2_Llayers``: GPT-2 from a ``transformers`` config with random weights, L layers
  (12 and 128), n_embd 32, exported by the TorchScript exporter with dynamic ``batch`` and
  ``sequence``; built with ``/work/venvs/transformers/bin/python`` (``--transformers-python``) when
  this interpreter has no ``transformers``;
* ``synthetic-N``: N nodes of exporter-style blocks (MatMul, Add, Relu,
  Shape→Gather→Unsqueeze→Concat→Reshape, Transpose, residual Add,
  LayerNormalization) over ``[batch, sequence, 64]``;
* ``external``: 24 MatMuls whose ~3 GiB of weights live in one external file,
  a sparse file made with ``os.truncate`` (no disk written, nothing to read).

``--quick``: one run per tool (start-up: best of 5), the 100k graph replaced by a 20k one, no ORT.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1800  # seconds for one tool on one model


# ------------------------------------------------------------------ models


def build_transformer(path: Path, layers: int) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=1000, n_embd=32, n_layer=layers, n_head=2, n_positions=128,
                                     use_cache=False, attn_implementation="eager")
    model = transformers.GPT2LMHeadModel(config).eval()

    class Logits(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

    ids = torch.randint(0, 1000, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long)
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
            "logits": {0: "batch", 1: "sequence"}}
    with torch.no_grad():
        torch.onnx.export(Logits(model), (ids, mask), str(path), dynamo=False, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], dynamic_axes=axes, opset_version=17, do_constant_folding=True)


def build_synthetic(path: Path, n_nodes: int, names=("batch", "sequence")) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c, heads = 64, 4
    inits = [
        numpy_helper.from_array(np.zeros((c, c), np.float32), "W"),
        numpy_helper.from_array(np.zeros(c, np.float32), "B"),
        numpy_helper.from_array(np.ones(c, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(c, np.float32), "beta"),
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array(1, np.int64), "i1"),
        numpy_helper.from_array(np.array([0], np.int64), "ax0"),
        numpy_helper.from_array(np.array([heads, c // heads], np.int64), "heads"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    nodes = []
    h = "x"
    k = 0
    while len(nodes) < n_nodes:
        p = f"/block{k}"
        t = lambda name: f"{p}/{name}_output_0"  # noqa: E731 - exporter-style tensor names
        nodes += [
            helper.make_node("MatMul", [h, "W"], [t("MatMul")], name=f"{p}/MatMul"),
            helper.make_node("Add", [t("MatMul"), "B"], [t("Add")], name=f"{p}/Add"),
            helper.make_node("Relu", [t("Add")], [t("Relu")], name=f"{p}/Relu"),
            helper.make_node("Shape", [t("Relu")], [t("Shape")], name=f"{p}/Shape"),
            helper.make_node("Gather", [t("Shape"), "i0"], [t("Gather")], name=f"{p}/Gather", axis=0),
            helper.make_node("Gather", [t("Shape"), "i1"], [t("Gather_1")], name=f"{p}/Gather_1", axis=0),
            helper.make_node("Unsqueeze", [t("Gather"), "ax0"], [t("Unsqueeze")], name=f"{p}/Unsqueeze"),
            helper.make_node("Unsqueeze", [t("Gather_1"), "ax0"], [t("Unsqueeze_1")], name=f"{p}/Unsqueeze_1"),
            helper.make_node("Concat", [t("Unsqueeze"), t("Unsqueeze_1"), "heads"], [t("Concat")], name=f"{p}/Concat", axis=0),
            helper.make_node("Reshape", [t("Relu"), t("Concat")], [t("Reshape")], name=f"{p}/Reshape"),
            helper.make_node("Transpose", [t("Reshape")], [t("Transpose")], name=f"{p}/Transpose", perm=[0, 2, 1, 3]),
            helper.make_node("Transpose", [t("Transpose")], [t("Transpose_1")], name=f"{p}/Transpose_1", perm=[0, 2, 1, 3]),
            helper.make_node("Concat", [t("Unsqueeze"), t("Unsqueeze_1"), "minus1"], [t("Concat_1")], name=f"{p}/Concat_1", axis=0),
            helper.make_node("Reshape", [t("Transpose_1"), t("Concat_1")], [t("Reshape_1")], name=f"{p}/Reshape_1"),
            helper.make_node("Add", [t("Reshape_1"), h], [t("Add_1")], name=f"{p}/Add_1"),
            helper.make_node("LayerNormalization", [t("Add_1"), "gamma", "beta"], [t("LayerNorm")], name=f"{p}/LayerNorm", axis=-1),
        ]
        h = t("LayerNorm")
        k += 1
    graph = helper.make_graph(nodes, "synthetic", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [*names, c])],
                              [helper.make_tensor_value_info(h, TensorProto.FLOAT, [*names, c])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def build_chain(path: Path, n_nodes: int) -> None:
    """``n_nodes`` nodes in one line, each reading the output of the one before, over ``[batch, sequence, 64]``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = 64
    inits = [
        numpy_helper.from_array(np.zeros((c, c), np.float32), "W"),
        numpy_helper.from_array(np.zeros(c, np.float32), "B"),
        numpy_helper.from_array(np.full(c, 0.5, np.float32), "S"),
        numpy_helper.from_array(np.array([0, 0, 4, 16], np.int64), "split_heads"),
        numpy_helper.from_array(np.array([0, 0, c], np.int64), "merge_heads"),
    ]
    cycle = [
        ("MatMul", ["W"], {}), ("Add", ["B"], {}), ("Relu", [], {}),
        ("Reshape", ["split_heads"], {}), ("Transpose", [], {"perm": [0, 2, 1, 3]}),
        ("Transpose", [], {"perm": [0, 2, 1, 3]}), ("Reshape", ["merge_heads"], {}),
        ("Mul", ["S"], {}), ("Sigmoid", [], {}),
    ]
    nodes = []
    h = "x"
    for k in range(n_nodes):
        op, extra, attrs = cycle[k % len(cycle)]
        out = f"/n{k}/{op}_output_0"
        nodes.append(helper.make_node(op, [h, *extra], [out], name=f"/n{k}/{op}", **attrs))
        h = out
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", c])],
                              [helper.make_tensor_value_info(h, TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def build_external(folder: Path, n_layers: int = 24, rows: int = 4096, cols: int = 8192) -> Path:
    """A MatMul chain whose weights (n_layers * rows * cols * 4 bytes) live in one sparse file."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir(parents=True, exist_ok=True)
    size = rows * cols * 4
    inits, nodes = [], []
    h = "x"
    for k in range(n_layers):
        shape = [rows, cols] if k % 2 == 0 else [cols, rows]
        w = TensorProto(name=f"W{k}", data_type=TensorProto.FLOAT, dims=shape, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", "weights.bin"), ("offset", str(k * size)), ("length", str(size))):
            e = w.external_data.add()
            e.key, e.value = key, value
        inits.append(w)
        nodes.append(helper.make_node("MatMul", [h, f"W{k}"], [f"/layer{k}/MatMul_output_0"], name=f"/layer{k}/MatMul"))
        nodes.append(helper.make_node("Relu", [f"/layer{k}/MatMul_output_0"], [f"/layer{k}/Relu_output_0"], name=f"/layer{k}/Relu"))
        h = f"/layer{k}/Relu_output_0"
    graph = helper.make_graph(nodes, "external", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", rows])],
                              [helper.make_tensor_value_info(h, TensorProto.FLOAT, None)], inits)
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with open(folder / "weights.bin", "wb") as fh:
        fh.truncate(n_layers * size)  # sparse: no blocks written
    return path


# ------------------------------------------------------------------ children


def child(tool: str, path: str) -> None:
    """Run one tool on one model and print ``{"seconds": ...}`` as the last line."""
    info: dict = {}
    if tool == "shapelint":
        from shapelint.check import check
        from shapelint.plugins import load_rules

        rules = list(load_rules())
        start = time.perf_counter()
        report = check(path, rules=rules)
        info = {"error": report.error, "findings": len(report.diagnostics)}
    elif tool == "import":
        import shapelint.check  # noqa: F401

        start = time.perf_counter()
    elif tool in ("onnx", "onnx-graph-only"):
        import onnx

        start = time.perf_counter()
        model = onnx.load(path, load_external_data=tool == "onnx")
        try:
            out = onnx.shape_inference.infer_shapes(model, data_prop=True)
            info = {"value_info": len(out.graph.value_info)}
        except Exception as exc:  # noqa: BLE001 - e.g. a model over 2 GiB once its weights are loaded
            info = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    elif tool in ("ort-sym", "ort-sym-graph-only"):
        import onnx
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        start = time.perf_counter()
        model = onnx.load(path, load_external_data=tool == "ort-sym")
        try:
            out = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
            info = {"value_info": len(out.graph.value_info)}
        except Exception as exc:  # noqa: BLE001
            info = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
    else:
        raise SystemExit(f"unknown tool {tool}")
    info["seconds"] = time.perf_counter() - start
    info["hwm_mb"] = peak_rss_mb()
    print(json.dumps(info))


def peak_rss_mb() -> float | None:
    """This process's peak RSS (``VmHWM``, MiB).  Not ``wait4``'s ``ru_maxrss``: Linux carries the parent's
    high-water mark over ``fork`` + ``exec``, so every child would read at least the benchmark's own size."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def measure(tool: str, path: Path, cwd: Path | None = None) -> dict:
    """Run ``tool`` on ``path`` in a fresh interpreter: its own timing, plus its peak RSS (MiB) from ``wait4``."""
    import tempfile
    import threading

    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", tool, str(path)], stdout=subprocess.PIPE,
                                stderr=err, text=True, cwd=cwd)
        timer = threading.Timer(TIMEOUT, proc.kill)
        timer.start()
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        timer.cancel()
        err.seek(0)
        err_text = err.read()
    wall = time.perf_counter() - start
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if lines:
        result = json.loads(lines[-1])
    elif wall >= TIMEOUT:
        result = {"seconds": None, "error": f"timeout after {TIMEOUT} s"}
    else:
        result = {"seconds": None, "error": (err_text.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]}
    result["rss_mb"] = result.pop("hwm_mb", None) or usage.ru_maxrss / 1024  # kilobytes on Linux
    result["wall"] = wall
    return result


# ------------------------------------------------------------------ report


def _fmt_s(r: dict) -> str:
    if r.get("seconds") is None:
        return "n/a"
    return f"{r['seconds']:.2f}"


def _fmt_mb(r: dict) -> str:
    return "n/a" if r.get("rss_mb") is None else f"{r['rss_mb']:.0f}"


def _ratio(a: dict, b: dict) -> str:
    if a.get("seconds") is None or b.get("seconds") is None or b.get("error"):
        return "n/a"
    return f"{a['seconds'] / b['seconds']:.2f}x"


def count_nodes(path: Path) -> int:
    """In a child: loading a large model here would grow this process, and the children it forks."""
    code = f"import onnx; print(len(onnx.load({str(path)!r}, load_external_data=False).graph.node))"
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


REPEAT = 3  # runs per tool and model, alternating tools; the fastest run counts (--repeat)


def best_of(tool: str, path: Path, cwd: Path | None = None, runs: int | None = None) -> dict:
    """The fastest of ``runs`` fresh-process runs (shared machines are noisy; the minimum is the tool's cost)."""
    results = [measure(tool, path, cwd) for _ in range(runs or REPEAT)]
    timed = [r for r in results if r.get("seconds") is not None]
    best = min(timed, key=lambda r: r["seconds"]) if timed else results[-1]
    best["rss_mb"] = max(r["rss_mb"] for r in results)
    return best


def compare(name: str, path: Path, tools=("shapelint", "onnx"), cwd=None) -> dict:
    """Every tool on ``path``, ``REPEAT`` alternating rounds; prints one line per tool; returns the best runs."""
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    for _ in range(REPEAT):  # alternate, so a slow spell of the machine hits every tool alike
        for t in tools:
            runs[t].append(measure(t, path, cwd))
    n = count_nodes(path)
    results = {"name": name, "nodes": n}
    for t, rs in runs.items():
        timed = [r for r in rs if r.get("seconds") is not None]
        results[t] = dict(min(timed, key=lambda r: r["seconds"]) if timed else rs[-1])
        results[t]["rss_mb"] = max(r["rss_mb"] for r in rs)
    print(f"  {name} ({n:,} nodes)", flush=True)
    for t in tools:
        r = results[t]
        print(f"    {t:<20} {_fmt_s(r):>8} s  {_fmt_mb(r):>6} MiB  {r.get('error') or ''}", flush=True)
    return results


def model_row(res: dict) -> str:
    """``| model | nodes | shapelint s | MiB | onnx s | MiB | time ratio | RSS ratio | [ORT s | MiB | ratio] |``"""
    tools = [t for t in res if t not in ("name", "nodes")]
    s, o = res[tools[0]], res[tools[1]]
    rss = "n/a" if not (s.get("rss_mb") and o.get("rss_mb")) else f"{s['rss_mb'] / o['rss_mb']:.2f}x"
    row = (f"| {res['name']} | {res['nodes']:,} | {_fmt_s(s)} | {_fmt_mb(s)} | {_fmt_s(o)}"
           f"{' (' + o['error'][:40] + ')' if o.get('error') else ''} | {_fmt_mb(o)} | {_ratio(s, o)} | {rss} |")
    for t in tools[2:]:
        r = res[t]
        row += f" {_fmt_s(r)}{' (' + r['error'][:40] + ')' if r.get('error') else ''} | {_fmt_mb(r)} | {_ratio(s, r)} |"
    return row


# ------------------------------------------------------------------ start-up


def _bytecode_env() -> dict:
    """The environment with bytecode caching on: ``pip install`` compiles every module, so a user's
    start-up reads ``.pyc`` files; a shell with ``PYTHONDONTWRITEBYTECODE`` would time the compiler."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run_process(argv: list[str]) -> float:
    """Wall seconds of one whole process."""
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, check=False,
                   env=_bytecode_env())
    return time.perf_counter() - start


def shapelint_argv() -> list[str]:
    """The installed ``shapelint`` script next to this interpreter (not a pyenv shim), else ``-m shapelint.cli``."""
    script = Path(sys.executable).parent / "shapelint"
    if script.exists():
        with open(script, "rb") as fh:
            if fh.read(2) == b"#!" and b"python" in fh.readline():
                return [str(script)]
    return [sys.executable, "-m", "shapelint.cli"]


def startup(model: Path, runs: int) -> list[str]:
    """Whole processes, best of ``runs`` alternating: ``shapelint --version``, ``shapelint check M``,
    ``python -c "import onnx; onnx.load(M)"`` (and ``python -c pass`` for the interpreter's own start)."""
    sl = shapelint_argv()
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import onnx; onnx.load(M)": [sys.executable, "-c", f"import onnx; onnx.load({str(model)!r})"],
        "shapelint --version": [*sl, "--version"],
        "shapelint check M": [*sl, "check", "--no-cache", str(model)],  # the check itself, not a cache hit
    }
    for argv in cases.values():  # once untimed: every module's bytecode is written, as pip install does
        _run_process(argv)
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for k, argv in cases.items():
            times[k].append(_run_process(argv))
    base = min(times["import onnx; onnx.load(M)"])
    lines = [f"start-up, whole processes, best of {runs} alternating ({count_nodes(model)}-node model {model.name}):",
             "| process | s | x onnx.load |", "|---|---|---|"]
    for k in cases:
        best = min(times[k])
        lines.append(f"| `{k}` | {best:.3f} | {best / base:.2f}x |")
    return lines


# ------------------------------------------------------------------ main


def ensure_gpt2(path: Path, layers: int, python: str) -> None:
    if path.exists():
        return
    print(f"exporting GPT-2 with {layers} layers (TorchScript exporter) ...", flush=True)
    try:
        import transformers  # noqa: F401

        build_transformer(path, layers)
        return
    except ImportError:
        pass
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); from pathlib import Path; import bench; "
            f"bench.build_transformer(Path({str(path)!r}), {layers})")
    subprocess.run([python, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ensure(path: Path, build, *args) -> Path:
    if not path.exists():
        print(f"building {path.name} ...", flush=True)
        build(path, *args)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/shapelint-bench", type=Path)
    ap.add_argument("--only", default=None,
                    help="comma-separated parts: startup, chain, gpt2, synthetic, external (the default set); "
                         "scale, jobs, profile, ort (ORT's SymbolicShapeInference beside onnx)")
    ap.add_argument("--quick", action="store_true", help="one run per tool, a 20k synthetic graph, no ORT: a few minutes")
    ap.add_argument("--chain", type=int, default=50_000, help="nodes of the chain")
    ap.add_argument("--nodes", type=int, default=None, help="nodes of the synthetic graph (100k; 20k with --quick)")
    ap.add_argument("--repeat", type=int, default=None, help="runs per tool and model; the fastest counts (3; 1 with --quick)")
    ap.add_argument("--startup-runs", type=int, default=None, help="start-up processes per case (10; 5 with --quick)")
    ap.add_argument("--transformers-python", default="/work/venvs/transformers/bin/python",
                    help="an interpreter with torch and transformers, to export GPT-2 when this one has none")
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    globals()["REPEAT"] = max(1, args.repeat or (1 if args.quick else REPEAT))
    nodes = args.nodes or (20_000 if args.quick else 100_000)
    default = "startup,chain,gpt2,synthetic,external" + ("" if args.quick else ",ort")
    parts = set((args.only or default).split(","))
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    tools = ("shapelint", "onnx", "ort-sym") if "ort" in parts else ("shapelint", "onnx")
    import onnx

    print(f"python {sys.version.split()[0]}, onnx {onnx.__version__}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"cache {cache}{'; --quick' if args.quick else ''}")
    print(f"times: the tool's own work in a fresh process (imports excluded), fastest of {REPEAT} alternating runs; "
          "RSS: the largest peak of those runs\n", flush=True)
    out: list[str] = []
    if "startup" in parts:
        model = ensure(cache / "chain_40.onnx", build_chain, 40)
        print("start-up ...", flush=True)
        out += startup(model, args.startup_runs or (5 if args.quick else 10)) + [""]
    header = ("| model | nodes | shapelint s | shapelint MiB | onnx load+infer s | onnx MiB | time shapelint/onnx |"
              " RSS shapelint/onnx |" + (" ORT symbolic s | ORT MiB | shapelint/ORT |" if "ort-sym" in tools else ""))
    rows, results = [], {}
    print("models:", flush=True)
    if "chain" in parts:
        path = ensure(cache / f"chain_{args.chain}.onnx", build_chain, args.chain)
        results["chain"] = compare(f"chain {args.chain:,}", path, tools)
        rows.append(model_row(results["chain"]))
    if "gpt2" in parts:
        for layers in (12, 128):
            path = cache / f"gpt2_{layers}layers.onnx"
            ensure_gpt2(path, layers, args.transformers_python)
            results[f"gpt2-{layers}"] = compare(f"GPT-2, {layers} layers (TorchScript)", path, tools)
            rows.append(model_row(results[f"gpt2-{layers}"]))
    if "synthetic" in parts:
        path = ensure(cache / f"synthetic_{nodes}.onnx", build_synthetic, nodes)
        results["synthetic"] = compare(f"synthetic {nodes:,}", path, tools)
        rows.append(model_row(results["synthetic"]))
    if "external" in parts:
        path = cache / "external" / "model.onnx"
        if not path.exists():
            build_external(path.parent)
        size = os.path.getsize(path.parent / "weights.bin")
        ext_tools = tuple(t + "-graph-only" if t != "shapelint" else t for t in tools)
        res = compare(f"{size / 2**30:.1f} GiB external weights (graph only)", path, ext_tools)
        rows.append(model_row(res))
        if not args.quick:
            full = {t: measure(t, path) for t in tools[1:]}
            for t, r in full.items():
                print(f"    {t:<20} {_fmt_s(r):>8} s  {_fmt_mb(r):>6} MiB  {r.get('error') or ''} (weights loaded)", flush=True)
    if rows:
        out += [header, "|" + "---|" * (header.count("|") - 1), *rows, ""]
    if "gpt2-12" in results and "gpt2-128" in results:
        a, b = results["gpt2-12"], results["gpt2-128"]
        dn = b["nodes"] - a["nodes"]
        line = [f"marginal cost per node, GPT-2 12 -> 128 layers ({dn:,} more nodes):"]
        per = {}
        for t in tools:
            if a[t].get("seconds") is not None and b[t].get("seconds") is not None:
                per[t] = (b[t]["seconds"] - a[t]["seconds"]) / dn * 1e6
                line.append(f"  {t}: {per[t]:.1f} µs/node")
        if "shapelint" in per and per.get("onnx"):
            line.append(f"  shapelint/onnx: {per['shapelint'] / per['onnx']:.2f}x")
        out += line + [""]
    print("\nsummary:\n" + "\n".join(out), flush=True)
    if "scale" in parts:
        print("scaling (synthetic blocks):", flush=True)
        lines = ["| nodes | shapelint s | µs/node | shapelint MiB | onnx s | µs/node |", "|---|---|---|---|---|---|"]
        for n in (1_000, 10_000, 100_000):
            path = ensure(cache / f"synthetic_{n}.onnx", build_synthetic, n)
            s = best_of("shapelint", path)
            o = best_of("onnx", path)
            nn = count_nodes(path)
            per = lambda r: "n/a" if r.get("seconds") is None else f"{r['seconds'] / nn * 1e6:.0f}"  # noqa: E731
            lines.append(f"| {nn:,} | {_fmt_s(s)} | {per(s)} | {_fmt_mb(s)} | {_fmt_s(o)} | {per(o)} |")
            print("   ", lines[-1], flush=True)
        print("\n" + "\n".join(lines) + "\n", flush=True)
    if "jobs" in parts:
        folder = cache / "jobs"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        fixtures = sorted((ROOT / "fixtures").rglob("*.onnx"))
        for k in range(200):
            src = fixtures[k % len(fixtures)]
            shutil.copy(src, folder / f"{k:03d}_{src.name}")
        print(f"--jobs on {len(list(folder.iterdir()))} copies of the {len(fixtures)} fixtures:", flush=True)
        time_jobs(folder)
        heavy = cache / "jobs-heavy"
        if not heavy.exists():
            heavy.mkdir()
            for k in range(8):  # distinct symbol names: no cache shared between files
                build_synthetic(heavy / f"synthetic_10000_{k}.onnx", 10_000, names=(f"batch{k}", f"sequence{k}"))
        print(f"--jobs on {len(list(heavy.iterdir()))} distinct 10,000-node models:", flush=True)
        time_jobs(heavy)
    if "profile" in parts:
        path = ensure(cache / f"synthetic_{nodes}.onnx", build_synthetic, nodes)
        out_file = cache / "profile.txt"
        print(f"profile of check() on {path.name}: top entries by own time (full tree in {out_file})")
        print(profile_top(path, out_file))


_SPIN = "import time\nt = time.perf_counter()\nx = 0\nfor i in range(20_000_000):\n    x += i\nprint(time.perf_counter() - t)"


def cpu_capacity(n: int = 2) -> float:
    """How many CPU-bound processes this machine runs at full speed right now (others may share it)."""
    alone = float(subprocess.run([sys.executable, "-c", _SPIN], capture_output=True, text=True).stdout)
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True) for _ in range(n)]
    together = max(float(p.communicate()[0]) for p in procs)
    return n * alone / together


def time_jobs(folder: Path) -> None:
    """Wall time of ``shapelint check --jobs 1`` and ``--jobs 2`` on ``folder`` (CLI, fresh processes)."""
    print(f"    CPU capacity now: {cpu_capacity():.2f} of 2 cores (two busy loops in parallel vs one alone)", flush=True)
    times = {}
    for jobs in (1, 2):
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "shapelint.cli", "check", "--jobs", str(jobs), str(folder)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
        times[jobs] = time.perf_counter() - start
        print(f"    --jobs {jobs}: {times[jobs]:.1f} s wall (exit {res.returncode})", flush=True)
    print(f"    speed-up with 2 jobs: {times[1] / times[2]:.2f}x on {os.cpu_count()} cores\n", flush=True)


def profile_top(path: Path, out: Path, top: int = 15) -> str:
    """pyinstrument over ``check(path)`` in a child; the ``top`` functions by own (self) time."""
    stage_names = ("load_model", "from_model", "infer", "run_rules", "analyse", "topological_order", "check")
    code = f"""
import json, sys
from pyinstrument import Profiler
from shapelint.check import check
from shapelint.plugins import load_rules
rules = list(load_rules())
p = Profiler(interval=0.005)
p.start()
check({str(path)!r}, rules=rules)
p.stop()
open({str(out)!r}, "w").write(p.output_text(unicode=True, show_all=False))
root = p.last_session.root_frame()
total = root.time
own = {{}}
stack = [root]
while stack:
    f = stack.pop()
    stack.extend(f.children)
    if f.is_synthetic:  # "[self]" frames: their time is in the parent's total_self_time
        continue
    key = (f.function, (f.file_path_short or "").replace("/work/main/", ""), f.line_no)
    own[key] = own.get(key, 0.0) + f.total_self_time
rows = sorted(own.items(), key=lambda kv: -kv[1])[:{top}]
stages = {{}}
def visit(f, seen):
    key = f.function
    if key in {stage_names!r} and key not in seen:
        stages[key] = stages.get(key, 0.0) + f.time
        seen = seen | {{key}}
    for c in f.children:
        visit(c, seen)
sys.setrecursionlimit(100000)
visit(root, frozenset())
modules = {{}}
for (fn, file, line), v in own.items():
    mod = file.split(":")[0]
    modules[mod] = modules.get(mod, 0.0) + v
mods = sorted(modules.items(), key=lambda kv: -kv[1])[:10]
print(json.dumps({{"total": total, "rows": [[k[0], k[1], k[2], v] for k, v in rows], "stages": stages, "modules": mods}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return f"profile failed: {proc.stderr.strip()[-500:]}"
    data = json.loads(lines[-1])
    text = [f"total {data['total']:.1f} s", "| # | own s | % | function | where |", "|---|---|---|---|---|"]
    for i, (fn, file, line, secs) in enumerate(data["rows"], 1):
        text.append(f"| {i} | {secs:.2f} | {100 * secs / data['total']:.1f} | `{fn}` | {file}:{line} |")
    text += ["", "stages (inclusive time): " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                                        sorted(data["stages"].items(), key=lambda kv: -kv[1])),
             "own time by file: " + ", ".join(f"{m or '?'} {v:.1f} s" for m, v in data["modules"])]
    return "\n".join(text)


if __name__ == "__main__":
    main()
