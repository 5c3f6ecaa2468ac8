"""app.service.snapshot: the index kept in a file between runs is loaded at start only when
the database confirms it, and the service then decides as one rebuilt from the database."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.api.factory import create_app
from app.config import Settings
from app.service.caches import Caches
from tests.factories import article
from tests.test_restart import CONCERT, DAM, DAM_AFTER_RESTART, SUMMIT

LOADED = "caches loaded from"
NOT_USED = "not used"


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    return tmp_path / "index" / "stories.index"


@pytest.fixture
def settings(database_url: str, kept: Path) -> Settings:
    return Settings(database_url=database_url, api_key=None, index_snapshot=str(kept), workers=0)


def serve(settings: Settings, **changes) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


def post(client: TestClient, bodies: list[dict]) -> list[dict]:
    results = []
    for body in bodies:
        response = client.post("/v1/articles", json=body)
        assert response.status_code in (200, 201), response.text
        results.append(response.json())
    return results


def held(client: TestClient) -> dict[int, list[int]]:
    """{story: its members} of the running service's index."""
    stories = client.app.state.service.index.stories_
    return {story_id: sorted(story.members) for story_id, story in stories.items()}


def rebuilt(client: TestClient) -> dict[int, list[int]]:
    """The same, of an index rebuilt from the database now."""
    caches = Caches(client.app.state.settings.index_horizon_days)
    with Session(client.app.state.read_engine) as session:
        caches.rebuild(session)
    return {story_id: sorted(story.members) for story_id, story in caches.index.stories_.items()}


def copy_of(body: dict, url: str) -> dict:
    return {**body, "url": url, "source": "copydesk.example"}


def test_shutdown_keeps_the_index_and_the_next_start_loads_it(settings, kept, caplog):
    with serve(settings) as client:
        first = post(client, DAM + SUMMIT)
    assert kept.is_file() and not list(kept.parent.glob(".*partial"))
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(settings) as client:
        assert LOADED in caplog.text and NOT_USED not in caplog.text
        assert held(client) == rebuilt(client)
        joined = post(client, [DAM_AFTER_RESTART])[0]
        copy = post(client, [copy_of(SUMMIT[0], "https://copydesk.example/pact")])[0]
    assert joined["cluster_id"] == first[0]["cluster_id"]
    assert copy["duplicate_of"] == first[2]["id"] and copy["cluster_id"] == first[2]["cluster_id"]


def test_a_file_left_half_written_by_a_killed_writer_is_deleted_at_the_next_shutdown(settings, kept):
    gone = subprocess.Popen(["true"])
    gone.wait()
    kept.parent.mkdir(parents=True)
    leftover = kept.with_name(f".{kept.name}.{gone.pid}.partial")
    writing = kept.with_name(f".{kept.name}.{os.getppid()}.partial")  # its writer still runs
    other = kept.with_name(f".{kept.name}.old.{gone.pid}.partial")  # of another file
    for path in (leftover, writing, other):
        path.write_bytes(b"PK\x03\x04 cut short")
    with serve(settings) as client:
        post(client, DAM)
    assert kept.is_file() and not leftover.exists() and writing.exists() and other.exists()


def test_articles_stored_after_the_snapshot_are_caught_up_at_start(settings, caplog):
    with serve(settings) as client:
        dam = post(client, DAM)
    with serve(settings, index_snapshot="off") as other:  # another process, keeping no file
        summit = post(other, SUMMIT)
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(settings) as client:
        assert LOADED in caplog.text
        assert held(client) == rebuilt(client)
        assert {dam[0]["cluster_id"], summit[0]["cluster_id"]} <= set(held(client))
        copy = post(client, [copy_of(SUMMIT[0], "https://copydesk.example/sorrholm")])[0]
    assert copy["duplicate_of"] == summit[0]["id"]


def test_after_a_takedown_elsewhere_the_start_rebuilds_from_the_database(settings, caplog):
    with serve(settings) as client:
        dam = post(client, DAM + CONCERT)
    with serve(settings, index_snapshot="off") as other:
        assert other.delete(f"/v1/articles/{dam[1]['id']}").status_code in (200, 204)
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(settings) as client:
        assert NOT_USED in caplog.text and "taken down" in caplog.text
        assert dam[1]["id"] not in client.app.state.service.index.article_story_
        assert held(client) == rebuilt(client)


def test_a_snapshot_of_another_database_is_not_trusted(settings, kept, tmp_path, caplog):
    with serve(settings) as client:
        post(client, DAM)
    other = Settings(database_url=f"sqlite:///{tmp_path / 'other.db'}", api_key=None, index_snapshot="off", workers=0)
    with serve(other) as client:
        post(client, [article(url=f"https://other.example/{n}", title=f"Other story {n}") for n in range(2)])
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(other, index_snapshot=str(kept)) as client:
        assert "another database" in caplog.text
        assert held(client) == rebuilt(client)


def test_an_article_moved_behind_the_service_is_seen_and_the_start_rebuilds(settings, caplog):
    with serve(settings) as client:
        dam = post(client, DAM + CONCERT)
        engine = client.app.state.read_engine.engine
    moved = create_engine(engine.url)  # the service is stopped: an edit straight in the database
    with moved.begin() as connection:
        connection.execute(
            text("UPDATE articles SET cluster_id = :into WHERE id = :id"),
            {"into": dam[2]["cluster_id"], "id": dam[1]["id"]},
        )
    moved.dispose()
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(settings) as client:
        assert "not the ones it holds" in caplog.text
        assert held(client) == rebuilt(client)
        assert client.app.state.service.index.story_of(dam[1]["id"]) == dam[2]["cluster_id"]


@pytest.mark.parametrize("damage", ["truncated", "garbled", "empty"])
def test_a_damaged_snapshot_is_rebuilt_from_the_database(settings, kept, damage, caplog):
    with serve(settings) as client:
        dam = post(client, DAM)
    data = kept.read_bytes()
    if damage == "truncated":
        kept.write_bytes(data[: len(data) // 2])
    elif damage == "garbled":
        middle = len(data) // 2
        kept.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 64]) + data[middle + 64 :])
    else:
        kept.write_bytes(b"")
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(settings) as client:
        assert "cannot be read" in caplog.text
        assert client.get("/readyz").status_code == 200
        assert held(client) == rebuilt(client) and dam[0]["cluster_id"] in held(client)


def test_a_snapshot_kept_under_another_horizon_is_not_trusted(settings, caplog):
    with serve(settings) as client:
        post(client, DAM)
    caplog.clear()
    with caplog.at_level(logging.INFO), serve(settings, index_horizon_days=365) as client:
        assert "another build or configuration" in caplog.text
        assert held(client) == rebuilt(client)


def test_a_shutdown_that_cannot_keep_the_index_still_stops_cleanly(settings, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING), serve(settings, index_snapshot=str(blocker / "index")) as client:
        post(client, DAM)
    assert "index not kept" in caplog.text


def test_the_default_keeps_the_index_beside_a_sqlite_database_and_nowhere_on_postgresql(tmp_path):
    sqlite = Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}")
    assert sqlite.snapshot_path() == tmp_path / "stories.db.index"
    assert Settings(database_url="postgresql://localhost/stories").snapshot_path() is None
    assert Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}", index_snapshot="OFF").snapshot_path() is None
