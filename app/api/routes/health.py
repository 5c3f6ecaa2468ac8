"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.store import migrate

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    summary="The process is up (no I/O)",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
def healthz() -> dict:
    return {"status": "ok"}


_READY = {"status": "ready", "checks": {"database": True, "schema": True, "caches": True}}
_NOT_READY = {"status": "not ready", "checks": {"database": True, "schema": False, "caches": False}}


@router.get(
    "/readyz",
    summary="Database reachable, schema at head, caches loaded",
    responses={
        200: {"description": "Ready to serve.", "content": {"application/json": {"example": _READY}}},
        503: {
            "description": "Not ready: the failing checks are false.",
            "content": {"application/json": {"example": _NOT_READY}},
        },
    },
)
def readyz(request: Request) -> JSONResponse:
    reader = request.app.state.settings.role == "reader"  # holds no caches: it needs none
    checks = {"database": False, "schema": False, "caches": reader or bool(request.app.state.service.ready)}
    try:
        current = migrate.current(request.app.state.read_engine)
        checks["database"] = True
        checks["schema"] = current == migrate.head()
    except Exception:  # any failure to reach the database means not ready
        pass
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)
