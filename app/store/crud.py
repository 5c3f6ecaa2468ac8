"""Persistence: plain functions over a SQLAlchemy session (keyword-only). Listings are
``app.store.listing``."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, defer

from app.store.models import Article, Change, Cluster, Correction, Setting, SourceLine, TermArchive
from clustering.vectorise import DocumentFrequencies


def article_by_key(*, session: Session, url: str | None, external_id: str | None) -> Article | None:
    if url is not None:
        found = session.scalar(select(Article).where(Article.url == url))
        if found is not None or external_id is None:
            return found
    if external_id is not None:
        return session.scalar(select(Article).where(Article.external_id == external_id))
    return None


def get_article(*, session: Session, article_id: int) -> Article | None:
    return session.get(Article, article_id)


@dataclass(frozen=True)
class Stored:
    """What answers a repeated POST: the stored article's ids."""

    id: int
    cluster_id: int
    duplicate_of: int | None


_STORED = (Article.id, Article.cluster_id, Article.duplicate_of)
# Built once, like every statement a request runs on the write path: building and
# keying one per call costs as much as running it.
_BY_URL = select(Article.url, *_STORED).where(Article.url.in_(bindparam("keys", expanding=True)))
_BY_EXTERNAL_ID = select(Article.external_id, *_STORED).where(
    Article.external_id.in_(bindparam("keys", expanding=True))
)


def stored_keys(*, session: Session, urls: list[str], external_ids: list[str]) -> tuple[dict, dict]:
    """The stored articles with any of these urls or external ids, by url and by external id."""
    found: tuple[dict[str, Stored], dict[str, Stored]] = ({}, {})
    connection = session.connection()
    for statement, keys, by_key in ((_BY_URL, urls, found[0]), (_BY_EXTERNAL_ID, external_ids, found[1])):
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            for key, *ids in connection.execute(statement, {"keys": keys[start : start + _LOOKUP_CHUNK]}):
                by_key[key] = Stored(*ids)
    return found


def next_id(*, session: Session, table: str) -> int:
    """The next id to hand out in ``table`` (articles or clusters).

    The serialised write step allocates ids itself, in commit order, so a batch knows
    every id before its rows are written in one statement. SQLite never reuses an id
    (AUTOINCREMENT keeps the highest ever used); PostgreSQL takes it from the serial's
    sequence, which ``used_ids`` moves past the ids the batch wrote.
    """
    if session.get_bind().dialect.name == "postgresql":
        return int(session.scalar(text("SELECT nextval(pg_get_serial_sequence(:t, 'id'))"), {"t": table}))
    query = {
        "articles": "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'articles'), 0), "
        "coalesce((SELECT max(id) FROM articles), 0))",
        "clusters": "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'clusters'), 0), "
        "coalesce((SELECT max(id) FROM clusters), 0))",
    }[table]
    return int(session.scalar(text(query))) + 1


