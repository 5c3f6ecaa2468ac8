"""HTTP tests of the article endpoints: ingest, idempotency, validation, batches, auth, reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.api.factory import create_app
from app.config import Settings
from tests.factories import article

# -- articles written for these tests ------------------------------------------------

CRANE_URL = "https://coastwire.example/news/port-ellery-crane-collapse"
CRANE_TITLE = "Crane collapses at Port Ellery container terminal, injuring four dockworkers"
CRANE_TEXT = (
    "A ship-to-shore crane collapsed at the Port Ellery container terminal on Tuesday morning, injuring four "
    "dockworkers and halting cargo operations at the busiest harbour on the Marrow Coast.\n"
    "The 70-metre crane buckled while lifting a container from the freighter Aldebaran Star shortly after 7am, "
    "port authority spokesperson Grace Okonkwo said. Two of the injured workers were taken to St Brennan's "
    "Hospital with serious injuries.\n"
    "The Marrow Coast Dockworkers Union said it had warned port managers about corrosion on the terminal's older "
    "cranes in March and called for an independent inspection of all twelve machines.\n"
    "Terminal operator Halvard Logistics said it had suspended work at berths three and four and was cooperating "
    "with safety inspectors."
)

# A different newsroom's report of the same collapse: same people, places and nouns, new sentences.
CRANE_WRITEUP_TITLE = "Four hurt as dock crane falls at Port Ellery terminal"
CRANE_WRITEUP_TEXT = (
    "Four workers were hurt at Port Ellery on Tuesday when a giant dockside crane toppled onto the quay while "
    "unloading the cargo ship Aldebaran Star, bringing the container terminal to a standstill.\n"
    "Witnesses described a loud crack before the crane's boom folded and crashed across berth three. Paramedics "
    "took two dockworkers to St Brennan's Hospital; the other two were treated at the scene.\n"
    "Grace Okonkwo, speaking for the port authority, said the cause of the collapse was not yet known. The Marrow "
    "Coast Dockworkers Union accused Halvard Logistics of ignoring complaints about corrosion on the ageing "
    "cranes, a claim the terminal operator rejected. Safety inspectors arrived at the harbour by midday."
)

CYCLING_TITLE = "Brackenford council approves forty kilometres of protected cycle lanes"
CYCLING_TEXT = (
    "Brackenford city council voted 31 to 9 on Wednesday to build forty kilometres of protected cycle lanes over "
    "the next three years, the largest transport scheme in the city's history.\n"
    "The 48 million pound plan will remove parking from parts of Queen's Road and the riverside boulevard, a "
    "change local shopkeepers fought for months. Councillor Amara Lindqvist, who chairs the transport committee, "
    "said the lanes would cut congestion and make school journeys safer.\n"
    "Construction of the first section, linking the railway station with the university campus, is due to begin "
    "in September, with the remaining routes opening in stages until 2027."
)

# The crane story as a crawler extracts it from a page: menus, a trending list, share bar and footer.
MENU_LINES = [
    "Home | News | Sport | Business | Weather",
    "Trending",
    "\u2022 Mayor Opens New Library Wing In Eastgate",
    "\u2022 Ellery Rovers Sign Striker On Loan",
    "Share this article",
]
FOOTER_LINES = [
    "Subscribe to our newsletter",
    "\u00a9 2024 Harbour Gazette. All rights reserved.",
]
CRANE_PAGE = "\n".join([*MENU_LINES, "", CRANE_TEXT, "", *FOOTER_LINES])


def crane(**overrides) -> dict:
    body = {
        "url": CRANE_URL,
        "title": CRANE_TITLE,
        "text": CRANE_TEXT,
        "source": "coastwire.example",
        "published_at": "2024-05-14T09:30:00Z",
        "language": "en",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def crane_writeup(**overrides) -> dict:
    defaults = {
        "url": "https://harbourgazette.example/local/dock-crane-falls",
        "title": CRANE_WRITEUP_TITLE,
        "text": CRANE_WRITEUP_TEXT,
        "source": "harbourgazette.example",
        "published_at": "2024-05-14T13:05:00Z",
    }
    return crane(**{**defaults, **overrides})


def cycling(**overrides) -> dict:
    defaults = {
        "url": "https://brackenford-echo.example/transport/cycle-lanes-approved",
        "title": CYCLING_TITLE,
        "text": CYCLING_TEXT,
        "source": "brackenford-echo.example",
        "published_at": "2024-05-15T17:45:00Z",
    }
    return crane(**{**defaults, **overrides})


# -- helpers -------------------------------------------------------------------------


def stored_article_count(client: TestClient) -> int:
    """Articles stored, counted through the API: the sum of every cluster's article_count."""
    total, cursor = 0, None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/clusters", params=params)
        assert page.status_code == 200
        total += sum(c["article_count"] for c in page.json()["clusters"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return total


def assert_error(response, status: int, code: str, mentions: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if mentions is not None:
        assert mentions.lower() in error["message"].lower(), error["message"]
    return error


def assert_nothing_stored(client: TestClient) -> None:
    """No cluster and no article 1; the next valid post is the database's first article."""
    assert client.get("/v1/clusters").json() == {"clusters": [], "next_cursor": None}
    assert client.get("/v1/articles/1").status_code == 404
    first = client.post("/v1/articles", json=crane())
    assert first.status_code == 201
    assert first.json()["id"] == 1


@pytest.fixture
def make_client(database_url: str):
    """Open a client on the test's database with other settings."""
    opened = []

    def _make(**overrides) -> TestClient:
        settings = Settings(database_url=database_url, **{"api_key": None, **overrides})
        test_client = TestClient(create_app(settings))
        test_client.__enter__()
        opened.append(test_client)
        return test_client

    yield _make
    for test_client in reversed(opened):
        test_client.__exit__(None, None, None)


# -- POST /v1/articles: created ------------------------------------------------------


def test_new_article_is_created_with_ids_and_status(client):
    response = client.post("/v1/articles", json=crane())
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "cluster_id", "duplicate_of", "status"}
    assert isinstance(body["id"], int) and isinstance(body["cluster_id"], int)
    assert body["duplicate_of"] is None
    assert body["status"] == "created"


def test_each_new_article_gets_its_own_id(client):
    first = client.post("/v1/articles", json=crane()).json()
    second = client.post("/v1/articles", json=cycling()).json()
    assert first["id"] != second["id"]
    assert stored_article_count(client) == 2


# -- POST /v1/articles: idempotency --------------------------------------------------


@pytest.mark.parametrize(
    "same_url",
    [
        CRANE_URL,
        "https://COASTWIRE.Example/news/port-ellery-crane-collapse",
        CRANE_URL + "/",
        CRANE_URL + "?utm_source=twitter&utm_medium=social",
        CRANE_URL + "#comments",
        "https://coastwire.example:443/news/port-ellery-crane-collapse",
        "HTTPS://coastwire.example/news/port-ellery-crane-collapse",
    ],
    ids=["identical", "host-case", "trailing-slash", "utm-params", "fragment", "default-port", "scheme-case"],
)
def test_same_url_posted_again_returns_existing_ids_and_stores_nothing(client, same_url):
    created = client.post("/v1/articles", json=crane())
    assert created.status_code == 201
    summary_before = client.get(f"/v1/clusters/{created.json()['cluster_id']}").json()

    again = client.post("/v1/articles", json=crane(url=same_url))

    assert again.status_code == 200
    assert again.json() == {**created.json(), "status": "existing"}
    assert stored_article_count(client) == 1
    assert client.get(f"/v1/clusters/{created.json()['cluster_id']}").json() == summary_before


def test_same_url_with_query_parameters_in_another_order_is_the_existing_article(client):
    created = client.post("/v1/articles", json=crane(url=CRANE_URL + "?page=2&edition=uk")).json()
    again = client.post("/v1/articles", json=crane(url=CRANE_URL + "?edition=uk&utm_source=x&page=2"))
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]


def test_same_path_with_a_different_meaningful_query_is_a_new_article(client):
    first = client.post("/v1/articles", json=crane(url=CRANE_URL + "?page=1")).json()
    second = client.post("/v1/articles", json=crane(url=CRANE_URL + "?page=2", text=CYCLING_TEXT))
    assert second.status_code == 201
    assert second.json()["id"] != first["id"]


def test_same_url_with_different_text_is_still_the_existing_article(client):
    created = client.post("/v1/articles", json=crane()).json()
    again = client.post("/v1/articles", json=crane(text=CYCLING_TEXT, title=CYCLING_TITLE))
    assert again.status_code == 200
    assert again.json()["id"] == created["id"]
    assert again.json()["status"] == "existing"
    assert client.get(f"/v1/articles/{created['id']}").json()["title"] == CRANE_TITLE


def test_same_external_id_without_url_returns_existing_ids(client):
    body = crane(url=None, external_id="coastwire-feed:88213")
    created = client.post("/v1/articles", json=body)
    assert created.status_code == 201

    again = client.post("/v1/articles", json=body)

    assert again.status_code == 200
    assert again.json() == {**created.json(), "status": "existing"}
    assert stored_article_count(client) == 1


def test_different_external_ids_without_url_are_different_articles(client):
    first = client.post("/v1/articles", json=crane(url=None, external_id="feed:1"))
    second = client.post("/v1/articles", json=cycling(url=None, external_id="feed:2"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]


# -- POST /v1/articles: clustering ---------------------------------------------------


def test_syndicated_copy_is_marked_duplicate_of_the_original_in_the_same_cluster(client):
    original = client.post("/v1/articles", json=crane()).json()

    copy = client.post(
        "/v1/articles",
        json=crane(
            url="https://www.dailyherald.example/2024/05/14/crane-collapse-port-ellery",
            source="dailyherald.example",
            published_at="2024-05-14T10:10:00Z",
        ),
    )

    assert copy.status_code == 201
    assert copy.json()["id"] != original["id"]
    assert copy.json()["duplicate_of"] == original["id"]
    assert copy.json()["cluster_id"] == original["cluster_id"]


def test_independent_writeup_of_the_same_event_joins_its_cluster(client):
    original = client.post("/v1/articles", json=crane()).json()

    writeup = client.post("/v1/articles", json=crane_writeup())

    assert writeup.status_code == 201
    assert writeup.json()["cluster_id"] == original["cluster_id"]
    assert writeup.json()["duplicate_of"] is None


def test_unrelated_event_opens_a_different_cluster(client):
    crane_result = client.post("/v1/articles", json=crane()).json()

    other = client.post("/v1/articles", json=cycling())

    assert other.status_code == 201
    assert other.json()["cluster_id"] != crane_result["cluster_id"]
    assert other.json()["duplicate_of"] is None


# -- bad input -----------------------------------------------------------------------

JSON_HEADERS = {"Content-Type": "application/json"}
_FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat()

BAD_INPUT = [
    pytest.param(
        {"content": b'{"title": "Crane collapses", "text": ', "headers": JSON_HEADERS},
        400,
        "invalid_json",
        "JSON",
        None,
        id="malformed-json",
    ),
    pytest.param({"json": [article()]}, 400, "invalid_json", "JSON object", None, id="json-array-body"),
    pytest.param({"json": "a crane collapsed"}, 400, "invalid_json", "JSON object", None, id="json-string-body"),
    pytest.param({"json": 42}, 400, "invalid_json", "JSON object", None, id="json-number-body"),
    pytest.param(
        {"content": b"null", "headers": JSON_HEADERS}, 400, "invalid_json", "JSON object", None, id="json-null-body"
    ),
    pytest.param({"json": article(text=None)}, 422, "invalid", "text or html", None, id="missing-text-and-html"),
    pytest.param(
        {"json": article(html="<p>A crane fell.</p>")}, 422, "invalid", "text or html", None, id="both-text-and-html"
    ),
    pytest.param({"json": article(text="")}, 422, "invalid", "text must not be empty", None, id="empty-text"),
    pytest.param(
        {"json": article(text="  \n\t  \n")}, 422, "invalid", "text must not be empty", None, id="whitespace-only-text"
    ),
    pytest.param(
        {"json": article(html="   ", text=None)},
        422,
        "invalid",
        "html must not be empty",
        None,
        id="whitespace-only-html",
    ),
    pytest.param({"json": article(title=42)}, 422, "invalid", "title", "title", id="title-is-a-number"),
    pytest.param(
        {"json": article(published_at=["2024-06-18T22:00:00Z"])},
        422,
        "invalid",
        "published_at",
        "published_at",
        id="published-at-is-a-list",
    ),
    pytest.param(
        {"json": article(published_at="last Tuesday evening")},
        422,
        "invalid",
        "published_at",
        "published_at",
        id="published-at-unparseable",
    ),
    pytest.param(
        {"json": article(published_at="1989-12-31T23:59:00Z")},
        422,
        "invalid",
        "1990",
        "published_at",
        id="published-at-before-1990",
    ),
    pytest.param(
        {"json": article(published_at=_FUTURE)},
        422,
        "invalid",
        "future",
        "published_at",
        id="published-at-days-in-future",
    ),
    pytest.param(
        {"json": article(url="ftp://news.example.com/world/putin-pyongyang-visit")},
        422,
        "invalid",
        "http",
        "url",
        id="url-ftp-scheme",
    ),
    pytest.param(
        {"json": article(url="https:///world/putin-pyongyang-visit")},
        422,
        "invalid",
        "url",
        "url",
        id="url-without-host",
    ),
    pytest.param(
        {"json": article(url="news.example.com/world/putin-pyongyang-visit")},
        422,
        "invalid",
        "url",
        "url",
        id="url-relative",
    ),
    pytest.param(
        {"json": article(author="Jane Doe")}, 422, "invalid", "unknown field 'author'", "author", id="unknown-field"
    ),
    pytest.param(
        {"json": article(text="Russian President\x00Vladimir Putin arrived in Pyongyang.")},
        422,
        "invalid",
        "NUL",
        "text",
        id="nul-in-text",
    ),
    pytest.param({"json": article(title="Putin\x00 in Pyongyang")}, 422, "invalid", "NUL", "title", id="nul-in-title"),
    pytest.param({"json": article(source="   ")}, 422, "invalid", "source", "source", id="blank-source"),
    pytest.param(
        {"json": article(external_id="")}, 422, "invalid", "external_id", "external_id", id="empty-external-id"
    ),
    pytest.param(
        {"json": article(url="https://news.example.com/" + "a" * 2100)}, 422, "invalid", "url", "url", id="url-too-long"
    ),
    pytest.param(
        {"content": b"", "headers": JSON_HEADERS},
        400,
        "invalid_json",
        "body",
        None,
        id="empty-body",
    ),
]


@pytest.mark.parametrize(("request_kwargs", "status", "code", "mentions", "field"), BAD_INPUT)
def test_bad_article_is_rejected_with_json_error_and_stores_nothing(
    client, request_kwargs, status, code, mentions, field
):
    response = client.post("/v1/articles", **request_kwargs)

    assert response.status_code < 500
    error = assert_error(response, status, code, mentions)
    if field is not None:
        assert error.get("field") == field
    assert_nothing_stored(client)


def test_body_over_size_limit_with_content_length_is_413_and_stores_nothing(make_client):
    client = make_client(max_body_bytes=2048)
    body = json.dumps(article(text="Putin met Kim in Pyongyang. " * 200)).encode()
    assert len(body) > 5000

    response = client.post("/v1/articles", content=body, headers=JSON_HEADERS)

    assert response.request.headers["content-length"] == str(len(body))
    assert_error(response, 413, "too_large", "2048")
    assert_nothing_stored(client)


def test_body_over_size_limit_streamed_without_content_length_is_413_and_stores_nothing(make_client):
    client = make_client(max_body_bytes=2048)
    body = json.dumps(article(text="Putin met Kim in Pyongyang. " * 200)).encode()
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]

    response = client.post("/v1/articles", content=iter(chunks), headers=JSON_HEADERS)

    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too_large", "2048")
    assert_nothing_stored(client)


def test_body_under_size_limit_is_accepted(make_client):
    client = make_client(max_body_bytes=2048)
    body = json.dumps(crane(text=CRANE_TEXT[:900])).encode()
    assert len(body) < 2048
    response = client.post("/v1/articles", content=body, headers=JSON_HEADERS)
    assert response.status_code == 201


def test_batch_over_max_batch_is_413_and_stores_nothing(make_client):
    client = make_client(max_batch=3)
    items = [crane(url=f"https://coastwire.example/news/item-{i}") for i in range(4)]

    response = client.post("/v1/articles/batch", json={"articles": items})

    assert_error(response, 413, "too_large", "at most 3")
    assert_nothing_stored(client)


def test_batch_at_max_batch_is_accepted(make_client):
    client = make_client(max_batch=3)
    items = [crane(), crane_writeup(), cycling()]
    response = client.post("/v1/articles/batch", json={"articles": items})
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == ["created"] * 3


# -- POST /v1/articles/batch ---------------------------------------------------------


def test_batch_results_are_in_input_order_with_index(client):
    items = [cycling(), crane(), crane_writeup()]

    response = client.post("/v1/articles/batch", json={"articles": items})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["status"] for r in results] == ["created"] * 3
    for item, result in zip(items, results):
        stored = client.get(f"/v1/articles/{result['id']}").json()
        assert stored["url"] == item["url"]
        assert stored["cluster_id"] == result["cluster_id"]
    assert results[1]["cluster_id"] == results[2]["cluster_id"] != results[0]["cluster_id"]


