"""Concurrency: clients posting at the same instant never split a story or store a URL twice.

Eight clients post copies of the same story at the same instant (a barrier releases them
together), story after story, to a real server on SQLite and on PostgreSQL. The assign
step is serialised: a process lock, plus ``BEGIN IMMEDIATE`` on SQLite and an advisory
lock on PostgreSQL, which the tests check are really taken and really waited for. Two
server processes on one database are tried as well: each catches up with the other's
commits inside the serialised step, so they never split a story between them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from app.api.factory import create_app
from app.api.schemas import ArticleIn
from app.config import Settings
from app.service.ingest import StoryService
from app.store import locks
from app.store.db import make_engine, make_sessionmaker
from tests.servers import Server, fresh_database
from tests.synthetic_news import OUTLETS, make_stories, report

pytestmark = pytest.mark.slow

CLIENTS = 8
STORIES = 100
WAIT = 60.0  # seconds any one barrier or request may take before the test fails


def _copy(story, client: int) -> dict:
    """Client ``client``'s copy of ``story``: the same wire text under its own outlet and url."""
    return report(story, OUTLETS[client % len(OUTLETS)], page=False, copy=client + 1)


def _at_once(urls: list[str], bodies_for: Callable[[int, int], dict], rounds: int) -> list[list[httpx.Response]]:
    """``rounds`` rounds; in each, client ``c`` posts ``bodies_for(round, c)`` to ``urls[c % len(urls)]``
    at the same instant as the others. Returns the responses, round by round, client by client."""
    barrier = threading.Barrier(CLIENTS, timeout=WAIT)
    responses: list[list[httpx.Response | None]] = [[None] * CLIENTS for _ in range(rounds)]
    failures: list[BaseException] = []

    def client_loop(c: int) -> None:
        with httpx.Client(base_url=urls[c % len(urls)], timeout=WAIT) as client:
            try:
                for r in range(rounds):
                    body = bodies_for(r, c)
                    barrier.wait()
                    responses[r][c] = client.post("/v1/articles", json=body)
            except BaseException as err:  # noqa: BLE001 - reported below, with the barrier broken for the others
                failures.append(err)
                barrier.abort()

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT * rounds)
    assert not failures, failures[0]
    return responses  # type: ignore[return-value]


def _clusters_by_story(rounds: list[list[httpx.Response]]) -> dict[int, set[int]]:
    return {r: {response.json()["cluster_id"] for response in responses} for r, responses in enumerate(rounds)}


@pytest.fixture(params=["sqlite", "postgresql"])
def servers(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[[int], list[Server]]]:
    """Start ``n`` server processes on one fresh database of the parametrised kind."""
    with fresh_database(request.param, tmp_path) as database_url, ExitStack() as stack:

        def _start(n: int) -> list[Server]:
            started = []
            for i in range(n):  # one after the other: the first one migrates
                started.append(stack.enter_context(Server(database_url, tmp_path / f"server-{i}.log")))
            return started

        yield _start


# -- one server process ---------------------------------------------------------------------------


def test_eight_clients_posting_copies_of_a_story_at_once_open_one_cluster_per_story(servers):
    [server] = servers(1)
    stories = make_stories(STORIES, seed=8)

    rounds = _at_once([server.url], lambda r, c: _copy(stories[r], c), STORIES)

    assert all(response.status_code == 201 for responses in rounds for response in responses)
    clusters = _clusters_by_story(rounds)
    assert {r: len(ids) for r, ids in clusters.items() if len(ids) != 1} == {}
    assert len({next(iter(ids)) for ids in clusters.values()}) == STORIES  # and no two stories share one
    with httpx.Client(base_url=server.url) as client:
        for ids in clusters.values():
            assert client.get(f"/v1/clusters/{next(iter(ids))}").json()["article_count"] == CLIENTS


def test_same_url_posted_by_eight_clients_at_once_is_stored_once(servers):
    [server] = servers(1)
    stories = make_stories(40, seed=9)

    rounds = _at_once([server.url], lambda r, c: report(stories[r], OUTLETS[0]), len(stories))

    for responses in rounds:
        assert sorted(response.status_code for response in responses) == [200] * (CLIENTS - 1) + [201]
        assert len({response.json()["id"] for response in responses}) == 1
    with httpx.Client(base_url=server.url) as client:
        counted = client.get("/v1/clusters", params={"limit": 200}).json()["clusters"]
    assert sum(cluster["article_count"] for cluster in counted) == len(stories)


# -- two server processes on one database ------------------------------------------------------------


def test_same_url_posted_to_two_server_processes_at_once_is_stored_once(servers):
    first, second = servers(2)
    stories = make_stories(40, seed=10)

    rounds = _at_once([first.url, second.url], lambda r, c: report(stories[r], OUTLETS[0]), len(stories))

    for responses in rounds:
        assert sorted(response.status_code for response in responses) == [200] * (CLIENTS - 1) + [201]
        assert len({response.json()["id"] for response in responses}) == 1


