"""The web page in a real headless browser: Debian's chromium driven by Playwright against
a real ``stories serve`` on a SQLite file, seeded over HTTP with articles written here.

The browser is ``/usr/bin/chromium`` (``.ci/install-browser.sh`` installs it); Playwright
never downloads one. Without it the test is skipped, unless ``CI`` is set: there it fails.
Screenshots of both pages land in the test's tmp path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.servers import Server
from tests.synthetic_news import make_stories, report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000

DAY = datetime(2024, 6, 18, 6, tzinfo=UTC)
FLOOD, STRIKE, ELECTION, RESCUE, MUSEUM = make_stories(5, seed=5, start=DAY, spacing=timedelta(hours=3))
MUSEUM = replace(MUSEUM, published_at=DAY - timedelta(days=3))  # an earlier day of the stream


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: run .ci/install-browser.sh (as root) or apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with Server(f"sqlite:///{tmp_path / 'stories.db'}", tmp_path / "server.log") as running:
        yield running


def _seed(base_url: str) -> dict[str, list[dict]]:
    """Post five stories, four on the latest day; flood has four outlets and a syndicated
    copy of its wire report."""
    bodies = {
        "flood": [
            report(FLOOD, "harbourpost.example", page=False),
            report(FLOOD, "valleyecho.example", hours_later=1, page=False),  # the wire text again: a copy
            report(FLOOD, "northwire.example", rewrite=True, hours_later=2),
            report(FLOOD, "citybeat.example", rewrite=True, hours_later=3),  # on a page with the site's menus
        ],
        "strike": [
            report(STRIKE, "citybeat.example"),
            report(STRIKE, "plainsreporter.example", rewrite=True, hours_later=1, page=False),
        ],
        "election": [report(ELECTION, "northwire.example", page=False)],
        "rescue": [report(RESCUE, "valleyecho.example", hours_later=2)],
        "museum": [report(MUSEUM, "harbourpost.example", page=False)],
    }
    posted: dict[str, list[dict]] = {}
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        for name, articles in bodies.items():
            posted[name] = []
            for body in articles:
                response = client.post("/v1/articles", json=body)
                assert response.status_code == 201, response.text
                posted[name].append(response.json())
    clusters = {name: {r["cluster_id"] for r in results} for name, results in posted.items()}
    assert all(len(ids) == 1 for ids in clusters.values()), clusters
    assert len(set.union(*clusters.values())) == 5, clusters
    return posted


def _open(browser: Browser) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    return page


def test_home_page_shows_the_stories_and_opens_a_story(browser, server, tmp_path):
    posted = _seed(server.url)
    flood_id = posted["flood"][0]["cluster_id"]
    original, copy = posted["flood"][0]["id"], posted["flood"][1]["id"]
    assert posted["flood"][1]["duplicate_of"] == original
    flood = httpx.get(f"{server.url}/v1/clusters/{flood_id}").json()

    page = _open(browser)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        response = page.goto(f"{server.url}/")
        assert response is not None and response.status == 200
        expect(page).to_have_title(re.compile("Today's stories"))
        expect(page.locator("h1")).to_have_text("Today's stories")

        largest = page.locator("section.largest article.card")
        expect(largest).to_have_count(4)
        expected_order = [posted[name][0]["cluster_id"] for name in ("flood", "strike")]
        assert [int(largest.nth(i).get_attribute("data-story-id")) for i in range(2)] == expected_order
        first = largest.first
        expect(first.locator(".headline")).to_have_text(flood["title"])
        expect(first.locator(".lead")).to_have_text(flood["summary"])
        expect(first.locator(".count")).to_have_text("4 articles")
        expect(first.locator(".outlet-name")).to_have_text([s["name"] for s in flood["sources"]])
        expect(page.locator("section.trending article.card").first).to_be_visible()
        expect(page.locator("a[rel=prev]")).to_have_attribute("href", "/?day=2024-06-15")
        expect(page.locator("a[rel=prev]")).to_have_text("← Saturday 15 June 2024")
        # The style sheet loaded: the masthead is dark, the cards sit in two columns.
        assert page.locator(".masthead").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(29, 35, 41)"
        largest_box = page.locator("section.largest").bounding_box()
        trending_box = page.locator("section.trending").bounding_box()
        assert largest_box and trending_box and trending_box["x"] > largest_box["x"] + largest_box["width"]
        page.screenshot(path=str(tmp_path / "web-home.png"), full_page=True)

        first.locator(".headline a").click()
        page.wait_for_url(f"{server.url}/stories/{flood_id}")
        expect(page.locator("h1.headline")).to_have_text(flood["title"])
        expect(page.locator(".facts .count")).to_have_text("4")
        # One group per original, each copy under the article it copies, as the API records them.
        originals = [a["id"] for a in flood["articles"] if a["duplicate_of"] is None]
        groups = page.locator("ol.articles > li.group")
        expect(groups).to_have_count(len(originals))
        for i, article_id in enumerate(originals):
            group = groups.nth(i)
            expect(group.locator("> .article")).to_have_attribute("data-article-id", str(article_id))
            copy_ids = [str(a["id"]) for a in flood["articles"] if a["duplicate_of"] == article_id]
            expect(group.locator(".copies .article")).to_have_count(len(copy_ids))
            if copy_ids:
                assert (
                    group.locator(".copies .article").evaluate_all("nodes => nodes.map(n => n.dataset.articleId)")
                    == copy_ids
                )
        wire_copy = page.locator(
            f'ol.articles > li.group:has(> .article[data-article-id="{original}"]) .copies .article'
        )
        expect(wire_copy).to_have_attribute("data-article-id", str(copy))
        expect(wire_copy.locator(".source")).to_have_text("valleyecho.example")
        expect(wire_copy.locator(".badge")).to_have_text("syndicated copy")
        titles = page.locator("ol.articles .article-title a")
        expect(titles).to_have_count(4)
        expect(titles.first).to_have_attribute("href", flood["articles"][0]["url"])
        page.screenshot(path=str(tmp_path / "web-story.png"), full_page=True)
    finally:
        page.close()
    assert errors == []
