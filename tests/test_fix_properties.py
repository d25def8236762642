"""``fix`` proves what each edit claims, on onnxruntime's values, and says when the weights need retraining.

The built-in edits on the fixtures are covered in ``tests/test_fix.py``
(every claim holds at every binding).  Here: the three SL401 edits, which no
fixture triggers (a one-direction axis squeezed, directions merged into
hidden, a Transpose before a reshape that mixed directions into the batch),
on small hand-built LSTM models; and edits that are *wrong* (a plugin rule
whose edit claims a fix it does not make): the property check must catch
each one, whatever the edit's own description says.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from shapelint.fix import fix_model, render_fix_text
from shapelint.rule import Fix, Rule, Severity


def lstm_model(path, direction: str, reshape=None, w_in: int = 8):
    """x (seq, batch, 5) -> LSTM(hidden 8) -> Y (seq, D, batch, 8) [-> Reshape(reshape)] -> MatMul(W (w_in, 3))."""
    rng = np.random.default_rng(0)
    d = 2 if direction == "bidirectional" else 1
    inits = [numpy_helper.from_array((rng.standard_normal((d, 32, 5)) * 0.3).astype(np.float32), "W"),
             numpy_helper.from_array((rng.standard_normal((d, 32, 8)) * 0.3).astype(np.float32), "R"),
             numpy_helper.from_array((rng.standard_normal((w_in, 3)) * 0.3).astype(np.float32), "head.weight")]
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["Y"], name="/lstm/LSTM", hidden_size=8, direction=direction)]
    feed = "Y"
    if reshape is not None:
        inits.append(numpy_helper.from_array(np.array(reshape, np.int64), "shape"))
        nodes.append(helper.make_node("Reshape", ["Y", "shape"], ["merged"], name="/Reshape"))
        feed = "merged"
    nodes.append(helper.make_node("MatMul", [feed, "head.weight"], ["y"], name="/head/MatMul"))
    rank = 3 if reshape is not None else 4
    g = helper.make_graph(nodes, "lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq", "batch", 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * rank)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _fixed(tmp_path, src, rules):
    result = fix_model(str(src), str(tmp_path / "fixed.onnx"), rules=rules)
    v = result.verification
    assert v is not None and [a.rule for a in result.applied if a.ok] == ["SL401"], render_fix_text(result)
    (prop,) = v["properties"]
    return result, prop


def test_squeezing_a_one_direction_axis_keeps_the_values_and_needs_no_retraining(tmp_path, rules):
    src = lstm_model(tmp_path / "one.onnx", "forward")
    result, prop = _fixed(tmp_path, src, rules)
    assert prop["status"] == "holds" and all(r["ok"] for r in prop["bindings"]), prop
    assert "length-1 axis [1] removed" in prop["bindings"][0]["detail"]
    assert prop["retrain"]["needed"] is False and "reads the same values" in prop["retrain"]["why"]
    assert result.exit_code == 0


def test_merging_directions_into_hidden_keeps_every_frame_and_the_original_could_not_have_run(tmp_path, rules):
    src = lstm_model(tmp_path / "bi.onnx", "bidirectional", w_in=16)  # (seq, 2, batch, 8) @ (16, 3) fails
    result, prop = _fixed(tmp_path, src, rules)
    assert prop["status"] == "holds", prop
    # the probe went through the inserted Transpose and Reshape alone: each value stayed in its (step, sample)
    assert all("every value lands once, in the frame it came from" in r["detail"] for r in prop["bindings"]), prop
    assert prop["retrain"]["needed"] is False and "cannot have been trained" in prop["retrain"]["why"]
    assert all(r["original"] != "runs" and r["fixed"] == "runs" for r in result.verification["bindings"])


def test_a_transpose_before_a_reshape_that_mixed_directions_into_the_batch_means_retraining(tmp_path, rules):
    src = lstm_model(tmp_path / "mix.onnx", "bidirectional", reshape=[0, -1, 16], w_in=16)  # runs, scrambled
    result, prop = _fixed(tmp_path, src, rules)
    assert prop["status"] == "holds", prop
    assert "output axes [0, 1] = input axes [0, 2]" in prop["bindings"][0]["detail"]
    # the head's weights were trained on the scrambled rows: they now read other values (onnxruntime's, compared)
    assert prop["retrain"]["needed"] is True and "retraining needed: MatMul '/head/MatMul'" in prop["retrain"]["why"]
    assert "weights: retraining needed" in render_fix_text(result)


# ---------------------------------------------------------------- wrong edits
def _set(model, op, attr=None, value=None, input_index=None, array=None):
    node = next(n for n in model.graph.node if n.op_type == op)
    if attr is not None:
        for a in list(node.attribute):
            if a.name == attr:
                node.attribute.remove(a)
        node.attribute.append(helper.make_attribute(attr, value))
    if input_index is not None:
        name = f"{node.name}/wrong"
        model.graph.initializer.append(numpy_helper.from_array(np.asarray(array, np.int64), name))
        node.input[input_index] = name


class WrongEdit(Rule):
    """A plugin whose edit claims a repair it does not make (the mode says which)."""

    code, slug, severity = "TST403", "wrong-edit", Severity.WARNING
    op_types = ("Softmax", "Gather", "Reshape")
    mode = "softmax-over-time"

    def check(self, node, ctx):
        mode = self.mode
        if mode == "softmax-over-time" and node.op_type == "Softmax":
            apply = lambda m: _set(m, "Softmax", "axis", 1)  # over the steps again
        elif mode == "first-step" and node.op_type == "Gather":
            apply = lambda m: _set(m, "Gather", input_index=1, array=1)  # step 1, not the last
        elif mode == "no-transpose" and node.op_type == "Reshape":
            def apply(m):  # a Transpose that moves nothing: the frames stay scrambled
                r = next(n for n in m.graph.node if n.op_type == "Reshape")
                t = helper.make_node("Transpose", [r.input[0]], ["Y__t"], name="/wrong/Transpose", perm=[0, 1, 2, 3])
                r.input[0] = "Y__t"
                nodes = list(m.graph.node)
                nodes.insert(nodes.index(r), t)
                del m.graph.node[:]
                m.graph.node.extend(nodes)
        else:
            return
        yield ctx.finding(node, f"wrong edit ({mode})", edit=Fix(f"claims to repair {node.op_type}", apply))


def _tagger(path):
    """x (batch, 6, 5) -> MatMul(5, 4) -> Softmax(axis=-1) per step; and a Gather of step 0 for a second output."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "w")
    idx = numpy_helper.from_array(np.array(-1, np.int64), "last")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["logits"], name="/head/MatMul"),
             helper.make_node("Softmax", ["logits"], ["probs"], name="/Softmax", axis=-1),
             helper.make_node("Gather", ["logits", "last"], ["final"], name="/Gather", axis=1)]
    g = helper.make_graph(nodes, "tagger", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6, 5])],
                          [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", 6, 4]),
                           helper.make_tensor_value_info("final", TensorProto.FLOAT, ["batch", 4])], [w, idx])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


