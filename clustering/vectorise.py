"""Article features for story assignment: hashed term vectors and streaming IDF.

Terms are hashed into a fixed space as scikit-learn's ``FeatureHasher`` hashes them
(MurmurHash3 of the UTF-8 bytes, seed 0, by ``mmh3``; a test holds the two equal), so
no vocabulary is fitted over data not yet seen. Document frequencies are counted as
articles arrive (``DocumentFrequencies``) and turned into IDF weights at scoring time,
so a story's centroid is stored un-weighted and always scored with current IDF.

Three fields are kept apart because they carry different evidence: the title, the
body, and name-like terms (people, places, organisations) from both. Title and body
terms are stemmed content words; names are kept as written (case-folded). Beside the
terms, an article carries its sentence embedding (``clustering.embed``), made by the
caller, since it costs far more than the terms.

``TERM_SCHEME`` names how words become hashed terms. Stored document frequencies
(``DocumentFrequencies.to_counts``) are only comparable under one scheme, so the
caller stores it beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import mmh3
import numpy as np
import scipy.sparse as sp

from clustering.normalise import content_words, names, stems

N_FEATURES = 1 << 20
FIELDS = ("title", "body", "names")
# Version 1 hashed content words as written; 2 stems title and body words; 3 keeps
# weights as float32, the form they are stored in (``PackedFeatures.to_bytes``).
TERM_SCHEME = {
    "hash": "FeatureHasher",
    "n_features": N_FEATURES,
    "stemmer": "snowball-english",
    "dtype": "float32",
    "version": 3,
}


@dataclass(frozen=True)
class ArticleFeatures:
    """Per-field term vectors of one article (sublinear TF, L2-normalised, no IDF) and
    its embedding (None when the caller has none: it then adds no meaning)."""

    title: sp.csr_matrix
    body: sp.csr_matrix
    names: sp.csr_matrix
    embedding: np.ndarray | None = None

    def field(self, name: str) -> sp.csr_matrix:
        return getattr(self, name)

    @property
    def terms(self) -> np.ndarray:
        """Hashed term indices present in any field (each counts once for DF)."""
        return np.unique(np.concatenate([self.title.indices, self.body.indices, self.names.indices]))

    def pack(self) -> PackedFeatures:
        """The same vectors in two flat arrays instead of three sparse matrices (each a
        Python object over three arrays), for keeping many."""
        fields = (self.title, self.body, self.names)
        return PackedFeatures(
            np.concatenate([f.indices for f in fields]).astype(np.int32),
            np.concatenate([f.data for f in fields]),
            (self.title.nnz, self.title.nnz + self.body.nnz),
            self.embedding,
        )


@dataclass(frozen=True, slots=True)
class PackedFeatures:
    """An ``ArticleFeatures`` kept compactly: the term indices and weights of title,
    body and names one after another, and where the title and the body end. Unpacking
    gives back the identical vectors."""

    indices: np.ndarray
    data: np.ndarray
    ends: tuple[int, int]
    embedding: np.ndarray | None = None

    @property
    def terms(self) -> np.ndarray:
        return np.unique(self.indices)

    def _bounds(self, name: str) -> tuple[int, int]:
        k = FIELDS.index(name)
        bounds = (0, *self.ends, len(self.indices))
        return bounds[k], bounds[k + 1]

    def field_nnz(self, name: str) -> int:
        a, b = self._bounds(name)
        return b - a

    def field_arrays(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """One field's (indices, weights), views into the packed arrays."""
        a, b = self._bounds(name)
        return self.indices[a:b], self.data[a:b]

    def field(self, name: str) -> sp.csr_matrix:
        """One field's vector, as ``ArticleFeatures.field`` gives it."""
        a, b = self._bounds(name)
        return sp.csr_matrix(
            (self.data[a:b].copy(), self.indices[a:b].copy(), np.array([0, b - a], dtype=np.int32)),
            shape=(1, N_FEATURES),
        )

    def unpack(self) -> ArticleFeatures:
        return ArticleFeatures(*(self.field(name) for name in FIELDS), self.embedding)

    def to_bytes(self) -> bytes:
        """Stored form of the term vectors (the embedding is stored apart): where title
        and body end, then the indices (int32) and the weights (float32), little-endian.

        >>> p = features("Flood in Calder", "The river rose overnight.").pack()
        >>> q = PackedFeatures.from_bytes(p.to_bytes())
        >>> bool((q.indices == p.indices).all() and (q.data == p.data).all()), q.ends == p.ends
        (True, True)
        """
        header = np.array([len(self.indices), *self.ends], dtype="<i4")
        return header.tobytes() + self.indices.astype("<i4").tobytes() + self.data.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, embedding: np.ndarray | None = None) -> PackedFeatures:
        """Inverse of ``to_bytes``; refuses data that cannot be packed features."""
        if len(data) < 12:
            raise ValueError("stored features are too short to hold their header")
        n, title_end, body_end = (int(v) for v in np.frombuffer(data[:12], dtype="<i4"))
        if len(data) != 12 + 8 * n or not 0 <= title_end <= body_end <= n:
            raise ValueError("stored features are not of the stored form (length or field bounds are wrong)")
        indices = np.frombuffer(data[12 : 12 + 4 * n], dtype="<i4").astype(np.int32)
        if n and (indices.min() < 0 or indices.max() >= N_FEATURES):
            raise ValueError(f"stored feature indices must lie in [0, {N_FEATURES})")
        weights = np.frombuffer(data[12 + 4 * n :], dtype="<f4").astype(np.float32)
        return cls(indices, weights, (title_end, body_end), embedding)

    @classmethod
    def many_from_bytes(cls, blobs: list[bytes], embeddings: np.ndarray | None = None) -> list[PackedFeatures]:
        """``from_bytes`` of many stored forms at once (a rebuild): one pass of array work
        checks and reads them all; ``embeddings``, one row each, or None.

        >>> p = features("Flood in Calder", "The river rose overnight.").pack()
        >>> (q,) = PackedFeatures.many_from_bytes([p.to_bytes()])
        >>> bool((q.indices == p.indices).all() and (q.data == p.data).all()), q.ends == p.ends
        (True, True)
        """
        n = len(blobs)
        lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=n)
        if (lengths < 12).any():
            raise ValueError("stored features are too short to hold their header")
        if (lengths % 8 != 4).any():  # 12 + 8n bytes
            raise ValueError("stored features are not of the stored form (length or field bounds are wrong)")
        # Every stored form is 12 + 8n bytes, so each starts on a 4-byte word of the
        # joined bytes, and its header, indices and weights are whole words.
        raw = b"".join(blobs)
        words, reals = np.frombuffer(raw, dtype="<i4"), np.frombuffer(raw, dtype="<f4")
        starts = (np.cumsum(lengths) - lengths) // 4
        header = words[(starts[:, None] + np.arange(3)).ravel()].reshape(n, 3).astype(np.int64)
        count, title_end, body_end = header.T
        if (lengths != 12 + 8 * count).any() or ((title_end < 0) | (title_end > body_end) | (body_end > count)).any():
            raise ValueError("stored features are not of the stored form (length or field bounds are wrong)")

        def gather(source: np.ndarray, offsets: np.ndarray) -> np.ndarray:
            # ``count`` words of every form, one form after another, from word ``offsets``.
            at = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + np.repeat(offsets, count)
            return source[at]

        indices = gather(words, starts + 3).astype(np.int32)
        weights = gather(reals, starts + 3 + count).astype(np.float32)
        if len(indices) and (indices.min() < 0 or indices.max() >= N_FEATURES):
            raise ValueError(f"stored feature indices must lie in [0, {N_FEATURES})")
        bounds = np.concatenate([[0], np.cumsum(count)]).tolist()
        ends = zip(title_end.tolist(), body_end.tolist())
        return [
            cls(
                indices[a:b].copy(),
                weights[a:b].copy(),
                end,
                None if embeddings is None else embeddings[k],
            )
            for k, (a, b, end) in enumerate(zip(bounds, bounds[1:], ends))
        ]


