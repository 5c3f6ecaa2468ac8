"""SQLite's write-ahead log is checkpointed apart from the connections that commit."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from app.config import Settings
from app.store.db import make_engine


def _engine(tmp_path: Path, writer: bool = True):
    return make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'log.db'}", api_key=None), writer=writer)


def test_a_writers_commits_reach_the_database_file_while_it_stays_open(tmp_path):
    engine = _engine(tmp_path)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0  # not in the commit
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE pages (body BLOB)"))
        for _ in range(20):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO pages VALUES (randomblob(100000))"))
        deadline = time.monotonic() + 10
        while (tmp_path / "log.db").stat().st_size < 1_500_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "log.db").stat().st_size >= 1_500_000  # the pages are in the file, not only the log
        assert engine.checkpointer.checkpoints_ >= 1
    finally:
        engine.dispose()
    engine.checkpointer._thread.join(timeout=5)
    assert not engine.checkpointer._thread.is_alive()  # stopped with its engine


def test_readers_keep_sqlites_automatic_checkpoints(tmp_path):
    _engine(tmp_path).dispose()
    reader = _engine(tmp_path, writer=False)
    try:
        assert not hasattr(reader, "checkpointer")
        with reader.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        reader.dispose()
