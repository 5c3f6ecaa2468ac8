"""Authentication: writes need the write key when one is set, reads need the read key
when one is set, the keys are compared in constant time, and a server bound to a
non-loopback address refuses to start without a key unless anonymous writes are
asked for explicitly."""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from app.api import auth
from app.api.factory import create_app
from app.config import Settings
from tests.factories import article
from tests.servers import Server, free_port, serve_command, server_environment

WRITE_KEY = "w-7f3c9a1e"
READ_KEY = "r-51d0b2aa"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# POST routes that change nothing: they are reads.
READ_ONLY_POSTS = {"/v1/match"}
# Answered without a key whatever is set: probes, metrics, the API description.
ALWAYS_OPEN = ["/healthz", "/readyz", "/openapi.json", "/docs"]

WRONG_CREDENTIALS = {
    "no-header": {},
    "wrong-token": {"Authorization": "Bearer not-the-key"},
    "key-with-suffix": {"Authorization": f"Bearer {WRITE_KEY}x"},
    "key-prefix": {"Authorization": f"Bearer {WRITE_KEY[:-1]}"},
    "key-upper-case": {"Authorization": f"Bearer {WRITE_KEY.upper()}"},
    "empty-bearer": {"Authorization": "Bearer "},
    "bearer-only": {"Authorization": "Bearer"},
    "basic-scheme": {"Authorization": f"Basic {WRITE_KEY}"},
    "no-scheme": {"Authorization": WRITE_KEY},
    "key-in-other-header": {"X-API-Key": WRITE_KEY},
    "read-key": {"Authorization": f"Bearer {READ_KEY}"},
}


def _bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def database_url(tmp_path) -> str:
    """Access control does not depend on the database: SQLite only, to keep this module quick."""
    return f"sqlite:///{tmp_path / 'stories.db'}"


@pytest.fixture
def open_app(database_url: str) -> Iterator:
    """Open a client on the test's database with these keys."""
    opened: list[TestClient] = []

    def _open(**keys: str | None) -> TestClient:
        client = TestClient(create_app(Settings(database_url=database_url, **{"api_key": None, **keys})))
        client.__enter__()
        opened.append(client)
        return client

    yield _open
    for client in reversed(opened):
        client.__exit__(None, None, None)


def _routes(methods: set[str]) -> list[tuple[str, str]]:
    """(method, path) of every documented operation with one of ``methods``."""
    paths = create_app(Settings(database_url="sqlite://", api_key=None)).openapi()["paths"]
    return sorted(
        (method.upper(), path) for path, item in paths.items() for method in item if method.upper() in methods
    )


WRITE_ROUTES = [(m, p) for m, p in _routes(MUTATING) if p not in READ_ONLY_POSTS]
READ_ROUTES = [(m, p) for m, p in _routes({"GET"}) if p.startswith("/v1/")] + [("POST", p) for p in READ_ONLY_POSTS]


def _request(client: TestClient, method: str, path: str, headers: dict) -> httpx.Response:
    """A plausible request to a route: path ids 1, an article (or a batch of one) as the
    body, or a correction placing article 1."""
    url = re.sub(r"\{[^}]+\}", "1", path)
    body = {"articles": [article()]} if path.endswith("/batch") else article()
    if path == "/v1/corrections":
        body = {"kind": "move", "article_id": 1, "editor": "desk"}
    if method in ("GET", "DELETE"):
        return client.request(method, url, headers=headers)
    return client.request(method, url, json=body, headers=headers)


def _stored_nothing(client: TestClient, headers: dict | None = None) -> bool:
    return client.get("/v1/clusters", headers=headers or {}).json()["clusters"] == []


# -- writes ---------------------------------------------------------------------------------


def test_the_service_has_write_routes_to_protect():
    assert ("POST", "/v1/articles") in WRITE_ROUTES
    assert ("POST", "/v1/articles/batch") in WRITE_ROUTES


@pytest.mark.parametrize("credentials", WRONG_CREDENTIALS.values(), ids=WRONG_CREDENTIALS.keys())
@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_every_write_without_the_right_bearer_token_is_401_and_stores_nothing(open_app, method, path, credentials):
    client = open_app(api_key=WRITE_KEY, read_api_key=READ_KEY)

    response = _request(client, method, path, credentials)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    assert _stored_nothing(client, _bearer(READ_KEY))


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
def test_write_with_the_right_bearer_token_is_accepted(open_app, method, path):
    client = open_app(api_key=WRITE_KEY)
    if method == "DELETE" or path == "/v1/corrections":  # something to take down or correct, not a 404
        assert client.post("/v1/articles", json=article(), headers=_bearer(WRITE_KEY)).status_code == 201
    response = _request(client, method, path, _bearer(WRITE_KEY))
    assert response.status_code in (200, 201), response.text


