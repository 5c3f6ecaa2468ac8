"""Near-duplicate candidates from MinHash LSH, confirmed before they are trusted.

LSH is an index, not a verdict: ``MinHashLSH.query`` returns keys that *probably*
share a band with the query. Every candidate is confirmed here by its estimated
Jaccard similarity against the stored signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasketch import MinHashLSH

from clustering.fingerprint import EMPTY_SIGNATURE, NUM_PERM, jaccard, to_minhash

# LSH bands tuned for 0.5: with 128 permutations datasketch picks b bands of r rows
# so that a pair at Jaccard 0.5 collides with probability ~1 - (1 - 0.5**r)**b; pairs
# at 0.8 (copies) are then found almost surely, and pairs near 0.5 (heavily shared
# wire text) still reach story assignment as strong evidence.
LSH_THRESHOLD = 0.5
# A copy: at least this estimated Jaccard on cleaned body shingles.
DUPLICATE_JACCARD = 0.8


@dataclass(frozen=True)
class Candidate:
    """A stored article whose signature is close to the query's."""

    article_id: int
    similarity: float


class NearDuplicateIndex:
    """MinHash LSH over article signatures, keyed by article id."""

    def __init__(self, threshold: float = LSH_THRESHOLD):
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1 (exclusive)")
        self.threshold = threshold
        self.lsh_ = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.signatures_: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.signatures_)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self.signatures_

    def add(self, article_id: int, values: np.ndarray) -> None:
        """Index a signature; an empty text's signature is never indexed."""
        if article_id in self.signatures_ or (values == EMPTY_SIGNATURE).all():
            return
        self.lsh_.insert(article_id, to_minhash(values), check_duplication=False)
        self.signatures_[article_id] = values

    def remove(self, article_id: int) -> None:
        if self.signatures_.pop(article_id, None) is not None:
            self.lsh_.remove(article_id)

    def query(self, values: np.ndarray, min_similarity: float | None = None) -> list[Candidate]:
        """Confirmed candidates, most similar first.

        ``min_similarity`` defaults to the LSH threshold: band collisions below it
        are dropped.
        """
        if (values == EMPTY_SIGNATURE).all() or not self.signatures_:
            return []
        floor = self.threshold if min_similarity is None else min_similarity
        found = []
        for key in self.lsh_.query(to_minhash(values)):
            similarity = jaccard(values, self.signatures_[key])
            if similarity >= floor:
                found.append(Candidate(key, similarity))
        found.sort(key=lambda c: (-c.similarity, c.article_id))
        return found
