"""Engine and sessions: SQLite (WAL, durable commits) or PostgreSQL."""

from __future__ import annotations

import json

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
        else:
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    return create_engine(
        settings.database_url, pool_pre_ping=True, pool_size=10, max_overflow=10, json_serializer=_json
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
