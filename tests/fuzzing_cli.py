"""A fuzz target for whole ``shapelint`` invocations: configs, baselines, output paths, flags, models, workers.

Each case is built from one integer seed (:func:`generate`), so a failure is
reproduced by its seed alone::

    python -m tests.fuzzing_cli --cases 10000 --seed 1          # a campaign
    python -m tests.fuzzing_cli --replay 1000042 -v              # one case again, with its output
    python -m tests.fuzzing_cli --case-file tests/corpus/cli/X.json

A case is a folder of files (models from :mod:`tests.fuzzing`'s generators
and the fixtures, hostile ``pyproject.toml``/``shapelint.toml`` files and
baselines, FIFOs, symlinks, hard links, sparse files) and one command line
(``check``, ``verify``, ``fix``, ``shapes``, ``rules``, ``explain``) with
hostile flags and output paths.  It runs in-process under
:class:`click.testing.CliRunner` inside a forked child (time and memory
limits, its own process group, its own ``TMPDIR``) or, for a fraction of the
cases, as a real ``python -m shapelint.cli`` process.  Oracles
(:func:`problems`):

* the exit status is 0, 1 or 2 (a real process: never a signal);
* no traceback and no escaped exception; no "internal error" anywhere;
* at most one error line on stderr (notes, warnings and log lines aside), and
  an exit status 2 says why: that line, or a file's error in the report;
  click's own usage block is accepted for the options click validates itself
  (``--format``, ``--fail-on``, ``--jobs``, ``--provider``, ``--memory``, a
  float ``--timeout``, ``-o``'s ``click.Path`` checks, missing arguments) and
  counted separately;
* every file in the case folder keeps its bytes unless the command line names
  it as an output, and a model or its external data never changes; no temp
  file is left in the folder or in ``TMPDIR``;
* no hang (a per-case limit on CPU and on wall time);
* ``--jobs`` with a worker SIGKILLed on ``victim.onnx`` (the test-only rule
  :class:`tests.test_reliability.KillOnVictim`): that file's error says the
  worker died, in one line, and every other file still has its result;
* ``--format json`` on stdout is valid JSON whenever a report was printed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import pickle
import random
import re
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

from .isolated import _cpu_seconds, _vm_size  # the memory and CPU watch the in-process runs share
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus" / "cli"

#: CPU seconds (of the forked child) and wall seconds one case may take
CASE_CPU_SECONDS = 30.0
CASE_WALL_SECONDS = 60.0
#: address space a forked case may map beyond the parent's
CASE_MEMORY = 4 << 30

KINDS = ["config", "baseline", "output", "flags", "env", "models", "jobs_death", "verify", "fix", "shapes", "misc"]
#: relative weights: verify and fix start an onnxruntime child, so they are rarer
WEIGHTS = [14, 12, 14, 12, 5, 10, 6, 9, 9, 5, 4]


# ------------------------------------------------------------------ cases


@dataclass
class Case:
    """One invocation: the files of its folder and the command line (paths relative to the folder)."""

    seed: int
    kind: str
    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    sparse: dict[str, int] = field(default_factory=dict)  # name -> size, made with truncate (no disk)
    dirs: list[str] = field(default_factory=list)
    fifos: list[str] = field(default_factory=list)
    symlinks: dict[str, str] = field(default_factory=dict)  # name -> target
    hardlinks: dict[str, str] = field(default_factory=dict)  # name -> existing file
    env: dict[str, str] = field(default_factory=dict)
    subprocess: bool = False
    killer: bool = False  # install the worker-killing test rule
    protected: list[str] = field(default_factory=list)  # models and their data: never written
    outputs: list[str] = field(default_factory=list)  # paths the command line names as outputs
    victim: str | None = None  # a worker must die on this file (jobs_death)

    def to_json(self) -> dict:
        d = asdict(self)
        d["files"] = {k: base64.b64encode(v).decode() for k, v in self.files.items()}
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Case":
        d = dict(d)
        for key in ("what", "found", "expect", "result"):
            d.pop(key, None)
        d["files"] = {k: base64.b64decode(v) for k, v in d["files"].items()}
        return cls(**d)


def _small_fixtures() -> list[Path]:
    return sorted(p for p in (ROOT / "fixtures").rglob("*.onnx") if p.stat().st_size <= 20_000)


_FIXTURES: list[Path] | None = None
_FIXTURE_BYTES: dict[Path, bytes] = {}


def fixture(R: random.Random, prefer: str | None = None) -> bytes:
    global _FIXTURES
    if _FIXTURES is None:
        _FIXTURES = _small_fixtures()
    pool = [p for p in _FIXTURES if prefer is None or p.name.startswith(prefer)] or _FIXTURES
    p = R.choice(pool)
    if p not in _FIXTURE_BYTES:
        _FIXTURE_BYTES[p] = p.read_bytes()
    return _FIXTURE_BYTES[p]


def _draw(strategy, R: random.Random):
    """One value of a hypothesis strategy, from ``R`` (deterministic, outside ``@given``)."""
    from hypothesis.internal.conjecture.data import ConjectureData

    data = ConjectureData(random=random.Random(R.getrandbits(64)))
    return data.draw(strategy)


def _weight_model(location: str, **entries) -> bytes:
    from onnx import TensorProto, helper

    w = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[4, 4], data_location=TensorProto.EXTERNAL)
    for k, v in {"location": location, **entries}.items():
        e = w.external_data.add()
        e.key, e.value = k, str(v)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="/fc/MatMul")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def add_model(R: random.Random, case: Case, name: str, good: bool = False) -> str:
    """A model file named ``name`` in the case (and its data file when it has one); returns the name."""
    from . import fuzzing

    roll = R.random()
    if good or roll < 0.30:
        data = fixture(R)
    elif roll < 0.40:
        data = fixture(R, "bad_")
    elif roll < 0.62:
        try:
            data = _draw(fuzzing.mutated_models(), R)
        except Exception:  # noqa: BLE001 - the generator ran out of choices: a plain fixture
            data = fixture(R)
    elif roll < 0.72:
        try:
            data = _draw(fuzzing.mutated_bytes(), R)
        except Exception:  # noqa: BLE001
            data = fixture(R)
    elif roll < 0.80:
        try:
            data = _draw(fuzzing.valid_graphs(), R).model.SerializeToString()
        except Exception:  # noqa: BLE001
            data = fixture(R)
    elif roll < 0.85:
        data = R.choice([b"", b"\x08\x07garbage", b"\xff" * 64, b"{}", fixture(R)[: R.randint(1, 200)]])
    else:
        loc = R.choice(["w.bin", "w.bin", "w.bin", "big.bin", "../w.bin", "/etc/passwd", "fifo.bin", "nope.bin", "sub/w.bin"])
        entries = R.choice([{}, {}, {"offset": "0", "length": "64"}, {"offset": "-1"}, {"length": "1e3"},
                            {"offset": "4096"}, {"length": str(2**63)}, {"offset": "abc"}])
        data = _weight_model(loc, **entries)
        # the data file the model reads: its location resolves from the model's own folder
        where = os.path.normpath(os.path.join(os.path.dirname(name), loc)) if loc in ("w.bin", "sub/w.bin") else loc
        if loc in ("w.bin", "sub/w.bin") and not where.startswith("..") and where not in case.files:
            case.files[where] = bytes(R.getrandbits(8) for _ in range(64)) + b"\0" * R.choice([0, 0, 4032])
            case.protected.append(where)
            if "/" in where:
                case.dirs.append(where.rsplit("/", 1)[0])
        elif loc == "big.bin" and loc not in case.sparse:
            case.sparse[loc] = R.choice([2**20, 2**30, 3 * 2**30])
            case.protected.append(loc)
        elif loc == "fifo.bin" and loc not in case.fifos:
            case.fifos.append(loc)
    if "/" in name:
        case.dirs.append(name.rsplit("/", 1)[0])
    case.files[name] = data
    case.protected.append(name)
    return name


def model_name(R: random.Random, k: int) -> str:
    return R.choice([f"m{k}.onnx"] * 6 + [f"sub/m{k}.onnx", f"a b {k}.onnx", f"ünï{k}.onnx", f"-dash{k}.onnx",
                                           f"new\nline{k}.onnx", f"bad\udcff{k}.onnx", f"{'x' * 200}{k}.onnx"])


def add_models(R: random.Random, case: Case, n: int | None = None) -> list[str]:
    n = n if n is not None else R.choice([1, 1, 1, 2, 3])
    names = []
    for k in range(n):
        names.append(add_model(R, case, model_name(R, k)))
    return names


def model_args(R: random.Random, case: Case, names: list[str]) -> list[str]:
    """How the models are named on the command line: files, their folder, a glob, or something missing."""
    roll = R.random()
    if roll < 0.7:
        out = [f"./{n}" if n.startswith("-") else n for n in names]
    elif roll < 0.8:
        out = ["."]
    elif roll < 0.87:
        out = ["*.onnx"]
    elif roll < 0.92:
        out = names + [R.choice(["missing.onnx", "nodir/x.onnx", "", "sub", "/dev/null", "y" * 300 + ".onnx",
                                 "z" * 300 + "/*.onnx", "/proc/self/mem"])]
    else:
        extra = R.choice(["fifo.onnx", "dangling.onnx", "zero.onnx", "dir.onnx"])
        if extra == "fifo.onnx":
            case.fifos.append(extra)
        elif extra == "dangling.onnx":
            case.symlinks[extra] = "/nowhere/at/all"
        elif extra == "zero.onnx":
            case.symlinks[extra] = "/dev/zero"
        else:
            case.dirs.append(extra)
        out = names + [R.choice([extra, "."])]
    return out


# ------------------------------------------------------------ config files

CODES_GOOD = ["SL1", "SL103", "SL2", "SL501", "ALL", "SL0", "SL900"]
CODES_BAD = ["", "sl103", " SL1 ", "SL9999", "XYZ1", "SL", "S", "1", "SL-1", "ü", "SL1" * 40, "TST900", "SL1,SL2", "*",
             "SL0001", "A" * 9, "\x00", "SL1\n"]
SEVS_BAD = ["", "ERROR", "fatal", "warn", "none", "Error", "e"]
HUGE_INTS = [0, -1, 1, 2, 256, 257, 2**31, 2**63 - 1, 2**63, 2**64, 10**40, -(2**63)]


def _junk(R: random.Random, depth: int = 0):
    roll = R.random()
    if depth > 3 or roll < 0.25:
        return R.choice(CODES_GOOD + CODES_BAD + SEVS_BAD + ["auto", "json", "text"])
    if roll < 0.45:
        return R.choice(HUGE_INTS)
    if roll < 0.55:
        return R.choice([0.5, -0.0, 1e308, float("nan"), float("inf"), -float("inf")])
    if roll < 0.62:
        return R.choice([True, False])
    if roll < 0.68:
        return _Raw(R.choice(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "0x10", "0o17", "0b11", "+inf", "1_000"]))
    if roll < 0.85:
        return [_junk(R, depth + 1) for _ in range(R.randint(0, 3))]
    return {R.choice(["a", "SL103", "batch", "x.onnx", "*", "", "ü", "SL1"]): _junk(R, depth + 1) for _ in range(R.randint(0, 3))}


@dataclass
class _Raw:
    text: str


def _toml_key(k: str) -> str:
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def _toml_value(v) -> str:
    if isinstance(v, _Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


def config_table(R: random.Random) -> dict:
    """A ``[tool.shapelint]`` table: mostly plausible keys, some with the wrong types or values."""
    table = {}
    for _ in range(R.randint(0, 5)):
        key = R.choice(["select", "ignore", "per-file-ignores", "severity", "fail-on", "dims", "jobs", "format", "plugins",
                        "fail_on", "Select", "jobz", "", "ü", "a.b", "exclude"])
        good = R.random() < 0.5
        if key in ("select", "ignore"):
            val = [R.choice(CODES_GOOD)] if good else R.choice([[R.choice(CODES_BAD)], R.choice(CODES_BAD), 3, {}, [[]]])
        elif key == "per-file-ignores":
            val = {R.choice(["*.onnx", "sub/*", "m0.onnx", "[", "**"]): [R.choice(CODES_GOOD)]} if good else _junk(R)
        elif key == "severity":
            val = {R.choice(["SL103", "SL501"]): R.choice(["error", "warning", "info"])} if good else \
                {R.choice(["SL103", "sl103", "SL1", "X", "SL9999"]): R.choice(SEVS_BAD + ["info", 3])}
        elif key == "fail-on":
            val = R.choice(["error", "warning", "info"]) if good else R.choice(SEVS_BAD + [1, []])
        elif key == "dims":
            val = {R.choice(["batch", "seq", "N"]): R.choice([1, 2, 8])} if good else \
                {R.choice(["batch", "", "1x", "a b", "ü", "batch"]): R.choice(HUGE_INTS + [-5, "8", 1.5, True])}
        elif key == "jobs":
            val = R.choice([1, 2, "auto"]) if good else R.choice(HUGE_INTS + ["AUTO", "2", 1.0, True, -3])
        elif key == "format":
            val = R.choice(["text", "json", "sarif", "github"]) if good else R.choice(["JSON", "xml", "", 1])
        elif key == "plugins":
            val = {R.choice(["SL103", "sl103", "shapelint-acme", "x"]): {"opt": 1}} if good else _junk(R)
        else:
            val = _junk(R)
        table[key] = val
    return table


def config_text(R: random.Random, pyproject: bool) -> bytes:
    table = config_table(R)
    body = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in table.items())
    if R.random() < 0.06:
        depth = R.choice([50, 500, 2000, 5000])
        body += "select = " + ("[" * depth + "]" * depth if R.random() < 0.5 else "{a = " * depth + "1" + "}" * depth) + "\n"
    if pyproject:
        head = R.choice(["[tool.shapelint]\n"] * 8 + ["[tool]\nshapelint = 3\n", 'tool = "x"\n', "[tool.shapelint.dims]\n",
                                                    "[[tool.shapelint]]\n", "[project]\nname = 'x'\n"])
        text = "[project]\nname = \"demo\"\n\n" + head + body if R.random() < 0.3 else head + body
    else:
        text = body
    data = text.encode("utf-8", "surrogatepass")
    for _ in range(R.choice([0, 0, 0, 1, 2])):
        data = mutate_bytes(R, data)
    return data


def mutate_bytes(R: random.Random, data: bytes) -> bytes:
    kind = R.choice(["truncate", "insert", "bom", "utf16", "nul", "latin1", "dup_line", "crlf", "flip"])
    b = bytearray(data)
    pos = R.randint(0, len(b))
    if kind == "truncate":
        return bytes(b[:pos])
    if kind == "insert":
        b[pos:pos] = bytes(R.getrandbits(8) for _ in range(R.randint(1, 8)))
    elif kind == "bom":
        return b"\xef\xbb\xbf" + data
    elif kind == "utf16":
        return data.decode("utf-8", "replace").encode("utf-16")
    elif kind == "nul":
        b[pos:pos] = b"\x00"
    elif kind == "latin1":
        b[pos:pos] = "é".encode("latin-1")
    elif kind == "dup_line":
        lines = data.split(b"\n")
        if lines:
            i = R.randrange(len(lines))
            lines.insert(i, lines[i])
        return b"\n".join(lines)
    elif kind == "crlf":
        return data.replace(b"\n", b"\r\n")
    elif kind == "flip" and b:
        i = R.randrange(len(b))
        b[i] ^= 1 << R.randint(0, 7)
    return bytes(b)


def add_config(R: random.Random, case: Case, args: list[str]) -> None:
    """A config file found by the search (in the folder or above the models) or named by --config."""
    roll = R.random()
    if roll < 0.35:
        case.files["pyproject.toml"] = config_text(R, True)
    elif roll < 0.6:
        case.files["shapelint.toml"] = config_text(R, False)
        if R.random() < 0.3:
            case.files["pyproject.toml"] = config_text(R, True)
    else:
        where = R.choice(["cfg/shapelint.toml", "cfg/pyproject.toml", "other.toml", "missing.toml", "cfgdir", "fifo.toml",
                          "/dev/zero", "MODEL", "huge.toml", "sub/pyproject.toml"])
        if where == "cfgdir":
            case.dirs.append(where)
        elif where == "fifo.toml":
            case.fifos.append(where)
        elif where == "huge.toml":
            case.sparse[where] = R.choice([16 * 2**20 + 1, 2**30])
        elif where == "MODEL":
            where = next((p for p in case.protected if p.endswith(".onnx")), "missing.toml")
        elif where not in ("missing.toml", "/dev/zero"):
            if "/" in where:
                case.dirs.append(where.rsplit("/", 1)[0])
            case.files[where] = config_text(R, where.endswith("pyproject.toml"))
        if R.random() < 0.8:
            args += ["--config", where]
        else:
            case.env["SHAPELINT_CONFIG"] = where


# ----------------------------------------------------------------- baselines


def baseline_doc(R: random.Random, models: list[str]) -> dict:
    files = {}
    for m in models or ["m0.onnx"]:
        files[m] = [{"rule": R.choice(["SL103", "SL501", "SL002", "SL001"]), "node": R.choice(["/fc/MatMul", None, "n"]),
                     "tensor": R.choice([None, "x"]), "count": R.choice([1, 2, 0]), "fingerprint": "0" * 16}
                    for _ in range(R.randint(0, 3))]
    return {"version": 1, "tool": {"name": "shapelint", "version": "0"}, "files": files}


def _json_junk(R: random.Random):
    return R.choice([None, True, False, 0, -1, 2**31, 2**31 + 1, 2**64, 1.5, "x", "", [], {}, ["a"], {"rule": 1},
                     "\ud800", "SL103", [[[[]]]], float("nan"), float("inf")])


def _mutate_json(R: random.Random, node, depth=0):
    """Replace one random value in the tree (in place where it can; returns the new root)."""
    if depth > 6 or R.random() < 0.25 or not isinstance(node, (dict, list)) or not node:
        return _json_junk(R)
    if isinstance(node, dict):
        key = R.choice(list(node))
        if R.random() < 0.15:
            del node[key]
            return node
        if R.random() < 0.1:
            node[R.choice(["\ud800", "", "ü", "x" * 300, "../x.onnx", "a\nb"])] = node[key]
            return node
        node[key] = _mutate_json(R, node[key], depth + 1)
        return node
    i = R.randrange(len(node))
    node[i] = _mutate_json(R, node[i], depth + 1)
    return node


def baseline_bytes(R: random.Random, models: list[str]) -> bytes:
    doc = baseline_doc(R, models)
    for _ in range(R.choice([0, 0, 1, 1, 2, 3])):
        doc = _mutate_json(R, doc)
    text = json.dumps(doc, indent=R.choice([None, 2]))
    roll = R.random()
    if roll < 0.05:
        depth = R.choice([100, 1000, 5000, 100_000])
        text = '{"version": 1, "files": {"m0.onnx": ' + "[" * depth + "]" * depth + "}}"
    elif roll < 0.08:
        text = '{"version": 1, "files": {"m0.onnx": [{"rule": "SL103", "count": ' + "9" * R.choice([4300, 5001, 100_000]) + "}]}}"
    elif roll < 0.10:
        text = text.replace("1", "1e400", 1)
    data = text.encode("utf-8", "surrogatepass")
    if R.random() < 0.15:
        data = mutate_bytes(R, data)
    return data


def add_baseline(R: random.Random, case: Case, args: list[str], models: list[str]) -> None:
    where = R.choice(["baseline.json"] * 6 + ["sub/b.json", "missing.json", "bdir", "fifo.json", "/dev/zero", "/dev/null",
                                             "huge.json", "MODEL", "link.json"])
    if where == "bdir":
        case.dirs.append(where)
    elif where == "fifo.json":
        case.fifos.append(where)
    elif where == "huge.json":
        case.sparse[where] = R.choice([64 * 2**20 + 1, 2**31])
    elif where == "MODEL":
        where = models[0] if models else "missing.json"
    elif where == "link.json":
        case.files["real.json"] = baseline_bytes(R, models)
        case.symlinks[where] = "real.json"
    elif where not in ("missing.json", "/dev/zero", "/dev/null"):
        if "/" in where:
            case.dirs.append(where.rsplit("/", 1)[0])
        case.files[where] = baseline_bytes(R, models)
    args += ["--baseline", where]


# ------------------------------------------------------------ output paths


def output_path(R: random.Random, case: Case, models: list[str], suffix: str = ".json") -> str:
    """A destination for -o, --write-baseline or --graph: often fine, often hostile."""
    roll = R.choice(["plain", "plain", "plain", "missing_dir", "existing_dir", "model", "hardlink", "symlink", "data",
                     "fifo", "/dev/full", "/dev/null", "/proc", "empty", "long", "nul", "config", "dangling", "dir_slash",
                     "existing_file", "proc_self"])
    if roll == "plain":
        out = R.choice(["out" + suffix, "sub2/out" + suffix]) if R.random() < 0.9 else "out" + suffix
        if out.startswith("sub2/"):
            case.dirs.append("sub2")
    elif roll == "missing_dir":
        out = "nope/deeper/out" + suffix
    elif roll == "existing_dir":
        case.dirs.append("odir")
        out = "odir"
    elif roll == "dir_slash":
        case.dirs.append("odir")
        out = "odir/"
    elif roll == "model":
        out = models[0] if models else "m0.onnx"
    elif roll == "hardlink" and models and models[0] in case.files:
        case.hardlinks["hard" + suffix] = models[0]
        out = "hard" + suffix
    elif roll == "symlink" and models:
        case.symlinks["sym" + suffix] = os.path.basename(models[0]) if "/" not in models[0] else models[0]
        out = "sym" + suffix
    elif roll == "data" and any(p.endswith(".bin") for p in case.protected):
        out = next(p for p in case.protected if p.endswith(".bin"))
    elif roll == "fifo":
        case.fifos.append("ofifo")
        out = "ofifo"
    elif roll in ("/dev/full", "/dev/null"):
        out = roll
    elif roll == "/proc":
        out = "/proc/nope/out" + suffix
    elif roll == "proc_self":
        out = "/proc/self/status"
    elif roll == "empty":
        out = ""
    elif roll == "long":
        out = "x" * 300 + suffix
    elif roll == "nul":  # no process can be given a NUL in argv; click.Path's own os.stat raises ValueError on one
        out = "a%00b" + suffix
    elif roll == "config" and "pyproject.toml" in case.files:
        out = "pyproject.toml"
    elif roll == "dangling":
        case.symlinks["dangle" + suffix] = "gone/none" + suffix
        out = "dangle" + suffix
    elif roll == "existing_file":
        case.files["old" + suffix] = b"old contents\n"
        out = "old" + suffix
    else:
        out = "out" + suffix
    case.outputs.append(out)
    return out


# ------------------------------------------------------------------- flags

FORMATS_ANY = ["text", "json", "sarif", "github", "JSON", "xml", ""]
DIMS = ["batch=2", "seq=0", "batch=1", "N=8", "batch=-1", "=3", "x", "a=b", "a=1=2", "batch=99999999999999999999999",
        "batch=", "ü=3", "batch=0x10", "batch= 7", "batch=\u0663", "batch=1_000", " =1", "batch=9223372036854775807",
        "batch=9223372036854775808", "seq=3.0", "a" * 500 + "=1", "batch=+4"]
JOBS = ["1", "2", "3", "256", "0", "-1", "257", "abc", "", "1e3", "99999999999999999999", "2.0", " 2"]
TIMEOUTS = ["nan", "inf", "-inf", "-1", "0", "0.05", "0.1", "1e309", "abc", "5", "30", "86401", "1e-320", ""]
MEMORY = ["0", "63", "64", "512", "4096", "abc", str(2**41), "-1", "2048"]


def codes_value(R: random.Random) -> str:
    return ",".join(R.choice(CODES_GOOD + CODES_BAD) for _ in range(R.randint(1, 3)))


def check_flags(R: random.Random, case: Case, args: list[str], models: list[str], p: float = 0.3) -> None:
    if R.random() < p:
        args += ["--format", R.choice(FORMATS_ANY if R.random() < 0.3 else ["text", "json", "sarif", "github"])]
    if R.random() < p:
        args += ["--select", codes_value(R)]
    if R.random() < p:
        args += ["--ignore", codes_value(R)]
    if R.random() < p:
        args += ["--fail-on", R.choice(["error", "warning", "info", "ERROR", "none", ""])]
    if R.random() < p:
        args += ["--jobs" if R.random() < 0.7 else "-j", R.choice(JOBS)]
    for _ in range(R.choice([0, 0, 0, 1, 2]) if p >= 0.3 else 0):
        args += ["--dim", R.choice(DIMS)]
    if R.random() < p / 3:
        args.append(R.choice(["--progress", "--no-progress"]))
    if R.random() < p / 4:
        args.append("--isolated")
    if R.random() < p / 3:
        args += ["-o", output_path(R, case, models)]
    if R.random() < p / 4:
        args += ["--write-baseline", output_path(R, case, models)]
    if R.random() < p / 6:
        args += ["--graph", output_path(R, case, models, suffix="")]


def verify_flags(R: random.Random, args: list[str], with_timeout: bool = True) -> None:
    if with_timeout and R.random() < 0.5:
        args += ["--timeout", R.choice(TIMEOUTS)]
    elif with_timeout:
        args += ["--timeout", "30"]
    if R.random() < 0.3:
        args += ["--memory", R.choice(MEMORY if R.random() < 0.5 else ["2048", "4096"])]
    if R.random() < 0.15:
        args += ["--provider", R.choice(["cpu", "cuda", "CPU", "tpu"])]
    for _ in range(R.choice([0, 0, 1])):
        args += ["--dim", R.choice(DIMS)]


# --------------------------------------------------------------- generation


def generate(seed: int, subprocess_fraction: float = 0.05) -> Case:
    """The case for ``seed``: the same seed always gives the same case."""
    R = random.Random(seed)
    kind = R.choices(KINDS, WEIGHTS)[0]
    case = Case(seed=seed, kind=kind, args=[])
    case.subprocess = R.random() < subprocess_fraction
    pre: list[str] = []  # group options
    if R.random() < 0.1:
        pre.append(R.choice(["-v", "-vv", "--color", "--no-color", "-vvv"]))
    args: list[str] = []
    if kind in ("config", "baseline", "output", "flags", "env", "models"):
        models = add_models(R, case, R.choice([1, 1, 2]) if kind != "models" else None)
        args.append("check")
        if kind == "config":
            add_config(R, case, args)
            check_flags(R, case, args, models, p=0.1)
        elif kind == "baseline":
            add_baseline(R, case, args, models)
            if R.random() < 0.3:
                args += ["--write-baseline", output_path(R, case, models)]
            check_flags(R, case, args, models, p=0.1)
            if R.random() < 0.5:
                args.append("--isolated")
        elif kind == "output":
            for flag in R.sample(["-o", "--write-baseline", "--graph"], R.randint(1, 2)):
                args += [flag, output_path(R, case, models, suffix="" if flag == "--graph" else ".json")]
            check_flags(R, case, args, models, p=0.15)
        elif kind == "flags":
            check_flags(R, case, args, models, p=0.5)
            if R.random() < 0.1:
                args += ["--config", "x.toml", "--isolated"]
            if R.random() < 0.04:
                args.append("--verify")
                verify_flags(R, [], with_timeout=False)
                if R.random() < 0.3:
                    args += ["--provider", R.choice(["cuda", "cpu"])]
        elif kind == "env":
            for var in R.sample(["SHAPELINT_FORMAT", "SHAPELINT_JOBS", "SHAPELINT_FAIL_ON", "SHAPELINT_CONFIG",
                                 "SHAPELINT_PROVIDER"], R.randint(1, 3)):
                case.env[var] = R.choice({"SHAPELINT_FORMAT": FORMATS_ANY, "SHAPELINT_JOBS": JOBS,
                                          "SHAPELINT_FAIL_ON": ["error", "warning", "bad", ""],
                                          "SHAPELINT_CONFIG": ["missing.toml", "", "/dev/zero", "."],
                                          "SHAPELINT_PROVIDER": ["cpu", "cuda", "gpu"]}[var])
            if R.random() < 0.5:
                add_config(R, case, args)
        else:  # models: several hostile files in one run, often as a folder
            check_flags(R, case, args, models, p=0.15)
        if R.random() < 0.25 and kind != "config":
            case.files.setdefault("pyproject.toml", config_text(R, True)) if R.random() < 0.5 else None
        args += model_args(R, case, models)
    elif kind == "jobs_death":
        n = R.randint(2, 5)
        names = [add_model(R, case, f"f{k}.onnx") for k in range(n - 1)]
        case.files.pop("victim.onnx", None)
        victim = add_model(R, case, "victim.onnx", good=True)
        names.insert(R.randint(0, len(names)), victim)
        case.killer, case.victim = True, victim
        args += ["check", "--isolated", "--jobs", R.choice(["2", "2", "3", "16"])]
        if R.random() < 0.7:
            args += ["--format", "json"]
        check_flags(R, case, args, names, p=0.05)
        args += names if R.random() < 0.6 else ["."]
    elif kind == "verify":
        models = [add_model(R, case, f"m{k}.onnx", good=R.random() < 0.4) for k in range(R.choice([1, 1, 2]))]
        args.append("verify")
        verify_flags(R, args)
        if R.random() < 0.3:
            args += ["--format", R.choice(["text", "json", "sarif", "github", "xml"])]
        if R.random() < 0.2:
            args += ["--select" if R.random() < 0.5 else "--ignore", codes_value(R)]
        if R.random() < 0.15:
            args += ["--fail-on", R.choice(["error", "warning", "info", "x"])]
        args += model_args(R, case, models) if R.random() < 0.2 else models
    elif kind == "fix":
        model = add_model(R, case, "m0.onnx", good=False) if R.random() < 0.5 else \
            add_model(R, case, "m0.onnx", good=True) if R.random() < 0.3 else _fixable(R, case)
        args += ["fix", model]
        if R.random() < 0.25:
            args.append("--dry-run")
        if R.random() < 0.9:
            args += ["-o", output_path(R, case, [model], suffix=".onnx")]
        verify_flags(R, args)
        if R.random() < 0.3:
            args += ["--format", R.choice(["text", "json", "sarif"])]
        if R.random() < 0.2:
            args += ["--select", codes_value(R)]
    elif kind == "shapes":
        model = add_model(R, case, R.choice(["m0.onnx", "sub/m0.onnx"]))
        args += ["shapes", R.choice([model, model, "missing.onnx", "sub", ""])]
        if R.random() < 0.4:
            args += ["--format", R.choice(["text", "json", "xml"])]
        for _ in range(R.choice([0, 1])):
            args += ["--dim", R.choice(DIMS)]
    else:
        args += R.choice([["rules"], ["rules", "--format", R.choice(["json", "text", "yaml"])],
                          ["explain", R.choice(CODES_GOOD + CODES_BAD + ["SL103", "matmul-inner-dim", "SL901"])],
                          ["--version"], ["-h"], ["check"], ["nosuchcommand"], ["check", "--help"]])
    case.args = pre + args
    if any(_surrogates(x) for x in [*case.args, *case.files]):
        # CliRunner's streams are strict UTF-8; a real process writes such names as the bytes they are
        case.subprocess = True
    case.dirs = sorted(set(case.dirs))
    case.protected = sorted(set(case.protected))
    case.fifos = sorted(set(case.fifos) - set(case.files))
    return case


def _surrogates(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _fixable(R: random.Random, case: Case) -> str:
    """A fixture whose findings have machine-applicable fixes (softmax/reduction over the wrong axis)."""
    global _FIXTURES
    if _FIXTURES is None:
        _FIXTURES = _small_fixtures()
    pool = [p for p in _FIXTURES if p.name.startswith("bad_") and p.parent.name.startswith(("SL403", "SL404", "SL20"))]
    p = R.choice(pool or _FIXTURES)
    case.files["m0.onnx"] = p.read_bytes()
    case.protected.append("m0.onnx")
    return "m0.onnx"


# ------------------------------------------------------------------ running


def _fs(name: str) -> bytes:
    return os.fsencode(name)  # a lone surrogate (\udcff) is the undecodable byte it stands for


def materialize(case: Case, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    for d in case.dirs:
        (work / d).mkdir(parents=True, exist_ok=True)
    for name, data in case.files.items():
        p = os.path.join(os.fsencode(work), _fs(name))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as fh:
            fh.write(data)
    for name, size in case.sparse.items():
        with open(work / name, "wb") as fh:
            fh.truncate(size)
    for name in case.fifos:
        with _quiet():
            os.mkfifo(work / name)
    for name, target in case.symlinks.items():
        with _quiet():
            os.symlink(target, work / name)
    for name, target in case.hardlinks.items():
        with _quiet():
            os.link(work / target, work / name)


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def snapshot(work: Path) -> dict[bytes, str]:
    """Every entry of the folder (bytes paths, relative): a regular file's sha256, else its kind."""
    out = {}
    base = os.fsencode(work)
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, base)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                if st.st_size > 64 * 2**20:  # the sparse files: size and the first MiB
                    with open(p, "rb") as fh:
                        out[rel] = f"big:{st.st_size}:{hashlib.sha256(fh.read(2**20)).hexdigest()}"
                else:
                    with open(p, "rb") as fh:
                        out[rel] = hashlib.sha256(fh.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = "link:" + os.fsdecode(os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            else:
                out[rel] = "special"
    return out


def _inprocess(work: str, tmp: str, args: list[str], env: dict, killer: bool) -> dict:
    """In the forked child: ``shapelint ARGS`` under CliRunner, in the case folder."""
    os.chdir(work)
    os.environ["TMPDIR"] = tmp
    tempfile.tempdir = tmp
    if killer:
        _install_killer()
    from click.testing import CliRunner

    from shapelint.cli import main

    res = CliRunner().invoke(main, args, env=env or None, catch_exceptions=True)
    try:
        from shapelint.verify import shutdown_workers

        shutdown_workers()
    except Exception:  # noqa: BLE001
        pass
    escaped = None
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        escaped = "".join(traceback.format_exception(type(res.exception), res.exception, res.exception.__traceback__))
    return {"exit": res.exit_code, "stdout": res.stdout, "stderr": res.stderr, "escaped": escaped}


def _install_killer() -> None:
    """The CLI's rules plus the test-only TST900 that SIGKILLs the worker checking victim.onnx."""
    from shapelint import plugins

    from .conftest import loader_with
    from .test_reliability import KillOnVictim

    KillOnVictim.parent = os.getpid()
    plugins.load_rules = loader_with("TST900", KillOnVictim)


def fork_run(fn, *args, cpu: float, wall: float, memory: int | None) -> dict:
    """``fn(*args)`` in a forked child (own process group) killed after ``cpu`` CPU or ``wall`` wall seconds."""
    read_fd, write_fd = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.close(read_fd)
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            if memory is not None:
                vm = _vm_size()
                if vm:
                    resource.setrlimit(resource.RLIMIT_AS, (vm + memory, vm + memory))
            try:
                result = ("ok", fn(*args))
            except BaseException:  # noqa: BLE001
                result = ("raised", traceback.format_exc())
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(pickle.dumps(result))
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks, timed_out = [], None
    with os.fdopen(read_fd, "rb") as fh:
        while True:
            if time.monotonic() - start > wall:
                timed_out = f"no answer after {wall:.0f} s of wall time"
                break
            if _cpu_seconds(pid) > cpu:
                timed_out = f"no answer after {cpu:.0f} s of CPU"
                break
            ready, _, _ = select.select([fh], [], [], 0.05)
            if not ready:
                continue
            chunk = os.read(fh.fileno(), 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    if timed_out:
        with _quiet():
            os.killpg(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    with _quiet():
        os.killpg(pid, signal.SIGKILL)  # leftovers of the group (pool workers, the onnxruntime child)
    seconds = time.monotonic() - start
    if timed_out:
        return {"status": "timeout", "detail": timed_out, "seconds": seconds}
    if not chunks:
        how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
        return {"status": "died", "detail": f"the case's process ended without an answer ({how})", "seconds": seconds}
    kind, value = pickle.loads(b"".join(chunks))
    if kind != "ok":
        return {"status": "raised", "detail": value, "seconds": seconds}
    return {"status": "ok", **value, "seconds": seconds}


def run_subprocess(case: Case, work: Path, tmp: Path) -> dict:
    """A real process: ``python -m shapelint.cli`` (or the killer wrapper for jobs_death)."""
    if case.killer:
        cmd = [sys.executable, "-m", "tests.fuzzing_cli", "--exec-with-killer", "--"]
    else:
        cmd = [sys.executable, "-m", "shapelint.cli"]
    argv = [os.fsencode(a) for a in case.args]
    if any(b"\x00" in a for a in argv):
        argv = [a.replace(b"\x00", b"0") for a in argv]
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT), **case.env}
    env.pop("SHAPELINT_FUZZ_EXAMPLES", None)
    start = time.monotonic()
    proc = subprocess.Popen(cmd + argv, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=CASE_WALL_SECONDS)
    except subprocess.TimeoutExpired:
        with _quiet():
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"status": "timeout", "detail": f"no answer after {CASE_WALL_SECONDS:.0f} s", "seconds": time.monotonic() - start}
    with _quiet():
        os.killpg(proc.pid, signal.SIGKILL)
    return {"status": "ok", "exit": proc.returncode, "stdout": out.decode("utf-8", "backslashreplace"),
            "stderr": err.decode("utf-8", "backslashreplace"), "escaped": None, "seconds": time.monotonic() - start}


# ------------------------------------------------------------------ oracles

_INFO_LINE = re.compile(r"^(shapelint: (note|warning): |shapelint: wrote |shapelint: \d+ baselined |Checking\b|"
                        r"(DEBUG|INFO|WARNING) [\w.]+: )")
_CLASS_DUMP = re.compile(r"\b(?:[A-Z][a-z]+)+(?:Error|Exception)\b(?!s)")
#: options click itself validates (type=Choice/IntRange/float/Path): its usage block is the project's answer
CLICK_VALIDATED = ("'--format'", "'--fail-on'", "'--jobs'", "'-j'", "'--provider'", "'--memory'", "'--timeout'",
                   "'-o'", "'--output'", "'--config'", "'--baseline'", "--dim:", "'--write-baseline'", "'--graph'",
                   "Missing argument", "requires an argument", "No such option", "No such command",
                   "Got unexpected extra argument", "Missing command", "exclude each other",
                   "give the fixed copy's path", "unknown rule", "'MODEL'", "'PATHS...'", "'SHAPELINT_")


def _report_errors(case: Case, res: dict) -> list[str] | None:
    """The file errors a JSON report holds (None: no JSON report on stdout)."""
    try:
        data = json.loads(res["stdout"])
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("files"), list):
        return [f.get("error") for f in data["files"] if isinstance(f, dict) and f.get("error")]
    return None


