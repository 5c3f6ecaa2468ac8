"""Thread routes: the events of one ongoing story, oldest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from app.api.deps import Reader, ReadSession
from app.api.errors import documented
from app.api.schemas import MAX_ID, ThreadEvent, ThreadOut
from app.store import crud

router = APIRouter(prefix="/v1/threads", tags=["threads"], dependencies=[Reader])


@router.get(
    "/{thread_id}",
    response_model=ThreadOut,
    responses=documented(401, 404, 422, 503),
    summary="One thread: the events (story clusters) of an ongoing story, oldest first",
    description=(
        "A thread links the events of one story in time order: a new development reported after the story "
        "went quiet for more than 14 days opens a story of its own in the same thread. A thread joined to "
        "another (when two of their stories merged) answers with the one it joined, and says so."
    ),
)
def get_thread(thread_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: ReadSession) -> ThreadOut:
    answering, events = crud.resolve_thread(session=session, thread_id=thread_id)
    if not events:
        raise HTTPException(404, f"thread {thread_id} does not exist")
    firsts = [e.first_published_at for e in events if e.first_published_at is not None]
    lasts = [e.last_published_at for e in events if e.last_published_at is not None]
    return ThreadOut(
        id=answering,
        merged_into=answering if answering != thread_id else None,
        article_count=sum(e.article_count for e in events),
        first_published_at=min(firsts, default=None),
        last_published_at=max(lasts, default=None),
        events=[ThreadEvent.model_validate(e, from_attributes=True) for e in events],
    )
