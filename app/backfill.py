"""Backfill: a JSONL stream of articles, read in batches, into the database or a remote service.

Every line is one article object, as for ``POST /v1/articles``; fields the API does
not take (a data set's ``id`` or ``label``, say) are dropped. A line that is not
JSON, or not a valid article, is rejected with its line number and the rest go on.
Ingest is idempotent on ``url``/``external_id``, so re-running an interrupted
backfill skips what was stored and resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from pydantic import ValidationError

from app.api.errors import describe_validation
from app.api.schemas import ArticleIn

if TYPE_CHECKING:
    from app.service.ingest import StoryService

_FIELDS = frozenset(ArticleIn.model_fields)
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class BackfillError(RuntimeError):
    """The backfill cannot go on (the service refused the key, the batch, or stayed away)."""


@dataclass
class Line:
    number: int
    row: dict
    article: ArticleIn


@dataclass
class Batch:
    """Valid articles of consecutive lines, the lines rejected among them, and their size."""

    lines: list[Line] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    nbytes: int = 0
    last_line: int = 0


@dataclass
class Result:
    status: str  # created, existing or error
    error: str | None = None


@dataclass
class Tally:
    created: int = 0
    existing: int = 0
    rejected: int = 0
    unkeyed: int = 0  # stored articles with neither url nor external_id: a re-run stores them again

    def count(self, status: str) -> None:
        if status == "error":
            self.rejected += 1
        else:
            setattr(self, status, getattr(self, status) + 1)

    @property
    def articles(self) -> int:
        return self.created + self.existing + self.rejected

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "existing": self.existing, "rejected": self.rejected}


def parse_line(raw: bytes) -> tuple[dict, ArticleIn]:
    """One JSONL line as (the row the API takes, its validated article); ValueError says why not."""
    try:
        row = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"not valid JSON: {err}") from None
    if not isinstance(row, dict):
        raise ValueError("each line must be a JSON object")
    row = {k: v for k, v in row.items() if k in _FIELDS}
    try:
        return row, ArticleIn.model_validate(row)
    except ValidationError as err:
        _, message, _ = describe_validation(err.errors())
        raise ValueError(message) from None


def batches(lines: Iterable[bytes], size: int) -> Iterator[Batch]:
    """Group raw JSONL lines into batches of at most ``size`` valid articles."""
    batch = Batch()
    for number, raw in enumerate(lines, 1):
        batch.nbytes += len(raw)
        batch.last_line = number
        if raw.strip():
            try:
                row, article = parse_line(raw)
                batch.lines.append(Line(number, row, article))
            except ValueError as err:
                batch.rejected.append((number, str(err)))
        if len(batch.lines) >= size:
            yield batch
            batch = Batch()
    if batch.nbytes:
        yield batch


class LocalSink:
    """Ingest into the configured database, through the same pipeline as the API."""

    def __init__(self, service: StoryService) -> None:
        self.service = service

    def send(self, lines: list[Line]) -> list[Result]:
        return [Result(o.status, o.error) for o in self.service.ingest([line.article for line in lines])]


class RemoteSink:
    """POST batches to a running service's ``/v1/articles/batch``, retrying while it is away.

    Retrying is safe: a batch that was stored before its answer got lost answers
    ``existing`` the second time.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float = 120.0,
        attempts: int = 6,
        client: httpx.Client | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(base_url=url.rstrip("/"), timeout=timeout)
        self.client.headers.update(headers)
        self.attempts = attempts

    def send(self, lines: list[Line]) -> list[Result]:
        response = self._post({"articles": [line.row for line in lines]})
        items = response.json()["results"]
        return [Result(i["status"], (i.get("error") or {}).get("message")) for i in items]

    def _post(self, body: dict) -> httpx.Response:
        delay = 1.0
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.client.post("/v1/articles/batch", json=body)
            except httpx.TransportError as err:
                problem = f"{type(err).__name__}: {err}"
            else:
                if response.status_code == 200:
                    return response
                if response.status_code not in RETRY_STATUSES:
                    raise BackfillError(_refusal(response))
                problem = f"HTTP {response.status_code}"
                delay = _retry_after(response, delay)
            if attempt == self.attempts:
                raise BackfillError(f"gave up after {attempt} attempts ({problem})")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.client.close()


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", default)), 0.0), 60.0)
    except ValueError:
        return default


def _refusal(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    hint = {
        401: " (pass the service's key with --api-key, or STORIES_API_KEY)",
        413: " (lower --batch-size: the service takes at most STORIES_MAX_BATCH articles a batch)",
        404: " (is --url the service's base URL, e.g. http://host:8000?)",
    }.get(response.status_code, "")
    return f"the service answered {response.status_code}: {message}{hint}"
