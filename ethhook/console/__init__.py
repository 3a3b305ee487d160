"""The web console at /console/: server-rendered pages over the same service functions as the CLI
and the HTTP API (see `mount`)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from ethhook.config import Settings
from ethhook.console import actions, deliveries, endpoint_forms, explain, pages, replays
from ethhook.console.sessions import cookie_cipher
from ethhook.console.throttle import SignInThrottle
from ethhook.console.web import STATIC, Console, ConsoleRoute, error_page, make_templates
from ethhook.deliver.protect import redis_client

_fallback = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@_fallback.api_route("/{path:path}", methods=["GET", "POST"])
def not_found(request: Request, path: str) -> Response:
    return error_page(request, 404, "Not found", "There is no such page in the console.")


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the console's pages, actions and static files to `app`, under /console/."""
    throttle = SignInThrottle(redis_client(settings.redis_url), settings)
    app.state.ethhook_console = Console(
        settings, cookie_cipher(settings), make_templates(), throttle
    )
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(endpoint_forms.router)
    app.include_router(replays.router)
    app.include_router(deliveries.router)
    app.include_router(explain.router)
    app.include_router(_fallback)
