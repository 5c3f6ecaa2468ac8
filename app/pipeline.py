"""Ingest orchestration: validate → extract → embed → fingerprint → assign → persist → respond.

``StoryService`` owns the in-memory cache (the story index) and
the one lock that serialises assignment in this process. Every write runs in one
database transaction; on PostgreSQL it also holds an advisory lock, so two
processes never assign at the same time. An article is acknowledged only after its
transaction commits. If a transaction fails after the caches were updated, the
caches are rebuilt from the database, which stays the only source of truth.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app import crud
from app.models import Article, Cluster
from app.observability import Metrics
from app.schemas import EARLIEST, FUTURE_TOLERANCE, ArticleIn
from clustering import embed, fingerprint
from clustering.assign import Assignment, StoryIndex, member_centrality
from clustering.extract import Extraction, Templates, extract_html, extract_text
from clustering.normalise import stems, words
from clustering.summarise import Member, story_terms, summarise
from clustering.vectorise import TERM_SCHEME, ArticleFeatures, features, term_indices

log = logging.getLogger(__name__)

_ASSIGN_LOCK = 0x5701_2E5_0002  # PostgreSQL advisory lock key of the assign step
_TERMS_CACHED = 20_000  # articles whose keyword terms are kept between summaries


class SchemeMismatch(RuntimeError):
    """The database holds signatures made with another fingerprint scheme."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one article: stored ("created"), seen before ("existing"), or
    rejected after extraction ("error", with ``error`` saying why; nothing stored)."""

    id: int | None
    cluster_id: int | None
    duplicate_of: int | None
    status: str
    error: str | None = None


@dataclass(frozen=True)
class Prepared:
    """An article through the pure stages, before any decision."""

    article: ArticleIn
    extraction: Extraction
    features: ArticleFeatures
    signature: np.ndarray
    published_at: datetime
    source: str | None


@dataclass(frozen=True)
class MatchResult:
    cluster_id: int | None
    score: float
    duplicates: list[tuple[int, float]]


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _untimed(_stage: str) -> AbstractContextManager:
    return nullcontext()


def stored_features(article: Article) -> ArticleFeatures:
    """A stored article's features, as they were when it was ingested. An article stored
    without an embedding (before embeddings were kept, or under another encoder) gets
    one now, written back with the running transaction."""
    if article.embedding is None:
        article.embedding = embed.to_bytes(embed.embed(article.title, article.text))
    return features(article.title, article.text, embed.from_bytes(article.embedding))


class StoredTemplates:
    """Sources' learned templates as stored: a page's lines are looked up in
    ``source_lines`` (one query per page), plus the pages ``pending`` counts that the
    running transaction has learned and not yet written. No process holds the counts,
    so they cost no memory or start-up time and every replica sees the same ones."""

    def __init__(self, session: Session, pending: Counter[tuple[str, str]] | None = None):
        self.session = session
        self.pending = pending if pending is not None else Counter()

    def template_lines(self, source: str | None, fingerprints: Iterable[str]) -> set[str]:
        if source is None:
            return set()
        wanted = set(fingerprints)
        stored = crud.source_line_pages(session=self.session, source=source, fingerprints=wanted)
        return {fp for fp in wanted if stored.get(fp, 0) + self.pending[(source, fp)] >= 1}


def prepare(
    article: ArticleIn,
    received_at: datetime,
    templates: Templates,
    stage: Callable[[str], AbstractContextManager] = _untimed,
) -> Prepared:
    """Run the pure stages (extract, normalise, embed, featurise, fingerprint) on one
    article; ``stage(name)`` times each of them."""
    source = article.key_source
    with stage("extract"):
        if article.html is not None:
            extraction = extract_html(article.html, source, templates)
        else:
            extraction = extract_text(article.text or "", source, templates)
    title = article.title or extraction.title
    found = extraction.published_at
    if found is not None and not EARLIEST <= _as_utc(found) <= received_at + FUTURE_TOLERANCE:
        found = None  # a date in the page is a hint, never trusted outside plausible bounds
    published = article.published_at or found or received_at
    with stage("embed"):
        embedding = embed.embed(title, extraction.text)
    with stage("vectorise"):
        article_features = features(title, extraction.text, embedding)
    with stage("fingerprint"):
        signature = fingerprint.signature(words(extraction.text))
    return Prepared(
        article=article,
        extraction=extraction,
        features=article_features,
        signature=signature,
        published_at=_as_utc(published),
        source=source,
    )


class StoryService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        metrics: Metrics | None = None,
        horizon_days: float | None = None,
    ):
        self.sessions = sessions
        self.metrics = metrics or Metrics()
        self.horizon_days = horizon_days  # stories quieter than this leave the in-memory index
        self._changes: Counter[str] = Counter()  # stories opened/merged by the running transaction
        self._events: list[dict] = []  # change-feed events of the running transaction, in order
        self._source_lines: Counter[tuple[str, str]] = Counter()  # pages per source line, this transaction
        self._terms: OrderedDict[int, tuple] = OrderedDict()  # keyword terms of recently summarised articles
        self.evictions_stored = 0  # index evictions whose document frequencies are stored
        self.lock = threading.RLock()
        self.last_article_id = 0  # the newest stored article the caches hold
        self.reshapes_seen = 0  # merges, takedowns and prunes the caches know of
        self.clock_stored: datetime | None = None  # the stream clock as stored
        self.index = StoryIndex(horizon_days=horizon_days)
        self.ready = False

    # -- start-up --------------------------------------------------------------

    def load(self) -> None:
        """Check the fingerprint scheme, drop document frequencies counted under another
        term scheme and embeddings made by another encoder, and rebuild every cache from
        the database. The encoder is loaded first: without its weights the service does
        not start (``clustering.embed.ModelMissing`` says how to install them)."""
        embed.encoder()
        with self.lock, self.sessions.begin() as session:
            self._serialise(session)  # replicas starting together record the scheme once
            stored = crud.get_setting(session=session, key="fingerprint_scheme")
            if stored is None:
                crud.put_setting(session=session, key="fingerprint_scheme", value=fingerprint.SCHEME)
            elif stored != fingerprint.SCHEME:
                raise SchemeMismatch(
                    f"database signatures use fingerprint scheme {stored}, this build uses "
                    f"{fingerprint.SCHEME}: re-fingerprint the data or run a matching build"
                )
            if crud.get_setting(session=session, key="term_scheme") != TERM_SCHEME:
                # Counts of other terms would skew every IDF. Without them, document
                # frequencies are those of the stories in the window, as on a new database.
                if crud.delete_term_archive(session=session):
                    log.warning("stored document frequencies were counted under another term scheme: dropped")
                crud.put_setting(session=session, key="term_scheme", value=TERM_SCHEME)
            if crud.get_setting(session=session, key="embedding_scheme") != embed.EMBEDDING_SCHEME:
                # Vectors of another encoder are not comparable: each is made again on load.
                if crud.forget_embeddings(session=session):
                    log.warning("stored embeddings were made by another encoder: they are made again")
                crud.put_setting(session=session, key="embedding_scheme", value=embed.EMBEDDING_SCHEME)
            self._rebuild(session)
        self.ready = True

    def _rebuild(self, session: Session) -> None:
        index = StoryIndex(self.index.params, self.horizon_days)
        archive = crud.get_term_archive(session=session)
        if archive is not None:
            index.load_archive(archive)
        forward = dict(crud.merged_pairs(session=session))
        clock = crud.stream_clock(session=session)
        active_since = index.horizon_start(clock) if clock is not None else None
        for article in crud.iter_articles(session=session, active_since=active_since):
            self._replay(index, article, forward, evict=False)
        if clock is not None:
            index.advance_clock(clock)
        index.settle()
        self.index = index
        self.last_article_id = session.scalar(select(func.max(Article.id))) or 0
        self.reshapes_seen = crud.reshapes(session=session)
        self.clock_stored = clock
        self.evictions_stored = index.evictions_
        log.info("caches rebuilt: %d articles, %d stories", len(index.article_story_), len(index.stories_))

    @staticmethod
    def _replay(index: StoryIndex, article: Article, forward: dict[int, int], evict: bool = True) -> None:
        cluster_id = article.cluster_id
        while cluster_id in forward:  # stale pointer of a merged story
            cluster_id = forward[cluster_id]
        index.add(
            article.id,
            cluster_id,
            _as_utc(article.published_at),
            stored_features(article),
            fingerprint.from_bytes(article.signature),
            article.duplicate_of,
            evict,
        )

    def _catch_up(self, session: Session) -> None:
        """Apply what other processes committed since this one last looked.

        Runs inside the serialised step, so nothing commits meanwhile: articles with a
        higher id than the last one applied are added to the index (ids are handed out
        under the same lock, so in commit order); a merge, takedown or prune made
        elsewhere rebuilds everything, which is rare.
        """
        if crud.reshapes(session=session) != self.reshapes_seen:
            self._rebuild(session)
            return
        newer = crud.articles_after(session=session, article_id=self.last_article_id)
        if not newer:
            return
        for article in newer:  # no merge happened since: every cluster id is live
            self._apply(
                session,
                article.id,
                article.cluster_id,
                _as_utc(article.published_at),
                stored_features(article),
                fingerprint.from_bytes(article.signature),
                article.duplicate_of,
            )
            self.last_article_id = article.id
        log.info("caught up with %d articles stored by other processes", len(newer))

    # -- writes ----------------------------------------------------------------

    def ingest(self, articles: Sequence[ArticleIn]) -> list[Outcome]:
        """Store ``articles`` in one transaction; results in input order."""
        received_at = datetime.now(UTC)
        with self.lock:
            if not self.ready:
                self._recover()
            self._changes.clear()
            self._events.clear()
            self._source_lines.clear()
            try:
                with self.metrics.stage("transaction"), self.sessions.begin() as session:
                    self._serialise(session)
                    self._catch_up(session)
                    outcomes = []
                    touched: set[int] = set()
                    for article in articles:
                        outcomes.append(self._ingest_one(session, article, received_at, touched))
                    self._store_window(session)
                    crud.add_source_lines(session=session, pages=self._source_lines)
                    with self.metrics.stage("summarise"):
                        self._refresh_summaries(session, touched, received_at)
                    self._record_events(session, received_at)
            except BaseException:
                log.exception("ingest transaction failed; rebuilding caches from the database")
                self.ready = False
                self._recover()
                raise
            self.metrics.record_committed(outcomes, opened=self._changes["opened"], merged=self._changes["merged"])
        return outcomes

    def _store_window(self, session: Session) -> None:
        """Store the stream clock and, when stories left the index, what they counted."""
        clock = self.index.clock_
        if clock is not None and (self.clock_stored is None or clock > self.clock_stored):
            crud.put_stream_clock(session=session, at=clock)
            self.clock_stored = clock
        if self.index.evictions_ != self.evictions_stored:
            crud.put_term_archive(session=session, archive=self.index.archive_)
            self.evictions_stored = self.index.evictions_

    def _event(self, kind: str, cluster_id: int, article_id: int | None = None, into: int | None = None) -> None:
        self._events.append({"kind": kind, "cluster_id": cluster_id, "article_id": article_id, "into_cluster_id": into})

    def _record_events(self, session: Session, at: datetime) -> None:
        """Write this transaction's events with each story's article count once it commits."""
        if not self._events:
            return
        ids = {e["into_cluster_id"] or e["cluster_id"] for e in self._events}
        counts = dict(session.execute(select(Cluster.id, Cluster.article_count).where(Cluster.id.in_(ids))).all())
        crud.add_changes(
            session=session,
            changes=[{**e, "article_count": counts.get(e["into_cluster_id"] or e["cluster_id"], 0), "at": at}
                     for e in self._events],
        )
        self._events.clear()

    def _recover(self) -> None:
        """Rebuild the caches after a failed transaction (they may hold its changes)."""
        with self.sessions.begin() as session:
            self._rebuild(session)
        self.ready = True

    def _serialise(self, session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ASSIGN_LOCK})

    def _ingest_one(self, session: Session, article: ArticleIn, received_at: datetime, touched: set[int]) -> Outcome:
        existing = crud.article_by_key(session=session, url=article.url, external_id=article.external_id)
        if existing is not None:
            cluster, _ = crud.resolve_cluster(session=session, cluster_id=existing.cluster_id)
            return Outcome(existing.id, cluster.id if cluster else existing.cluster_id, existing.duplicate_of, "existing")
        prepared = prepare(article, received_at, StoredTemplates(session, self._source_lines), self.metrics.stage)
        if not prepared.extraction.text.strip():
            kind = "html" if article.html is not None else "text"
            return Outcome(None, None, None, "error", f"no article text could be extracted from {kind}")
        with self.metrics.stage("assign"):
            decision = self._decide(session, prepared)
        stored_from = time.perf_counter()
        cluster_id = decision.story_id
        if cluster_id is None:
            cluster = Cluster(created_at=received_at, updated_at=received_at, keywords=[], sources=[], title="", summary="")
            session.add(cluster)
            session.flush()
            cluster_id = cluster.id
            self._changes["opened"] += 1
            opened = True
        else:
            opened = False
        row = Article(
            url=article.url,
            external_id=article.external_id,
            title=article.title or prepared.extraction.title,
            source=prepared.source,
            language=article.language,
            published_at=prepared.published_at,
            received_at=received_at,
            input_format="html" if article.html is not None else "text",
            raw=article.html if article.html is not None else article.text,
            text=prepared.extraction.text,
            removed=prepared.extraction.removed,
            signature=fingerprint.to_bytes(prepared.signature),
            embedding=embed.to_bytes(prepared.features.embedding),
            cluster_id=cluster_id,
            duplicate_of=decision.duplicate_of,
        )
        session.add(row)
        session.flush()
        self._apply(
            session, row.id, cluster_id, prepared.published_at, prepared.features, prepared.signature,
            decision.duplicate_of,
        )
        self._event("created" if opened else "grew", cluster_id, row.id)
        self.last_article_id = row.id
        if prepared.source is not None:
            self._source_lines.update((prepared.source, fp) for fp in set(prepared.extraction.line_fingerprints))
        cluster_id = self._merge(session, cluster_id, decision, touched)
        touched.add(cluster_id)
        self.metrics.stage_seconds.labels("store").observe(time.perf_counter() - stored_from)
        return Outcome(row.id, cluster_id, decision.duplicate_of, "created")

    def _decide(self, session: Session, prepared: Prepared) -> Assignment:
        """Where a prepared article goes.

        An article published so long before the stream's clock that the stories it could
        join may have left the in-memory window (a late article, a backfill out of order)
        is decided against the stored stories around its date instead, loaded for the
        occasion; such a decision never merges stories.
        """
        at = prepared.published_at
        if not self.index.reaches_before_window(at):
            return self.index.assign(prepared.features, prepared.signature, at)
        around = StoryIndex(self.index.params)
        reach = timedelta(days=self.index.params.window_days)
        for article in crud.articles_near(session=session, start=at - reach, end=at + reach):
            self._replay(around, article, {})
        around.df_ = self.index.df_  # the stream's document frequencies, as for any decision
        decision = around.assign(prepared.features, prepared.signature, at)
        return dataclasses.replace(decision, merge=())

    def _apply(
        self,
        session: Session,
        article_id: int,
        cluster_id: int,
        published_at: datetime,
        feats: ArticleFeatures,
        signature: np.ndarray,
        duplicate_of: int | None,
    ) -> None:
        """Add a stored article to the index. A story that had left the window and is
        back in it comes back whole, as a restart would load it."""
        returning = (
            self.index.horizon_days is not None
            and cluster_id not in self.index.stories_
            and not self.index.outside_window(published_at)
        )
        self.index.add(article_id, cluster_id, published_at, feats, signature, duplicate_of)
        if returning:  # the new article first: it keeps the story inside the window while the rest come back
            for member in crud.story_articles_before(session=session, cluster_id=cluster_id, article_id=article_id):
                self._replay(self.index, member, {})

    def _merge(self, session: Session, cluster_id: int, decision: Assignment, touched: set[int]) -> int:
        """Fold the stories the article binds into the largest of them; returns the survivor."""
        if not decision.merge:
            return cluster_id
        group = [cluster_id, *decision.merge]
        survivor = max(group, key=lambda sid: (len(self.index.stories_[sid].members), -sid))
        for absorbed in group:
            if absorbed == survivor:
                continue
            crud.merge_clusters(session=session, survivor_id=survivor, absorbed_id=absorbed)
            self._event("merged", absorbed, into=survivor)
            self.index.merge(survivor, absorbed)
            self.reshapes_seen = crud.count_reshape(session=session)
            touched.discard(absorbed)
            self._changes["merged"] += 1
            log.info("story %d merged into %d", absorbed, survivor)
        return survivor

    def _refresh_summaries(self, session: Session, cluster_ids: set[int], now: datetime) -> None:
        for cluster_id in cluster_ids:
            cluster = session.get(Cluster, cluster_id)
            members = crud.summary_members(session=session, cluster_id=cluster_id)
            if cluster is None:
                continue
            if not members:  # every article taken down: the story leaves listings
                cluster.article_count, cluster.source_count, cluster.sources = 0, 0, []
                cluster.updated_at = now
                continue
            centrality = self.index.centrality(cluster_id)
            if centrality is None:  # a story outside the index window (late or old article)
                centrality = member_centrality({m.id: features(m.title, m.text) for m in members}, self.index.df_)
            summary = summarise(
                [
                    Member(m.id, m.title, m.text, m.source, _as_utc(m.published_at), m.duplicate_of, self._terms_of(m))
                    for m in members
                ],
                centrality,
                self._idf,
            )
            cluster.title = summary.title
            cluster.summary = summary.summary
            cluster.keywords = summary.keywords
            cluster.sources = summary.sources
            cluster.article_count = summary.article_count
            cluster.source_count = summary.source_count
            cluster.first_published_at = summary.first_published_at
            cluster.last_published_at = summary.last_published_at
            cluster.representative_article_id = summary.representative_article_id
            cluster.updated_at = now

    def _terms_of(self, member) -> tuple:
        """``story_terms`` of a stored article, from a bounded cache (ids are never reused)."""
        terms = self._terms.get(member.id)
        if terms is None:
            terms = self._terms[member.id] = story_terms(member.title, member.text)
            if len(self._terms) > _TERMS_CACHED:
                self._terms.popitem(last=False)
        else:
            self._terms.move_to_end(member.id)
        return terms

    def take_down(self, article_id: int) -> int | None:
        """Delete an article and update its story; returns the story id, or None if unknown.

        Copies of the article are re-rooted on the earliest remaining copy, in the
        database and in the index alike.
        """
        with self.lock:
            if not self.ready:
                self._recover()
            try:
                with self.sessions.begin() as session:
                    self._serialise(session)
                    self._catch_up(session)
                    article = crud.get_article(session=session, article_id=article_id)
                    if article is None:
                        return None
                    cluster, _ = crud.resolve_cluster(session=session, cluster_id=article.cluster_id)
                    cluster_id = cluster.id if cluster else article.cluster_id
                    crud.delete_article(session=session, article=article)
                    self.index.remove(article_id)
                    self.reshapes_seen = crud.count_reshape(session=session)
                    now = datetime.now(UTC)
                    self._refresh_summaries(session, {cluster_id}, now)
                    self._events.clear()
                    self._event("article_deleted", cluster_id, article_id)
                    self._record_events(session, now)
                    self._store_window(session)
            except BaseException:
                log.exception("takedown failed; rebuilding caches from the database")
                self.ready = False
                self._recover()
                raise
        log.info("article %d taken down from story %d", article_id, cluster_id)
        return cluster_id

    def prune(self, before: datetime) -> crud.Pruned:
        """Delete stories whose newest article is older than ``before`` (see ``crud.prune``).

        Every process, this one included, rebuilds its caches before its next decision.
        """
        with self.lock:
            with self.sessions.begin() as session:
                self._serialise(session)
                pruned = crud.prune(session=session, before=before)
                if pruned.stories:
                    crud.count_reshape(session=session)
                    now = datetime.now(UTC)
                    crud.add_changes(
                        session=session,
                        changes=[
                            {"kind": "pruned", "cluster_id": cid, "article_id": None, "into_cluster_id": None,
                             "article_count": 0, "at": now}
                            for cid in pruned.story_ids
                        ],
                    )
            if pruned.stories:
                self.ready = False
        log.info("pruned %d stories (%d articles) older than %s", pruned.stories, pruned.articles, before.isoformat())
        return pruned

    def _idf(self, terms: list[str]) -> np.ndarray:
        """IDF of display words (keywords), counted under their stems as the index counts them."""
        return self.index.df_.idf(term_indices(stems(terms)))

    # -- reads that need the caches ---------------------------------------------

    def match(self, article: ArticleIn) -> MatchResult:
        """Where ``article`` would go, storing nothing."""
        with self.lock:
            if not self.ready:
                self._recover()
            with self.sessions.begin() as session:
                self._serialise(session)
                self._catch_up(session)
                prepared = prepare(article, datetime.now(UTC), StoredTemplates(session))
            decision = self.index.assign(prepared.features, prepared.signature, prepared.published_at)
            duplicates = [
                (c.article_id, c.similarity)
                for c in self.index.near_duplicates_.query(prepared.signature)
            ]
        return MatchResult(decision.story_id, decision.score, duplicates)
