"""Metrics, request ids and structured logs, through the app's lifespan."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.api.factory import create_app
from app.config import Settings
from app.observability import Metrics
from tests.factories import article

ITALY_FLOODS = article(
    url="https://valley-post.example/2025/po-floods",
    title="Po river floods villages near Ferrara",
    text=(
        "The Po burst its banks near Ferrara on Saturday after four days of rain, flooding three villages "
        "and forcing 1,200 residents from their homes.\n"
        "Civil protection teams evacuated the elderly by boat while the regional president Elena Rossi "
        "declared a state of emergency for the province."
    ),
    source="valley-post.example",
    published_at="2025-05-17T09:00:00Z",
)


def samples(client: TestClient) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(client: TestClient, name: str, **labels: str) -> float:
    return samples(client).get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_served_in_prometheus_text_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert "# TYPE stories_http_requests_total counter" in response.text


def test_requests_are_counted_per_route_template_not_per_path(client):
    client.get("/v1/articles/7")
    client.get("/v1/articles/8")
    assert (
        value(client, "stories_http_requests_total", method="GET", route="/v1/articles/{article_id}", status="404") == 2
    )


def test_request_latency_is_observed_per_route(client):
    client.get("/healthz")
    assert value(client, "stories_http_request_duration_seconds_count", method="GET", route="/healthz") == 1


def test_unknown_paths_share_one_series(client):
    client.get("/no/such/page")
    client.get("/another/missing/page")
    assert value(client, "stories_http_requests_total", method="GET", route="unmatched", status="404") == 2


def test_ingested_articles_are_counted_by_outcome(client):
    client.post("/v1/articles", json=ITALY_FLOODS)
    client.post("/v1/articles", json=ITALY_FLOODS)
    assert value(client, "stories_articles_ingested_total", status="created") == 1
    assert value(client, "stories_articles_ingested_total", status="existing") == 1


def test_article_without_extractable_text_is_counted_as_rejected(client):
    client.post("/v1/articles", json=article(text=None, html="<html><body><div></div></body></html>"))
    assert value(client, "stories_articles_ingested_total", status="rejected") == 1


def test_first_article_of_an_event_opens_a_story(client):
    client.post("/v1/articles", json=ITALY_FLOODS)
    assert value(client, "stories_opened_total") == 1


def test_republished_copy_counts_as_a_duplicate(client):
    client.post("/v1/articles", json=ITALY_FLOODS)
    client.post(
        "/v1/articles", json={**ITALY_FLOODS, "url": "https://wire-mirror.example/po", "source": "wire-mirror.example"}
    )
    assert value(client, "stories_duplicates_found_total") == 1
    assert value(client, "stories_opened_total") == 1


def test_each_ingest_stage_is_timed(client):
    client.post("/v1/articles", json=ITALY_FLOODS)
    for stage in ("prepare", "assign", "store", "summarise", "transaction"):
        assert value(client, "stories_ingest_stage_seconds_count", stage=stage) == 1, stage


def test_index_sizes_are_reported(client):
    client.post("/v1/articles", json=ITALY_FLOODS)
    client.post(
        "/v1/articles", json={**ITALY_FLOODS, "url": "https://wire-mirror.example/po", "source": "wire-mirror.example"}
    )
    assert value(client, "stories_index_entries", index="articles") == 2
    assert value(client, "stories_index_entries", index="stories") == 1


def test_read_responses_are_counted_as_rendered_or_kept(client):
    client.post("/v1/articles", json=ITALY_FLOODS)
    for _ in range(3):
        client.get("/v1/clusters")
    assert value(client, "stories_read_responses_total", outcome="rendered") == 1
    assert value(client, "stories_read_responses_total", outcome="kept") == 2


def test_index_sizes_are_rebuilt_from_the_database_at_start(settings):
    with TestClient(create_app(settings)) as first:
        first.post("/v1/articles", json=ITALY_FLOODS)
    with TestClient(create_app(settings)) as restarted:
        assert value(restarted, "stories_index_entries", index="articles") == 1


def test_merged_stories_are_counted_when_the_transaction_commits():
    metrics = Metrics()
    metrics.record_committed({"created": 1}, duplicates=0, opened=0, merged=2)
    assert metrics.registry.get_sample_value("stories_merged_total") == 2
    assert metrics.registry.get_sample_value("stories_articles_ingested_total", {"status": "created"}) == 1


# -- request ids -----------------------------------------------------------------


def test_response_carries_a_generated_request_id(client):
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz").headers["x-request-id"])


def test_callers_request_id_is_echoed(client):
    assert client.get("/healthz", headers={"X-Request-ID": "crawler-42.7"}).headers["x-request-id"] == "crawler-42.7"


def test_unsafe_request_id_is_replaced(client):
    answered = client.get("/healthz", headers={"X-Request-ID": "a b\tc" + "x" * 200}).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", answered)


def test_error_answers_carry_the_request_id_too(client):
    assert client.get("/v1/articles/1", headers={"X-Request-ID": "r-404"}).headers["x-request-id"] == "r-404"


# -- logs --------------------------------------------------------------------------


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_request_is_logged_as_one_json_line_with_its_id(database_url, capsys):
    settings = Settings(database_url=database_url, log_format="json")
    with TestClient(create_app(settings)) as client:
        capsys.readouterr()
        client.get("/v1/clusters", headers={"X-Request-ID": "trace-1"})
    lines = [r for r in _json_lines(capsys.readouterr().err) if r.get("event") == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "trace-1"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/v1/clusters", 200)
    assert {"timestamp", "level", "logger", "duration_ms"} <= set(line)


def test_library_log_records_are_json_too(database_url, capsys):
    with TestClient(create_app(Settings(database_url=database_url, log_format="json"))):
        pass
    records = _json_lines(capsys.readouterr().err)
    assert any(r["logger"] == "app.service.caches" and r["event"].startswith("caches rebuilt") for r in records)


def test_logged_exception_carries_no_local_variables(database_url, capsys):
    import logging

    with TestClient(create_app(Settings(database_url=database_url, log_format="json"))):
        capsys.readouterr()
        api_key = "do-not-log-me"  # noqa: F841 - a local the traceback must not show
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("app.test").exception("failed")
    err = capsys.readouterr().err
    record = next(r for r in _json_lines(err) if r["event"] == "failed")
    assert record["exception"][0]["exc_value"] == "boom"
    assert "do-not-log-me" not in err


def test_console_format_is_readable_rather_than_json(database_url, capsys):
    with TestClient(create_app(Settings(database_url=database_url, log_format="console"))) as client:
        capsys.readouterr()
        client.get("/healthz", headers={"X-Request-ID": "trace-2"})
    err = capsys.readouterr().err
    assert _json_lines(err) == []
    assert re.search(r"request .*request_id=trace-2", err)


def test_auto_format_writes_json_when_not_in_a_terminal(database_url, capsys):
    # Under pytest stderr is captured, not a terminal: as in a container or under systemd.
    with TestClient(create_app(Settings(database_url=database_url, log_format="auto"))) as client:
        capsys.readouterr()
        client.get("/healthz")
    assert any(r.get("event") == "request" for r in _json_lines(capsys.readouterr().err))