def _fmt(case: Case) -> str | None:
    a = case.args
    for i in range(len(a) - 2, -1, -1):  # click keeps the last
        if a[i] == "--format":
            return a[i + 1]
    return case.env.get("SHAPELINT_FORMAT") if "check" in a else None


def problems(case: Case, res: dict, before: dict, after: dict, tmp_left: list[str]) -> tuple[list[str], str]:
    """Why the case failed (empty: it passed), and the outcome to count."""
    out: list[str] = []
    if res["status"] != "ok":
        return [f"{res['status']}: {res.get('detail', '').strip().splitlines()[-1:] or ''}"], res["status"]
    code, stdout, stderr = res["exit"], res["stdout"] or "", res["stderr"] or ""
    if res.get("escaped"):
        out.append("exception escaped: " + res["escaped"].strip().splitlines()[-1])
    if code not in (0, 1, 2):
        out.append(f"exit status {code}")
    if "Traceback" in stdout + stderr:
        out.append("traceback in the output")
    if "internal error" in stdout + stderr:
        line = next(ln for ln in (stdout + "\n" + stderr).splitlines() if "internal error" in ln)
        out.append(f"internal error: {line[:300]}")
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    usage = stderr.startswith("Usage:") or "\nError: " in stderr or stderr.startswith("Error: ")
    outcome = f"exit{code}"
    if usage:
        err = next((ln for ln in lines if ln.startswith("Error:")), "")
        if code != 2:
            out.append(f"usage block with exit {code}")
        elif not any(k in err for k in CLICK_VALIDATED):
            out.append(f"click usage block for an option shapelint validates itself: {err[:200]}")
        outcome = "usage-block"
    else:
        errors = [ln for ln in lines if not _INFO_LINE.match(ln)]
        verbose = any(a.startswith("-vv") for a in case.args)
        if len(errors) > 1 and not verbose:
            out.append(f"{len(errors)} error lines on stderr: {errors[:3]}")
        for ln in errors:
            if _CLASS_DUMP.search(ln) and not verbose:
                out.append(f"exception class in a message: {ln[:200]}")
                break
        reported = "-o" in case.args or "--output" in case.args  # the report, and its errors, went to a file
        if code == 2 and not errors and not reported and "error" not in stdout.lower() and "SL902" not in stdout:
            out.append("exit 2 with no error line and no error in the report")
        if errors and code == 2:
            outcome = "usage-error"
    fmt = _fmt(case)
    report_errors = None
    if fmt == "json" and code in (0, 1, 2) and stdout.strip() and not usage and "-o" not in case.args and "--output" not in case.args:
        try:
            json.loads(stdout)
        except ValueError as exc:
            out.append(f"--format json printed something that is not JSON: {exc}")
        report_errors = _report_errors(case, res)
    for err in report_errors or ():
        if "\n" in err.strip():
            out.append(f"a file's error is not one line: {err[:200]!r}")
        if _CLASS_DUMP.search(err) and "internal error" not in err:
            out.append(f"exception class in a file's error: {err[:200]}")
    # files
    allowed = set()
    for o in case.outputs:
        with _quiet():
            allowed.add(os.path.normpath(os.fsencode(o.rstrip("/") or ".")))
    protected = {_fs(p) for p in case.protected}
    inputs = res.get("inputs")
    for rel, digest in before.items():
        now = after.get(rel)
        if now == digest:
            continue
        if rel in protected and inputs is not None and rel.endswith(b".onnx") and rel not in inputs and rel not in allowed:
            pass  # a model this run does not check (a glob that missed it), written through a link the command line names
        elif rel in protected:
            out.append(f"an input was {'removed' if now is None else 'changed'}: {os.fsdecode(rel)}")
        elif rel not in allowed and digest != "dir":
            out.append(f"a file the command line does not name as an output was {'removed' if now is None else 'changed'}: "
                       f"{os.fsdecode(rel)}")
    for rel in after:
        name = os.path.basename(rel)
        if name == b".shapelint-pictures.json" or b".shapelint_cache" in rel.split(b"/"):
            continue  # --graph's list of the pictures it wrote, the result cache: kept on purpose
        if rel not in before and (name.endswith(b".tmp") or name.startswith(b".shapelint") or b"shapelint-" in name):
            out.append(f"temp file left behind: {os.fsdecode(rel)}")
    if tmp_left:
        out.append(f"left in TMPDIR: {tmp_left[:3]}")
    # a killed worker
    stopped = any(ln.startswith("shapelint: error:") for ln in lines)  # a usage error ended the run: no report
    if case.victim is not None and not usage and not stopped and code in (0, 1, 2):
        out += _death_problems(case, res)
        outcome = "worker-killed" if not out else outcome
    if not out and code == 2 and outcome == f"exit{code}":
        outcome = "file-errors"
    return out, outcome


