"""The ASGI application: ``app.main:app``, or ``create_app(settings)`` in tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import errors, migrate
from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.pipeline import StoryService
from app.routes import articles, clusters, health, match

DESCRIPTION = """
POST news articles as a crawler finds them; read back **story clusters**: every report
of the same event (syndicated copies and independent write-ups) folded into one story.

Errors are JSON `{"error": {"code", "message", "field"}}` with a 4xx status; a rejected
request stores nothing. Writes need `Authorization: Bearer <key>` when `STORIES_API_KEY`
is set.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        write_engine = make_engine(settings, writer=True)
        read_engine = make_engine(settings, writer=False)
        migrate.upgrade(write_engine)
        service = StoryService(make_sessionmaker(write_engine))
        app.state.settings = settings
        app.state.service = service
        app.state.read_engine = read_engine
        app.state.read_sessions = make_sessionmaker(read_engine)
        service.load()
        try:
            yield
        finally:
            write_engine.dispose()
            read_engine.dispose()

    app = FastAPI(title="stories", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(errors.BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(articles.router)
    app.include_router(clusters.router)
    app.include_router(match.router)
    app.include_router(health.router)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app


app = create_app()
