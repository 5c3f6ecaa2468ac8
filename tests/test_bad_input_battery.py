"""Bad input, exhaustively: hundreds of malformed requests against a real server.

Every request here is wrong in one way. Each must get a 4xx JSON error
``{"error": {"code", "message", "field"?}}`` whose message names the problem, never a
5xx, and must leave the database exactly as it was: the same rows, the same sequence
positions, and on SQLite the same bytes in the database and WAL files. A batch answers
per item: the bad items get their own error entries, and in a mixed batch only the
good items are stored, exactly as if they had been posted alone.

The server is ``stories serve`` (uvicorn, as in production) with a write key set, one
per database kind, seeded with a few articles; requests go over loopback only.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

from app.api.factory import create_app
from app.api.schemas import MAX_LINES, MAX_TEXT_CHARS, MAX_WORD_CHARS
from app.config import Settings
from tests.servers import Server, fresh_database

KEY = "battery-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json", **AUTH}
MAX_BODY = 5_000_000  # the documented default of STORIES_MAX_BODY_BYTES
MAX_BATCH = 500  # the documented default of STORIES_MAX_BATCH

# -- articles written for these tests -------------------------------------------------

GOOD_TEXT = (
    "The ferry Morning Lark ran aground on a sandbank off the island of Castellan on Sunday evening, "
    "stranding 214 passengers for six hours before the tide lifted her free.\n"
    "Coastguard officer Ruth Abernathy said nobody was hurt and the hull was not breached. Tugs from "
    "Port Varrow towed the ship back to harbour shortly after midnight.\n"
    "The operator, Island Link Ferries, said the crossing would resume on Tuesday after divers inspected "
    "the propellers."
)


def good(**overrides) -> dict:
    """A valid article; every bad case below breaks one thing about it."""
    body = {
        "url": "https://islandnews.example/2024/ferry-aground-castellan",
        "title": "Ferry runs aground off Castellan with 214 passengers aboard",
        "text": GOOD_TEXT,
        "source": "islandnews.example",
        "published_at": "2024-03-10T19:40:00Z",
        "language": "en",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


SEED = [
    good(url="https://islandnews.example/seed/ferry", external_id="seed-1"),
    good(
        url="https://mainland-post.example/seed/bridge",
        source="mainland-post.example",
        title="Bridge over the Tallow reopens after repairs",
        text=(
            "The Tallow bridge reopened to traffic on Monday after eight months of repairs to its steel deck, "
            "the county roads department said.\n"
            "Engineers replaced 40 expansion joints and resurfaced the carriageway. Chief engineer Marta Quist "
            "said the bridge would last another fifty years."
        ),
        published_at="2024-03-11T08:00:00Z",
    ),
    good(
        url=None,
        external_id="feed:seed-3",
        html="<html><body><article><h1>Library opens</h1><p>The new "
        "public library in Oxbury opened on Saturday with forty thousand books and a rooftop garden, the town "
        "council said.</p><p>Mayor Elin Tarrow cut the ribbon.</p></article></body></html>",
        text=None,
    ),
]


def _json_bytes(value: object) -> bytes:
    # ensure_ascii keeps lone surrogates as \ud800 escapes: valid JSON text, invalid Unicode
    return json.dumps(value).encode()


# -- the cases ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One malformed request and what its error must say."""

    name: str
    status: int
    mentions: tuple[str, ...]  # the message names the problem: it contains one of these (any case)
    method: str = "POST"
    path: str = "/v1/articles"
    content: bytes | None = None
    headers: dict = field(default_factory=lambda: dict(JSON))
    params: dict | None = None
    field: str | None = None
    chunked: bool = False  # stream the body without Content-Length
    item: dict | None = None  # the article object, when the case is one bad article (reused in batches)


def raw(name: str, content: bytes, status: int, *mentions: str, **kw) -> Case:
    return Case(name, status, mentions, content=content, **kw)


def bad_article(name: str, article: dict, *mentions: str, field: str | None = None, status: int = 422) -> Case:
    return Case(name, status, mentions, content=_json_bytes(article), field=field, item=article)


FUTURE = datetime.now(UTC) + timedelta(days=2)
FIELDS = ("url", "external_id", "title", "text", "html", "source", "published_at", "language")

CASES: list[Case] = []

