"""What a process holds of the database, rebuilt from it: the caches behind the write step.

``Caches`` keeps the story index (``clustering.assign.StoryIndex``), the running summary
state of recent stories, the texts of recent articles, the hashed index of keyword
terms, and how far this process has caught up: the newest article it holds, the
reshapes (merges, takedowns, prunes, corrections) it knows of, the
editorial constraints of the stored corrections, and the newest page of each source
whose template lines it has seen. Each is a cache: ``rebuild`` makes them all again
from the database, and ``catch_up`` brings them level with what other processes
committed since. The write step (``app.service.ingest``) owns the only lock they need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Row
from sqlalchemy.orm import Session, object_session

from app.service import snapshot
from app.service.vectors import StoredVectors
from app.store import crud
from app.store.models import Article
from clustering import embed, fingerprint
from clustering.assign import StoredArticle, StoryIndex
from clustering.editorial import Editorial
from clustering.normalise import stems
from clustering.summarise import Digest, Member
from clustering.vectorise import ArticleFeatures, PackedFeatures, features, term_indices

log = logging.getLogger(__name__)

_DIGESTS_CACHED = 4_096  # stories whose summary state is kept between transactions
_TEXTS_CACHED = 4_096  # recent articles' texts, for the lead of a story's summary
_TERM_INDICES_CACHED = 200_000  # keyword terms whose hashed index is kept
_REBUILT_AT_ONCE = 50_000  # window articles replayed in one array pass (bounds the pass's memory)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
_MAPPED_FROM = 1 << 20  # bytes: blocks this large are mapped apart (each costs a system call)
READ_ONLY = "read_only"  # a session.info key: the session reads a snapshot and writes nothing


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def stored_embedding(article: Article) -> np.ndarray:
    """A stored article's embedding; one stored without it gets it as ingest made it."""
    if article.embedding is not None:
        return embed.from_bytes(article.embedding)
    return embed.embed(article.title, article.text)


def stored_features(article: Article) -> ArticleFeatures:
    """A stored article's features as they were when it was ingested. An article stored
    without its term vectors or embedding (before they were kept, or under another
    scheme) gets them now, written back with the running transaction unless it reads
    a snapshot (``READ_ONLY``)."""
    embedding = stored_embedding(article)
    if article.features is not None:
        packed = PackedFeatures.from_bytes(article.features, embedding)
    else:
        packed = features(article.title, article.text, embedding).pack()
    session = object_session(article)
    if session is not None and not session.info.get(READ_ONLY):
        if article.embedding is None:
            article.embedding = embed.to_bytes(embedding)
        if article.features is None:
            article.features = packed.to_bytes()
    return packed.unpack()


def _survivor(cluster_id: int, forward: Mapping[int, int]) -> int:
    """The story a stored cluster id answers for now (``forward``: absorbed -> survivor)."""
    while cluster_id in forward:  # stale pointer of a merged story
        cluster_id = forward[cluster_id]
    return cluster_id


def _replayed(row: Row, forward: Mapping[int, int], packed: PackedFeatures, signature: np.ndarray) -> StoredArticle:
    return StoredArticle(
        row.id, _survivor(row.cluster_id, forward), as_utc(row.published_at), packed, signature, row.duplicate_of
    )


def stored_articles(session: Session, rows: list[Row], forward: Mapping[int, int]) -> list[StoredArticle]:
    """Rows of ``crud.index_rows`` as the index replays them, in their order, each story
    followed through merges (``forward``: absorbed story -> survivor). The stored forms
    of all rows that have them are read in one pass of array work; a row stored without
    its features or embedding gets them as ``stored_features`` makes them."""
    whole = [k for k, row in enumerate(rows) if row.features is not None and row.embedding is not None]
    made: dict[int, StoredArticle] = {}
    if whole:
        embeddings = embed.many_from_bytes([rows[k].embedding for k in whole])
        packed = PackedFeatures.many_from_bytes([rows[k].features for k in whole], embeddings)
        signatures = fingerprint.many_from_bytes([rows[k].signature for k in whole])
        for k, features_, signature in zip(whole, packed, signatures):
            made[k] = _replayed(rows[k], forward, features_, signature)
    return [
        made[k]
        if k in made
        else _replayed(
            row, forward, stored_features(session.get(Article, row.id)).pack(), fingerprint.from_bytes(row.signature)
        )
        for k, row in enumerate(rows)
    ]


def map_large_blocks() -> None:
    """Have glibc map every block of 1 MiB or more apart, and unmap it when it is freed.
    By default glibc raises its mmap threshold to the largest mapped block freed so far
    (up to 32 MiB); after that, the index's arrays, reallocated as they grow, and the
    write step's larger scratch arrays are carved from the heap, and a freed one stays in
    the process behind any block still held above it. Setting the threshold fixes it (and
    turns the raising off). Elsewhere (no glibc) nothing happens."""
    try:
        _libc().mallopt(_M_MMAP_THRESHOLD, _MAPPED_FROM)
    except (OSError, AttributeError):
        pass