def _jobs_of(case: Case) -> int | None:
    a = case.args
    for i in range(len(a) - 2, -1, -1):
        x = a[i]
        if x in ("--jobs", "-j"):
            try:
                return int(a[i + 1])
            except ValueError:
                return None
    return None


def _death_problems(case: Case, res: dict) -> list[str]:
    from shapelint.config import default_jobs

    files = [a for a in case.args[case.args.index("check") + 1:] if a.endswith(".onnx") or a == "."]
    files = [a for a in files if not a.startswith("-")]
    n = len(case.protected) if "." in files else len(set(files))
    n = len([p for p in case.protected if p.endswith(".onnx")]) if "." in files else n
    jobs = _jobs_of(case)
    if jobs is None or _fmt(case) != "json" or {"-o", "--select", "--ignore"} & set(case.args):
        return []
    if min(jobs, default_jobs(), n) < 2:
        return []  # no worker processes: nothing is killed
    try:
        data = json.loads(res["stdout"])
    except ValueError:
        return ["no JSON report after a worker died"]
    got = {os.path.basename(f["path"]): f for f in data.get("files", [])}
    if "victim.onnx" not in got:
        return [f"victim.onnx missing from the report ({sorted(got)})"]
    err = got["victim.onnx"].get("error") or ""
    out = []
    if "worker process checking this file died" not in err or "\n" in err:
        out.append(f"victim.onnx: {err!r} (expected one line saying its worker died)")
    if res["exit"] != 2:
        out.append(f"exit {res['exit']} after a worker died (expected 2)")
    for name, f in got.items():
        if name != "victim.onnx" and "worker process" in (f.get("error") or ""):
            out.append(f"{name} lost to the dead worker: {f['error']}")
    expected = {os.path.basename(p) for p in case.protected if p.endswith(".onnx")}
    if "." in files and not expected <= set(got):
        out.append(f"files missing after a worker died: {sorted(expected - set(got))}")
    return out


