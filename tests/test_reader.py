"""A reader process (STORIES_ROLE=reader) serves every read without an index; writes
and matches sent to it are refused with 503 read_only and change nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api.factory import create_app
from app.config import Settings
from tests.factories import article, ferry_article


@pytest.fixture
def reader_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"role": "reader"})


def test_a_reader_serves_what_a_writer_stored_without_holding_an_index(settings, reader_settings):
    with TestClient(create_app(settings)) as writer, TestClient(create_app(reader_settings)) as reader:
        first = writer.post("/v1/articles", json=article()).json()
        assert reader.get("/readyz").status_code == 200
        assert len(reader.app.state.service.index.article_story_) == 0  # nothing loaded
        story = first["cluster_id"]
        for path in (
            "/v1/clusters",
            f"/v1/clusters/{story}",
            f"/v1/threads/{story}",
            f"/v1/articles/{first['id']}",
            "/v1/changes",
            "/v1/corrections",
            f"/stories/{story}",
            "/",
        ):
            assert reader.get(path).status_code == 200, path
        later = writer.post("/v1/articles", json=ferry_article()).json()  # stored after the reader started
        assert reader.get(f"/v1/clusters/{later['cluster_id']}").json()["article_count"] == 1
        assert reader.get("/v1/clusters").json() == writer.get("/v1/clusters").json()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/articles", article()),
        ("POST", "/v1/articles/batch", {"articles": [article()]}),
        ("DELETE", "/v1/articles/1", None),
        ("POST", "/v1/corrections", {"kind": "move", "article_id": 1}),
        ("POST", "/v1/match", article()),
    ],
)
def test_writes_and_matches_sent_to_a_reader_are_503_read_only_and_change_nothing(
    settings, reader_settings, method, path, body
):
    with TestClient(create_app(settings)) as writer:
        writer.post("/v1/articles", json=article(url="https://news.example.com/stored"))
        before = writer.get("/v1/changes").json()
    with TestClient(create_app(reader_settings)) as reader:
        response = reader.request(method, path, json=body)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "read_only" and "STORIES_ROLE=reader" in error["message"]
        assert "retry-after" not in response.headers
        assert reader.get("/v1/changes").json() == before


def test_the_role_is_read_in_any_case_and_checked():
    assert Settings(role="READER").role == "reader"
    with pytest.raises(ValueError):
        Settings(role="writer-only")
