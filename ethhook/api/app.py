"""The FastAPI application: routes, errors as problem+json, and the middleware around them.

Outermost first: request metrics → CORS (only with ETHHOOK_API_CORS_ORIGINS) → the body limit and
deadline → the limits on callers and authentication of /v1 → Idempotency-Key on POST → the
routes. How uvicorn serves it (connections, the headers' deadline) is `serving`'s.
"""

from __future__ import annotations

from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ethhook import __version__
from ethhook.api import health, problems, requestid
from ethhook.api.guard import BodyLimit, Guard
from ethhook.api.idempotency import Idempotency, IdempotencyStore
from ethhook.api.metrics import RequestMetrics, metrics_router
from ethhook.api.ratelimit import ApiRateLimiter
from ethhook.api.routes import (
    applications,
    deliveries,
    endpoints,
    explain,
    ops,
    replays,
    stats,
)
from ethhook.config import Settings
from ethhook.deliver.protect import redis_client

# Threads of the guard's own (authentication, rate limits, Idempotency-Key), apart from the
# shared pool sync routes run on: however busy the routes, a request is authenticated at once.
GUARD_THREADS = 16

# Explains under way at once per API process; more wait for a thread.
EXPLAIN_THREADS = 8

DESCRIPTION = """On-chain EVM events delivered as signed, retried webhooks.

Authenticate with `Authorization: Bearer <key>`: an application's key sees only its own
resources (another application's are 404), the operator key sees every one. Errors are
`application/problem+json` (RFC 9457). Lists are `{"data": [...], "next_cursor": ...}`: pass
`next_cursor` as `cursor` for the next page. Every POST honours `Idempotency-Key` for 24 hours.
"""


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="EthHook",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    # Test webhooks wait on threads of their own (at most as many as may be under way).
    app.state.test_send_threads = CapacityLimiter(settings.api_test_sends_total)
    # Explains, which may wait for a chain node, on threads of their own (routes/explain.py).
    app.state.explain_threads = CapacityLimiter(EXPLAIN_THREADS)
    problems.install(app)
    for module in (endpoints, deliveries, explain, replays, stats, applications, ops):
        app.include_router(module.router)
    app.include_router(health.router)
    app.include_router(metrics_router())
    _add_middleware(app, settings)
    _document_problem(app)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """Added innermost first (Starlette wraps each new one around the previous ones)."""
    client = redis_client(settings.redis_url)
    threads = CapacityLimiter(GUARD_THREADS)
    app.add_middleware(
        Idempotency,
        store=IdempotencyStore(client),
        max_body_bytes=settings.api_max_body_bytes,
        server_keys=settings.secret_keys,
        threads=threads,
    )
    failures = (settings.api_auth_failure_rate_per_s, settings.api_auth_failure_burst)
    app.add_middleware(
        Guard,
        limiter=ApiRateLimiter(client, settings.api_rate_limit_per_s, settings.api_rate_burst),
        failures=ApiRateLimiter(client, *failures),
        threads=threads,
    )
    app.add_middleware(
        BodyLimit, max_bytes=settings.api_max_body_bytes, timeout_s=settings.api_body_timeout_s
    )
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api_cors_origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(RequestMetrics, paths=lambda: app.openapi()["paths"])
    requestid.install(app)


def _document_problem(app: FastAPI) -> None:
    """Make sure the Problem schema is in the OpenAPI components the error responses name."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault("Problem", problems.Problem.model_json_schema())
            components.setdefault("ProblemError", problems.ProblemError.model_json_schema())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
