"""Cluster routes: summaries, listing with cursor pagination, one story with members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Response

from app.api.deps import Pages, Position, Reader, ReadSessions
from app.api.errors import ApiError, documented
from app.api.schemas import (
    MAX_ID,
    ClusterArticle,
    ClusterDetail,
    ClusterPage,
    ClusterSummary,
    QueryText,
    QueryTime,
    as_utc,
)
from app.store import crud, listing

router = APIRouter(prefix="/v1/clusters", tags=["clusters"], dependencies=[Reader])


def _issued_cursor(cursor: str | None, sort: str) -> None:
    """Refuse a cursor this service did not issue before it reaches the database (422)."""
    if cursor is None:
        return
    try:
        found = listing.decode_cursor(cursor, sort)
        for when in (found.key, found.snapshot.clock):
            if isinstance(when, datetime):
                as_utc(when)  # a forged time UTC cannot hold would fail only when bound to the query
    except (listing.InvalidCursor, ValueError):
        raise ApiError(
            422, "cursor is not one this service issued for this sort order", code="invalid", field="cursor"
        ) from None


@router.get(
    "",
    response_model=ClusterPage,
    responses=documented(401, 422, 503),
    summary="Story summaries, newest activity first",
    description=(
        "`sort`: `latest` (newest `last_published_at` first), `largest` (most articles first) or "
        "`trending` (growth in the 24 hours before the newest article: articles published in that window "
        "plus 2 for each outlet new to the story in it; only stories that grew in the window are listed).\n\n"
        "Pages come from a snapshot taken at the first page: following `next_cursor` never skips or repeats "
        "a story while articles keep arriving. A story that grows meanwhile keeps the rank it had at the "
        "first page; stories opened after it appear in the next paging."
    ),
)
async def list_clusters(
    sessions: ReadSessions,
    pages: Pages,
    position: Position,
    sort: Literal["latest", "largest", "trending"] = "latest",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[QueryText | None, Query(max_length=512)] = None,
    since: QueryTime | None = None,
    until: QueryTime | None = None,
    source: Annotated[QueryText | None, Query(max_length=512)] = None,
    q: Annotated[QueryText | None, Query(max_length=200)] = None,
    min_articles: Annotated[int, Query(ge=1, le=1_000_000_000)] = 1,
    thread: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only the events of this thread.")] = None,
) -> Response:
    _issued_cursor(cursor, sort)

    def render() -> ClusterPage:
        with sessions() as session:
            try:
                rows, next_cursor = listing.list_clusters(
                    session=session,
                    sort=sort,
                    limit=limit,
                    cursor=cursor,
                    since=since,
                    until=until,
                    source=source,
                    q=q,
                    min_articles=min_articles,
                    thread=thread,
                )
            except listing.InvalidCursor as err:
                raise ApiError(422, str(err), code="invalid", field="cursor") from None
            return ClusterPage(
                clusters=[ClusterSummary.model_validate(c, from_attributes=True) for c in rows],
                next_cursor=next_cursor,
            )

    key = ("list", sort, limit, cursor, since, until, source, q, min_articles, thread)
    return await pages.answer(key, position, render)


@router.get(
    "/{cluster_id}",
    response_model=ClusterDetail,
    responses=documented(401, 404, 422, 503),
    summary="One story with its member articles (a merged id answers with its survivor)",
)
async def get_cluster(
    cluster_id: Annotated[int, Path(ge=1, le=MAX_ID)], sessions: ReadSessions, pages: Pages, position: Position
) -> Response:
    def render() -> ClusterDetail:
        with sessions() as session:
            cluster, merged = crud.resolve_cluster(session=session, cluster_id=cluster_id)
            if cluster is None or cluster.article_count == 0:
                raise HTTPException(404, f"cluster {cluster_id} does not exist")
            members = crud.member_listing(session=session, cluster_id=cluster.id)
            return ClusterDetail(
                **ClusterSummary.model_validate(cluster, from_attributes=True).model_dump(),
                merged_into=cluster.id if merged else None,
                articles=[ClusterArticle.model_validate(a, from_attributes=True) for a in members],
            )

    return await pages.answer(("one", cluster_id), position, render)
