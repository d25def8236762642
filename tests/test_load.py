"""The loader: one clear error for every unusable file, weights never read."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from shapelint.load import LoadError, load_model

from .conftest import FIXTURES


def small_model():
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.0] * 16)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/fc/MatMul")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [w],
    )
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty file"),
        (b"this is not a model at all", "not"),
        (b"\x08\x07\x12\x04abcd\x3a\xff\xff\xff", "not"),
    ],
)
def test_unusable_bytes_give_one_line_errors(tmp_path, content, words):
    p = tmp_path / "m.onnx"
    p.write_bytes(content)
    with pytest.raises(LoadError) as info:
        load_model(p)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_truncated_model_is_reported(tmp_path):
    p = tmp_path / "m.onnx"
    data = small_model().SerializeToString()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError):
        load_model(p)


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        load_model(tmp_path / "nope.onnx")


def test_a_future_ir_version_is_refused(tmp_path):
    m = small_model()
    m.ir_version = onnx.IR_VERSION + 5
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(LoadError, match="unsupported IR version"):
        load_model(p)


def _external(tmp_path, location):
    m = small_model()
    t = m.graph.initializer[0]
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    e = t.external_data.add()
    e.key, e.value = "location", location
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    return p


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/passwd", "a/../../x.bin"])
def test_external_data_outside_the_models_folder_is_refused(tmp_path, location):
    sub = tmp_path / "models"
    sub.mkdir()
    with pytest.raises(LoadError, match="refused"):
        load_model(_external(sub, location))


def test_a_symlink_escaping_the_folder_is_refused(tmp_path):
    sub = tmp_path / "models"
    sub.mkdir()
    (tmp_path / "outside.bin").write_bytes(b"\0" * 64)
    (sub / "w.bin").symlink_to(tmp_path / "outside.bin")
    with pytest.raises(LoadError, match="outside"):
        load_model(_external(sub, "w.bin"))


def test_missing_external_data_is_reported(tmp_path):
    with pytest.raises(LoadError, match="missing"):
        load_model(_external(tmp_path, "weights.bin"))


def test_external_weights_are_not_read(tmp_path):
    p = _external(tmp_path, "weights.bin")
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64)
    model = load_model(p)
    t = model.graph.initializer[0]
    assert t.data_location == TensorProto.EXTERNAL and not t.raw_data


def test_every_fixture_loads():
    for path in FIXTURES.rglob("*.onnx"):
        assert load_model(path).graph.node
