"""`x-request-id` on every answer, and as `request_id` on every line logged while answering.

The caller's id is kept when it is well formed (a proxy's or a client's: one id across their logs
and ours), otherwise a fresh one is made.
"""

from __future__ import annotations

import re
import uuid

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ethhook.api.asgi import HttpMiddleware
from ethhook.logs import log_fields

HEADER = "x-request-id"
# What an incoming id may be: short, and nothing a log line or a header could be confused by.
WELL_FORMED = re.compile(r"[A-Za-z0-9._-]{1,128}")


def request_id_for(incoming: str | None) -> str:
    """The caller's id if it is well formed, else a new one (32 hex digits)."""
    if incoming is not None and WELL_FORMED.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def install(app: Starlette) -> None:
    """Put RequestId around everything, Starlette's own 500 answer (ServerErrorMiddleware, which
    `add_middleware` cannot reach around) included."""
    build = app.build_middleware_stack

    def build_with_request_ids() -> ASGIApp:
        return RequestId(build())

    app.build_middleware_stack = build_with_request_ids  # type: ignore[method-assign]


class RequestId(HttpMiddleware):
    """Every answer carries the id, and every line logged meanwhile."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_for(Headers(scope=scope).get(HEADER))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers.append((HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with log_fields(request_id=request_id):
            await self.app(scope, receive, send_with_id)