def term_indices(terms: list[str]) -> np.ndarray:
    """The hashed feature index of each term, in order: the index scikit-learn's
    ``FeatureHasher`` (``alternate_sign=False``) gives it, the absolute value of its
    MurmurHash3 (seed 0) modulo ``N_FEATURES``.

    >>> term_indices(["putin", "kim jong un"]).tolist()
    [610536, 423187]
    """
    return np.fromiter((_hash_index(t) for t in terms), dtype=np.int32, count=len(terms))


def _hash_index(term: str) -> int:
    # Hashed as UTF-8 bytes, as scikit-learn hashes a str: a str that has no UTF-8 form
    # (a lone surrogate) raises here instead of reaching the C hash.
    h = mmh3.hash(term.encode("utf-8"), 0, signed=True)
    if h == -(2**31):  # abs() would overflow 32 bits: scikit-learn's own rule
        return (2**31 - 1 - (N_FEATURES - 1)) % N_FEATURES
    return abs(h) % N_FEATURES


def normalise_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """L2-normalise the rows of a CSR matrix in place (empty rows stay empty)."""
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    norms = np.sqrt(np.bincount(rows, weights=matrix.data.astype(np.float64) ** 2, minlength=matrix.shape[0]))
    matrix.data /= np.where(norms > 0, norms, 1.0)[rows].astype(matrix.data.dtype)
    return matrix