def test_bearer_scheme_name_is_case_insensitive(open_app):
    client = open_app(api_key=WRITE_KEY)
    response = client.post("/v1/articles", json=article(), headers={"Authorization": f"bearer {WRITE_KEY}"})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"title": "Putin in Pyongyang", "text": ', "application/json"),
        (b'{"text": "Putin \xff in Pyongyang"}', "application/json"),
        (b'{"text": 42}', "application/json"),
        (b'{"text": "a", "text": "b"}', "application/json"),
        (b"text=Putin", "application/x-www-form-urlencoded"),
        (b"", "application/json"),
    ],
    ids=["invalid-json", "invalid-utf8", "wrong-type", "duplicate-key", "form-body", "empty-body"],
)
def test_unauthenticated_write_with_a_broken_body_is_401_not_a_validation_error(open_app, content, content_type):
    client = open_app(api_key=WRITE_KEY)
    for path in ("/v1/articles", "/v1/articles/batch"):
        response = client.post(path, content=content, headers={"Content-Type": content_type})
        assert response.status_code == 401, (path, response.text)


def test_writes_need_no_token_when_no_write_key_is_set(open_app):
    client = open_app()
    assert client.post("/v1/articles", json=article()).status_code == 201


def test_read_key_does_not_open_writes(open_app):
    client = open_app(api_key=WRITE_KEY, read_api_key=READ_KEY)
    assert client.post("/v1/articles", json=article(), headers=_bearer(READ_KEY)).status_code == 401


# -- reads ----------------------------------------------------------------------------------


def test_the_service_has_read_routes():
    assert {("GET", "/v1/clusters"), ("GET", "/v1/articles/{article_id}"), ("POST", "/v1/match")} <= set(READ_ROUTES)


@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_reads_stay_open_when_only_the_write_key_is_set(open_app, method, path):
    client = open_app(api_key=WRITE_KEY)
    response = _request(client, method, path, {})
    assert response.status_code in (200, 404), response.text


@pytest.mark.parametrize(
    "credentials",
    [c for name, c in WRONG_CREDENTIALS.items() if name != "read-key"] + [{"Authorization": f"Bearer {READ_KEY}x"}],
    ids=[name for name in WRONG_CREDENTIALS if name != "read-key"] + ["read-key-with-suffix"],
)
@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_every_read_without_a_valid_token_is_401_when_the_read_key_is_set(open_app, method, path, credentials):
    client = open_app(read_api_key=READ_KEY)

    response = _request(client, method, path, credentials)

    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("key", [READ_KEY, WRITE_KEY], ids=["read-key", "write-key"])
@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_read_with_the_read_key_or_the_write_key_is_answered(open_app, method, path, key):
    client = open_app(api_key=WRITE_KEY, read_api_key=READ_KEY)
    client.post("/v1/articles", json=article(), headers=_bearer(WRITE_KEY))
    client.post("/v1/corrections", json={"kind": "move", "article_id": 1}, headers=_bearer(WRITE_KEY))
    response = _request(client, method, path, _bearer(key))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ALWAYS_OPEN)
def test_probes_and_api_description_stay_open_when_both_keys_are_set(open_app, path):
    client = open_app(api_key=WRITE_KEY, read_api_key=READ_KEY)
    assert client.get(path).status_code == 200


def test_unauthenticated_read_with_a_bad_parameter_is_401_not_a_validation_error(open_app):
    client = open_app(read_api_key=READ_KEY)
    assert client.get("/v1/clusters", params={"limit": "all"}).status_code == 401
    assert client.get("/v1/articles/not-a-number").status_code == 401
    assert client.post("/v1/match", content=b"{", headers={"Content-Type": "application/json"}).status_code == 401


# -- the comparison -------------------------------------------------------------------------


def test_token_is_compared_with_hmac_compare_digest_on_equal_length_digests(open_app, monkeypatch):
    client = open_app(api_key=WRITE_KEY)
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    for token in ("x", WRITE_KEY, WRITE_KEY * 40):
        client.post("/v1/articles", json=article(), headers=_bearer(token))

    assert len(calls) == 3
    assert all(len(a) == len(b) == hashlib.sha256().digest_size for a, b in calls)


