"""Threads: a story cluster is one event; a thread links the events of an ongoing story."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.factory import create_app
from app.config import Settings
from app.store import crud, migrate
from app.store.db import make_engine
from app.store.models import Cluster
from tests.factories import article, ferry_article

VISIT = article()  # 2024-06-18: Putin arrives in Pyongyang
VISIT_WRITE_UP = article(
    url="https://daily.example.net/putin-kim-summit",
    source="daily.example.net",
    title="Kim Jong Un greets Putin at Pyongyang airport as summit opens",
    text=(
        "North Korean leader Kim Jong Un met Russian President Vladimir Putin at Pyongyang airport early on "
        "Wednesday, opening a two-day summit in the North Korean capital, Putin's first visit in 24 years.\n"
        "The leaders are due to sign a strategic partnership agreement on security and trade, the Kremlin said."
    ),
    published_at="2024-06-19T01:00:00Z",
)
# Three weeks after the visit: the next development of the same story.
TREATY = article(
    url="https://news.example.com/world/pyongyang-ratifies-partnership",
    title="Pyongyang ratifies the strategic partnership Putin and Kim Jong Un signed",
    text=(
        "North Korea has ratified the strategic partnership agreement that Russian President Vladimir Putin "
        "and Kim Jong Un signed in Pyongyang during Putin's visit, state media said on Tuesday.\n"
        "The treaty obliges Russia and North Korea to help each other if either is attacked, and covers "
        "security and trade. Washington and Seoul called it a threat to the region."
    ),
    published_at="2024-07-10T06:00:00Z",
)
FERRY = ferry_article(published_at="2024-07-10T08:00:00Z")


def post(client: TestClient, body: dict) -> dict:
    response = client.post("/v1/articles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def story(client: TestClient, cluster_id: int) -> dict:
    response = client.get(f"/v1/clusters/{cluster_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_story_that_continues_none_starts_its_own_thread(client):
    visit = post(client, VISIT)
    assert story(client, visit["cluster_id"])["thread_id"] == visit["cluster_id"]


def test_a_development_after_the_story_went_quiet_is_a_new_event_in_its_thread(client):
    visit = post(client, VISIT)
    assert post(client, VISIT_WRITE_UP)["cluster_id"] == visit["cluster_id"]
    treaty = post(client, TREATY)
    assert treaty["cluster_id"] != visit["cluster_id"]
    assert story(client, treaty["cluster_id"])["thread_id"] == visit["cluster_id"]
    assert story(client, post(client, FERRY)["cluster_id"])["thread_id"] != visit["cluster_id"]


def test_a_thread_lists_its_events_oldest_first_with_counts_and_span(client):
    visit = post(client, VISIT)
    post(client, VISIT_WRITE_UP)
    treaty = post(client, TREATY)
    response = client.get(f"/v1/threads/{visit['cluster_id']}")
    assert response.status_code == 200, response.text
    thread = response.json()
    assert thread["id"] == visit["cluster_id"] and thread["merged_into"] is None
    assert [e["id"] for e in thread["events"]] == [visit["cluster_id"], treaty["cluster_id"]]
    assert [e["article_count"] for e in thread["events"]] == [2, 1] and thread["article_count"] == 3
    assert thread["events"][1]["title"] == TREATY["title"]
    assert thread["first_published_at"] == "2024-06-18T22:00:00Z"
    assert thread["last_published_at"] == "2024-07-10T06:00:00Z"


def test_the_listing_filters_one_thread(client):
    visit = post(client, VISIT)
    treaty = post(client, TREATY)
    post(client, FERRY)
    listed = client.get("/v1/clusters", params={"thread": visit["cluster_id"]}).json()["clusters"]
    assert sorted(c["id"] for c in listed) == sorted([visit["cluster_id"], treaty["cluster_id"]])
    assert all(c["thread_id"] == visit["cluster_id"] for c in listed)


def test_the_change_feed_says_which_thread_a_new_story_joined(client):
    visit = post(client, VISIT)
    treaty = post(client, TREATY)
    changes = client.get("/v1/changes", params={"after": 0}).json()["changes"]
    created = {c["cluster_id"]: c["thread_id"] for c in changes if c["kind"] == "created"}
    assert created == {visit["cluster_id"]: visit["cluster_id"], treaty["cluster_id"]: visit["cluster_id"]}


def test_an_unknown_thread_is_a_404_json_error_and_a_bad_id_a_422(client):
    response = client.get("/v1/threads/999")
    assert response.status_code == 404 and "thread 999" in response.json()["error"]["message"]
    assert client.get("/v1/threads/abc").status_code == 422
    assert client.get("/v1/clusters", params={"thread": 0}).status_code == 422


def test_threads_hold_across_a_restart(settings):
    with TestClient(create_app(settings)) as client:
        visit = post(client, VISIT)
    with TestClient(create_app(settings)) as client:
        treaty = post(client, TREATY)  # decided against the index rebuilt from the database
        assert story(client, treaty["cluster_id"])["thread_id"] == visit["cluster_id"]
        assert len(client.get(f"/v1/threads/{visit['cluster_id']}").json()["events"]) == 2


def test_the_story_page_links_earlier_and_later_events(client):
    visit = post(client, VISIT)
    treaty = post(client, TREATY)
    page = client.get(f"/stories/{treaty['cluster_id']}").text
    assert "Earlier and later in this story" in page
    assert f'href="/stories/{visit["cluster_id"]}"' in page
    alone = post(client, FERRY)
    assert "Earlier and later in this story" not in client.get(f"/stories/{alone['cluster_id']}").text


def _story_row(session: Session, cluster_id: int, thread_id: int, day: int) -> None:
    at = datetime(2024, 6, day, tzinfo=UTC)
    session.add(
        Cluster(
            id=cluster_id,
            thread_id=thread_id,
            title=f"story {cluster_id}",
            article_count=1,
            first_published_at=at,
            last_published_at=at,
            created_at=at,
            updated_at=at,
        )
    )


def test_a_merge_brings_the_absorbed_story_whole_thread_into_the_survivor_thread(database_url):
    engine = make_engine(Settings(database_url=database_url))
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        _story_row(session, 1, 1, 1)  # thread 1: stories 1 and 2
        _story_row(session, 2, 1, 20)
        _story_row(session, 3, 3, 2)  # thread 3: stories 3 and 4
        _story_row(session, 4, 3, 25)
        session.flush()
        assert crud.merge_clusters(session=session, survivor_id=2, absorbed_id=4) == (3, 1)
    with Session(engine) as session:
        assert dict(session.execute(select(Cluster.id, Cluster.thread_id)).all()) == {1: 1, 2: 1, 3: 1, 4: 1}
        answering, events = crud.resolve_thread(session=session, thread_id=3)
        assert answering == 1 and [e.id for e in events] == [1, 3, 2]
    engine.dispose()


def test_a_story_stored_without_a_thread_is_its_own(client, settings):
    # As a story stored before threads, or by a replica of an older version, is.
    visit = post(client, VISIT)
    engine = make_engine(settings)
    with Session(engine) as session, session.begin():
        session.get(Cluster, visit["cluster_id"]).thread_id = None
    engine.dispose()
    assert story(client, visit["cluster_id"])["thread_id"] == visit["cluster_id"]
    assert [e["id"] for e in client.get(f"/v1/threads/{visit['cluster_id']}").json()["events"]] == [visit["cluster_id"]]
    listed = client.get("/v1/clusters", params={"thread": visit["cluster_id"]}).json()["clusters"]
    assert [c["id"] for c in listed] == [visit["cluster_id"]]
    treaty = post(client, TREATY)
    assert story(client, treaty["cluster_id"])["thread_id"] == visit["cluster_id"]


def test_match_says_which_thread_a_text_would_be_in(client):
    visit = post(client, VISIT)
    joining = client.post("/v1/match", json={**VISIT_WRITE_UP, "url": None}).json()
    assert joining["cluster_id"] == visit["cluster_id"] and joining["thread_id"] == visit["cluster_id"]
    continuing = client.post("/v1/match", json=TREATY).json()
    assert continuing["cluster_id"] is None and continuing["thread_id"] == visit["cluster_id"]
    alone = client.post("/v1/match", json=FERRY).json()
    assert alone["cluster_id"] is None and alone["thread_id"] is None


# -- why an article went where it did ------------------------------------------------


def decision_of(client: TestClient, article_id: int) -> dict:
    response = client.get(f"/v1/articles/{article_id}")
    assert response.status_code == 200, response.text
    return response.json()["decision"]


def test_each_article_says_why_it_went_where_it_did(client):
    visit = post(client, VISIT)
    first = decision_of(client, visit["id"])
    assert first["rule"] == "new" and first["candidates"] == [] and first["model"] == "article"
    write_up = post(client, VISIT_WRITE_UP)
    joined = decision_of(client, write_up["id"])
    assert joined["rule"] == "join" and joined["score"] >= joined["threshold"] > 0
    best = joined["candidates"][0]
    assert best["cluster_id"] == visit["cluster_id"] and best["probability"] == joined["score"]
    assert set(best["features"]) == {"title", "body", "names", "time_decay", "days_outside", "log_size", "semantic"}
    treaty = decision_of(client, post(client, TREATY)["id"])
    assert treaty["rule"] == "new_event" and treaty["thread_of"] == visit["cluster_id"]


def test_a_copy_says_what_it_copies_and_how_closely(client):
    visit = post(client, VISIT)
    copy = post(client, {**VISIT, "url": "https://wire.example.org/putin-pyongyang", "source": "wire.example.org"})
    why = decision_of(client, copy["id"])
    assert why["rule"] == "near_duplicate" and why["duplicate_of"] == visit["id"] and why["jaccard"] >= 0.8


def test_the_story_page_shows_why_each_article_is_in_it(client):
    visit = post(client, VISIT)
    write_up = post(client, VISIT_WRITE_UP)
    page = client.get(f"/stories/{visit['cluster_id']}").text
    assert "opened the story" in page
    assert f"joined at {decision_of(client, write_up['id'])['score']:.2f}" in page
