"""The app factory: ``create_app(settings)`` builds the HTTP application (``app.main:app`` builds it from the environment)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import observability
from app.api import errors, pages, web
from app.api.routes import articles, changes, clusters, corrections, health, match, metrics, threads
from app.config import Settings, load_settings
from app.service.ingest import StoryService
from app.service.workers import Preparer
from app.store import migrate
from app.store.db import make_engine, make_sessionmaker
from app.store.position import FeedPosition
from clustering import embed

DESCRIPTION = """
POST news articles as a crawler finds them; read back **story clusters**: every report
of the same event (syndicated copies and independent write-ups) folded into one story.

Errors are JSON `{"error": {"code", "message", "field"}}` with a 4xx status; a rejected
request stores nothing. Writes need `Authorization: Bearer <key>` when `STORIES_API_KEY`
is set. Every response carries `X-Request-ID` (the caller's, when it sent one).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    observability.configure_logging(settings)
    app_metrics = observability.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Whatever starts the app: STORIES_HOST on another machine's reach and no key refuses
        # to start (a server bound elsewhere by its starter is held to it per request: auth).
        settings.check_exposure()
        write_engine = make_engine(settings, writer=True)
        read_engine = make_engine(settings, writer=False)
        try:
            if settings.migrate_on_start:
                migrate.upgrade(write_engine)
            else:
                migrate.require_head(write_engine)
            read_sessions = make_sessionmaker(read_engine)
            if settings.role != "reader":  # missing or wrong, it stops the start here (ModelMissing says how)
                embed.check()
            reader = settings.role == "reader"
            service = StoryService(
                make_sessionmaker(write_engine),
                metrics=app_metrics,
                horizon_days=settings.index_horizon_days,
                read_sessions=read_sessions,
                preparer=Preparer(read_sessions, settings.database_url, 0 if reader else settings.workers),
                snapshot_path=None if reader else settings.snapshot_path(),
            )
            app.state.settings = settings
            app.state.service = service
            app.state.read_engine = read_engine
            app.state.read_sessions = read_sessions
            app.state.feed = feed = FeedPosition(settings)
            try:
                if not reader:  # a reader holds no index: reads need none
                    service.load()  # while the prepare workers start
                    service.preparer.ready()
                app_metrics.watch(service.caches.sizes)
                yield
            finally:
                service.close()
                feed.close()
        finally:
            write_engine.dispose()
            read_engine.dispose()

    app = FastAPI(title="stories", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = app_metrics
    app.state.pages = kept = pages.RenderedPages()
    app_metrics.watch_reads(lambda: {"rendered": kept.rendered_, "kept": kept.kept_})
    errors.install(app)
    app.add_middleware(errors.BodyLimit, max_bytes=settings.max_body_bytes)
    # Added last, so outermost: it sees every answer, 413s and 500s included.
    app.add_middleware(observability.RequestContext, metrics=app_metrics)
    app.include_router(articles.router)
    app.include_router(clusters.router)
    app.include_router(threads.router)
    app.include_router(corrections.router)
    app.include_router(match.router)
    app.include_router(changes.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(web.router)
    app.mount("/static", web.static, name="static")
    return app
