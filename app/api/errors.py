"""Errors as JSON ``{"error": {"code", "message", "field"?}}``, and the body size limit.

Order of refusal: a body declared larger than the limit is refused (413) before anything
is read; then a request the route's key does not admit is refused (401), even when its
body is broken; then a body that is not JSON (400) or not a valid article (422).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.auth import refusal
from app.api.schemas import ErrorResponse
from app.service.workers import WorkerCrashed

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with its own ``code`` (otherwise the code follows the status) and ``field``."""

    def __init__(self, status_code: int, message: str, *, code: str, field: str | None = None, headers=None):
        super().__init__(status_code, message, headers)
        self.code = code
        self.field = field


_EXAMPLES = {
    400: {"code": "invalid_json", "message": "request body is not acceptable JSON: Expecting value"},
    401: {"code": "unauthorized", "message": "missing or wrong bearer token"},
    404: {"code": "not_found", "message": "cluster 99 does not exist"},
    409: {"code": "conflict", "message": "story 7 was merged into story 12: move into story 12 instead"},
    413: {"code": "too_large", "message": "request body is larger than 5000000 bytes"},
    422: {"code": "invalid", "message": "Input should be greater than or equal to 1", "field": "limit"},
    503: {"code": "unavailable", "message": "database unavailable, retry later"},
}
_DOCUMENTED = {
    400: "The body is not JSON, or is ambiguous JSON (a repeated key, NaN); nothing was stored.",
    401: "Missing or wrong bearer token (writes when STORIES_API_KEY is set, reads when STORIES_READ_API_KEY is set).",
    404: "No such resource.",
    409: "The request does not fit the stories as they are now (the error says how); nothing was changed.",
    413: "Body larger than STORIES_MAX_BODY_BYTES (default 5,000,000 bytes), or a batch of more than "
    "STORIES_MAX_BATCH (default 500) articles; nothing was stored.",
    422: "A field, parameter or cursor is missing or invalid (the error names it); nothing was stored.",
    503: "The database, or a worker preparing the articles, is unavailable; nothing was stored; retry after "
    "Retry-After seconds. A write or match sent to a process serving reads only (STORIES_ROLE=reader) gets 503 "
    "read_only, without Retry-After: send it to a writer.",
}


def documented(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries for these error statuses, all with the JSON error body."""
    return {
        status: {
            "model": ErrorResponse,
            "description": _DOCUMENTED[status],
            "content": {"application/json": {"example": {"error": _EXAMPLES[status]}}},
        }
        for status in statuses
    }


def _parse_failure(exc: StarletteHTTPException) -> str | None:
    """What was wrong with a body that could not be parsed, from the exception under FastAPI's 400."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return f"request body is not valid UTF-8: byte 0x{cause.object[cause.start]:02x} at position {cause.start}"
    if isinstance(cause, RecursionError):
        return "request body is not acceptable JSON: nested too deeply"
    if isinstance(cause, ValueError):
        return f"request body is not acceptable JSON: {cause}"
    return None


def error_body(code: str, message: str, field: str | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": error_body(code, message, field)}, status_code=status, headers=headers)


_LOCATIONS = ("body", "query", "path", "header", "cookie")


def describe_validation(errors: list[dict], *, located: bool = True) -> tuple[str, str, str | None]:
    """(code, message, field) of the first pydantic error, readable by a person.

    ``located``: the error comes from a request, its ``loc`` starting with where the value
    was (``body``, ``query``...); not for a model validated directly (a batch item), where a
    field may itself be called ``body``.
    """
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    if located and loc and loc[0] in _LOCATIONS:
        loc = loc[1:]
    field = ".".join(loc) if loc else None
    kind = first.get("type", "")
    if kind == "json_invalid":
        return "invalid_json", "request body is not valid JSON: " + str(first.get("ctx", {}).get("error", "")), None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if not loc and kind == "missing":
        return "invalid_json", "request body is required: a JSON object", None
    if not loc and kind in ("model_attributes_type", "dict_type", "model_type"):
        return "invalid_json", "request body must be a JSON object (Content-Type: application/json)", None
    if kind == "extra_forbidden":
        message = f"unknown field '{field}'"
    elif kind == "missing":
        message = f"'{field}' is required"
    elif field and field not in message:
        message = f"{field}: {message}"
    return "invalid", message, field


def _refused(request: Request) -> JSONResponse | None:
    refused = refusal(request)
    if refused is None:
        return None
    return error_response(refused.status_code, "unauthorized", refused.detail, headers=refused.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if (refused := _refused(request)) is not None:
            return refused
        code, message, field = describe_validation(list(exc.errors()))
        return error_response(400 if code == "invalid_json" else 422, code, message, field)

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        # The database is unreachable or refused the transaction: nothing was
        # acknowledged, so the client may retry.
        return error_response(
            503, "unavailable", "the database is unavailable; retry later", headers={"Retry-After": "5"}
        )

    @app.exception_handler(WorkerCrashed)
    async def _worker(_request: Request, exc: WorkerCrashed) -> JSONResponse:
        # A prepare worker died under this request's articles (it is started again):
        # nothing of them was stored, so the client may retry.
        log.error("prepare worker lost: %s", exc)
        return error_response(
            503,
            "unavailable",
            "a worker preparing these articles stopped; nothing was stored; retry",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code != 401 and (refused := _refused(request)) is not None:
            return refused
        if isinstance(exc, ApiError):
            return error_response(exc.status_code, exc.code, exc.detail, exc.field, headers=exc.headers)
        if exc.status_code == 400 and (problem := _parse_failure(exc)) is not None:
            return error_response(400, "invalid_json", problem)
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), detail, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: answer in the API's error shape; the traceback goes to the log.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(
            500, "internal", "internal error (logged); a write may be retried: it is idempotent by url or external_id"
        )


class BodyLimit:
    """Reject request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        too_large = error_response(
            413, "too_large", f"request body exceeds {self.max_bytes} bytes (the limit is STORIES_MAX_BODY_BYTES)"
        )
        if declared is not None:
            try:
                if int(declared) > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                await error_response(400, "bad_request", "invalid Content-Length")(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(
                        413, f"request body exceeds {self.max_bytes} bytes (the limit is STORIES_MAX_BODY_BYTES)"
                    )
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


class _TooLarge(StarletteHTTPException):
    """Raised while the body streams in; FastAPI re-raises HTTP exceptions from body reading."""
