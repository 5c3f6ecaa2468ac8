"""Retention: the in-memory index window (STORIES_INDEX_HORIZON_DAYS) and `stories prune`."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api.factory import create_app
from app.cli import cli
from app.config import Settings
from app.store import crud
from clustering.vectorise import TERM_SCHEME
from tests.factories import article, ferry_article

OLD = article()  # 2024-06-18: Putin in Pyongyang
OLD_COPY = article(
    url="https://wire.example.org/putin-pyongyang", source="wire.example.org", published_at="2024-06-19T06:00:00Z"
)
NEW = ferry_article(published_at="2025-01-10T12:00:00Z")


@pytest.fixture
def windowed(database_url) -> Settings:
    return Settings(database_url=database_url, index_horizon_days=100)


def post(client: TestClient, body: dict) -> dict:
    response = client.post("/v1/articles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def index_state(client: TestClient) -> dict:
    index = client.app.state.service.index
    return {
        "stories": {sid: sorted(s.members) for sid, s in index.stories_.items()},
        "signatures": sorted(index.near_duplicates_),
        "df": (index.df_.n_docs_, index.df_.df_.copy()),
        "archive": (index.archive_.n_docs_, index.archive_.df_.copy()),
        "postings": index.postings(),
        "clock": index.clock_,
    }


def same_state(a: dict, b: dict) -> bool:
    return (
        a["stories"] == b["stories"]
        and a["signatures"] == b["signatures"]
        and a["df"][0] == b["df"][0]
        and np.array_equal(a["df"][1], b["df"][1])
        and a["archive"][0] == b["archive"][0]
        and np.array_equal(a["archive"][1], b["archive"][1])
        and a["postings"] == b["postings"]
        and a["clock"] == b["clock"]
    )


def test_a_story_quieter_than_the_horizon_leaves_the_index_and_stays_readable(windowed):
    with TestClient(create_app(windowed)) as client:
        old = post(client, OLD)
        post(client, NEW)
        assert old["cluster_id"] not in client.app.state.service.index.stories_
        story = client.get(f"/v1/clusters/{old['cluster_id']}")
        assert story.status_code == 200 and story.json()["article_count"] == 1


def test_a_late_copy_of_a_story_that_left_the_window_still_joins_it(windowed):
    with TestClient(create_app(windowed)) as client:
        old = post(client, OLD)
        post(client, NEW)
        late = post(client, OLD_COPY)
        assert late["cluster_id"] == old["cluster_id"] and late["duplicate_of"] == old["id"]
        assert old["cluster_id"] not in client.app.state.service.index.stories_
        assert client.get(f"/v1/clusters/{old['cluster_id']}").json()["article_count"] == 2


def test_a_late_write_up_joins_the_stored_story_around_its_date(windowed):
    with TestClient(create_app(windowed)) as client:
        old = post(client, OLD)
        post(client, NEW)
        write_up = post(
            client,
            article(
                url="https://other.example.net/story",
                source="other.example.net",
                title="Putin lands in Pyongyang as Kim Jong Un greets him at the airport",
                text=(
                    "Kim Jong Un met Russian President Vladimir Putin at Pyongyang airport late on Tuesday, state media "
                    "in North Korea reported, as the two leaders prepared to sign a partnership agreement on security.\n"
                    "Putin's first trip to North Korea in 24 years comes as Washington and Seoul accuse Pyongyang of "
                    "sending artillery shells and missiles to Russia for its war in Ukraine."
                ),
                published_at="2024-06-19T03:00:00Z",
            ),
        )
        assert write_up["cluster_id"] == old["cluster_id"] and write_up["duplicate_of"] is None


def test_a_story_brought_back_into_the_window_returns_whole(windowed):
    with TestClient(create_app(windowed)) as client:
        old = post(client, OLD)  # 2024-06-18
        post(client, {**NEW, "published_at": "2024-10-01T00:00:00Z"})  # the window starts on 2024-06-23
        assert old["cluster_id"] not in client.app.state.service.index.stories_
        back = post(
            client,
            article(
                **{
                    **OLD_COPY,
                    "url": "https://wire.example.org/putin-follow-up",
                    "published_at": "2024-07-01T00:00:00Z",
                }
            ),
        )
        assert back["cluster_id"] == old["cluster_id"]
        index = client.app.state.service.index
        assert sorted(index.stories_[old["cluster_id"]].members) == [old["id"], back["id"]]
        running = index_state(client)
    with TestClient(create_app(windowed)) as client:
        assert same_state(index_state(client), running)


def test_a_restart_rebuilds_exactly_the_window_a_running_server_holds(windowed):
    with TestClient(create_app(windowed)) as client:
        post(client, OLD)
        post(client, OLD_COPY)
        post(client, NEW)
        post(
            client,
            article(
                **{
                    **OLD,
                    "url": "https://late.example.com/x",
                    "source": "late.example.com",
                    "title": "Late report from Pyongyang",
                }
            ),
        )
        running = index_state(client)
    with TestClient(create_app(windowed)) as client:
        assert same_state(index_state(client), running)
        assert len(client.app.state.service.index.stories_) == 1


# Five months after OLD: a look back at the same visit, and another meeting of the same two leaders.
RETOLD = article(
    url="https://review.example.org/putin-pyongyang-look-back",
    source="review.example.org",
    title="Putin's Pyongyang visit: how Kim Jong Un greeted him and what the two leaders signed",
    text=(
        "When Russian President Vladimir Putin arrived in Pyongyang for his first visit to North Korea in 24 "
        "years, Kim Jong Un greeted him at the airport and the two leaders signed a strategic partnership "
        "agreement on security and trade.\n"
        "Washington and Seoul say Pyongyang has supplied artillery shells and ballistic missiles for Russia's "
        "war in Ukraine since the visit; Moscow and Pyongyang deny it."
    ),
    published_at="2024-11-20T09:00:00Z",
)
OTHER_MEETING = article(
    url="https://review.example.org/kim-vladivostok",
    source="review.example.org",
    title="Kim Jong Un crosses into Russia by armoured train for Vladivostok summit",
    text=(
        "North Korean leader Kim Jong Un crossed the border into Russia on Wednesday aboard his armoured train, "
        "heading for Vladivostok where Vladimir Putin will host him at the Eastern Economic Forum.\n"
        "Officials in Moscow said the talks would cover fishing rights, a new road bridge over the Tumen river "
        "and flights between the two countries."
    ),
    published_at="2024-11-20T09:00:00Z",
)


def test_a_look_back_months_later_continues_its_story_thread_while_the_index_holds_it(database_url):
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        old = post(client, OLD)
        retold = post(client, RETOLD)
        assert retold["cluster_id"] != old["cluster_id"] and retold["duplicate_of"] is None
        assert client.get(f"/v1/clusters/{retold['cluster_id']}").json()["thread_id"] == old["cluster_id"]


def test_another_meeting_of_the_same_leaders_months_later_opens_its_own_story(database_url):
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        old = post(client, OLD)
        assert post(client, OTHER_MEETING)["cluster_id"] != old["cluster_id"]


def test_a_look_back_after_its_story_left_the_index_opens_a_new_story(windowed):
    with TestClient(create_app(windowed)) as client:
        old = post(client, OLD)
        post(client, {**NEW, "published_at": "2024-11-19T00:00:00Z"})  # the 100-day window moves past OLD
        assert post(client, RETOLD)["cluster_id"] != old["cluster_id"]


def test_a_longer_horizon_keeps_the_story_in_the_index(database_url):
    settings = Settings(database_url=database_url, index_horizon_days=400)
    with TestClient(create_app(settings)) as client:
        old = post(client, OLD)
        post(client, NEW)
        assert old["cluster_id"] in client.app.state.service.index.stories_


def test_a_horizon_shorter_than_the_assignment_window_is_refused():
    with pytest.raises(ValueError, match="index_horizon_days"):
        Settings(index_horizon_days=30)


# -- stories prune ---------------------------------------------------------------


def prune(*args: str):
    return CliRunner().invoke(cli, ["prune", *args])


@pytest.fixture
def environment(windowed, monkeypatch) -> Settings:
    monkeypatch.setenv("STORIES_DATABASE_URL", windowed.database_url)
    return windowed


def test_prune_deletes_old_stories_with_their_articles_and_keeps_newer_ones(environment):
    with TestClient(create_app(environment)) as client:
        old = post(client, OLD)
        copy = post(client, OLD_COPY)
        new = post(client, NEW)
    result = prune("--before", "2024-12-01")
    assert result.exit_code == 0, result.output
    assert "deleted 1 stories and 2 articles" in result.output
    with TestClient(create_app(environment)) as client:
        assert client.get(f"/v1/clusters/{old['cluster_id']}").status_code == 404
        assert client.get(f"/v1/articles/{copy['id']}").status_code == 404
        assert client.get(f"/v1/clusters/{new['cluster_id']}").status_code == 200
        assert [c["id"] for c in client.get("/v1/clusters").json()["clusters"]] == [new["cluster_id"]]


def test_a_story_with_an_article_after_the_date_stays_whole(environment):
    with TestClient(create_app(Settings(database_url=environment.database_url))) as client:
        old = post(client, OLD)
        later = post(client, article(**{**OLD_COPY, "published_at": "2024-08-01T00:00:00Z"}))
        assert later["cluster_id"] == old["cluster_id"]
    assert "deleted 0 stories and 0 articles" in prune("--before", "2024-07-01").output
    with TestClient(create_app(environment)) as client:
        assert client.get(f"/v1/clusters/{old['cluster_id']}").json()["article_count"] == 2


def test_prune_dry_run_counts_and_deletes_nothing(environment):
    with TestClient(create_app(environment)) as client:
        old = post(client, OLD)
    result = prune("--before", "2025-01-01", "--dry-run")
    assert result.exit_code == 0 and "would delete 1 stories and 1 articles" in result.output
    with TestClient(create_app(environment)) as client:
        assert client.get(f"/v1/clusters/{old['cluster_id']}").status_code == 200


def test_prune_refuses_a_time_it_cannot_read(environment):
    result = prune("--before", "last tuesday")
    assert result.exit_code == 2 and "not an ISO 8601 time" in result.output


def test_a_running_server_forgets_pruned_stories_before_its_next_write(environment):
    with TestClient(create_app(Settings(database_url=environment.database_url))) as client:
        old = post(client, OLD)
        assert prune("--before", "2024-12-01").exit_code == 0
        copy = post(client, OLD_COPY)
        assert copy["cluster_id"] != old["cluster_id"] and copy["duplicate_of"] is None
        assert old["cluster_id"] not in client.app.state.service.index.stories_


def test_document_frequencies_counted_under_another_term_scheme_are_dropped_at_start(windowed):
    with TestClient(create_app(windowed)) as client:
        post(client, OLD)
        post(client, NEW)  # OLD leaves the window: its terms are counted in the stored archive
        with client.app.state.service.sessions.begin() as session:
            assert crud.get_term_archive(session=session).n_docs_ == 1
            crud.put_setting(session=session, key="term_scheme", value={"version": 1})
    with TestClient(create_app(windowed)) as client:
        index = client.app.state.service.index
        assert index.archive_.n_docs_ == 0 and index.df_.n_docs_ == 1  # NEW, still in the window
        with client.app.state.service.sessions.begin() as session:
            assert crud.get_term_archive(session=session) is None
            assert crud.get_setting(session=session, key="term_scheme") == TERM_SCHEME


def test_document_frequencies_of_the_same_term_scheme_are_kept_at_start(windowed):
    with TestClient(create_app(windowed)) as client:
        post(client, OLD)
        post(client, NEW)
    with TestClient(create_app(windowed)) as client:
        assert client.app.state.service.index.archive_.n_docs_ == 1
