"""Hostile models: nothing outside the model's folder is opened, nothing huge allocated, nothing crashes.

One test per case.  Files that could make the loader block (a FIFO) or run
away (a memory bomb) are checked in a forked child with a time limit
(:func:`tests.isolated.run_isolated`); memory is measured with
``tracemalloc`` in-process.
"""

from __future__ import annotations

import builtins
import io
import os
import tracemalloc
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from shapelint.check import check
from shapelint.graph import ModelGraph
from shapelint.infer import infer
from shapelint.load import MAX_PROTO_BYTES, LoadError, load_model

from .fuzzing import nested_if_model
from .isolated import run_isolated, summarize_check

#: peak Python allocation allowed while checking a model that declares huge tensors
PEAK_BYTES = 50 * 2**20


def _model(nodes, inputs, outputs, inits=(), opset=17, functions=(), extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    return helper.make_model(g, opset_imports=imports, functions=list(functions))


def _vi(name, dims, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, dims)


def _out(name="y"):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def _save(model, folder: Path, name="m.onnx") -> Path:
    path = folder / name
    path.write_bytes(model.SerializeToString())
    return path


def _external_weight_model(location: str) -> onnx.ModelProto:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    entry = w.external_data.add()
    entry.key, entry.value = "location", location
    return _model([helper.make_node("Add", ["x", "w"], ["y"], name="/fc/Add")], [_vi("x", ["batch", 4])], [_out()], [w])


@pytest.fixture
def opened(monkeypatch):
    """Every path passed to ``open``/``io.open``/``os.open`` while the test runs."""
    seen: list[str] = []
    real_open, real_io_open, real_os_open = builtins.open, io.open, os.open

    def spy(real):
        def wrapper(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                seen.append(os.path.realpath(os.fsdecode(file)))
            return real(file, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(io, "open", spy(real_io_open))
    monkeypatch.setattr(os, "open", spy(real_os_open))
    return seen


def _assert_refused_and_not_opened(path: Path, secret: Path, opened: list[str], words: str):
    opened.clear()  # what the test itself wrote does not count
    report = check(path)
    assert report.error is not None and words in report.error and "\n" not in report.error
    assert os.path.realpath(secret) not in opened, f"{secret} was opened"


# ------------------------------------------------------------ external data


def test_external_data_with_dotdot_is_refused_and_never_opened(tmp_path, opened):
    (tmp_path / "models").mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 16)
    path = _save(_external_weight_model("../secret.bin"), tmp_path / "models")
    _assert_refused_and_not_opened(path, secret, opened, "outside the model's folder")


def test_external_data_with_an_absolute_path_is_refused_and_never_opened(tmp_path, opened):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0" * 16)
    (tmp_path / "models").mkdir()
    path = _save(_external_weight_model(str(secret)), tmp_path / "models")
    _assert_refused_and_not_opened(path, secret, opened, "absolute path")


def test_external_data_through_a_symlink_out_of_the_folder_is_refused_and_never_opened(tmp_path, opened):
    (tmp_path / "models").mkdir()
    secret = tmp_path / "secret.fifo"
    os.mkfifo(secret)  # opening it would block: the time limit proves it is never opened
    (tmp_path / "models" / "w.bin").symlink_to(secret)
    path = _save(_external_weight_model("w.bin"), tmp_path / "models")
    outcome = run_isolated(summarize_check, str(path), seconds=10)
    assert outcome.status == "ok", outcome.detail
    assert "outside the model's folder" in outcome.value["error"]
    _assert_refused_and_not_opened(path, secret, opened, "outside")


def test_external_data_that_is_a_fifo_inside_the_folder_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "w.bin")
    path = _save(_external_weight_model("w.bin"), tmp_path)
    outcome = run_isolated(summarize_check, str(path), seconds=10)
    assert outcome.status == "ok", outcome.detail
    assert "not a regular file" in outcome.value["error"]


def test_external_data_with_a_nul_byte_or_an_overlong_name_is_one_line_error(tmp_path):
    for location in ("w.bin\x00.txt", "a" * 5000):
        report = check(_save(_external_weight_model(location), tmp_path))
        assert report.error is not None and "\n" not in report.error, location


def test_external_weights_inside_the_folder_are_never_opened_by_check(tmp_path, opened):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"\0" * 16)
    path = _save(_external_weight_model("w.bin"), tmp_path)
    opened.clear()
    report = check(path)
    assert report.error is None, report.error
    in_folder = [p for p in opened if p.startswith(os.path.realpath(tmp_path))]
    assert in_folder == [os.path.realpath(path)], in_folder


