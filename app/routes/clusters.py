"""Cluster routes: summaries, listing with cursor pagination, one story with members."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from app import crud
from app.deps import ReadSession
from app.models import Cluster
from app.schemas import MAX_ID, ClusterArticle, ClusterDetail, ClusterPage, ClusterSummary, ErrorResponse

router = APIRouter(prefix="/v1/clusters", tags=["clusters"])


def _summary(cluster: Cluster) -> dict:
    return {
        "id": cluster.id,
        "title": cluster.title,
        "summary": cluster.summary,
        "article_count": cluster.article_count,
        "source_count": cluster.source_count,
        "sources": cluster.sources,
        "keywords": cluster.keywords,
        "first_published_at": cluster.first_published_at,
        "last_published_at": cluster.last_published_at,
        "updated_at": cluster.updated_at,
        "representative_article_id": cluster.representative_article_id,
    }


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@router.get(
    "",
    response_model=ClusterPage,
    responses={422: {"model": ErrorResponse, "description": "Invalid filter or cursor."}},
    summary="Story summaries, newest activity first",
)
def list_clusters(
    session: ReadSession,
    sort: Literal["latest", "largest"] = "latest",
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    source: Annotated[str | None, Query(max_length=512)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    min_articles: Annotated[int, Query(ge=1, le=1_000_000_000)] = 1,
) -> ClusterPage:
    try:
        rows, next_cursor = crud.list_clusters(
            session=session,
            sort=sort,
            limit=limit,
            cursor=cursor,
            since=_utc(since),
            until=_utc(until),
            source=source,
            q=q,
            min_articles=min_articles,
        )
    except crud.InvalidCursor as err:
        raise HTTPException(422, str(err)) from None
    return ClusterPage(clusters=[ClusterSummary(**_summary(c)) for c in rows], next_cursor=next_cursor)


@router.get(
    "/{cluster_id}",
    response_model=ClusterDetail,
    responses={404: {"model": ErrorResponse, "description": "No such cluster."}},
    summary="One story with its member articles (a merged id answers with its survivor)",
)
def get_cluster(cluster_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: ReadSession) -> ClusterDetail:
    cluster, merged = crud.resolve_cluster(session=session, cluster_id=cluster_id)
    if cluster is None or cluster.article_count == 0:
        raise HTTPException(404, f"cluster {cluster_id} does not exist")
    members = crud.cluster_members(session=session, cluster_id=cluster.id)
    return ClusterDetail(
        **_summary(cluster),
        merged_into=cluster.id if merged else None,
        articles=[
            ClusterArticle(
                id=a.id, url=a.url, title=a.title, source=a.source, published_at=a.published_at, duplicate_of=a.duplicate_of
            )
            for a in members
        ],
    )
