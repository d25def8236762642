"""onnxruntime's messages, translated: the node they are about and the text without C++ noise."""

from __future__ import annotations

import re
from dataclasses import dataclass

import onnx

__all__ = ["Failure", "clean_message", "node_names", "translate_ort_message"]


@dataclass
class Failure:
    """A failing node, as onnxruntime named it and as the user knows it."""

    node: onnx.NodeProto | None
    op_type: str | None
    message: str  # cleaned onnxruntime message
    phase: str


def node_names(model: onnx.ModelProto) -> list[str]:
    """The main graph's node names, with unnamed nodes given ``shapelint#<i>``."""
    return [n.name or f"shapelint#{i}" for i, n in enumerate(model.graph.node)]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")
_SRC = re.compile(r"(?:/\S*)?[\w.\-]+\.(?:h|cc|cpp|cu):\d+\s+(?:[A-Za-z_]\w*\s+(?=[A-Z]))?")
_SIG = re.compile(r"(?:[\w:<>~*&,\s]*?)onnxruntime::[\w:<>~]+\([^()]*\)(?:\s*const)?\s*(?:\[with [^\]]*\]\s*)?")
_RUNNING = re.compile(r"while running (\S+) node\. Name:'([^']*)' Status Message:\s*(.*)", re.DOTALL)
_SESSION_NODE = re.compile(r"Node \(([^)]*)\) Op \(([\w.]+)\)\s*(.*)", re.DOTALL)
_KERNEL = re.compile(r"onnxruntime::(?:\w+::)*?(\w+)(?:<[\w\s,]*>)?::\1\(")
_UNREGISTERED = re.compile(r"([\w.]*):([\w.]+)\(-?\d+\) is not a registered function/op")


def clean_message(text: str) -> str:
    """onnxruntime's message without its prefix, source locations, C++ signatures and log lines.

    >>> clean_message("[ONNXRuntimeError] : 1 : FAIL : matmul_helper.h:59 Compute MatMul dimension mismatch")
    'MatMul dimension mismatch'
    """
    text = _ANSI.sub("", text).strip()
    text = text.split("\n")[0] if "Non-zero status" not in text else text
    text = _PREFIX.sub("", text)
    text = text.replace("Exception during initialization: ", "")
    text = re.sub(r"Load model from \S+ failed:\s*", "", text)
    text = text.replace("Fatal error: ", "")
    text = _SRC.sub("", text)
    text = _SIG.sub("", text)
    text = re.sub(r"\s+", " ", text).strip()
    # onnxruntime appends its own log line after the message
    text = re.split(r"\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[E:onnxruntime", text)[0]
    return text[:400]


def translate_ort_message(message: str, model: onnx.ModelProto) -> Failure:
    """Find the node an onnxruntime error is about, and clean the message.

    >>> import onnx.parser
    >>> m = onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
    ... g (float[2, 3] x, float[4, 5] w) => (y) { y = MatMul <name="fc"> (x, w) }''')
    >>> m.graph.node[0].name = "/fc/MatMul"
    >>> f = translate_ort_message("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while "
    ...     "running MatMul node. Name:'/fc/MatMul' Status Message: matmul_helper.h:59 Compute MatMul "
    ...     "dimension mismatch", m)
    >>> f.node.name, f.message
    ('/fc/MatMul', 'MatMul dimension mismatch')
    """
    text = _ANSI.sub("", message)
    names = node_names(model)
    nodes = list(model.graph.node)
    by_name = {}
    for i, n in enumerate(names):
        by_name.setdefault(n, nodes[i])
    m = _RUNNING.search(text)
    if m:
        node = by_name.get(m.group(2))
        if node is None and not m.group(2):
            same = [n for n in nodes if n.op_type == m.group(1)]
            node = same[0] if len(same) == 1 else None
        return Failure(node, m.group(1), clean_message(m.group(3)), "run")
    m = _SESSION_NODE.search(text)
    if m:
        return Failure(by_name.get(m.group(1)), m.group(2), clean_message(m.group(3)), "session")
    m = _KERNEL.search(text)
    if m:
        kernel = re.sub(r"^(DeepCpu|Cpu|Cuda)|(Base|Op|Kernel|Impl)$", "", m.group(1))
        same = [n for n in nodes if n.op_type.lower() == kernel.lower()]
        return Failure(same[0] if len(same) == 1 else None, same[0].op_type if same else kernel, clean_message(text), "session")
    m = _UNREGISTERED.search(text)
    if m:
        same = [n for n in nodes if n.op_type == m.group(2) and (n.domain or "") == m.group(1)]
        return Failure(same[0] if same else None, m.group(2), clean_message(text), "session")
    return Failure(None, None, clean_message(text), "run")


def classify(message: str) -> str:
    """``memory`` for an allocation failure, else ``error``."""
    low = message.lower()
    if "bad_alloc" in low or "failed to allocate" in low or "memoryerror" in low or "out of memory" in low:
        return "memory"
    return "error"
