"""Errors as JSON ``{"error": {"code", "message", "field"?}}``, and the body size limit."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def error_body(code: str, message: str, field: str | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return body


def error_response(status: int, code: str, message: str, field: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse({"error": error_body(code, message, field)}, status_code=status, headers=headers)


def describe_validation(errors: list[dict]) -> tuple[str, str, str | None]:
    """(code, message, field) of the first pydantic error, readable by a person."""
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc) or None
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


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, message, field = describe_validation(list(exc.errors()))
        return error_response(400 if code == "invalid_json" else 422, code, message, field)

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        # The database is unreachable or refused the transaction: nothing was
        # acknowledged, so the client may retry.
        return error_response(503, "unavailable", "the database is unavailable; retry later",
                              headers={"Retry-After": "5"})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), detail, headers=exc.headers)


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
        too_large = error_response(413, "too_large", f"request body exceeds {self.max_bytes} bytes")
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
                    raise _TooLarge(413, f"request body exceeds {self.max_bytes} bytes")
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
