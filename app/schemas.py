"""API schemas (pydantic): what goes over the wire, checked where it enters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
MAX_ID = 2**63 - 1  # the largest id either database can hold
FUTURE_TOLERANCE = timedelta(days=1)
MAX_TEXT_CHARS = 2_000_000
_TRACKING = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid", "ocid", "cmpid")


def canonical_url(url: str) -> str:
    """The idempotency form of a URL: lower-case scheme and host, no default port,
    no fragment, no tracking parameters, remaining parameters sorted.

    >>> canonical_url("HTTPS://Example.com:443/a/b/?utm_source=x&b=2&a=1#top")
    'https://example.com/a/b?a=1&b=2'
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    query = sorted(
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.lower().startswith(_TRACKING)
    )
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def _no_nul(value: str | None, what: str) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    return value


class ArticleIn(BaseModel):
    """One article as a crawler sends it."""

    model_config = ConfigDict(
        extra="forbid",
        str_max_length=MAX_TEXT_CHARS,
        json_schema_extra={
            "examples": [
                {
                    "url": "https://example.com/world/putin-to-visit-pyongyang",
                    "title": "Putin to visit North Korea for first time in 24 years",
                    "text": "Russian President Vladimir Putin will visit North Korea this week...",
                    "source": "example.com",
                    "published_at": "2024-06-18T07:52:00Z",
                    "language": "en",
                }
            ]
        },
    )

    url: str | None = Field(None, max_length=2048, description="http(s) URL; the idempotency key when present.")
    external_id: str | None = Field(
        None, min_length=1, max_length=512, description="The idempotency key when there is no url."
    )
    title: str | None = Field(None, max_length=1000)
    text: str | None = Field(None, description="The page's text, as crawled. Exactly one of text or html.")
    html: str | None = Field(None, description="The page's HTML. Exactly one of text or html.")
    source: str | None = Field(None, min_length=1, max_length=512, description="Outlet; default: the url's host.")
    published_at: datetime | None = Field(
        None, description="ISO 8601; default: a date found in the page, else arrival time."
    )
    language: str | None = Field(None, min_length=2, max_length=16)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _no_nul(value, "url")
        try:
            parts = urlsplit(value.strip())
        except ValueError as err:
            raise ValueError(f"url is not a valid URL: {err}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL")
        try:
            return canonical_url(value)
        except ValueError as err:
            raise ValueError(f"url is not a valid URL: {err}") from None

    @field_validator("external_id", "title", "source", "language", "text", "html")
    @classmethod
    def _clean_strings(cls, value: str | None, info) -> str | None:
        _no_nul(value, info.field_name)
        if value is not None and info.field_name in ("external_id", "source", "language"):
            value = value.strip()
            if not value:
                raise ValueError(f"{info.field_name} must not be blank")
        return value

    @field_validator("published_at")
    @classmethod
    def _plausible_date(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        if value < EARLIEST:
            raise ValueError("published_at must not be before 1990-01-01")
        if value > datetime.now(UTC) + FUTURE_TOLERANCE:
            raise ValueError("published_at must not be more than a day in the future")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> ArticleIn:
        given = [name for name in ("text", "html") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of text or html is required")
        if not getattr(self, given[0]).strip():
            raise ValueError(f"{given[0]} must not be empty")
        return self

    @property
    def key_source(self) -> str | None:
        """The outlet: ``source`` if given, else the url's host without ``www.``."""
        if self.source:
            return self.source
        if self.url:
            host = urlsplit(self.url).hostname or ""
            return host.removeprefix("www.") or None
        return None


class ArticleResult(BaseModel):
    id: int
    cluster_id: int
    duplicate_of: int | None
    status: Literal["created", "existing"]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    articles: list[Any] = Field(..., description="Articles, each as for POST /v1/articles.")


class BatchItem(BaseModel):
    """One result of a batch, in input order: an article result or its error."""

    index: int
    id: int | None = None
    cluster_id: int | None = None
    duplicate_of: int | None = None
    status: Literal["created", "existing", "error"]
    error: ErrorBody | None = None


class BatchResult(BaseModel):
    results: list[BatchItem]


class ArticleOut(BaseModel):
    id: int
    url: str | None
    external_id: str | None
    title: str | None
    source: str | None
    language: str | None
    published_at: datetime
    received_at: datetime
    text: str
    removed_lines: dict[str, int] = Field(description="Lines removed from the page, by the rule that removed them.")
    cluster_id: int
    duplicate_of: int | None


class SourceCount(BaseModel):
    name: str
    articles: int


class ClusterSummary(BaseModel):
    id: int
    title: str
    summary: str
    article_count: int
    source_count: int
    sources: list[SourceCount]
    keywords: list[str]
    first_published_at: datetime | None
    last_published_at: datetime | None
    updated_at: datetime
    representative_article_id: int | None


class ClusterArticle(BaseModel):
    id: int
    url: str | None
    title: str | None
    source: str | None
    published_at: datetime
    duplicate_of: int | None


class ClusterDetail(ClusterSummary):
    merged_into: int | None = Field(
        None, description="Set when the requested id was merged away: the id answering for it."
    )
    articles: list[ClusterArticle]


class ClusterPage(BaseModel):
    clusters: list[ClusterSummary]
    next_cursor: str | None


class MatchDuplicate(BaseModel):
    article_id: int
    similarity: float = Field(description="Estimated Jaccard similarity of cleaned body shingles.")


class MatchResult(BaseModel):
    cluster_id: int | None = Field(description="The story the text would join; null: it would open a new one.")
    score: float = Field(description="Assignment score against that story (1.0 for a near-duplicate).")
    duplicates: list[MatchDuplicate]
