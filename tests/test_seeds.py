"""The raw crawled seed pages (../shared/data/seeds), read in place; skipped when absent."""

import json

import pytest

from evaluation.evaluate import evaluate, labelled_to_article, read_jsonl, stream_order
from tests.conftest import SHARED_DATA

SEEDS = SHARED_DATA / "seeds" / "articles.jsonl"
pytestmark = pytest.mark.skipif(not SEEDS.exists(), reason=f"{SEEDS} absent: evaluation data not on this machine")


def _gold_groups(rows, cluster_of):
    groups = {}
    for row in rows:
        groups.setdefault(cluster_of[row["id"]], set()).add(row["id"])
    return sorted(sorted(g) for g in groups.values())


def test_seeds_evaluate_to_the_three_gold_stories():
    report = evaluate(read_jsonl(SEEDS))
    assert report.bcubed.f1 == 1.0
    assert report.clusters == 3


def test_seeds_posted_over_http_form_the_gold_stories_and_reposting_changes_nothing(client):
    rows = stream_order(read_jsonl(SEEDS))
    cluster_of = {}
    for row in rows:
        body = labelled_to_article(row).model_dump(mode="json", exclude_none=True)
        response = client.post("/v1/articles", json=body)
        assert response.status_code == 201
        cluster_of[row["id"]] = response.json()["cluster_id"]
    gold = {}
    for row in rows:
        gold.setdefault(row["label"], set()).add(row["id"])
    assert _gold_groups(rows, cluster_of) == sorted(sorted(g) for g in gold.values())

    before = client.get("/v1/clusters").json()
    for row in rows:
        body = labelled_to_article(row).model_dump(mode="json", exclude_none=True)
        again = client.post("/v1/articles", json=body)
        assert again.status_code == 200
        assert again.json()["status"] == "existing"
        assert again.json()["cluster_id"] == cluster_of[row["id"]]
    assert client.get("/v1/clusters").json() == before


def test_seed_story_summary_has_three_outlets_and_no_menu_words(client):
    for row in stream_order(read_jsonl(SEEDS)):
        client.post("/v1/articles", json=labelled_to_article(row).model_dump(mode="json", exclude_none=True))
    clusters = client.get("/v1/clusters", params={"sort": "largest"}).json()["clusters"]
    assert [c["article_count"] for c in clusters] == [3, 1, 1]
    top = clusters[0]
    assert top["source_count"] == 3
    titles = {row["title"] for row in read_jsonl(SEEDS) if row["title"]}
    assert top["title"] in titles
    menu_words = {"menu", "facebook", "twitter", "instagram", "trending", "whatsapp", "advert", "privacy", "home"}
    assert not menu_words & set(top["keywords"]), json.dumps(top["keywords"])