def test_batch_with_bad_items_reports_each_error_and_stores_the_good_ones(client):
    items = [crane(), 5, "x", {"title": "No body at all"}, cycling(), crane_writeup(published_at="1970-01-01")]

    response = client.post("/v1/articles/batch", json={"articles": items})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["status"] for r in results] == ["created", "error", "error", "error", "created", "error"]
    for result in results:
        if result["status"] == "error":
            assert result["id"] is None and result["cluster_id"] is None
            assert result["error"]["code"] in ("invalid", "invalid_json")
            assert result["error"]["message"]
        else:
            assert result.get("error") is None
    assert "text or html" in results[3]["error"]["message"]
    assert "1990" in results[5]["error"]["message"]
    assert results[5]["error"]["field"] == "published_at"
    assert client.get(f"/v1/articles/{results[0]['id']}").json()["url"] == CRANE_URL
    assert client.get(f"/v1/articles/{results[4]['id']}").json()["url"] == cycling()["url"]
    assert stored_article_count(client) == 2


def test_batch_with_the_same_url_twice_returns_existing_for_the_second(client):
    items = [crane(), crane(url=CRANE_URL + "?utm_campaign=rss", title="Crane collapse (updated)")]

    response = client.post("/v1/articles/batch", json={"articles": items})

    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["status"] == "created"
    assert second["status"] == "existing"
    assert (second["id"], second["cluster_id"]) == (first["id"], first["cluster_id"])
    assert stored_article_count(client) == 1


