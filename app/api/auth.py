"""Access control: who may write and who may read.

Writes need ``Authorization: Bearer <STORIES_API_KEY>`` when that key is set. Reads
(articles, clusters, match) need ``STORIES_READ_API_KEY`` (or the write key) when that
key is set, and are open otherwise. Health, readiness, metrics and the API docs are
always open. ``refusal`` is the one place that decides; the dependencies and the error
handlers (a request whose body is broken is still refused as unauthorised first) ask it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Annotated

from fastapi import HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import SecretStr

from app.config import Settings

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <STORIES_API_KEY>`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def presented_token(request: Request) -> str | None:
    """The bearer token of the request, or None."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    return token if scheme.lower() == "bearer" and token else None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def token_matches(token: str | None, *keys: SecretStr | None) -> bool:
    """Whether ``token`` is one of ``keys``, in time independent of where they differ.

    Both sides are hashed first, so ``hmac.compare_digest`` always compares 32 bytes and
    neither the key's content nor its length shows in the time taken; every key is tried.
    """
    given = _digest(token or "")
    matched = False
    for key in keys:
        if key is not None:
            matched |= hmac.compare_digest(given, _digest(key.get_secret_value()))
    return matched and token is not None


def arrived_from_outside(request: Request) -> bool:
    """Whether the request reached this process on a non-loopback address (the server's
    end of the connection, whatever started the server and on whatever address)."""
    server = request.scope.get("server")
    if not server:  # a Unix socket: only this machine reaches it
        return False
    try:
        return not ipaddress.ip_address(server[0]).is_loopback
    except ValueError:  # a name, not an address (a test client's "testserver")
        return False


def _write_refusal(settings: Settings, token: str | None, outside: bool) -> HTTPException | None:
    if settings.api_key is None:
        if outside and not settings.allow_anonymous_writes:
            # The same rule `stories serve` applies at start, for a server started another
            # way (`uvicorn app.main:app --host 0.0.0.0`): anonymous writes stay on this machine.
            return HTTPException(
                403,
                "this server takes writes from other machines only with a key: set STORIES_API_KEY, or "
                "STORIES_ALLOW_ANONYMOUS_WRITES=true if anonymous writes are intended",
            )
        return None
    if token_matches(token, settings.api_key):
        return None
    return HTTPException(401, "a valid 'Authorization: Bearer <key>' header is required for writes", headers=_CHALLENGE)


def _read_refusal(settings: Settings, token: str | None) -> HTTPException | None:
    if settings.read_api_key is None or token_matches(token, settings.read_api_key, settings.api_key):
        return None
    return HTTPException(
        401,
        "a valid 'Authorization: Bearer <key>' header is required for reads (STORIES_READ_API_KEY is set)",
        headers=_CHALLENGE,
    )


async def require_writer(
    request: Request,
    # Declares the bearer scheme in the OpenAPI schema; the token is read by ``presented_token``.
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    settings = request.app.state.settings
    if (refused := _write_refusal(settings, presented_token(request), arrived_from_outside(request))) is not None:
        raise refused


async def require_reader(request: Request) -> None:
    if (refused := _read_refusal(request.app.state.settings, presented_token(request))) is not None:
        raise refused


def refusal(request: Request) -> HTTPException | None:
    """The 401 (or 403) the matched route owes this request, if any (None: allowed, or no such route)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    calls = {dependency.call for dependency in getattr(dependant, "dependencies", ())}
    token = presented_token(request)
    if require_writer in calls:
        return _write_refusal(request.app.state.settings, token, arrived_from_outside(request))
    if require_reader in calls:
        return _read_refusal(request.app.state.settings, token)
    return None
