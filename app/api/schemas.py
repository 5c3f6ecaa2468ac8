"""API schemas (pydantic): what goes over the wire, checked where it enters."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from clustering.assign import Rule
from clustering.identity import canonical_url, outlet
from clustering.prepare import EARLIEST, FUTURE_TOLERANCE

MAX_ID = 2**63 - 1  # the largest id either database can hold
MAX_TEXT_CHARS = 2_000_000
MAX_URL_CHARS = 2048  # the column width, checked again after canonicalisation (percent-encoding grows it)
MAX_HOST_CHARS = 253  # the longest DNS name; the host becomes ``source`` (512 wide) when none is given
# A page of text, menus and footers included, runs to hundreds of lines; 10,000 leaves room
# for the dirtiest crawl, and bounds the per-line work of template learning.
MAX_LINES = 10_000
# No word of any language runs to 10,000 characters (a long CJK paragraph without spaces
# stays under it); a longer run of non-space characters is a blob, not text.
MAX_WORD_CHARS = 10_000
# C0 controls and DEL. Tab, line feed and carriage return belong in text; nothing else does.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f]")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")  # no spaces or controls inside a URL
_WORD = re.compile(r"\w")
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def _no_nul(value: str | None, what: str) -> str | None:
    if value is not None and "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    return value


def _no_controls(value: str, what: str, *, line_breaks: bool) -> str:
    """``value`` unchanged, or ValueError naming the first control character and where it is."""
    _no_nul(value, what)
    found = (_CONTROL if line_breaks else _CONTROL_OR_BREAK).search(value)
    if found is not None:
        allowed = "only tab, line feed and carriage return are allowed" if line_breaks else "none are allowed"
        raise ValueError(
            f"{what} contains control character U+{ord(found.group()):04X} at position {found.start()}; {allowed}"
        )
    return value


def _plain_text(value: str, what: str) -> str:
    """Limits of a text body: lines (as the extractor splits them), word length, some words."""
    lines = len(value.splitlines())
    if lines > MAX_LINES:
        raise ValueError(f"{what} has {lines} lines; at most {MAX_LINES} are accepted")
    longest = max(map(len, value.split()), default=0)
    if longest > MAX_WORD_CHARS:
        raise ValueError(
            f"{what} contains a {longest}-character word (no spaces); at most {MAX_WORD_CHARS} characters are accepted"
        )
    if value.strip() and _WORD.search(value) is None:
        raise ValueError(f"{what} contains no words: no letter or digit in it")
    return value


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC); ValueError when UTC cannot hold it.

    >>> as_utc(datetime(2024, 6, 18, 22, 0)).isoformat()
    '2024-06-18T22:00:00+00:00'
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date is out of range once converted to UTC (years 1 to 9999)") from None


def _iso_8601(value: object, what: str) -> object:
    # JSON and query strings have no date type: the contract is ISO 8601 text, never a
    # number (or a string of digits) that pydantic would read as a Unix timestamp.
    if isinstance(value, (str, datetime)) and not (isinstance(value, str) and _NUMBER.fullmatch(value)):
        return value
    got = "a number" if isinstance(value, (int, float, str)) and not isinstance(value, bool) else type(value).__name__
    raise ValueError(f"{what} must be an ISO 8601 date-time such as 2024-06-18T22:00:00Z, not {got}")


def _query_time(value: object) -> object:
    return _iso_8601(value, "the parameter")


def _query_text(value: str | None) -> str | None:
    if value is not None:
        _no_controls(value, "the parameter", line_breaks=False)
    return value


# Query parameters checked where they enter: no control characters (PostgreSQL refuses NUL
# in a string), and times that UTC can hold.
QueryText = Annotated[str, AfterValidator(_query_text)]
QueryTime = Annotated[datetime, BeforeValidator(_query_time), AfterValidator(as_utc)]


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
        if (found := _URL_FORBIDDEN.search(value.strip())) is not None:
            char = "a space" if found.group() == " " else f"control character U+{ord(found.group()):04X}"
            raise ValueError(f"url contains {char} at position {found.start()}; percent-encode it")
        try:
            parts = urlsplit(value.strip())
        except ValueError as err:
            raise ValueError(f"url is not a valid URL: {err}") from None
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an absolute http:// or https:// URL")
        if len(parts.hostname) > MAX_HOST_CHARS:
            raise ValueError(f"url host has {len(parts.hostname)} characters; a host name has at most {MAX_HOST_CHARS}")
        try:
            canonical = canonical_url(value)
        except ValueError as err:
            raise ValueError(f"url is not a valid URL: {err}") from None
        if len(canonical) > MAX_URL_CHARS:
            raise ValueError(f"url is {len(canonical)} characters once canonicalised; at most {MAX_URL_CHARS}")
        return canonical

    @field_validator("external_id", "title", "source", "language", "text", "html")
    @classmethod
    def _clean_strings(cls, value: str | None, info) -> str | None:
        if value is None:
            return None
        name = info.field_name
        _no_controls(value, name, line_breaks=name in ("title", "text", "html"))
        if name in ("external_id", "source", "language"):
            value = value.strip()
            if not value:
                raise ValueError(f"{name} must not be blank")
        if name == "text":
            _plain_text(value, name)
        return value

    @field_validator("published_at", mode="before")
    @classmethod
    def _iso_string(cls, value: object) -> object:
        return None if value is None else _iso_8601(value, "published_at")

    @field_validator("published_at")
    @classmethod
    def _plausible_date(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
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
        return outlet(self.source, self.url)


def _example(example: dict) -> ConfigDict:
    """A model config carrying one example for the OpenAPI document (shown at /docs)."""
    return ConfigDict(json_schema_extra={"examples": [example]})


_SUMMARY_EXAMPLE = {
    "id": 7,
    "thread_id": 3,
    "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
    "summary": "Russian President Vladimir Putin arrived in Pyongyang on Tuesday for his first visit to North "
    "Korea in 24 years, where leader Kim Jong Un greeted him at the airport.",
    "article_count": 3,
    "source_count": 3,
    "sources": [
        {"name": "news.example.com", "articles": 1},
        {"name": "wire.example.org", "articles": 1},
        {"name": "daily.example.net", "articles": 1},
    ],
    "keywords": ["Vladimir Putin", "Kim Jong Un", "North Korea", "Pyongyang", "partnership", "summit"],
    "first_published_at": "2024-06-18T22:00:00Z",
    "last_published_at": "2024-06-19T06:10:00Z",
    "updated_at": "2024-06-19T06:10:02Z",
    "representative_article_id": 118,
}


class ArticleResult(BaseModel):
    model_config = _example({"id": 118, "cluster_id": 7, "duplicate_of": None, "status": "created"})

    id: int
    cluster_id: int
    duplicate_of: int | None
    status: Literal["created", "existing"]


class ArticleDeleted(BaseModel):
    model_config = _example({"id": 118, "cluster_id": 7, "status": "deleted"})

    id: int
    cluster_id: int = Field(description="The story the article left; its summary is already updated.")
    status: Literal["deleted"]


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    model_config = _example(
        {"error": {"code": "invalid", "message": "exactly one of text or html is required", "field": "text"}}
    )

    error: ErrorBody


class BatchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "articles": [
                        {
                            "url": "https://news.example.com/world/putin-pyongyang-visit",
                            "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
                            "text": "Russian President Vladimir Putin arrived in Pyongyang on Tuesday ...",
                            "published_at": "2024-06-18T22:00:00Z",
                        },
                        {
                            "url": "https://wire.example.org/putin-pyongyang",
                            "text": "Russian President Vladimir Putin arrived in Pyongyang on Tuesday ...",
                        },
                    ]
                }
            ]
        },
    )

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
    model_config = _example(
        {
            "results": [
                {"index": 0, "id": 118, "cluster_id": 7, "duplicate_of": None, "status": "created"},
                {
                    "index": 1,
                    "status": "error",
                    "error": {
                        "code": "invalid",
                        "message": "exactly one of text or html is required",
                        "field": "articles[1].text",
                    },
                },
            ]
        }
    )

    results: list[BatchItem]


class DecisionCandidate(BaseModel):
    cluster_id: int = Field(description="A story the article was scored against (its id then).")
    probability: float = Field(description="The decision model's probability that the article belongs to it.")
    features: dict[str, float] = Field(
        description="What the model weighed: `title`, `body`, `names` (cosines of IDF-weighted terms to the "
        "story's), `time_decay` and `days_outside` (how far the article lies outside the story's span), "
        "`log_size` (the story's size), `semantic` (cosine of sentence embeddings)."
    )


class Decision(BaseModel):
    """Why an article went where it did: as decided when it was stored, or the editor's
    correction that placed it since (rule `editor`, with the model's decision beside it)."""

    rule: Rule | Literal["editor"] = Field(
        description="near_duplicate: a copy of `duplicate_of`, it joined that article's story; join: the best "
        "story reached `threshold`; new: none did; new_event: the best story went quiet for more than 14 days, "
        "so the article opened a story in its thread (`thread_of`); continued: the same for a story beyond the "
        "assignment window, reached at the merge bar; editor: an editor placed it (`correction_id`), and the "
        "other fields say what the model had decided (`automatic_rule`)."
    )
    score: float = Field(description="The best story's probability (1.0 for a near-duplicate).")
    threshold: float = Field(description="The bar it had to reach (0 for a near-duplicate).")
    model: Literal["article", "headline"] = Field(description="headline: an article with no body beyond its title.")
    duplicate_of: int | None
    jaccard: float | None = Field(description="Estimated Jaccard similarity to `duplicate_of`.")
    thread_of: int | None = Field(description="The story whose thread a new event joined.")
    merged: list[int] = Field(description="Stories the article bound strongly enough to be merged into its own.")
    candidates: list[DecisionCandidate] = Field(description="The best few stories scored, best first.")
    automatic_rule: Rule | None = Field(None, description="Of an article an editor placed: the model's rule.")
    correction_id: int | None = Field(None, description="Of an article an editor placed: the correction.")
    editor: str | None = Field(None, description="Of an article an editor placed: who, as the correction says.")
    note: str | None = Field(None, description="Of an article an editor placed: the correction's note.")
    from_cluster_id: int | None = Field(None, description="Of an article an editor placed: the story it left.")


class ArticleOut(BaseModel):
    model_config = _example(
        {
            "id": 118,
            "url": "https://news.example.com/world/putin-pyongyang-visit",
            "external_id": None,
            "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
            "source": "news.example.com",
            "language": "en",
            "published_at": "2024-06-18T22:00:00Z",
            "received_at": "2024-06-18T22:01:10Z",
            "text": "Russian President Vladimir Putin arrived in Pyongyang on Tuesday ...",
            "removed_lines": {"template": 14, "menu": 2},
            "cluster_id": 7,
            "duplicate_of": None,
            "decision": {
                "rule": "join",
                "score": 0.9731,
                "threshold": 0.24,
                "model": "article",
                "duplicate_of": None,
                "jaccard": None,
                "thread_of": None,
                "merged": [],
                "candidates": [
                    {
                        "cluster_id": 7,
                        "probability": 0.9731,
                        "features": {
                            "title": 0.61,
                            "body": 0.48,
                            "names": 0.72,
                            "time_decay": 1.0,
                            "days_outside": 0.0,
                            "log_size": 1.0986,
                            "semantic": 0.83,
                        },
                    }
                ],
            },
        }
    )

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
    decision: Decision | None = Field(
        None, description="Why it went where it did, as decided when it was stored (null for articles stored before)."
    )


class SourceCount(BaseModel):
    name: str
    articles: int


class ClusterSummary(BaseModel):
    model_config = _example(_SUMMARY_EXAMPLE)

    id: int
    thread_id: int = Field(
        validation_alias=AliasChoices("thread", "thread_id"),  # a stored story answers with ``Cluster.thread``
        description="The thread the story (one event) belongs to: the events of one ongoing story, linked in "
        "time order (`GET /v1/threads/{id}`). A story that continues no earlier one starts its own thread, "
        "named by its id.",
    )
    title: str
    summary: str
    article_count: int
    source_count: int
    sources: list[SourceCount]
    keywords: list[str] = Field(
        description="What the story is about: names as most of its articles write them (a multi-word "
        "name in place of its words) first, then the words that set it apart, most telling first; "
        "no months or bare verbs."
    )
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
    model_config = _example(
        {
            **_SUMMARY_EXAMPLE,
            "merged_into": None,
            "articles": [
                {
                    "id": 118,
                    "url": "https://news.example.com/world/putin-pyongyang-visit",
                    "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
                    "source": "news.example.com",
                    "published_at": "2024-06-18T22:00:00Z",
                    "duplicate_of": None,
                },
                {
                    "id": 121,
                    "url": "https://wire.example.org/putin-pyongyang",
                    "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
                    "source": "wire.example.org",
                    "published_at": "2024-06-19T01:00:00Z",
                    "duplicate_of": 118,
                },
            ],
        }
    )

    merged_into: int | None = Field(
        None, description="Set when the requested id was merged away: the id answering for it."
    )
    articles: list[ClusterArticle]


class ClusterPage(BaseModel):
    model_config = _example(
        {
            "clusters": [_SUMMARY_EXAMPLE],
            "next_cursor": "WyJsYXRlc3QiLCIyMDI0LTA2LTE5VDA2OjEwOjAwKzAwOjAwIiw3LDEyMSw5LCIyMDI0LTA2LTE5VDA2OjEwOjAwKzAwOjAwIl0",
        }
    )

    clusters: list[ClusterSummary]
    next_cursor: str | None


class MatchDuplicate(BaseModel):
    article_id: int
    similarity: float = Field(description="Estimated Jaccard similarity of cleaned body shingles.")


class MatchResult(BaseModel):
    model_config = _example(
        {"cluster_id": 7, "thread_id": 3, "score": 1.0, "duplicates": [{"article_id": 118, "similarity": 0.95}]}
    )

    cluster_id: int | None = Field(description="The story the text would join; null: it would open a new one.")
    thread_id: int | None = Field(
        None,
        description="The thread it would be in: that of the story it would join, or of the story it would "
        "continue as a new event; null: it would start a thread of its own.",
    )
    score: float = Field(description="Assignment score against that story (1.0 for a near-duplicate).")
    duplicates: list[MatchDuplicate]


class ChangeOut(BaseModel):
    """One change-feed event."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "seq": 41,
                    "kind": "grew",
                    "cluster_id": 7,
                    "article_id": 118,
                    "into_cluster_id": None,
                    "thread_id": None,
                    "article_count": 5,
                    "at": "2024-06-19T08:00:02Z",
                }
            ]
        }
    )

    seq: int = Field(description="Position in the feed: increases with every event, in commit order.")
    kind: Literal["created", "grew", "merged", "moved", "article_deleted", "pruned"] = Field(
        description=(
            "created: an article opened the story (or an editor's correction did); grew: an article joined it; "
            "merged: the story was folded into `into_cluster_id`; moved: an editor moved the article from the "
            "story to `into_cluster_id`; article_deleted: an article was taken down; pruned: retention deleted "
            "the story."
        )
    )
    cluster_id: int
    article_id: int | None = Field(description="The article of created, grew, moved and article_deleted events.")
    into_cluster_id: int | None = Field(
        description="The surviving story of a merged event; the story a moved article went to."
    )
    thread_id: int | None = Field(
        None,
        description="Of a created event: the thread the story opened in (its own id when it starts one, an "
        "earlier story's thread when it is a new event of that story).",
    )
    correction_id: int | None = Field(
        None, description="The editor's correction that made the event (`GET /v1/corrections/{id}`); null: none."
    )
    article_count: int = Field(
        description="The story's article count once the write committed (for merged and moved: that of "
        "`into_cluster_id`; 0 when gone)."
    )
    at: datetime = Field(description="When the write that made the event was received.")


class ChangePage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"changes": [ChangeOut.model_config["json_schema_extra"]["examples"][0]], "next_after": 41}]
        }
    )

    changes: list[ChangeOut]
    next_after: int = Field(
        description="Pass as `after` for the next call: the last `seq` returned, or `after` itself when none was."
    )


class ThreadEvent(BaseModel):
    """One event of a thread: a story cluster, in brief."""

    id: int = Field(description="The story's id (`GET /v1/clusters/{id}`).")
    title: str
    article_count: int
    source_count: int
    first_published_at: datetime | None
    last_published_at: datetime | None


class ThreadOut(BaseModel):
    model_config = _example(
        {
            "id": 3,
            "merged_into": None,
            "article_count": 14,
            "first_published_at": "2024-01-19T08:00:00Z",
            "last_published_at": "2024-06-19T06:10:00Z",
            "events": [
                {
                    "id": 3,
                    "title": "Putin accepts Kim's invitation to visit North Korea",
                    "article_count": 11,
                    "source_count": 9,
                    "first_published_at": "2024-01-19T08:00:00Z",
                    "last_published_at": "2024-01-22T17:30:00Z",
                },
                {
                    "id": 7,
                    "title": "Putin arrives in Pyongyang for talks with Kim Jong Un",
                    "article_count": 3,
                    "source_count": 3,
                    "first_published_at": "2024-06-18T22:00:00Z",
                    "last_published_at": "2024-06-19T06:10:00Z",
                },
            ],
        }
    )

    id: int
    merged_into: int | None = Field(
        None, description="Set when the requested thread was joined to another: the id answering for it."
    )
    article_count: int = Field(description="Articles in all its events.")
    first_published_at: datetime | None
    last_published_at: datetime | None
    events: list[ThreadEvent] = Field(description="Its events, oldest first.")


# -- corrections ---------------------------------------------------------------------------------


def _editor_text(value: str | None) -> str | None:
    if value is not None:
        _no_controls(value, "the field", line_breaks=True)
    return value


EditorName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_editor_text)]
EditorNote = Annotated[str, Field(max_length=4000), AfterValidator(_editor_text)]
StoryId = Annotated[int, Field(ge=1, le=MAX_ID)]
MAX_SPLIT = 1_000  # articles one split names


class _CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    editor: EditorName | None = Field(None, description="Who made the correction, as the caller names them.")
    note: EditorNote | None = Field(None, description="Why, in the editor's words.")


class MoveIn(_CorrectionIn):
    """Move an article (and its near-duplicates) to another story, or to a new one."""

    kind: Literal["move"]
    article_id: StoryId
    into_cluster_id: StoryId | None = Field(
        None, description="The story to move it into; null or absent: a new story of its own (a thread of its own)."
    )
    with_copies: bool = Field(
        True, description="Move its near-duplicates (its original and every copy of it) with it; false: only it."
    )


class SplitIn(_CorrectionIn):
    """The listed articles of a story become a new story, in the same thread."""

    kind: Literal["split"]
    cluster_id: StoryId
    article_ids: list[StoryId] = Field(min_length=1, max_length=MAX_SPLIT)

    @field_validator("article_ids")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("article_ids lists an article more than once")
        return value


class MergeIn(_CorrectionIn):
    """Fold one story into another, as an automatic merge does: the absorbed id keeps resolving."""

    kind: Literal["merge"]
    cluster_id: StoryId = Field(description="The story to fold in (it answers with `into_cluster_id` from then on).")
    into_cluster_id: StoryId

    @model_validator(mode="after")
    def _two_stories(self) -> MergeIn:
        if self.cluster_id == self.into_cluster_id:
            raise ValueError("a story cannot be merged into itself")
        return self


CorrectionIn = Annotated[MoveIn | SplitIn | MergeIn, Field(discriminator="kind")]


class CorrectionOut(BaseModel):
    model_config = _example(
        {
            "id": 4,
            "kind": "split",
            "cluster_id": 7,
            "into_cluster_id": 12,
            "opened": True,
            "article_ids": [118, 121],
            "editor": "desk@example.com",
            "note": "The visit and the treaty talks are two events.",
            "at": "2024-06-19T09:30:00Z",
        }
    )

    id: int
    kind: Literal["move", "split", "merge"]
    cluster_id: int = Field(description="The story corrected: the one the articles left, or the one folded in.")
    into_cluster_id: int = Field(description="The story the articles went to, or the one that absorbed it.")
    opened: bool = Field(description="The correction opened `into_cluster_id`.")
    article_ids: list[int] = Field(description="The articles it placed (empty for a merge).")
    editor: str | None
    note: str | None
    at: datetime


class CorrectionPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"corrections": [CorrectionOut.model_config["json_schema_extra"]["examples"][0]], "next_after": 4}
            ]
        }
    )

    corrections: list[CorrectionOut]
    next_after: int = Field(
        description="Pass as `after` for the next call: the last `id` returned, or `after` itself when none was."
    )
