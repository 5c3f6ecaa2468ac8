"""Story assignment: join an existing story, open a new one, or merge two.

``StoryIndex`` is the in-memory view of the stories the caller has stored: their
centroids, time spans and members, the near-duplicate index and document
frequencies. It is a cache: the caller rebuilds it from its store by replaying
``add`` (and ``merge``), and asks ``assign`` only for a decision, which it applies
with ``add`` once the decision is stored.

Scoring (``score``): every story active within ``window_days`` of the article's
``published_at`` that shares a key term with it is described by

    title, body, names   cosines of the article to the story centroid per field,
                         TF-IDF weighted with streaming document frequencies (an
                         untitled side takes its body cosine as title cosine)
    time_decay           exp(-(d / time_scale)**2 / 2), d = days outside the story's span
    days_outside         d / window_days
    log_size             ln(1 + articles in the story)
    semantic             cosine of the article's sentence embedding to the sum of its
                         members' (``clustering.embed``): reports of one event told
                         in other words

and its score is the probability, under a logistic model (``DecisionModel``, fitted by
``evaluation.calibrate`` on labelled news and shipped as ``decision.json``), that the
article belongs to that story. The article joins the best story when its score
reaches ``threshold``; other stories at ``merge_threshold`` or above are merged in.

Long-running stories: when no story in the window takes the article, the stories the
index still holds beyond the window (up to ``max_far_candidates`` of them, sharing the
most key terms) are scored too, as if they lay at the window's edge: the model was
fitted inside the window, and the edge is the farthest it has seen. Such a story takes
the article only at ``merge_threshold``, as strongly as an article must bind a second
story to merge it: a follow-up months later that retells the event joins, while
another event among the same people and places (a second summit, a new launch) opens
a story of its own. A far join never merges stories.

A headline alone (``is_headline``: a title and no body of its own) is scored by a
model of its own, fitted on headlines; it joins a story only at ``headline_threshold``
and merges two only where both reach ``merge_threshold`` and that threshold. Six to
ten words are little evidence, and a wrong join shows readers one story that is really
two, so headlines are decided for precision. (A copy of an earlier text, headline or
not, still follows its original as a near-duplicate.)

Headline stories regroup: a feed of headlines opens one story many times over before
two of its headlines meet, and the halves rarely meet through one headline. So once a
headline joins a story of headlines alone that then holds ``regroup_members`` or more,
the story as a whole (its summed title and name vectors and embeddings, as one long
headline) is scored against the other such stories by the headline model, and the best
at ``regroup_threshold`` is merged in: many headlines are better evidence than one.
Once such a story holds ``absorb_members`` or more, it also takes in every story of
headlines alone holding fewer than that which it scores ``absorb_threshold`` against:
the headlines a feed filed on their own, or in twos and threes, before the story they
belong to had grown enough to take them.
"""

from __future__ import annotations

import gc
import heapq
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from clustering.candidates import DUPLICATE_JACCARD, NearDuplicateIndex, StoryPostings
from clustering.embed import DIMENSIONS
from clustering.vectorise import (
    FIELDS,
    N_FEATURES,
    ArticleFeatures,
    DocumentFrequencies,
    PackedFeatures,
    is_headline,
    normalise_rows,
)

DAY = 86400.0
# An event is a burst of coverage: an article more than this many days from every
# article of the story it matches reports a new development, which opens a story of
# its own in the same thread. (The event labels of ``stories evaluate --level event``
# are cut by the same rule.)
EVENT_GAP_DAYS = 14.0


FEATURES = ("title", "body", "names", "time_decay", "days_outside", "log_size", "semantic")
MODEL_PATH = Path(__file__).with_name("decision.json")


@dataclass(frozen=True)
class DecisionModel:
    """Logistic model over ``FEATURES``: P(article belongs to story)."""

    coef: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        if len(self.coef) != len(FEATURES):
            raise ValueError(f"a decision model needs {len(FEATURES)} coefficients, one per {FEATURES}")

    def probability(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(X @ np.asarray(self.coef) + self.intercept)))


def load_calibration(path: Path = MODEL_PATH) -> dict:
    """The shipped calibration: model coefficients and decision thresholds."""
    data = json.loads(path.read_text())
    if list(data["features"]) != list(FEATURES):
        raise ValueError(f"{path} was fitted on features {data['features']}, this build uses {FEATURES}")
    if "headline" not in data:
        raise ValueError(
            f"{path} has no headline model: it predates this build; use the shipped clustering/decision.json"
        )
    return data


CALIBRATION = load_calibration()