def test_batch_item_already_stored_is_existing(client):
    created = client.post("/v1/articles", json=crane()).json()
    response = client.post("/v1/articles/batch", json={"articles": [cycling(), crane()]})
    results = response.json()["results"]
    assert results[1]["status"] == "existing"
    assert results[1]["id"] == created["id"]


def test_batch_syndicated_copy_is_duplicate_of_the_item_before_it(client):
    items = [crane(), crane(url="https://www.dailyherald.example/crane", source="dailyherald.example")]
    first, copy = client.post("/v1/articles/batch", json={"articles": items}).json()["results"]
    assert copy["status"] == "created"
    assert copy["duplicate_of"] == first["id"]
    assert copy["cluster_id"] == first["cluster_id"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"articles": "x"}, "articles"),
        ({}, "articles"),
        ({"articles": [], "mode": "fast"}, "mode"),
        ([article()], "JSON object"),
    ],
    ids=["articles-not-a-list", "articles-missing", "unknown-top-level-field", "array-body"],
)
def test_malformed_batch_envelope_is_rejected_and_stores_nothing(client, body, mentions):
    response = client.post("/v1/articles/batch", json=body)
    assert 400 <= response.status_code < 500
    assert mentions.lower() in response.json()["error"]["message"].lower()
    assert_nothing_stored(client)


