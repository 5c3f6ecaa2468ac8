"""Article routes: parse, call the service, return a schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import ValidationError

from app.api.deps import Indexed, Reader, ReadSession, ServiceDep, SettingsDep, StrictJson, Writer
from app.api.errors import describe_validation, documented
from app.api.schemas import (
    MAX_ID,
    ArticleDeleted,
    ArticleIn,
    ArticleOut,
    ArticleResult,
    BatchIn,
    BatchItem,
    BatchResult,
    ErrorBody,
)
from app.store import crud

router = APIRouter(prefix="/v1/articles", tags=["articles"])

_WRITE_ERRORS = documented(400, 401, 413, 422, 503)


@router.post(
    "",
    response_model=ArticleResult,
    status_code=201,
    dependencies=[Writer, Indexed, StrictJson],
    responses={
        200: {"model": ArticleResult, "description": "Seen before: same ids, nothing changed."},
        **_WRITE_ERRORS,
    },
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
    dependencies=[Writer, Indexed, StrictJson],
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
            code, message, field = describe_validation(err.errors(), located=False)
            results[i] = BatchItem(index=i, status="error", error=ErrorBody(code=code, message=message, field=field))
    for (i, _), outcome in zip(valid, service.ingest([a for _, a in valid])):
        if outcome.status == "error":
            results[i] = BatchItem(index=i, status="error", error=ErrorBody(code="invalid", message=outcome.error))
        else:
            results[i] = BatchItem(
                index=i,
                id=outcome.id,
                cluster_id=outcome.cluster_id,
                duplicate_of=outcome.duplicate_of,
                status=outcome.status,
            )
    return BatchResult(results=[r for r in results if r is not None])


@router.api_route("/batch", methods=["GET", "PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False)
def batch_other_methods() -> None:
    """``/batch`` is the batch endpoint (POST), not an article id: other methods get 405."""
    raise HTTPException(405, "method not allowed: POST a batch to /v1/articles/batch", headers={"Allow": "POST"})


@router.get(
    "/{article_id}",
    response_model=ArticleOut,
    dependencies=[Reader],
    responses=documented(401, 404, 422, 503),
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
        decision=article.decision,
    )


@router.delete(
    "/{article_id}",
    response_model=ArticleDeleted,
    dependencies=[Writer, Indexed],
    responses=documented(401, 404, 422, 503),
    summary="Take an article down: removed from its story, the story's summary updated",
)
def delete_article(article_id: Annotated[int, Path(ge=1, le=MAX_ID)], service: ServiceDep) -> ArticleDeleted:
    cluster_id = service.take_down(article_id)
    if cluster_id is None:
        raise HTTPException(404, f"article {article_id} does not exist")
    return ArticleDeleted(id=article_id, cluster_id=cluster_id, status="deleted")


@router.api_route("/{article_id}", methods=["POST", "PUT", "PATCH", "OPTIONS"], include_in_schema=False)
def article_other_methods(article_id: str) -> None:
    """An article answers GET and DELETE; other methods get 405 naming both."""
    raise HTTPException(405, "method not allowed: GET or DELETE an article", headers={"Allow": "GET, DELETE"})
