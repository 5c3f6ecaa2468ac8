"""Ingest orchestration: validate → prepare (off the lock) → write step → respond.

``StoryService.ingest`` first prepares a request's articles with the pure stages
(``clustering.prepare``: extract, normalise, embed, vectorise, fingerprint) in worker
processes (``app.service.workers``), holding no lock. Only then does it join the write step,
which is serialised fleet-wide: in this process by ``lock``, on PostgreSQL also by an
advisory lock, so two processes never decide at once. Concurrent requests share the
write step (group commit): whoever takes the lock writes every request waiting for it
in one transaction, and each request is answered once the commit that holds it is done.

Inside the write step, per article: the idempotency key, whether its source's template
changed since it was prepared (then it is prepared again, here), the decision against
the in-memory story index, and the rows to insert; per transaction: one insert of each
kind, the learned template lines, the touched stories' summaries (kept as running
state, ``clustering.summarise.Digest``), the change feed. An article is acknowledged
only after its transaction commits. If a transaction fails after the caches were
updated, the caches (``app.service.caches``) are rebuilt from the database, which stays
the only source of truth. What one transaction has done so far is a ``Transaction``, a
local value of the write step, never state of the long-lived service.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from app.observability import Metrics
from app.service import corrections
from app.service.caches import READ_ONLY, Caches, stored_features
from app.service.transaction import Submission, Transaction, known
from app.service.workers import Job, Preparer
from app.store import crud, locks
from clustering import embed, fingerprint
from clustering.assign import Assignment, StoryIndex, explanation, member_centrality
from clustering.identity import outlet
from clustering.prepare import Draft, Prepared, prepare, prepare_again
from clustering.summarise import Digest, Member, load_lexicon
from clustering.vectorise import TERM_SCHEME, ArticleFeatures, features

log = logging.getLogger(__name__)

_GROUP_ARTICLES = 2_000  # most articles one group commit writes


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
class MatchResult:
    cluster_id: int | None
    score: float
    duplicates: list[tuple[int, float]]
    thread_id: int | None = None


def draft_of(article: Submission, received_at: datetime) -> Draft:
    source = outlet(article.source, article.url)
    return Draft(article.title, article.text, article.html, source, article.published_at, received_at)


class StoredTemplates:
    """Sources' learned templates as stored: a page's lines are looked up in
    ``source_lines`` (one query per page), plus the pages ``pending`` counts that the
    running transaction has learned and not yet written."""

    def __init__(self, session: Session, pending: Counter[tuple[str, str]] | None = None):
        self.session = session
        self.pending = pending if pending is not None else Counter()

    def template_lines(self, source: str | None, fingerprints) -> set[str]:
        if source is None:
            return set()
        wanted = set(fingerprints)
        stored = crud.source_line_pages(session=self.session, source=source, fingerprints=wanted)
        return {fp for fp in wanted if stored.get(fp, 0) + self.pending[(source, fp)] >= 1}


@dataclass
class _Ready:
    """One article of a request, prepared off the lock (or not at all: seen before)."""

    prepared: Prepared | None = None
    from_batch: frozenset[str] = frozenset()
    seen_id: int = 0


@dataclass
class _Request:
    """A request waiting for the write step, and what it got."""

    articles: Sequence[Submission]
    ready: list[_Ready]
    received_at: datetime
    outcomes: list[Outcome] | None = None
    error: BaseException | None = None
    done: bool = False


class StoryService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        metrics: Metrics | None = None,
        horizon_days: float | None = None,
        *,
        read_sessions: sessionmaker[Session] | None = None,
        preparer: Preparer | None = None,
        snapshot_path: Path | None = None,
    ):
        self.sessions = sessions
        self.read_sessions = read_sessions or sessions
        self.metrics = metrics or Metrics()
        self.preparer = preparer or Preparer(self.read_sessions, "", 0)
        self.caches = Caches(horizon_days)
        self.snapshot_path = snapshot_path  # where the index is kept between runs (``app.service.snapshot``)
        self.lock = threading.Lock()  # the write step, in this process
        self._waiting: list[_Request] = []  # requests waiting for the write step
        self._waiting_lock = threading.Lock()
        self.ready = False

    @property
    def index(self) -> StoryIndex:
        return self.caches.index

    # -- start-up --------------------------------------------------------------

    def load(self) -> None:
        """Check the fingerprint scheme, drop document frequencies and term vectors
        counted under another term scheme and embeddings made by another encoder, and
        rebuild every cache from the database. The encoder is checked first: without it
        the service does not start (``clustering.embed.ModelMissing`` says how to build it).
        It is loaded here only when articles are prepared in this process; with worker
        processes, they hold it, and this one loads it only if it ever prepares an
        article again itself (one taken down and sent anew, or whose source's template
        changed while it was prepared)."""
        embed.check()
        if self.preparer.pool is None:
            embed.encoder()
        load_lexicon()  # summaries read it: read it before the first write step, not in it
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
            if crud.get_setting(session=session, key="database_id") is None:  # names it to the index kept beside it
                crud.put_setting(session=session, key="database_id", value={"id": uuid.uuid4().hex})
            snapshot_path = self.snapshot_path  # no longer to be trusted once stored forms are dropped below
            if crud.get_setting(session=session, key="term_scheme") != TERM_SCHEME:
                snapshot_path = None
                # Counts of other terms would skew every IDF, and vectors of other terms
                # match nothing: both are made again, as on a new database.
                if crud.delete_term_archive(session=session):
                    log.warning("stored document frequencies were counted under another term scheme: dropped")
                if crud.forget_features(session=session):
                    log.warning("stored term vectors were made under another term scheme: they are made again")
                crud.put_setting(session=session, key="term_scheme", value=TERM_SCHEME)
            if crud.get_setting(session=session, key="embedding_scheme") != embed.EMBEDDING_SCHEME:
                snapshot_path = None
                # Vectors of another encoder are not comparable: each is made again on load.
                if crud.forget_embeddings(session=session):
                    log.warning("stored embeddings were made by another encoder: they are made again")
                crud.put_setting(session=session, key="embedding_scheme", value=embed.EMBEDDING_SCHEME)
            self.caches.start(session, snapshot_path)
        self.ready = True

    def close(self) -> None:
        """Stop the prepare workers, and keep the index for the next start (when this
        process holds one and has somewhere to keep it)."""
        self.preparer.close()
        if self.ready and self.snapshot_path is not None:
            with self.lock, self.read_sessions() as session:
                try:
                    self.caches.save(session, self.snapshot_path)
                except OSError as error:  # the next start rebuilds from the database
                    log.warning("index not kept in %s: %s", self.snapshot_path, error)

    # -- writes ----------------------------------------------------------------

    def ingest(self, articles: Sequence[Submission]) -> list[Outcome]:
        """Store ``articles``; results in input order. They are prepared first, off the
        lock (an article whose key is stored already is not prepared at all), then
        written in the next group commit."""
        received_at = datetime.now(UTC)
        with self.read_sessions() as session:
            by_url, by_external = crud.stored_keys(
                session=session,
                urls=[a.url for a in articles if a.url is not None],
                external_ids=[a.external_id for a in articles if a.external_id is not None],
            )
        jobs, seen = [], set()
        for i, article in enumerate(articles):
            keys = {("url", article.url), ("external_id", article.external_id)} - {("url", None), ("external_id", None)}
            if known(by_url, by_external, article) is None and not keys & seen:
                jobs.append(Job(i, draft_of(article, received_at)))
            seen |= keys
        ready = [_Ready() for _ in articles]
        with self.metrics.stage("prepare"):
            for batch in self.preparer.prepare(jobs):
                for i, prepared in batch.prepared.items():
                    _ = prepared.features  # term vectors unpacked here, off the lock
                    ready[i] = _Ready(prepared, batch.from_batch[i], batch.seen_id)
        request = _Request(articles, ready, received_at)
        self._write_step(request)
        if request.error is not None:
            raise request.error
        assert request.outcomes is not None
        return request.outcomes

    def _write_step(self, request: _Request) -> None:
        """Write ``request`` in the next group commit: whoever holds the lock writes
        the requests waiting for it (up to ``_GROUP_ARTICLES`` articles), in arrival
        order, in one transaction; a request left out waits for the next one."""
        with self._waiting_lock:
            self._waiting.append(request)
        while not request.done:
            with self.lock:
                if request.done:
                    return
                with self._waiting_lock:
                    group, total = [], 0
                    while self._waiting and (not group or total + len(self._waiting[0].articles) <= _GROUP_ARTICLES):
                        total += len(self._waiting[0].articles)
                        group.append(self._waiting.pop(0))
                try:
                    self._write(group)
                except BaseException as err:  # every request of the group gets it: none was stored
                    for member in group:
                        member.error = err
                finally:
                    for member in group:
                        member.done = True

    def _write(self, group: list[_Request]) -> None:
        if not self.ready:
            self._recover()
        try:
            with self.metrics.stage("transaction"), self.sessions.begin() as session:
                self._serialise(session)
                self.caches.catch_up(session)
                everything = [a for request in group for a in request.articles]
                by_url, by_external = crud.stored_keys(
                    session=session,
                    urls=[a.url for a in everything if a.url is not None],
                    external_ids=[a.external_id for a in everything if a.external_id is not None],
                )
                txn = Transaction(session, by_url, by_external)
                for request in group:
                    request.outcomes = [
                        self._ingest_one(txn, article, ready, request.received_at)
                        for article, ready in zip(request.articles, request.ready)
                    ]
                txn.flush()
                self._store_window(session)
                crud.add_source_lines(session=session, pages=txn.lines)
                with self.metrics.stage("summarise"):
                    self._summarise(txn, max(r.received_at for r in group))
                self._record_events(txn, max(r.received_at for r in group))
                if txn.last_article:
                    crud.used_ids(session=session, table="articles", last=txn.last_article)
                if txn.last_cluster:
                    crud.used_ids(session=session, table="clusters", last=txn.last_cluster)
        except BaseException:
            log.exception("ingest transaction failed; rebuilding caches from the database")
            self.ready = False
            self._recover()
            raise
        self.caches.sources.update(txn.sources)
        outcomes = [outcome for request in group for outcome in request.outcomes or ()]
        counted = Counter("rejected" if o.status == "error" else o.status for o in outcomes)
        copies = sum(o.status == "created" and o.duplicate_of is not None for o in outcomes)
        self.metrics.record_committed(
            counted, duplicates=copies, opened=txn.opened, merged=txn.merged, reprepared=txn.reprepared
        )

    def _ingest_one(self, txn: Transaction, article: Submission, ready: _Ready, received_at: datetime) -> Outcome:
        session = txn.session
        stored = txn.known(article)
        if stored is not None:
            cluster, _ = crud.resolve_cluster(session=session, cluster_id=stored.cluster_id)
            return Outcome(stored.id, cluster.id if cluster else stored.cluster_id, stored.duplicate_of, "existing")
        prepared = ready.prepared
        if prepared is None:  # seen before when it was prepared, taken down since
            prepared = prepare(draft_of(article, received_at), StoredTemplates(session, txn.lines))
        elif not self._template_holds(txn, prepared, ready):
            # Its source's template changed since it was prepared: extract it again, here,
            # against the template as it is now (and the rest only if its text changed).
            txn.reprepared += 1
            prepared = prepare_again(prepared, draft_of(article, received_at), StoredTemplates(session, txn.lines))
        if not prepared.has_text:
            kind = "html" if article.html is not None else "text"
            return Outcome(None, None, None, "error", f"no article text could be extracted from {kind}")
        feats = prepared.features
        with self.metrics.stage("assign"):
            decision = self._decide(txn, prepared, feats)
        stored_from = time.perf_counter()
        cluster_id = decision.story_id
        opened = cluster_id is None
        thread_id = None
        if opened:
            cluster_id = txn.cluster_id()
            # A new event of a story that went quiet joins that story's thread; any other starts one.
            thread_id = cluster_id if decision.thread_of is None else txn.thread_of(decision.thread_of)
            txn.threads[cluster_id] = thread_id
            txn.clusters.append(
                {
                    "id": cluster_id,
                    "thread_id": thread_id,
                    "created_at": received_at,
                    "updated_at": received_at,
                    "keywords": [],
                    "sources": [],
                    "title": "",
                    "summary": "",
                }
            )
            txn.opened += 1
        article_id = txn.article_id()
        txn.articles.append(
            {
                "id": article_id,
                "url": article.url,
                "external_id": article.external_id,
                "title": prepared.title,
                "source": prepared.source,
                "language": article.language,
                "published_at": prepared.published_at,
                "received_at": received_at,
                "input_format": "html" if article.html is not None else "text",
                "raw": article.html if article.html is not None else article.text,
                "text": prepared.text,
                "removed": prepared.removed,
                "signature": fingerprint.to_bytes(prepared.signature),
                "embedding": embed.to_bytes(feats.embedding) if feats.embedding is not None else None,
                "features": prepared.packed.to_bytes(),
                "cluster_id": cluster_id,
                "duplicate_of": decision.duplicate_of,
                "decision": explanation(decision),
            }
        )
        txn.remember(article, crud.Stored(article_id, cluster_id, decision.duplicate_of))
        with self.caches.index_lock:
            self.caches.apply(
                session,
                article_id,
                cluster_id,
                prepared.published_at,
                feats,
                prepared.signature,
                decision.duplicate_of,
                flush=None if opened else txn.flush,
            )
        self.caches.last_article_id = article_id
        txn.event("created" if opened else "grew", cluster_id, article_id, thread=thread_id)
        if prepared.source is not None:
            txn.lines.update((prepared.source, fp) for fp in set(prepared.line_fingerprints))
            txn.sources[prepared.source] = article_id
        txn.texts[article_id] = prepared.text
        digest = self.caches.digest(txn.session, txn.touched, cluster_id, opened)
        digest.add(
            Member(
                article_id,
                prepared.title,
                prepared.text,
                prepared.source,
                prepared.published_at,
                decision.duplicate_of,
                prepared.terms,
            )
        )
        cluster_id = self._merge(txn, cluster_id, decision)
        self.metrics.stage_seconds.labels("store").observe(time.perf_counter() - stored_from)
        return Outcome(article_id, cluster_id, decision.duplicate_of, "created")

    def _template_holds(self, txn: Transaction, prepared: Prepared, ready: _Ready) -> bool:
        """Whether the lines taken for the source's template when the article was
        prepared are still exactly its template now (stored, plus this transaction's)."""
        source = prepared.source
        if source is None:
            return True
        page = set(prepared.line_fingerprints)
        pending = {fp for fp in page if txn.lines[(source, fp)]}
        if self.caches.source_changed_since(source, ready.seen_id):
            # Pages of the source were stored after the snapshot: read its template again.
            stored = crud.source_line_pages(session=txn.session, source=source, fingerprints=page)
            now = {fp for fp in page if stored.get(fp, 0) >= 1} | pending
        else:
            now = (prepared.template - ready.from_batch) | pending
        return now == prepared.template

    def _store_window(self, session: Session) -> None:
        """When stories left the index, store what they counted. (The stream clock needs
        no write here: it is the newest stored ``published_at`` unless a removal took
        that away, and removals record it first.)"""
        if self.index.evictions_ != self.caches.evictions_stored:
            crud.put_term_archive(session=session, archive=self.index.archive_)
            self.caches.evictions_stored = self.index.evictions_

    @staticmethod
    def _keep_clock(session: Session) -> None:
        """Record the stream clock before a removal, which may take its newest article."""
        clock = crud.stream_clock(session=session)
        if clock is not None:
            crud.put_stream_clock(session=session, at=clock)

    def _record_events(self, txn: Transaction, at: datetime) -> None:
        """Write this transaction's events with each story's article count once it commits."""
        if not txn.events:
            return
        counts = {cid: len(digest) for cid, digest in txn.touched.items()}
        crud.add_changes(
            session=txn.session,
            changes=[
                {**e, "article_count": counts.get(e["into_cluster_id"] or e["cluster_id"], 0), "at": at}
                for e in txn.events
            ],
        )

    def _recover(self) -> None:
        """Rebuild the caches after a failed transaction (they may hold its changes)."""
        with self.sessions.begin() as session:
            self.caches.rebuild(session)
        self.ready = True

    def _serialise(self, session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            locks.hold_for_transaction(session, locks.ASSIGN)

    def _decide(self, txn: Transaction, prepared: Prepared, feats: ArticleFeatures) -> Assignment:
        """Where a prepared article goes.

        An article published so long before the stream's clock that the stories it could
        join may have left the in-memory window (a late article, a backfill out of order)
        is decided against the stored stories around its date instead, loaded for the
        occasion; such a decision never merges stories.
        """
        at = prepared.published_at
        if not self.index.reaches_before_window(at):
            with self.caches.index_lock:
                decision = self.index.assign(feats, prepared.signature, at)
                if decision.merge:  # editors' corrections may keep some of the stories apart
                    survivor, absorbed = self._merge_group(decision.story_id, decision.merge)
                    merge = tuple(sid for sid in (survivor, *absorbed) if sid != decision.story_id)
                    decision = dataclasses.replace(decision, merge=merge)
                return decision
        around = StoryIndex(self.index.params)
        reach = timedelta(days=self.index.params.window_days)
        txn.flush()  # this transaction's articles are among those around it
        for article in crud.articles_near(session=txn.session, start=at - reach, end=at + reach):
            self.caches.replay(around, article)
        around.df_ = self.index.df_  # the stream's document frequencies, as for any decision
        decision = around.assign(feats, prepared.signature, at)
        return dataclasses.replace(decision, merge=())

    def _merge(self, txn: Transaction, cluster_id: int, decision: Assignment) -> int:
        """Fold the stories the article binds into the largest of them; returns the survivor."""
        if not decision.merge:
            return cluster_id
        txn.flush()  # the stories' rows and members, so one UPDATE moves them all
        survivor, absorbed_ids = self._merge_group(cluster_id, decision.merge)
        for absorbed in absorbed_ids:
            moved = crud.merge_clusters(session=txn.session, survivor_id=survivor, absorbed_id=absorbed)
            if moved is not None:  # the absorbed story's thread is now the survivor's
                txn.thread_joined(*moved)
            txn.event("merged", absorbed, into=survivor)
            self.caches.editorial.merged(survivor, absorbed)
            with self.caches.index_lock:
                self.index.merge(survivor, absorbed)
            self.caches.reshapes_seen = crud.count_reshape(session=txn.session)
            self.caches.forget_digest(absorbed)
            self.caches.forget_digest(survivor)
            txn.touched.pop(absorbed, None)
            txn.touched.pop(survivor, None)
            txn.merged += 1
            log.info("story %d merged into %d", absorbed, survivor)
        self.caches.digest(txn.session, txn.touched, survivor, opened=False)  # read back whole, members of both
        for absorbed in absorbed_ids:
            txn.touched.setdefault(absorbed, Digest())  # its change event counts 0 articles
        return survivor

    def _merge_group(self, story_id: int, others: tuple[int, ...]) -> tuple[int, list[int]]:
        """(survivor, the stories to fold into it) of the stories an article binds, as
        editors' corrections allow (``clustering.editorial.Editorial.merge_group``): the
        largest survives unless another holds articles an editor placed."""
        stories = self.index.stories_
        return self.caches.editorial.merge_group(
            story_id, others, lambda sid: len(stories[sid].members), lambda sid: stories[sid].members.keys()
        )

    # -- summaries -------------------------------------------------------------

    def _summarise(self, txn: Transaction, now: datetime) -> None:
        """Write the summary of every story the transaction touched."""
        rows = []
        for cluster_id, digest in txn.touched.items():
            if not digest.members:  # merged away, or every article taken down
                continue
            centrality = self.index.centrality(cluster_id)
            if centrality is None:  # a story outside the index window (late or old article)
                members = {
                    m.id: features(m.title, m.text)
                    for m in crud.summary_members(session=txn.session, cluster_id=cluster_id)
                }
                centrality = member_centrality(members, self.index.df_)
            summary = digest.summary(
                centrality, self.caches.idf, lambda article_id: self.caches.text_of(txn.session, txn.texts, article_id)
            )
            rows.append(
                {
                    "id": cluster_id,
                    "title": summary.title,
                    "summary": summary.summary,
                    "keywords": summary.keywords,
                    "sources": summary.sources,
                    "article_count": summary.article_count,
                    "source_count": summary.source_count,
                    "first_published_at": summary.first_published_at,
                    "last_published_at": summary.last_published_at,
                    "representative_article_id": summary.representative_article_id,
                    "updated_at": now,
                }
            )
        crud.update_clusters(session=txn.session, rows=rows)
        self.caches.remember_texts(txn.texts)

    # -- takedown and retention -------------------------------------------------

    @contextmanager
    def _reshaping(self, what: str, expected: tuple[type[Exception], ...] = ()) -> Iterator[Session]:
        """A write transaction that reshapes stories (a takedown, a correction): under
        the lock, serialised fleet-wide, caught up with other processes first. If it
        fails, the caches are rebuilt from the database (they may hold its changes),
        unless the error is one of ``expected``, raised before anything changed."""
        with self.lock:
            if not self.ready:
                self._recover()
            try:
                with self.sessions.begin() as session:
                    self._serialise(session)
                    self.caches.catch_up(session)
                    yield session
            except expected:
                raise
            except BaseException:
                log.exception("%s failed; rebuilding caches from the database", what)
                self.ready = False
                self._recover()
                raise

    def take_down(self, article_id: int) -> int | None:
        """Delete an article and update its story; returns the story id, or None if unknown.

        Copies of the article are re-rooted on the earliest remaining copy, in the
        database and in the index alike.
        """
        with self._reshaping("takedown") as session:
            article = crud.get_article(session=session, article_id=article_id)
            if article is None:
                return None
            self._keep_clock(session)
            cluster, _ = crud.resolve_cluster(session=session, cluster_id=article.cluster_id)
            cluster_id = cluster.id if cluster else article.cluster_id
            feats = stored_features(article)
            crud.delete_article(session=session, article=article)
            with self.caches.index_lock:
                self.index.remove(article_id, feats)
            self.caches.reshapes_seen = crud.count_reshape(session=session)
            now = datetime.now(UTC)
            txn = Transaction(session, {}, {})
            self.caches.forget_digest(cluster_id)
            digest = self.caches.digest(txn.session, txn.touched, cluster_id, opened=False)
            if not digest.members:  # every article taken down: it leaves listings
                crud.empty_cluster(session=session, cluster_id=cluster_id, at=now)
            self._summarise(txn, now)
            txn.event("article_deleted", cluster_id, article_id)
            self._record_events(txn, now)
            self._store_window(session)
        log.info("article %d taken down from story %d", article_id, cluster_id)
        return cluster_id

    def correct(self, request: corrections.Request) -> corrections.Outcome:
        """Apply an editor's correction (``app.service.corrections``) in one serialised
        transaction: its rows, the touched stories' summaries, the change feed, and the
        caches. ``corrections.Rejected`` says why one cannot be made (nothing changed)."""
        with self._reshaping("correction", expected=(corrections.Rejected,)) as session:
            now = datetime.now(UTC)
            txn = Transaction(session, {}, {})
            editor = corrections.Editor(txn, self.caches, now)
            correction, recorded = editor.apply(request)
            if recorded:
                txn.flush()
                for cluster_id in editor.emptied:
                    crud.empty_cluster(session=session, cluster_id=cluster_id, at=now)
                self._summarise(txn, now)
                self._record_events(txn, now)
                if txn.last_cluster:
                    crud.used_ids(session=session, table="clusters", last=txn.last_cluster)
                # Every other process rebuilds its caches, editorial constraints included.
                self.caches.reshapes_seen = crud.count_reshape(session=session)
                self._store_window(session)
            outcome = corrections.Outcome(corrections.as_dict(correction), recorded)
        if recorded:
            log.info("correction %d: %s", outcome.correction["id"], outcome.correction["kind"])
        return outcome

    def prune(self, before: datetime) -> crud.Pruned:
        """Delete stories whose newest article is older than ``before`` (see ``crud.prune``).

        Every process, this one included, rebuilds its caches before its next decision.
        """
        with self.lock:
            with self.sessions.begin() as session:
                self._serialise(session)
                self._keep_clock(session)
                pruned = crud.prune(session=session, before=before)
                if pruned.stories:
                    crud.count_reshape(session=session)
                    now = datetime.now(UTC)
                    crud.add_changes(
                        session=session,
                        changes=[
                            {
                                "kind": "pruned",
                                "cluster_id": cid,
                                "article_id": None,
                                "into_cluster_id": None,
                                "article_count": 0,
                                "at": now,
                            }
                            for cid in pruned.story_ids
                        ],
                    )
            if pruned.stories:
                self.ready = False
        log.info("pruned %d stories (%d articles) older than %s", pruned.stories, pruned.articles, before.isoformat())
        return pruned

    # -- reads that need the caches ---------------------------------------------

    @contextmanager
    def _snapshot(self) -> Iterator[Session]:
        """A read transaction that sees one committed state (a snapshot on both databases)."""
        with self.read_sessions() as session, session.begin():
            session.info[READ_ONLY] = True
            if session.get_bind().dialect.name == "postgresql":
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    def match(self, article: Submission) -> MatchResult:
        """Where ``article`` would go, storing nothing. Takes no write lock: prepared off
        the lock, decided against this process's index after catching up with what
        other processes stored (unless this process is writing, which catches up itself)."""
        if self.lock.acquire(blocking=False):
            try:
                if not self.ready:
                    self._recover()
                else:
                    with self._snapshot() as session:
                        try:
                            self.caches.catch_up(session)
                        except BaseException:
                            self.ready = False  # the caches may hold part of it: rebuilt before the next use
                            raise
            finally:
                self.lock.release()
        [batch] = self.preparer.prepare([Job(0, draft_of(article, datetime.now(UTC)))])
        prepared = batch.prepared[0]
        with self.caches.index_lock:
            decision = self.index.assign(prepared.features, prepared.signature, prepared.published_at)
            duplicates = [(c.article_id, c.similarity) for c in self.index.near_duplicates_.query(prepared.signature)]
        related = decision.story_id if decision.story_id is not None else decision.thread_of
        thread = None
        if related is not None:
            with self._snapshot() as session:
                thread = crud.thread_of(session=session, cluster_id=related)
        return MatchResult(decision.story_id, decision.score, duplicates, thread)
