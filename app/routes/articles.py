"""Article routes: parse, call the service, return a schema."""

from __future__ import annotations

from typing import Any

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import ValidationError

from app import crud
from app.deps import ReadSession, ServiceDep, SettingsDep, Writer
from app.errors import describe_validation
from app.schemas import (
    ArticleIn,
    ArticleOut,
    ArticleResult,
    BatchIn,
    BatchItem,
    BatchResult,
    ErrorBody,
    ErrorResponse,
    MAX_ID,
)

router = APIRouter(prefix="/v1/articles", tags=["articles"])

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Body is not valid JSON."},
    401: {"model": ErrorResponse, "description": "Missing or wrong bearer token (when a key is set)."},
    413: {"model": ErrorResponse, "description": "Body or batch too large."},
    422: {"model": ErrorResponse, "description": "A field is missing or invalid; nothing was stored."},
}


@router.post(
    "",
    response_model=ArticleResult,
    status_code=201,
    dependencies=[Writer],
    responses={200: {"model": ArticleResult, "description": "Seen before: same ids, nothing changed."}, **_WRITE_ERRORS},
    summary="Ingest one article",
)
def post_article(article: ArticleIn, service: ServiceDep, response: Response) -> ArticleResult:
    outcome = service.ingest([article])[0]
    if outcome.status == "error":
        raise HTTPException(422, outcome.error)
    if outcome.status == "existing":
        response.status_code = 200
    return ArticleResult(
        id=outcome.id, cluster_id=outcome.cluster_id, duplicate_of=outcome.duplicate_of, status=outcome.status
    )


@router.post(
    "/batch",
    response_model=BatchResult,
    dependencies=[Writer],
    responses=_WRITE_ERRORS,
    summary="Ingest up to STORIES_MAX_BATCH articles; each item succeeds or fails alone",
)
def post_batch(batch: BatchIn, service: ServiceDep, settings: SettingsDep) -> BatchResult:
    if len(batch.articles) > settings.max_batch:
        raise HTTPException(413, f"a batch holds at most {settings.max_batch} articles, got {len(batch.articles)}")
    results: list[BatchItem | None] = [None] * len(batch.articles)
    valid: list[tuple[int, ArticleIn]] = []
    for i, item in enumerate(batch.articles):
        if not isinstance(item, dict):
            error = ErrorBody(code="invalid", message="each article must be a JSON object")
            results[i] = BatchItem(index=i, status="error", error=error)
            continue
        try:
            valid.append((i, ArticleIn.model_validate(item)))
        except ValidationError as err:
            code, message, field = describe_validation(err.errors())
            results[i] = BatchItem(index=i, status="error", error=ErrorBody(code=code, message=message, field=field))
    for (i, _), outcome in zip(valid, service.ingest([a for _, a in valid])):
        if outcome.status == "error":
            results[i] = BatchItem(index=i, status="error", error=ErrorBody(code="invalid", message=outcome.error))
        else:
            results[i] = BatchItem(
                index=i, id=outcome.id, cluster_id=outcome.cluster_id, duplicate_of=outcome.duplicate_of,
                status=outcome.status,
            )
    return BatchResult(results=[r for r in results if r is not None])


@router.get(
    "/{article_id}",
    response_model=ArticleOut,
    responses={404: {"model": ErrorResponse, "description": "No such article."}},
    summary="One stored article with its cluster",
)
def get_article(article_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: ReadSession) -> ArticleOut:
    article = crud.get_article(session=session, article_id=article_id)
    if article is None:
        raise HTTPException(404, f"article {article_id} does not exist")
    cluster, _ = crud.resolve_cluster(session=session, cluster_id=article.cluster_id)
    return ArticleOut(
        id=article.id,
        url=article.url,
        external_id=article.external_id,
        title=article.title,
        source=article.source,
        language=article.language,
        published_at=article.published_at,
        received_at=article.received_at,
        text=article.text,
        removed_lines=article.removed,
        cluster_id=cluster.id if cluster else article.cluster_id,
        duplicate_of=article.duplicate_of,
    )
