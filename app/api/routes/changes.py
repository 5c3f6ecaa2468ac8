"""The change feed: story events in commit order, resumable by sequence number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import Reader, ReadSession
from app.api.errors import documented
from app.api.schemas import MAX_ID, ChangeOut, ChangePage
from app.store import crud

router = APIRouter(prefix="/v1", tags=["changes"], dependencies=[Reader])


@router.get(
    "/changes",
    response_model=ChangePage,
    responses=documented(401, 422, 503),
    summary="Story events after a sequence number, oldest first",
    description=(
        "Events are numbered by `seq` in the order their writes committed; a number may be skipped "
        "(a write that failed) but never reused or filled in later. A consumer stores the last `seq` it "
        "processed and resumes with `after=<that seq>`: it sees every later event once. Start with "
        "`after=0` for the whole history."
    ),
)
def list_changes(
    session: ReadSession,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="Return events with a larger `seq`.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ChangePage:
    rows = crud.changes_after(session=session, after=after, limit=limit)
    return ChangePage(
        changes=[ChangeOut.model_validate(row, from_attributes=True) for row in rows],
        next_after=rows[-1].seq if rows else after,
    )
