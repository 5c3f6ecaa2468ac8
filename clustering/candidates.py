"""Near-duplicate candidates from MinHash LSH, confirmed before they are trusted.

LSH is an index, not a verdict: a band collision says two signatures *probably*
share a band, nothing more. Every candidate is confirmed here by its estimated
Jaccard similarity against the stored signature.

A signature is held as the low 16 bits of each of its values (b-bit MinHash, Li and
König 2010): two different 32-bit values agree in their low 16 bits once in 65,536, so
the share of equal values, the Jaccard estimate, is the full signature's but for such a
chance agreement (a pair at the 0.8 bar of copies, 26 values apart, gains one value of
128 about once in 2,500 comparisons), and a window holds half the bytes. Band keys are
made of the full values, so the same pairs collide.

The band index is flat: a window holds hundreds of thousands of signatures, and a
Python set per band bucket (datasketch's ``MinHashLSH``) costs ~6.7 KB an article.
Here each band of each signature is one 64-bit key in a sorted NumPy array beside the
row of its signature (12 bytes a band, 300 an article), searched with ``searchsorted``;
new keys wait in a small dict until there are enough to merge into the sorted arrays
in one pass. The band layout is datasketch's, so the same pairs collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from datasketch import MinHashLSH

from clustering.fingerprint import EMPTY_SIGNATURE, NUM_PERM

# LSH bands tuned for 0.5: with 128 permutations datasketch picks b bands of r rows
# (b = 25, r = 5) so that a pair at Jaccard 0.5 collides with probability
# 1 - (1 - 0.5**5)**25 ≈ 0.55; pairs at 0.8 (copies) are found with probability
# 1 - (1 - 0.8**5)**25 ≈ 0.9999, and pairs near 0.5 (heavily shared wire text) still
# reach story assignment as strong evidence.
LSH_THRESHOLD = 0.5
# A copy: at least this estimated Jaccard on cleaned body shingles.
DUPLICATE_JACCARD = 0.8

_SORT_AT = 4096  # articles added one by one before the rows are sorted by id again
_MERGE_AT = 1 << 16  # pending keys merged into the sorted arrays at once (band keys: ~2,600 articles)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser
_MIX2 = np.uint64(0x94D049BB133111EB)
# Fixed odd weights of a band's values and offsets of its number (a seeded draw: the
# keys live only in memory, but a fixed draw keeps runs comparable).
_DRAW = np.random.default_rng(20261202)
_ROW_WEIGHTS = _DRAW.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_BAND_OFFSETS = _DRAW.integers(0, 2**63, size=NUM_PERM, dtype=np.uint64)


_HELD = np.uint16  # the bits of each signature value held (b-bit MinHash; see the module docstring)


def _held(signatures: np.ndarray) -> np.ndarray:
    """The low bits of each value that the index holds."""
    return np.asarray(signatures).astype(_HELD, copy=False)


@cache
def band_layout(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) datasketch chooses for ``threshold`` at ``NUM_PERM``."""
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    return lsh.b, lsh.r


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per band of each signature (shape ``(n, bands)``): the band's
    ``rows`` values weighted by fixed odd 64-bit constants and summed modulo 2**64, plus
    a constant of the band's number, then mixed (splitmix64's finaliser). Equal bands get
    equal keys; two different bands rarely share one, and a candidate is confirmed by its
    Jaccard similarity anyway.

    >>> s = np.arange(128, dtype=np.uint32)
    >>> k = band_keys(np.stack([s, s]), 25, 5)
    >>> k.shape, bool((k[0] == k[1]).all()), len(set(k[0].tolist()))
    ((2, 25), True, 25)
    """
    values = np.atleast_2d(signatures)[:, : bands * rows].astype(np.uint64).reshape(-1, bands, rows)
    # Array arithmetic on uint64 wraps modulo 2**64 without a warning.
    key = (values * _ROW_WEIGHTS[:rows]).sum(axis=2, dtype=np.uint64) + _BAND_OFFSETS[:bands]
    key = (key ^ (key >> np.uint64(30))) * _MIX1
    key = (key ^ (key >> np.uint64(27))) * _MIX2
    return key ^ (key >> np.uint64(31))


@dataclass(frozen=True)
class Candidate:
    """A stored article whose signature is close to the query's."""

    article_id: int
    similarity: float


