"""Dry-run matching: where an article would go, storing nothing."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import Indexed, Reader, ServiceDep, StrictJson
from app.api.errors import documented
from app.api.schemas import ArticleIn, MatchDuplicate, MatchResult

router = APIRouter(prefix="/v1", tags=["match"])


@router.post(
    "/match",
    response_model=MatchResult,
    dependencies=[Reader, Indexed, StrictJson],
    responses=documented(400, 401, 413, 422, 503),
    summary="The story (and near-duplicates) an article would join, storing nothing",
)
def match(article: ArticleIn, service: ServiceDep) -> MatchResult:
    found = service.match(article)
    return MatchResult(
        cluster_id=found.cluster_id,
        thread_id=found.thread_id,
        score=round(found.score, 4),
        duplicates=[MatchDuplicate(article_id=a, similarity=s) for a, s in found.duplicates],
    )
