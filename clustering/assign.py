"""Story assignment: join an existing story, open a new one, or merge two.

``StoryIndex`` is the in-memory view of the stories the caller has stored: their
centroids, time spans and members, the near-duplicate index and document
frequencies. It is a cache: the caller rebuilds it from its store by replaying
``add`` (and ``merge``), and asks ``assign`` only for a decision, which it applies
with ``add`` once the decision is stored.

Scoring (``score``): for every story active near the article's ``published_at``,

    text  = sum_f w_f * cos(article_f, centroid_f) / sum_f w_f     f in title, body, names
    time  = exp(-(d / time_scale)**2 / 2)        d = days outside the story's own span
    score = text * time

with TF-IDF weights from streaming document frequencies. Fields empty on either side
drop out of both sums, so an article without a title is judged on its body and names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from clustering.candidates import DUPLICATE_JACCARD, NearDuplicateIndex
from clustering.vectorise import FIELDS, N_FEATURES, ArticleFeatures, DocumentFrequencies, normalise_rows

DAY = 86400.0


@dataclass(frozen=True)
class AssignParams:
    """Decision parameters, calibrated with ``stories evaluate`` on labelled news."""

    threshold: float = 0.12
    merge_threshold: float = 0.55
    window_days: float = 60.0
    time_scale_days: float = 30.0
    weights: tuple[float, float, float] = (1.0, 2.0, 1.5)  # title, body, names
    candidate_terms: int = 24

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if self.merge_threshold < self.threshold:
            raise ValueError("merge_threshold must not be below threshold")
        if self.window_days <= 0 or self.time_scale_days <= 0:
            raise ValueError("window_days and time_scale_days must be positive")


@dataclass(frozen=True)
class Assignment:
    """What to do with one article.

    ``story_id`` None means open a new story. ``merge`` lists other stories the
    article binds strongly enough that they should be folded into ``story_id``.
    """

    story_id: int | None
    score: float
    duplicate_of: int | None = None
    duplicate_similarity: float = 0.0
    merge: tuple[int, ...] = ()


@dataclass
class _Member:
    published_at: datetime
    features: ArticleFeatures


@dataclass
class _Story:
    id: int
    first: datetime
    last: datetime
    sums: dict[str, sp.csr_matrix]
    members: dict[int, _Member] = field(default_factory=dict)


def _days_outside(at: datetime, first: datetime, last: datetime) -> float:
    if at < first:
        return (first - at).total_seconds() / DAY
    if at > last:
        return (at - last).total_seconds() / DAY
    return 0.0


class StoryIndex:
    """Active stories, near-duplicates and document frequencies, in memory."""

    def __init__(self, params: AssignParams | None = None):
        self.params = params or AssignParams()
        self.stories_: dict[int, _Story] = {}
        self.article_story_: dict[int, int] = {}
        self.duplicate_root_: dict[int, int] = {}
        self.near_duplicates_ = NearDuplicateIndex()
        self.df_ = DocumentFrequencies()
        self.postings_: dict[int, set[int]] = {}
        self._query = np.zeros(N_FEATURES)  # dense scratch row: CSR @ dense is O(nnz)

    # -- reading ---------------------------------------------------------------

    def story_of(self, article_id: int) -> int | None:
        return self.article_story_.get(article_id)

    def _key_terms(self, feats: ArticleFeatures) -> np.ndarray:
        """The article's most distinctive terms: all title and name terms, top body terms."""
        body = feats.body
        top = body.indices
        if body.nnz > self.params.candidate_terms:
            weight = body.data * self.df_.idf(body.indices)
            top = body.indices[np.argpartition(-weight, self.params.candidate_terms)[: self.params.candidate_terms]]
        return np.unique(np.concatenate([feats.title.indices, feats.names.indices, top]))

    def _candidate_stories(self, feats: ArticleFeatures, published_at: datetime) -> list[_Story]:
        seen: set[int] = set()
        for term in self._key_terms(feats):
            seen.update(self.postings_.get(int(term), ()))
        window = self.params.window_days
        found = []
        for story_id in seen:
            story = self.stories_.get(story_id)
            if story is not None and _days_outside(published_at, story.first, story.last) <= window:
                found.append(story)
        return found

    def score(self, feats: ArticleFeatures, published_at: datetime) -> list[tuple[int, float]]:
        """(story id, score) for every active candidate story, best first."""
        stories = self._candidate_stories(feats, published_at)
        if not stories:
            return []
        numerator = np.zeros(len(stories))
        denominator = np.zeros(len(stories))
        for weight, name in zip(self.params.weights, FIELDS):
            article = feats.field(name)
            if article.nnz == 0:
                continue
            query = self.df_.weigh(article)
            centroids = sp.vstack([s.sums[name] for s in stories], format="csr")
            centroids.data = centroids.data * self.df_.idf(centroids.indices)
            centroids = normalise_rows(centroids)
            self._query[query.indices] = query.data
            cosines = centroids @ self._query
            self._query[query.indices] = 0.0
            present = np.diff(centroids.indptr) > 0
            numerator += weight * cosines * present
            denominator += weight * present
        text = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
        scale = self.params.time_scale_days
        decay = np.array(
            [math.exp(-0.5 * (_days_outside(published_at, s.first, s.last) / scale) ** 2) for s in stories]
        )
        scores = text * decay
        order = np.argsort(-scores, kind="stable")
        return [(stories[i].id, float(scores[i])) for i in order]

    def assign(self, feats: ArticleFeatures, signature: np.ndarray, published_at: datetime) -> Assignment:
        """Decide where an article goes; changes nothing."""
        copies = self.near_duplicates_.query(signature, min_similarity=DUPLICATE_JACCARD)
        if copies:
            best = copies[0]
            root = self.duplicate_root_.get(best.article_id, best.article_id)
            story = self.article_story_.get(root, self.article_story_.get(best.article_id))
            return Assignment(story, 1.0, duplicate_of=root, duplicate_similarity=best.similarity)
        ranked = self.score(feats, published_at)
        if not ranked or ranked[0][1] < self.params.threshold:
            return Assignment(None, ranked[0][1] if ranked else 0.0)
        best_id, best_score = ranked[0]
        merge = tuple(sid for sid, s in ranked[1:] if s >= self.params.merge_threshold)
        return Assignment(best_id, best_score, merge=merge)

    # -- learning --------------------------------------------------------------

    def add(
        self,
        article_id: int,
        story_id: int,
        published_at: datetime,
        feats: ArticleFeatures,
        signature: np.ndarray,
        duplicate_of: int | None = None,
    ) -> None:
        """Record a stored article as a member of ``story_id``."""
        story = self.stories_.get(story_id)
        if story is None:
            story = _Story(
                story_id,
                published_at,
                published_at,
                {name: sp.csr_matrix(feats.field(name).shape) for name in FIELDS},
            )
            self.stories_[story_id] = story
        for name in FIELDS:
            story.sums[name] = story.sums[name] + feats.field(name)
        story.first = min(story.first, published_at)
        story.last = max(story.last, published_at)
        story.members[article_id] = _Member(published_at, feats)
        self.article_story_[article_id] = story_id
        if duplicate_of is not None:
            self.duplicate_root_[article_id] = self.duplicate_root_.get(duplicate_of, duplicate_of)
        self.near_duplicates_.add(article_id, signature)
        self.df_.add(feats.terms)
        for term in self._key_terms(feats):
            self.postings_.setdefault(int(term), set()).add(story_id)

    def remove(self, article_id: int) -> int | None:
        """Forget an article; returns its story id. An emptied story is dropped."""
        story_id = self.article_story_.pop(article_id, None)
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
        story = self.stories_[story_id]
        member = story.members.pop(article_id)
        self.df_.remove(member.features.terms)
        if not story.members:
            del self.stories_[story_id]
            return story_id
        for name in FIELDS:
            story.sums[name] = story.sums[name] - member.features.field(name)
            story.sums[name].eliminate_zeros()
        times = [m.published_at for m in story.members.values()]
        story.first, story.last = min(times), max(times)
        return story_id

    def merge(self, survivor_id: int, absorbed_id: int) -> None:
        """Fold story ``absorbed_id`` into ``survivor_id``."""
        survivor = self.stories_[survivor_id]
        absorbed = self.stories_.pop(absorbed_id)
        for name in FIELDS:
            survivor.sums[name] = survivor.sums[name] + absorbed.sums[name]
        survivor.first = min(survivor.first, absorbed.first)
        survivor.last = max(survivor.last, absorbed.last)
        survivor.members.update(absorbed.members)
        for article_id in absorbed.members:
            self.article_story_[article_id] = survivor_id
            for term in self._key_terms(absorbed.members[article_id].features):
                self.postings_.setdefault(int(term), set()).add(survivor_id)

    def centrality(self, story_id: int) -> dict[int, float]:
        """Cosine of each member's body to its story's body centroid (IDF-weighted)."""
        story = self.stories_[story_id]
        centroid = self.df_.weigh(story.sums["body"])
        return {
            article_id: float(self.df_.weigh(m.features.body).multiply(centroid).sum())
            for article_id, m in story.members.items()
        }
