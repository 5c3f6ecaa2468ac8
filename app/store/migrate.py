"""Schema migrations: Alembic, applied by `stories migrate` and before serving."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from app.store import locks

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (serialised across processes on PostgreSQL)."""
    config = _config()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            locks.hold(connection, locks.MIGRATION)
            connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
            if connection.dialect.name == "sqlite":
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"foreign key check failed after migrating: {broken[:5]}")
        finally:
            if connection.dialect.name == "postgresql":
                locks.release(connection, locks.MIGRATION)
                connection.commit()


def head() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaBehind(RuntimeError):
    """The database schema is not the one this build expects."""


def require_head(engine: Engine) -> None:
    """Refuse to go on unless the schema is at head (when another step migrates)."""
    at, wanted = current(engine), head()
    if at != wanted:
        raise SchemaBehind(
            f"database schema is at revision {at}, this build needs {wanted}: run `stories migrate` "
            "first, or set STORIES_MIGRATE_ON_START=true"
        )
