"""Operations: Prometheus metrics, structured logs, and a request id on every request.

``Metrics`` holds one app's metrics in a registry of its own (``GET /metrics`` serves
it). ``configure_logging`` sends every log record, the service's and its libraries',
through structlog: one JSON object a line, or readable lines in a terminal.
``RequestContext`` is the outermost middleware: it gives each request an id (the
caller's ``X-Request-ID`` when it is sane), binds it to every log line written while
the request runs, answers with it, counts and times the request per route, and logs
one line per request.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.context_managers import Timer
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Request latency: from a cached /healthz (sub-millisecond) to a batch of 500 articles.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Stage timings per article (extract ... store) or per batch (summarise, transaction).
_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

access_log = structlog.stdlib.get_logger("stories.access")
# ``*_created`` timestamps double every series and no dashboard here reads them.
disable_created_metrics()


class Metrics:
    """The service's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "stories_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "stories_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.articles = Counter(
            "stories_articles_ingested",
            "Articles through ingest (API and backfill), by outcome: created, existing (seen before), "
            "rejected (no text could be extracted). Counted after the transaction commits.",
            ["status"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "stories_duplicates_found",
            "Stored articles found to be near-duplicates of an earlier article.",
            registry=self.registry,
        )
        self.stories_opened = Counter(
            "stories_opened", "Stories opened by an article that joined none.", registry=self.registry
        )
        self.stories_merged = Counter(
            "stories_merged", "Stories absorbed into another because one article bound them.", registry=self.registry
        )
        self.stage_seconds = Histogram(
            "stories_ingest_stage_seconds",
            "Time in each ingest stage: prepare (per request: extract, embed, vectorise and fingerprint in the "
            "worker processes), assign and store (per article, in the write step); summarise and transaction "
            "(per write transaction, the transaction including its commit).",
            ["stage"],
            buckets=_STAGE_BUCKETS,
            registry=self.registry,
        )
        self.prepared_again = Counter(
            "stories_articles_prepared_again",
            "Articles prepared a second time in the write step, because their source's template changed after "
            "they were prepared.",
            registry=self.registry,
        )

    def stage(self, name: str) -> Timer:
        """A context manager timing one ingest stage."""
        return self.stage_seconds.labels(name).time()

    def record_committed(
        self, articles: Mapping[str, int], *, duplicates: int, opened: int, merged: int, reprepared: int = 0
    ) -> None:
        """Count what one committed ingest transaction did: articles by outcome (created,
        existing, rejected), copies found, stories opened and merged, articles prepared again."""
        for status, count in articles.items():
            self.articles.labels(status).inc(count)
        self.duplicates.inc(duplicates)
        self.stories_opened.inc(opened)
        self.stories_merged.inc(merged)
        self.prepared_again.inc(reprepared)

    def watch(self, sizes: Callable[[], Mapping[str, int]]) -> None:
        """Report ``sizes()`` (entries of the in-memory indexes, by index) at every scrape."""
        self.registry.register(
            _Scraped(
                lambda: GaugeMetricFamily(
                    "stories_index_entries",
                    "Entries in the in-memory indexes rebuilt from the database.",
                    labels=["index"],
                ),
                sizes,
            )
        )

    def watch_reads(self, outcomes: Callable[[], Mapping[str, int]]) -> None:
        """Report ``outcomes()`` (read responses so far, by whether they were rendered or
        served again from ``app.api.pages``) at every scrape."""
        self.registry.register(
            _Scraped(
                lambda: CounterMetricFamily(
                    "stories_read_responses",
                    "Story listings and story views answered, by outcome: rendered from the database, or kept "
                    "(served again because nothing was written since they were rendered).",
                    labels=["outcome"],
                ),
                outcomes,
            )
        )


class _Scraped(Collector):
    """One labelled metric family read from live state when scraped: ``family()`` makes
    it empty, ``values()`` gives {label value: value}."""

    def __init__(
        self,
        family: Callable[[], GaugeMetricFamily | CounterMetricFamily],
        values: Callable[[], Mapping[str, int]],
    ) -> None:
        self.family, self.values = family, values

    def describe(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        return [self.family()]

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        family = self.family()
        for label, value in self.values().items():
            family.add_metric([label], value)
        yield family


# -- logging -------------------------------------------------------------------

_HANDLER_NAME = "stories"
_SHARED_PROCESSORS: list = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _drop_copies(_logger: object, _name: str, event: dict) -> dict:
    """Drop what stdlib records carry twice: ``message`` (the event again) and uvicorn's
    ANSI-coloured ``color_message``."""
    event.pop("message", None)
    event.pop("color_message", None)
    return event


# Tracebacks as data, without local variables: locals hold request bodies and keys.
_TRACEBACKS_AS_DICTS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when the
    handler was made (a test runner or a CLI runner may swap it in between)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    """Route every log record through structlog to stderr: JSON, or readable in a terminal.

    Idempotent: replaces this service's handler on the root logger and leaves other
    handlers (a test runner's, say) alone.
    """
    stream = sys.stderr
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not stream.isatty())
    if as_json:
        final = [_TRACEBACKS_AS_DICTS, structlog.processors.JSONRenderer()]
    else:
        final = [
            structlog.dev.ConsoleRenderer(colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback)
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED_PROCESSORS, structlog.stdlib.ExtraAdder(), _drop_copies],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # uvicorn's own lines come through the root handler; requests are logged by
    # RequestContext, with their id, instead of uvicorn's access log.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per backfill request is noise
    structlog.configure(
        processors=[*_SHARED_PROCESSORS, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


# -- requests ------------------------------------------------------------------


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/articles/{article_id}``), never the raw
    path, whose ids would make a series per article; ``unmatched`` for unknown paths
    and for requests answered before routing (a body over the size limit)."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContext:
    """Request id, per-route metrics and one access log line for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500  # unless a response starts: an exception escaped
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                method = scope["method"] if scope["method"] in _METHODS else "other"
                route = _route_template(scope)
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.request_seconds.labels(method, route).observe(elapsed)
                client = scope.get("client")
                access_log.log(
                    logging.ERROR if status >= 500 else logging.INFO,
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    client=client[0] if client else None,
                )
