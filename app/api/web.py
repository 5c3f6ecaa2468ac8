"""The web page: today's stories at ``/`` and one story at ``/stories/{id}``, rendered on
the server with Jinja2 (autoescaped: titles and text are the crawler's, untrusted).

"Today" is the stream's latest day, not the wall clock: a backfill can be years old, so the
home page shows the stories active in the 24 hours before the newest story's
``last_published_at``; ``?day=YYYY-MM-DD`` shows the stories active on one UTC day. The
routes read through the same read session and read key as ``/v1/clusters`` and are left out
of the OpenAPI schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from app.api.deps import Reader, ReadSession
from app.api.schemas import MAX_ID
from app.store import crud, listing
from clustering.prepare import EARLIEST

HERE = Path(__file__).resolve().parent
LARGEST = 20  # stories in the "Largest" section
TRENDING = 10  # stories in the "Trending" section
WINDOW = timedelta(hours=24)
# Days a page can show: none of the stream is older than EARLIEST, and the day after the
# last one shown must still be a date.
FIRST_DAY = EARLIEST.date()
LAST_DAY = date.max - timedelta(days=1)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ID = re.compile(r"[0-9]{1,19}")

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every file, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)
static = StaticFiles(directory=HERE / "static")
router = APIRouter(include_in_schema=False, dependencies=[Reader])


# -- what a page shows ----------------------------------------------------------------


class BadDay(ValueError):
    """A ``day`` parameter that is not a date a page can show."""


def parse_day(text: str) -> date:
    """The UTC day named ``YYYY-MM-DD``; BadDay saying what is accepted otherwise.

    >>> parse_day("2024-06-18")
    datetime.date(2024, 6, 18)
    """
    if not _DAY.fullmatch(text):
        raise BadDay(f"day must be a date written YYYY-MM-DD, such as 2024-06-18, not {text[:40]!r}")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadDay(f"day {text!r} is not a date of the calendar") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadDay(f"day must be between {FIRST_DAY} and {LAST_DAY}")
    return day


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Window:
    """The stretch of the stream one home page shows."""

    since: datetime
    until: datetime
    day: date | None  # None: the latest 24 hours, to ``until``
    previous_day: date | None
    next_day: date | None


def latest_window(*, session: Session) -> Window | None:
    """The 24 hours before the newest story's last article (None: no stories at all)."""
    newest = listing.newest_activity(session=session)
    if newest is None:
        return None
    return Window(
        newest - WINDOW, newest, None, listing.previous_active_day(session=session, before=newest.date()), None
    )


def day_window(*, session: Session, day: date) -> Window:
    """Stories active on the UTC ``day``: begun by its end and still running at its start."""
    start = _start(day)
    until = start + timedelta(days=1) - timedelta(microseconds=1)
    return Window(
        start,
        until,
        day,
        listing.previous_active_day(session=session, before=day),
        listing.next_active_day(session=session, after=day) if day < LAST_DAY else None,
    )


def stories_in(*, session: Session, window: Window, sort: str, limit: int) -> list:
    rows, _ = listing.list_clusters(session=session, sort=sort, limit=limit, since=window.since, until=window.until)
    return rows


def parse_id(text: str | None) -> int | None:
    """A story id written in a URL, or None when ``text`` cannot be one.

    >>> parse_id("42"), parse_id("4.2"), parse_id("0"), parse_id("99999999999999999999")
    (42, None, None, None)
    """
    if text is None or not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if 1 <= value <= MAX_ID else None


def was_merged_into(*, session: Session, absorbed_id: int | None, survivor_id: int) -> bool:
    """Whether story ``absorbed_id`` was merged away and now answers as ``survivor_id``."""
    if absorbed_id is None:
        return False
    survivor, merged = crud.resolve_cluster(session=session, cluster_id=absorbed_id)
    return merged and survivor is not None and survivor.id == survivor_id


class Member(Protocol):
    """What grouping copies reads of a story's member article."""

    id: int
    duplicate_of: int | None