def _return_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc ``malloc_trim``): a rebuild's
    array passes leave a few hundred MiB free that the allocator would otherwise keep, so
    the process's RSS stays at its peak. Elsewhere (no glibc) nothing happens."""
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        pass


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")  # found once: a lookup runs ldconfig


def nothing_pending() -> None:
    """The flush of a transaction that has written nothing yet (catching up)."""


class Caches:
    """The caches of one process (see the module docstring). ``index_lock`` guards the
    index between the write step, which changes it, and dry-run matches, which read it."""

    def __init__(self, horizon_days: float | None = None):
        self.horizon_days = horizon_days  # stories quieter than this leave the index
        self.vectors = StoredVectors()  # members' term vectors, read back from the database
        self.index = StoryIndex(horizon_days=horizon_days, vectors=self.vectors)
        self.index_lock = threading.RLock()
        self.digests: OrderedDict[int, Digest] = OrderedDict()  # summary state of recent stories
        self.texts: OrderedDict[int, str] = OrderedDict()  # texts of recent articles
        self.term_indices: dict[str, int] = {}  # hashed index of keyword terms, under their stems
        self.sources: dict[str, int] = {}  # newest article each source's template lines came from
        self.sources_floor = 0  # every source's newest page is at most this, unless in ``sources``
        self.evictions_stored = 0  # index evictions whose document frequencies are stored
        self.last_article_id = 0  # the newest stored article the caches hold
        self.reshapes_seen = 0  # merges, takedowns, prunes and corrections the caches know of
        self.editorial = Editorial()  # what editors' corrections hold later decisions to

    def sizes(self) -> dict[str, int]:
        """Entries of the in-memory indexes (for the metrics)."""
        index = self.index
        return {
            "articles": len(index.article_story_),
            "stories": len(index.stories_),
            "near_duplicate_signatures": len(index.near_duplicates_),
        }

    def rebuild(self, session: Session) -> None:
        self.vectors.begin(session)
        index = StoryIndex(self.index.params, self.horizon_days, self.vectors)
        archive = crud.get_term_archive(session=session)
        if archive is not None:
            index.load_archive(archive)
        forward = dict(crud.merged_pairs(session=session))
        clock = crud.stream_clock(session=session)
        active_since = index.horizon_start(clock) if clock is not None else None
        last = 0
        batch: list[Row] = []
        for row in crud.index_rows(session=session, active_since=active_since):
            batch.append(row)
            last = max(last, row.id)
            if len(batch) == _REBUILT_AT_ONCE:
                index.add_many(stored_articles(session, batch, forward))
                batch.clear()
        index.add_many(stored_articles(session, batch, forward))
        batch.clear()
        if clock is not None:
            index.advance_clock(clock)
        index.settle()
        with self.index_lock:
            self.index = index
        self._restarted(
            session,
            max(last, crud.last_article_id(session=session)),
            crud.reshapes(session=session),
            index.evictions_,
            forward,
        )
        _return_free_memory()
        log.info("caches rebuilt: %d articles, %d stories", *self._held())

    def start(self, session: Session, snapshot_path: Path | None = None) -> None:
        """Fill the caches at start: from the index kept in ``snapshot_path`` when it may
        be trusted (``app.service.snapshot``), caught up with what was stored after it;
        else rebuilt from the database."""
        map_large_blocks()
        found = snapshot.read(snapshot_path, self.index, session=session) if snapshot_path is not None else None
        if found is None:
            self.rebuild(session)
            return
        index, mark = found
        with self.index_lock:
            self.index = index
        self._restarted(session, mark.last_article_id, mark.reshapes, mark.evictions_stored)
        self.catch_up(session)
        _return_free_memory()
        log.info("caches loaded from %s: %d articles, %d stories", snapshot_path, *self._held())

    def save(self, session: Session, snapshot_path: Path) -> None:
        """Keep the index in ``snapshot_path`` for the next start. The caller holds the
        write lock, so the index is level with ``last_article_id``."""
        with self.index_lock:
            mark = snapshot.Mark(self.last_article_id, self.reshapes_seen, self.evictions_stored)
            snapshot.write(snapshot_path, self.index, mark, session=session)
        log.info("index kept in %s: %d articles, %d stories", snapshot_path, *self._held())

    def _held(self) -> tuple[int, int]:
        return len(self.index.article_story_), len(self.index.stories_)

    def _restarted(
        self,
        session: Session,
        last_article_id: int,
        reshapes: int,
        evictions_stored: int,
        forward: Mapping[int, int] | None = None,
    ) -> None:
        """Bookkeeping of caches whose index was just made whole up to ``last_article_id``
        (``forward``: absorbed story -> survivor, when the caller has read it already)."""
        self.last_article_id = last_article_id
        self.reshapes_seen = reshapes
        self.evictions_stored = evictions_stored
        self.digests.clear()
        self.sources.clear()
        self.sources_floor = self.last_article_id
        if forward is None:
            forward = dict(crud.merged_pairs(session=session))
        self.editorial = Editorial.from_corrections(crud.correction_facts(session=session), forward)

    @staticmethod
    def replay(index: StoryIndex, article: Article) -> None:
        """Add one stored article, of a live story, to ``index``."""
        index.add(
            article.id,
            article.cluster_id,
            as_utc(article.published_at),
            stored_features(article),
            fingerprint.from_bytes(article.signature),
            article.duplicate_of,
        )

    def catch_up(self, session: Session) -> None:
        """Apply what other processes committed since this one last looked.

        Runs inside the serialised step (or in a snapshot read), so the articles seen
        are a prefix of the commit order: articles with a higher id than the last one
        applied are added to the index (ids are handed out under the same lock, in
        commit order); a merge, takedown or prune made elsewhere rebuilds everything,
        which is rare.
        """
        self.vectors.begin(session)  # a transaction that may change the index starts here
        newest, reshapes = crud.newest_and_reshapes(session=session)
        if reshapes != self.reshapes_seen:
            self.rebuild(session)
            return
        if newest <= self.last_article_id:  # nothing new: the usual case, one query
            return
        newer = crud.articles_after(session=session, article_id=self.last_article_id)
        for article in newer:  # no merge happened since: every cluster id is live
            with self.index_lock:
                self.apply(
                    session,
                    article.id,
                    article.cluster_id,
                    as_utc(article.published_at),
                    stored_features(article),
                    fingerprint.from_bytes(article.signature),
                    article.duplicate_of,
                    flush=nothing_pending,
                )
            self.forget_digest(article.cluster_id)
            if article.source is not None:
                self.sources[article.source] = article.id
            self.last_article_id = article.id
        log.info("caught up with %d articles stored by other processes", len(newer))

    def apply(
        self,
        session: Session,
        article_id: int,
        cluster_id: int,
        published_at: datetime,
        feats: ArticleFeatures,
        signature: np.ndarray,
        duplicate_of: int | None,
        flush=None,
    ) -> None:
        """Add a stored article to the index. A story that had left the window and is
        back in it comes back whole, as a restart would load it (``flush`` first writes
        the running transaction's rows, so the story's members can be read; None: the
        story is new, nothing comes back)."""
        returning = (
            flush is not None
            and self.index.horizon_days is not None
            and cluster_id not in self.index.stories_
            and not self.index.outside_window(published_at)
        )
        self.index.add(article_id, cluster_id, published_at, feats, signature, duplicate_of)
        if returning:  # the new article first: it keeps the story inside the window while the rest come back
            flush()
            for member in crud.story_articles_before(session=session, cluster_id=cluster_id, article_id=article_id):
                self.replay(self.index, member)

    def digest(self, session: Session, touched: dict[int, Digest], cluster_id: int, opened: bool) -> Digest:
        """The running summary state of a story this transaction touches: new, kept from
        earlier transactions, or read from its stored members once."""
        digest = touched.get(cluster_id)
        if digest is not None:
            return digest
        digest = Digest() if opened else self.digests.get(cluster_id)
        if digest is None:
            digest = Digest()
            for m in crud.summary_members(session=session, cluster_id=cluster_id):
                digest.add(Member(m.id, m.title, m.text, m.source, as_utc(m.published_at), m.duplicate_of))
        self.digests[cluster_id] = touched[cluster_id] = digest
        self.digests.move_to_end(cluster_id)
        while len(self.digests) > _DIGESTS_CACHED:
            self.digests.popitem(last=False)
        return digest

    def forget_digest(self, cluster_id: int) -> None:
        self.digests.pop(cluster_id, None)

    def text_of(self, session: Session, pending: Mapping[int, str], article_id: int) -> str:
        found = pending.get(article_id)
        if found is None:
            found = self.texts.get(article_id)
        if found is None:
            found = crud.article_text(session=session, article_id=article_id)
        return found

    def idf(self, terms: list[str]) -> np.ndarray:
        """IDF of display words (keywords), counted under their stems as the index counts them."""
        missing = [t for t in terms if t not in self.term_indices]
        if missing:
            if len(self.term_indices) + len(missing) > _TERM_INDICES_CACHED:
                self.term_indices.clear()
            self.term_indices.update(zip(missing, term_indices(stems(missing)).tolist()))
        return self.index.df_.idf(np.fromiter((self.term_indices[t] for t in terms), dtype=np.int64, count=len(terms)))

    def remember_texts(self, texts: Mapping[int, str]) -> None:
        """Keep the texts of articles just stored, for the leads of later summaries."""
        for article_id, body in texts.items():
            self.texts[article_id] = body
        while len(self.texts) > _TEXTS_CACHED:
            self.texts.popitem(last=False)

    def source_changed_since(self, source: str, seen_id: int) -> bool:
        """Whether a page of ``source`` newer than article ``seen_id`` may have been stored."""
        return self.sources.get(source, self.sources_floor) > seen_id
