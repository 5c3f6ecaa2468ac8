"""Editors' corrections: move, split, merge; each stored, in the feed, idempotent, and
holding against later automatic decisions that would undo it, across a restart and on
a second process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api.factory import create_app
from app.cli import cli
from app.config import Settings
from clustering.assign import AssignParams
from clustering.editorial import Editorial
from tests.factories import article, ferry_article
from tests.test_assign import BRIDGE_COURIER, BRIDGE_GAZETTE, BRIDGE_RADIO, T0

# A fourth newsroom's write-up of the bridge closure: it binds every story of the three
# others strongly (probability above the merge bar), so it would merge any two of them.
BRIDGE_WIRE = (
    "Port Calder bridge closed as Alder River surges",
    "Officials in Port Calder closed the Riverside Bridge on Tuesday after the Alder River surged more than two "
    "metres overnight. Mayor Helen Okafor said Calder Transport Authority engineers found debris jammed against "
    "the bridge piers and that the crossing would remain shut until Thursday at the earliest. Residents of "
    "Millbrook were told to move vehicles to higher ground and stay off the embankment while crews clear the "
    "channel.",
)


def report(outlet: str, story: tuple[str, str], hours: float = 0) -> dict:
    title, text = story
    return article(
        url=f"https://{outlet}.example/bridge",
        source=f"{outlet}.example",
        title=title,
        text=text,
        published_at=(T0 + timedelta(hours=hours)).isoformat(),
    )


def post(client: TestClient, body: dict) -> dict:
    response = client.post("/v1/articles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def correct(client: TestClient, body: dict, status: int = 201) -> dict:
    response = client.post("/v1/corrections", json=body)
    assert response.status_code == status, response.text
    return response.json()


def story_of(client: TestClient, article_id: int) -> int:
    return client.get(f"/v1/articles/{article_id}").json()["cluster_id"]


def members(client: TestClient, cluster_id: int) -> list[int]:
    return [a["id"] for a in client.get(f"/v1/clusters/{cluster_id}").json()["articles"]]


def changes(client: TestClient) -> list[dict]:
    return client.get("/v1/changes?limit=1000").json()["changes"]


def decision(client: TestClient, article_id: int) -> dict:
    return client.get(f"/v1/articles/{article_id}").json()["decision"]


def bridge_story(client: TestClient) -> tuple[dict, dict, dict]:
    """Three outlets' write-ups of the bridge closure: one story."""
    gazette = post(client, report("gazette", BRIDGE_GAZETTE))
    courier = post(client, report("courier", BRIDGE_COURIER))
    radio = post(client, report("radio", BRIDGE_RADIO, hours=1))
    assert gazette["cluster_id"] == courier["cluster_id"] == radio["cluster_id"]
    return gazette, courier, radio


def merge_bar(client: TestClient) -> float:
    return client.app.state.service.index.params.merge_threshold


# -- split -------------------------------------------------------------------------------------------


def test_a_split_makes_the_listed_articles_a_new_story_in_the_same_thread(client):
    gazette, courier, radio = bridge_story(client)
    story = gazette["cluster_id"]
    done = correct(
        client,
        {
            "kind": "split",
            "cluster_id": story,
            "article_ids": [radio["id"], courier["id"]],
            "editor": "desk",
            "note": "n",
        },
    )
    new = done["into_cluster_id"]
    assert done["kind"] == "split" and done["opened"] and new != story
    assert done["article_ids"] == sorted([courier["id"], radio["id"]]) and done["editor"] == "desk"
    assert members(client, story) == [gazette["id"]]
    assert sorted(members(client, new)) == sorted([courier["id"], radio["id"]])
    old, split = client.get(f"/v1/clusters/{story}").json(), client.get(f"/v1/clusters/{new}").json()
    assert (old["article_count"], split["article_count"]) == (1, 2)
    assert split["title"] in (BRIDGE_COURIER[0], BRIDGE_RADIO[0]) and old["title"] == BRIDGE_GAZETTE[0]
    assert split["thread_id"] == old["thread_id"] == story
    assert client.get(f"/v1/corrections/{done['id']}").json() == done
    assert client.get("/v1/corrections").json() == {"corrections": [done], "next_after": done["id"]}