def test_empty_batch_returns_no_results(client):
    response = client.post("/v1/articles/batch", json={"articles": []})
    assert response.status_code == 200
    assert response.json() == {"results": []}


# -- authentication ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer secretsecret"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic c2VjcmV0"},
        {"Authorization": "secret"},
    ],
    ids=["no-header", "wrong-token", "token-with-suffix", "empty-token", "basic-scheme", "no-scheme"],
)
def test_write_without_valid_bearer_is_401_when_key_is_set(make_client, headers):
    client = make_client(api_key="secret")

    response = client.post("/v1/articles", json=crane(), headers=headers)

    assert_error(response, 401, "unauthorized", "Authorization")
    assert response.headers.get("www-authenticate") == "Bearer"
    assert client.get("/v1/clusters").json()["clusters"] == []


def test_write_with_correct_bearer_is_accepted(make_client):
    client = make_client(api_key="secret")
    response = client.post("/v1/articles", json=crane(), headers={"Authorization": "Bearer secret"})
    assert response.status_code == 201


def test_batch_write_without_bearer_is_401_when_key_is_set(make_client):
    client = make_client(api_key="secret")
    response = client.post("/v1/articles/batch", json={"articles": [crane()]})
    assert_error(response, 401, "unauthorized")
    assert client.get("/v1/clusters").json()["clusters"] == []