@dataclass(frozen=True)
class AssignParams:
    """Decision parameters; the models and thresholds come from ``evaluation.calibrate``."""

    threshold: float = CALIBRATION["threshold"]
    merge_threshold: float = CALIBRATION["merge_threshold"]
    window_days: float = CALIBRATION["window_days"]
    time_scale_days: float = CALIBRATION["time_scale_days"]
    candidate_terms: int = 24
    max_candidates: int = 64
    max_far_candidates: int = 8
    max_postings: int = 8192
    event_gap_days: float | None = EVENT_GAP_DAYS
    # A story beyond the window that an article scores at least this against, without
    # joining it, takes the article's new story into its thread: the ongoing story back
    # in the news months later. (Chosen on ``giveme5w1h/`` threads, docs/quality.md.)
    thread_link_threshold: float = CALIBRATION["thread_link_threshold"]
    model: DecisionModel = DecisionModel(tuple(CALIBRATION["coef"]), CALIBRATION["intercept"])
    headline_threshold: float = CALIBRATION["headline"]["threshold"]
    # Stories of headlines alone this large regroup at this headline-model score (None:
    # never), and one this large takes in the smaller ones at this score (None: never).
    # Chosen on ``uci_titles/``, the one headline feed with labels: the calibration set
    # has too few headlines to fit them (docs/quality.md).
    regroup_members: int = 4
    regroup_threshold: float | None = 0.95
    absorb_members: int = 16
    absorb_threshold: float | None = 0.92
    headline_model: DecisionModel = DecisionModel(
        tuple(CALIBRATION["headline"]["coef"]), CALIBRATION["headline"]["intercept"]
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if not 0.0 < self.headline_threshold <= 1.0:
            raise ValueError("headline_threshold must be in (0, 1]")
        if self.merge_threshold < self.threshold:
            raise ValueError("merge_threshold must not be below threshold")
        if self.window_days <= 0 or self.time_scale_days <= 0:
            raise ValueError("window_days and time_scale_days must be positive")
        if self.max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")
        if self.max_far_candidates < 0:
            raise ValueError("max_far_candidates must not be negative (0 turns joins beyond the window off)")
        if self.max_postings < 1:
            raise ValueError("max_postings must be at least 1")
        if not 0.0 < self.thread_link_threshold <= 1.0:
            raise ValueError("thread_link_threshold must be in (0, 1]")
        if self.regroup_threshold is not None and not 0.0 < self.regroup_threshold <= 1.0:
            raise ValueError("regroup_threshold must be in (0, 1] (None: headline stories never regroup)")
        if self.regroup_members < 2:
            raise ValueError("regroup_members must be at least 2 (a story, not one headline)")
        if self.absorb_threshold is not None and not 0.0 < self.absorb_threshold <= 1.0:
            raise ValueError("absorb_threshold must be in (0, 1] (None: headline stories never take in smaller ones)")
        if self.absorb_members < 2:
            raise ValueError("absorb_members must be at least 2 (a story, not one headline)")
        if self.event_gap_days is not None and self.event_gap_days <= 0:
            raise ValueError("event_gap_days must be positive (None: a story is one event however long it runs)")


# Which rule decided an assignment: a copy's original, the best story at the threshold,
# none, a new event of a story that went quiet, a new event of a story beyond the window
# (at the merge bar, or at the thread link bar without joining it).
Rule = Literal["near_duplicate", "join", "new", "new_event", "continued"]
EXPLAINED = 3  # candidate stories an assignment keeps, with their features
# Stories that may leave the index before their postings are dropped in one pass: at a
# million stored (~7M pairs) a pass is a few tens of milliseconds.
_COMPACT_AFTER = 1024
# A story keeps its fields' sums in one ``_Sum``, keyed ``field number * N_FEATURES + term``
# (fields in ``FIELDS`` order): two arrays a story, read by scoring as they are.
_FIELD_SPAN = N_FEATURES
_WEIGHT = np.float32  # a story sum's weights (``_Sum``)


@dataclass(frozen=True)
class Candidate:
    """A story an article was scored against: its probability and ``FEATURES`` values."""

    story_id: int
    probability: float
    features: tuple[float, ...]


@dataclass(frozen=True)
class Assignment:
    """What to do with one article.

    ``story_id`` None means open a new story; ``thread_of``, when set, is the earlier
    event the new one continues (its thread is the new story's). ``merge`` lists other
    stories the article binds strongly enough that they should be folded into
    ``story_id``.
    """

    story_id: int | None
    score: float
    duplicate_of: int | None = None
    duplicate_similarity: float = 0.0
    merge: tuple[int, ...] = ()
    thread_of: int | None = None
    rule: Rule = "new"
    threshold: float = 0.0  # the bar the best story had to reach (0 for a near-duplicate)
    headline: bool = False  # decided by the headline model
    candidates: tuple[Candidate, ...] = ()  # the best few stories scored, best first


def explanation(decision: Assignment) -> dict:
    """The decision as it was made, in plain values, to be stored with the article: which
    rule decided, the score and the bar, and the best few stories scored with their
    ``FEATURES`` values (for a near-duplicate: its original and estimated Jaccard).

    >>> explanation(Assignment(None, 0.1, rule="new", threshold=0.24))["rule"]
    'new'
    """
    return {
        "rule": decision.rule,
        "score": round(decision.score, 4),
        "threshold": round(decision.threshold, 4),
        "model": "headline" if decision.headline else "article",
        "duplicate_of": decision.duplicate_of,
        "jaccard": round(decision.duplicate_similarity, 4) if decision.duplicate_of is not None else None,
        "thread_of": decision.thread_of,
        "merged": list(decision.merge),
        "candidates": [
            {"cluster_id": c.story_id, "probability": c.probability, "features": dict(zip(FEATURES, c.features))}
            for c in decision.candidates
        ],
    }


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """A stored article as ``StoryIndex.add_many`` replays it."""

    article_id: int
    story_id: int
    published_at: datetime
    packed: PackedFeatures
    signature: np.ndarray
    duplicate_of: int | None = None


class MemberVectors:
    """Where a ``StoryIndex`` finds its members' term vectors, packed.

    A story is scored by its sums, never by its members one by one: their vectors are
    read only when a story leaves the window (their terms go to the archive of document
    frequencies), when stories merge (the survivor is posted under the absorbed
    members' terms) and for ``centrality``. This one holds them in memory. A caller that
    stores every article's vectors can keep them there instead and read them back at
    those moments (``app.service.vectors``), which saves ~1.7 KB a member. Never an
    embedding: that is in the story's ``meaning`` already, and whoever takes a member
    out hands its features back (``remove``, ``move``).
    """

    def __init__(self) -> None:
        self._held: dict[int, PackedFeatures] = {}

    def put(self, article_id: int, packed: PackedFeatures) -> None:
        """An article just added (its stored form may not be committed yet)."""
        self._held[article_id] = PackedFeatures(packed.indices, packed.data, packed.ends)

    def replayed(self, article_ids: Sequence[int], packed: Sequence[PackedFeatures]) -> None:
        """Stored articles replayed into the index (a rebuild)."""
        for article_id, p in zip(article_ids, packed):
            self.put(article_id, p)

    def get(self, article_ids: Iterable[int]) -> dict[int, PackedFeatures]:
        """The vectors of ``article_ids`` (KeyError for an article never put)."""
        return {article_id: self._held[article_id] for article_id in article_ids}

    def drop(self, article_ids: Iterable[int]) -> None:
        """Articles the index no longer holds."""
        for article_id in article_ids:
            self._held.pop(article_id, None)

    def __len__(self) -> int:
        """Articles whose vectors are held in memory."""
        return len(self._held)


class _Sum:
    """A sparse sum of term vectors: sorted term indices and their summed weights.

    Plain arrays rather than a ``csr_matrix``: adding an article is an insertion into
    sorted arrays, and a candidate's centroid is read without building a matrix. The
    weights are float32, the form articles' weights are stored in: a term of one member
    sums to that member's weight exactly, so it is exactly zero once the member leaves,
    and a sum of many members is off by parts in ten million, far below what moves a
    decision. (float64 weights would make the sums half as large again: ~53 MiB more at a
    million stored.)
    """

    __slots__ = ("indices", "data")

    def __init__(self) -> None:
        self.indices = np.empty(0, dtype=np.int32)
        self.data = np.empty(0, dtype=_WEIGHT)

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def add(self, indices: np.ndarray, data: np.ndarray, sign: float = 1.0) -> None:
        """Add (``sign`` -1: subtract) a vector; terms that sum to exactly zero are dropped."""
        if len(indices) == 0:
            return
        order = np.argsort(indices, kind="stable")
        indices, data = indices[order], (sign * data[order]).astype(_WEIGHT, copy=False)
        at = np.searchsorted(self.indices, indices)
        found = at < len(self.indices)
        found[found] = self.indices[at[found]] == indices[found]
        self.data[at[found]] += data[found]
        new = ~found
        if new.any():
            self.indices = np.insert(self.indices, at[new], indices[new].astype(np.int32))
            self.data = np.insert(self.data, at[new], data[new])
        if sign < 0:
            kept = self.data != 0.0
            if not kept.all():
                self.indices, self.data = self.indices[kept], self.data[kept]

    def add_sum(self, other: _Sum) -> None:
        self.add(other.indices, other.data)

    def _field_bounds(self, name: str) -> tuple[int, int, int]:
        """(the field's key offset, where its entries start and end) in a story sum."""
        offset = FIELDS.index(name) * _FIELD_SPAN
        low, high = np.searchsorted(self.indices, (offset, offset + _FIELD_SPAN)).tolist()
        return offset, low, high

    def field(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A story sum's term indices and weights in one field (the weights a view)."""
        offset, low, high = self._field_bounds(name)
        return self.indices[low:high] - offset, self.data[low:high]

    def field_nnz(self, name: str) -> int:
        _, low, high = self._field_bounds(name)
        return high - low

    @classmethod
    def of(cls, indices: np.ndarray, data: np.ndarray) -> _Sum:
        """A sum already made: sorted, distinct ``indices`` and their weights."""
        made = cls()
        made.indices, made.data = indices.astype(np.int32), data.astype(_WEIGHT)
        return made

    def matrix(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.data.copy(), self.indices.copy(), np.array([0, self.nnz])), shape=(1, N_FEATURES))


def _keyed(feats: ArticleFeatures) -> tuple[np.ndarray, np.ndarray]:
    """An article's fields as one vector of story-sum keys (``_FIELD_SPAN``) and weights."""
    vectors = [feats.field(name) for name in FIELDS]
    keys = np.concatenate([v.indices.astype(np.int32) + f * _FIELD_SPAN for f, v in enumerate(vectors)])
    return keys, np.concatenate([v.data for v in vectors])


@dataclass
class _Story:
    id: int
    first: datetime
    last: datetime
    sums: _Sum  # every field's members' vectors summed, keyed by field and term (``_FIELD_SPAN``)
    # Members' embeddings, summed (float32: float16 vectors add up exactly enough).
    meaning: np.ndarray = field(default_factory=lambda: np.zeros(DIMENSIONS, dtype=np.float32))
    members: dict[int, datetime] = field(default_factory=dict)  # article id -> published at


class _Spans:
    """Every story's first and last published time (POSIX seconds) in arrays indexed by
    story id, so candidates are sorted and split in and beyond the window with array
    operations, not a loop over every story that shares a term."""

    def __init__(self) -> None:
        self.first = np.zeros(0)
        self.last = np.zeros(0)
        self.live = np.zeros(0, dtype=bool)

    def set(self, story: _Story) -> None:
        if story.id >= len(self.live):
            size = max(story.id + 1, 2 * len(self.live), 1024)
            self.first, self.last = np.resize(self.first, size), np.resize(self.last, size)
            self.live = np.concatenate([self.live, np.zeros(size - len(self.live), dtype=bool)])
        self.first[story.id] = story.first.timestamp()
        self.last[story.id] = story.last.timestamp()
        self.live[story.id] = True

    def drop(self, story_id: int) -> None:
        if story_id < len(self.live):
            self.live[story_id] = False

    def days_outside(self, ids: np.ndarray, at: float) -> np.ndarray:
        first, last = self.first[ids], self.last[ids]
        return np.where(at < first, first - at, np.where(at > last, at - last, 0.0)) / DAY


def _most_shared(ids: np.ndarray, shared: np.ndarray, last: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` of ``ids`` that share the most key terms (``shared``),
    ties: the newest (``last``), then the lowest id; in that order. At a million stored
    thousands of stories share a term with an article: only those that may be among the
    first ``count`` are sorted (a three-key sort of 8,000 costs ~1 ms).

    >>> _most_shared(np.array([1, 2, 3, 4]), np.array([1, 2, 1, 1]), np.array([5.0, 0.0, 7.0, 7.0]), 3).tolist()
    [2, 3, 4]
    """
    if count <= 0:
        return ids[:0]
    if len(ids) > count:
        bar = np.partition(shared, len(ids) - count)[len(ids) - count]  # the count-th most shared
        keep = shared > bar
        tied = np.flatnonzero(shared == bar)
        room = count - int(keep.sum())
        if room < len(tied):
            newest = np.partition(last[tied], len(tied) - room)[len(tied) - room]
            tied = tied[last[tied] >= newest]  # more than ``room`` only on equal times: the sort takes by id
        keep[tied] = True
        ids, shared, last = ids[keep], shared[keep], last[keep]
    return ids[np.lexsort((ids, -last, -shared))[:count]]


def _days_outside(at: datetime, first: datetime, last: datetime) -> float:
    if at < first:
        return (first - at).total_seconds() / DAY
    if at > last:
        return (at - last).total_seconds() / DAY
    return 0.0


class StoryIndex:
    """Active stories, near-duplicates and document frequencies, in memory.

    With a ``horizon_days``, the index covers a window: a story whose newest article
    is older than the start of the window (``horizon_start``: the newest article added,
    the stream's clock ``clock_``, less the horizon, floored to the UTC day) leaves it
    with its articles' vectors and signatures. Nothing joins it afterwards. Document
    frequencies keep counting what left; those counts are kept apart in ``archive_`` so
    the caller can store them. Which stories are in the window depends only on the
    articles added, so ``load_archive`` followed by replaying the stored articles of the
    stories inside the window rebuilds the same index.
    """

    def __init__(
        self,
        params: AssignParams | None = None,
        horizon_days: float | None = None,
        vectors: MemberVectors | None = None,
    ):
        if horizon_days is not None and horizon_days <= 0:
            raise ValueError("horizon_days must be positive (or None to keep every story)")
        self.params = params or AssignParams()
        self.horizon_days = horizon_days
        self.vectors = vectors if vectors is not None else MemberVectors()
        self.clock_: datetime | None = None
        self._expiry: list[tuple[datetime, int]] = []  # (a story's newest article, story id), a heap
        self.archive_ = DocumentFrequencies()  # document frequencies of the articles that left
        self.evictions_ = 0  # how many times stories left (the caller stores ``archive_`` when it moves)
        self.stories_: dict[int, _Story] = {}
        self.article_story_: dict[int, int] = {}
        self.duplicate_root_: dict[int, int] = {}
        self.near_duplicates_ = NearDuplicateIndex()
        self.df_ = DocumentFrequencies()
        self.postings_ = StoryPostings()
        self._left_since_compacted = 0  # stories that left since the postings were last compacted
        self._spans = _Spans()
        # Dense scratch rows, zero between uses (the article's weighted fields, side by side).
        self._query = np.zeros(len(FIELDS) * N_FEATURES)

    # -- reading ---------------------------------------------------------------

    def story_of(self, article_id: int) -> int | None:
        return self.article_story_.get(article_id)

    def postings(self) -> dict[int, set[int]]:
        """{term: the stories in the index posted under it} (see ``_posting_terms``)."""
        return self.postings_.as_dict(self._spans.live)

    def _key_terms(self, feats: ArticleFeatures) -> np.ndarray:
        """The article's most distinctive terms: all title and name terms, top body terms."""
        body = feats.body
        top = body.indices
        if body.nnz > self.params.candidate_terms:
            weight = body.data * self.df_.idf(body.indices)
            top = body.indices[np.argpartition(-weight, self.params.candidate_terms)[: self.params.candidate_terms]]
        return np.unique(np.concatenate([feats.title.indices, feats.names.indices, top]))

    def _posting_terms(self, feats: ArticleFeatures) -> np.ndarray:
        """The terms a stored article is found by: all title and name terms, its most
        frequent body terms. Unlike the query side, no document frequencies take part,
        so the postings depend only on which articles a story holds (a rebuild makes
        the same ones whatever it replays first)."""
        body = feats.body
        top = body.indices
        if body.nnz > self.params.candidate_terms:
            order = np.lexsort((body.indices, -body.data))  # by weight, ties by term
            top = body.indices[order[: self.params.candidate_terms]]
        return np.unique(np.concatenate([feats.title.indices, feats.names.indices, top]))

    def _candidate_stories(self, feats: ArticleFeatures, published_at: datetime) -> tuple[list[_Story], list[_Story]]:
        """Stories sharing key terms with the article: those in the time window (at most
        ``max_candidates``) and those the index holds beyond it (at most
        ``max_far_candidates``), each list the stories sharing the most (ties: the
        newest, then the lowest id), so the cost of scoring stays flat however many
        stories the index holds.

        Finding them is bounded too: the key terms' postings are counted rarest first,
        up to ``max_postings`` story ids (``StoryPostings.rarest``; at least the rarest
        term). A term many stories share says little about which one is the article's,
        and counting it would make every article cost more as the window fills; the
        terms that cannot be taken are not read at all.
        """
        _, found = self.postings_.rarest(
            self._key_terms(feats), self._spans.live, self.params.max_postings, self._left_since_compacted
        )
        if not len(found):
            return [], []
        hits = np.sort(found)
        starts = np.flatnonzero(np.r_[True, hits[1:] != hits[:-1]])
        ids, shared = hits[starts], np.diff(np.r_[starts, len(hits)])
        last = self._spans.last[ids]
        inside = self._spans.days_outside(ids, published_at.timestamp()) <= self.params.window_days
        near = _most_shared(ids[inside], shared[inside], last[inside], self.params.max_candidates)
        far = _most_shared(ids[~inside], shared[~inside], last[~inside], self.params.max_far_candidates)
        return [self.stories_[int(i)] for i in near], [self.stories_[int(i)] for i in far]

    def pair_features(self, feats: ArticleFeatures, published_at: datetime) -> tuple[list[int], np.ndarray]:
        """Candidate story ids in the window and their ``FEATURES`` rows (see the module
        docstring)."""
        stories, _ = self._candidate_stories(feats, published_at)
        return [s.id for s in stories], self._describe(feats, published_at, stories)

    def _describe(self, feats: ArticleFeatures, published_at: datetime, stories: list[_Story]) -> np.ndarray:
        """``FEATURES`` rows of the article against ``stories``; a story beyond the window
        is described as if it lay at the window's edge."""
        X = np.zeros((len(stories), len(FEATURES)))
        if not stories:
            return X
        X[:, :3] = self._field_cosines(feats, stories)
        # The title is field 0: its keys come first in a story's sums.
        untitled = np.array([not s.sums.nnz or s.sums.indices[0] >= _FIELD_SPAN for s in stories])
        untitled |= feats.title.nnz == 0
        if is_headline(feats):
            # A headline has no body to stand in: its title meets an untitled story's body.
            X[untitled, 0] = self._centroid_cosines(feats.title, [s for s, u in zip(stories, untitled) if u], "body")
        else:
            X[untitled, 0] = X[untitled, 1]
        days = np.array([_days_outside(published_at, s.first, s.last) for s in stories])
        days = np.minimum(days, self.params.window_days)
        X[:, 3] = np.exp(-0.5 * (days / self.params.time_scale_days) ** 2)
        X[:, 4] = days / self.params.window_days
        X[:, 5] = np.log1p([len(s.members) for s in stories])
        X[:, 6] = self._semantic_cosines(feats.embedding, stories)
        return X

    @staticmethod
    def _semantic_cosines(embedding: np.ndarray | None, stories: list[_Story]) -> np.ndarray:
        """Cosine of an article's embedding to each story's summed embeddings (0 where
        either has none)."""
        if embedding is None:
            return np.zeros(len(stories))
        meanings = np.stack([s.meaning for s in stories])
        norms = np.linalg.norm(meanings, axis=1)
        return (meanings @ embedding.astype(np.float64)) / np.where(norms > 0, norms, 1.0)

    def _field_cosines(self, feats: ArticleFeatures, stories: list[_Story]) -> np.ndarray:
        """``_centroid_cosines`` of every field at once, one column a field: the stories'
        sums are read in one pass, field k of story i as row 3i + k, and the article's
        weighted fields sit side by side in one scratch row, where a story-sum key
        (``_FIELD_SPAN``) finds its field's weight."""
        n, k = len(stories), len(FIELDS)
        keys = np.concatenate([s.sums.indices for s in stories])
        owner = np.repeat(np.arange(n), [s.sums.nnz for s in stories])
        rows = owner * k + keys // _FIELD_SPAN
        centroid = np.concatenate([s.sums.data for s in stories]) * self.df_.idf(keys % _FIELD_SPAN)
        lengths = np.sqrt(np.bincount(rows, weights=centroid * centroid, minlength=n * k))
        placed = []
        for column, name in enumerate(FIELDS):
            vector = feats.field(name)
            weights = vector.data * self.df_.idf(vector.indices)
            norm = np.sqrt(weights @ weights)
            if norm > 0:
                slots = vector.indices.astype(np.int64) + column * N_FEATURES
                self._query[slots] = weights / norm
                placed.append(slots)
        dots = np.bincount(rows, weights=centroid * self._query[keys], minlength=n * k)
        for slots in placed:
            self._query[slots] = 0.0
        return np.divide(dots, lengths, out=np.zeros(n * k), where=lengths > 0).reshape(n, k)

    def _centroid_cosines(self, vector: sp.csr_matrix, stories: list[_Story], name: str) -> np.ndarray:
        """Cosine of an article's field vector to each story's ``name`` centroid, both
        IDF-weighted (0 where either is empty). Plain array work: the candidates' sums
        are read in one pass, with no matrix built per article."""
        n = len(stories)
        if vector.nnz == 0 or not n:
            return np.zeros(n)
        weights = vector.data * self.df_.idf(vector.indices)
        norm = np.sqrt(weights @ weights)
        if norm == 0:
            return np.zeros(n)
        sums = [story.sums.field(name) for story in stories]
        indices = np.concatenate([i for i, _ in sums])
        centroid = np.concatenate([d for _, d in sums]) * self.df_.idf(indices)
        rows = np.repeat(np.arange(n), [len(i) for i, _ in sums])
        lengths = np.sqrt(np.bincount(rows, weights=centroid * centroid, minlength=n))
        self._query[vector.indices] = weights / norm
        dots = np.bincount(rows, weights=centroid * self._query[indices], minlength=n)
        self._query[vector.indices] = 0.0
        return np.divide(dots, lengths, out=np.zeros(n), where=lengths > 0)

    def score(self, feats: ArticleFeatures, published_at: datetime) -> list[tuple[int, float]]:
        """(story id, probability of belonging) for every candidate story in the window,
        best first; a headline is scored by the headline model."""
        stories, _ = self._candidate_stories(feats, published_at)
        return self._scored(feats, published_at, stories)[0]

    def _scored(
        self, feats: ArticleFeatures, published_at: datetime, stories: list[_Story]
    ) -> tuple[list[tuple[int, float]], tuple[Candidate, ...]]:
        """(story id, probability) best first, and the best ``EXPLAINED`` as candidates."""
        if not stories:
            return [], ()
        model = self.params.headline_model if is_headline(feats) else self.params.model
        X = self._describe(feats, published_at, stories)
        scores = model.probability(X)
        order = np.argsort(-scores, kind="stable")
        explained = tuple(
            Candidate(stories[i].id, round(float(scores[i]), 4), tuple(round(float(v), 4) for v in X[i]))
            for i in order[:EXPLAINED]
        )
        return [(stories[i].id, float(scores[i])) for i in order], explained

    def assign(self, feats: ArticleFeatures, signature: np.ndarray, published_at: datetime) -> Assignment:
        """Decide where an article goes; changes nothing."""
        copies = self.near_duplicates_.query(signature, min_similarity=DUPLICATE_JACCARD)
        if copies:
            best = copies[0]
            root = self.duplicate_root_.get(best.article_id, best.article_id)
            story = self.article_story_.get(root, self.article_story_.get(best.article_id))
            return Assignment(
                story, 1.0, duplicate_of=root, duplicate_similarity=best.similarity, rule="near_duplicate"
            )
        near, far = self._candidate_stories(feats, published_at)
        ranked, explained = self._scored(feats, published_at, near)
        headline = is_headline(feats)
        threshold = self.params.headline_threshold if headline else self.params.threshold
        why = {"threshold": threshold, "headline": headline, "candidates": explained}
        merge_at = max(self.params.merge_threshold, threshold)
        if not ranked or ranked[0][1] < threshold:
            beyond, far_explained = self._scored(feats, published_at, far)
            if beyond and beyond[0][1] >= merge_at:  # a long-running story, retold: never merges
                story_id, score = beyond[0]
                why = {**why, "threshold": merge_at, "candidates": far_explained}
                if self._quiet_since(story_id, published_at):
                    return Assignment(None, score, thread_of=story_id, rule="continued", **why)
                return Assignment(story_id, score, rule="join", **why)
            if not headline and beyond and beyond[0][1] >= self.params.thread_link_threshold:
                story_id, score = beyond[0]
                why = {**why, "threshold": self.params.thread_link_threshold, "candidates": far_explained}
                return Assignment(None, score, thread_of=story_id, rule="continued", **why)
            return Assignment(None, ranked[0][1] if ranked else 0.0, rule="new", **why)
        same_event = [(sid, s) for sid, s in ranked if s >= threshold and not self._quiet_since(sid, published_at)]
        if not same_event:  # it belongs to a story that went quiet: a new event of it
            return Assignment(None, ranked[0][1], thread_of=ranked[0][0], rule="new_event", **why)
        best_id, best_score = same_event[0]
        merge = tuple(sid for sid, s in same_event[1:] if s >= merge_at)
        if headline:
            merge += self._regrouped(feats, published_at, best_id, merge)
        return Assignment(best_id, best_score, merge=merge, rule="join", **why)

    def _regrouped(
        self, feats: ArticleFeatures, published_at: datetime, story_id: int, merging: tuple[int, ...]
    ) -> tuple[int, ...]:
        """The stories of headlines alone that ``story_id``, joined by the headline
        ``feats``, regroups with (see the module docstring): the best of those holding
        ``regroup_members`` or more at ``regroup_threshold``, and once it holds
        ``absorb_members``, every one holding fewer than that at ``absorb_threshold``,
        best first."""
        params = self.params
        story = self.stories_[story_id]
        size = len(story.members) + 1
        regroups = params.regroup_threshold is not None and size >= params.regroup_members
        absorbs = params.absorb_threshold is not None and size >= params.absorb_members
        if not (regroups or absorbs) or not _headlines_alone(story):
            return ()
        whole = _as_headline(story, feats)
        others = [
            s
            for s in self._candidate_stories(whole, published_at)[0]
            if s.id != story_id
            and s.id not in merging
            and _headlines_alone(s)
            and (absorbs or len(s.members) >= params.regroup_members)
            and not self._quiet_since(s.id, published_at)
        ]
        if not others:
            return ()
        scores = params.headline_model.probability(self._describe(whole, published_at, others))
        sizes = np.array([len(s.members) for s in others])
        taken: tuple[int, ...] = ()
        peers = np.flatnonzero(sizes >= params.regroup_members)
        if regroups and len(peers):
            best = peers[np.argmax(scores[peers])]
            if scores[best] >= params.regroup_threshold:
                taken = (others[best].id,)
        if absorbs:
            # Best first: where editors keep some of the stories apart, the best are kept.
            smaller = np.flatnonzero((sizes < params.absorb_members) & (scores >= params.absorb_threshold))
            smaller = smaller[np.argsort(-scores[smaller], kind="stable")]
            taken += tuple(others[i].id for i in smaller if others[i].id not in taken)
        return taken

    def _quiet_since(self, story_id: int, published_at: datetime) -> bool:
        """Whether the story has no article within ``event_gap_days`` of ``published_at``
        (either side of its span): the article then reports a later (or earlier) event."""
        gap = self.params.event_gap_days
        if gap is None:
            return False
        story = self.stories_[story_id]
        return _days_outside(published_at, story.first, story.last) > gap

    # -- learning --------------------------------------------------------------

    def add(
        self,
        article_id: int,
        story_id: int,
        published_at: datetime,
        feats: ArticleFeatures,
        signature: np.ndarray,
        duplicate_of: int | None = None,
        evict: bool = True,
    ) -> None:
        """Record a stored article as a member of ``story_id``.

        ``evict=False`` holds stories in the window until ``settle``: a rebuild replays a
        story's old members before the newer one that keeps it in the window.
        """
        self._attach(story_id, article_id, published_at, feats)
        if duplicate_of is not None:
            self.duplicate_root_[article_id] = self.duplicate_root_.get(duplicate_of, duplicate_of)
        self.near_duplicates_.add(article_id, signature)
        self.df_.add(feats.terms)
        if self.clock_ is None or published_at > self.clock_:
            self.clock_ = published_at
        if evict:
            self.settle()

    def add_many(self, articles: Sequence[StoredArticle]) -> None:
        """Replay stored articles in one pass, as ``add(..., evict=False)`` of each in
        order would (a rebuild; ``settle`` afterwards). Array work over all of them:
        the stories' sums are one sparse matrix a field, summed as it is built; the
        near-duplicate index is sorted once; postings and document frequencies are
        counted over every article at once."""
        if not articles:
            return
        with _collector_paused():
            self._add_many(articles)

    def _add_many(self, articles: Sequence[StoredArticle]) -> None:
        n = len(articles)
        story_ids, slot = np.unique(np.fromiter((a.story_id for a in articles), np.int64, n), return_inverse=True)
        packed = [a.packed for a in articles]
        per_field = {}
        for name in FIELDS:
            parts = [p.field_arrays(name) for p in packed]
            lengths = np.fromiter((len(i) for i, _ in parts), np.int64, n)
            indices = np.concatenate([i for i, _ in parts])
            data = np.concatenate([d for _, d in parts]).astype(np.float64)
            # Duplicate (story, term) entries are summed as the matrix is built.
            sums = sp.csr_matrix((data, (np.repeat(slot, lengths), indices)), shape=(len(story_ids), N_FEATURES))
            sums.sort_indices()
            per_field[name] = (sums, lengths, indices, data)
        embedded = np.flatnonzero([p.embedding is not None for p in packed])
        owner = sp.csr_matrix(
            (np.ones(len(embedded)), (slot[embedded], np.arange(len(embedded)))), shape=(len(story_ids), len(embedded))
        )
        meanings = (
            owner @ np.stack([packed[i].embedding for i in embedded]).astype(np.float64) if len(embedded) else None
        )
        first_at: dict[int, datetime] = {}  # by story slot: the datetimes themselves, as ``add`` keeps them
        last_at: dict[int, datetime] = {}
        for k, a in zip(slot.tolist(), articles):
            if k not in first_at or a.published_at < first_at[k]:
                first_at[k] = a.published_at
            if k not in last_at or a.published_at > last_at[k]:
                last_at[k] = a.published_at
        fields = [per_field[name][0] for name in FIELDS]
        for k, story_id in enumerate(story_ids.tolist()):
            story = self.stories_.get(story_id)
            spans = [(sums.indptr[k], sums.indptr[k + 1]) for sums in fields]
            made = _Sum.of(
                np.concatenate([s.indices[a:b] + f * _FIELD_SPAN for f, (s, (a, b)) in enumerate(zip(fields, spans))]),
                np.concatenate([s.data[a:b] for s, (a, b) in zip(fields, spans)]),
            )
            if story is None:
                story = _Story(story_id, first_at[k], last_at[k], made)
                self.stories_[story_id] = story
            else:
                story.sums.add_sum(made)
                story.first, story.last = min(story.first, first_at[k]), max(story.last, last_at[k])
            if meanings is not None:
                story.meaning += meanings[k].astype(np.float32)
            self._spans.set(story)
            self._expires(story)
        for a in articles:
            story = self.stories_[a.story_id]
            story.members[a.article_id] = a.published_at
            self.article_story_[a.article_id] = story.id
            if a.duplicate_of is not None:
                self.duplicate_root_[a.article_id] = self.duplicate_root_.get(a.duplicate_of, a.duplicate_of)
        self.vectors.replayed([a.article_id for a in articles], packed)
        self._post_many(story_ids, slot, per_field)
        self.df_.add_many(self._terms_many(n, per_field), n)
        self.near_duplicates_.add_many(
            np.fromiter((a.article_id for a in articles), np.int64, n), np.stack([a.signature for a in articles])
        )
        newest = max(a.published_at for a in articles)
        if self.clock_ is None or newest > self.clock_:
            self.clock_ = newest

    def _post_many(self, story_ids: np.ndarray, slot: np.ndarray, per_field: dict) -> None:
        """``_posting_terms`` of many articles at once, into the postings of their stories:
        every title and name term, and each body's ``candidate_terms`` heaviest (ties: the
        lower term)."""
        _, lengths, indices, data = per_field["body"]
        article = np.repeat(np.arange(len(lengths)), lengths)
        order = np.lexsort((indices, -data, article))
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        top = order[np.arange(len(order)) - starts < self.params.candidate_terms]
        pairs = [(article[top], indices[top])]
        for name in ("title", "names"):
            _, lengths, indices, _ = per_field[name]
            pairs.append((np.repeat(np.arange(len(lengths)), lengths), indices))
        stories = story_ids[slot[np.concatenate([a for a, _ in pairs])]]
        self.postings_.add_pairs(np.concatenate([t for _, t in pairs]), stories)

    @staticmethod
    def _terms_many(n: int, per_field: dict) -> np.ndarray:
        """Each article's distinct terms (``ArticleFeatures.terms``), all together: an
        article's entries in one sparse row, where a term in two fields sums to one entry."""
        rows = np.concatenate([np.repeat(np.arange(n), per_field[name][1]) for name in FIELDS])
        terms = np.concatenate([per_field[name][2] for name in FIELDS])
        present = sp.csr_matrix((np.ones(len(terms), dtype=np.int8), (rows, terms)), shape=(n, N_FEATURES))
        present.sum_duplicates()
        return present.indices

    def _attach(self, story_id: int, article_id: int, published_at: datetime, feats: ArticleFeatures) -> None:
        """Make a member of ``story_id`` (opened if new) of an article's features."""
        story = self.stories_.get(story_id)
        if story is None:
            story = _Story(story_id, published_at, published_at, _Sum())
            self.stories_[story_id] = story
        story.sums.add(*_keyed(feats))
        if feats.embedding is not None:
            story.meaning += feats.embedding
        story.first = min(story.first, published_at)
        story.last = max(story.last, published_at)
        self._spans.set(story)
        story.members[article_id] = published_at
        self.vectors.put(article_id, feats.pack())
        self.article_story_[article_id] = story_id
        self.postings_.add(self._posting_terms(feats), story_id)
        self._expires(story)

    def _detach(self, story_id: int, article_id: int, feats: ArticleFeatures) -> datetime:
        """Take an article out of its story (dropped once empty): ``feats`` are the
        article's features as it was added, embedding included, which leave the story's
        sums and meaning with it. Returns when the article was published."""
        story = self.stories_[story_id]
        published_at = story.members.pop(article_id)
        self.article_story_.pop(article_id, None)
        self.vectors.drop((article_id,))
        if not story.members:
            del self.stories_[story_id]
            self._spans.drop(story_id)
            self._left()
            return published_at
        story.sums.add(*_keyed(feats), sign=-1.0)
        if feats.embedding is not None:
            story.meaning -= feats.embedding
        times = story.members.values()
        story.first, story.last = min(times), max(times)
        self._spans.set(story)
        self._expires(story)
        return published_at

    def move(self, article_id: int, story_id: int, feats: ArticleFeatures, *, opened: bool = False) -> bool:
        """Move a held article, whose features (as it was added, embedding included) are
        ``feats``, to another story (an editor's correction): ``opened``, a story the
        correction opens. False when the article or the story is not held here (outside
        the window): the caller rebuilds the index instead."""
        old_id = self.article_story_.get(article_id)
        if old_id is None or (story_id not in self.stories_ and not opened):
            return False
        if old_id != story_id:
            published_at = self._detach(old_id, article_id, feats)
            self._attach(story_id, article_id, published_at, feats)
        return True

    def set_duplicate_of(self, article_id: int, root: int | None) -> None:
        """Record which article a held article is a copy of now (None: of none)."""
        if root is None:
            self.duplicate_root_.pop(article_id, None)
        else:
            self.duplicate_root_[article_id] = root

    def settle(self) -> None:
        """Drop every story that is outside the window at the current clock."""
        if self.clock_ is not None and (cutoff := self.horizon_start(self.clock_)) is not None:
            self._evict(cutoff)

    def advance_clock(self, at: datetime) -> None:
        """Move the stream's clock to ``at`` if it is newer; stories outside the window leave."""
        if self.clock_ is not None and at <= self.clock_:
            return
        self.clock_ = at
        self.settle()

    def horizon_start(self, clock: datetime) -> datetime | None:
        """The oldest newest-article time a story may have to stay in the window at ``clock``.

        Floored to the UTC day, so stories leave in one batch a day of stream time.
        """
        if self.horizon_days is None:
            return None
        start = clock - timedelta(days=self.horizon_days)
        return start.replace(hour=0, minute=0, second=0, microsecond=0)

    def reaches_before_window(self, published_at: datetime) -> bool:
        """Whether a story an article published then could join may have left the index
        (its published time is within ``window_days`` of the window's start, or earlier)."""
        if self.clock_ is None or (start := self.horizon_start(self.clock_)) is None:
            return False
        return published_at - timedelta(days=self.params.window_days) < start

    def outside_window(self, published_at: datetime) -> bool:
        """Whether an article published then would leave the index as soon as it is added."""
        if self.clock_ is None or (start := self.horizon_start(self.clock_)) is None:
            return False
        return published_at < start

    def load_archive(self, archive: DocumentFrequencies) -> None:
        """Start an empty index from stored document frequencies of articles that left."""
        if self.df_.n_docs_:
            raise ValueError("load_archive needs an empty index: load it before replaying articles")
        self.archive_ = archive
        self.df_ = archive.copy()

    def _expires(self, story: _Story) -> None:
        if self.horizon_days is not None:
            heapq.heappush(self._expiry, (story.last, story.id))

    def _evict(self, cutoff: datetime) -> None:
        """Drop every story whose newest article is older than ``cutoff``. Their members'
        vectors (for the archive) are read first, in one call: if that fails, the index
        is as it was."""
        popped, found = [], {}
        while self._expiry and self._expiry[0][0] < cutoff:
            entry = heapq.heappop(self._expiry)
            popped.append(entry)
            story = self.stories_.get(entry[1])
            if story is not None and story.last < cutoff:  # else merged, removed, or grown since pushed
                found[story.id] = story  # once, however often it was pushed
        leaving = list(found.values())
        if not leaving:
            return
        try:
            vectors = self.vectors.get([article_id for story in leaving for article_id in story.members])
        except BaseException:
            for entry in popped:
                heapq.heappush(self._expiry, entry)
            raise
        for story in leaving:
            del self.stories_[story.id]
            self._spans.drop(story.id)
            for article_id in story.members:
                self.article_story_.pop(article_id, None)
                self.duplicate_root_.pop(article_id, None)
                self.near_duplicates_.remove(article_id)
                self.archive_.add(vectors[article_id].terms)
            self.vectors.drop(story.members)
            self._left()
        self.evictions_ += 1

    def _left(self) -> None:
        """Count a story that left the index (evicted, merged away, emptied). Its postings
        stay until the next compaction, which comes after ``_COMPACT_AFTER`` of them, so
        no term holds more than that many pairs of stories that left (the candidate
        search's bound)."""
        self._left_since_compacted += 1
        if self._left_since_compacted > _COMPACT_AFTER:
            self.postings_.compact(self._spans.live)
            self._left_since_compacted = 0

    def remove(self, article_id: int, feats: ArticleFeatures) -> int | None:
        """Forget an article, whose features (as it was added, embedding included) are
        ``feats``; returns its story id. An emptied story is dropped."""
        story_id = self.article_story_.get(article_id)
        self.near_duplicates_.remove(article_id)
        self.duplicate_root_.pop(article_id, None)
        # Copies of a removed original are re-rooted on the earliest remaining copy.
        orphans = sorted(copy for copy, root in self.duplicate_root_.items() if root == article_id)
        if orphans:
            new_root = orphans[0]
            del self.duplicate_root_[new_root]
            for copy in orphans[1:]:
                self.duplicate_root_[copy] = new_root
        if story_id is None:
            return None
        self._detach(story_id, article_id, feats)
        self.df_.remove(feats.terms)
        self.settle()
        return story_id

    def merge(self, survivor_id: int, absorbed_id: int) -> None:
        """Fold story ``absorbed_id`` into ``survivor_id``."""
        survivor = self.stories_[survivor_id]
        absorbed = self.stories_.pop(absorbed_id)
        survivor.sums.add_sum(absorbed.sums)
        survivor.meaning += absorbed.meaning
        survivor.first = min(survivor.first, absorbed.first)
        survivor.last = max(survivor.last, absorbed.last)
        self._spans.set(survivor)
        self._spans.drop(absorbed_id)
        self._expires(survivor)
        survivor.members.update(absorbed.members)
        for article_id, packed in self.vectors.get(absorbed.members).items():
            self.article_story_[article_id] = survivor_id
            self.postings_.add(self._posting_terms(packed.unpack()), survivor_id)
        self._left()

    # -- snapshot --------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as flat arrays, no Python objects: a snapshot a process can write
        beside the database and load at start (``from_arrays``) instead of replaying
        every article of the window. Stories and their members keep their order; times
        are microseconds since the epoch. Not the members' vectors: ``vectors`` keeps
        them (``from_arrays`` is given it back)."""
        stories = list(self.stories_.values())
        members = [(article_id, at) for s in stories for article_id, at in s.members.items()]
        sums = [s.sums.field(name) for s in stories for name in FIELDS]
        arrays = {
            "clock": np.array([-1 if self.clock_ is None else _micros(self.clock_)], dtype=np.int64),
            "counters": np.array([self.evictions_, self._left_since_compacted], dtype=np.int64),
            "story_ids": np.array([s.id for s in stories], dtype=np.int64),
            "story_first": np.array([_micros(s.first) for s in stories], dtype=np.int64),
            "story_last": np.array([_micros(s.last) for s in stories], dtype=np.int64),
            "story_meaning": np.array([s.meaning for s in stories], dtype=np.float32).reshape(-1, DIMENSIONS),
            "story_members": np.array([len(s.members) for s in stories], dtype=np.int64),
            "sum_lengths": np.array([len(i) for i, _ in sums], dtype=np.int64),
            "sum_indices": _joined([i for i, _ in sums], np.int32),
            "sum_data": _joined([d for _, d in sums], _WEIGHT),
            "member_ids": np.array([a for a, _ in members], dtype=np.int64),
            "member_published": np.array([_micros(at) for _, at in members], dtype=np.int64),
            "duplicate_ids": np.array(list(self.duplicate_root_), dtype=np.int64),
            "duplicate_roots": np.array(list(self.duplicate_root_.values()), dtype=np.int64),
        }
        for prefix, frequencies in (("df", self.df_), ("archive", self.archive_)):
            n_docs, terms, counts = frequencies.to_counts()
            arrays |= {f"{prefix}_docs": np.array([n_docs]), f"{prefix}_terms": terms, f"{prefix}_counts": counts}
        arrays |= {f"near_{k}": v for k, v in self.near_duplicates_.to_arrays().items()}
        arrays |= {f"postings_{k}": v for k, v in self.postings_.to_arrays(self._spans.live).items()}
        return arrays

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        params: AssignParams | None = None,
        horizon_days: float | None = None,
        *,
        vectors: MemberVectors,
    ) -> StoryIndex:
        """The index ``to_arrays`` wrote, under ``params`` and ``horizon_days`` (the
        caller checks they are the ones it was written under), its members' vectors in
        ``vectors``. Raises ``ValueError`` on arrays that do not fit together, so a
        damaged snapshot is never half loaded."""
        with _collector_paused():
            return cls._from_arrays(arrays, params, horizon_days, vectors)

    @classmethod
    def _from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        params: AssignParams | None,
        horizon_days: float | None,
        vectors: MemberVectors,
    ) -> StoryIndex:
        index = cls(params, horizon_days, vectors)
        story_ids, counts = arrays["story_ids"], arrays["story_members"]
        n, m = len(story_ids), len(arrays["member_ids"])
        sum_lengths = arrays["sum_lengths"]
        if not (
            len(arrays["story_first"]) == len(arrays["story_last"]) == len(counts) == n
            and arrays["story_meaning"].shape == (n, DIMENSIONS)
            and len(sum_lengths) == len(FIELDS) * n
            and len(arrays["sum_indices"]) == len(arrays["sum_data"]) == sum_lengths.sum()
            and int(counts.sum()) == m == len(arrays["member_published"])
            and len(arrays["duplicate_ids"]) == len(arrays["duplicate_roots"])
        ):
            raise ValueError("index arrays do not fit together (lengths)")
        sum_indices, sum_data = arrays["sum_indices"], arrays["sum_data"]
        if len(sum_indices) and not 0 <= int(sum_indices.min()) <= int(sum_indices.max()) < N_FEATURES:
            raise ValueError(f"index arrays hold term indices outside [0, {N_FEATURES})")
        meaning = arrays["story_meaning"].astype(np.float32, copy=False)
        # A story's field sums lie one after another: as story-sum keys, one slice a story.
        field_of = np.repeat(np.tile(np.arange(len(FIELDS), dtype=np.int32), n), sum_lengths)
        sum_keys = sum_indices.astype(np.int32) + field_of * np.int32(_FIELD_SPAN)
        sum_bounds = np.concatenate([[0], np.cumsum(sum_lengths)])[:: len(FIELDS)].tolist()
        members = _datetimes(arrays["member_published"])
        member_ids = arrays["member_ids"].tolist()
        firsts, lasts = _datetimes(arrays["story_first"]), _datetimes(arrays["story_last"])
        at = 0
        for k, (story_id, count) in enumerate(zip(story_ids.tolist(), counts.tolist())):
            a, b = sum_bounds[k], sum_bounds[k + 1]
            story = _Story(story_id, firsts[k], lasts[k], _Sum.of(sum_keys[a:b], sum_data[a:b]), meaning[k])
            story.members = dict(zip(member_ids[at : at + count], members[at : at + count]))
            at += count
            index.stories_[story_id] = story
            index._spans.set(story)
            if horizon_days is not None:
                index._expiry.append((story.last, story_id))
        heapq.heapify(index._expiry)
        index.article_story_ = dict(zip(member_ids, np.repeat(story_ids, counts).tolist()))
        index.duplicate_root_ = dict(zip(arrays["duplicate_ids"].tolist(), arrays["duplicate_roots"].tolist()))
        clock = int(arrays["clock"][0])
        index.clock_ = None if clock < 0 else _datetimes(arrays["clock"])[0]
        index.evictions_, index._left_since_compacted = (int(v) for v in arrays["counters"])
        index.df_ = DocumentFrequencies.from_counts(int(arrays["df_docs"][0]), arrays["df_terms"], arrays["df_counts"])
        index.archive_ = DocumentFrequencies.from_counts(
            int(arrays["archive_docs"][0]), arrays["archive_terms"], arrays["archive_counts"]
        )
        index.near_duplicates_ = NearDuplicateIndex.from_arrays(
            {k.removeprefix("near_"): v for k, v in arrays.items() if k.startswith("near_")}
        )
        index.postings_ = StoryPostings.from_arrays({"keys": arrays["postings_keys"]})
        return index

    def centrality(self, story_id: int) -> dict[int, float] | None:
        """``member_centrality`` of a story in the index; None for a story outside it."""
        story = self.stories_.get(story_id)
        if story is None:
            return None
        return member_centrality(self.vectors.get(story.members), self.df_, story.sums)


def _headlines_alone(story: _Story) -> bool:
    """Whether every member of a story is a headline: titles, and no body among them."""
    return story.sums.field_nnz("body") == 0 and story.sums.field_nnz("title") > 0


def _as_headline(story: _Story, feats: ArticleFeatures) -> ArticleFeatures:
    """A story of headlines joined by one more, as one long headline: the members' and
    ``feats``' title and name vectors summed (then L2-normalised, as an article's are),
    and their embeddings summed and normalised."""

    def summed(name: str) -> sp.csr_matrix:
        total = _Sum.of(*story.sums.field(name))
        vector = feats.field(name)
        total.add(vector.indices, vector.data)
        return normalise_rows(total.matrix())

    meaning = story.meaning.astype(np.float64)
    if feats.embedding is not None:
        meaning = meaning + feats.embedding
    length = np.linalg.norm(meaning)
    embedding = (meaning / length).astype(np.float32) if length > 0 else None
    empty = sp.csr_matrix((1, N_FEATURES), dtype=np.float64)
    return ArticleFeatures(summed("title"), empty, summed("names"), embedding)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    """Microseconds since the epoch: a time exactly, as one integer."""
    return (at - _EPOCH) // _MICROSECOND


def _datetimes(micros: np.ndarray) -> list[datetime]:
    """Inverse of ``_micros`` for many (UTC datetimes)."""
    return [at.replace(tzinfo=UTC) for at in micros.astype("datetime64[us]").tolist()]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Build many objects without the cyclic garbage collector: it would walk the growing
    heap again and again while a bulk load makes hundreds of thousands of members (five
    times the load's own cost). None of them form cycles; it resumes as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)


def member_centrality(
    members: dict[int, ArticleFeatures | PackedFeatures],
    df: DocumentFrequencies,
    sums: _Sum | None = None,
) -> dict[int, float]:
    """Cosine of each member to the members' centroid, IDF-weighted by ``df``: by body,
    or by title in a story of headlines alone. ``sums`` are the members' story sums
    (``_Story.sums``) when the caller keeps them. All members are weighed as one matrix, so a large story
    costs array operations, not a loop of small ones."""
    ids = list(members)
    name = "body" if any(_field_nnz(members[a], "body") for a in ids) else "title"
    rows = _stack([members[a] for a in ids], name)
    total = _Sum.of(*sums.field(name)).matrix() if sums is not None else sp.csr_matrix(rows.sum(axis=0))
    centroid = df.weigh(total)
    rows.data = rows.data * df.idf(rows.indices)
    rows = normalise_rows(rows)
    # The centroid's weight at each member term, looked up in its sorted indices (a
    # dense row of N_FEATURES would cost more to clear than the story has terms).
    values = np.zeros(len(rows.indices))
    if centroid.nnz:
        at = np.minimum(np.searchsorted(centroid.indices, rows.indices), centroid.nnz - 1)
        found = centroid.indices[at] == rows.indices
        values[found] = centroid.data[at[found]]
    owner = np.repeat(np.arange(len(ids)), np.diff(rows.indptr))
    return dict(zip(ids, np.bincount(owner, weights=rows.data * values, minlength=len(ids)).tolist()))


def _field_nnz(member: ArticleFeatures | PackedFeatures, name: str) -> int:
    return member.field(name).nnz if isinstance(member, ArticleFeatures) else member.field_nnz(name)


def _stack(members: list[ArticleFeatures | PackedFeatures], name: str) -> sp.csr_matrix:
    """One field of every member as the rows of one CSR matrix (float64)."""
    parts = [
        m.field_arrays(name) if isinstance(m, PackedFeatures) else (m.field(name).indices, m.field(name).data)
        for m in members
    ]
    indptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(i) for i, _ in parts], out=indptr[1:])
    indices = np.concatenate([i for i, _ in parts]) if parts else np.empty(0, dtype=np.int32)
    data = np.concatenate([d for _, d in parts]).astype(np.float64) if parts else np.empty(0)
    return sp.csr_matrix((data, indices, indptr), shape=(len(parts), N_FEATURES))