@pytest.mark.parametrize("mode,words", [
    ("softmax-over-time", "sums over the 4 classes within"),
    ("first-step", "is not step 5 (the last)"),
])
def test_an_edit_that_does_not_do_what_it_claims_is_caught_by_its_property_and_exits_2(tmp_path, rules, monkeypatch,
                                                                                      mode, words):
    monkeypatch.setattr(WrongEdit, "mode", mode)
    src = _tagger(tmp_path / "tagger.onnx")
    result = fix_model(str(src), str(tmp_path / "fixed.onnx"), rules=[*rules, WrongEdit])
    (prop,) = result.verification["properties"]
    assert prop["status"] == "broken", prop
    assert any(r["ok"] is False and words in r["detail"] for r in prop["bindings"]), prop
    assert result.exit_code == 2 and any("breaks its own claim" in b for b in result.broken), render_fix_text(result)


def test_a_transpose_that_moves_nothing_leaves_the_frames_scrambled_and_the_probe_says_so(tmp_path, rules, monkeypatch):
    monkeypatch.setattr(WrongEdit, "mode", "no-transpose")
    src = lstm_model(tmp_path / "mix.onnx", "bidirectional", reshape=[0, -1, 16], w_in=16)
    result = fix_model(str(src), str(tmp_path / "fixed.onnx"), rules=[*rules, WrongEdit], select=["TST"])
    (prop,) = result.verification["properties"]
    assert prop["status"] == "broken", prop
    bad = [r for r in prop["bindings"] if r["ok"] is False]
    assert bad and all("a frame holds values of several samples" in r["detail"] for r in bad), prop
    assert [r["dims"] for r in prop["bindings"] if r["ok"]] == [{"seq": 1, "batch": 1}]  # one sample: nothing to mix
    assert result.exit_code == 2
