"""Who is calling: `Authorization: Bearer <key>` → a Principal (an application or the operator).

The guard middleware (guard.py) authenticates each /v1 request once and leaves the Principal in
the request's state; routes receive it through `current_principal`, whose Bearer scheme also
documents the authentication in the OpenAPI schema.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ethhook.api.problems import ApiProblem
from ethhook.db import session_scope
from ethhook.service.apps import Principal, authenticate

STATE_KEY = "principal"
REALM = 'Bearer realm="ethhook"'

bearer = HTTPBearer(
    auto_error=False,
    description="an application's API key (`ethhook app add`) or the operator key "
    "(`ethhook app operator-key`)",
)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The key in an `Authorization: Bearer <key>` header, or None when there is none."""
    value = headers.get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_fingerprint(token: str) -> str:
    """What rate limits and logs name a key by: never the key itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def resolve(token: str) -> Principal | None:
    """The key's Principal, or None for a key that is malformed, unknown or replaced."""
    with session_scope() as session:
        return authenticate(session, token)


def unauthorized(token_given: bool) -> ApiProblem:
    challenge = REALM + (', error="invalid_token"' if token_given else "")
    detail = (
        "the API key is unknown or was replaced; use the key `ethhook app add` or "
        "`ethhook app rotate-key` printed"
        if token_given
        else "missing API key: send `Authorization: Bearer <key>`"
    )
    return ApiProblem(401, "unauthorized", detail, headers={"WWW-Authenticate": challenge})


def principal_tag(principal: Principal) -> str:
    """A stable name for the caller, for keys kept per caller (idempotency records)."""
    return "operator" if principal.is_operator else f"app:{principal.application_id}"


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
) -> Principal:
    """The caller, as the guard middleware authenticated it (401 when it did not). Async, as
    it only reads the request: FastAPI would run a sync dependency on the shared thread pool."""
    principal = request.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(principal, Principal):
        raise unauthorized(credentials is not None)
    return principal