@pytest.mark.parametrize(
    ("token", "expected"),
    [(WRITE_KEY, True), (READ_KEY, True), ("", False), (None, False), (WRITE_KEY + " ", False), ("w", False)],
)
def test_token_matches_any_of_the_keys_and_nothing_else(token, expected):
    assert auth.token_matches(token, SecretStr(WRITE_KEY), None, SecretStr(READ_KEY)) is expected


def test_token_matches_nothing_when_no_key_is_given():
    assert auth.token_matches("anything") is False


# -- keys that cannot protect anything are refused ----------------------------------------------


@pytest.mark.parametrize("variable", ["api_key", "read_api_key"])
@pytest.mark.parametrize("key", ["", "two words", " leading", "tab\tkey", "caf\u00e9", "line\nbreak"])
def test_unusable_key_is_refused_at_start(variable, key):
    with pytest.raises(ValidationError, match=f"STORIES_{variable.upper()}"):
        Settings(**{variable: key})


def test_empty_write_key_in_the_environment_does_not_open_a_public_server(monkeypatch):
    monkeypatch.setenv("STORIES_API_KEY", "")
    monkeypatch.setenv("STORIES_HOST", "0.0.0.0")
    with pytest.raises(ValidationError, match="must not be empty"):
        Settings()


# -- binding to a non-loopback address ---------------------------------------------------------


def _serve(host: str, tmp_path, **settings: str) -> subprocess.CompletedProcess:
    env = server_environment(f"sqlite:///{tmp_path / 'stories.db'}", **settings)
    return subprocess.run(serve_command(host, free_port()), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "stories.internal"])
def test_server_on_a_non_loopback_address_refuses_to_start_without_a_key(tmp_path, host):
    finished = _serve(host, tmp_path)
    assert finished.returncode != 0
    assert "refusing to serve" in finished.stderr and "STORIES_API_KEY" in finished.stderr
    assert not (tmp_path / "stories.db").exists()  # it stopped before touching the database


def test_server_with_an_empty_key_refuses_to_start(tmp_path):
    finished = _serve("0.0.0.0", tmp_path, api_key="")
    assert finished.returncode != 0
    assert "STORIES_API_KEY" in finished.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "write_status"),
    [({"api_key": WRITE_KEY}, 401), ({"allow_anonymous_writes": "true"}, 201)],
    ids=["with-a-key", "anonymous-writes-explicitly-allowed"],
)
def test_server_on_all_interfaces_starts_with_a_key_or_explicit_anonymous_writes(tmp_path, settings, write_status):
    server = Server(f"sqlite:///{tmp_path / 'stories.db'}", tmp_path / "server.log", host="0.0.0.0", **settings)
    with server:  # probed and posted to over loopback only
        response = httpx.post(f"{server.url}/v1/articles", json=article(), timeout=30)
    assert response.status_code == write_status


# -- the same rule, whatever starts the app ---------------------------------------------------


def test_the_app_refuses_to_start_with_a_public_host_setting_and_no_key(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}", host="0.0.0.0", api_key=None)
    app = create_app(settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(SystemExit, match="refusing to serve on 0.0.0.0 without STORIES_API_KEY"):
        asyncio.run(start())
    assert not (tmp_path / "stories.db").exists()  # refused before touching the database


@pytest.mark.parametrize("address", ["192.0.2.10", "[2001:db8::1]"])
def test_an_anonymous_write_that_arrives_from_outside_is_refused(settings, address):
    """``uvicorn app.main:app --host 0.0.0.0`` leaves STORIES_HOST at its default: the
    app then holds each write that reached it on a public address to the same rule."""
    with TestClient(create_app(settings), base_url=f"http://{address}") as client:
        refused = client.post("/v1/articles", json=article())
        assert refused.status_code == 403
        assert "STORIES_API_KEY" in refused.json()["error"]["message"]
        assert client.get("/v1/clusters").status_code == 200  # reads stay open
    with TestClient(create_app(settings)) as local:
        assert local.get("/v1/clusters").json()["clusters"] == []  # nothing was stored


def test_anonymous_writes_from_outside_are_taken_when_explicitly_allowed(database_url):
    settings = Settings(database_url=database_url, api_key=None, allow_anonymous_writes=True)
    with TestClient(create_app(settings), base_url="http://192.0.2.10") as client:
        assert client.post("/v1/articles", json=article()).status_code == 201


def test_a_keyed_write_from_outside_is_taken(database_url):
    settings = Settings(database_url=database_url, api_key=WRITE_KEY)
    with TestClient(create_app(settings), base_url="http://192.0.2.10") as client:
        headers = {"Authorization": f"Bearer {WRITE_KEY}"}
        assert client.post("/v1/articles", json=article(), headers=headers).status_code == 201
