"""The web page: today's stories at ``/`` and one story at ``/stories/{id}``, through the
app's lifespan on a fresh database (SQLite and PostgreSQL), with articles written here."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.api.factory import create_app
from app.api.web import BadDay, parse_day
from app.config import Settings
from tests.synthetic_news import make_stories, report

# The stream's latest day, 18 June 2024 (to 12:00): flood (4 articles from 4 outlets, two
# of them syndicated copies), strike (2), election (1), and museum, which ran the day
# before with 4 articles and got one more copy on the 18th: the largest story of the day,
# but the slowest growing. Forty days earlier, 9 May: rescue (1 article).
DAY = datetime(2024, 6, 18, 6, tzinfo=UTC)
FLOOD, STRIKE, ELECTION, RESCUE, MUSEUM = make_stories(5, seed=3, start=DAY, spacing=timedelta(hours=3))
RESCUE = replace(RESCUE, published_at=DAY - timedelta(days=40))
MUSEUM = replace(MUSEUM, published_at=DAY - timedelta(days=1))


def _post(client: TestClient, body: dict) -> dict:
    response = client.post("/v1/articles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def seeded(client: TestClient) -> dict[str, list[dict]]:
    """Post the five stories; returns each story's articles (API results) by name."""
    posted = {
        "rescue": [_post(client, report(RESCUE, "northwire.example"))],
        "museum": [
            _post(client, report(MUSEUM, "harbourpost.example", page=False)),
            _post(client, report(MUSEUM, "valleyecho.example", hours_later=1, page=False)),
            _post(client, report(MUSEUM, "northwire.example", rewrite=True, hours_later=2)),
            _post(client, report(MUSEUM, "citybeat.example", rewrite=True, hours_later=3)),
        ],
        "flood": [
            _post(client, report(FLOOD, "harbourpost.example", page=False)),
            _post(client, report(FLOOD, "valleyecho.example", hours_later=1, page=False)),  # the wire text again
            _post(client, report(FLOOD, "northwire.example", rewrite=True, hours_later=2)),
            _post(client, report(FLOOD, "citybeat.example", rewrite=True, hours_later=3, page=False)),  # its copy
        ],
        "strike": [
            _post(client, report(STRIKE, "plainsreporter.example", page=False)),
            _post(client, report(STRIKE, "citybeat.example", rewrite=True, hours_later=1)),
        ],
        "election": [_post(client, report(ELECTION, "northwire.example", page=False))],
    }
    # A day later the wire report again, from an outlet that already had it.
    posted["museum"].append(_post(client, report(MUSEUM, "harbourpost.example", hours_later=28, page=False, copy=1)))
    for name, results in posted.items():
        assert len({r["cluster_id"] for r in results}) == 1, f"{name} was split: {results}"
    assert len({results[0]["cluster_id"] for results in posted.values()}) == 5, posted
    return posted


def _story_id(seeded: dict[str, dict], name: str) -> int:
    return seeded[name][0]["cluster_id"]


def _section(page: str, name: str) -> str:
    """The HTML of the ``largest`` or ``trending`` section of the home page."""
    found = re.search(rf'<section class="{name}".*?</section>', page, re.S)
    assert found is not None, f"no {name} section in:\n{page}"
    return found.group(0)


def _card_ids(section: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="card[^"]*" data-story-id="(\d+)"', section)]


def _card(page: str, story_id: int) -> str:
    found = re.search(rf'<article class="card[^"]*" data-story-id="{story_id}">.*?</article>', page, re.S)
    assert found is not None, f"no card of story {story_id}"
    return found.group(0)


def _html_page(response) -> str:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    return response.text


# -- the home page ---------------------------------------------------------------------


def test_home_lists_the_latest_days_stories_largest_first(client, seeded):
    response = client.get("/")
    assert response.status_code == 200
    largest = _section(_html_page(response), "largest")
    assert _card_ids(largest) == [_story_id(seeded, n) for n in ("museum", "flood", "strike", "election")]
    assert _story_id(seeded, "rescue") not in _card_ids(largest)  # forty days older than the stream's latest day


def test_home_card_shows_headline_lead_outlets_and_counts(client, seeded):
    flood = client.get(f"/v1/clusters/{_story_id(seeded, 'flood')}").json()
    card = _card(client.get("/").text, flood["id"])
    assert escape(flood["title"]) in card
    assert escape(flood["summary"]) in card
    assert "<strong>4</strong> articles" in card
    assert "4 outlets" in card
    assert [s["name"] for s in flood["sources"]] == re.findall(r'<span class="outlet-name">([^<]*)</span>', card)
    assert f'href="/stories/{flood["id"]}"' in card
    assert "18 Jun 2024, 06:00–09:00 UTC" in card  # first and last published