def _tf(tokens: list[str]) -> sp.csr_matrix:
    """Sublinear term frequencies of ``tokens``, hashed (terms that share an index add
    up, as in ``FeatureHasher``), L2-normalised, as one CSR row with sorted indices."""
    indices, counts = np.unique(term_indices(tokens), return_counts=True)
    # float32: the stored form, so an article read back scores exactly as it did live.
    weights = (1.0 + np.log(counts)).astype(np.float32)
    matrix = sp.csr_matrix((weights, indices, np.array([0, len(indices)], dtype=np.int32)), shape=(1, N_FEATURES))
    return normalise_rows(matrix)


def features(title: str | None, body: str, embedding: np.ndarray | None = None) -> ArticleFeatures:
    """Featurise an article's title and cleaned body; ``embedding`` is kept as given.

    A body whose words all stand in the title (a feed that sends headlines alone, with
    the headline as text) adds no evidence, so its vector is left empty: counting the
    headline twice, as title and as body, would make two headlines that share a few
    words look like two full write-ups that agree. Such an article is a headline
    (``is_headline``) and is decided as one.

    >>> is_headline(features("Harbour bridge closes", "Harbour bridge closes."))
    True
    >>> is_headline(features("Harbour bridge closes", "The harbour bridge closes for repairs."))
    False
    """
    title = title or ""
    title_words, body_words = stems(content_words(title)), stems(content_words(body))
    if title_words and set(body_words) <= set(title_words):
        body_words = []
    return ArticleFeatures(
        title=_tf(title_words),
        body=_tf(body_words),
        names=_tf(names(title + ".\n" + body)),
        embedding=embedding,
    )


def is_headline(feats: ArticleFeatures) -> bool:
    """Whether an article is its headline alone: a title and no body of its own."""
    return feats.title.nnz > 0 and feats.body.nnz == 0


class DocumentFrequencies:
    """Streaming document frequencies over hashed terms."""

    def __init__(self) -> None:
        self.n_docs_ = 0
        self.df_ = np.zeros(N_FEATURES, dtype=np.int32)
        # ln(1 + df) per term, made on the first ``idf`` and kept current by add and
        # remove: scoring then gathers logs instead of taking one per weight.
        self._log_df: np.ndarray | None = None

    def add(self, terms: np.ndarray) -> None:
        self.df_[terms] += 1
        self.n_docs_ += 1
        if self._log_df is not None:
            self._log_df[terms] = np.log1p(self.df_[terms])

    def add_many(self, terms: np.ndarray, n_docs: int) -> None:
        """Count ``n_docs`` documents at once: ``terms`` holds each one's distinct terms,
        all together (a term repeats once per document holding it)."""
        self.df_ += np.bincount(terms, minlength=N_FEATURES).astype(np.int32)
        self.n_docs_ += n_docs
        self._log_df = None

    def remove(self, terms: np.ndarray) -> None:
        self.df_[terms] -= 1
        self.n_docs_ -= 1
        if self._log_df is not None:
            self._log_df[terms] = np.log1p(self.df_[terms])

    def copy(self) -> DocumentFrequencies:
        other = DocumentFrequencies()
        other.n_docs_, other.df_ = self.n_docs_, self.df_.copy()
        return other

    def to_counts(self) -> tuple[int, np.ndarray, np.ndarray]:
        """(documents, term indices, counts): the non-zero frequencies, to store."""
        terms = np.flatnonzero(self.df_).astype(np.int32)
        return self.n_docs_, terms, self.df_[terms]

    @classmethod
    def from_counts(cls, n_docs: int, terms: np.ndarray, counts: np.ndarray) -> DocumentFrequencies:
        """Inverse of ``to_counts``; refuses indices or counts that cannot be frequencies."""
        if len(terms) != len(counts) or n_docs < 0:
            raise ValueError("terms and counts must pair up, and n_docs must not be negative")
        if len(terms) and (terms.min() < 0 or terms.max() >= N_FEATURES or counts.min() < 0):
            raise ValueError(f"term indices must lie in [0, {N_FEATURES}) and counts must not be negative")
        frequencies = cls()
        frequencies.n_docs_ = int(n_docs)
        frequencies.df_[terms] = counts
        return frequencies

    def idf(self, indices: np.ndarray) -> np.ndarray:
        """Smoothed IDF, ``ln((1 + n) / (1 + df)) + 1`` as in scikit-learn."""
        if self._log_df is None:
            self._log_df = np.log1p(self.df_.astype(np.float64))
        return (np.log1p(self.n_docs_) + 1.0) - self._log_df[indices]

    def weigh(self, vector: sp.csr_matrix) -> sp.csr_matrix:
        """``vector`` with each term scaled by its IDF, L2-normalised."""
        weighted = vector.copy()
        weighted.data = weighted.data * self.idf(weighted.indices)
        return normalise_rows(weighted)


def cosine(a: sp.csr_matrix, b: sp.csr_matrix) -> float:
    """Cosine of two L2-normalised row vectors (0 when either is empty)."""
    if a.nnz == 0 or b.nnz == 0:
        return 0.0
    return float(a.multiply(b).sum())
