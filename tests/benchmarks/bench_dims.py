"""Micro-benchmark: shapelint's Poly dims against sympy and symengine on the arithmetic exported models do.

Run by hand (pytest ignores ``tests/benchmarks``), from any interpreter that has the libraries to
compare (symengine is optional: ``pip install symengine`` in a scratch venv, with
``PYTHONPATH=<repo>``)::

    python tests/benchmarks/bench_dims.py

The workload is what inference and the axis walk ask of dims on transformer and CNN-LSTM exports:
products of a batch, a sequence and ints (``batch*seq*64``), sums (``past + seq``), exact divisions
(``batch*seq*64 / 64``) and equality tests of equal and different sizes.  Every figure is from the same
run: import time in a fresh process, and microseconds per operation, each library's answers checked
against Poly's.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time


def import_seconds(module: str, runs: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    return min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
               for _ in range(runs))


def workload(n: int, seed: int = 0):
    rng = random.Random(seed)
    names = ("batch", "seq", "past", "H", "W")
    ops = []
    for _ in range(n):
        a, b = rng.sample(names, 2)
        k, j = rng.choice((2, 3, 4, 8, 12, 64, 768)), rng.choice((1, 2, 64))
        ops.append((a, b, k, j))
    return ops


def run(lib: str, ops) -> tuple[float, list]:
    if lib == "poly":
        from shapelint.dims import compare, exact_quotient, symbol

        sym = symbol

        def div(x, y):
            return exact_quotient(x, y)

        def eq(x, y):
            return compare(x, y).relation == "equal"
    else:
        mod = __import__(lib)
        cache: dict = {}

        def sym(name):
            s = cache.get(name)
            if s is None:
                s = cache[name] = (mod.Symbol(name, integer=True, positive=True) if lib == "sympy"
                                   else mod.Symbol(name))
            return s

        def div(x, y):
            return mod.expand(x / y)

        def eq(x, y):
            return mod.expand(x - y) == 0

    out = []
    start = time.perf_counter()
    for a, b, k, j in ops:
        A, B = sym(a), sym(b)
        p = A * B * k             # batch*seq*64
        s = A + B                 # past + seq
        q = div(p, k)             # batch*seq*64 / 64
        out.append((eq(q, A * B), eq(s * j, B + A * j), eq(p, A * B * j)))
    return time.perf_counter() - start, out


def main() -> None:
    ops = workload(20_000)
    libs = ["poly", "sympy"]
    try:
        import symengine  # noqa: F401

        libs.append("symengine")
    except ImportError:
        pass
    imports = {"poly": import_seconds("shapelint.dims"), "sympy": import_seconds("sympy")}
    if "symengine" in libs:
        imports["symengine"] = import_seconds("symengine")
    results = {lib: run(lib, ops) for lib in libs}
    base = results["poly"][0]
    print(f"python {sys.version.split()[0]}, {len(ops):,} rounds of 3 products/sums, 1 division, 3 equality tests")
    print("| library | import s | workload s | µs per round | x poly | answers as poly's |")
    print("|---|---|---|---|---|---|")
    for lib in libs:
        t, got = results[lib]
        same = got == results["poly"][1]
        print(f"| {lib} | {imports[lib]:.3f} | {t:.3f} | {t / len(ops) * 1e6:.1f} | {t / base:.1f}x | {same} |")


if __name__ == "__main__":
    main()
