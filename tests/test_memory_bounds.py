"""The parent process of ``verify`` and ``fix`` stays small, whatever the weights file and the run-time tensors.

The bound is the README's (Safety): with weights in external data, the
shapelint process itself (the onnxruntime child aside) stays under
:data:`PARENT_BOUND_MIB`, however large the data file and however large the
tensors the model computes at run time.  The model here has a 4x8 @ 32x5
MatMul whose 640-byte weight sits at the start of a 3 GiB sparse file
(``truncate``: no disk, no time) and a 300 MiB ConstantOfShape branch that
onnxruntime really computes (the child's peak shows it).  Each command runs
in a fresh process that reports its own peak (``getrusage(RUSAGE_SELF)``,
which leaves children out) and its children's (after verify's worker is
stopped and reaped).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx.parser
import pytest
from onnx import TensorProto

ROOT = Path(__file__).resolve().parent.parent

#: README, Safety: "verify's and fix's own process stays under 300 MB"
PARENT_BOUND_MIB = 300
DATA_FILE_BYTES = 3 * 2**30
#: 8192 x 9600 float32 = 300 MiB, made by ConstantOfShape inside onnxruntime
BIG_TENSOR_MIB = 300

MODEL = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 4, 8] x) => (float[batch, 5] y, float z) <int64[2] s = {4, -1}, int64[2] big_shape = {8192, 9600}> {
  r = Reshape(x, s)
  y = MatMul(r, w)
  big = ConstantOfShape(big_shape)
  z = ReduceSum <keepdims = 0> (big)
}"""

#: seven 20 MiB tensors: each under the child's 32 MiB cap, so they all come back for fix's comparison
#: (before verify.MAX_KEPT_VALUES_BYTES, fix's parent held 6 runs of them at once: 916 MiB)
MANY = """
<ir_version: 8, opset_import: ["" : 17]>
g (float[batch, 4, 8] x) => (float[batch, 5] y, float z) <int64[2] s = {4, -1}, int64[2] big_shape = {1280, 4096}> {
  r = Reshape(x, s)
  y = MatMul(r, w)
  t0 = ConstantOfShape(big_shape)
  t1 = Relu(t0)
  t2 = Relu(t1)
  t3 = Relu(t2)
  t4 = Relu(t3)
  t5 = Relu(t4)
  t6 = Relu(t5)
  z = ReduceSum <keepdims = 0> (t6)
}"""

#: the CLI in this process, plus tests/test_fix.py's TST501 (a machine-applicable edit on the baked Reshape)
WRAPPER = """
import json, resource, sys
sys.path.insert(0, {root!r})
from tests.test_fix import LiteralBatch
from shapelint import plugins
real = plugins.load_rules
def with_rule(extra=None):
    rs = real(extra)
    rs.rules["TST501"] = LiteralBatch
    return rs
plugins.load_rules = with_rule
from shapelint.cli import main
code = 0
try:
    main(sys.argv[1:], prog_name="shapelint")
except SystemExit as exc:
    code = exc.code
from shapelint.verify import shutdown_workers
shutdown_workers()  # reap the onnxruntime child, so that RUSAGE_CHILDREN holds its peak
def own_peak_mib():
    # VmHWM: this process's own peak since exec; ru_maxrss also keeps the peak of the process that forked it
    # (Linux carries it across execve), so a large pytest process would count as ours
    try:
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"exit": code, "self_mib": own_peak_mib(),
                  "children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}}), file=sys.stderr)
"""


def _write(folder: Path, text: str, name: str) -> Path:
    m = onnx.parser.parse_model(text)
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[32, 5], data_location=TensorProto.EXTERNAL)
    e = w.external_data.add()
    e.key, e.value = "location", "huge.bin"
    m.graph.initializer.append(w)
    m.graph.node[0].name, m.graph.node[1].name = "/flat/Reshape", "/fc/MatMul"
    path = folder / name
    path.write_bytes(m.SerializeToString())
    return path


