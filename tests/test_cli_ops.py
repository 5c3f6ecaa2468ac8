"""Operating commands: backfill (local and remote), export, migrate-then-serve, bad configuration."""

from __future__ import annotations

import csv
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import backfill
from app.api.factory import create_app
from app.cli import cli
from app.config import Settings
from app.store.migrate import SchemaBehind

# Two events, two outlets each, plus a wire copy: written for these tests.
ARTICLES = [
    {
        "url": "https://valley-post.example/2025/po-floods",
        "title": "Po river floods villages near Ferrara",
        "text": "The Po burst its banks near Ferrara on Saturday after four days of rain, flooding three villages "
        "and forcing 1,200 residents from their homes. Regional president Elena Rossi declared an emergency.",
        "source": "valley-post.example",
        "published_at": "2025-05-17T09:00:00Z",
        "label": "floods",
    },
    {
        "url": "https://adriatic-daily.example/news/ferrara-evacuations",
        "title": "Ferrara villages evacuated as the Po overflows",
        "text": "Rescue boats evacuated 1,200 people from three villages near Ferrara on Saturday when the Po "
        "overflowed after four days of heavy rain. Elena Rossi, the regional president, declared an emergency.",
        "source": "adriatic-daily.example",
        "published_at": "2025-05-17T11:30:00Z",
    },
    {
        "url": "https://harbour-times.example/2025/ferry-strike",
        "title": "Ferry crews on Isla Verde strike over rosters",
        "text": "Ferry crews serving Isla Verde walked out on Thursday in a dispute over night rosters, stranding "
        "hundreds of commuters at the Puerto Alto terminal. The union said talks with Verde Lines broke down.",
        "source": "harbour-times.example",
        "published_at": "2025-05-08T06:30:00Z",
    },
    {
        "url": "https://island-courier.example/ferry-walkout",
        "title": "Isla Verde ferry walkout strands commuters",
        "text": "Hundreds of commuters were stranded at Puerto Alto on Thursday as Isla Verde ferry crews struck "
        "over night rosters. Verde Lines and the crews' union failed to agree after six weeks of talks.",
        "source": "island-courier.example",
        "published_at": "2025-05-08T08:00:00Z",
    },
]


def write_jsonl(path: Path, rows: list[dict], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra)
    return path


def summary(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def environment(database_url, monkeypatch) -> str:
    """The commands' database (SQLite and PostgreSQL), set as an operator would."""
    monkeypatch.setenv("STORIES_DATABASE_URL", database_url)
    return database_url


@pytest.fixture
def crawl(tmp_path) -> Path:
    return write_jsonl(tmp_path / "crawl.jsonl", ARTICLES)


def run(*args: str, input: str | None = None):
    # A terminal wide enough that an error naming a long temporary path is not wrapped.
    return CliRunner().invoke(cli, list(args), input=input, env={"COLUMNS": "400"})


# -- ingest ------------------------------------------------------------------------


def test_ingest_reads_standard_input(environment):
    result = run("ingest", "-", input="".join(json.dumps(r) + "\n" for r in ARTICLES))
    assert result.exit_code == 0, result.output
    assert summary(result) == {"created": 4, "existing": 0, "rejected": 0}


def test_rerun_after_an_interruption_stores_only_the_rest(environment, tmp_path, crawl):
    run("ingest", str(write_jsonl(tmp_path / "first-half.jsonl", ARTICLES[:2])))
    resumed = run("ingest", str(crawl), "--batch-size", "1")
    assert summary(resumed) == {"created": 2, "existing": 2, "rejected": 0}


def test_progress_bar_shows_rate_and_time_left(environment, crawl):
    result = run("ingest", str(crawl), "--progress", "--batch-size", "2")
    bar = result.stderr.replace("\r", "\n").splitlines()
    final = [line for line in bar if line.startswith("ingest: 100%")][-1]
    assert "B/s" in final and "articles/s" in final
    assert "<00:00" in final  # elapsed<remaining: the time left


def test_rejected_lines_are_reported_by_number_and_the_rest_stored(environment, tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", ARTICLES[:1], extra='{"url": "https://x.example/a"}\n[1, 2]\n')
    result = run("ingest", str(path))
    assert summary(result) == {"created": 1, "existing": 0, "rejected": 2}
    assert "line 2: rejected: exactly one of text or html is required" in result.stderr
    assert "line 3: rejected: each line must be a JSON object" in result.stderr


def test_articles_without_a_key_are_warned_about(environment, tmp_path):
    path = write_jsonl(tmp_path / "unkeyed.jsonl", [{"text": ARTICLES[0]["text"]}])
    result = run("ingest", str(path))
    assert summary(result)["created"] == 1
    assert "neither url nor external_id" in result.stderr


def test_missing_input_file_is_named(environment, tmp_path):
    result = run("ingest", str(tmp_path / "nowhere.jsonl"))
    assert result.exit_code == 2
    assert "nowhere.jsonl" in result.output


# -- ingest --url ------------------------------------------------------------------


@pytest.fixture
def live_service(settings) -> Iterator[str]:
    """A real server on a loopback port, with a key: what `--url` talks to."""
    keyed = Settings(database_url=settings.database_url, api_key="backfill-key")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(keyed), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if server.started:
                break
            thread.join(0.05)
        assert server.started, "the test server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_ingest_posts_batches_to_a_remote_service(live_service, crawl):
    result = run("ingest", str(crawl), "--url", live_service, "--api-key", "backfill-key", "--batch-size", "3")
    assert result.exit_code == 0, result.output
    assert summary(result) == {"created": 4, "existing": 0, "rejected": 0}
    listed = httpx.get(live_service + "/v1/clusters").json()["clusters"]
    assert sum(c["article_count"] for c in listed) == 4


def test_remote_rerun_is_idempotent(live_service, crawl):
    run("ingest", str(crawl), "--url", live_service, "--api-key", "backfill-key")
    again = run("ingest", str(crawl), "--url", live_service, "--api-key", "backfill-key")
    assert summary(again) == {"created": 0, "existing": 4, "rejected": 0}


def test_remote_key_defaults_to_the_configured_key(live_service, crawl, monkeypatch):
    monkeypatch.setenv("STORIES_API_KEY", "backfill-key")
    assert summary(run("ingest", str(crawl), "--url", live_service))["created"] == 4


def test_wrong_remote_key_stops_with_a_hint(live_service, crawl):
    result = run("ingest", str(crawl), "--url", live_service, "--api-key", "wrong")
    assert result.exit_code == 1
    assert "401" in result.stderr and "--api-key" in result.stderr


def test_remote_batch_is_retried_while_the_service_is_unavailable():
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(
                200,
                json={"results": [{"index": 0, "id": 1, "cluster_id": 1, "duplicate_of": None, "status": "created"}]},
            ),
        ]
    )
    client = httpx.Client(transport=httpx.MockTransport(lambda request: next(answers)), base_url="http://svc")
    sink = backfill.RemoteSink("http://svc", "k", client=client)
    row, article = backfill.parse_line(json.dumps(ARTICLES[0]).encode())
    assert [r.status for r in sink.send([backfill.Line(1, row, article)])] == ["created"]


