"""app.service.workers: articles prepared in worker processes, off the write lock, against a
snapshot of their sources' templates; a dead worker fails only its own articles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.factory import create_app
from app.config import Settings
from app.service.workers import Job, PreparePool, Preparer, WorkerCrashed, prepare_groups, share_out
from app.store import migrate
from app.store.db import make_engine, make_sessionmaker
from app.store.models import Article
from clustering.prepare import Draft
from tests.synthetic_news import make_stories, report

MENU = ["Home", "World", "Business", "Sport", "Weather"]
# A line no single-page rule removes (a sentence of ordinary words): only the source's
# learned template does, once an earlier page carried it.
MOTTO = "Readers in the valley have trusted our reporters with their stories for more than a century now."
FOOTER = ["About the Valley Echo", "Advertise with us"]


def _page(body: str) -> str:
    return "\n".join([*MENU, MOTTO, body, *FOOTER])


def _draft(i: int, source: str = "valleyecho.example") -> Draft:
    story = make_stories(i + 1, seed=11)[i]
    posted = report(story, source, page=False)
    return Draft(posted["title"], _page(posted["text"]), None, source, None, datetime(2026, 3, 1, tzinfo=UTC))


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}"))
    migrate.upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def pool(tmp_path, sessions) -> Iterator[PreparePool]:
    pool = PreparePool(f"sqlite:///{tmp_path / 'stories.db'}", 2).start()
    yield pool
    pool.close()


def test_a_worker_prepares_exactly_what_the_calling_thread_prepares(pool, sessions):
    jobs = [Job(i, _draft(i, source)) for i, source in enumerate(["a.example", "b.example", "a.example"])]
    groups = share_out(jobs, 1)[0]
    here = prepare_groups(sessions, groups)
    there = pool.submit(groups).result(timeout=120)
    assert here.prepared.keys() == there.prepared.keys()
    for i, mine in here.prepared.items():
        theirs = there.prepared[i]
        assert (mine.text, mine.title, mine.template, mine.published_at) == (
            theirs.text,
            theirs.title,
            theirs.template,
            theirs.published_at,
        )
        assert np.array_equal(mine.signature, theirs.signature)
        assert mine.packed.to_bytes() == theirs.packed.to_bytes()
        assert np.array_equal(mine.packed.embedding, theirs.packed.embedding)


def test_a_sources_later_pages_in_one_request_lose_the_lines_its_earlier_pages_carried(sessions):
    jobs = [Job(i, _draft(i)) for i in range(3)]
    batch = prepare_groups(sessions, share_out(jobs, 2)[0])
    first, second, third = (batch.prepared[i] for i in range(3))
    assert MOTTO in first.text  # nothing learned yet: the first page keeps the line
    for later, i in ((second, 1), (third, 2)):
        assert MOTTO not in later.text
        assert batch.from_batch[i] and batch.from_batch[i] <= later.template


def test_one_sources_pages_are_prepared_by_one_worker_in_order():
    jobs = [Job(i, _draft(i, source)) for i, source in enumerate(["a", "b", "a", "c", "a", "b"])]
    shares = share_out(jobs, 2)
    where = {job.draft.source: n for n, share in enumerate(shares) for group in share for job in group}
    for share in shares:
        for group in share:
            assert len({job.draft.source for job in group}) == 1
            assert [job.index for job in group] == sorted(job.index for job in group)
    assert sorted(where) == ["a", "b", "c"]


def _busy_worker(pool: PreparePool, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in pool.workers:
            if worker.busy.is_set():
                return worker
        time.sleep(0.005)
    raise AssertionError("no worker took the task")


def test_a_killed_worker_fails_only_its_own_articles_and_is_started_again(pool):
    doomed = pool.submit([[Job(i, _draft(i % 8)) for i in range(400)]])
    worker = _busy_worker(pool)
    victim = worker.process.pid
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(WorkerCrashed):
        doomed.result(timeout=120)
    # Every later task is prepared, by both workers, one of them started anew.
    results = [pool.submit([[Job(0, _draft(k))]]) for k in range(6)]
    assert all(r.result(timeout=120).prepared[0].has_text for r in results)
    assert victim not in pool.pids and len(pool.pids) == 2


def test_a_task_beside_a_killed_worker_is_unharmed(pool):
    long = [[Job(i, _draft(i % 8)) for i in range(400)]]
    first = pool.submit(long)
    worker = _busy_worker(pool)
    second = pool.submit(long)
    deadline = time.monotonic() + 30
    while not all(w.busy.is_set() for w in pool.workers) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(worker.process.pid, signal.SIGKILL)
    outcomes = []
    for future in (first, second):
        try:
            outcomes.append(len(future.result(timeout=300).prepared))
        except WorkerCrashed:
            outcomes.append("crashed")
    assert sorted(outcomes, key=str) == [400, "crashed"]


def test_an_error_in_one_task_reaches_its_caller_and_the_worker_carries_on(pool):
    bad = Draft(None, None, None, "x.example", None, "not a datetime")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):  # a str where a datetime belongs, raised in the worker
        pool.submit([[Job(0, bad)]]).result(timeout=60)
    assert pool.submit([[Job(0, _draft(0))]]).result(timeout=60).prepared[0].has_text


def test_a_preparer_prepares_while_its_workers_are_still_starting(tmp_path, sessions):
    # A server launches its workers and rebuilds its caches meanwhile: a request that
    # comes first waits for them, and a pool closed before they were ready closes cleanly.
    preparer = Preparer(sessions, f"sqlite:///{tmp_path / 'stories.db'}", 1)
    [batch] = preparer.prepare([Job(0, _draft(0))])
    assert batch.prepared[0].has_text
    preparer.close()
    unready = PreparePool(f"sqlite:///{tmp_path / 'stories.db'}", 1).launch()
    process = unready.workers[0].process
    unready.close()
    assert process is not None and not process.is_alive()


def test_zero_workers_is_refused_for_a_pool():
    with pytest.raises(ValueError, match="at least one worker"):
        PreparePool("sqlite://", 0)


# -- through the service ------------------------------------------------------------------


def _clustering(url: str) -> list[tuple]:
    engine = make_engine(Settings(database_url=url))
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(Article.url, Article.cluster_id, Article.duplicate_of, Article.text).order_by(Article.id)
            ).all()
    finally:
        engine.dispose()
    groups: dict[int, list[str]] = {}
    for url, cluster, _, _ in rows:
        groups.setdefault(cluster, []).append(url)
    return sorted(sorted(g) for g in groups.values()), [(u, d is not None, t) for u, _, d, t in rows]


def _stream() -> list[dict]:
    stories = make_stories(6, seed=5, start=datetime(2026, 1, 5, 8, tzinfo=UTC))
    articles = []
    for n, story in enumerate(stories):
        articles.append(report(story, "valleyecho.example"))
        articles.append(report(story, "harbourpost.example", rewrite=True, hours_later=2))
        articles.append(report(story, "citybeat.example", hours_later=3, copy=n + 1))
    return articles


@pytest.mark.parametrize("workers", [2])
def test_the_service_stores_with_workers_what_it_stores_without(tmp_path, workers):
    outcomes = {}
    for n in (0, workers):
        url = f"sqlite:///{tmp_path / f'workers-{n}.db'}"
        with TestClient(create_app(Settings(database_url=url, workers=n))) as client:
            for start in range(0, 18, 5):
                response = client.post("/v1/articles/batch", json={"articles": _stream()[start : start + 5]})
                assert response.status_code == 200, response.text
        outcomes[n] = _clustering(url)
    assert outcomes[workers] == outcomes[0]


_WRITER_WITH_WORKERS = """
import sys
from fastapi.testclient import TestClient
from app.api.factory import create_app
from app.config import Settings
from clustering import embed
from tests.test_workers import _stream

