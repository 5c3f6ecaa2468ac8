"""GET /v1/clusters paging from a snapshot, and sort=trending."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.synthetic_news import FURNITURE, make_stories, report

OUTLETS = sorted(FURNITURE)


def post(client, body: dict) -> dict:
    response = client.post("/v1/articles", json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def page_all(client, sort: str, limit: int, between=None, **params) -> list[int]:
    """Every story id, page by page; ``between(i)`` runs after page i."""
    seen, cursor, i = [], None, 0
    while True:
        query = {"sort": sort, "limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/clusters", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [c["id"] for c in body["clusters"]]
        cursor = body["next_cursor"]
        if between:
            between(i)
        i += 1
        if cursor is None:
            return seen


@pytest.fixture
def stories():
    # Days apart, so every story has its own place in `latest` order.
    return make_stories(12, seed=3, spacing=timedelta(days=1))


@pytest.mark.parametrize("sort", ["latest", "largest"])
def test_paging_while_stories_grow_and_open_yields_each_story_once(client, stories, sort):
    clusters = {}
    for n, story in enumerate(stories[:9]):
        for k in range(1 + n % 3):
            clusters[story.key] = post(client, report(story, OUTLETS[k], rewrite=k > 0))["cluster_id"]
    before = set(clusters.values())
    extra = iter(range(100))

    def grow(page: int) -> None:
        # The oldest and the smallest stories gain articles (they move to the front of both
        # orders), and new stories open, after every page.
        for story in stories[:3]:
            post(
                client, report(story, OUTLETS[3 + next(extra) % 2], rewrite=True, copy=next(extra), hours_later=24 * 20)
            )
        post(client, report(stories[9 + page % 3], OUTLETS[0], copy=next(extra)))

    seen = page_all(client, sort, limit=2, between=grow)
    assert len(seen) == len(set(seen)), f"a story came twice: {seen}"
    assert before <= set(seen), f"stories skipped: {before - set(seen)}"


def test_a_new_paging_sees_the_new_order(client, stories):
    first = post(client, report(stories[0], OUTLETS[0]))
    second = post(client, report(stories[1], OUTLETS[0]))
    assert page_all(client, "latest", limit=1) == [second["cluster_id"], first["cluster_id"]]
    post(client, report(stories[0], OUTLETS[1], rewrite=True, hours_later=24 * 5))
    assert page_all(client, "latest", limit=1) == [first["cluster_id"], second["cluster_id"]]


def test_trending_ranks_growth_in_the_last_day_with_new_outlets_counting_double(client, stories):
    # Story 0: two articles from one outlet in the last day. Story 1: two outlets in the last day.
    # Story 2: large but quiet (nothing in the last day). The newest article is story 1's.
    quiet = [post(client, report(stories[2], OUTLETS[k], rewrite=k > 0, hours_later=-72)) for k in range(3)]
    one_outlet = [post(client, report(stories[0], OUTLETS[0], copy=c, hours_later=24 + c)) for c in (1, 2)]
    two_outlets = [post(client, report(stories[1], OUTLETS[k], rewrite=k > 0, hours_later=2)) for k in range(2)]
    listed = client.get("/v1/clusters", params={"sort": "trending"}).json()["clusters"]
    ids = [c["id"] for c in listed]
    # Scores: story 1 = 2 articles + 2 x 2 new outlets = 6; story 0 = 2 + 2 x 1 = 4; story 2 none.
    assert ids == [two_outlets[0]["cluster_id"], one_outlet[0]["cluster_id"]]
    assert quiet[0]["cluster_id"] not in ids


def test_trending_pages_with_a_cursor(client, stories):
    for n, story in enumerate(stories[:5]):
        for k in range(1 + n % 3):
            post(client, report(story, OUTLETS[k], rewrite=k > 0, hours_later=(4 - n) * -1))
    everything = [
        c["id"] for c in client.get("/v1/clusters", params={"sort": "trending", "limit": 200}).json()["clusters"]
    ]
    assert page_all(client, "trending", limit=2) == everything


def test_a_cursor_of_another_sort_is_422(client, stories):
    for story in stories[:3]:
        post(client, report(story, OUTLETS[0]))
    cursor = client.get("/v1/clusters", params={"sort": "largest", "limit": 1}).json()["next_cursor"]
    response = client.get("/v1/clusters", params={"sort": "trending", "cursor": cursor})
    assert response.status_code == 422 and response.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize("sort", ["latest", "largest", "trending"])
def test_every_sort_filters_by_source_and_text_also_while_stories_grow(client, stories, sort):
    posted = [post(client, report(story, OUTLETS[n % 2], hours_later=-n)) for n, story in enumerate(stories[:4])]
    first = client.get("/v1/clusters", params={"sort": sort, "limit": 1, "source": OUTLETS[0]})
    assert first.status_code == 200, first.text
    post(client, report(stories[0], OUTLETS[2], rewrite=True, hours_later=1))  # a story grows after the snapshot
    cursor = first.json()["next_cursor"]
    rest = (
        []
        if cursor is None
        else client.get(
            "/v1/clusters", params={"sort": sort, "limit": 10, "source": OUTLETS[0], "q": "a", "cursor": cursor}
        )
    )
    if cursor is not None:
        assert rest.status_code == 200, rest.text
    wanted = {p["cluster_id"] for n, p in enumerate(posted) if n % 2 == 0}
    assert {c["id"] for c in first.json()["clusters"]} <= wanted


def test_trending_with_every_filter_is_not_an_error(client, stories):
    post(client, report(stories[0], OUTLETS[0]))
    response = client.get(
        "/v1/clusters",
        params={
            "sort": "trending",
            "until": "0208-06-15T03:20:12Z",
            "q": "\u00c2",
            "source": OUTLETS[0],
            "min_articles": 93939,
            "since": "0058-02-05T07:51:25Z",
            "limit": 118,
        },
    )
    assert response.status_code == 200 and response.json()["clusters"] == []
