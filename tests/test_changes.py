"""GET /v1/changes: story events in commit order, resumable by sequence number."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api.factory import create_app
from app.cli import cli
from app.config import Settings
from clustering.assign import AssignParams
from tests.factories import article
from tests.test_assign import (
    BRIDGE_COURIER,
    BRIDGE_GAZETTE,
    BRIDGE_RADIO,
    COUNCIL_HEADLINES,
    FLOOD_HEADLINES,
    NEXT_FLOOD_HEADLINE,
    T0,
)
from tests.test_takedown import COPY, OTHER

FERRY = article(
    url="https://harbour.example.net/ferry",
    source="harbour.example.net",
    title="Night ferry to Skye Harbour cancelled as storm nears the coast",
    text=(
        "The operator of the night ferry between Port Elwin and Skye Harbour cancelled Friday's crossings as a "
        "storm moved towards the coast, with gusts of up to 110 kilometres an hour forecast.\n"
        "Passengers holding tickets can travel on Saturday's morning sailing or ask for a refund, the company said."
    ),
    published_at="2024-06-19T12:00:00Z",
)


def post(client: TestClient, body: dict) -> dict:
    response = client.post("/v1/articles", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def changes(client: TestClient, after: int = 0, limit: int = 1000) -> list[dict]:
    response = client.get("/v1/changes", params={"after": after, "limit": limit})
    assert response.status_code == 200, response.text
    return response.json()["changes"]


def brief(events: list[dict]) -> list[tuple]:
    return [(e["kind"], e["cluster_id"], e["article_id"], e["article_count"]) for e in events]


def test_opening_and_joining_a_story_are_created_and_grew_events(client):
    first = post(client, article())
    second = post(client, OTHER)
    other = post(client, FERRY)
    assert brief(changes(client)) == [
        ("created", first["cluster_id"], first["id"], 1),
        ("grew", first["cluster_id"], second["id"], 2),
        ("created", other["cluster_id"], other["id"], 1),
    ]


def test_sequence_numbers_increase_and_resume_after_a_given_one(client):
    post(client, article())
    post(client, OTHER)
    post(client, FERRY)
    events = changes(client)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert changes(client, after=seqs[0]) == events[1:]
    assert changes(client, after=seqs[-1]) == []


def test_paging_with_a_limit_sees_every_event_once(client):
    for i in range(7):
        post(client, article(url=f"https://mirror{i}.example.com/p", source=f"mirror{i}.example.com"))
    seen, after = [], 0
    while True:
        page = client.get("/v1/changes", params={"after": after, "limit": 2}).json()
        if not page["changes"]:
            assert page["next_after"] == after
            break
        seen += page["changes"]
        after = page["next_after"]
    assert [e["seq"] for e in seen] == [e["seq"] for e in changes(client)]
    assert len(seen) == 7


def test_posting_a_known_article_again_adds_no_event(client):
    post(client, article())
    before = changes(client)
    assert post(client, article())["status"] == "existing"
    assert changes(client) == before


def test_a_rejected_batch_item_adds_no_event(client):
    response = client.post("/v1/articles/batch", json={"articles": [article(), {"title": "no text"}]})
    assert response.status_code == 200
    assert [e["kind"] for e in changes(client)] == ["created"]


def test_a_takedown_is_an_article_deleted_event(client):
    first = post(client, article())
    copy = post(client, article(**COPY))
    client.delete(f"/v1/articles/{copy['id']}")
    assert brief(changes(client))[-1] == ("article_deleted", first["cluster_id"], copy["id"], 1)


def test_a_merge_is_a_merged_event_naming_the_survivor(client):
    service = client.app.state.service
    strict = service.index.params
    service.index.params = AssignParams(threshold=1.0, merge_threshold=1.0)  # two stories of one event
    at = T0.isoformat()
    gazette = post(
        client,
        article(
            url="https://gazette.example/b",
            source="gazette.example",
            title=BRIDGE_GAZETTE[0],
            text=BRIDGE_GAZETTE[1],
            published_at=at,
        ),
    )
    courier = post(
        client,
        article(
            url="https://courier.example/b",
            source="courier.example",
            title=BRIDGE_COURIER[0],
            text=BRIDGE_COURIER[1],
            published_at=at,
        ),
    )
    assert gazette["cluster_id"] != courier["cluster_id"]
    service.index.params = strict
    radio = post(
        client,
        article(
            url="https://radio.example/b",
            source="radio.example",
            title=BRIDGE_RADIO[0],
            text=BRIDGE_RADIO[1],
            published_at=(T0 + timedelta(hours=5)).isoformat(),
        ),
    )
    merged = [e for e in changes(client) if e["kind"] == "merged"]
    assert len(merged) == 1
    assert {merged[0]["cluster_id"], merged[0]["into_cluster_id"]} == {gazette["cluster_id"], courier["cluster_id"]}
    assert merged[0]["into_cluster_id"] == radio["cluster_id"] and merged[0]["article_count"] == 3


def headline(client: TestClient, n: int, title: str) -> dict:
    """A feed's headline alone: the title is all the text there is."""
    return post(
        client,
        article(
            url=f"https://wire{n}.example/h",
            source=f"wire{n}.example",
            title=title,
            text=title,
            published_at=T0.isoformat(),
        ),
    )