# ------------------------------------------------------------------ one case


def run_case(case: Case, root: Path, keep: bool = False) -> dict:
    """Materialize, run and judge one case; returns its record (``problems`` empty when it passed)."""
    base = Path(tempfile.mkdtemp(prefix=f"case{case.seed}-", dir=root))
    work, tmp = base / "work", base / "tmp"
    tmp.mkdir()
    try:
        materialize(case, work)
        before = snapshot(work)
        if case.subprocess:
            res = run_subprocess(case, work, tmp)
        else:
            res = fork_run(_inprocess, str(work), str(tmp), case.args, case.env, case.killer,
                           cpu=CASE_CPU_SECONDS, wall=CASE_WALL_SECONDS, memory=CASE_MEMORY)
        after = snapshot(work)
        res["inputs"] = _inputs(case, work)
        tmp_left = sorted(os.listdir(tmp))
        found, outcome = problems(case, res, before, after, tmp_left)
        return {"seed": case.seed, "kind": case.kind, "mode": "subprocess" if case.subprocess else "in-process",
                "outcome": outcome, "problems": found, "seconds": res.get("seconds", 0.0), "result": res}
    finally:
        if not keep:
            _rmtree(base)


def _inputs(case: Case, work: Path) -> set[bytes] | None:
    """The model files the run checks (relative bytes paths), as collect_paths finds them from the arguments."""
    from shapelint.check import collect_paths

    cands = [a for a in case.args if a in (".", "*.onnx") or (a.endswith(".onnx") and not a.startswith("-"))]
    here = os.getcwd()
    try:
        os.chdir(work)
        found = collect_paths(cands)
        return {os.fsencode(os.path.normpath(os.path.relpath(os.path.realpath(f), os.path.realpath(work)))) for f in found}
    except Exception:  # noqa: BLE001 - then every protected file counts
        return None
    finally:
        os.chdir(here)


