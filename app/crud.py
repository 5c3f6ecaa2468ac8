"""Persistence: plain functions over a SQLAlchemy session (keyword-only)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, Text, and_, cast, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Article, Cluster, Setting, SourceLine


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


_UPSERT_CHUNK = 5_000


def add_source_lines(*, session: Session, source: str, fingerprints: set[str]) -> None:
    """Count one more page of ``source`` for each line fingerprint."""
    if not fingerprints:
        return
    rows = [{"source": source, "fingerprint": fp, "pages": 1} for fp in sorted(fingerprints)]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Three parameters a row; chunks keep every statement far below PostgreSQL's
    # 65,535 and SQLite's 32,766 bound parameters, however many lines a page has.
    for start in range(0, len(rows), _UPSERT_CHUNK):
        statement = insert(SourceLine).values(rows[start : start + _UPSERT_CHUNK])
        statement = statement.on_conflict_do_update(
            index_elements=[SourceLine.source, SourceLine.fingerprint],
            set_={"pages": SourceLine.pages + 1},
        )
        session.execute(statement)


def iter_source_lines(*, session: Session) -> Iterator[SourceLine]:
    yield from session.scalars(select(SourceLine).execution_options(yield_per=10_000))


def iter_articles(*, session: Session) -> Iterator[Article]:
    """Every stored article in insertion order (to rebuild in-memory indexes)."""
    yield from session.scalars(select(Article).order_by(Article.id).execution_options(yield_per=2_000))


def articles_after(*, session: Session, article_id: int) -> list[Article]:
    """Stored articles with a higher id than ``article_id``, in id order."""
    return list(session.scalars(select(Article).where(Article.id > article_id).order_by(Article.id)))


def count_merged(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Cluster).where(Cluster.merged_into.is_not(None))) or 0


def source_lines_of(*, session: Session, sources: set[str]) -> list[SourceLine]:
    if not sources:
        return []
    return list(session.scalars(select(SourceLine).where(SourceLine.source.in_(sorted(sources)))))


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


def takedowns(*, session: Session) -> int:
    """How many articles were ever taken down (processes compare it to stay in step)."""
    stored = get_setting(session=session, key="takedowns")
    return int(stored["count"]) if stored else 0


def count_takedown(*, session: Session) -> int:
    count = takedowns(session=session) + 1
    put_setting(session=session, key="takedowns", value={"count": count})
    return count


def merged_pairs(*, session: Session) -> list[tuple[int, int]]:
    return list(session.execute(select(Cluster.id, Cluster.merged_into).where(Cluster.merged_into.is_not(None))))


def get_setting(*, session: Session, key: str) -> dict | None:
    row = session.get(Setting, key)
    return None if row is None else row.value


def put_setting(*, session: Session, key: str, value: dict) -> None:
    session.merge(Setting(key=key, value=value))


# -- listing -------------------------------------------------------------------

_MAX_ID = 2**63 - 1
SORTS = {
    "latest": (Cluster.last_published_at, "time"),
    "largest": (Cluster.article_count, "int"),
}


def encode_cursor(sort: str, key: object, cluster_id: int) -> str:
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = json.dumps([sort, value, cluster_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bounded_int(value: object) -> bool:
    return type(value) is int and 0 <= value <= _MAX_ID  # bool is not an int here


def decode_cursor(cursor: str, sort: str) -> tuple[object, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, cluster_id = json.loads(raw)
        if cursor_sort != sort or not _bounded_int(cluster_id):
            raise ValueError
        if SORTS[sort][1] == "time":
            value = datetime.fromisoformat(value)
        elif not _bounded_int(value):
            raise ValueError
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as err:
        raise InvalidCursor("cursor is not one this service issued for this sort order") from err
    return value, cluster_id


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
    column, _ = SORTS[sort]
    statement: Select = select(Cluster).where(Cluster.merged_into.is_(None), Cluster.article_count >= max(min_articles, 1))
    if since is not None:
        statement = statement.where(Cluster.last_published_at >= since)
    if until is not None:
        statement = statement.where(Cluster.first_published_at <= until)
    if source is not None:
        statement = statement.where(
            exists().where(Article.cluster_id == Cluster.id, Article.source == source)
        )
    if q:
        lower = func.unicode_lower if session.get_bind().dialect.name == "sqlite" else func.lower
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(
            or_(
                lower(Cluster.title).like(pattern, escape="\\"),
                lower(cast(Cluster.keywords, Text)).like(pattern, escape="\\"),
            )
        )
    if cursor is not None:
        key, last_id = decode_cursor(cursor, sort)
        statement = statement.where(or_(column < key, and_(column == key, Cluster.id < last_id)))
    statement = statement.order_by(column.desc(), Cluster.id.desc()).limit(limit + 1)
    rows = list(session.scalars(statement))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(sort, getattr(last, column.key), last.id)
    return rows, next_cursor