@dataclass
class DuplicateGroup:
    """An article and the syndicated copies recorded as its duplicates."""

    article: Member
    copies: list[Member] = field(default_factory=list)


def duplicate_groups(members: list[Member]) -> list[DuplicateGroup]:
    """Members grouped under their originals, in the members' order.

    A copy whose original is not among ``members`` stands on its own.
    """
    by_id = {a.id: a for a in members}

    def root(article: Member) -> int:
        seen = {article.id}
        while article.duplicate_of in by_id and article.duplicate_of not in seen:
            article = by_id[article.duplicate_of]
            seen.add(article.id)
        return article.id

    groups: dict[int, DuplicateGroup] = {}
    for article in members:
        top = root(article)
        if top == article.id:
            groups.setdefault(top, DuplicateGroup(article)).article = article
        else:
            groups.setdefault(top, DuplicateGroup(by_id[top])).copies.append(article)
    return list(groups.values())


# -- formatting ---------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    """``18 Jun 2024, 22:00 UTC``."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    return f"{value.day} {value:%b %Y, %H:%M} UTC"


def _span(first: datetime, last: datetime) -> str:
    """``18 Jun 2024, 06:00–09:00 UTC`` within a day, else both times in full."""
    first, last = first.astimezone(UTC), last.astimezone(UTC)
    if first == last:
        return _when(first)
    if first.date() == last.date():
        return f"{first.day} {first:%b %Y, %H:%M}\u2013{last:%H:%M} UTC"
    return f"{_when(first)} \u2013 {_when(last)}"


def _day_text(value: date) -> str:
    """``Tuesday 18 June 2024``."""
    return f"{value:%A} {value.day} {value:%B %Y}"


def _safe_href(url: str | None) -> str | None:
    """``url`` when it is an http(s) link (stored urls are), else None: never a javascript: link."""
    return url if url and url.lower().startswith(("http://", "https://")) else None


templates.env.filters.update(when=_when, span=_span, day_text=_day_text, safe_href=_safe_href)


# -- routes --------------------------------------------------------------------------


def _page(request: Request, name: str, status_code: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: ReadSession, day: str | None = None) -> Response:
    if day is not None:
        try:
            window = day_window(session=session, day=parse_day(day))
        except BadDay as err:
            return _page(request, "error.html", 400, title="Bad day", message=str(err))
    else:
        window = latest_window(session=session)
    if window is None:
        return _page(request, "home.html", window=None, largest=[], trending=[])
    return _page(
        request,
        "home.html",
        window=window,
        largest=stories_in(session=session, window=window, sort="largest", limit=LARGEST),
        trending=stories_in(session=session, window=window, sort="trending", limit=TRENDING),
    )


@router.get("/stories/{story_id}", response_class=HTMLResponse)
def story(
    request: Request,
    story_id: str,
    session: ReadSession,
    merged_from: str | None = None,
) -> Response:
    wanted = parse_id(story_id)
    cluster, merged = crud.resolve_cluster(session=session, cluster_id=wanted) if wanted else (None, False)
    if cluster is None or cluster.article_count == 0:
        return _page(
            request,
            "error.html",
            404,
            title="Story not found",
            message=f"There is no story {story_id[:40]}: it never existed, or all its articles were taken down.",
        )
    if merged:
        return RedirectResponse(f"/stories/{cluster.id}?merged_from={wanted}", status_code=303)
    # Say so only when it is true: the id given really resolves to this story.
    absorbed = parse_id(merged_from)
    absorbed = absorbed if was_merged_into(session=session, absorbed_id=absorbed, survivor_id=cluster.id) else None
    members = crud.cluster_members(session=session, cluster_id=cluster.id)
    thread = crud.thread_events(session=session, thread_id=cluster.thread)
    return _page(
        request,
        "story.html",
        story=cluster,
        thread=thread if len(thread) > 1 else [],
        merged_from=absorbed,
        groups=duplicate_groups(members),
        copies=sum(1 for a in members if a.duplicate_of is not None),
    )
