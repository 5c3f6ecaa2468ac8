"""Request dependencies, declared once as ``Annotated`` aliases (access control itself
is ``app.api.auth``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.api import auth
from app.api.errors import ApiError
from app.api.pages import RenderedPages
from app.config import Settings
from app.service.ingest import StoryService
from app.store import crud


# Dependencies that only read state are coroutines: FastAPI runs a plain function in
# its thread pool, a hop that costs more than the lookup itself on every request.
async def _settings(request: Request) -> Settings:
    return request.app.state.settings


async def _service(request: Request) -> StoryService:
    return request.app.state.service


async def _pages(request: Request) -> RenderedPages:
    return request.app.state.pages


async def _read_sessions(request: Request) -> sessionmaker[Session]:
    return request.app.state.read_sessions


def _last_change(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return crud.last_change(session=session)


async def _position(request: Request) -> int:
    """The change feed's last position (``app.store.position``): read where the request
    is when it can be without waiting, else through a session in a worker thread."""
    position = request.app.state.feed.read()
    if position is None:
        position = await run_in_threadpool(_last_change, request.app.state.read_sessions)
    return position


async def _read_session(request: Request) -> AsyncIterator[Session]:
    # A coroutine too: opening a session connects nowhere (the route's first query does,
    # in its own thread), so only closing it, which hands its connection back to the pool
    # (a rollback on PostgreSQL), takes a hop through the thread pool.
    session = request.app.state.read_sessions()
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)


# -- strict JSON ------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"request body is ambiguous JSON: key '{key}' appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> None:
    raise _DuplicateKey(f"request body is not valid JSON: {name} is not a JSON value")


async def _strict_json(request: Request) -> None:
    """Refuse JSON that parsers disagree on: repeated keys (which one wins?) and NaN/Infinity.

    The body was already parsed leniently to validate it; this reads the same bytes again.
    Bodies that are not JSON at all are left to validation, which names that problem.
    """
    body = await request.body()
    try:
        json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _DuplicateKey as err:
        raise ApiError(400, str(err), code="invalid_json") from None
    except (ValueError, RecursionError):
        return


async def _indexed(request: Request) -> None:
    """Writes and matches need the story index, which a reader process does not hold."""
    if request.app.state.settings.role == "reader":
        raise ApiError(
            503,
            "this process serves reads only (STORIES_ROLE=reader): send writes and matches to a writer",
            code="read_only",
        )


SettingsDep = Annotated[Settings, Depends(_settings)]
ServiceDep = Annotated[StoryService, Depends(_service)]
ReadSession = Annotated[Session, Depends(_read_session)]
ReadSessions = Annotated[sessionmaker[Session], Depends(_read_sessions)]
Position = Annotated[int, Depends(_position)]
Pages = Annotated[RenderedPages, Depends(_pages)]
Writer = Depends(auth.require_writer)
Reader = Depends(auth.require_reader)
StrictJson = Depends(_strict_json)
Indexed = Depends(_indexed)