def _rmtree(p: Path) -> None:
    def onerror(fn, path, exc):
        with _quiet():
            os.chmod(path, 0o700)
            fn(path)

    shutil.rmtree(p, onerror=onerror)


# ------------------------------------------------------------------ campaign


def campaign(n: int, seed: int, subprocess_fraction: float, budget: float | None, save: Path | None,
             progress_every: int = 250, shard: tuple[int, int] = (0, 1)) -> dict:
    root = Path(tempfile.mkdtemp(prefix="shapelint-cli-fuzz-"))
    counts: dict[str, Counter] = {}
    modes: Counter = Counter()
    failures = []
    start = time.monotonic()
    done = 0
    _warm()
    try:
        for i in range(n):
            if i % shard[1] != shard[0]:
                continue
            if budget is not None and time.monotonic() - start > budget:
                break
            case = generate(seed * 1_000_000 + i, subprocess_fraction)
            rec = run_case(case, root)
            done += 1
            counts.setdefault(case.kind, Counter())[rec["outcome"]] += 1
            modes[rec["mode"]] += 1
            if rec["problems"]:
                failures.append({k: rec[k] for k in ("seed", "kind", "mode", "problems")} | {"args": case.args})
                print(f"FAIL seed={case.seed} kind={case.kind} mode={rec['mode']}: {rec['problems']}", flush=True)
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"case-{case.seed}.json").write_text(json.dumps(
                        {"found": rec["problems"], **case.to_json(), "result": {k: v for k, v in rec["result"].items()}},
                        indent=1, default=str))
            if done % progress_every == 0:
                print(f"{done} cases, {len(failures)} failures, {time.monotonic() - start:.0f} s", flush=True)
                if save is not None:
                    _dump(save, seed, n, done, counts, modes, failures, start, subprocess_fraction, shard)
    finally:
        _rmtree(root)
    summary = _dump(save, seed, n, done, counts, modes, failures, start, subprocess_fraction, shard)
    return summary


