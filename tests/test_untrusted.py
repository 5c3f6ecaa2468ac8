"""Untrusted content: pages are parsed, never fetched and never run; nothing that can run
code (pickle and the like) is ever read back from the database or a cache.

A canary HTTP server on loopback stands for every address an article could point to:
its url, its images, scripts, styles, frames, redirects and external entities. The
service is fed pages full of such references and must never contact the canary.
"""

from __future__ import annotations

import ast
import pickle
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.api.factory import create_app
from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
SERVICE_CODE = sorted(p for folder in ("app", "clustering", "migrations") for p in (ROOT / folder).rglob("*.py"))

BODY = (
    "The ferry Morning Lark ran aground on a sandbank off the island of Castellan on Sunday evening, stranding "
    "214 passengers for six hours before the tide lifted her free. Coastguard officer Ruth Abernathy said nobody "
    "was hurt and the hull was not breached. Tugs from Port Varrow towed the ship back to harbour after midnight, "
    "and the operator said crossings would resume on Tuesday once divers had inspected the propellers."
)


class Canary:
    """A loopback HTTP server that records every request made to it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                canary.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(b"<html><body><p>fetched</p></body></html>")

            do_POST = do_HEAD = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    with Canary() as running:
        yield running


def _page(canary: str, *, head: str = "", before: str = "", after: str = "") -> str:
    return (
        f"<html><head><title>Ferry aground off Castellan</title>{head}</head><body>{before}"
        f"<article><h1>Ferry aground off Castellan</h1><p>{BODY}</p>"
        f"<p>Passengers were given blankets and hot drinks by the crew while they waited.</p></article>"
        f"{after}</body></html>"
    )


def _pages(c: str) -> dict[str, str]:
    """Pages whose every kind of reference points at the canary ``c``."""
    return {
        "img": _page(c, before=f'<img src="{c}/img.png" srcset="{c}/img-2x.png 2x">'),
        "script-src": _page(c, head=f'<script src="{c}/app.js"></script>'),
        "inline-script": _page(c, after=f"<script>fetch('{c}/js-ran'); document.write('pwned');</script>"),
        "stylesheet": _page(c, head=f'<link rel="stylesheet" href="{c}/site.css">'),
        "css-import": _page(
            c, head=f"<style>@import url('{c}/import.css'); body {{ background: url({c}/bg.png) }}</style>"
        ),
        "iframe": _page(c, after=f'<iframe src="{c}/frame.html"></iframe>'),
        "meta-refresh": _page(c, head=f'<meta http-equiv="refresh" content="0; url={c}/refresh">'),
        "base-href": _page(c, head=f'<base href="{c}/">', after='<img src="relative.png">'),
        "canonical": _page(c, head=f'<link rel="canonical" href="{c}/canonical"><link rel="amphtml" href="{c}/amp">'),
        "open-graph": _page(
            c, head=f'<meta property="og:url" content="{c}/og"><meta property="og:image" content="{c}/og.png">'
        ),
        "object-embed": _page(c, after=f'<object data="{c}/obj.swf"></object><embed src="{c}/embed.swf">'),
        "video-audio": _page(
            c, after=f'<video poster="{c}/poster.jpg" src="{c}/v.mp4"></video><audio src="{c}/a.mp3">'
        ),
        "svg-image": _page(c, after=f'<svg><image href="{c}/svg.png"/><use href="{c}/sprite.svg#x"/></svg>'),
        "links": _page(c, after=f'<a href="{c}/next">Next story</a> <a href="{c}/more">More</a>'),
        "form-action": _page(c, after=f'<form action="{c}/submit" method="post"><input name="q"></form>'),
        "event-handler": _page(c, before=f"<img src=x onerror=\"fetch('{c}/onerror')\">"),
        "xxe-doctype": f'<!DOCTYPE html [<!ENTITY xxe SYSTEM "{c}/xxe">]>' + _page(c, before="<p>&xxe;</p>"),
        "xxe-xml-declaration": f'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "{c}/xxe2">]>'
        + _page(c, before="<p>&xxe;</p>"),
        "xinclude": _page(c, after=f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{c}/xinclude"/>'),
    }


PAGE_KINDS = sorted(_pages("http://127.0.0.1:1"))


@pytest.fixture
def service(tmp_path) -> Iterator[TestClient]:
    """The service in this process: any fetch it made would reach the canary from here."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}", api_key=None)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


# -- never fetched ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PAGE_KINDS)
def test_html_page_is_parsed_without_fetching_anything_it_refers_to(service, canary, kind):
    page = _pages(canary.url)[kind]
    article = {"url": f"{canary.url}/article/{kind}", "title": "Ferry aground", "html": page}

    stored = service.post("/v1/articles", json=article)
    matched = service.post("/v1/match", json={"html": page})
    batched = service.post("/v1/articles/batch", json={"articles": [{**article, "url": f"{canary.url}/b/{kind}"}]})

    assert stored.status_code in (201, 422), stored.text
    assert matched.status_code in (200, 422), matched.text
    assert batched.status_code == 200, batched.text
    assert canary.requests == []


def test_article_url_is_never_fetched_for_a_text_article(service, canary):
    response = service.post("/v1/articles", json={"url": f"{canary.url}/story", "text": BODY})
    assert response.status_code == 201
    assert canary.requests == []


def test_canary_would_notice_a_fetch(canary):
    import httpx

    httpx.get(f"{canary.url}/probe", timeout=5)
    assert canary.requests == ["/probe"]