def used_ids(*, session: Session, table: str, last: int) -> None:
    """Record that ids up to ``last`` are taken (PostgreSQL's sequence; SQLite keeps it itself)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :last)"), {"t": table, "last": last})


def insert_rows(*, session: Session, model: type, rows: list[dict]) -> None:
    """Insert rows (with their ids) in one executemany, straight to the table."""
    if rows:
        session.connection().execute(insert(model.__table__), rows)


def update_clusters(*, session: Session, rows: list[dict]) -> None:
    """Update stories by id in one executemany (each row holds ``id`` and the new values)."""
    if rows:
        table = Cluster.__table__
        values = {key: bindparam(f"new_{key}") for key in rows[0] if key != "id"}
        statement = update(table).where(table.c.id == bindparam("old_id")).values(values)
        session.connection().execute(
            statement, [{"old_id": row["id"], **{f"new_{k}": v for k, v in row.items() if k != "id"}} for row in rows]
        )


def article_text(*, session: Session, article_id: int) -> str:
    return session.scalar(select(Article.text).where(Article.id == article_id)) or ""


def resolve_cluster(*, session: Session, cluster_id: int) -> tuple[Cluster | None, bool]:
    """The cluster answering for ``cluster_id`` (following merges), and whether it was merged."""
    cluster = session.get(Cluster, cluster_id)
    merged = False
    seen = set()
    while cluster is not None and cluster.merged_into is not None and cluster.id not in seen:
        seen.add(cluster.id)
        cluster = session.get(Cluster, cluster.merged_into)
        merged = True
    return cluster, merged


def summary_members(*, session: Session, cluster_id: int) -> list:
    """The members of a story with what a summary reads (not the raw page), by time."""
    return list(
        session.execute(
            select(Article.id, Article.title, Article.text, Article.source, Article.published_at, Article.duplicate_of)
            .where(Article.cluster_id == cluster_id)
            .order_by(Article.published_at, Article.id)
        )
    )


def member_listing(*, session: Session, cluster_id: int) -> list:
    """The members of a story as its view lists them, by time: ids, links, titles,
    sources, times and copies, without the page, the text or the stored vectors (a
    whole article row is kilobytes, and the view reads every member's)."""
    return list(
        session.execute(
            select(Article.id, Article.url, Article.title, Article.source, Article.published_at, Article.duplicate_of)
            .where(Article.cluster_id == cluster_id)
            .order_by(Article.published_at, Article.id)
        )
    )


def cluster_members(*, session: Session, cluster_id: int) -> list[Article]:
    return list(
        session.scalars(
            select(Article).where(Article.cluster_id == cluster_id).order_by(Article.published_at, Article.id)
        )
    )


def merge_clusters(*, session: Session, survivor_id: int, absorbed_id: int) -> tuple[int, int] | None:
    """Move every article of ``absorbed_id`` to ``survivor_id`` and leave a forward pointer.

    The absorbed story's thread, if another, joins the survivor's: every story of it
    moves. Returns (the thread that went, the thread it joined), or None.
    """
    threads = {
        cluster.id: cluster.thread
        for cluster in session.scalars(select(Cluster).where(Cluster.id.in_([survivor_id, absorbed_id])))
    }
    went, joined = threads.get(absorbed_id), threads.get(survivor_id)
    moved = None
    if went is not None and joined is not None and went != joined:
        session.execute(update(Cluster).where(in_thread(went)).values(thread_id=joined))
        moved = (went, joined)
    session.execute(update(Article).where(Article.cluster_id == absorbed_id).values(cluster_id=survivor_id))
    session.execute(update(Cluster).where(Cluster.merged_into == absorbed_id).values(merged_into=survivor_id))
    session.execute(
        update(Cluster)
        .where(Cluster.id == absorbed_id)
        .values(merged_into=survivor_id, article_count=0, source_count=0)
    )
    return moved


def thread_of(*, session: Session, cluster_id: int) -> int:
    """The thread of a stored story (``Cluster.thread``)."""
    thread = session.scalar(select(Cluster.thread_id).where(Cluster.id == cluster_id))
    return cluster_id if thread is None else thread


def in_thread(thread_id: int) -> ColumnElement[bool]:
    """The condition on ``Cluster`` of being in a thread, a story stored without one
    being in its own."""
    return or_(Cluster.thread_id == thread_id, and_(Cluster.id == thread_id, Cluster.thread_id.is_(None)))


def resolve_thread(*, session: Session, thread_id: int) -> tuple[int, list[Cluster]]:
    """(the thread answering for ``thread_id``, its live stories oldest first). A thread
    whose stories all moved to another, when two of their stories merged, is answered
    by that other: the thread its first story (or that story's survivor) is in now."""
    events = thread_events(session=session, thread_id=thread_id)
    if events:
        return thread_id, events
    story, _ = resolve_cluster(session=session, cluster_id=thread_id)
    if story is None or story.thread == thread_id:
        return thread_id, []
    return story.thread, thread_events(session=session, thread_id=story.thread)


def thread_events(*, session: Session, thread_id: int) -> list[Cluster]:
    """The live stories of a thread, oldest first."""
    return list(
        session.scalars(
            select(Cluster)
            .where(in_thread(thread_id), Cluster.merged_into.is_(None), Cluster.article_count > 0)
            .order_by(Cluster.first_published_at, Cluster.id)
        )
    )


_LOOKUP_CHUNK = 1_000  # fingerprints per lookup, far below either database's bound parameters
_DELETE_CHUNK = 2_000  # ids in one IN (...) list


def add_source_lines(*, session: Session, pages: Counter[tuple[str, str]]) -> None:
    """Count more pages for each (source, line fingerprint): ``pages`` says how many."""
    if not pages:
        return
    # One statement run for every row (executemany), with plain tuples: a page carries
    # dozens of lines, so a batch counts thousands, and building a mapping for each
    # costs more than the database does. The same SQL on SQLite and PostgreSQL.
    marker = "%s" if session.get_bind().dialect.name == "postgresql" else "?"
    statement = (
        f"INSERT INTO source_lines (source, fingerprint, pages) VALUES ({marker}, {marker}, {marker}) "
        "ON CONFLICT (source, fingerprint) DO UPDATE SET pages = source_lines.pages + excluded.pages"
    )
    rows = [(source, fp, n) for (source, fp), n in sorted(pages.items())]
    session.connection().exec_driver_sql(statement, rows)


# Built once: every article's page asks it, and building and keying a statement per call
# cost as much as running it.
_LINE_PAGES = select(SourceLine.fingerprint, SourceLine.pages).where(
    SourceLine.source == bindparam("source"), SourceLine.fingerprint.in_(bindparam("fingerprints", expanding=True))
)


def source_line_pages(*, session: Session, source: str, fingerprints: set[str]) -> dict[str, int]:
    """How many stored pages of ``source`` carried each of ``fingerprints`` (absent: none)."""
    wanted = sorted(fingerprints)
    pages: dict[str, int] = {}
    connection = session.connection()
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        pages.update((fp, n) for fp, n in connection.execute(_LINE_PAGES, {"source": source, "fingerprints": chunk}))
    return pages


# What replaying an article into the in-memory index reads: not the page as posted.
_FOR_INDEX = (defer(Article.raw), defer(Article.removed))


def index_rows(*, session: Session, active_since: datetime | None = None) -> Iterator[Row]:
    """Stored articles in insertion order, as plain rows of the columns the index reads
    (id, cluster_id, published_at, features, embedding, signature, duplicate_of), to
    rebuild it; with ``active_since``, only those of stories whose newest article is
    that recent."""
    statement = select(
        Article.id,
        Article.cluster_id,
        Article.published_at,
        Article.features,
        Article.embedding,
        Article.signature,
        Article.duplicate_of,
    )
    if active_since is not None:
        statement = statement.join(Cluster, Article.cluster_id == Cluster.id).where(
            Cluster.last_published_at >= active_since
        )
    yield from session.execute(statement.order_by(Article.id).execution_options(yield_per=5_000))


def stream_clock(*, session: Session) -> datetime | None:
    """The newest ``published_at`` ever stored: it never goes back, even after removals,
    because a takedown or a prune records it (``put_stream_clock``) before deleting."""
    stored = get_setting(session=session, key="stream_clock")
    newest = session.scalar(select(func.max(Article.published_at)))
    recorded = datetime.fromisoformat(stored["at"]) if stored is not None else None
    return max(filter(None, (recorded, newest)), default=None)


def put_stream_clock(*, session: Session, at: datetime) -> None:
    put_setting(session=session, key="stream_clock", value={"at": at.isoformat()})


def articles_near(*, session: Session, start: datetime, end: datetime) -> list[Article]:
    """Every article of the stories with an article published in [start, end], in id order."""
    stories = select(Article.cluster_id).where(Article.published_at >= start, Article.published_at <= end)
    return list(
        session.scalars(
            select(Article).options(*_FOR_INDEX).where(Article.cluster_id.in_(stories)).order_by(Article.id)
        )
    )


def story_articles_before(*, session: Session, cluster_id: int, article_id: int) -> list[Article]:
    """The articles of a story stored before ``article_id``, in id order."""
    return list(
        session.scalars(
            select(Article)
            .options(*_FOR_INDEX)
            .where(Article.cluster_id == cluster_id, Article.id < article_id)
            .order_by(Article.id)
        )
    )


def stored_vectors(*, session: Session, article_ids: list[int]) -> list[tuple[int, bytes | None]]:
    """(id, stored term vectors) of the articles ``article_ids`` that are stored, read on
    the session's connection: rows the running transaction has written are seen, and
    nothing of it is flushed early."""
    return [
        tuple(row)
        for row in session.connection().execute(select(Article.id, Article.features).where(Article.id.in_(article_ids)))
    ]


def articles_after(*, session: Session, article_id: int) -> list[Article]:
    """Stored articles with a higher id than ``article_id``, in id order."""
    return list(
        session.scalars(select(Article).options(*_FOR_INDEX).where(Article.id > article_id).order_by(Article.id))
    )


def delete_article(*, session: Session, article: Article) -> None:
    """Delete ``article``; its copies point at the earliest remaining copy instead."""
    copies = list(session.scalars(select(Article.id).where(Article.duplicate_of == article.id).order_by(Article.id)))
    if copies:
        root, rest = copies[0], copies[1:]
        session.execute(update(Article).where(Article.id == root).values(duplicate_of=None))
        if rest:
            session.execute(update(Article).where(Article.id.in_(rest)).values(duplicate_of=root))
    session.delete(article)
    session.flush()


def empty_cluster(*, session: Session, cluster_id: int, at: datetime) -> None:
    """Record that a story has no article left (taken down or moved away): it leaves listings."""
    session.execute(
        update(Cluster)
        .where(Cluster.id == cluster_id)
        .values(article_count=0, source_count=0, sources=[], updated_at=at)
    )


def forget_features(*, session: Session) -> int:
    """Clear every stored term vector (they are made again when loaded); returns how many."""
    return session.execute(update(Article).where(Article.features.is_not(None)).values(features=None)).rowcount


def last_article_id(*, session: Session) -> int:
    return session.scalar(select(func.max(Article.id))) or 0


def article_ledger(*, session: Session, up_to: int) -> list[int]:
    """[count, sum of ids, sum of story ids] of the articles with an id up to ``up_to``:
    what a copy of the index made from them must still match (``app.service.snapshot``).
    Written as sums over the whole table so SQLite reads its smallest covering index
    (story id and row id), not every row: a range on the id would read the rows
    themselves, ten times slower."""
    kept = Article.id <= up_to
    row = session.execute(
        select(
            func.count(case((kept, 1))),
            func.coalesce(func.sum(case((kept, Article.id))), 0),
            func.coalesce(func.sum(case((kept, Article.cluster_id))), 0),
        )
    ).one()
    return [int(value) for value in row]


def forget_embeddings(*, session: Session) -> int:
    """Clear every stored embedding (they are made again when loaded); returns how many."""
    return session.execute(update(Article).where(Article.embedding.is_not(None)).values(embedding=None)).rowcount


def reshapes(*, session: Session) -> int:
    """How many changes replaying new articles cannot reproduce (merges, takedowns,
    prunes) were ever committed; a process whose caches saw fewer rebuilds them."""
    stored = get_setting(session=session, key="reshapes")
    return int(stored["count"]) if stored else 0


_NEWEST_AND_RESHAPES = select(
    select(func.max(Article.id)).scalar_subquery(),
    select(Setting.value).where(Setting.key == "reshapes").scalar_subquery(),
)


def newest_and_reshapes(*, session: Session) -> tuple[int, int]:
    """The newest article id and ``reshapes``, in one query (a write step's first look)."""
    article_id, stored = session.connection().execute(_NEWEST_AND_RESHAPES).one()
    if isinstance(stored, str):  # SQLite returns JSON from a subquery as text
        stored = json.loads(stored)
    return article_id or 0, int(stored["count"]) if stored else 0


def count_reshape(*, session: Session) -> int:
    count = reshapes(session=session) + 1
    put_setting(session=session, key="reshapes", value={"count": count})
    return count


@dataclass(frozen=True)
class Pruned:
    story_ids: list[int]
    articles: int

    @property
    def stories(self) -> int:
        return len(self.story_ids)


def prune(*, session: Session, before: datetime) -> Pruned:
    """Delete the stories whose newest article is older than ``before``, with their
    articles and the ids merged into them. Stories left empty by takedowns whose last
    update is older than ``before`` go too."""
    doomed = list(
        session.scalars(
            select(Cluster.id).where(
                Cluster.merged_into.is_(None),
                or_(
                    Cluster.last_published_at < before,
                    and_(Cluster.article_count == 0, Cluster.updated_at < before),
                ),
            )
        )
    )
    articles = 0
    for start in range(0, len(doomed), _DELETE_CHUNK):
        chunk = doomed[start : start + _DELETE_CHUNK]
        members = select(Article.id).where(Article.cluster_id.in_(chunk))
        # Copies always share their original's story; this only guards the foreign key.
        session.execute(
            update(Article)
            .where(Article.duplicate_of.in_(members), Article.cluster_id.not_in(chunk))
            .values(duplicate_of=None)
        )
        session.execute(update(Article).where(Article.cluster_id.in_(chunk)).values(duplicate_of=None))
        articles += session.execute(delete(Article).where(Article.cluster_id.in_(chunk))).rowcount
        session.execute(delete(Cluster).where(Cluster.merged_into.in_(chunk)))
        session.execute(delete(Cluster).where(Cluster.id.in_(chunk)))
    return Pruned(doomed, articles)


def _int32s(data: bytes) -> np.ndarray:
    return np.frombuffer(zlib.decompress(data), dtype="<i4")


def get_term_archive(*, session: Session) -> DocumentFrequencies | None:
    row = session.get(TermArchive, 1)
    if row is None:
        return None
    return DocumentFrequencies.from_counts(row.n_docs, _int32s(row.terms), _int32s(row.counts))


def delete_term_archive(*, session: Session) -> bool:
    """Drop the stored document frequencies; whether there were any."""
    return bool(session.execute(delete(TermArchive)).rowcount)


def put_term_archive(*, session: Session, archive: DocumentFrequencies) -> None:
    n_docs, terms, counts = archive.to_counts()
    session.merge(
        TermArchive(
            id=1,
            n_docs=n_docs,
            terms=zlib.compress(terms.astype("<i4").tobytes()),
            counts=zlib.compress(counts.astype("<i4").tobytes()),
        )
    )


# -- corrections -----------------------------------------------------------------


def copy_group(*, session: Session, article: Article) -> list[int]:
    """The article and its near-duplicates (its original, and every copy of that), by id."""
    root = article.duplicate_of if article.duplicate_of is not None else article.id
    return list(
        session.scalars(
            select(Article.id).where(or_(Article.id == root, Article.duplicate_of == root)).order_by(Article.id)
        )
    )


def member_ids(*, session: Session, cluster_id: int) -> list[int]:
    return list(session.scalars(select(Article.id).where(Article.cluster_id == cluster_id).order_by(Article.id)))


def move_articles(*, session: Session, article_ids: list[int], cluster_id: int) -> dict[int, int | None]:
    """Move articles to another story. A near-duplicate group the move cuts in two becomes
    two groups, each rooted on its earliest article. Returns the changed ``duplicate_of``
    of every article whose original changed."""
    moving = set(article_ids)
    found = list(session.execute(select(Article.id, Article.duplicate_of).where(Article.id.in_(moving))))
    roots = {original if original is not None else article_id for article_id, original in found}
    groups: dict[int, list[int]] = {}
    for article_id, original in session.execute(
        select(Article.id, Article.duplicate_of)
        .where(or_(Article.id.in_(roots), Article.duplicate_of.in_(roots)))
        .order_by(Article.id)
    ):
        groups.setdefault(original if original is not None else article_id, []).append(article_id)
    changed: dict[int, int | None] = {}
    for root, group in groups.items():
        parts = [[a for a in group if a in moving], [a for a in group if a not in moving]]
        if not all(parts):
            continue
        for part in parts:
            for article_id in part:
                new = None if article_id == part[0] else part[0]
                if new != (None if article_id == root else root):
                    changed[article_id] = new
    for article_id, original in changed.items():
        session.execute(update(Article).where(Article.id == article_id).values(duplicate_of=original))
    session.execute(update(Article).where(Article.id.in_(moving)).values(cluster_id=cluster_id))
    return changed


def add_correction(*, session: Session, **values) -> Correction:
    correction = Correction(**values)
    session.add(correction)
    session.flush()
    return correction


def get_correction(*, session: Session, correction_id: int) -> Correction | None:
    return session.get(Correction, correction_id)


def corrections_after(*, session: Session, after: int, limit: int) -> list[Correction]:
    return list(session.scalars(select(Correction).where(Correction.id > after).order_by(Correction.id).limit(limit)))


def corrections_of(*, session: Session, kinds: tuple[str, ...]) -> list[Correction]:
    """Every stored correction of these kinds, newest first."""
    return list(session.scalars(select(Correction).where(Correction.kind.in_(kinds)).order_by(Correction.id.desc())))


def correction_facts(*, session: Session) -> list[tuple[str, int, int, list[int]]]:
    """(kind, cluster id, into cluster id, article ids) of every correction, in order."""
    return [
        (kind, cluster_id, into, list(article_ids))
        for kind, cluster_id, into, article_ids in session.execute(
            select(Correction.kind, Correction.cluster_id, Correction.into_cluster_id, Correction.article_ids).order_by(
                Correction.id
            )
        )
    ]


def set_decisions(*, session: Session, decisions: dict[int, dict]) -> None:
    for article_id, decision in decisions.items():
        session.execute(update(Article).where(Article.id == article_id).values(decision=decision))


# -- change feed -----------------------------------------------------------------


def add_changes(*, session: Session, changes: list[dict]) -> None:
    """Append events to the feed in list order (``seq`` follows insertion, under the assign lock)."""
    if changes:
        session.execute(insert(Change), changes)


def changes_after(*, session: Session, after: int, limit: int) -> list[Change]:
    return list(session.scalars(select(Change).where(Change.seq > after).order_by(Change.seq).limit(limit)))


def last_change(*, session: Session) -> int:
    return session.scalar(select(func.max(Change.seq))) or 0


def merged_pairs(*, session: Session) -> list[tuple[int, int]]:
    return list(session.execute(select(Cluster.id, Cluster.merged_into).where(Cluster.merged_into.is_not(None))))


def get_setting(*, session: Session, key: str) -> dict | None:
    return session.connection().execute(select(Setting.value).where(Setting.key == key)).scalar()


def put_setting(*, session: Session, key: str, value: dict) -> None:
    """Insert or replace one setting in a single statement."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Setting.__table__).values(key=key, value=value)
    session.connection().execute(
        statement.on_conflict_do_update(index_elements=[Setting.key], set_={"value": statement.excluded.value})
    )