def test_a_grown_headline_story_takes_in_the_smaller_ones_in_one_decision(settings, monkeypatch):
    monkeypatch.setenv("STORIES_DATABASE_URL", settings.database_url)
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service
        service.index.params = AssignParams(headline_threshold=1.0)  # each headline opens a story of its own
        flood = [headline(client, n, title) for n, title in enumerate(FLOOD_HEADLINES[:3])]
        council = headline(client, 3, COUNCIL_HEADLINES[0])
        assert len({h["cluster_id"] for h in [*flood, council]}) == 4
        # The next flood headline joins one flood story, which then holds two: as large as
        # asked, it takes in the other two, and leaves the council's story alone.
        service.index.params = AssignParams(headline_threshold=0.01, regroup_threshold=None, absorb_members=2)
        joined = headline(client, 4, NEXT_FLOOD_HEADLINE)
        assert joined["cluster_id"] in {h["cluster_id"] for h in flood}
        merged = [e for e in changes(client) if e["kind"] == "merged"]
        assert len(merged) == 2
        assert {e["into_cluster_id"] for e in merged} == {joined["cluster_id"]}
        assert {e["cluster_id"] for e in merged} == {h["cluster_id"] for h in flood} - {joined["cluster_id"]}
        assert max(e["article_count"] for e in merged) == 4
        story = client.get(f"/v1/clusters/{joined['cluster_id']}").json()
        assert story["article_count"] == 4
        assert client.get(f"/v1/clusters/{council['cluster_id']}").json()["article_count"] == 1
        members = {a["id"]: a["cluster_id"] for a in (client.get(f"/v1/articles/{h['id']}").json() for h in flood)}
    assert set(members.values()) == {joined["cluster_id"]}
    with TestClient(create_app(settings)) as client:  # a restart rebuilds the same stories
        again = {h["id"]: client.get(f"/v1/articles/{h['id']}").json()["cluster_id"] for h in flood}
        assert again == members
        assert client.get(f"/v1/clusters/{council['cluster_id']}").json()["article_count"] == 1


def test_pruned_stories_are_pruned_events(settings, monkeypatch):
    monkeypatch.setenv("STORIES_DATABASE_URL", settings.database_url)
    with TestClient(create_app(settings)) as client:
        old = post(client, article())
        post(client, article(**{**FERRY, "published_at": "2025-03-01T00:00:00Z"}))
    assert CliRunner().invoke(cli, ["prune", "--before", "2025-01-01"]).exit_code == 0
    with TestClient(create_app(settings)) as client:
        assert brief(changes(client))[-1] == ("pruned", old["cluster_id"], None, 0)


@pytest.mark.parametrize("query", ["after=-1", "after=abc", f"after={2**63}", "limit=0", "limit=1001"])
def test_bad_paging_parameters_are_422(client, query):
    response = client.get(f"/v1/changes?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"]


def test_the_feed_needs_the_read_key_when_one_is_set(database_url):
    settings = Settings(database_url=database_url, read_api_key="reader-key")
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/changes").status_code == 401
        ok = client.get("/v1/changes", headers={"Authorization": "Bearer reader-key"})
        assert ok.status_code == 200 and ok.json() == {"changes": [], "next_after": 0}