def test_batch_write_with_correct_bearer_is_accepted(make_client):
    client = make_client(api_key="secret")
    response = client.post(
        "/v1/articles/batch", json={"articles": [crane()]}, headers={"Authorization": "Bearer secret"}
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["status"] == "created"


def test_reads_stay_open_without_bearer_when_key_is_set(make_client):
    client = make_client(api_key="secret")
    created = client.post("/v1/articles", json=crane(), headers={"Authorization": "Bearer secret"}).json()

    assert client.get(f"/v1/articles/{created['id']}").status_code == 200
    assert client.get("/v1/clusters").status_code == 200
    assert client.get(f"/v1/clusters/{created['cluster_id']}").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_writes_need_no_bearer_when_no_key_is_set(client):
    assert client.post("/v1/articles", json=crane()).status_code == 201


# -- GET /v1/articles/{id} -----------------------------------------------------------


def test_get_article_returns_the_stored_fields(client):
    created = client.post("/v1/articles", json=crane()).json()

    response = client.get(f"/v1/articles/{created['id']}")

    assert response.status_code == 200
    stored = response.json()
    assert stored["id"] == created["id"]
    assert stored["url"] == CRANE_URL
    assert stored["external_id"] is None
    assert stored["title"] == CRANE_TITLE
    assert stored["source"] == "coastwire.example"
    assert stored["language"] == "en"
    assert stored["published_at"] == "2024-05-14T09:30:00Z"
    assert stored["received_at"]
    assert stored["cluster_id"] == created["cluster_id"]
    assert stored["duplicate_of"] is None
    assert "Grace Okonkwo" in stored["text"]


def test_get_article_returns_the_canonical_url(client):
    created = client.post(
        "/v1/articles", json=crane(url="HTTPS://CoastWire.example/news/port-ellery-crane-collapse/?utm_source=x#top")
    ).json()
    assert client.get(f"/v1/articles/{created['id']}").json()["url"] == CRANE_URL


def test_get_article_text_has_menu_and_footer_lines_removed(client):
    created = client.post("/v1/articles", json=crane(text=CRANE_PAGE)).json()

    stored = client.get(f"/v1/articles/{created['id']}").json()

    for line in [*MENU_LINES, *FOOTER_LINES]:
        assert line.lstrip("\u2022 ") not in stored["text"], line
    for paragraph in CRANE_TEXT.split("\n"):
        assert paragraph in stored["text"]
    assert isinstance(stored["removed_lines"], dict)
    assert sum(stored["removed_lines"].values()) >= len(MENU_LINES) + len(FOOTER_LINES)


def test_html_article_is_stored_as_its_extracted_main_text(client):
    paragraphs = "".join(f"<p>{p}</p>" for p in CRANE_TEXT.split("\n"))
    html = (
        "<html><head><title>Crane collapse</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/news'>News</a> <a href='/sport'>Sport</a></nav>"
        f"<article><h1>{CRANE_TITLE}</h1>{paragraphs}</article>"
        "<footer>Copyright 2024 Coastwire. All rights reserved.</footer></body></html>"
    )
    created = client.post("/v1/articles", json=crane(text=None, html=html))
    assert created.status_code == 201

    stored = client.get(f"/v1/articles/{created.json()['id']}").json()

    assert "Grace Okonkwo" in stored["text"]
    assert "<p>" not in stored["text"]
    assert "All rights reserved" not in stored["text"]


def test_get_article_of_a_copy_shows_duplicate_of_and_cluster(client):
    original = client.post("/v1/articles", json=crane()).json()
    copy = client.post(
        "/v1/articles", json=crane(url="https://www.dailyherald.example/crane", source="dailyherald.example")
    ).json()

    stored = client.get(f"/v1/articles/{copy['id']}").json()

    assert stored["duplicate_of"] == original["id"]
    assert stored["cluster_id"] == original["cluster_id"]
    assert stored["source"] == "dailyherald.example"


def test_get_article_source_defaults_to_url_host_without_www(client):
    created = client.post("/v1/articles", json=crane(url="https://www.dailyherald.example/crane", source=None)).json()
    assert client.get(f"/v1/articles/{created['id']}").json()["source"] == "dailyherald.example"


def test_get_article_with_external_id_only(client):
    created = client.post("/v1/articles", json=crane(url=None, external_id="coastwire-feed:88213")).json()
    stored = client.get(f"/v1/articles/{created['id']}").json()
    assert stored["url"] is None
    assert stored["external_id"] == "coastwire-feed:88213"


def test_get_unknown_article_is_404_json_error(client):
    client.post("/v1/articles", json=crane())
    assert_error(client.get("/v1/articles/999"), 404, "not_found", "999")


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "1e3"])
def test_get_article_with_non_integer_id_is_422_json_error(client, bad_id):
    error = assert_error(client.get(f"/v1/articles/{bad_id}"), 422, "invalid", "article_id")
    assert error["field"] == "article_id"


def test_get_article_with_out_of_range_id_is_a_4xx_json_error(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/articles/99999999999999999999999")
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] in ("not_found", "invalid")


# -- health --------------------------------------------------------------------------


def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_every_check_true(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"] and all(value is True for value in body["checks"].values())
    assert {"database", "schema"} <= set(body["checks"])
