"""Write the regression corpus: minimal files that once broke shapelint.

Each entry is the smallest model that reproduces what the fuzzer (or a
security review) found, written here so its construction is readable.  The
manifest records, per file, what it exercised (``what``), what ``check``
must give (``expect``: ``"error"`` for a one-line refusal, a rule code for a
finding, absent for "no crash, no hang") and, while the fix is pending,
``xfail`` with the bug's location: the test then fails strictly once fixed,
so the mark is removed with the fix.

Run ``python tests/corpus/make_corpus.py`` after adding an entry; the test
is ``tests/test_fuzz.py::test_every_file_that_once_broke_shapelint_is_now_checked_cleanly``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).resolve().parent

__all__ = ["ENTRIES"]


def _model(nodes, inputs, outputs, inits=(), functions=(), opsets=(("", 17),)):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], functions=list(functions))


def _x(*dims):
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))


def _y():
    return helper.make_tensor_value_info("y", TensorProto.FLOAT, None)


def dim_param_python_code():
    # dims.parse_dim sympifies (evals) any dim_param that is not a plain name
    return _model([helper.make_node("Relu", ["x"], ["y"])], [_x("(lambda: __import__('os')._exit(77))()", 4)], [_y()])


def dim_param_power_tower():
    return _model([helper.make_node("Relu", ["x"], ["y"])], [_x("9**9**9", 4)], [_y()])


def dim_param_xor_power():
    # sympify(convert_xor=True) turns ^ into **
    return _model([helper.make_node("Relu", ["x"], ["y"])], [_x("9^9^9", 4)], [_y()])


def dim_param_code_in_value_info():
    m = _model([helper.make_node("Relu", ["x"], ["t"]), helper.make_node("Neg", ["t"], ["y"])], [_x("batch", 4)], [_y()])
    m.graph.value_info.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, ["(lambda: 0)()", 4]))
    return m


def _function_chain(depth: int, calls: int, recursive: bool):
    fns = []
    for k in range(depth):
        callee = "F0" if recursive else f"F{k + 1}"
        if k == depth - 1 and not recursive:
            body = [helper.make_node("Relu", ["a"], ["b"])]
        else:
            body = [helper.make_node(callee, ["a"], [f"r{j}"], domain="fz") for j in range(calls)]
            body.append(helper.make_node("Sum", [f"r{j}" for j in range(calls)], ["b"]))
        fns.append(helper.make_function("fz", f"F{k}", ["a"], ["b"], body,
                                        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("fz", 1)]))
    return _model([helper.make_node("F0", ["x"], ["y"], domain="fz", name="/call/F0")], [_x("batch", 4)], [_y()],
                  functions=fns, opsets=(("", 17), ("fz", 1)))


def recursive_function():
    # a model-local function that calls itself twice: 2**32 expansions before the depth guard
    return _function_chain(1, 2, recursive=True)


def function_fanout_chain():
    # 30 distinct functions, each calling the next twice: valid ONNX, 2**30 expansions
    return _function_chain(30, 2, recursive=False)


def nested_if_200():
    sys.path.insert(0, str(HERE.parent.parent))
    from tests.fuzzing import nested_if_model

    return nested_if_model(200)  # bytes: Python's protobuf cannot build it


def constant_of_shape_rank_2e40():
    # the shape input is declared int64[2**40]: the handler builds a rank-2**40 shape, one symbol per axis
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2**40])
    return _model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="/ConstantOfShape")], [s], [_y()])


def reshape_target_length_2e40():
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2**40])
    return _model([helper.make_node("Reshape", ["x", "s"], ["y"], name="/Reshape")], [_x("batch", 4), s], [_y()])


def scan_num_scan_inputs_2e28():
    # [0] * num_scan_inputs is built before scan_input_axes is read: 2 GiB for one attribute
    body = helper.make_graph([helper.make_node("Identity", ["bi"], ["bo"])], "body",
                             [helper.make_tensor_value_info("bi", TensorProto.FLOAT, None)],
                             [helper.make_tensor_value_info("bo", TensorProto.FLOAT, None)])
    node = helper.make_node("Scan", ["x"], ["y"], name="/Scan", body=body, num_scan_inputs=2**28, scan_input_axes=[0])
    return _model([node], [_x("seq", 4)], [_y()])


def _with_invalid_utf8(model, plain: bytes, broken: bytes) -> bytes:
    data = model.SerializeToString()
    assert data.count(plain) >= 1 and len(plain) == len(broken)
    return data.replace(plain, broken)


def invalid_utf8_names():
    # protobuf hands back bytes, not str, for a proto2 string that is not UTF-8
    m = _model([helper.make_node("Relu", ["x"], ["t"], name="NODE_A"), helper.make_node("Neg", ["t"], ["y"], name="NODE_B")],
               [_x("batch", 4)], [_y()])
    return _with_invalid_utf8(m, b"NODE_A", b"\xd2ODE_A")


def invalid_utf8_op_type():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="/Relu")], [_x("batch", 4)], [_y()])
    return _with_invalid_utf8(m, b"\x22\x04Relu", b"\x22\x04R\xaelu")  # NodeProto.op_type is field 4


def invalid_utf8_dim_param():
    m = _model([helper.make_node("Relu", ["x"], ["y"], name="/Relu")], [_x("BATCH", 4)], [_y()])
    return _with_invalid_utf8(m, b"BATCH", b"B\xc1TCH")


def opset_version_2e62():
    # onnx.defs.get_schema takes an int32 version: a TypeError inside the fallback
    return _model([helper.make_node("Gelu", ["x"], ["y"], name="/Gelu")], [_x("batch", 4)], [_y()], opsets=(("", 2**62),))


def external_location_with_nul():
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    e = w.external_data.add()
    e.key, e.value = "location", "w.bin\x00.txt"
    return _model([helper.make_node("Add", ["x", "w"], ["y"], name="/Add")], [_x("batch", 4)], [_y()], [w])


def lstm_rank2_input():
    # the SL201 mistake itself (a rank-2 input to an LSTM) crashed the axis-role analysis behind SL202/SL301/SL302
    import numpy as np
    from onnx import numpy_helper

    w = numpy_helper.from_array(np.zeros((1, 24, 8), np.float32), "W")
    r = numpy_helper.from_array(np.zeros((1, 24, 6), np.float32), "R")
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=6, name="/lstm/LSTM")
    return _model([node], [_x("seq", 8)], [_y()], [w, r])


def attribute_wrong_type():
    # every handler trusts attribute types: axis="x" raises inside Concat's handler (swallowed, no finding)
    node = helper.make_node("Concat", ["x", "x"], ["y"], name="/Concat", axis="x")
    return _model([node], [_x("batch", 4)], [_y()])


def nodes_without_outputs():
    # a node whose output list is empty (a botched edit): rules read node.output[0]
    inits = [helper.make_tensor("s", TensorProto.INT64, [2], [-1, 8]), helper.make_tensor("i", TensorProto.INT64, [], [0]),
             helper.make_tensor("i1", TensorProto.INT64, [1], [0]), helper.make_tensor("i2", TensorProto.INT64, [1], [1])]
    nodes = [helper.make_node("Reshape", ["x", "s"], [], name="/Reshape"),
             helper.make_node("Gather", ["x", "i"], [], name="/Gather"),
             helper.make_node("Slice", ["x", "i1", "i2"], [], name="/Slice"),
             helper.make_node("Relu", ["x"], ["y"], name="/Relu")]
    return _model(nodes, [_x("seq", "batch", 8)], [_y()], inits)


def gather_axis_out_of_range_after_lstm():
    # the engine reports the bad axis (SL101); the axis-role analysis indexed shape[axis] with it
    import numpy as np
    from onnx import numpy_helper

    inits = [numpy_helper.from_array(np.zeros((1, 24, 8), np.float32), "W"),
             numpy_helper.from_array(np.zeros((1, 24, 6), np.float32), "R"),
             numpy_helper.from_array(np.array(-1, np.int64), "last")]
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], hidden_size=6, name="/lstm/LSTM"),
             helper.make_node("Gather", ["Y", "last"], ["y"], axis=7, name="/Gather"),
             helper.make_node("Gather", ["Y", "last"], ["y2"], axis=[0, 1], name="/Gather_1")]  # an axis of the wrong type
    return _model(nodes, [_x("seq", "batch", 8)], [_y()], inits)


def reshape_symbolic_ratio_not_integer():
    # (N, 3) reshaped to (N, 2, -1): the -1 is 3N / 2N = 3/2; sympy.Poly(3/2) raises GeneratorsNeeded in floordiv
    inits = [helper.make_tensor("i0", TensorProto.INT64, [], [0]), helper.make_tensor("ax", TensorProto.INT64, [1], [0]),
             helper.make_tensor("two", TensorProto.INT64, [1], [2]), helper.make_tensor("m1", TensorProto.INT64, [1], [-1])]
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="/Shape"),
             helper.make_node("Gather", ["s", "i0"], ["n"], name="/Gather"),
             helper.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="/Unsqueeze"),
             helper.make_node("Concat", ["n1", "two", "m1"], ["t"], axis=0, name="/Concat"),
             helper.make_node("Reshape", ["x", "t"], ["y"], name="/Reshape")]
    return _model(nodes, [_x("N", 3)], [_y()], inits)


def slice_of_a_scalar():
    inits = [helper.make_tensor("s", TensorProto.INT64, [1], [0]), helper.make_tensor("e", TensorProto.INT64, [1], [1])]
    return _model([helper.make_node("Slice", ["x", "s", "e"], ["y"], name="/Slice")], [_x()], [_y()], inits)


def elementwise_without_inputs():
    return _model([helper.make_node("Add", [], ["y"], name="/Add")], [], [_y()])


def constant_of_shape_value_wrong_type():
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [2, 3])
    node = helper.make_node("ConstantOfShape", ["shape"], ["y"], name="/ConstantOfShape", value=[1, 2])
    return _model([node], [], [_y()], [shape])


def paddle_dim_value_minus_one():
    # paddle2onnx declares a dynamic axis as dim_value -1 (and some converters as 0): shapelint carried -1 as a
    # size through every tensor (`shapes` printed (-1, 2)) and verify refused to build the input
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.5] * 8)
    target = helper.make_tensor("t", TensorProto.INT64, [3], [0, 1, -1])
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="/MatMul"),
             helper.make_node("Reshape", ["m", "t"], ["r"], name="/Reshape"),
             helper.make_node("Relu", ["r"], ["y"], name="/Relu")]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 0, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [-1, 1, -1])
    return _model(nodes, [x], [y], [w, target])


ENTRIES = {
    "dim_param_python_code.onnx": (dim_param_python_code, {"what": "Python code in a dim_param ran during check (sympify eval); the payload exits the child with 77"}),
    "dim_param_power_tower.onnx": (dim_param_power_tower, {"what": "dim_param 9**9**9: sympy evaluated the power, never returned"}),
    "dim_param_xor_power.onnx": (dim_param_xor_power, {"what": "dim_param 9^9^9 (sympify turned ^ into **)"}),
    "dim_param_code_in_value_info.onnx": (dim_param_code_in_value_info, {"what": "code in a value_info dim_param (read by SL106)"}),
    "recursive_function.onnx": (recursive_function, {"what": "a model-local function that calls itself twice (2**32 expansions)", "expect": "SL001"}),
    "function_fanout_chain.onnx": (function_fanout_chain, {"what": "30 functions each calling the next twice: 2**30 expansions (hang)", "expect": "SL001"}),
    "nested_if_200.onnx": (nested_if_200, {"what": "If nested 200 deep (raw protobuf bytes)", "expect": "error"}),
    "constant_of_shape_rank_2e40.onnx": (constant_of_shape_rank_2e40, {
        "what": "ConstantOfShape of a shape tensor declared int64[2**40]: one symbol per axis, 2**40 axes (hang)"}),
    "reshape_target_length_2e40.onnx": (reshape_target_length_2e40, {
        "what": "Reshape to a target tensor declared int64[2**40]: the same unbounded rank (hang)"}),
    "scan_num_scan_inputs_2e28.onnx": (scan_num_scan_inputs_2e28, {
        "what": "Scan with num_scan_inputs = 2**28"}),
    "invalid_utf8_names.onnx": (invalid_utf8_names, {"what": "a node name that is not UTF-8 (protobuf returns bytes)", "expect": "SL002"}),
    "invalid_utf8_op_type.onnx": (invalid_utf8_op_type, {"what": "an op_type that is not UTF-8", "expect": "SL002"}),
    "invalid_utf8_dim_param.onnx": (invalid_utf8_dim_param, {"what": "a dim_param that is not UTF-8"}),
    "opset_version_2e62.onnx": (opset_version_2e62, {"what": "default-domain opset version 2**62", "expect": "error"}),
    "lstm_rank2_input.onnx": (lstm_rank2_input, {
        "what": "LSTM fed a rank-2 tensor: SL202/SL301/SL302 raised (IndexError in roles._seed_hints, then "
                "StopIteration from the empty cache it left)",
        "expect": "SL201"}),
    "attribute_wrong_type.onnx": (attribute_wrong_type, {
        "what": "Concat with axis='x': the handler raised TypeError (swallowed by the walk, nothing reported)"}),
    "nodes_without_outputs.onnx": (nodes_without_outputs, {
        "what": "Reshape, Gather and Slice nodes with no outputs: SL501, SL202, SL301, SL302 raised IndexError"}),
    "gather_axis_out_of_range_after_lstm.onnx": (gather_axis_out_of_range_after_lstm, {
        "what": "Gather(axis=7) and Gather(axis=[0, 1]) of an LSTM output: the axis-role analysis indexed shape[axis] "
                "unchecked (IndexError/TypeError in SL202, SL204, SL301-SL303)",
        "expect": "SL101"}),
    "reshape_symbolic_ratio_not_integer.onnx": (reshape_symbolic_ratio_not_integer, {
        "what": "Reshape (N, 3) -> (N, 2, -1): sympy.Poly of the constant ratio 3/2 raised, a model that never runs got no finding",
        "expect": "SL102"}),
    "slice_of_a_scalar.onnx": (slice_of_a_scalar, {
        "what": "Slice of a rank-0 tensor: IndexError in the Slice handler (swallowed, nothing reported)",
        "expect": "SL101"}),
    "elementwise_without_inputs.onnx": (elementwise_without_inputs, {
        "what": "Add with no inputs: IndexError in broadcast (swallowed, nothing reported)",
        "expect": "SL101"}),
    "constant_of_shape_value_wrong_type.onnx": (constant_of_shape_value_wrong_type, {
        "what": "ConstantOfShape whose value attribute is INTS: AttributeError in the handler (swallowed, nothing reported)",
        "expect": "SL101"}),
    "external_location_with_nul.onnx": (external_location_with_nul, {"what": "external data location with a NUL byte (ValueError escaped)", "expect": "error"}),
    "paddle_dim_value_minus_one.onnx": (paddle_dim_value_minus_one, {
        "what": "graph input axes declared dim_value -1 and 0 (paddle2onnx's dynamic axes): carried as sizes, "
                "verify could not build the input"}),
}


def main() -> None:
    manifest = {}
    for name, (build, entry) in ENTRIES.items():
        model = build()
        data = model if isinstance(model, bytes) else model.SerializeToString()
        (HERE / name).write_bytes(data)
        manifest[name] = entry
    old = json.loads((HERE / "manifest.json").read_text()) if (HERE / "manifest.json").exists() else {}
    for name, entry in old.items():  # entries written by hand (fuzzer finds) stay
        manifest.setdefault(name, entry)
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(ENTRIES)} files, manifest has {len(manifest)} entries")


if __name__ == "__main__":
    main()