def test_a_split_is_in_the_change_feed_naming_the_correction(client):
    gazette, courier, _ = bridge_story(client)
    done = correct(client, {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"]]})
    events = [e for e in changes(client) if e["correction_id"] is not None]
    assert [
        (e["kind"], e["cluster_id"], e["article_id"], e["into_cluster_id"], e["article_count"]) for e in events
    ] == [
        ("created", done["into_cluster_id"], courier["id"], None, 1),
        ("moved", gazette["cluster_id"], courier["id"], done["into_cluster_id"], 1),
    ]
    assert all(e["correction_id"] == done["id"] for e in events)


def test_the_same_split_twice_changes_nothing_the_second_time(client):
    gazette, courier, _ = bridge_story(client)
    body = {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"]]}
    first = correct(client, body)
    feed = changes(client)
    assert correct(client, body, status=200) == first
    assert changes(client) == feed
    assert len(client.get("/v1/corrections").json()["corrections"]) == 1


def test_stories_an_editor_split_are_never_merged_by_an_article_binding_both(client):
    gazette, courier, radio = bridge_story(client)
    story = gazette["cluster_id"]
    split = correct(client, {"kind": "split", "cluster_id": story, "article_ids": [courier["id"], radio["id"]]})
    wire = post(client, report("wire", BRIDGE_WIRE, hours=3))
    why = decision(client, wire["id"])
    # It binds both stories above the merge bar: without the split's constraint it would merge them.
    bound = {c["cluster_id"] for c in why["candidates"] if c["probability"] >= merge_bar(client)}
    assert bound == {story, split["into_cluster_id"]}
    assert why["merged"] == [] and wire["cluster_id"] in bound
    assert not [e for e in changes(client) if e["kind"] == "merged"]
    assert members(client, story) == [gazette["id"]] + ([wire["id"]] if wire["cluster_id"] == story else [])


# -- move --------------------------------------------------------------------------------------------


def test_a_move_into_another_story_takes_the_articles_near_duplicates_along(client):
    gazette, courier, _ = bridge_story(client)
    copy = post(
        client, {**report("courier", BRIDGE_COURIER), "url": "https://mirror.example/c", "source": "mirror.example"}
    )
    assert copy["duplicate_of"] == courier["id"]
    ferry = post(client, ferry_article(published_at=T0.isoformat()))
    done = correct(client, {"kind": "move", "article_id": copy["id"], "into_cluster_id": ferry["cluster_id"]})
    assert done["article_ids"] == sorted([courier["id"], copy["id"]]) and not done["opened"]
    assert sorted(members(client, ferry["cluster_id"])) == sorted([ferry["id"], courier["id"], copy["id"]])
    assert courier["id"] not in members(client, gazette["cluster_id"])
    assert client.get(f"/v1/articles/{copy['id']}").json()["duplicate_of"] == courier["id"]
    moved = [e for e in changes(client) if e["kind"] == "moved"]
    assert {e["article_id"] for e in moved} == {courier["id"], copy["id"]}
    assert all(e["into_cluster_id"] == ferry["cluster_id"] and e["article_count"] == 3 for e in moved)


def test_a_move_without_copies_cuts_the_near_duplicate_group_in_two(client):
    gazette, courier, _ = bridge_story(client)
    copy = post(
        client, {**report("courier", BRIDGE_COURIER), "url": "https://mirror.example/c", "source": "mirror.example"}
    )
    done = correct(client, {"kind": "move", "article_id": courier["id"], "with_copies": False})
    assert done["opened"] and done["article_ids"] == [courier["id"]]
    assert members(client, done["into_cluster_id"]) == [courier["id"]]
    assert story_of(client, copy["id"]) == gazette["cluster_id"]
    assert client.get(f"/v1/articles/{copy['id']}").json()["duplicate_of"] is None
    thread = client.get(f"/v1/clusters/{done['into_cluster_id']}").json()["thread_id"]
    assert thread == done["into_cluster_id"]  # a story of its own: a thread of its own


def test_a_moved_article_says_an_editor_placed_it_beside_the_models_decision(client):
    gazette, courier, _ = bridge_story(client)
    before = decision(client, courier["id"])
    done = correct(client, {"kind": "move", "article_id": courier["id"], "editor": "ana", "note": "another bridge"})
    why = decision(client, courier["id"])
    assert why["rule"] == "editor" and why["automatic_rule"] == before["rule"] == "join"
    assert (why["correction_id"], why["editor"], why["note"]) == (done["id"], "ana", "another bridge")
    assert why["from_cluster_id"] == gazette["cluster_id"] and why["score"] == before["score"]
    page = client.get(f"/stories/{done['into_cluster_id']}").text
    assert "moved here by an editor" in page and "ana: another bridge" in page


def test_the_same_move_twice_changes_nothing_the_second_time(client):
    _, courier, _ = bridge_story(client)
    first = correct(client, {"kind": "move", "article_id": courier["id"]})
    feed = changes(client)
    assert correct(client, {"kind": "move", "article_id": courier["id"]}, status=200) == first
    again = {"kind": "move", "article_id": courier["id"], "into_cluster_id": first["into_cluster_id"]}
    assert correct(client, again, status=200) == first
    assert changes(client) == feed


def test_an_article_an_editor_placed_is_never_moved_by_an_automatic_merge(client):
    service = client.app.state.service
    usual = service.index.params
    service.index.params = AssignParams(threshold=1.0, merge_threshold=1.0)  # the model keeps every article apart
    gazette = post(client, report("gazette", BRIDGE_GAZETTE))
    courier = post(client, report("courier", BRIDGE_COURIER))
    for outlet in ("mirror", "echo"):  # the courier's story grows largest with copies
        post(client, report(outlet, BRIDGE_COURIER))
    radio = post(client, report("radio", BRIDGE_RADIO))
    correct(client, {"kind": "move", "article_id": radio["id"], "into_cluster_id": gazette["cluster_id"]})
    service.index.params = usual
    wire = post(client, report("wire", BRIDGE_WIRE, hours=3))
    # The wire binds both stories: they merge, and the larger (the courier's) would survive,
    # moving the radio's article. The story holding it survives instead.
    merged = [e for e in changes(client) if e["kind"] == "merged"]
    assert [(e["cluster_id"], e["into_cluster_id"]) for e in merged] == [(courier["cluster_id"], gazette["cluster_id"])]
    assert story_of(client, radio["id"]) == gazette["cluster_id"] == wire["cluster_id"]
    assert len(members(client, gazette["cluster_id"])) == 6


# -- merge -------------------------------------------------------------------------------------------


def test_an_editors_merge_folds_one_story_into_another_and_the_absorbed_id_resolves(client):
    gazette, _, _ = bridge_story(client)
    ferry = post(client, ferry_article(published_at=T0.isoformat()))
    done = correct(
        client, {"kind": "merge", "cluster_id": ferry["cluster_id"], "into_cluster_id": gazette["cluster_id"]}
    )
    assert (done["kind"], done["article_ids"], done["opened"]) == ("merge", [], False)
    absorbed = client.get(f"/v1/clusters/{ferry['cluster_id']}").json()
    assert absorbed["id"] == gazette["cluster_id"] and absorbed["article_count"] == 4
    [event] = [e for e in changes(client) if e["kind"] == "merged"]
    assert (event["cluster_id"], event["into_cluster_id"], event["correction_id"], event["article_count"]) == (
        ferry["cluster_id"],
        gazette["cluster_id"],
        done["id"],
        4,
    )
    feed = changes(client)
    body = {"kind": "merge", "cluster_id": ferry["cluster_id"], "into_cluster_id": gazette["cluster_id"]}
    assert correct(client, body, status=200) == done
    assert changes(client) == feed


def test_an_editors_merge_lifts_the_split_between_the_same_stories(client):
    gazette, courier, _ = bridge_story(client)
    split = correct(client, {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"]]})
    correct(client, {"kind": "merge", "cluster_id": split["into_cluster_id"], "into_cluster_id": gazette["cluster_id"]})
    assert story_of(client, courier["id"]) == gazette["cluster_id"]
    assert client.app.state.service.caches.editorial.apart == set()


# -- they hold: a restart, a second process ------------------------------------------------------------


def test_a_split_holds_after_a_restart(settings):
    with TestClient(create_app(settings)) as client:
        gazette, courier, radio = bridge_story(client)
        split = correct(
            client,
            {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"], radio["id"]]},
        )
    with TestClient(create_app(settings)) as client:
        wire = post(client, report("wire", BRIDGE_WIRE, hours=3))
        assert decision(client, wire["id"])["merged"] == []
        assert story_of(client, courier["id"]) == split["into_cluster_id"] != story_of(client, gazette["id"])
        body = {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"], radio["id"]]}
        assert correct(client, body, status=200)["id"] == split["id"]


def test_a_correction_by_one_process_holds_in_another_on_the_same_database(settings):
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        gazette, courier, radio = bridge_story(one)
        post(two, report("echo", BRIDGE_GAZETTE, hours=0.5))  # the second process has the story in its index
        split = correct(
            one, {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"], radio["id"]]}
        )
        wire = post(two, report("wire", BRIDGE_WIRE, hours=3))
        assert decision(two, wire["id"])["merged"] == []
        assert wire["cluster_id"] in (gazette["cluster_id"], split["into_cluster_id"])
        assert not [e for e in changes(two) if e["kind"] == "merged"]
        assert two.app.state.service.caches.editorial.kept_apart(gazette["cluster_id"], split["into_cluster_id"])


def test_a_split_holds_after_a_prune_rebuilds_the_caches(client):
    post(client, ferry_article(published_at="2020-01-01T00:00:00Z"))  # old enough to be pruned
    gazette, courier, radio = bridge_story(client)
    story = gazette["cluster_id"]
    split = correct(client, {"kind": "split", "cluster_id": story, "article_ids": [courier["id"], radio["id"]]})
    service = client.app.state.service
    assert service.prune(T0 - timedelta(days=365)).stories == 1
    assert not service.ready  # the caches are rebuilt before the next decision
    wire = post(client, report("wire", BRIDGE_WIRE, hours=3))
    assert decision(client, wire["id"])["merged"] == []
    assert service.caches.editorial.kept_apart(story, split["into_cluster_id"])


def test_a_placed_article_can_be_taken_down_and_its_story_updates(client):
    gazette, courier, _ = bridge_story(client)
    done = correct(client, {"kind": "move", "article_id": courier["id"]})
    assert client.delete(f"/v1/articles/{courier['id']}").status_code == 200
    assert client.get(f"/v1/clusters/{done['into_cluster_id']}").status_code == 404  # empty: gone from reads
    assert story_of(client, gazette["id"]) == gazette["cluster_id"]


# -- bad requests: a clear 4xx, nothing changed ------------------------------------------------------------


def _bad_requests(gazette: dict, courier: dict, radio: dict, ferry: dict, merged_away: int) -> list[tuple[dict, int]]:
    story = gazette["cluster_id"]
    return [
        ({"kind": "move", "article_id": 999_999}, 404),
        ({"kind": "move", "article_id": courier["id"], "into_cluster_id": 999_999}, 404),
        ({"kind": "move", "article_id": courier["id"], "into_cluster_id": merged_away}, 409),
        ({"kind": "split", "cluster_id": 999_999, "article_ids": [courier["id"]]}, 404),
        ({"kind": "split", "cluster_id": story, "article_ids": [999_999]}, 404),
        ({"kind": "split", "cluster_id": story, "article_ids": [ferry["id"]]}, 409),
        ({"kind": "split", "cluster_id": story, "article_ids": [gazette["id"], courier["id"], radio["id"]]}, 409),
        ({"kind": "split", "cluster_id": merged_away, "article_ids": [ferry["id"]]}, 409),
        ({"kind": "split", "cluster_id": story, "article_ids": []}, 422),
        ({"kind": "split", "cluster_id": story, "article_ids": [courier["id"], courier["id"]]}, 422),
        ({"kind": "merge", "cluster_id": story, "into_cluster_id": story}, 422),
        ({"kind": "merge", "cluster_id": story, "into_cluster_id": merged_away}, 409),
        ({"kind": "merge", "cluster_id": 999_999, "into_cluster_id": story}, 404),
        ({"kind": "rename", "cluster_id": story}, 422),
        ({"kind": "move"}, 422),
        ({"kind": "move", "article_id": courier["id"], "colour": "red"}, 422),
        ({"kind": "move", "article_id": 0}, 422),
        ({"kind": "move", "article_id": courier["id"], "editor": "a\x00b"}, 422),
        ({"kind": "move", "article_id": courier["id"], "note": "x" * 4001}, 422),
        ({"kind": "move", "article_id": "seven"}, 422),
    ]


def test_bad_corrections_are_refused_with_a_clear_error_and_change_nothing(client):
    gazette, courier, radio = bridge_story(client)
    ferry = post(client, ferry_article(published_at=T0.isoformat()))
    other = post(client, {**ferry_article(published_at=T0.isoformat()), "url": "https://harbour.example.net/ferry-2"})
    merged_away = post(client, article(published_at=T0.isoformat()))["cluster_id"]
    correct(client, {"kind": "merge", "cluster_id": merged_away, "into_cluster_id": other["cluster_id"]})
    corrections, feed = client.get("/v1/corrections").json(), changes(client)
    stories = {a["id"]: story_of(client, a["id"]) for a in (gazette, courier, radio, ferry)}
    for body, status in _bad_requests(gazette, courier, radio, ferry, merged_away):
        response = client.post("/v1/corrections", json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["message"], body
    assert client.get("/v1/corrections").json() == corrections
    assert changes(client) == feed
    assert {a: story_of(client, a) for a in stories} == stories


def test_a_refusal_names_the_story_that_answers_for_a_merged_away_id(client):
    ferry = post(client, ferry_article(published_at=T0.isoformat()))
    visit = post(client, article(published_at=T0.isoformat()))
    correct(client, {"kind": "merge", "cluster_id": visit["cluster_id"], "into_cluster_id": ferry["cluster_id"]})
    response = client.post(
        "/v1/corrections", json={"kind": "move", "article_id": 1, "into_cluster_id": visit["cluster_id"]}
    )
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        f"story {visit['cluster_id']} was merged into story {ferry['cluster_id']}: "
        f"move into story {ferry['cluster_id']} instead"
    )


def test_corrections_need_the_write_key(database_url):
    settings = Settings(database_url=database_url, api_key="s3cret")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/corrections", json={"kind": "move", "article_id": 1})
        assert response.status_code == 401


@pytest.mark.parametrize("query", ["after=-1", "limit=0", "limit=1001", "after=x"])
def test_bad_paging_of_corrections_is_422(client, query):
    assert client.get(f"/v1/corrections?{query}").status_code == 422


def test_an_unknown_correction_is_404(client):
    assert client.get("/v1/corrections/5").status_code == 404


# -- corrections are labels --------------------------------------------------------------------------------


def test_corrections_export_as_labelled_articles_that_evaluate_reads(settings, monkeypatch, tmp_path):
    monkeypatch.setenv("STORIES_DATABASE_URL", settings.database_url)
    with TestClient(create_app(settings)) as client:
        gazette, courier, radio = bridge_story(client)
        post(client, ferry_article(published_at=T0.isoformat()))  # no correction touches it
        split = correct(client, {"kind": "split", "cluster_id": gazette["cluster_id"], "article_ids": [courier["id"]]})
    out = tmp_path / "corrections.jsonl"
    result = CliRunner().invoke(cli, ["export", "--corrections", "--output", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    labels = {int(row["id"]): row["label"] for row in rows}
    assert labels == {
        gazette["id"]: f"story-{gazette['cluster_id']}",
        radio["id"]: f"story-{gazette['cluster_id']}",
        courier["id"]: f"story-{split['into_cluster_id']}",
    }
    assert {row["text"] for row in rows} == {BRIDGE_GAZETTE[1], BRIDGE_COURIER[1], BRIDGE_RADIO[1]}
    assert set(rows[0]) == {"id", "title", "text", "source", "published_at", "url", "label", "lang"}
    scored = CliRunner().invoke(cli, ["evaluate", str(out)])
    assert scored.exit_code == 0, scored.output
    assert "bcubed" in scored.output.lower()


# -- the constraints themselves --------------------------------------------------------------------------------


def test_a_story_kept_apart_from_the_joined_one_stays_out_of_the_merge():
    editorial = Editorial(apart={frozenset((1, 2))})
    sizes, held = {1: 1, 2: 9, 3: 2}, {1: [10], 2: [20], 3: [30]}
    assert editorial.merge_group(1, [2, 3], sizes.get, held.get) == (3, [1])


def test_of_two_stories_holding_placed_articles_only_the_first_takes_part():
    editorial = Editorial(placed={10, 20})
    sizes, held = {1: 1, 2: 9, 3: 5}, {1: [10], 2: [20], 3: [30]}
    assert editorial.merge_group(1, [2, 3], sizes.get, held.get) == (1, [3])


def test_a_pair_kept_apart_follows_a_merge_of_either_story():
    editorial = Editorial(apart={frozenset((1, 2))})
    editorial.merged(5, 2)
    assert editorial.kept_apart(1, 5) and not editorial.kept_apart(1, 2)
    editorial.merged(1, 5)  # only an editor's merge joins them
    assert editorial.apart == set()


def test_constraints_rebuilt_from_stored_corrections_follow_merges_since():
    stored = [("split", 1, 2, [7]), ("move", 3, 4, [8, 9]), ("merge", 4, 1, [])]
    editorial = Editorial.from_corrections(stored, {4: 1, 2: 6})
    assert editorial.placed == {7, 8, 9}
    assert editorial.apart == {frozenset((1, 6)), frozenset((3, 1))}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_on_the_corrections_are_405_naming_get_and_post(client, method):
    response = client.request(method, "/v1/corrections")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
