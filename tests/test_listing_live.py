"""Paging through every story of giveme5w1h (read in place) while the rest of it is
still being posted to a real server: each story comes exactly once. Skipped when the
evaluation data is absent."""

from __future__ import annotations

import threading

import httpx
import pytest

from evaluation.evaluate import labelled_to_article, read_jsonl, stream_order
from tests.conftest import SHARED_DATA
from tests.servers import Server, fresh_database

GIVEME = SHARED_DATA / "giveme5w1h" / "articles.jsonl"
pytestmark = pytest.mark.skipif(not GIVEME.exists(), reason=f"{GIVEME} absent: evaluation data not on this machine")


def bodies() -> list[dict]:
    rows = stream_order(read_jsonl(GIVEME))
    return [
        labelled_to_article(row, external_id=f"giveme-{i}").model_dump(mode="json", exclude_none=True)
        for i, row in enumerate(rows)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("sort", ["latest", "largest"])
def test_paging_through_all_stories_while_articles_arrive_yields_each_once(tmp_path, sort):
    articles = bodies()
    first, rest = articles[: len(articles) // 2], articles[len(articles) // 2 :]
    with fresh_database("sqlite", tmp_path) as url, Server(url, tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for start in range(0, len(first), 50):
                client.post("/v1/articles/batch", json={"articles": first[start : start + 50]}).raise_for_status()
            before = {c["id"] for c in _all(client, sort)}
            posted = threading.Event()

            def post_the_rest() -> None:
                with httpx.Client(base_url=server.url, timeout=600) as writer:
                    for body in rest:
                        writer.post("/v1/articles", json=body).raise_for_status()
                posted.set()

            writer = threading.Thread(target=post_the_rest)
            writer.start()
            seen, cursor, pages = [], None, 0
            while True:
                params = {"sort": sort, "limit": 3, **({"cursor": cursor} if cursor else {})}
                body = client.get("/v1/clusters", params=params).json()
                seen += [c["id"] for c in body["clusters"]]
                pages += 1
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            grew_meanwhile = not posted.is_set()
            writer.join(timeout=600)
            assert grew_meanwhile, "the posting finished before the paging: nothing was tested"
            assert len(seen) == len(set(seen)), "a story came twice"
            merged = {c for c in before - set(seen) if client.get(f"/v1/clusters/{c}").json().get("merged_into")}
            assert before - merged <= set(seen), "a story that existed at the first page was skipped"
            assert pages > 10


def _all(client: httpx.Client, sort: str) -> list[dict]:
    found, cursor = [], None
    while True:
        body = client.get(
            "/v1/clusters", params={"sort": sort, "limit": 200, **({"cursor": cursor} if cursor else {})}
        ).json()
        found += body["clusters"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found