@pytest.fixture(scope="module")
def big_model(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    if not sys.platform.startswith("linux"):
        pytest.skip("ru_maxrss in KiB and sparse files: Linux")
    folder = tmp_path_factory.mktemp("rss")
    with open(folder / "huge.bin", "wb") as fh:
        fh.truncate(DATA_FILE_BYTES)  # sparse: reads as zeros
    _write(folder, MANY, "many.onnx")
    return _write(folder, MODEL, "model.onnx")


def _peak(*args, cwd: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", WRAPPER.format(root=str(ROOT)), *map(str, args)], capture_output=True,
                         text=True, timeout=120, cwd=cwd)
    assert "Traceback" not in res.stderr, res.stderr
    return {**json.loads(res.stderr.strip().splitlines()[-1]), "stdout": res.stdout}


def test_verify_parent_peak_rss_stays_under_the_bound_with_a_3gib_data_file_and_a_300mib_tensor(big_model):
    got = _peak("verify", "--timeout", "60", big_model, cwd=big_model.parent)
    assert got["exit"] == 1, got["stdout"]  # the baked Reshape: SL501 confirmed at run time
    assert "weights external data loaded" in got["stdout"], got["stdout"]
    assert got["children_mib"] > BIG_TENSOR_MIB, got  # the 300 MiB tensor was really made, in the child
    assert got["self_mib"] < PARENT_BOUND_MIB, got


def test_fix_parent_peak_rss_stays_under_the_bound_with_a_3gib_data_file_and_a_300mib_tensor(big_model, tmp_path):
    out = tmp_path / "fixed.onnx"
    got = _peak("fix", big_model, "-o", out, "--timeout", "60", cwd=big_model.parent)
    assert got["exit"] == 0, got["stdout"]
    assert "copy confirmed" in got["stdout"], got["stdout"]
    assert (tmp_path / "fixed.onnx.data").stat().st_size < 4096  # the 640 bytes of w, not 3 GiB
    assert got["children_mib"] > BIG_TENSOR_MIB, got
    assert got["self_mib"] < PARENT_BOUND_MIB, got


def test_fix_parent_peak_rss_stays_under_the_bound_with_many_tensors_under_the_per_tensor_cap(big_model, tmp_path):
    out = tmp_path / "fixed.onnx"
    got = _peak("fix", big_model.parent / "many.onnx", "-o", out, "--timeout", "60", cwd=big_model.parent)
    assert got["exit"] == 0, got["stdout"]
    assert "copy confirmed" in got["stdout"], got["stdout"]
    assert got["children_mib"] > 140, got  # the seven 20 MiB tensors were made
    assert got["self_mib"] < PARENT_BOUND_MIB, got


#: README, Safety: "check's peak memory is at most 3x the model file's size plus 150 MB"
CHECK_FACTOR, CHECK_CONSTANT_MIB = 3, 150


def test_check_stays_within_its_bound_of_the_files_real_size(tmp_path):
    """near_2gib (shared/reliability): a valid model padded by an unknown field to just under the 2 GiB gate cost
    4.2 GB, about twice its size: the bytes and their parsed copy.  Every allocation is driven by the file's real
    content; here at 200 MiB (sparse: no disk) the bound is checked in a fresh process."""
    src = (ROOT / "fixtures" / "healthy" / "cnn_lstm_ts.onnx").read_bytes()

    def varint(n):
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | 0x80 if n else b)
            if not n:
                return bytes(out)

    pad = 200 * 2**20
    path = tmp_path / "padded.onnx"
    head = src + varint((100 << 3) | 2) + varint(pad)
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + pad)
    size_mib = path.stat().st_size / 2**20
    code = ("import resource, sys, json; from shapelint.check import check; r = check(sys.argv[1]); "
            "print(json.dumps([r.status, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024]))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    status, peak_mib = json.loads(out.stdout.strip().splitlines()[-1])
    assert status == "ok"  # the unknown field is ignored, the model checked
    assert peak_mib <= CHECK_FACTOR * size_mib + CHECK_CONSTANT_MIB, (peak_mib, size_mib)
