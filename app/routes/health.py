"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up (no I/O)")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Database reachable, schema at head, caches loaded")
def readyz(request: Request) -> JSONResponse:
    checks = {"database": False, "schema": False, "caches": bool(request.app.state.service.ready)}
    try:
        current = migrate.current(request.app.state.read_engine)
        checks["database"] = True
        checks["schema"] = current == migrate.head()
    except Exception:  # any failure to reach the database means not ready
        pass
    ok = all(checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)