# ------------------------------------------------------------ huge and odd dims


def _peak_during(fn):
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("dims", [[2**63 - 1, 2**63 - 1], [2**62, 2**62, 2**62], [-(2**63), 4], [2**31, 2**31]])
def test_declared_dims_near_int64_limits_neither_allocate_nor_overflow(dims):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="/Relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="/Flatten", axis=1),
        helper.make_node("Shape", ["x"], ["s"], name="/Shape"),
        helper.make_node("ConstantOfShape", ["s"], ["c"], name="/ConstantOfShape"),
        helper.make_node("Add", ["x", "c"], ["y"], name="/Add"),
    ]
    model = _model(nodes, [_vi("x", dims)], [_out()])
    report, peak = _peak_during(lambda: check(model))
    assert report.error is None
    assert peak < PEAK_BYTES, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize("dims", [[0, 4], [-1, 4], [-7, -7], [0, 0, 0]])
def test_negative_or_zero_declared_dims_do_not_crash(dims):
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="/MatMul"),
        helper.make_node("Reshape", ["m", "shape"], ["y"], name="/Reshape"),
    ]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [4, 2], [0.0] * 8),
             helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 2])]
    report = check(_model(nodes, [_vi("x", dims)], [_out()], inits))
    assert report.error is None
    assert not [d for d in report.diagnostics if d.message.startswith("internal error")]


def _huge(kind: str) -> onnx.ModelProto:
    big = helper.make_tensor("big", TensorProto.INT64, [2], [2**40, 2**40])
    const_big = helper.make_node("Constant", [], ["shape"], value=big, name="/Constant")
    scalar = lambda n, v: helper.make_node("Constant", [], [n], name=f"/{n}",  # noqa: E731
                                           value=helper.make_tensor(n, TensorProto.INT64, [], [v]))
    x = _vi("x", ["batch", 4])
    if kind == "ConstantOfShape":
        nodes = [const_big, helper.make_node("ConstantOfShape", ["shape"], ["y"], name="/ConstantOfShape")]
    elif kind == "Expand":
        nodes = [const_big, helper.make_node("Expand", ["x", "shape"], ["y"], name="/Expand")]
    elif kind == "Range":
        nodes = [scalar("lo", 0), scalar("hi", 2**62), scalar("step", 1),
                 helper.make_node("Range", ["lo", "hi", "step"], ["y"], name="/Range")]
    elif kind == "Tile":
        nodes = [const_big, helper.make_node("Tile", ["x", "shape"], ["y"], name="/Tile")]
    elif kind == "Constant-without-data":
        lie = TensorProto(name="c", data_type=TensorProto.FLOAT, dims=[2**40, 2**40])
        nodes = [helper.make_node("Constant", [], ["y"], value=lie, name="/Constant")]
    elif kind == "initializer-without-data":
        lie = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**40, 2**40])
        return _model([helper.make_node("Add", ["x", "w"], ["y"], name="/Add")], [x], [_out()], [lie])
    elif kind == "Resize":
        scales = helper.make_tensor("sc", TensorProto.FLOAT, [2], [1e30, 1e30])
        nodes = [helper.make_node("Constant", [], ["sc"], value=scales, name="/sc"),
                 helper.make_node("Resize", ["x", "", "sc"], ["y"], name="/Resize")]
    elif kind == "OneHot":
        vals = helper.make_tensor("v", TensorProto.FLOAT, [2], [0, 1])
        nodes = [scalar("depth", 2**40), helper.make_node("Constant", [], ["vals"], value=vals, name="/vals"),
                 helper.make_node("Constant", [], ["idx"], value=helper.make_tensor("i", TensorProto.INT64, [3], [0, 1, 2]), name="/idx"),
                 helper.make_node("OneHot", ["idx", "depth", "vals"], ["y"], name="/OneHot")]
    else:  # Pad
        pads = helper.make_tensor("p", TensorProto.INT64, [4], [0, 2**40, 0, 2**40])
        nodes = [helper.make_node("Constant", [], ["pads"], value=pads, name="/pads"),
                 helper.make_node("Pad", ["x", "pads"], ["y"], name="/Pad")]
    return _model(nodes, [x], [_out()])


