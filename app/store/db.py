"""Engine and sessions: SQLite (WAL, durable commits) or PostgreSQL."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # The driver's own transaction handling is off (isolation_level=None) so that
    # every write transaction starts with BEGIN IMMEDIATE (see ``_begin``): the
    # write lock is taken up front instead of failing at the first write.
    # SQLite's lower() folds ASCII only; search needs "Évora" to match "évora".
    dbapi_connection.create_function(
        "unicode_lower", 1, lambda s: s.lower() if isinstance(s, str) else s, deterministic=True
    )
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class WalCheckpointer:
    """Checkpoints of a SQLite database's write-ahead log, taken on a connection and a
    thread of their own after each commit, not by the connection that commits.

    SQLite's automatic checkpoint runs in the commit that fills the log past 1,000 pages,
    so it is paid inside the service's write lock: at a million stored a batch's commit
    spends nearly all its time copying pages into the database file. A ``PASSIVE``
    checkpoint waits for no reader or writer, so it runs beside the next write; the
    writer's connections have automatic checkpoints off, and the log is reset by the
    first commit after a checkpoint that caught up (as with automatic ones). Several
    processes on one file each run their own: SQLite lets one checkpoint at a time.
    """

    def __init__(self, path: Path):
        self._path = path
        self._due = threading.Event()
        self._stopped = False
        self.checkpoints_ = 0
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint {path.name}", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A writer committed (or is about to): checkpoint what the log holds."""
        self._due.set()

    def stop(self) -> None:
        self._stopped = True
        self._due.set()

    def _run(self) -> None:
        connection = None
        log = self._path.with_name(f"{self._path.name}-wal")
        seen = None  # the log as the last checkpoint left it: a commit that wrote nothing needs none
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopped:
                    return
                try:
                    stat = log.stat()
                    if (stat.st_size, stat.st_mtime_ns) == seen:
                        continue
                    if connection is None:
                        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints_ += 1
                    seen = (stat.st_size, stat.st_mtime_ns)
                except (OSError, sqlite3.Error) as error:  # the next commit tries again
                    _log.warning("checkpoint of %s failed: %s", self._path, error)
        finally:
            if connection is not None:
                connection.close()


_log = logging.getLogger(__name__)


def _no_automatic_checkpoint(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def _checkpointed_apart(engine: Engine, path: Path) -> None:
    checkpointer = WalCheckpointer(path)
    engine.checkpointer = checkpointer
    event.listen(engine, "connect", _no_automatic_checkpoint)
    # Signalled as a commit starts and again as its connection goes back to the pool,
    # once it is complete: the log is looked at after the commit's pages are in it.
    event.listen(engine, "commit", lambda _conn: checkpointer.committed())
    event.listen(engine, "checkin", lambda _dbapi, _record: checkpointer.committed())
    event.listen(engine, "engine_disposed", lambda _engine: checkpointer.stop())
    weakref.finalize(engine, checkpointer.stop)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings, *, writer: bool = True) -> Engine:
    """An engine for writes (SQLite: every transaction ``BEGIN IMMEDIATE``) or reads."""
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            settings.database_url,
            connect_args={"check_same_thread": False, "isolation_level": None},
            json_serializer=_json,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        if writer:
            event.listen(engine, "begin", _begin)
            if path is not None:
                _checkpointed_apart(engine, path)
        else:
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    return create_engine(
        settings.database_url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_serializer=_json
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
