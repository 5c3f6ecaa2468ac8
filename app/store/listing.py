"""Story listings: one page at a time, off the sort orders' indexes, from a snapshot.

Pages are cut from a snapshot, so paging never skips nor repeats a story while
articles keep arriving. The first page records the newest article and story ids
(ids grow in commit order, under the assign lock); every later page ranks the
stories that existed then by what they held then: a story that gained articles
since is ranked by its articles up to the snapshot. Stories opened after the first
page are left for the next paging. ``trending`` ranks by growth in the
``TRENDING_HOURS`` before the newest article at the snapshot:

    score = articles published in the window + 2 x outlets new to the story in it

and lists only stories with a score (growth) in that window.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Text, and_, case, cast, distinct, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.store.crud import in_thread, stream_clock
from app.store.models import Article, Cluster


class InvalidCursor(ValueError):
    """A pagination cursor this service did not issue."""


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
    raw = json.dumps(
        [cursor.sort, key, cursor.cluster_id, snap.article_id, snap.cluster_id, clock], separators=(",", ":")
    ).encode()
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
    thread: int | None = None,
) -> tuple[list[Cluster], str | None]:
    """One page of live clusters in ``sort`` order and the cursor of the next page."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}")
    after = decode_cursor(cursor, sort) if cursor is not None else None
    snap = after.snapshot if after else snapshot(session=session)
    live = _live_clusters(session, snap, source, q, thread)
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


def _live_clusters(session: Session, snap: Snapshot, source: str | None, q: str | None, thread: int | None) -> list:
    """Conditions on ``Cluster``: the story existed at the snapshot and still does, and
    matches the filters that read current values."""
    # "id + 0": the bound holds on every page but is almost never selective, and as a
    # bare column it tempts SQLite into scanning the id range and sorting, where the
    # sort order's index reads one page.
    conditions = [Cluster.merged_into.is_(None), Cluster.id + 0 <= snap.cluster_id]
    if thread is not None:
        conditions.append(in_thread(thread))
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
        statement = statement.where(or_(column < after.key, and_(column == after.key, Cluster.id < after.cluster_id)))
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
    outlet_before = exists().where(
        earlier.cluster_id == Article.cluster_id,
        earlier.source == Article.source,
        earlier.published_at <= start,
        earlier.id <= snap.article_id,
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


# -- days with activity (the web page's day navigation) ----------------------------


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


_LIVE = (Cluster.merged_into.is_(None), Cluster.article_count >= 1)


def newest_activity(*, session: Session) -> datetime | None:
    """The latest ``last_published_at`` of any live story (None: no stories)."""
    return session.scalar(select(func.max(Cluster.last_published_at)).where(*_LIVE))


def previous_active_day(*, session: Session, before: date) -> date | None:
    """The latest day before ``before`` on which some story was active, or None."""
    start = _start(before)
    # The latest end among stories that began before ``start``; one that ran past it
    # was active the day before.
    last = session.scalar(select(func.max(Cluster.last_published_at)).where(*_LIVE, Cluster.first_published_at < start))
    if last is None:
        return None
    return min(last, start - timedelta(microseconds=1)).date()


def next_active_day(*, session: Session, after: date) -> date | None:
    """The earliest day after ``after`` on which some story was active, or None."""
    end = _start(after + timedelta(days=1))
    first = session.scalar(select(func.min(Cluster.first_published_at)).where(*_LIVE, Cluster.last_published_at >= end))
    if first is None:
        return None
    return max(first, end).date()