# -- never run ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["inline-script", "event-handler", "css-import"])
def test_script_and_style_never_reach_the_stored_text(service, canary, kind):
    created = service.post(
        "/v1/articles", json={"url": "https://islandnews.example/a", "html": _pages(canary.url)[kind]}
    )
    assert created.status_code == 201, created.text

    stored = service.get(f"/v1/articles/{created.json()['id']}").json()["text"]

    assert "Morning Lark" in stored
    for code in ("fetch(", "document.write", "@import", "onerror", "pwned", canary.url):
        assert code not in stored


def test_external_entity_is_never_expanded_into_the_text(service):
    page = '<!DOCTYPE html [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + _page("x", before="<p>[&xxe;]</p>")
    response = service.post("/v1/articles", json={"url": "https://islandnews.example/xxe", "html": page})
    assert response.status_code in (201, 422), response.text
    if response.status_code == 201:
        assert "root:" not in service.get(f"/v1/articles/{response.json()['id']}").json()["text"]


@pytest.mark.parametrize(
    "markup", ["<script>alert(document.cookie)</script>", "<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>']
)
def test_markup_in_a_title_is_returned_as_json_data_never_as_html(service, markup):
    created = service.post("/v1/articles", json={"url": "https://islandnews.example/t", "title": markup, "text": BODY})

    article = service.get(f"/v1/articles/{created.json()['id']}")
    cluster = service.get(f"/v1/clusters/{created.json()['cluster_id']}")

    for response in (article, cluster):
        assert response.headers["content-type"] == "application/json"
        assert "text/html" not in response.headers["content-type"]
    assert article.json()["title"] == markup
    assert cluster.json()["articles"][0]["title"] == markup


# -- nothing that runs code is read back ---------------------------------------------------------

UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle", "jsonpickle"}
UNSAFE_CALLS = {"eval", "exec", "__import__"}
UNSAFE_ATTRIBUTES = {"load", "loads", "unsafe_load", "read_pickle", "full_load"}  # on numpy, yaml, torch, pandas
UNSAFE_OWNERS = {"np", "numpy", "yaml", "torch", "pd", "pandas"}


def _refuses_pickles(call: ast.Call) -> bool:
    """``np.load(..., allow_pickle=False)``: NumPy arrays only, written out in the call."""
    return any(
        k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False for k in call.keywords
    )


def _unsafe_uses(path: Path, root: Path = ROOT) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in UNSAFE_CALLS:
                found.append(f"{func.id}(...)")
            elif (
                isinstance(func, ast.Attribute)
                and func.attr in UNSAFE_ATTRIBUTES
                and isinstance(func.value, ast.Name)
                and func.value.id in UNSAFE_OWNERS
                and not _refuses_pickles(node)
            ):
                found.append(f"{func.value.id}.{func.attr}(...)")
    return [f"{path.relative_to(root)}: {use}" for use in found]


def test_service_code_never_unpickles_or_evaluates_anything():
    assert len(SERVICE_CODE) > 10, "the service code was not found where expected"
    assert [use for path in SERVICE_CODE for use in _unsafe_uses(path)] == []


def test_the_code_inspection_sees_each_kind_of_unsafe_use(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import pickle\nfrom joblib import load\nimport numpy as np\nimport yaml\n"
        "np.load('f', allow_pickle=True)\nnp.load('g', allow_pickle=False)\nnp.load('h')\nyaml.load(s)\neval('1')\n"
    )
    assert _unsafe_uses(sample, tmp_path) == [
        f"sample.py: {use}"
        for use in (
            "import pickle",
            "from joblib import ...",
            "np.load(...)",
            "np.load(...)",
            "yaml.load(...)",
            "eval(...)",
        )
    ]


class _Trap:
    """Unpickling this touches ``marker``: proof that a pickle was loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickle_stored_as_a_signature_is_never_unpickled(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'stories.db'}"
    settings = Settings(database_url=database_url, api_key=None, index_snapshot="off")  # every start rebuilds
    armed, marker = tmp_path / "armed", tmp_path / "unpickled"
    pickle.loads(pickle.dumps(_Trap(armed), protocol=4))
    assert armed.exists()  # the trap works when something does unpickle it
    payload = pickle.dumps(_Trap(marker), protocol=4)
    payload += b"." * (128 * 4 - len(payload))  # the stored size of a signature; pickle ignores the tail
    with TestClient(create_app(settings)) as client:
        created = client.post("/v1/articles", json={"url": "https://islandnews.example/p", "text": BODY}).json()
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE articles SET signature = :p WHERE id = :i"), {"p": payload, "i": created["id"]})
    engine.dispose()

    with TestClient(create_app(settings)) as client:  # the caches are rebuilt from the database at start
        assert client.get(f"/v1/articles/{created['id']}").status_code == 200
        client.post("/v1/match", json={"text": BODY})

    assert not marker.exists()


def test_a_pickle_in_the_kept_index_is_never_unpickled(tmp_path):
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'stories.db'}", api_key=None)
    marker = tmp_path / "unpickled"
    with TestClient(create_app(settings)) as client:
        created = client.post("/v1/articles", json={"url": "https://islandnews.example/k", "text": BODY}).json()
    kept = settings.snapshot_path()
    with np.load(kept, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["story_ids"] = np.array([_Trap(marker)], dtype=object)  # saved as a pickle
    with kept.open("wb") as out:
        np.savez(out, **arrays)

    with TestClient(create_app(settings)) as client:  # the kept index is refused: rebuilt from the database
        assert client.app.state.service.index.story_of(created["id"]) == created["cluster_id"]

    assert not marker.exists()