class NearDuplicateIndex:
    """MinHash LSH over article signatures, keyed by article id.

    Signatures sit in the rows of one array (``signatures_``), article ids in
    ``ids_`` (-1: removed). A removed row keeps its band keys until a third of the
    rows are removed, when the arrays are compacted; a query skips removed rows.
    An article's row is found in the rows sorted by article id (``_by_id``, 12 bytes an
    article where a dictionary costs ~110), or among those added since they were sorted.
    """

    def __init__(self, threshold: float = LSH_THRESHOLD):
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be between 0 and 1 (exclusive)")
        self.threshold = threshold
        self.bands, self.rows = band_layout(threshold)
        self.signatures_ = np.empty((0, NUM_PERM), dtype=_HELD)  # the low bits of each value
        self.ids_ = np.empty(0, dtype=np.int64)
        self._live = 0  # rows in use that are not removed
        self._by_id = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int32))  # (ids, their rows), by id
        self._recent: dict[int, int] = {}  # article id -> row, added since ``_by_id`` was sorted
        self._used = 0  # rows of signatures_ in use, removed ones included
        self._keys = np.empty(0, dtype=np.uint64)  # sorted band keys
        self._key_rows = np.empty(0, dtype=np.int32)  # the row each key belongs to
        self._pending: dict[int, list[int]] = {}  # band key -> rows, not merged yet
        self._pending_count = 0

    def __len__(self) -> int:
        return self._live

    def __contains__(self, article_id: int) -> bool:
        return self._row_of(article_id) is not None

    def __iter__(self):
        ids = self.ids_[: self._used]
        return iter(ids[ids >= 0].tolist())

    def _row_of(self, article_id: int) -> int | None:
        row = self._recent.get(article_id)
        if row is not None:
            return row
        ids, rows = self._by_id
        at = int(np.searchsorted(ids, article_id))
        if at < len(ids) and ids[at] == article_id and self.ids_[rows[at]] == article_id:
            return int(rows[at])
        return None  # never added, or removed (its row says -1)

    def _indexed(self, article_ids: np.ndarray) -> np.ndarray:
        """Which of ``article_ids`` are indexed."""
        ids, rows = self._by_id
        at = np.minimum(np.searchsorted(ids, article_ids), max(len(ids) - 1, 0))
        held = np.zeros(len(article_ids), dtype=bool)
        if len(ids):
            held = (ids[at] == article_ids) & (self.ids_[rows[at]] == article_ids)
        if self._recent:
            held |= np.fromiter((int(a) in self._recent for a in article_ids), dtype=bool, count=len(article_ids))
        return held

    def _sort_ids(self) -> None:
        """Sort the rows in use by article id (after a bulk add, a compaction, a load)."""
        live = np.flatnonzero(self.ids_[: self._used] >= 0)
        order = np.argsort(self.ids_[live], kind="stable")
        self._by_id = (self.ids_[live][order].copy(), live[order].astype(np.int32))
        self._recent.clear()

    def add(self, article_id: int, values: np.ndarray) -> None:
        """Index a signature; an empty text's signature is never indexed."""
        self.add_many(np.array([article_id], dtype=np.int64), np.asarray(values).reshape(1, -1))

    def add_many(self, article_ids: np.ndarray, signatures: np.ndarray) -> None:
        """Index many signatures at once (a rebuild): one sort, not one insert each.
        Ids already indexed keep their first signature; empty signatures are skipped."""
        article_ids = np.asarray(article_ids, dtype=np.int64)
        signatures = np.asarray(signatures, dtype=np.uint32).reshape(len(article_ids), NUM_PERM)
        keep = ~(signatures == EMPTY_SIGNATURE).all(axis=1)
        _, first = np.unique(article_ids, return_index=True)  # one signature an id
        keep &= np.isin(np.arange(len(article_ids)), first)
        keep &= ~self._indexed(article_ids)
        article_ids, signatures = article_ids[keep], signatures[keep]
        if not len(article_ids):
            return
        rows = self._allocate(len(article_ids))
        self.signatures_[rows] = _held(signatures)
        self.ids_[rows] = article_ids
        self._live += len(article_ids)
        if len(self._recent) + len(article_ids) > max(_SORT_AT, len(self._by_id[0]) // 8):
            self._sort_ids()  # a bulk add, or enough one by one: one sort of every row
        else:
            self._recent.update(zip(article_ids.tolist(), rows.tolist()))
        keys = band_keys(signatures, self.bands, self.rows)
        if len(article_ids) * self.bands < _MERGE_AT // 8:
            for key_row, row in zip(keys.tolist(), rows.tolist()):
                for key in key_row:
                    self._pending.setdefault(key, []).append(row)
            self._pending_count += keys.size
            if self._pending_count >= _MERGE_AT:
                self._merge_pending()
        else:
            self._merge(keys.ravel(), np.repeat(rows, self.bands).astype(np.int32))

    def _allocate(self, n: int) -> np.ndarray:
        if self._used + n > len(self.ids_):
            # An eighth more room each time, not twice: at a million stored the rows are
            # ~250k signatures (~130 MB), and doubling would hold as much again unused.
            size = max(self._used + n, len(self.ids_) + len(self.ids_) // 8, 1024)
            grown_signatures = np.zeros((size, NUM_PERM), dtype=_HELD)
            grown_signatures[: self._used] = self.signatures_[: self._used]
            self.signatures_ = grown_signatures
            grown = np.full(size, -1, dtype=np.int64)
            grown[: self._used] = self.ids_[: self._used]
            self.ids_ = grown
        rows = np.arange(self._used, self._used + n)
        self._used += n
        return rows

    def _merge_pending(self) -> None:
        if not self._pending:
            return
        counts = np.fromiter((len(r) for r in self._pending.values()), dtype=np.int64, count=len(self._pending))
        keys = np.repeat(np.fromiter(self._pending.keys(), dtype=np.uint64, count=len(self._pending)), counts)
        rows = np.fromiter((r for rs in self._pending.values() for r in rs), dtype=np.int32, count=int(counts.sum()))
        self._pending.clear()
        self._pending_count = 0
        self._merge(keys, rows)

    def _merge(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Merge keys into the sorted arrays: one sort of the new keys, one pass of copies."""
        order = np.argsort(keys, kind="stable")
        keys, rows = keys[order], rows[order]
        at = np.searchsorted(self._keys, keys)
        self._keys = np.insert(self._keys, at, keys)
        self._key_rows = np.insert(self._key_rows, at, rows)

    def remove(self, article_id: int) -> None:
        row = self._row_of(article_id)
        if row is None:
            return
        self.ids_[row] = -1
        self._recent.pop(article_id, None)
        self._live -= 1
        if self._used - self._live > max(1024, self._used // 3):
            self._compact()

    def _compact(self) -> None:
        """Drop removed rows and their band keys, renumbering the rest in order."""
        self._merge_pending()
        live = self.ids_[: self._used] >= 0
        renumber = np.cumsum(live) - 1
        kept = live[self._key_rows]
        self._keys = self._keys[kept]
        self._key_rows = renumber[self._key_rows[kept]].astype(np.int32)
        self.signatures_ = self.signatures_[: self._used][live].copy()
        self.ids_ = self.ids_[: self._used][live].copy()
        self._used = len(self.ids_)
        self._sort_ids()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as flat arrays (``from_arrays`` reads them back): signatures and ids
        of the rows in use, and the sorted band keys with their rows."""
        self._merge_pending()
        return {
            "signatures": self.signatures_[: self._used],
            "ids": self.ids_[: self._used],
            "keys": self._keys,
            "key_rows": self._key_rows,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], threshold: float = LSH_THRESHOLD) -> NearDuplicateIndex:
        """An index as ``to_arrays`` gave it; refuses arrays that do not fit together."""
        made = cls(threshold)
        signatures, ids = arrays["signatures"], arrays["ids"]
        keys, key_rows = arrays["keys"], arrays["key_rows"]
        if signatures.shape != (len(ids), NUM_PERM) or len(keys) != len(key_rows):
            raise ValueError("near-duplicate arrays do not fit together (shapes)")
        if len(key_rows) and not 0 <= int(key_rows.min()) <= int(key_rows.max()) < len(ids):
            raise ValueError("near-duplicate band keys point outside the signature rows")
        made.signatures_ = _held(signatures)
        made.ids_ = ids.astype(np.int64, copy=False)
        made._used = len(ids)
        made._keys, made._key_rows = keys.astype(np.uint64, copy=False), key_rows.astype(np.int32, copy=False)
        made._live = int(np.count_nonzero(made.ids_ >= 0))
        made._sort_ids()
        return made

    def _colliding_rows(self, values: np.ndarray) -> np.ndarray:
        keys = band_keys(values, self.bands, self.rows)[0]
        left = np.searchsorted(self._keys, keys, side="left")
        right = np.searchsorted(self._keys, keys, side="right")
        found = [self._key_rows[a:b] for a, b in zip(left.tolist(), right.tolist()) if b > a]
        for key in keys.tolist():
            if (pending := self._pending.get(key)) is not None:
                found.append(np.asarray(pending, dtype=np.int32))
        if not found:
            return np.empty(0, dtype=np.int64)
        rows = np.unique(np.concatenate(found))
        return rows[self.ids_[rows] >= 0]

    def query(self, values: np.ndarray, min_similarity: float | None = None) -> list[Candidate]:
        """Confirmed candidates, most similar first (ties: the lower id).

        ``min_similarity`` defaults to the LSH threshold: band collisions below it
        are dropped.
        """
        if (values == EMPTY_SIGNATURE).all() or not self._live:
            return []
        floor = self.threshold if min_similarity is None else min_similarity
        rows = self._colliding_rows(values)
        # The estimated Jaccard of each (``fingerprint.jaccard``): the share of equal values.
        similarity = np.count_nonzero(self.signatures_[rows] == _held(values), axis=1) / NUM_PERM
        ids = self.ids_[rows]
        confirmed = similarity >= floor
        ids, similarity = ids[confirmed], similarity[confirmed]
        order = np.lexsort((ids, -similarity))
        return [Candidate(int(ids[i]), float(similarity[i])) for i in order]


def distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (``np.unique`` by one sort; its hashing is slower on
    the small arrays of a lookup)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _live(stories: np.ndarray, live: np.ndarray) -> np.ndarray:
    """Which of ``stories`` are marked in ``live`` (a mask indexed by story id)."""
    inside = stories < len(live)
    inside[inside] = live[stories[inside]]
    return inside


def _inserted(keys: np.ndarray, more: np.ndarray) -> np.ndarray:
    """Sorted distinct ``keys`` with ``more`` inserted, those not among them already."""
    more = distinct(more)
    at = np.searchsorted(keys, more)
    new = at == len(keys)
    new[~new] = keys[at[~new]] != more[~new]
    return np.insert(keys, at[new], more[new]) if new.any() else keys


def _bounds(keys: np.ndarray, terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each term's pairs start and end in sorted ``keys``: one search of both ends
    of every term, in order when ``terms`` are (numpy then starts each search where the
    last ended; in a few million keys most of a search is cache misses)."""
    ends = np.searchsorted(keys, np.stack((terms << 32, (terms + 1) << 32), axis=1).ravel())
    return ends[0::2], ends[1::2]


def _gathered(keys: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (position, story) of the pairs of sorted ``keys`` from ``low`` to ``high`` of
    each position, ordered by position then story."""
    counts = high - low
    position = np.repeat(np.arange(len(low)), counts)
    # Entry i of term t sits at low[t] + (i - first entry of t).
    at = np.arange(int(counts.sum())) + np.repeat(low - (np.cumsum(counts) - counts), counts)
    return position, keys[at] & 0xFFFFFFFF


class StoryPostings:
    """Which stories each hashed term was posted for: the stories an article's key terms
    find (``clustering.assign``).

    One sorted int64 array of keys ``term << 32 | story`` (8 bytes a pair, where a dict of
    sets costs ~1.6 KB an article), searched with ``searchsorted``; new pairs wait in a
    second, small sorted array until there are enough to merge in one pass (inserting
    into ~64k keys is a short copy; into millions, a long one). A story that leaves is not
    taken out pair by pair: every lookup keeps the ``live`` stories only, and ``compact``
    drops the rest in one pass now and then.
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._pending = np.empty(0, dtype=np.int64)  # sorted and distinct, not merged yet

    def add(self, terms: np.ndarray, story_id: int) -> None:
        """Post one story under ``terms``."""
        if not 0 <= story_id < 1 << 32:
            raise ValueError("story ids must fit in 32 bits")
        self._pending = _inserted(self._pending, (np.asarray(terms, dtype=np.int64) << 32) | story_id)
        if len(self._pending) >= _MERGE_AT:
            self._merge_pending()

    def add_pairs(self, terms: np.ndarray, stories: np.ndarray) -> None:
        """Post many (term, story) pairs at once (a rebuild)."""
        if len(stories) and not 0 <= int(stories.min()) <= int(stories.max()) < 1 << 32:
            raise ValueError("story ids must fit in 32 bits")
        self._keys = _inserted(self._keys, (terms.astype(np.int64) << 32) | stories.astype(np.int64))

    def _merge_pending(self) -> None:
        if len(self._pending):
            self._keys = _inserted(self._keys, self._pending)
            self._pending = self._pending[:0]

    def to_arrays(self, live: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The pairs as one sorted array (``from_arrays`` reads it back); with ``live``,
        those of live stories only."""
        self._merge_pending()
        return {"keys": self._keys if live is None else self._live_keys(live)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> StoryPostings:
        keys = arrays["keys"].astype(np.int64, copy=False)
        if len(keys) > 1 and not (keys[1:] > keys[:-1]).all():
            raise ValueError("posting keys must be sorted and distinct")
        made = cls()
        made._keys = keys
        return made

    def lookup(self, terms: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The live stories posted under each of ``terms``, as two aligned arrays: the
        position in ``terms`` of each (term, story) pair and its story, pairs distinct,
        ordered by position then story. Array work for all terms at once."""
        terms = np.asarray(terms, dtype=np.int64)
        return self._lookup(terms, *_bounds(self._keys, terms), live)

    def _lookup(
        self, terms: np.ndarray, low: np.ndarray, high: np.ndarray, live: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``lookup``, where the merged pairs of ``terms`` lie from ``low`` to ``high``."""
        position, stories = _gathered(self._keys, low, high)
        if len(self._pending):
            waiting = _gathered(self._pending, *_bounds(self._pending, terms))
            if len(waiting[0]):
                # Both are sorted by (position, story): the pending pairs not merged yet are
                # inserted among the merged ones, not sorted in with them all.
                merged = _inserted((position << 32) | stories, (waiting[0] << 32) | waiting[1])
                position, stories = merged >> 32, merged & 0xFFFFFFFF
        kept = _live(stories, live)
        return position[kept], stories[kept]

    def rarest(self, terms: np.ndarray, live: np.ndarray, budget: int, left: int) -> tuple[np.ndarray, np.ndarray]:
        """The live stories posted under the rarest of ``terms``, as (position in
        ``terms``, story) pairs in no set order. Terms are taken by their live stories,
        fewest first (ties: in the order of ``terms``; a term with none is not taken),
        as long as the stories taken add up to at most ``budget``, and at least one
        term. ``left`` is how many stories left since ``compact``: a term holds at least
        its merged pairs less ``left``.

        The result is what reading every term would choose, but terms are read in
        rounds and reading stops once the terms read settle it. Say the unread terms
        each hold at least ``m`` stories, and the terms read that hold between one and
        ``m - 1`` add up to ``s``. Those come first in the order, whatever the unread
        hold; if there is one at least (the first taken) and ``s + m > budget``, the
        terms taken end among them. The first round reads the fewest merged pairs first
        until they reach the budget (at a million stored it settles most searches; the
        commoner terms hold thousands of stories each); the second every term that may
        hold at most ``budget``; the last, every term.
        """
        terms = np.asarray(terms, dtype=np.int64)
        if not len(terms):
            return terms, terms
        low, high = _bounds(self._keys, terms)
        merged = high - low
        least = np.maximum(merged - left, 0)  # live stories each term holds at least
        by_merged = np.argsort(merged, kind="stable")
        reach = int(np.searchsorted(np.cumsum(merged[by_merged]), budget)) + 1
        rounds = (by_merged[:reach], np.flatnonzero(least <= budget), np.arange(len(terms)))
        read = np.zeros(len(terms), dtype=bool)
        lengths = np.zeros(len(terms), dtype=np.int64)
        positions, stories = [], []
        for wanted in rounds:
            wanted = wanted[~read[wanted]]
            if len(wanted):
                position, found = self._lookup(terms[wanted], low[wanted], high[wanted], live)
                position = wanted[position]
                positions.append(position)
                stories.append(found)
                lengths += np.bincount(position, minlength=len(terms))
                read[wanted] = True
            if read.all():
                break
            unread_least = int(least[~read].min())
            first = lengths[read & (lengths > 0) & (lengths < unread_least)]
            if len(first) and int(first.sum()) + unread_least > budget:
                break
        lengths[~read] = 0  # not read: none of them is taken
        position, found = np.concatenate(positions), np.concatenate(stories)
        order = np.argsort(lengths, kind="stable")  # fewest first; ties keep the order of terms
        order = order[lengths[order] > 0]
        if not len(order):
            return position[:0], found[:0]
        chosen = order[: max(1, int(np.searchsorted(np.cumsum(lengths[order]), budget, side="right")))]
        taken = np.zeros(len(terms), dtype=bool)
        taken[chosen] = True
        kept = taken[position]
        return position[kept], found[kept]

    def compact(self, live: np.ndarray) -> None:
        """Drop every pair whose story is not ``live``."""
        self._merge_pending()
        self._keys = self._live_keys(live)

    def as_dict(self, live: np.ndarray) -> dict[int, set[int]]:
        """{term: live stories}, for inspection."""
        self._merge_pending()
        keys = self._live_keys(live)
        out: dict[int, set[int]] = {}
        for term, story in zip((keys >> 32).tolist(), (keys & 0xFFFFFFFF).tolist()):
            out.setdefault(term, set()).add(story)
        return out

    def _live_keys(self, live: np.ndarray) -> np.ndarray:
        """The merged pairs whose story is ``live``."""
        return self._keys[_live(self._keys & 0xFFFFFFFF, live)]

    def __len__(self) -> int:
        """Pairs held, stories that left included until compacted (a pair pending and
        merged both counts twice)."""
        return len(self._keys) + len(self._pending)
