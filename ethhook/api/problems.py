"""Errors as `application/problem+json` (RFC 9457): the model, the responses and the handlers.

Every error the API returns has this shape, whether a route, a middleware or FastAPI's own request
validation produced it. EthHook's exceptions map to statuses here, in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from ethhook.exceptions import (
    BusyError,
    EthHookError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    TooManyJobsError,
    TransientError,
)

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
# Problem types are URNs: stable identifiers that do not pretend to be pages.
TYPE_PREFIX = "urn:ethhook:problem:"


class ProblemError(BaseModel):
    """One invalid part of the request (FastAPI's request validation)."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(description="a URN naming the kind of problem")
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="the request path")
    errors: list[ProblemError] | None = None


class ApiProblem(Exception):
    """Raised by the API's own code to answer with a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})


def problem_body(
    status: int,
    kind: str,
    detail: str,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + kind,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int,
    kind: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    return JSONResponse(
        problem_body(status, kind, detail, instance, errors),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=dict(headers or {}),
    )


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    kind: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer from an ASGI middleware, before any route ran."""
    response = problem_response(status, kind, detail, instance=scope.get("path"), headers=headers)
    await response(scope, receive, send)


def classify(exc: Exception) -> tuple[int, str, str]:
    """(status, kind, detail) for an exception a route let through."""
    if isinstance(exc, NotFoundError):
        return 404, "not-found", str(exc)
    if isinstance(exc, PermissionDeniedError):
        return 403, "operator-only", str(exc)
    if isinstance(exc, TooManyJobsError):
        return 429, "too-many-jobs", str(exc)
    if isinstance(exc, BusyError):
        return 429, "too-many-in-flight", str(exc)
    if isinstance(exc, InputError):
        return 422, "invalid-input", str(exc)
    if isinstance(exc, TransientError):
        return 503, "unavailable", f"{exc}; try again later"
    if isinstance(exc, OperationalError | DBAPIError):
        return 503, "database-unavailable", "the database is unreachable; try again later"
    if isinstance(exc, PoolTimeout):  # every pooled connection stayed busy: load, not a bug
        return 503, "database-busy", "every database connection is busy; try again later"
    if isinstance(exc, EthHookError):
        return 500, "internal", str(exc)
    return 500, "internal", "an unexpected error occurred; it was logged"


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) if not isinstance(p, int) else p for p in e.get("loc", ())],
         "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]  # fmt: skip


def install(app: FastAPI) -> None:
    """Make every error the app raises a problem+json response."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem_response(
            exc.status, exc.kind, exc.detail, instance=request.url.path, headers=exc.headers
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"])
        return problem_response(
            422,
            "invalid-request",
            f"{where}: {message}" if where else message,
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        detail = str(exc.detail) if exc.detail else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.url.path} (see /openapi.json)"
        return problem_response(
            exc.status_code, kind, detail, instance=request.url.path, headers=exc.headers
        )

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        status, kind, detail = classify(exc)
        if status >= 500:
            log.error(
                "api.request.failed method=%s route=%s error=%s: %s",
                request.method,
                request.url.path,
                type(exc).__name__,
                exc,
                exc_info=status == 500,
            )
        headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, BusyError) else None
        return problem_response(status, kind, detail, instance=request.url.path, headers=headers)

    app.add_exception_handler(ApiProblem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(EthHookError, on_error)
    app.add_exception_handler(DBAPIError, on_error)
    app.add_exception_handler(PoolTimeout, on_error)
    app.add_exception_handler(Exception, on_error)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each status documented as a problem+json answer."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