def test_home_card_counts_articles_per_outlet_and_spans_days(client, seeded):
    card = _card(client.get("/").text, _story_id(seeded, "museum"))
    assert "<strong>5</strong> articles" in card
    assert re.search(r'harbourpost\.example</span> <span class="outlet-count">×2</span>', card)
    assert "17 Jun 2024, 06:00 UTC – 18 Jun 2024, 10:00 UTC" in card


def test_home_trending_section_ranks_the_days_stories_by_growth(client, seeded):
    # Growth in the last 24 hours, new outlets counting twice: flood 4 + 2x4, strike 2 + 2x2,
    # election 1 + 2, museum 1 (its outlet had the story already).
    trending = _card_ids(_section(client.get("/").text, "trending"))
    assert trending == [_story_id(seeded, n) for n in ("flood", "strike", "election", "museum")]


def test_home_links_to_the_previous_day_with_stories(client, seeded):
    page = client.get("/").text
    assert "Today's stories" in page
    assert 'href="/?day=2024-06-17"' in page  # museum began the day before
    assert 'rel="next"' not in page


def test_day_parameter_shows_the_stories_active_that_utc_day(client, seeded):
    response = client.get("/", params={"day": "2024-05-09"})
    assert response.status_code == 200
    page = _html_page(response)
    assert _card_ids(_section(page, "largest")) == [_story_id(seeded, "rescue")]
    assert _card_ids(_section(page, "trending")) == []  # nothing of that day grows now
    assert "Thursday 9 May 2024" in page
    assert 'href="/?day=2024-06-17"' in page  # the next day with stories, skipping the empty ones
    assert 'rel="prev"' not in page  # nothing before it


def test_day_shows_stories_that_ran_through_it(client, seeded):
    page = client.get("/", params={"day": "2024-06-17"}).text
    assert _card_ids(_section(page, "largest")) == [_story_id(seeded, "museum")]
    assert 'href="/?day=2024-05-09"' in page and 'href="/?day=2024-06-18"' in page


def test_day_of_the_latest_stories_links_back_and_has_no_next_day(client, seeded):
    page = client.get("/", params={"day": "2024-06-18"}).text
    assert _card_ids(_section(page, "largest")) == [
        _story_id(seeded, n) for n in ("museum", "flood", "strike", "election")
    ]
    assert 'href="/?day=2024-06-17"' in page
    assert 'rel="next"' not in page


def test_day_without_stories_shows_an_empty_state(client, seeded):
    response = client.get("/", params={"day": "2024-06-01"})
    assert response.status_code == 200
    page = _html_page(response)
    assert "No story was active on this day" in page
    assert 'href="/?day=2024-05-09"' in page and 'href="/?day=2024-06-17"' in page


@pytest.mark.parametrize(
    "day",
    [
        "yesterday",
        "2024-13-01",
        "2024-02-30",
        "2024-6-1",
        "20240618",
        "2024-06-18T00:00",
        "1989-12-31",
        "9999-12-31",
        "",
        "2024-06-18\x00",
        "٢٠٢٤-٠٦-١٨",
        pytest.param("2" * 10_000, id="10000-digits"),
    ],
)
def test_bad_day_is_a_400_page_not_an_error(client, day):
    response = client.get("/", params={"day": day})
    assert response.status_code == 400
    assert "day" in _html_page(response)


def test_empty_database_shows_no_stories_yet(client):
    response = client.get("/")
    assert response.status_code == 200
    page = _html_page(response)
    assert "No stories yet" in page
    assert "data-story-id" not in page
    assert client.get("/", params={"day": "2024-06-18"}).status_code == 200


# -- the story page ---------------------------------------------------------------------


def test_story_page_shows_the_summary_and_every_article(client, seeded):
    story_id = _story_id(seeded, "flood")
    flood = client.get(f"/v1/clusters/{story_id}").json()
    response = client.get(f"/stories/{story_id}")
    assert response.status_code == 200
    page = _html_page(response)
    assert f'<h1 class="headline">{escape(flood["title"])}</h1>' in page
    assert escape(flood["summary"]) in page
    for keyword in flood["keywords"]:
        assert f"<li>{escape(keyword)}</li>" in page
    assert '<dd class="count">4</dd>' in page
    for article in flood["articles"]:
        assert f'<a href="{escape(article["url"])}"' in page
        assert f'<span class="source">{article["source"]}</span>' in page
    assert re.findall(r'data-article-id="(\d+)"', page) == [str(a["id"]) for a in flood["articles"]]


def test_story_page_groups_each_syndicated_copy_under_its_original(client, seeded):
    original, copy, writeup, writeup_copy = seeded["flood"]
    assert copy["duplicate_of"] == original["id"] and writeup_copy["duplicate_of"] == writeup["id"]
    page = client.get(f"/stories/{original['cluster_id']}").text
    groups = re.split(r'<li class="group', page)[1:]
    members = [re.findall(r'data-article-id="(\d+)"', group) for group in groups]
    assert members == [[str(original["id"]), str(copy["id"])], [str(writeup["id"]), str(writeup_copy["id"])]]
    copies = re.search(rf'<ul class="copies" aria-label="copies of article {original["id"]}">(.*?)</ul>', page, re.S)
    assert copies is not None and f'data-article-id="{copy["id"]}"' in copies.group(1)
    assert "syndicated copy" in copies.group(1)


