"""Word shingles and their MinHash signatures.

The scheme is pinned and recorded with the data (``SCHEME``): a stored signature is
only comparable with one computed by the same shingle size, token hash, permutation
count and permutation seed.

Signatures are datasketch signatures under its ``affine32`` permutation scheme: the
permutations are datasketch's own (``MinHash(num_perm, seed, scheme).permutations``)
and the update is the arithmetic of ``MinHash.update_batch`` for that scheme,
``min(a * fmix32(h) + b mod 2**32)``, applied to all shingles at once with NumPy. What
differs is only where the 32-bit shingle hashes come from: each token is hashed once
with BLAKE2b (cached), and a shingle's hash is a polynomial over its tokens' hashes,
instead of one SHA-1 call per shingle (``tests/test_fingerprint.py`` checks the
result equals ``MinHash.update_batch`` fed the same shingle hashes).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
from datasketch import MinHash
from datasketch.minhash import _fmix

SHINGLE_WORDS = 5
NUM_PERM = 128
SEED = 20240618
PERMUTATION_SCHEME = "affine32"
SCHEME = {
    "library": "datasketch",
    "permutation_scheme": PERMUTATION_SCHEME,
    "num_perm": NUM_PERM,
    "seed": SEED,
    "shingle_words": SHINGLE_WORDS,
    "token_hash": "blake2b-64",
    "shingle_hash": "poly64(base=1099511628211)>>32",
    "version": 1,
}

_BASE = np.uint64(1099511628211)  # the 64-bit FNV prime: odd, so the polynomial mixes every position
_PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=PERMUTATION_SCHEME).permutations
EMPTY_SIGNATURE = np.full(NUM_PERM, np.iinfo(np.uint32).max, dtype=np.uint32)


@lru_cache(maxsize=1 << 20)
def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


def shingle_hashes(tokens: list[str], k: int = SHINGLE_WORDS) -> np.ndarray:
    """32-bit hashes of the distinct ``k``-word shingles of ``tokens``.

    A text shorter than ``k`` words is one shingle; no tokens give no shingles.

    >>> len(shingle_hashes("a b c d e f".split()))
    2
    >>> len(shingle_hashes([]))
    0
    """
    if not tokens:
        return np.empty(0, dtype=np.uint32)
    token_hashes = np.fromiter((_token_hash(t) for t in tokens), dtype=np.uint64, count=len(tokens))
    k = min(k, len(tokens))
    n = len(tokens) - k + 1
    combined = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for j in range(k):
            combined = combined * _BASE + token_hashes[j : j + n]
    return np.unique((combined >> np.uint64(32)).astype(np.uint32))


def signature(tokens: list[str]) -> np.ndarray:
    """The MinHash signature (``NUM_PERM`` uint32 values) of ``tokens``' shingles.

    >>> a = signature("putin will visit north korea this week for talks".split())
    >>> b = signature("putin will visit north korea this week for talks".split())
    >>> bool((a == b).all()), a.shape
    (True, (128,))
    """
    hashes = shingle_hashes(tokens)
    if hashes.size == 0:
        return EMPTY_SIGNATURE.copy()
    a, b = _PERMUTATIONS
    with np.errstate(over="ignore"):  # uint32 wraparound is the modulo 2**32
        permuted = _fmix(hashes[:, None], 32) * a + b
    return permuted.min(axis=0)


def to_minhash(values: np.ndarray) -> MinHash:
    """Wrap a signature as a datasketch ``MinHash`` (for ``MinHashLSH``)."""
    return MinHash(
        num_perm=NUM_PERM, seed=SEED, scheme=PERMUTATION_SCHEME, hashvalues=values, permutations=_PERMUTATIONS
    )


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of two signatures: the share of equal values.

    >>> s = signature("one two three four five six seven".split())
    >>> jaccard(s, s)
    1.0
    """
    return float(np.count_nonzero(a == b)) / len(a)


def to_bytes(values: np.ndarray) -> bytes:
    """Signature as 4 bytes a value, little-endian."""
    return values.astype("<u4").tobytes()


def many_from_bytes(blobs: list[bytes]) -> np.ndarray:
    """``from_bytes`` of many stored signatures at once, one row each."""
    if any(len(b) != 4 * NUM_PERM for b in blobs):
        raise ValueError(f"a stored signature is {4 * NUM_PERM} bytes, scheme expects {NUM_PERM} values")
    return np.frombuffer(b"".join(blobs), dtype="<u4").astype(np.uint32).reshape(len(blobs), NUM_PERM)


def from_bytes(data: bytes) -> np.ndarray:
    values = np.frombuffer(data, dtype="<u4").astype(np.uint32)
    if values.shape != (NUM_PERM,):
        raise ValueError(f"stored signature has {values.size} values, scheme expects {NUM_PERM}")
    return values