# Not JSON at all, or JSON that parsers disagree on.
CASES += [
    raw("json-empty-body", b"", 400, "body is required"),
    raw("json-whitespace-body", b"  \n\t ", 400, "JSON"),
    raw("json-truncated-object", b'{"title": "Ferry aground", "text": ', 400, "JSON"),
    raw("json-unclosed-string", b'{"title": "Ferry aground', 400, "JSON"),
    raw("json-trailing-comma", b'{"text": "Ferry aground off Castellan",}', 400, "JSON"),
    raw("json-single-quotes", b"{'text': 'Ferry aground off Castellan'}", 400, "JSON"),
    raw("json-unquoted-key", b'{text: "Ferry aground off Castellan"}', 400, "JSON"),
    raw("json-comment", b'{"text": "Ferry aground" /* note */}', 400, "JSON"),
    raw("json-bare-word", b"ferry", 400, "JSON"),
    raw("json-missing-value", b'{"text": }', 400, "JSON"),
    raw("json-missing-colon", b'{"text" "Ferry aground"}', 400, "JSON"),
    raw("json-two-objects", b'{"text": "a"}{"text": "b"}', 400, "JSON"),
    raw("json-only-open-brace", b"{", 400, "JSON"),
    raw("json-only-close-brace", b"}", 400, "JSON"),
    raw("json-only-open-bracket", b"[", 400, "JSON"),
    raw("json-invalid-escape", b'{"text": "Ferry \\x41 aground"}', 400, "JSON"),
    raw("json-short-unicode-escape", b'{"text": "Ferry \\u12 aground"}', 400, "JSON"),
    raw("json-raw-newline-in-string", b'{"text": "Ferry\naground off Castellan"}', 400, "JSON"),
    raw("json-raw-tab-in-string", b'{"text": "Ferry\taground off Castellan"}', 400, "JSON"),
    raw("json-raw-nul-byte", b'{"text": "Ferry\x00aground"}', 400, "JSON"),
    raw("json-nested-100000-deep", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply", "JSON"),
    raw("json-object-nested-50000-deep", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, 400, "nested too deeply", "JSON"),
    raw("json-integer-5000-digits", b'{"title": 1' + b"0" * 5000 + b"}", 400, "digits"),
    raw("json-nan", b'{"text": "Ferry aground off Castellan", "title": NaN}', 400, "NaN"),
    raw("json-infinity", b'{"text": "Ferry aground off Castellan", "title": Infinity}', 400, "Infinity"),
    raw("json-minus-infinity", b'{"text": "Ferry aground off Castellan", "title": -Infinity}', 400, "Infinity"),
    raw("json-null-body", b"null", 400, "JSON object"),
    raw("json-true-body", b"true", 400, "JSON object"),
    raw("json-number-body", b"42", 400, "JSON object"),
    raw("json-string-body", b'"Ferry aground off Castellan"', 400, "JSON object"),
    raw("json-empty-array-body", b"[]", 400, "JSON object"),
    raw("json-array-of-article-body", _json_bytes([good()]), 400, "JSON object"),
]
for duplicated in ("text", "url", "title", "published_at", "source"):
    body = json.dumps(good())[:-1] + f', "{duplicated}": {json.dumps(good()[duplicated])}}}'
    CASES.append(raw(f"json-duplicate-key-{duplicated}", body.encode(), 400, f"key '{duplicated}' appears twice"))

# Bytes that are not UTF-8, and escapes that are not Unicode.
CASES += [
    raw("utf8-invalid-byte-ff", b'{"text": "Ferry \xff aground off Castellan"}', 400, "UTF-8"),
    raw("utf8-invalid-byte-fe", b'{"text": "Ferry \xfe aground off Castellan"}', 400, "UTF-8"),
    raw("utf8-latin1-e-acute", b'{"text": "Caf\xe9 owners on Castellan protest ferry fares"}', 400, "UTF-8"),
    raw("utf8-overlong-slash", b'{"text": "Ferry \xc0\xaf aground"}', 400, "UTF-8"),
    raw("utf8-truncated-sequence", b'{"text": "Ferry \xe2\x82 aground"}', 400, "UTF-8"),
    raw("utf8-lone-continuation", b'{"text": "Ferry \x80 aground"}', 400, "UTF-8"),
    raw("utf8-encoded-surrogate", b'{"text": "Ferry \xed\xa0\x80 aground"}', 422, "unicode", field="text"),
    raw("utf8-beyond-unicode", b'{"text": "Ferry \xf4\x90\x80\x80 aground"}', 400, "UTF-8"),
]
for name in ("text", "title", "source", "external_id", "url", "html"):
    value = {"url": "https://islandnews.example/\ud800"}.get(name, "Ferry \ud800 aground off Castellan")
    article = good(**{name: value}, **({"text": None} if name == "html" else {}))
    CASES.append(bad_article(f"unicode-lone-surrogate-in-{name}", article, name, "unicode", field=name))

# NUL characters, escaped so the JSON itself is valid.
for name in FIELDS:
    if name == "published_at":
        article = good(published_at="2024-03-10T19:40:00\u0000Z")
    elif name == "url":
        article = good(url="https://islandnews.example/ferry\u0000aground")
    elif name == "html":
        article = good(text=None, html="<p>Ferry\u0000 aground off Castellan</p>")
    else:
        article = good(**{name: "Ferry\u0000aground"}) if name != "text" else good(text=GOOD_TEXT + "\u0000")
    CASES.append(bad_article(f"nul-in-{name}", article, "NUL", "published_at", field=name))

# Control characters: none but tab, line feed and carriage return in text.
CONTROLS = [c for c in range(1, 32) if c not in (9, 10, 13)] + [127]
for code in CONTROLS:
    article = good(text=GOOD_TEXT.replace("stranding", f"strand{chr(code)}ing"))
    CASES.append(bad_article(f"control-U+{code:04X}-in-text", article, f"U+{code:04X}", field="text"))
for name, value in [
    ("title", "Ferry \x1b[31maground\x1b[0m"),
    ("title", "Ferry aground\x07"),
    ("html", "<p>Ferry aground off \x08Castellan</p>"),
    ("source", "islandnews\x1b.example"),
    ("source", "islandnews\n.example"),
    ("external_id", "feed:\x0c42"),
    ("external_id", "feed:\t42"),
    ("language", "e\x7fn"),
    ("language", "en\r\n"),
    ("url", "https://islandnews.example/ferry\naground"),
    ("url", "https://islandnews.example/ferry\taground"),
    ("url", "https://islandnews.example/ferry\x7f"),
]:
    overrides = {name: value, **({"text": None} if name == "html" else {})}
    code = next(c for c in value if ord(c) < 32 or ord(c) == 127)
    CASES.append(
        bad_article(f"control-U+{ord(code):04X}-in-{name}", good(**overrides), f"U+{ord(code):04X}", field=name)
    )

# Wrong types.
WRONG = {
    "number": 42,
    "float": 4.2,
    "true": True,
    "false": False,
    "list": ["Ferry aground"],
    "object": {"value": "Ferry aground"},
}
for name in FIELDS:
    for type_name, value in WRONG.items():
        overrides = {name: value, **({"text": None} if name == "html" else {})}
        mentions = (name, "string") if name != "published_at" else ("published_at", "ISO 8601")
        CASES.append(bad_article(f"type-{name}-is-{type_name}", good(**overrides), *mentions, field=name))

# Missing, empty, blank or doubled bodies.
CASES += [
    bad_article("text-and-html-missing", good(text=None), "exactly one of text or html"),
    bad_article("text-and-html-null", {**good(text=None), "text": None, "html": None}, "exactly one of text or html"),
    bad_article("text-and-html-both", good(html="<p>Ferry aground</p>"), "exactly one of text or html"),
    bad_article("text-and-html-both-empty", good(text="", html=""), "exactly one of text or html"),
    bad_article("text-empty", good(text=""), "text must not be empty"),
    bad_article("text-one-space", good(text=" "), "text must not be empty"),
    bad_article("text-whitespace-lines", good(text="  \n\t \r\n  "), "text must not be empty"),
    bad_article("text-unicode-spaces", good(text="\u00a0\u2003\u3000"), "text must not be empty"),
    bad_article("html-empty", good(text=None, html=""), "html must not be empty"),
    bad_article("html-whitespace", good(text=None, html=" \n "), "html must not be empty"),
    bad_article(
        "html-script-only",
        good(text=None, html="<html><body><script>var x = 1;</script></body></html>"),
        "no article text could be extracted",
    ),
    bad_article(
        "html-tags-only",
        good(text=None, html="<html><body><div></div><p></p></body></html>"),
        "no article text could be extracted",
    ),
    bad_article("html-angle-garbage", good(text=None, html="<<<>>>&&&;;;"), "no article text could be extracted"),
    bad_article("text-punctuation-only", good(text="!!! ??? ... ,,, ---"), "no words"),
    bad_article("text-emoji-only", good(text="\U0001f6a2 \U0001f30a \U0001f6a8"), "no words"),
    bad_article("empty-object", {}, "exactly one of text or html"),
]

# Sizes: one enormous word, too many lines, too many characters.
CASES += [
    bad_article("text-single-1mb-token", good(text="ferry" * 200_000), "1000000-character word", field="text"),
    bad_article(
        "text-word-just-over-limit",
        good(text=GOOD_TEXT + " " + "x" * (MAX_WORD_CHARS + 1)),
        f"{MAX_WORD_CHARS + 1}-character word",
        field="text",
    ),
    bad_article(
        "text-100000-short-lines", good(text="\n".join(f"l{i}" for i in range(100_000))), "100000 lines", field="text"
    ),
    bad_article(
        "text-100000-lines-of-words",
        good(text="\n".join(f"Ferry line {i}" for i in range(100_000))),
        "100000 lines",
        field="text",
    ),
    bad_article("text-100000-empty-lines", good(text=GOOD_TEXT + "\n" * 100_000), "lines", field="text"),
    bad_article(
        "text-lines-just-over-limit",
        good(text="\n".join(["Ferry aground"] * (MAX_LINES + 1))),
        f"{MAX_LINES + 1} lines",
        field="text",
    ),
    bad_article(
        "text-line-separators-u2028",
        good(text="\u2028".join(["Ferry aground"] * (MAX_LINES + 1))),
        "lines",
        field="text",
    ),
    bad_article(
        "text-over-max-chars",
        good(text=("Ferry aground off Castellan. " * 80_000)[: MAX_TEXT_CHARS + 10]),
        str(MAX_TEXT_CHARS),
        field="text",
    ),
    bad_article(
        "html-over-max-chars",
        good(text=None, html="<p>" + "Ferry aground. " * 140_000 + "</p>"),
        str(MAX_TEXT_CHARS),
        field="html",
    ),
    bad_article("title-over-1000-chars", good(title="Ferry " * 200), "1000", field="title"),
    bad_article("language-over-16-chars", good(language="en-GB-x-castellan-dialect"), "16", field="language"),
    bad_article("language-one-char", good(language="e"), "2", field="language"),
    bad_article("source-over-512-chars", good(source="s" * 513), "512", field="source"),
    bad_article("external-id-over-512-chars", good(external_id="e" * 513), "512", field="external_id"),
]

# Dates.
CASES += [
    bad_article("date-two-days-ahead", good(published_at=FUTURE.isoformat()), "future", field="published_at"),
    bad_article(
        "date-next-year", good(published_at=(FUTURE + timedelta(days=365)).isoformat()), "future", field="published_at"
    ),
    bad_article("date-year-9999", good(published_at="9999-12-31T23:59:59Z"), "future", field="published_at"),
    bad_article("date-1989", good(published_at="1989-12-31T23:59:59Z"), "1990", field="published_at"),
    bad_article("date-1970-epoch", good(published_at="1970-01-01T00:00:00Z"), "1990", field="published_at"),
    bad_article("date-1900", good(published_at="1900-06-01"), "1990", field="published_at"),
    bad_article("date-year-1", good(published_at="0001-01-01T00:00:00Z"), "1990", field="published_at"),
    bad_article(
        "date-year-1-east-of-utc", good(published_at="0001-01-01T00:00:00+14:00"), "out of range", field="published_at"
    ),
    bad_article(
        "date-year-9999-west-of-utc",
        good(published_at="9999-12-31T23:59:59-14:00"),
        "out of range",
        field="published_at",
    ),
    bad_article(
        "date-1990-just-before-in-utc", good(published_at="1990-01-01T00:30:00+01:00"), "1990", field="published_at"
    ),
    bad_article("date-words", good(published_at="last Sunday evening"), "published_at", field="published_at"),
    bad_article("date-month-13", good(published_at="2024-13-01T00:00:00Z"), "month", field="published_at"),
    bad_article("date-february-30", good(published_at="2024-02-30T00:00:00Z"), "published_at", field="published_at"),
    bad_article("date-hour-25", good(published_at="2024-03-10T25:00:00Z"), "published_at", field="published_at"),
    bad_article(
        "date-offset-25-hours", good(published_at="2024-03-10T19:40:00+25:00"), "published_at", field="published_at"
    ),
    bad_article("date-day-first", good(published_at="10/03/2024"), "published_at", field="published_at"),
    bad_article("date-english", good(published_at="March 10, 2024"), "published_at", field="published_at"),
    bad_article("date-empty-string", good(published_at=""), "published_at", field="published_at"),
    bad_article("date-unix-seconds-string", good(published_at="1710099600"), "ISO 8601", field="published_at"),
    bad_article("date-year-only-string", good(published_at="2024"), "ISO 8601", field="published_at"),
    bad_article("date-year-10000", good(published_at="10000-01-01T00:00:00Z"), "published_at", field="published_at"),
]

# URLs that are not absolute http(s) URLs.
for name, url, mention in [
    ("ftp", "ftp://islandnews.example/ferry", "http"),
    ("file", "file:///etc/passwd", "http"),
    ("javascript", "javascript:alert(document.cookie)", "http"),
    ("data", "data:text/html,<script>alert(1)</script>", "http"),
    ("mailto", "mailto:desk@islandnews.example", "http"),
    ("gopher", "gopher://islandnews.example/1", "http"),
    ("websocket", "ws://islandnews.example/live", "http"),
    ("scheme-relative", "//islandnews.example/ferry", "http"),
    ("relative-path", "/2024/ferry-aground", "http"),
    ("no-scheme", "islandnews.example/ferry", "http"),
    ("scheme-only", "https://", "http"),
    ("no-host", "https:///ferry", "http"),
    ("backslashes", "http:\\\\islandnews.example\\ferry", "http"),
    ("missing-colon", "https//islandnews.example/ferry", "http"),
    ("typo-scheme", "htps://islandnews.example/ferry", "http"),
    ("space-in-host", "https://island news.example/ferry", "space"),
    ("space-in-path", "https://islandnews.example/ferry aground", "space"),
    ("port-out-of-range", "https://islandnews.example:99999/ferry", "port"),
    ("port-not-a-number", "https://islandnews.example:http/ferry", "port"),
    ("broken-ipv6", "http://[::1/ferry", "IPv6"),
    ("empty", "", "http"),
    ("blank", "   ", "http"),
    ("too-long", "https://islandnews.example/" + "a" * 2100, "2048"),
    ("too-long-once-canonical", "https://islandnews.example/f?q=" + "\u00e9" * 1000, "canonicalised"),
    ("host-over-253-chars", "https://" + "a" * 250 + ".example/ferry", "253"),
]:
    CASES.append(bad_article(f"url-{name}", good(url=url), mention, field="url"))

# SQL and HTML injection, where they make the request invalid: refused, and nothing runs.
for name, overrides, mention, where in [
    ("sql-in-url", {"url": "https://islandnews.example/x' OR '1'='1"}, "space", "url"),
    ("sql-in-url-comment", {"url": "https://islandnews.example/x';DROP TABLE articles;--"}, None, None),
    ("sql-in-date", {"published_at": "2024-03-10'; DROP TABLE articles; --"}, "published_at", "published_at"),
    ("sql-in-language", {"language": "en'); DELETE FROM clusters; --"}, "16", "language"),
    ("sql-union-in-source-too-long", {"source": "x' UNION SELECT * FROM articles -- " * 20}, "512", "source"),
    ("html-script-in-url", {"url": "javascript:<script>alert(1)</script>"}, "http", "url"),
    ("html-img-onerror-in-date", {"published_at": "<img src=x onerror=alert(1)>"}, "published_at", "published_at"),
    ("html-script-in-language", {"language": "<script>alert(1)</script>"}, "16", "language"),
    ("html-svg-onload-in-url", {"url": "https://islandnews.example/<svg onload=alert(1)>"}, "space", "url"),
]:
    if mention is None:  # a legitimate if odd URL: injection in the title instead, with no body
        CASES.append(
            bad_article(
                f"injection-{name}", good(text=None, title="'; DROP TABLE articles; --"), "exactly one of text or html"
            )
        )
        continue
    CASES.append(bad_article(f"injection-{name}", good(**overrides), mention, field=where))

# Unknown fields: rejected, never silently ignored.
for name in (
    "author",
    "Title",
    "body",
    "content",
    "id",
    "cluster_id",
    "duplicate_of",
    "status",
    "__proto__",
    "constructor",
    "",
    "text ",
    "published",
):
    CASES.append(
        bad_article(
            f"unknown-field-{name.strip() or 'empty'}{'-trailing-space' if name.endswith(' ') else ''}",
            good(**{name: "Jane Doe"}),
            f"unknown field '{name}'",
        )
    )

# Bodies over the size limit, with and without Content-Length.
OVERSIZE = _json_bytes(good(text="Ferry aground off Castellan. " * (MAX_BODY // 29 + 10)))
assert len(OVERSIZE) > MAX_BODY
CASES += [
    raw("size-over-limit-with-content-length", OVERSIZE, 413, str(MAX_BODY)),
    raw("size-over-limit-chunked-without-content-length", OVERSIZE, 413, str(MAX_BODY), chunked=True),
    raw("size-far-over-limit-chunked", OVERSIZE * 2, 413, str(MAX_BODY), chunked=True),
    raw(
        "size-batch-over-limit-with-content-length",
        _json_bytes({"articles": [good()] * 10_000}),
        413,
        str(MAX_BODY),
        path="/v1/articles/batch",
    ),
    raw(
        "size-batch-over-limit-chunked",
        _json_bytes({"articles": [good()] * 10_000}),
        413,
        str(MAX_BODY),
        path="/v1/articles/batch",
        chunked=True,
    ),
    raw("size-match-over-limit", OVERSIZE, 413, str(MAX_BODY), path="/v1/match"),
]

# Content types other than JSON.
CASES += [
    raw("content-type-missing", _json_bytes(good()), 400, "Content-Type: application/json", headers=dict(AUTH)),
    raw(
        "content-type-text-plain",
        _json_bytes(good()),
        400,
        "Content-Type: application/json",
        headers={"Content-Type": "text/plain", **AUTH},
    ),
    raw(
        "content-type-form",
        b"text=Ferry+aground&title=Ferry",
        400,
        "Content-Type: application/json",
        headers={"Content-Type": "application/x-www-form-urlencoded", **AUTH},
    ),
    raw(
        "content-type-xml",
        b"<article><text>Ferry aground</text></article>",
        400,
        "Content-Type: application/json",
        headers={"Content-Type": "application/xml", **AUTH},
    ),
]

# Batches that are wrong as a whole.
BATCH = "/v1/articles/batch"
CASES += [
    raw(
        "batch-one-over-max",
        _json_bytes({"articles": [good()] * (MAX_BATCH + 1)}),
        413,
        f"at most {MAX_BATCH}",
        path=BATCH,
    ),
    raw(
        "batch-ten-times-max",
        _json_bytes({"articles": [{}] * (MAX_BATCH * 10)}),
        413,
        f"at most {MAX_BATCH}",
        path=BATCH,
    ),
    raw("batch-articles-missing", _json_bytes({}), 422, "'articles' is required", path=BATCH, field="articles"),
    raw("batch-articles-null", _json_bytes({"articles": None}), 422, "articles", path=BATCH, field="articles"),
    raw(
        "batch-articles-string",
        _json_bytes({"articles": "Ferry aground"}),
        422,
        "articles",
        path=BATCH,
        field="articles",
    ),
    raw("batch-articles-object", _json_bytes({"articles": good()}), 422, "articles", path=BATCH, field="articles"),
    raw(
        "batch-unknown-top-level-field",
        _json_bytes({"articles": [], "mode": "fast"}),
        422,
        "unknown field 'mode'",
        path=BATCH,
        field="mode",
    ),
    raw("batch-array-body", _json_bytes([good()]), 400, "JSON object", path=BATCH),
    raw("batch-invalid-json", b'{"articles": [', 400, "JSON", path=BATCH),
    raw(
        "batch-duplicate-key-in-item",
        b'{"articles": [{"text": "a b c", "text": "d e f"}]}',
        400,
        "key 'text' appears twice",
        path=BATCH,
    ),
    raw("batch-invalid-utf8", b'{"articles": [{"text": "Ferry \xff"}]}', 400, "UTF-8", path=BATCH),
]

# Dry-run matching takes the same article and refuses the same things.
MATCH = "/v1/match"
CASES += [
    raw("match-invalid-json", b'{"text": ', 400, "JSON", path=MATCH),
    raw("match-empty-body", b"", 400, "body is required", path=MATCH),
    Case(
        "match-both-text-and-html",
        422,
        ("exactly one of text or html",),
        path=MATCH,
        content=_json_bytes(good(html="<p>x</p>")),
    ),
    Case(
        "match-control-character",
        422,
        ("U+001B",),
        path=MATCH,
        field="text",
        content=_json_bytes(good(text="Ferry \x1b aground off Castellan")),
    ),
    Case(
        "match-date-in-future",
        422,
        ("future",),
        path=MATCH,
        field="published_at",
        content=_json_bytes(good(published_at=FUTURE.isoformat())),
    ),
    Case("match-url-not-http", 422, ("http",), path=MATCH, field="url", content=_json_bytes(good(url="ftp://x/y"))),
    Case(
        "match-unknown-field",
        422,
        ("unknown field 'author'",),
        path=MATCH,
        field="author",
        content=_json_bytes(good(author="Jane Doe")),
    ),
    Case(
        "match-1mb-token",
        422,
        ("character word",),
        path=MATCH,
        field="text",
        content=_json_bytes(good(text="x" * 1_000_000)),
    ),
]

# Methods that are not served.
CASES += [
    Case("method-put-articles", 405, ("not allowed",), method="PUT", content=_json_bytes(good())),
    Case("method-patch-articles", 405, ("not allowed",), method="PATCH", content=_json_bytes(good())),
    Case("method-delete-articles-collection", 405, ("not allowed",), method="DELETE"),
    Case("method-get-batch", 405, ("not allowed",), method="GET", path=BATCH),
    Case("method-put-batch", 405, ("not allowed",), method="PUT", path=BATCH, content=_json_bytes({"articles": []})),
    Case("method-get-match", 405, ("not allowed",), method="GET", path=MATCH),
    Case("method-post-clusters", 405, ("not allowed",), path="/v1/clusters", content=_json_bytes({})),
]

# Reads with bad paths and parameters.
GET = {"method": "GET", "headers": dict(AUTH)}
for name, path, status, mention, where in [
    ("article-id-word", "/v1/articles/ferry", 422, "article_id", "article_id"),
    ("article-id-float", "/v1/articles/1.5", 422, "article_id", "article_id"),
    ("article-id-exponent", "/v1/articles/1e3", 422, "article_id", "article_id"),
    ("article-id-zero", "/v1/articles/0", 422, "article_id", "article_id"),
    ("article-id-negative", "/v1/articles/-1", 422, "article_id", "article_id"),
    ("article-id-over-int64", "/v1/articles/9223372036854775808", 422, "article_id", "article_id"),
    ("article-id-sql", "/v1/articles/1%20OR%201=1", 422, "article_id", "article_id"),
    ("article-id-unknown", "/v1/articles/999999", 404, "999999", None),
    ("cluster-id-word", "/v1/clusters/ferry", 422, "cluster_id", "cluster_id"),
    ("cluster-id-negative", "/v1/clusters/-5", 422, "cluster_id", "cluster_id"),
    ("cluster-id-over-int64", "/v1/clusters/99999999999999999999", 422, "cluster_id", "cluster_id"),
    ("cluster-id-unknown", "/v1/clusters/999999", 404, "999999", None),
    ("unknown-path", "/v1/stories", 404, "not found", None),
]:
    CASES.append(Case(f"read-{name}", status, (mention,), path=path, field=where, **GET))
for name, params, mention, where in [
    ("limit-zero", {"limit": "0"}, "limit", "limit"),
    ("limit-over-200", {"limit": "201"}, "limit", "limit"),
    ("limit-word", {"limit": "all"}, "limit", "limit"),
    ("limit-sql", {"limit": "1; DROP TABLE clusters"}, "limit", "limit"),
    ("sort-unknown", {"sort": "random"}, "sort", "sort"),
    ("sort-sql", {"sort": "latest; DROP TABLE clusters"}, "sort", "sort"),
    ("min-articles-zero", {"min_articles": "0"}, "min_articles", "min_articles"),
    ("min-articles-huge", {"min_articles": "99999999999999"}, "min_articles", "min_articles"),
    ("since-words", {"since": "yesterday"}, "since", "since"),
    ("since-number", {"since": "0.5"}, "ISO 8601", "since"),
    ("since-overflows-utc", {"since": "9999-12-31T23:59:59-23:59"}, "out of range", "since"),
    ("until-overflows-utc", {"until": "0001-01-01T00:00:00+14:00"}, "out of range", "until"),
    ("until-month-13", {"until": "2024-13-01"}, "until", "until"),
    ("cursor-garbage", {"cursor": "not-a-cursor"}, "cursor", "cursor"),
    ("cursor-sql", {"cursor": "' OR 1=1 --"}, "cursor", "cursor"),
    ("cursor-nul", {"cursor": "abc\x00def"}, "NUL", "cursor"),
    ("cursor-too-long", {"cursor": "c" * 513}, "512", "cursor"),
    (
        "cursor-forged-time-overflows",
        {"cursor": "WyJsYXRlc3QiLCI5OTk5LTEyLTMxVDIzOjU5OjU5LTIzOjU5IiwxXQ"},
        "cursor",
        "cursor",
    ),
    (
        "cursor-other-sort",
        {"sort": "largest", "cursor": "WyJsYXRlc3QiLCIyMDI0LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwxXQ"},
        "cursor",
        "cursor",
    ),
    ("q-nul", {"q": "ferry\x00"}, "NUL", "q"),
    ("q-control", {"q": "ferry\x1b"}, "U+001B", "q"),
    ("q-too-long", {"q": "f" * 201}, "200", "q"),
    ("source-nul", {"source": "islandnews\x00.example"}, "NUL", "source"),
    ("source-too-long", {"source": "s" * 513}, "512", "source"),
]:
    CASES.append(Case(f"read-clusters-{name}", 422, (mention,), path="/v1/clusters", params=params, field=where, **GET))

ARTICLE_CASES = [case for case in CASES if case.item is not None]
assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"


# -- database state ------------------------------------------------------------------------


class Snapshot:
    """Everything the service keeps: every row of every table, sequence positions (PostgreSQL),
    and the bytes of the database and WAL files (SQLite)."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
        # Held open for the whole module: SQLite checkpoints the WAL when its last connection
        # closes, which would move bytes without changing any row.
        self.connection = self.engine.connect()

    def rows(self) -> dict:
        self.connection.rollback()
        state = {}
        for table in sorted(inspect(self.connection).get_table_names()):
            result = self.connection.execute(text(f'SELECT * FROM "{table}"'))
            state[table] = sorted(repr(tuple(row)) for row in result)
        if self.connection.dialect.name == "postgresql":
            sequences = self.connection.execute(
                text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
            )
            state["<sequences>"] = sorted(map(tuple, sequences))
        self.connection.rollback()
        return state

    def files(self) -> dict[str, str]:
        if not self.database_url.startswith("sqlite"):
            return {}
        path = Path(self.database_url.split("///", 1)[1])
        return {
            suffix: hashlib.sha256(Path(f"{path}{suffix}").read_bytes()).hexdigest()
            for suffix in ("", "-wal")
            if Path(f"{path}{suffix}").exists()
        }

    def take(self) -> tuple[dict, dict]:
        return self.rows(), self.files()

    def settle(self, quiet: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until the files stop changing: a writer checkpoints its log apart from its
        commits (``app.store.db.WalCheckpointer``), so pages of the last commit may still
        be on their way into the database file when its response arrives."""
        deadline = time.monotonic() + timeout
        seen = self.files()
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = self.files()
            if now == seen:
                return
            seen = now
        raise AssertionError(f"the database files kept changing for {timeout} s with no request")

    def close(self) -> None:
        self.connection.close()
        self.engine.dispose()


# -- the server under test -------------------------------------------------------------------


@dataclass
class Target:
    server: Server
    client: httpx.Client
    snapshot: Snapshot
    before: tuple[dict, dict]
    requests: int = 0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp(f"battery-{request.param}")
    with fresh_database(request.param, directory) as database_url:
        server = Server(database_url, directory / "server.log", api_key=KEY)
        with server, httpx.Client(base_url=server.url, timeout=120.0) as client:
            for article in SEED:
                assert client.post("/v1/articles", json=article, headers=AUTH).status_code == 201
            snapshot = Snapshot(database_url)
            snapshot.settle()
            try:
                yield Target(server, client, snapshot, snapshot.take())
            finally:
                snapshot.close()


def send(client: httpx.Client, case: Case) -> httpx.Response:
    content = case.content
    if case.chunked and content is not None:
        chunks = [content[i : i + 65536] for i in range(0, len(content), 65536)]
        content = iter(chunks)  # a generator body goes out chunked, with no Content-Length
    return client.request(case.method, case.path, content=content, headers=case.headers, params=case.params)


def assert_names_the_problem(error: dict, case: Case) -> None:
    assert isinstance(error, dict) and isinstance(error.get("code"), str) and error["code"], error
    message = error.get("message")
    assert isinstance(message, str) and message, error
    assert any(m.lower() in message.lower() for m in case.mentions), f"{message!r} names none of {case.mentions}"
    if case.field is not None:
        assert error.get("field") == case.field, error


# -- the battery -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_malformed_request_gets_a_4xx_json_error_naming_the_problem_and_changes_nothing(target: Target, case: Case):
    response = send(target.client, case)
    target.requests += 1

    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    assert response.status_code == case.status, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    assert_names_the_problem(response.json()["error"], case)
    assert target.snapshot.take() == target.before


@pytest.mark.parametrize("case", ARTICLE_CASES, ids=lambda case: case.name)
def test_bad_article_in_a_batch_gets_its_own_error_entry_and_changes_nothing(target: Target, case: Case):
    response = target.client.post(BATCH, content=b'{"articles": [' + case.content + b"]}", headers=JSON)
    target.requests += 1

    assert response.status_code == 200, response.text[:500]
    [result] = response.json()["results"]
    assert result["index"] == 0
    assert result["status"] == "error"
    assert result["id"] is None and result["cluster_id"] is None
    assert_names_the_problem(result["error"], case)
    assert target.snapshot.take() == target.before


def test_battery_tries_at_least_two_hundred_malformed_requests():
    assert len(CASES) + len(ARTICLE_CASES) >= 400
    assert len(CASES) >= 200


# -- mixed batches: the good items are stored exactly as if posted alone ------------------------

GOOD_ITEMS = [
    good(url=f"https://islandnews.example/mixed/{i}", title=title, text=body, published_at=at)
    for i, (title, body, at) in enumerate(
        [
            ("Ferry runs aground off Castellan", GOOD_TEXT, "2024-03-10T19:40:00Z"),
            (
                "Castellan harbour dredging to start in May",
                "Dredging of Castellan harbour will begin in May, the island council said on Tuesday, after the "
                "grounding of the ferry Morning Lark on a sandbank outside the harbour mouth.\n"
                "Council leader Amos Trelawny said the work would cost 3.2 million and take ten weeks.",
                "2024-03-12T10:00:00Z",
            ),
            (
                "Oxbury library lends 10,000 books in first month",
                "The new public library in Oxbury lent ten thousand books in its first month, librarian Sunniva "
                "Holt said, twice the number the town council had expected.\n"
                "The rooftop garden will open to readers in June.",
                "2024-04-02T09:00:00Z",
            ),
        ]
    )
]


def _logical_state(database_url: str) -> dict:
    """Rows of every table, without arrival times and the database's random id (they differ
    between any two runs)."""
    engine = create_engine(database_url)
    volatile = {"received_at", "created_at", "updated_at", "at"}
    try:
        with engine.connect() as connection:
            state = {}
            for table in sorted(inspect(connection).get_table_names()):
                if table == "alembic_version":
                    continue
                result = connection.execute(text(f'SELECT * FROM "{table}"'))
                keep = [i for i, column in enumerate(result.keys()) if column not in volatile]
                rows = [row for row in result if not (table == "settings" and row.key == "database_id")]  # random
                state[table] = sorted(repr(tuple(row[i] for i in keep)) for row in rows)
            return state
    finally:
        engine.dispose()


@pytest.fixture
def twin_database_url(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database of the same kind as ``database_url``."""
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    (tmp_path / "twin").mkdir()
    with fresh_database(kind, tmp_path / "twin") as url:
        yield url


def _post_batch(database_url: str, items: list) -> list[dict]:
    with TestClient(create_app(Settings(database_url=database_url, api_key=None))) as client:
        response = client.post(BATCH, content=_json_bytes({"articles": items}), headers=JSON)
        assert response.status_code == 200, response.text
        return response.json()["results"]


def test_mixed_batch_stores_exactly_the_good_items_as_if_posted_alone(database_url, twin_database_url):
    # Every bad article of the battery that fits in one body with the others, good items spread among them.
    mixed = [json.loads(case.content) for case in ARTICLE_CASES if len(case.content) < 100_000]
    for k, item in enumerate(GOOD_ITEMS):
        mixed.insert(k * (len(mixed) // len(GOOD_ITEMS)) + 1, item)

    results = _post_batch(database_url, mixed)
    _post_batch(twin_database_url, GOOD_ITEMS)

    assert [r["index"] for r in results] == list(range(len(mixed)))
    statuses = ["created" if item in GOOD_ITEMS else "error" for item in mixed]
    assert [r["status"] for r in results] == statuses
    assert all(r["error"]["message"] for r in results if r["status"] == "error")
    assert _logical_state(database_url) == _logical_state(twin_database_url)


def test_mixed_batch_reports_each_bad_item_with_the_problem_it_has(database_url):
    items = [
        GOOD_ITEMS[0],
        good(url="ftp://x.example/a"),
        GOOD_ITEMS[1],
        good(text="Ferry \x1b aground"),
        7,
        None,
        "Ferry aground",
        good(published_at="1989-01-01"),
        GOOD_ITEMS[2],
        good(author="Jane Doe"),
    ]

    results = _post_batch(database_url, items)

    assert [r["status"] for r in results] == [
        "created",
        "error",
        "created",
        "error",
        "error",
        "error",
        "error",
        "error",
        "created",
        "error",
    ]
    errors = {r["index"]: r["error"] for r in results if r["status"] == "error"}
    assert errors[1]["field"] == "url" and "http" in errors[1]["message"]
    assert errors[3]["field"] == "text" and "U+001B" in errors[3]["message"]
    assert all("JSON object" in errors[i]["message"] for i in (4, 5, 6))
    assert errors[7]["field"] == "published_at" and "1990" in errors[7]["message"]
    assert errors[9]["field"] == "author" and "unknown field" in errors[9]["message"]


# -- injection strings where they are valid: stored verbatim, inert -----------------------------

INJECTIONS = [
    "'; DROP TABLE articles; --",
    '" OR "1"="1',
    "1); DELETE FROM clusters WHERE (1=1",
    "<script>alert(document.cookie)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} %s %n",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_string_in_title_and_source_is_stored_verbatim_and_runs_nothing(client, payload):
    body = good(title=f"Ferry aground {payload}", source=payload, external_id=payload, url=None)

    created = client.post("/v1/articles", json=body)

    assert created.status_code == 201, created.text
    stored = client.get(f"/v1/articles/{created.json()['id']}").json()
    assert (stored["title"], stored["source"], stored["external_id"]) == (body["title"], payload, payload)
    assert client.get("/v1/clusters", params={"q": payload}).status_code == 200
    assert client.get("/v1/clusters", params={"source": payload}).json()["clusters"][0]["id"] == stored["cluster_id"]
    assert client.post("/v1/articles", json=body).json()["status"] == "existing"


# -- pages so long that the database refuses the statement ---------------------------------------


@pytest.mark.slow
def test_html_page_with_more_distinct_lines_than_postgresql_takes_parameters_is_not_a_5xx(tmp_path):
    paragraphs = "".join(
        f"<p>Paragraph {i} of the harbour inquiry report adds a new finding.</p>" for i in range(23_000)
    )
    page = f"<html><body><article><h1>Harbour inquiry</h1>{paragraphs}</article></body></html>"
    assert len(page) < MAX_TEXT_CHARS
    with fresh_database("postgresql", tmp_path) as database_url:
        with TestClient(create_app(Settings(database_url=database_url, api_key=None))) as client:
            response = client.post("/v1/articles", json=good(text=None, html=page))
    assert response.status_code < 500, response.text