@pytest.mark.parametrize("kind", ["ConstantOfShape", "Expand", "Range", "Tile", "Constant-without-data",
                                  "initializer-without-data", "Resize", "OneHot", "Pad"])
def test_absurd_element_counts_are_never_materialised(kind):
    model = _huge(kind)
    report, peak = _peak_during(lambda: check(model))
    assert report.error is None
    assert not [d for d in report.diagnostics if d.message.startswith("internal error")]
    assert peak < PEAK_BYTES, f"peak {peak / 2**20:.1f} MiB"


def test_absurd_element_counts_keep_their_symbolic_shape():
    mg = ModelGraph.from_model(_huge("ConstantOfShape"))
    assert infer(mg).shape("y") == (2**40, 2**40)


# ------------------------------------------------------------ malformed graphs


def _codes(report):
    return [d.rule for d in report.diagnostics]


def test_a_cycle_is_reported_not_crashed_on():
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="/A"), helper.make_node("Relu", ["a"], ["b"], name="/B"),
             helper.make_node("Neg", ["b"], ["y"], name="/C")]
    report = check(_model(nodes, [_vi("x", ["batch", 4])], [_out()]))
    assert report.error is None
    assert any(d.rule == "SL002" and "cycle" in d.message for d in report.diagnostics)


def test_two_producers_of_one_tensor_are_reported():
    nodes = [helper.make_node("Relu", ["x"], ["t"], name="/A"), helper.make_node("Neg", ["x"], ["t"], name="/B"),
             helper.make_node("Abs", ["t"], ["y"], name="/C")]
    report = check(_model(nodes, [_vi("x", ["batch", 4])], [_out()]))
    assert any(d.rule == "SL002" and "duplicate-producer" in d.message for d in report.diagnostics)


def test_duplicate_output_names_on_one_node_and_in_the_graph_outputs_do_not_crash():
    nodes = [helper.make_node("Split", ["x"], ["t", "t"], name="/Split", axis=1, num_outputs=2),
             helper.make_node("Relu", ["t"], ["y"], name="/Relu")]
    model = _model(nodes, [_vi("x", ["batch", 4])], [_out(), _out()], opset=18)
    report = check(model)
    assert report.error is None
    assert "SL002" in _codes(report)


def test_a_missing_input_is_reported():
    nodes = [helper.make_node("Add", ["x", "nowhere"], ["y"], name="/Add")]
    report = check(_model(nodes, [_vi("x", ["batch", 4])], [_out()]))
    assert any(d.rule == "SL002" and "missing-input" in d.message for d in report.diagnostics)


@pytest.mark.parametrize("depth", [30, 33, 200, 1000])
def test_subgraphs_nested_deeply_give_a_one_line_error_or_a_report_never_a_recursion_error(tmp_path, depth):
    path = tmp_path / f"nested{depth}.onnx"
    path.write_bytes(nested_if_model(depth))
    outcome = run_isolated(summarize_check, str(path), seconds=20)
    assert outcome.status == "ok", outcome.detail
    err = outcome.value["error"]
    if depth <= 32:
        assert err is None, err  # protobuf parses up to ~32 levels of If bodies: checked
    else:
        assert err is not None and "nest" in err and "\n" not in err


def test_an_unknown_domain_gives_an_info_finding_and_unknown_outputs():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="/Relu"),
             helper.make_node("FancyOp", ["r"], ["c"], name="/custom/FancyOp", domain="com.acme"),
             helper.make_node("Relu", ["c"], ["y"], name="/Relu_1")]
    model = _model(nodes, [_vi("x", ["batch", 4])], [_out()], extra_opsets=[("com.acme", 1)])
    report = check(model)
    found = [d for d in report.diagnostics if d.rule == "SL001"]
    assert found and found[0].severity == "info" and found[0].node == "/custom/FancyOp"
    table = infer(ModelGraph.from_model(model))
    assert table.shape("c") is None and table.shape("y") is None


