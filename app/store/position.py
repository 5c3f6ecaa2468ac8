"""The change feed's last position, read without a trip through the connection pool.

Every read of a story listing or a story view starts with this number (kept renderings
are keyed by it, ``app.api.pages``), so it is read on a connection of its own. On
SQLite in WAL mode a reader never waits for the writer, and the query is one step down
the primary key's b-tree (microseconds), so the HTTP layer reads it where the request
is, not in a worker thread. On PostgreSQL, or an in-memory SQLite database, or when the
file is busy (a WAL being recovered), ``read`` answers None and the caller reads
``crud.last_change`` through a session as usual.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.dialects import sqlite

from app.config import Settings
from app.store.models import Change

# crud.last_change's query, as SQLite is sent it.
_LAST = str(select(func.max(Change.seq)).compile(dialect=sqlite.dialect()))
# A reader of a WAL database waits only while the WAL is recovered; not on the event loop.
_BUSY_SECONDS = 0.005


class FeedPosition:
    """The change feed's last position, read on one SQLite connection kept for it."""

    def __init__(self, settings: Settings):
        self._path = settings.sqlite_path()  # None: always through a session
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def read(self) -> int | None:
        """The last position, or None when it cannot be read here without waiting."""
        with self._lock:
            try:
                if self._connection is None:
                    if self._path is None:
                        return None
                    self._connection = self._connect(self._path)
                # fetchall: the statement runs to its end, so no read snapshot is held between
                # requests (one would keep checkpoints from passing it).
                [(last,)] = self._connection.execute(_LAST).fetchall()
                return last or 0
            except sqlite3.Error:
                return None

    def _connect(self, path: Path) -> sqlite3.Connection:
        if not path.exists():  # never create the file: migrating does
            self._path = None
            raise sqlite3.OperationalError(f"{path} does not exist")
        connection = sqlite3.connect(path, timeout=_BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA query_only=ON")
        return connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
