"""The change feed's last position, read on a connection of its own where it can be."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from app.config import Settings
from app.store import crud, migrate
from app.store.db import make_engine, make_sessionmaker
from app.store.position import FeedPosition


def _changes(n: int) -> list[dict]:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return [{"kind": "created", "cluster_id": 1, "article_count": 1, "at": at} for _ in range(n)]


def test_it_reads_what_the_feed_holds_after_each_commit(settings):
    engine = make_engine(settings)
    migrate.upgrade(engine)
    sessions = make_sessionmaker(engine)
    feed = FeedPosition(settings)
    try:
        with sessions() as session:
            assert crud.last_change(session=session) == 0
        expected = 0 if settings.is_sqlite else None  # PostgreSQL: read through a session
        assert feed.read() == expected
        for n in (1, 3):
            with sessions.begin() as session:
                crud.add_changes(session=session, changes=_changes(n))
            with sessions() as session:
                last = crud.last_change(session=session)
            assert feed.read() == (last if settings.is_sqlite else None)
        assert last == 4 or not settings.is_sqlite
    finally:
        feed.close()
        engine.dispose()


def test_a_write_in_progress_is_not_seen_and_does_not_block_it(tmp_path: Path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", api_key=None)
    engine = make_engine(settings)
    migrate.upgrade(engine)
    sessions = make_sessionmaker(engine)
    feed = FeedPosition(settings)
    try:
        with sessions.begin() as session:
            crud.add_changes(session=session, changes=_changes(2))
            session.flush()
            assert feed.read() == 0  # the writer holds its lock, uncommitted
        assert feed.read() == 2
    finally:
        feed.close()
        engine.dispose()


def test_no_file_no_table_or_no_file_database_answer_none(tmp_path: Path):
    missing = tmp_path / "missing.db"
    feed = FeedPosition(Settings(database_url=f"sqlite:///{missing}", api_key=None))
    assert feed.read() is None
    assert not missing.exists()  # never created here: migrating does that
    assert FeedPosition(Settings(database_url="sqlite:///:memory:", api_key=None)).read() is None
    empty = tmp_path / "empty.db"
    engine = make_engine(Settings(database_url=f"sqlite:///{empty}", api_key=None))
    with engine.connect():
        pass  # a file with no feed in it yet
    engine.dispose()
    assert FeedPosition(Settings(database_url=f"sqlite:///{empty}", api_key=None)).read() is None
