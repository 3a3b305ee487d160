"""The API's Prometheus metrics: every request counted and timed by its route template, and the
API process's own GET /metrics (its requests and process figures, not the pipeline's gauges,
which the listener serves)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from re import Pattern

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ethhook import metrics
from ethhook.api.asgi import HttpMiddleware
from ethhook.metrics import build_exposition_registry

UNMATCHED = "unmatched"  # any path no route has: one series, not one per path tried


def route_template(scope: Scope, templates: Sequence[tuple[Pattern[str], str]]) -> str:
    """The template of the route that took the request (e.g. /v1/endpoints/{endpoint_id}); for
    an answer given before routing (401, 413, 429), the documented path the request names."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return str(route.path)
    for pattern, template in templates:
        if pattern.match(scope["path"]):
            return template
    return UNMATCHED


class RequestMetrics(HttpMiddleware):
    """Outermost middleware: times each request and counts it by route, method and status."""

    def __init__(self, app: ASGIApp, paths: Callable[[], Iterable[str]]) -> None:
        super().__init__(app)
        self.paths = paths
        self._templates: list[tuple[Pattern[str], str]] | None = None

    def templates(self) -> list[tuple[Pattern[str], str]]:
        if self._templates is None:
            self._templates = [(compile_path(path)[0], path) for path in self.paths()]
        return self._templates

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            metrics.record_api_request(
                route_template(scope, self.templates()),
                scope["method"],
                status,
                time.perf_counter() - started,
            )


def metrics_router() -> APIRouter:
    registry: CollectorRegistry = build_exposition_registry(extra=())
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    def prometheus(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(registry), media_type=content_type)

    return router