with TestClient(create_app(Settings(database_url=sys.argv[1], workers=1, api_key=None))) as client:
    assert client.post("/v1/articles/batch", json={"articles": _stream()[:6]}).status_code == 200
    print(embed.encoder.cache_info().currsize, "onnxruntime" in sys.modules)
"""


def test_a_writer_whose_workers_prepare_holds_no_encoder(tmp_path):
    """The worker processes encode; the writer only checked the encoder at start (a
    fresh interpreter: this one's tests have loaded it)."""
    url = f"sqlite:///{tmp_path / 'stories.db'}"
    done = subprocess.run(
        [sys.executable, "-c", _WRITER_WITH_WORKERS, url],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
        env={k: v for k, v in os.environ.items() if not k.startswith("STORIES_")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "False"]


def test_a_page_prepared_before_its_sources_template_changed_is_prepared_again(tmp_path, monkeypatch):
    """Two requests of one new source prepared at the same moment: the one written second
    learns the menu from the first one's page, so it is prepared again in the write step
    and loses its menu exactly as if the two had come one after the other."""
    url = f"sqlite:///{tmp_path / 'stories.db'}"
    stories = make_stories(2, seed=21, start=datetime(2026, 1, 5, 8, tzinfo=UTC))
    pages = [
        {**report(s, "valleyecho.example", page=False), "text": _page(report(s, "x", page=False)["text"])}
        for s in stories
    ]
    with TestClient(create_app(Settings(database_url=url, workers=0))) as client:
        service = client.app.state.service
        gate = threading.Barrier(2)
        original = service.preparer.prepare

        def prepare_together(jobs):
            done = original(jobs)
            gate.wait(timeout=30)  # both requests prepared before either is written
            return done

        monkeypatch.setattr(service.preparer, "prepare", prepare_together)
        answers = []
        threads = [
            threading.Thread(target=lambda p=p: answers.append(client.post("/v1/articles", json=p))) for p in pages
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert [a.status_code for a in answers] == [201, 201]
        texts = [client.get(f"/v1/articles/{a.json()['id']}").json()["text"] for a in answers]
        again = client.get("/metrics").text
    first, second = sorted(texts, key=lambda t: MOTTO in t, reverse=True)
    assert MOTTO in first and MOTTO not in second
    assert "stories_articles_prepared_again_total 1.0" in again


def test_a_server_whose_worker_is_killed_answers_503_for_those_articles_and_carries_on(tmp_path):
    """``stories serve`` with two workers: one is killed; the batch it was given is refused
    with a 503 the client can retry, nothing of it is stored, the retry is stored, and the
    server keeps serving with a new worker."""
    import httpx

    from tests.servers import Server

    stories = make_stories(6, seed=41, start=datetime(2026, 1, 5, 8, tzinfo=UTC), spacing=timedelta(days=2))
    # Two sources, so the batch is shared out to both workers.
    batch = [
        report(s, outlet, hours_later=k)
        for k, s in enumerate(stories)
        for outlet in ("valleyecho.example", "harbourpost.example")
    ]
    url = f"sqlite:///{tmp_path / 'stories.db'}"
    with Server(url, tmp_path / "serve.log", workers="2") as server, httpx.Client(timeout=120) as client:
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        victim = workers[0]
        victim.kill()
        _wait_dead(victim)
        refused = client.post(f"{server.url}/v1/articles/batch", json={"articles": batch})
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] and refused.json()["error"]["code"] == "unavailable"
        assert client.get(f"{server.url}/v1/clusters").json()["clusters"] == []
        retried = client.post(f"{server.url}/v1/articles/batch", json={"articles": batch})
        assert retried.status_code == 200
        assert [r["status"] for r in retried.json()["results"]] == ["created"] * len(batch)
        assert client.get(f"{server.url}/readyz").status_code == 200
        alive = [p for p in _workers(server.process.pid) if _running(p)]
        assert victim.pid not in {p.pid for p in alive} and len(alive) == 2


def _workers(pid: int) -> list:
    """The server's prepare workers: the children of its fork server (not multiprocessing's
    resource tracker, nor the fork server itself)."""
    import psutil

    servers = [p for p in psutil.Process(pid).children() if "forkserver" in " ".join(p.cmdline())]
    return [worker for server in servers for worker in server.children()]


def _running(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_dead(process, timeout: float = 30.0) -> None:
    """Until the process is gone or a zombie (its parent, the server, reaps it when it next looks)."""
    deadline = time.monotonic() + timeout
    while _running(process):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {process.pid} still runs")
        time.sleep(0.01)
