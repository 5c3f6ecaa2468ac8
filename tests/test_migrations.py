from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.config import Settings
from app.store import migrate
from app.store.db import make_engine
from app.store.models import Base


def test_migrations_reach_head_and_match_the_models(database_url):
    engine = make_engine(Settings(database_url=database_url))
    try:
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head()
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(database_url):
    engine = make_engine(Settings(database_url=database_url))
    try:
        migrate.upgrade(engine)
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.head()
    finally:
        engine.dispose()