def test_copies_of_a_story_posted_to_two_server_processes_at_once_share_one_cluster(servers):
    first, second = servers(2)
    stories = make_stories(20, seed=11)

    rounds = _at_once([first.url, second.url], lambda r, c: _copy(stories[r], c), len(stories))

    assert all(response.status_code == 201 for responses in rounds for response in responses)
    clusters = _clusters_by_story(rounds)
    assert {r: ids for r, ids in clusters.items() if len(ids) != 1} == {}


# -- the locks are really taken --------------------------------------------------------------------


def test_every_write_transaction_on_sqlite_begins_immediate(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}", api_key=None)
    with TestClient(create_app(settings)):
        pass  # migrated
    engine = make_engine(settings, writer=True)
    service = StoryService(make_sessionmaker(engine))
    service.load()
    issued: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *rest: issued.append(sql))

    service.ingest([ArticleIn(**report(make_stories(1, seed=12)[0], OUTLETS[0]))])

    assert issued[0] == "BEGIN IMMEDIATE"  # the write lock first, before any read that decides
    engine.dispose()


def test_every_write_transaction_on_postgresql_first_takes_the_assign_lock(tmp_path):
    with fresh_database("postgresql", tmp_path) as database_url:
        settings = Settings(database_url=database_url, api_key=None)
        with TestClient(create_app(settings)):
            pass  # migrated
        engine = make_engine(settings, writer=True)
        issued: list[str] = []
        service = StoryService(make_sessionmaker(engine))
        service.load()
        event.listen(engine, "before_cursor_execute", lambda conn, cursor, sql, *rest: issued.append(sql))

        service.ingest([ArticleIn(**report(make_stories(1, seed=13)[0], OUTLETS[0]))])

        # Before the write transaction only reads that decide nothing: which keys are stored
        # (to spare preparing them) and the template snapshot the article is prepared on.
        # The write transaction takes the lock first and reads the keys again.
        locked = next(i for i, sql in enumerate(issued) if "pg_advisory_xact_lock" in sql)
        assert all(sql.lstrip().upper().startswith("SELECT") for sql in issued[:locked])
        assert any(sql.startswith("SELECT articles.url") for sql in issued[locked:])
        engine.dispose()


def test_a_write_waits_while_another_session_holds_the_postgresql_assign_lock(tmp_path):
    with fresh_database("postgresql", tmp_path) as database_url, Server(database_url, tmp_path / "s.log") as server:
        holder = create_engine(database_url)
        with holder.connect() as connection:
            locks.hold(connection, locks.ASSIGN)
            connection.commit()
            answer: list[httpx.Response] = []
            body = report(make_stories(1, seed=14)[0], OUTLETS[0])
            writer = threading.Thread(
                target=lambda: answer.append(httpx.post(f"{server.url}/v1/articles", json=body, timeout=WAIT))
            )
            writer.start()
            waiting = _wait_for_advisory_waiter(connection)
            assert waiting and not answer  # the server's transaction is queued behind our lock
            locks.release(connection, locks.ASSIGN)
            connection.commit()
            writer.join(timeout=WAIT)
        holder.dispose()
    assert answer and answer[0].status_code == 201


def test_deployments_in_two_schemas_of_one_database_do_not_share_the_assign_lock(tmp_path):
    with fresh_database("postgresql", tmp_path / "a") as first, fresh_database("postgresql", tmp_path / "b") as second:
        one, other = create_engine(first), create_engine(second)
        with one.connect() as holder, other.connect() as rival, one.connect() as replica:
            locks.hold(holder, locks.ASSIGN)
            free = text("SELECT pg_try_advisory_xact_lock(:key)")
            assert rival.execute(free, {"key": locks.key(rival, locks.ASSIGN)}).scalar()  # another schema: free
            assert not replica.execute(free, {"key": locks.key(replica, locks.ASSIGN)}).scalar()  # the same: taken
            assert locks.key(holder, locks.ASSIGN) != locks.key(rival, locks.ASSIGN)
            locks.release(holder, locks.ASSIGN)
        one.dispose()
        other.dispose()


def _wait_for_advisory_waiter(connection, attempts: int = 600) -> bool:
    """Whether another backend comes to wait for the assign lock (polled, at most ``attempts`` times)."""
    held = locks.key(connection, locks.ASSIGN) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows it unsigned
    classid, objid = held >> 32, held & 0xFFFFFFFF
    for _ in range(attempts):
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND classid = :c AND objid = :o AND pid <> pg_backend_pid()"
            ),
            {"c": classid, "o": objid},
        ).scalar()
        connection.commit()
        if waiting:
            return True
        threading.Event().wait(0.05)
    return False