def test_an_op_missing_from_the_default_domain_gives_an_info_finding():
    nodes = [helper.make_node("NotAnOnnxOp", ["x"], ["y"], name="/NotAnOnnxOp")]
    report = check(_model(nodes, [_vi("x", ["batch", 4])], [_out()]))
    assert [d.severity for d in report.diagnostics if d.rule == "SL001"] == ["info"]


# ------------------------------------------------------------ size and kind of file


def test_a_model_over_2_gib_in_one_protobuf_is_refused_by_size_before_reading(tmp_path, opened):
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as fh:
        fh.write(_model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [4])], [_out()]).SerializeToString())
    os.truncate(path, MAX_PROTO_BYTES + 4096)  # sparse: no disk, no time
    opened.clear()
    with pytest.raises(LoadError, match="2 GiB") as info:
        load_model(path)
    assert "external data" in str(info.value)
    assert os.path.realpath(path) not in opened
    assert check(path).error == str(info.value)


def test_a_fifo_or_a_device_as_the_model_path_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        outcome = run_isolated(summarize_check, path, seconds=10)
        assert outcome.status == "ok", outcome.detail
        assert "not a regular file" in outcome.value["error"]


# ------------------------------------------------------------ text in the model is data


def _code_dim_model(text: str) -> onnx.ModelProto:
    return _model([helper.make_node("Relu", ["x"], ["y"], name="/Relu")], [_vi("x", [text, 4])], [_out()])


_CANARY = "(lambda: __import__('os').environ.__setitem__('SHAPELINT_CANARY', 'ran'))()"


def _check_and_read_canary(path_or_model):
    os.environ.pop("SHAPELINT_CANARY", None)
    report = check(path_or_model)
    return report.error, os.environ.get("SHAPELINT_CANARY")


def test_python_code_in_a_dim_param_is_never_run(tmp_path):
    path = _save(_code_dim_model(_CANARY), tmp_path)
    outcome = run_isolated(_check_and_read_canary, str(path), seconds=10)
    assert outcome.status == "ok", outcome.detail
    error, canary = outcome.value
    assert canary is None, "code from the model ran"
    assert error is None  # the text is one opaque dim, checked like any other


def test_python_code_in_a_dim_param_of_an_in_memory_model_is_never_run():
    outcome = run_isolated(_check_and_read_canary, _code_dim_model(_CANARY), seconds=10)
    assert outcome.status == "ok", outcome.detail
    assert outcome.value[1] is None, "code from the model ran"


@pytest.mark.parametrize("text", ["9**9**9", "9^9^9", "999999999!", "1<<99999999999", "(" * 500 + "N" + ")" * 500,
                                  "-" * 5000 + "N", "9" * 5000, "N/0", "N//0", "Mod(N, 0)", "N - N", "floor(N/3) - 7"])
def test_a_dim_param_that_would_compute_forever_or_divide_by_zero_is_checked_quickly(tmp_path, text):
    path = _save(_code_dim_model(text), tmp_path)
    outcome = run_isolated(summarize_check, str(path), seconds=10)
    assert outcome.status == "ok", outcome.detail
    assert outcome.value["error"] is None
    assert not outcome.value["swallowed"]


@pytest.mark.parametrize("text", ["batch", "batch_size", "s0", "unk__12", "2*seq + 1", "floor((height - 3)/2) + 1",
                                  "Max(a, b)", "past_sequence_length + 1", "batch size", "N?", "größe"])
def test_ordinary_dim_params_are_accepted(tmp_path, text):
    report = check(_save(_code_dim_model(text), tmp_path))
    assert report.error is None, report.error


def test_an_in_memory_model_gets_the_loaders_checks():
    data = (Path(__file__).resolve().parent / "corpus" / "invalid_utf8_dim_param.onnx").read_bytes()
    model = onnx.ModelProto()
    model.ParseFromString(data)
    outcome = run_isolated(summarize_check, model, seconds=10)
    assert outcome.status == "ok", outcome.detail
