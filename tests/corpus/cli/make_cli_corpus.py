"""Write the CLI regression corpus: the smallest invocations that once broke ``shapelint`` (found by tests/fuzzing_cli.py).

Each ``*.json`` is a :class:`tests.fuzzing_cli.Case` (files base64-encoded)
plus ``what`` (what it broke, one line) and ``expect`` (the exit status and
words the output must now hold).  ``tests/test_fuzz_cli.py`` replays every
one through the fuzzer's own oracles.  Run ``python -m tests.corpus.cli.make_cli_corpus``
after adding an entry here.
"""

from __future__ import annotations

import json
from pathlib import Path

from onnx import TensorProto, helper

from tests.fuzzing_cli import Case, _weight_model

HERE = Path(__file__).resolve().parent


def _input_model(dims) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="/Relu")], "g", [x], [y])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


W64 = bytes(range(64))
MODEL = _weight_model("w.bin")


def entries() -> dict[str, tuple[str, dict, Case]]:
    long = "y" * 300
    return {
        "check_o_onto_external_data": (
            "check -o sub/w.bin m0.onnx overwrote the weights of the model it checked (Protected held only model files)",
            {"exit": 2, "words": "never overwrites"},
            Case(0, "output", ["check", "-o", "sub/w.bin", "m0.onnx"], files={"m0.onnx": _weight_model("sub/w.bin"), "sub/w.bin": W64},
                 dirs=["sub"], protected=["m0.onnx", "sub/w.bin"], outputs=["sub/w.bin"])),
        "report_onto_fifo_without_reader": (
            "check -o FIFO with no reader blocked forever in open()",
            {"exit": 2, "words": "no process reads"},
            Case(0, "output", ["check", "-o", "ofifo", "m0.onnx"], files={"m0.onnx": MODEL, "w.bin": W64}, fifos=["ofifo"],
                 protected=["m0.onnx", "w.bin"], outputs=["ofifo"])),
        "write_baseline_onto_fifo_without_reader": (
            "check --write-baseline FIFO with no reader blocked forever in open()",
            {"exit": 2, "words": "no process reads"},
            Case(0, "output", ["check", "--write-baseline", "ofifo", "m0.onnx"], files={"m0.onnx": MODEL, "w.bin": W64},
                 fifos=["ofifo"], protected=["m0.onnx", "w.bin"], outputs=["ofifo"])),
        "model_path_too_long": (
            "check NAME with a 300-character name: OSError ENAMETOOLONG traceback from Path.is_dir in collect_paths",
            {"exit": 2, "words": "File name too long"},
            Case(0, "models", ["check", long + ".onnx"])),
        "verify_model_path_too_long": (
            "verify NAME with a 300-character name: the same traceback",
            {"exit": 2, "words": "File name too long"},
            Case(0, "verify", ["verify", "--timeout", "30", long + ".onnx"])),
        "config_path_too_long": (
            "check --config NAME with a 300-character name: OSError traceback from Path.is_file in load_config",
            {"exit": 2, "words": "no such config file"},
            Case(0, "config", ["check", "--config", long + ".toml", "m0.onnx"], files={"m0.onnx": MODEL, "w.bin": W64},
                 protected=["m0.onnx", "w.bin"])),
        "fix_o_too_long": (
            "fix -o NAME with a 300-character name: OSError traceback from Path.is_dir in _check_output_folder",
            {"exit": 2, "words": "File name too long"},
            Case(0, "fix", ["fix", "m0.onnx", "-o", long + ".onnx", "--timeout", "30"], files={"m0.onnx": MODEL, "w.bin": W64},
                 protected=["m0.onnx", "w.bin"], outputs=[long + ".onnx"])),
        "baseline_key_with_newline": (
            "a baseline whose file key holds a newline gave a two-line error",
            {"exit": 2, "words": "files.'new\\nline.onnx'"},
            Case(0, "baseline", ["check", "--isolated", "--baseline", "b.json", "m0.onnx"],
                 files={"m0.onnx": MODEL, "w.bin": W64, "b.json": json.dumps({"version": 1, "files": {"new\nline.onnx": 3}}).encode()},
                 protected=["m0.onnx", "w.bin"])),
        "model_with_newline_named_as_baseline": (
            "--baseline naming a file whose name holds a newline: the error line was cut in two",
            {"exit": 2, "words": "new\\nline.onnx"},
            Case(0, "baseline", ["check", "--isolated", "--baseline", "new\nline.onnx", "new\nline.onnx"],
                 files={"new\nline.onnx": b"\x98\x01garbage"}, protected=["new\nline.onnx"])),
        "config_plugins_key_with_newline": (
            "a [plugins] key holding a newline gave a two-line error; \"SL103\\n\" passed the code patterns ($, not \\Z)",
            {"exit": 2, "words": "plugins.'a\\nb'"},
            Case(0, "config", ["check", "m0.onnx"], files={"m0.onnx": MODEL, "w.bin": W64,
                                                         "shapelint.toml": b'plugins = {"a\\nb" = 1}\n'},
                 protected=["m0.onnx", "w.bin"])),
        "report_path_not_utf8": (
            "check -o out.txt on a model whose name is not UTF-8: UnicodeEncodeError traceback in atomic_write",
            {"exit": 2, "words": ""},
            Case(0, "output", ["check", "--isolated", "-o", "out.txt", "bad\udcff.onnx"], files={"bad\udcff.onnx": b"\x08\x07garbage"},
                 protected=["bad\udcff.onnx"], outputs=["out.txt"], subprocess=True)),
        "sarif_path_not_utf8": (
            "check --format sarif on a model whose name is not UTF-8: UnicodeEncodeError traceback in urllib's quote",
            {"exit": 2, "words": "bad%FF.onnx"},
            Case(0, "flags", ["check", "--isolated", "--format", "sarif", "bad\udcff.onnx"], files={"bad\udcff.onnx": b"\x08\x07garbage"},
                 protected=["bad\udcff.onnx"], subprocess=True)),
        "verify_huge_declared_input": (
            "verify of float[2**40, 6, 5] x: the parent allocated the input (MemoryError / 'array is too big' internal error)",
            {"exit": 0, "words": "not verified"},
            Case(0, "verify", ["verify", "--timeout", "30", "m0.onnx"], files={"m0.onnx": _input_model([2**40, 6, 5])},
                 protected=["m0.onnx"])),
        "verify_negative_declared_input": (
            "verify of float[-7, 4] x: numpy's 'negative dimensions' ValueError as an internal error",
            {"exit": None, "words": ""},
            Case(0, "verify", ["verify", "--timeout", "30", "m0.onnx"], files={"m0.onnx": _input_model([-7, 4])},
                 protected=["m0.onnx"])),
    }


def main() -> None:
    for old in HERE.glob("*.json"):
        old.unlink()
    for name, (what, expect, case) in entries().items():
        case.seed = 0
        doc = {"what": what, "expect": expect, **case.to_json()}
        (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(entries())} cases to {HERE}")


if __name__ == "__main__":
    main()
