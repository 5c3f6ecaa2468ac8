"""Persistence: plain functions over a SQLAlchemy session (keyword-only)."""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from sqlalchemy import (
    Text, and_, bindparam, case, cast, delete, distinct, exists, func, insert, or_, select, text, update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, defer

from app.models import Article, Change, Cluster, Setting, SourceLine, TermArchive
from clustering.vectorise import DocumentFrequencies


class InvalidCursor(ValueError):
    """A pagination cursor this service did not issue."""


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


def stored_keys(*, session: Session, urls: list[str], external_ids: list[str]) -> tuple[dict, dict]:
    """The stored articles with any of these urls or external ids, by url and by external id."""
    by_url: dict[str, Stored] = {}
    by_external: dict[str, Stored] = {}
    columns = (Article.id, Article.cluster_id, Article.duplicate_of)
    connection = session.connection()
    for start in range(0, len(urls), _LOOKUP_CHUNK):
        chunk = urls[start : start + _LOOKUP_CHUNK]
        for url, *ids in connection.execute(select(Article.url, *columns).where(Article.url.in_(chunk))):
            by_url[url] = Stored(*ids)
    for start in range(0, len(external_ids), _LOOKUP_CHUNK):
        chunk = external_ids[start : start + _LOOKUP_CHUNK]
        statement = select(Article.external_id, *columns).where(Article.external_id.in_(chunk))
        for external_id, *ids in connection.execute(statement):
            by_external[external_id] = Stored(*ids)
    return by_url, by_external


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


def cluster_members(*, session: Session, cluster_id: int) -> list[Article]:
    return list(
        session.scalars(select(Article).where(Article.cluster_id == cluster_id).order_by(Article.published_at, Article.id))
    )


def merge_clusters(*, session: Session, survivor_id: int, absorbed_id: int) -> None:
    """Move every article of ``absorbed_id`` to ``survivor_id`` and leave a forward pointer."""
    session.execute(update(Article).where(Article.cluster_id == absorbed_id).values(cluster_id=survivor_id))
    session.execute(update(Cluster).where(Cluster.merged_into == absorbed_id).values(merged_into=survivor_id))
    session.execute(
        update(Cluster).where(Cluster.id == absorbed_id).values(merged_into=survivor_id, article_count=0, source_count=0)
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


def source_line_pages(*, session: Session, source: str, fingerprints: set[str]) -> dict[str, int]:
    """How many stored pages of ``source`` carried each of ``fingerprints`` (absent: none)."""
    wanted = sorted(fingerprints)
    pages: dict[str, int] = {}
    connection = session.connection()
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        statement = select(SourceLine.fingerprint, SourceLine.pages).where(
            SourceLine.source == source, SourceLine.fingerprint.in_(wanted[start : start + _LOOKUP_CHUNK])
        )
        pages.update((fp, n) for fp, n in connection.execute(statement))
    return pages


# What replaying an article into the in-memory index reads: not the page as posted.
_FOR_INDEX = (defer(Article.raw), defer(Article.removed))


def iter_articles(*, session: Session, active_since: datetime | None = None) -> Iterator[Article]:
    """Stored articles in insertion order (to rebuild in-memory indexes); with
    ``active_since``, only those of stories whose newest article is that recent."""
    statement = select(Article).options(*_FOR_INDEX)
    if active_since is not None:
        statement = statement.join(Cluster, Article.cluster_id == Cluster.id).where(
            Cluster.last_published_at >= active_since
        )
    yield from session.scalars(statement.order_by(Article.id).execution_options(yield_per=2_000))


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
    return list(session.scalars(select(Article).options(*_FOR_INDEX).where(Article.cluster_id.in_(stories)).order_by(Article.id)))


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


def articles_after(*, session: Session, article_id: int) -> list[Article]:
    """Stored articles with a higher id than ``article_id``, in id order."""
    return list(session.scalars(select(Article).options(*_FOR_INDEX).where(Article.id > article_id).order_by(Article.id)))


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


def forget_features(*, session: Session) -> int:
    """Clear every stored term vector (they are made again when loaded); returns how many."""
    return session.execute(update(Article).where(Article.features.is_not(None)).values(features=None)).rowcount


def last_article_id(*, session: Session) -> int:
    return session.scalar(select(func.max(Article.id))) or 0


def forget_embeddings(*, session: Session) -> int:
    """Clear every stored embedding (they are made again when loaded); returns how many."""
    return session.execute(update(Article).where(Article.embedding.is_not(None)).values(embedding=None)).rowcount


def reshapes(*, session: Session) -> int:
    """How many changes replaying new articles cannot reproduce (merges, takedowns,
    prunes) were ever committed; a process whose caches saw fewer rebuilds them."""
    stored = get_setting(session=session, key="reshapes")
    return int(stored["count"]) if stored else 0


def newest_and_reshapes(*, session: Session) -> tuple[int, int]:
    """The newest article id and ``reshapes``, in one query (a write step's first look)."""
    newest = select(func.max(Article.id)).scalar_subquery()
    count = select(Setting.value).where(Setting.key == "reshapes").scalar_subquery()
    article_id, stored = session.connection().execute(select(newest, count)).one()
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


# -- listing -------------------------------------------------------------------
#
# Pages are cut from a snapshot, so paging never skips nor repeats a story while
# articles keep arriving. The first page records the newest article and story ids
# (ids grow in commit order, under the assign lock); every later page ranks the
# stories that existed then by what they held then: a story that gained articles
# since is ranked by its articles up to the snapshot. Stories opened after the first
# page are left for the next paging. ``trending`` ranks by growth in the
# ``TRENDING_HOURS`` before the newest article at the snapshot:
#
#     score = articles published in the window + 2 x outlets new to the story in it
#
# and lists only stories with a score (growth) in that window.

_MAX_ID = 2**63 - 1
SORTS = ("latest", "largest", "trending")
TRENDING_HOURS = 24
_SORT_COLUMN = {"latest": Cluster.last_published_at, "largest": Cluster.article_count}


@dataclass(frozen=True)
class Snapshot:
    """What a paging saw first: the newest article and story ids, and the stream clock."""

    article_id: int
    cluster_id: int
    clock: datetime | None


@dataclass(frozen=True)
class Cursor:
    sort: str
    key: object  # latest: a time; largest and trending: an int
    cluster_id: int
    snapshot: Snapshot


def encode_cursor(cursor: Cursor) -> str:
    key = cursor.key.isoformat() if isinstance(cursor.key, datetime) else cursor.key
    snap = cursor.snapshot
    clock = snap.clock.isoformat() if snap.clock else None
    raw = json.dumps([cursor.sort, key, cursor.cluster_id, snap.article_id, snap.cluster_id, clock],
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bounded_int(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_ID  # bool is not an int here


def decode_cursor(cursor: str, sort: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, key, cluster_id, article_at, cluster_at, clock = json.loads(raw)
        if cursor_sort != sort or not all(_bounded_int(v) for v in (cluster_id, article_at, cluster_at)):
            raise ValueError
        if sort == "latest":
            key = datetime.fromisoformat(key)
        elif not _bounded_int(key):
            raise ValueError
        clock = None if clock is None else datetime.fromisoformat(clock)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as err:
        raise InvalidCursor("cursor is not one this service issued for this sort order") from err
    return Cursor(sort, key, cluster_id, Snapshot(article_at, cluster_at, clock))


def snapshot(*, session: Session) -> Snapshot:
    return Snapshot(
        session.scalar(select(func.max(Article.id))) or 0,
        session.scalar(select(func.max(Cluster.id))) or 0,
        stream_clock(session=session),
    )


@dataclass(frozen=True)
class _Ranked:
    key: object
    cluster_id: int


def list_clusters(
    *,
    session: Session,
    sort: str = "latest",
    limit: int = 20,
    cursor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: str | None = None,
    q: str | None = None,
    min_articles: int = 1,
) -> tuple[list[Cluster], str | None]:
    """One page of live clusters in ``sort`` order and the cursor of the next page."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}")
    after = decode_cursor(cursor, sort) if cursor is not None else None
    snap = after.snapshot if after else snapshot(session=session)
    live = _live_clusters(session, snap, source, q)
    if sort == "trending":
        ranked = _trending(session, snap, live, since, until, min_articles, after, limit + 1)
    else:
        ranked = _ranked(session, sort, snap, live, since, until, min_articles, after, limit + 1)
    rows = {c.id: c for c in session.scalars(select(Cluster).where(Cluster.id.in_([r.cluster_id for r in ranked])))}
    ranked = [r for r in ranked if r.cluster_id in rows]
    next_cursor = None
    if len(ranked) > limit:
        ranked = ranked[:limit]
        last = ranked[-1]
        next_cursor = encode_cursor(Cursor(sort, last.key, last.cluster_id, snap))
    return [rows[r.cluster_id] for r in ranked], next_cursor


def _live_clusters(session: Session, snap: Snapshot, source: str | None, q: str | None) -> list:
    """Conditions on ``Cluster``: the story existed at the snapshot and still does, and
    matches the filters that read current values."""
    # "id + 0": the bound holds on every page but is almost never selective, and as a
    # bare column it tempts SQLite into scanning the id range and sorting, where the
    # sort order's index reads one page.
    conditions = [Cluster.merged_into.is_(None), Cluster.id + 0 <= snap.cluster_id]
    if source is not None:
        # An alias, so the subquery correlates with the story only, also in queries
        # that select from articles themselves (trending, stories grown since).
        member = aliased(Article)
        conditions.append(exists().where(member.cluster_id == Cluster.id, member.source == source))
    if q:
        lower = func.unicode_lower if session.get_bind().dialect.name == "sqlite" else func.lower
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                lower(Cluster.title).like(pattern, escape="\\"),
                lower(cast(Cluster.keywords, Text)).like(pattern, escape="\\"),
            )
        )
    return conditions


def _before(key: object, cluster_id: int, after: Cursor | None) -> bool:
    return after is None or (key, cluster_id) < (after.key, after.cluster_id)


def _ranked(
    session: Session,
    sort: str,
    snap: Snapshot,
    live: list,
    since: datetime | None,
    until: datetime | None,
    min_articles: int,
    after: Cursor | None,
    count: int,
) -> list[_Ranked]:
    """``count`` stories by ``sort`` as of the snapshot, after the cursor."""
    column = _SORT_COLUMN[sort]
    # No DISTINCT in SQL: with it SQLite scans the whole (cluster_id, ...) index instead
    # of the few ids above the snapshot.
    grown = set(session.scalars(select(Article.cluster_id).where(Article.id > snap.article_id)))
    # Stories untouched since the snapshot: their stored summary is what they were then.
    statement = select(Cluster.id, column).where(
        *live, Cluster.id.not_in(grown), Cluster.article_count >= max(min_articles, 1)
    )
    if since is not None:
        statement = statement.where(Cluster.last_published_at >= since)
    if until is not None:
        statement = statement.where(Cluster.first_published_at <= until)
    if after is not None:
        statement = statement.where(
            or_(column < after.key, and_(column == after.key, Cluster.id < after.cluster_id))
        )
    statement = statement.order_by(column.desc(), Cluster.id.desc()).limit(count)
    ranked = [_Ranked(key, cid) for cid, key in session.execute(statement)]
    if grown:
        # Stories that grew since: ranked by their articles up to the snapshot.
        then = session.execute(
            select(
                Article.cluster_id,
                func.count(),
                func.min(Article.published_at),
                func.max(Article.published_at),
            )
            .join(Cluster, Cluster.id == Article.cluster_id)
            .where(*live, Cluster.id.in_(grown), Article.id <= snap.article_id)
            .group_by(Article.cluster_id)
        )
        for cid, articles, first, last in then:
            first, last = _utc(first), _utc(last)
            key = last if sort == "latest" else articles
            if (
                articles >= max(min_articles, 1)
                and (since is None or last >= since)
                and (until is None or first <= until)
                and _before(key, cid, after)
            ):
                ranked.append(_Ranked(key, cid))
        ranked.sort(key=lambda r: (r.key, r.cluster_id), reverse=True)
    return ranked[:count]


def _trending(
    session: Session,
    snap: Snapshot,
    live: list,
    since: datetime | None,
    until: datetime | None,
    min_articles: int,
    after: Cursor | None,
    count: int,
) -> list[_Ranked]:
    """``count`` stories by growth in the trending window before the snapshot's clock."""
    if snap.clock is None:
        return []
    start = snap.clock - timedelta(hours=TRENDING_HOURS)
    earlier = aliased(Article)
    outlet_before = (
        exists()
        .where(
            earlier.cluster_id == Article.cluster_id,
            earlier.source == Article.source,
            earlier.published_at <= start,
            earlier.id <= snap.article_id,
        )
    )
    new_outlets = func.count(distinct(case((~outlet_before, Article.source))))
    score = (func.count() + 2 * new_outlets).label("score")
    statement = (
        select(Article.cluster_id, score)
        .join(Cluster, Cluster.id == Article.cluster_id)
        .where(
            Article.id <= snap.article_id,
            Article.published_at > start,
            Article.published_at <= snap.clock,
            *live,
            Cluster.article_count >= max(min_articles, 1),
        )
        .group_by(Article.cluster_id)
    )
    if since is not None:
        statement = statement.where(Cluster.last_published_at >= since)
    if until is not None:
        statement = statement.where(Cluster.first_published_at <= until)
    ranked = [_Ranked(int(key), cid) for cid, key in session.execute(statement) if _before(int(key), cid, after)]
    ranked.sort(key=lambda r: (r.key, r.cluster_id), reverse=True)
    return ranked[:count]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