def _dump(save, seed, n, done, counts, modes, failures, start, frac, shard):
    summary = {"seed": seed, "requested": n, "cases": done, "subprocess_fraction": frac, "shard": list(shard),
               "wall_seconds": round(time.monotonic() - start, 1), "modes": dict(modes),
               "kinds": {k: dict(v) for k, v in sorted(counts.items())},
               "cases_per_kind": {k: sum(v.values()) for k, v in sorted(counts.items())},
               "failures": failures}
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        (save / f"summary-{seed}-{shard[0]}of{shard[1]}.json").write_text(json.dumps(summary, indent=2))
    return summary


def _warm() -> None:
    """Import what every case needs once, so each forked case starts warm."""
    import click.testing  # noqa: F401
    import onnx  # noqa: F401

    import shapelint.check  # noqa: F401
    import shapelint.cli  # noqa: F401
    import shapelint.fix  # noqa: F401
    import shapelint.verify  # noqa: F401
    from shapelint.plugins import load_rules

    from . import fuzzing

    load_rules()
    fuzzing.seed_models()


def _exec_with_killer(argv: list[str]) -> None:
    """``python -m tests.fuzzing_cli --exec-with-killer -- ARGS``: the real CLI plus the worker-killing rule."""
    _install_killer()
    from shapelint.cli import main

    main(argv, prog_name="shapelint")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fuzzing_cli", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subprocess-fraction", type=float, default=0.05)
    ap.add_argument("--budget", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--save", type=Path, default=None, help="folder for failing cases and the summary")
    ap.add_argument("--shard", default="0/1", help="K/N: run cases i with i %% N == K (parallel campaigns)")
    ap.add_argument("--replay", type=int, default=None, help="run the case of this seed and print its output")
    ap.add_argument("--case-file", type=Path, default=None, help="run a saved case (tests/corpus/cli/*.json)")
    ap.add_argument("--subprocess", action="store_true", help="with --replay: as a real process")
    ap.add_argument("-v", "--verbose", action="store_true")
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--exec-with-killer":
        _exec_with_killer(sys.argv[sys.argv.index("--") + 1:])
        return 0
    args = ap.parse_args(argv)
    if args.replay is not None or args.case_file is not None:
        case = generate(args.replay, args.subprocess_fraction) if args.case_file is None else \
            Case.from_json(json.loads(args.case_file.read_text()))
        if args.subprocess:
            case.subprocess = True
        _warm()
        root = Path(tempfile.mkdtemp(prefix="shapelint-cli-replay-"))
        try:
            rec = run_case(case, root)
        finally:
            _rmtree(root)
        print(json.dumps({"case": {k: v for k, v in case.to_json().items() if k != "files"},
                          "files": sorted(case.files), **{k: rec[k] for k in ("outcome", "problems")}}, indent=1, default=str))
        if args.verbose:
            print("--- stdout\n" + str(rec["result"].get("stdout")) + "\n--- stderr\n" + str(rec["result"].get("stderr"))
                  + "\n--- detail\n" + str(rec["result"].get("detail", "")))
        return 1 if rec["problems"] else 0
    k, n = (int(x) for x in args.shard.split("/"))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # unwind: temp folders go too
    summary = campaign(args.cases, args.seed, args.subprocess_fraction, args.budget, args.save, shard=(k, n))
    print(json.dumps({k: v for k, v in summary.items() if k != "failures"}, indent=2))
    print(f"{len(summary['failures'])} failure(s)")
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
