"""Correction routes: an editor moves an article, splits a story or merges two; the
corrections made so far, in order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response

from app.api.deps import Indexed, Reader, ReadSession, ServiceDep, StrictJson, Writer
from app.api.errors import documented
from app.api.schemas import MAX_ID, CorrectionIn, CorrectionOut, CorrectionPage, MergeIn, MoveIn
from app.service import corrections
from app.store import crud

router = APIRouter(prefix="/v1/corrections", tags=["corrections"])

_EXAMPLES = {
    "move": {
        "summary": "Move an article, with its near-duplicates, into another story",
        "value": {"kind": "move", "article_id": 121, "into_cluster_id": 9, "editor": "desk@example.com"},
    },
    "move_out": {
        "summary": "Move an article out into a new story of its own",
        "value": {"kind": "move", "article_id": 121, "note": "A different fire, in another town."},
    },
    "split": {
        "summary": "Split articles out of a story into a new one",
        "value": {
            "kind": "split",
            "cluster_id": 7,
            "article_ids": [118, 121],
            "editor": "desk@example.com",
            "note": "The visit and the treaty talks are two events.",
        },
    },
    "merge": {
        "summary": "Merge one story into another",
        "value": {"kind": "merge", "cluster_id": 12, "into_cluster_id": 7, "editor": "desk@example.com"},
    },
}


def _request(body: CorrectionIn) -> corrections.Request:
    if isinstance(body, MoveIn):
        return corrections.Move(body.article_id, body.into_cluster_id, body.with_copies, body.editor, body.note)
    if isinstance(body, MergeIn):
        return corrections.Merge(body.cluster_id, body.into_cluster_id, body.editor, body.note)
    return corrections.Split(body.cluster_id, tuple(body.article_ids), body.editor, body.note)


@router.post(
    "",
    response_model=CorrectionOut,
    status_code=201,
    dependencies=[Writer, Indexed, StrictJson],
    responses={
        200: {
            "model": CorrectionOut,
            "description": "Already so by an earlier correction (returned): nothing changed.",
        },
        **documented(400, 401, 404, 409, 413, 422, 503),
    },
    summary="Correct the stories: move an article, split a story, or merge two",
    description=(
        "`move` puts an article (with its near-duplicates unless `with_copies` is false) into another story, "
        "or into a new story of its own; `split` makes the listed articles of a story a new story in its "
        "thread; `merge` folds one story into another, as an automatic merge does (the absorbed id keeps "
        "resolving). Each correction is stored, appears in the change feed (`created`, `moved`, `merged` "
        "events naming it), updates the touched stories' summaries, and holds against every later automatic "
        "decision, on every replica and after restarts: an article an editor placed is never moved by an "
        "automatic merge, and two stories an editor separated are never merged automatically (an article "
        "binding both joins the better one). The same request twice changes nothing the second time: it "
        "answers 200 with the earlier correction. A correction that confirms what already is (an article "
        "placed where it is) is recorded (201) so it holds from then on, and changes no story."
    ),
)
def post_correction(
    body: Annotated[CorrectionIn, Body(openapi_examples=_EXAMPLES)], service: ServiceDep, response: Response
) -> CorrectionOut:
    try:
        outcome = service.correct(_request(body))
    except corrections.Rejected as rejected:
        raise HTTPException(rejected.status, rejected.message) from None
    if not outcome.recorded:
        response.status_code = 200
    return CorrectionOut.model_validate(outcome.correction)


@router.get(
    "",
    response_model=CorrectionPage,
    dependencies=[Reader],
    responses=documented(401, 422, 503),
    summary="Corrections after an id, oldest first",
)
def list_corrections(
    session: ReadSession,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Return corrections with a larger `id`.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CorrectionPage:
    rows = crud.corrections_after(session=session, after=after, limit=limit)
    return CorrectionPage(
        corrections=[CorrectionOut.model_validate(row, from_attributes=True) for row in rows],
        next_after=rows[-1].id if rows else after,
    )


@router.api_route("", methods=["PUT", "PATCH", "DELETE", "OPTIONS"], include_in_schema=False)
def corrections_other_methods() -> None:
    """The collection answers GET (the list) and POST (a new correction); others get 405 naming both."""
    raise HTTPException(405, "method not allowed: GET the corrections or POST one", headers={"Allow": "GET, POST"})


@router.get(
    "/{correction_id}",
    response_model=CorrectionOut,
    dependencies=[Reader],
    responses=documented(401, 404, 422, 503),
    summary="One correction",
)
def get_correction(correction_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: ReadSession) -> CorrectionOut:
    correction = crud.get_correction(session=session, correction_id=correction_id)
    if correction is None:
        raise HTTPException(404, f"correction {correction_id} does not exist")
    return CorrectionOut.model_validate(correction, from_attributes=True)
