"""Shared fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

PostgreSQL comes from ``STORIES_TEST_POSTGRES_URL`` (default: the local server's
``test`` database). When it cannot be reached the PostgreSQL half of the suite
*fails* with the reason; set ``STORIES_TEST_SKIP_POSTGRES=1`` to skip it on a
machine that has no server, knowingly.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.api.factory import create_app
from app.config import Settings

# Apps built in the test process prepare articles in the request's thread: the same code
# a worker process runs, without starting processes for each of the hundreds of apps the
# tests build. Real servers (tests/servers.py: crash, replicas, concurrency, the image
# replay) start from an environment without STORIES_* and prepare in worker processes,
# as does tests/test_workers.py.
os.environ.setdefault("STORIES_WORKERS", "0")

POSTGRES_URL = os.environ.get("STORIES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


_SCHEMAS = itertools.count()


def _admin(statement: str) -> None:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database; the test's app migrates it as production does.

    On PostgreSQL each test gets its own schema (first on the search path), so
    concurrent test runs against one server never see each other's tables.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stories.db'}"
        return
    if os.environ.get("STORIES_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("STORIES_TEST_SKIP_POSTGRES=1: PostgreSQL tests skipped on purpose")
    schema = f"test_{os.getpid()}_{next(_SCHEMAS)}"
    try:
        _admin(f"CREATE SCHEMA {schema}")
    except Exception as err:  # noqa: BLE001 - any failure to connect must be reported
        pytest.fail(
            f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(err).__name__}: {err}). "
            "Start it, point STORIES_TEST_POSTGRES_URL elsewhere, or set STORIES_TEST_SKIP_POSTGRES=1.",
            pytrace=False,
        )
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    _admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, api_key=None)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