def test_remote_rows_leave_out_fields_the_api_does_not_take():
    row, _ = backfill.parse_line(json.dumps(ARTICLES[0]).encode())
    assert "label" not in row and row["url"] == ARTICLES[0]["url"]


# -- export ------------------------------------------------------------------------


@pytest.fixture
def ingested(environment, crawl) -> str:
    assert run("ingest", str(crawl)).exit_code == 0
    return environment


def test_export_writes_each_cluster_with_its_articles_as_jsonl(ingested):
    result = run("export")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(len(r["articles"]) for r in records) == [2, 2]
    assert {a["external_id"] for r in records for a in r["articles"]} == {None}
    assert "2 clusters, 4 articles written" in result.stderr


def test_export_csv_has_one_row_per_article(ingested):
    rows = list(csv.DictReader(io.StringIO(run("export", "--format", "csv").stdout)))
    assert len(rows) == 4
    assert {r["url"] for r in rows} == {a["url"] for a in ARTICLES}
    assert len({r["cluster_id"] for r in rows}) == 2


FILTERS = [
    {"since": "2025-05-10"},
    {"until": "2025-05-10T00:00:00Z"},
    {"source": "island-courier.example"},
    {"q": "ferrara"},
    {"min_articles": "3"},
    {"sort": "largest"},
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: next(iter(f)))
def test_export_selects_what_the_list_endpoint_lists(ingested, filters):
    options = [part for name, value in filters.items() for part in (f"--{name.replace('_', '-')}", value)]
    exported = [json.loads(line)["id"] for line in run("export", *options).stdout.splitlines()]
    with TestClient(create_app(Settings(database_url=ingested))) as client:
        listed = [c["id"] for c in client.get("/v1/clusters", params=filters).json()["clusters"]]
    assert exported == listed


def test_export_to_a_file_leaves_no_partial_file(ingested, tmp_path):
    target = tmp_path / "clusters.jsonl"
    assert run("export", "-o", str(target)).exit_code == 0
    assert len(target.read_text().splitlines()) == 2
    assert not (tmp_path / "clusters.jsonl.partial").exists()


def test_export_refuses_an_unknown_format(ingested):
    result = run("export", "--format", "xml")
    assert result.exit_code == 2 and "--format" in result.output


def test_export_refuses_a_time_it_cannot_read(ingested):
    result = run("export", "--since", "last tuesday")
    assert result.exit_code == 2 and "ISO 8601" in result.output


# -- migrate, serve, configuration ---------------------------------------------------


def test_server_that_must_not_migrate_refuses_an_old_schema(database_url):
    app = create_app(Settings(database_url=database_url, migrate_on_start=False))
    with pytest.raises(SchemaBehind, match="stories migrate"):
        with TestClient(app):
            pass


def test_server_that_must_not_migrate_is_ready_after_stories_migrate(environment):
    assert run("migrate").exit_code == 0
    with TestClient(create_app(Settings(database_url=environment, migrate_on_start=False))) as client:
        assert client.get("/readyz").status_code == 200


def test_invalid_configuration_stops_a_command_naming_the_variable(environment, monkeypatch):
    monkeypatch.setenv("STORIES_LOG_FORMAT", "xml")
    result = run("migrate")
    assert result.exit_code == 1
    assert "STORIES_LOG_FORMAT" in result.output
