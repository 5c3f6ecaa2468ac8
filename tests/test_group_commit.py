"""Concurrent writes share one transaction (group commit); each is answered after that commit."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from app.api.factory import create_app
from tests.synthetic_news import make_stories, report


def _transactions(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('stories_ingest_stage_seconds_count{stage="transaction"}'):
            return float(line.split()[-1])
    return 0.0


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def _post_behind_a_held_write(client: TestClient, articles: list[dict]) -> dict[int, object]:
    """POST each article from a thread of its own while the write step is held, release
    it once all are queued, and return the answers by index."""
    service = client.app.state.service
    answers: dict[int, object] = {}
    service.lock.acquire()  # a write in progress: every POST below queues behind it
    try:
        threads = [
            threading.Thread(target=lambda i=i, a=a: answers.__setitem__(i, client.post("/v1/articles", json=a)))
            for i, a in enumerate(articles)
        ]
        for thread in threads:
            thread.start()
        _wait_for(lambda: len(service._waiting) == len(articles))
        assert not answers, "no POST is answered before its transaction commits"
    finally:
        service.lock.release()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_single_posts_waiting_for_the_write_step_are_written_in_one_transaction(settings):
    articles = [report(story, "northwire.example") for story in make_stories(8, seed=31)]
    with TestClient(create_app(settings)) as client:
        before = _transactions(client)
        answers = _post_behind_a_held_write(client, articles)
        assert sorted(r.status_code for r in answers.values()) == [201] * len(articles)
        assert _transactions(client) - before == 1
        ids = [answers[i].json()["id"] for i in range(len(articles))]
        assert len(set(ids)) == len(articles)
        for i, article_id in enumerate(ids):
            stored = client.get(f"/v1/articles/{article_id}").json()
            assert stored["url"] == articles[i]["url"]


def test_a_failed_group_fails_every_request_in_it_and_stores_none_of_them(settings, monkeypatch):
    articles = [report(story, "northwire.example") for story in make_stories(3, seed=32)]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        service = client.app.state.service

        def broken(_session):
            raise RuntimeError("the database went away mid-transaction")

        monkeypatch.setattr(service, "_store_window", broken)
        answers = _post_behind_a_held_write(client, articles)
        assert [answers[i].status_code for i in range(len(articles))] == [500] * len(articles)
        monkeypatch.undo()
        assert client.get("/v1/clusters").json()["clusters"] == []
        for article in articles:  # a retry stores each, once
            assert client.post("/v1/articles", json=article).status_code == 201
