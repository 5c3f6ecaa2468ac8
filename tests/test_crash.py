"""Crash safety: a server SIGKILLed again and again while several clients post.

One run per database kind (module fixture ``crash``): four clients post a stream of
articles (single posts and batches) to a real ``stories serve`` on loopback, retrying
whatever got no answer; meanwhile the server is SIGKILLed at random moments, each time
after it has acknowledged new writes, and restarted on the same database. The tests
then check the outcome: every article that got a 2xx is stored with a cluster, nothing
is half-stored, the clustering equals the clustering of the same articles replayed in
commit (id) order into a fresh database with no crash, and the restarted server's
rebuilt index finds every stored article.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app.api.factory import create_app
from app.config import Settings
from app.store.db import make_engine
from app.store.models import Article
from tests.servers import Server, fresh_database
from tests.synthetic_news import OUTLETS, make_stories, report

pytestmark = pytest.mark.slow

CLIENTS = 4
KILLS = 6  # while clients post; one more after the last acknowledgement
DEADLINE = 600.0  # seconds for the whole run; every loop below is bounded by it
SIGNATURE_BYTES = 128 * 4  # NUM_PERM uint32 values


def _stream() -> list[dict]:
    """60 stories two days apart: the wire report at three outlets, one write-up, some on pages."""
    articles = []
    for story in make_stories(60, seed=20261122, spacing=timedelta(days=2)):
        articles += [
            report(story, OUTLETS[0]),
            report(story, OUTLETS[1], hours_later=1),
            report(story, OUTLETS[2], rewrite=True, hours_later=3),
            report(story, OUTLETS[3], hours_later=5, page=False),
        ]
    return articles


def _units(articles: list[dict]) -> deque:
    """What the clients send: mostly single articles, every fifth unit a batch of four."""
    units: deque = deque()
    i = 0
    while i < len(articles):
        size = 4 if len(units) % 5 == 4 else 1
        units.append(articles[i : i + size])
        i += size
    return units


@dataclass
class CrashRun:
    database_url: str
    posted: list[dict]
    acked: dict[str, dict] = field(default_factory=dict)  # url -> the last 2xx result for it
    kills: int = 0
    cut_in_flight: int = 0  # requests under way when the server died (connection reset, no answer)
    refused: int = 0  # requests that found no server listening
    unexpected: list[str] = field(default_factory=list)  # any 4xx/5xx answer, any item error
    server: Server | None = None


def _post(client: httpx.Client, unit: list[dict]) -> list[dict] | None:
    """The results for ``unit``, or None when there was no answer (send it again later)."""
    if len(unit) == 1:
        response = client.post("/v1/articles", json=unit[0])
        if response.status_code in (200, 201):
            return [response.json()]
    else:
        response = client.post("/v1/articles/batch", json={"articles": unit})
        if response.status_code == 200:
            return response.json()["results"]
    if response.status_code == 503:
        return None  # the database was unavailable: nothing acknowledged, retry
    raise AssertionError(f"{response.status_code}: {response.text[:300]}")


def _run(run: CrashRun, server: Server) -> None:
    units = _units(run.posted)
    lock = threading.Lock()
    in_flight = [0]
    acked_since_start = [0]
    deadline = time.monotonic() + DEADLINE
    stop = threading.Event()

    def client_loop() -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            while not stop.is_set() and time.monotonic() < deadline:
                with lock:
                    if not units:
                        if in_flight[0] == 0:
                            return
                        unit = None
                    else:
                        unit = units.popleft()
                        in_flight[0] += 1
                if unit is None:
                    time.sleep(0.01)
                    continue
                try:
                    results = _post(client, unit)
                except httpx.ConnectError:
                    results = None
                    with lock:
                        run.refused += 1
                except httpx.TransportError:  # reset, closed without an answer, timed out
                    results = None
                    with lock:
                        run.cut_in_flight += 1
                except AssertionError as err:
                    results = []
                    with lock:
                        run.unexpected.append(str(err))
                with lock:
                    in_flight[0] -= 1
                    if results is None:
                        units.append(unit)
                    else:
                        for article, result in zip(unit, results):
                            if result.get("status") not in ("created", "existing"):
                                run.unexpected.append(f"{article['url']}: {result}")
                            else:
                                run.acked[article["url"]] = result
                        acked_since_start[0] += len(results)
                if results is None:
                    time.sleep(0.1)

    def killer() -> None:
        try:
            kill_and_restart()
        except Exception as err:  # noqa: BLE001 - a restart that failed is reported, not swallowed
            run.unexpected.append(f"restart failed: {err}")
            stop.set()

    def kill_and_restart() -> None:
        rng = random.Random(7)
        while run.kills < KILLS and time.monotonic() < deadline:
            # Kill only a server that is taking writes: some acknowledged since it started.
            while acked_since_start[0] < 3 and time.monotonic() < deadline and units:
                time.sleep(0.01)
            if not units:
                return
            time.sleep(rng.uniform(0.0, 0.4))
            server.kill()
            run.kills += 1
            time.sleep(rng.uniform(0.0, 0.3))
            with lock:
                acked_since_start[0] = 0
            server.start()

    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)] + [threading.Thread(target=killer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE + 60)
    stop.set()
    assert not units and time.monotonic() < deadline, f"stream not drained in {DEADLINE}s: {len(units)} units left"
    server.kill()  # and once more after the last acknowledgement
    run.kills += 1


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def crash(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp(f"crash-{request.param}")
    with fresh_database(request.param, directory) as database_url:
        server = Server(database_url, directory / "server.log")
        run = CrashRun(database_url, _stream(), server=server)
        server.start()
        try:
            _run(run, server)
            server.start()  # recovery: the caches are rebuilt from what survived
            print(  # the figures docs/reliability.md quotes (pytest -s shows them)
                f"\ncrash run [{request.param}]: {len(run.posted)} articles posted by {CLIENTS} clients, "
                f"{len(run.acked)} acknowledged, {run.kills} SIGKILLs, {run.cut_in_flight} requests cut in flight, "
                f"{run.refused} refused while down, "
                f"{sum(r['status'] == 'existing' for r in run.acked.values())} committed before a kill cut the answer"
            )
            yield run
        finally:
            server.stop()


# -- reading the database ----------------------------------------------------------------------


def _query(database_url: str, sql: str) -> list:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


def _live_cluster(cluster_id: int, forward: dict[int, int]) -> int:
    seen = set()
    while cluster_id in forward and cluster_id not in seen:
        seen.add(cluster_id)
        cluster_id = forward[cluster_id]
    return cluster_id


def _clustering(database_url: str) -> dict:
    """Stored articles by url: id, live cluster, duplicate_of (as a url), cleaned text."""
    forward = dict(_query(database_url, "SELECT id, merged_into FROM clusters WHERE merged_into IS NOT NULL"))
    rows = _query(database_url, "SELECT id, url, cluster_id, duplicate_of, text FROM articles ORDER BY id")
    url_of = {row.id: row.url for row in rows}
    return {
        row.url: {
            "id": row.id,
            "cluster": _live_cluster(row.cluster_id, forward),
            "duplicate_of": url_of.get(row.duplicate_of),
            "text": row.text,
        }
        for row in rows
    }


def _partition(clustering: dict) -> set[frozenset[str]]:
    groups: dict[int, set[str]] = defaultdict(set)
    for url, stored in clustering.items():
        groups[stored["cluster"]].add(url)
    return {frozenset(group) for group in groups.values()}


def _articles(database_url: str) -> list[Article]:
    """Every stored article, in id (commit) order, as the ORM reads it (times in UTC)."""
    engine = create_engine(database_url)
    try:
        with Session(engine) as session:
            rows = list(session.scalars(select(Article).order_by(Article.id)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def _as_sent(article: Article) -> dict:
    """The article as its client posted it (the stored raw page, not the cleaned text)."""
    body = {
        "url": article.url,
        "external_id": article.external_id,
        "title": article.title,
        "source": article.source,
        "language": article.language,
        "published_at": article.published_at.isoformat(),
        article.input_format: article.raw,
    }
    return {k: v for k, v in body.items() if v is not None}


def _replay(database_url: str, directory: Path) -> str:
    """Post the stored articles, as they were sent, in id (commit) order into a fresh database."""
    replay_url = f"sqlite:///{directory / 'replay.db'}"
    with TestClient(create_app(Settings(database_url=replay_url, api_key=None))) as client:
        for article in _articles(database_url):
            response = client.post("/v1/articles", json=_as_sent(article))
            assert response.status_code == 201, response.text
    return replay_url


@pytest.fixture(scope="module")
def replayed(crash: CrashRun, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _replay(crash.database_url, tmp_path_factory.mktemp("replay"))


# -- the run happened as intended ---------------------------------------------------------------


def test_server_was_killed_at_least_five_times_while_clients_were_posting(crash: CrashRun):
    assert crash.kills >= 5 + 1
    assert crash.server.starts == crash.kills + 1


def test_no_request_got_an_error_answer(crash: CrashRun):
    assert crash.unexpected == []


def test_every_posted_article_was_acknowledged_in_the_end(crash: CrashRun):
    assert set(crash.acked) == {article["url"] for article in crash.posted}


# -- nothing lost, nothing half-stored ------------------------------------------------------------


def test_every_acknowledged_article_is_stored_under_the_acknowledged_id(crash: CrashRun):
    stored = _clustering(crash.database_url)
    lost = [url for url in crash.acked if url not in stored]
    assert lost == []
    assert {url: result["id"] for url, result in crash.acked.items()} == {url: stored[url]["id"] for url in crash.acked}


def test_no_article_is_stored_twice(crash: CrashRun):
    urls = [row.url for row in _query(crash.database_url, "SELECT url FROM articles")]
    assert len(urls) == len(set(urls)) == len(crash.posted)


def test_every_stored_article_has_its_fingerprint_and_a_live_cluster(crash: CrashRun):
    rows = _query(
        crash.database_url,
        "SELECT a.id, length(a.signature) AS size, a.cluster_id, c.id AS found "
        "FROM articles a LEFT JOIN clusters c ON c.id = a.cluster_id",
    )
    forward = dict(_query(crash.database_url, "SELECT id, merged_into FROM clusters WHERE merged_into IS NOT NULL"))
    live = {row.id for row in _query(crash.database_url, "SELECT id FROM clusters WHERE merged_into IS NULL")}
    assert [row.id for row in rows if row.size != SIGNATURE_BYTES] == []
    assert [row.id for row in rows if row.found is None] == []
    assert [row.id for row in rows if _live_cluster(row.cluster_id, forward) not in live] == []


def test_every_live_cluster_counts_exactly_its_stored_members(crash: CrashRun):
    counts = _query(
        crash.database_url,
        "SELECT c.id, c.article_count, count(a.id) AS members FROM clusters c "
        "LEFT JOIN articles a ON a.cluster_id = c.id WHERE c.merged_into IS NULL GROUP BY c.id, c.article_count",
    )
    assert [row.id for row in counts if row.members == 0] == []  # no story without an article
    assert {row.id: row.article_count for row in counts} == {row.id: row.members for row in counts}


def test_merged_away_clusters_hold_no_articles(crash: CrashRun):
    held = _query(
        crash.database_url,
        "SELECT a.id FROM articles a JOIN clusters c ON c.id = a.cluster_id WHERE c.merged_into IS NOT NULL",
    )
    assert held == []


# -- the same clustering as without a crash ----------------------------------------------------------


def test_clustering_after_recovery_equals_the_clustering_of_the_same_stream_without_a_crash(crash, replayed):
    assert _partition(_clustering(crash.database_url)) == _partition(_clustering(replayed))


def test_near_duplicates_after_recovery_equal_those_without_a_crash(crash, replayed):
    crashed, calm = _clustering(crash.database_url), _clustering(replayed)
    assert {u: s["duplicate_of"] for u, s in crashed.items()} == {u: s["duplicate_of"] for u, s in calm.items()}


def test_extracted_text_after_recovery_equals_that_without_a_crash(crash, replayed):
    # Extraction depends on each source's learned template lines, which must survive too.
    crashed, calm = _clustering(crash.database_url), _clustering(replayed)
    assert {u: s["text"] for u, s in crashed.items()} == {u: s["text"] for u, s in calm.items()}


def test_learned_source_templates_after_recovery_equal_those_without_a_crash(crash, replayed):
    sql = "SELECT source, fingerprint, pages FROM source_lines"
    assert set(map(tuple, _query(crash.database_url, sql))) == set(map(tuple, _query(replayed, sql)))


def _matches(client, articles: list[Article], url_of: dict[int, str], members: dict) -> dict[str, tuple]:
    """What ``/v1/match`` answers for each stored article, in terms of urls (ids differ between databases)."""
    answers = {}
    for article in articles:
        body = {k: v for k, v in _as_sent(article).items() if k not in ("url", "external_id")}
        found = client.post("/v1/match", json=body).json()
        answers[article.url] = (
            members.get(found["cluster_id"]),
            round(found["score"], 3),
            frozenset((url_of[d["article_id"]], round(d["similarity"], 3)) for d in found["duplicates"]),
        )
    return answers


def _members(database_url: str) -> tuple[dict[int, str], dict[int, frozenset]]:
    stored = _clustering(database_url)
    url_of = {s["id"]: url for url, s in stored.items()}
    groups: dict[int, set[str]] = defaultdict(set)
    for url, s in stored.items():
        groups[s["cluster"]].add(url)
    return url_of, {cluster: frozenset(urls) for cluster, urls in groups.items()}


def test_recovered_server_answers_from_its_rebuilt_index_as_a_server_that_never_crashed(crash, replayed):
    articles = _articles(crash.database_url)
    with httpx.Client(base_url=crash.server.url, timeout=30.0) as client:
        recovered = _matches(client, articles, *_members(crash.database_url))
    with TestClient(create_app(Settings(database_url=replayed, api_key=None))) as client:
        calm = _matches(client, articles, *_members(replayed))
    assert recovered == calm


# -- durable commits ------------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_full_synchronous_commits(tmp_path):
    engine = make_engine(Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}"), writer=True)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL: fsync at every commit
    finally:
        engine.dispose()
