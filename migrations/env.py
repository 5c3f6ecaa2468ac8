"""Alembic environment: migrates the database named by the service settings.

``stories migrate`` passes an open connection in ``config.attributes``; plain
``alembic upgrade head`` builds one from ``STORIES_DATABASE_URL``.
"""

from alembic import context

from app.config import Settings
from app.store.db import make_engine
from app.store.models import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(Settings())
    with engine.connect() as connection:
        _run(connection)
        connection.commit()


def _run(connection) -> None:
    if connection.dialect.name == "sqlite":
        # Batch migrations rebuild SQLite tables (copy, drop, rename); dropping a table
        # that others reference fails while foreign keys are enforced. The pragma only
        # takes effect outside a transaction, so it comes first; app.store.migrate turns
        # enforcement back on and checks every reference once the upgrade committed.
        # The raw driver connection, so no BEGIN is emitted first.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `stories migrate`")
run_migrations_online()