def test_story_without_copies_lists_its_articles_without_groups(client, seeded):
    page = client.get(f"/stories/{_story_id(seeded, 'strike')}").text
    assert page.count('data-article-id="') == 2
    assert 'class="copies"' not in page


def test_merged_story_id_redirects_to_the_survivor_and_says_so(client, seeded):
    # A second write-up of the election kept apart by a join threshold nothing reaches,
    # then a third write-up, merging every story it joins, binds both: one absorbs the
    # other. (When the service merges is test_assign's subject; this is the page's.)
    service = client.app.state.service
    usual = service.index.params
    service.index.params = replace(usual, threshold=1.0, merge_threshold=1.0)
    apart = _post(client, report(ELECTION, "citybeat.example", rewrite=True, hours_later=1))
    assert apart["cluster_id"] != _story_id(seeded, "election")
    service.index.params = replace(usual, merge_threshold=usual.threshold)
    wire, analysis = (
        report(ELECTION, "northwire.example", page=False),
        report(ELECTION, "citybeat.example", rewrite=True),
    )
    both = _post(
        client,
        {  # both texts, so a copy of neither
            "url": "https://plainsreporter.example/news/election-roundup",
            "source": "plainsreporter.example",
            "title": wire["title"],
            "text": f"{analysis['text']}\n{wire['text']}",
            "published_at": analysis["published_at"],
        },
    )
    service.index.params = usual
    survivor = both["cluster_id"]
    absorbed = ({_story_id(seeded, "election"), apart["cluster_id"]} - {survivor}).pop()
    assert client.get(f"/v1/clusters/{absorbed}").json()["merged_into"] == survivor  # the merge happened

    response = client.get(f"/stories/{absorbed}", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/stories/{survivor}?merged_from={absorbed}"
    page = client.get(f"/stories/{absorbed}").text
    assert f'<article class="story" data-story-id="{survivor}">' in page
    assert f"Story {absorbed} was merged into this story" in page
    assert page.count('data-article-id="') == 3


def test_merged_from_is_only_claimed_when_true(client, seeded):
    flood, strike = _story_id(seeded, "flood"), _story_id(seeded, "strike")
    for claim in (strike, 999999, "x", "99999999999999999999"):
        page = client.get(f"/stories/{flood}", params={"merged_from": claim}).text
        assert "was merged into this story" not in page


@pytest.mark.parametrize("story_id", ["999999", "0", "-1", "abc", "1.5", "99999999999999999999", "%3Cscript%3E"])
def test_unknown_story_is_a_404_page(client, seeded, story_id):
    response = client.get(f"/stories/{story_id}")
    assert response.status_code == 404
    page = _html_page(response)
    assert "Story not found" in page
    assert "<script>" not in page


def test_story_emptied_by_takedowns_is_a_404_page(client, seeded):
    (only,) = seeded["election"]
    assert client.delete(f"/v1/articles/{only['id']}").status_code == 200
    response = client.get(f"/stories/{only['cluster_id']}")
    assert response.status_code == 404
    assert "Story not found" in _html_page(response)
    assert only["cluster_id"] not in _card_ids(client.get("/").text)


# -- untrusted text ------------------------------------------------------------------------


def test_titles_are_escaped_on_both_pages(client):
    hostile = report(FLOOD, "harbourpost.example", page=False)
    hostile["title"] = '<script>alert("x")</script> River <b>floods</b> & "homes"'
    hostile["url"] = "https://harbourpost.example/news/a?b=<i>&c=1"
    posted = _post(client, hostile)
    for page in (client.get("/").text, client.get(f"/stories/{posted['cluster_id']}").text):
        assert "<script>alert" not in page and "<b>floods" not in page
        assert (
            "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; River &lt;b&gt;floods&lt;/b&gt; &amp; &#34;homes&#34;"
            in page
        )


# -- plumbing --------------------------------------------------------------------------------


def test_pages_need_the_read_key_when_one_is_set(database_url):
    settings = Settings(database_url=database_url, api_key=None, read_api_key="reader-key")
    with TestClient(create_app(settings)) as client:
        for path in ("/", "/stories/1", "/?day=2024-06-18"):
            assert client.get(path).status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer reader-key"}).status_code == 200
        assert client.get("/static/style.css").status_code == 200  # style sheets are not secret


def test_pages_are_not_part_of_the_api_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/stories") for p in paths)


def test_style_sheet_is_served(client):
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_parse_day_names_the_expected_form():
    assert parse_day("2024-02-29").isoformat() == "2024-02-29"
    with pytest.raises(BadDay, match="YYYY-MM-DD"):
        parse_day("18/06/2024")
    with pytest.raises(BadDay, match="not a date of the calendar"):
        parse_day("2023-02-29")
