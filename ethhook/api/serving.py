"""How `ethhook api` serves: uvicorn with bounded connections, a deadline on the headers of
every request (the body's deadline is guard.BodyLimit's), and an answer for the requests a stop
cuts off."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import uvicorn
from starlette.types import Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ethhook.api.asgi import HttpMiddleware
from ethhook.api.problems import send_problem
from ethhook.config import Settings

log = logging.getLogger(__name__)

# The request line and headers of one request, at most (h11 answers 400 beyond).
MAX_HEADER_BYTES = 16 * 1024
# An idle connection between requests is closed after this (uvicorn's default, made explicit).
KEEP_ALIVE_S = 5


class HeaderDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline while no request is being answered: from
    the moment the connection opens, or the previous answer ends, until the next request's
    headers are in. A client that trickles its headers (or the rest of a body the route did not
    read) is cut off at `timeout_s` however often it sends a byte."""

    timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Armed once while the connection waits for a request (never pushed back), off while
        one is answered."""
        answering = self.cycle is not None and not self.cycle.response_complete
        if answering or self.transport.is_closing():
            self._cancel()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.timeout_s, self._expired)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class AnswerWhenStopped(HttpMiddleware):
    """Outermost: a request still under way when a stop's grace runs out is cancelled by
    uvicorn; it is answered 503 (when nothing of its answer was sent yet) and logged in one line,
    where uvicorn would log the cancellation's traceback and answer a bare 500."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # handled here: the task ends with this answer
            log.warning(
                "api.request.cancelled method=%s path=%s (the server stopped before answering)",
                scope["method"],
                scope["path"],
            )
            if not started:
                detail = "the server stopped before this request was answered; send it again"
                headers = {"Connection": "close", "Retry-After": "5"}
                await send_problem(scope, receive, send, 503, "shutting-down", detail, headers)


def with_header_deadline(timeout_s: float) -> type[H11Protocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadline,), {"timeout_s": timeout_s})


def serve(app: Any, settings: Settings) -> None:
    """Run `app` until SIGINT or SIGTERM."""
    uvicorn.run(
        AnswerWhenStopped(app),
        host=settings.api_host,
        port=settings.api_port,
        http=with_header_deadline(settings.api_header_timeout_s),
        ws="none",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=settings.api_max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        log_config=None,  # uvicorn's lines go through ethhook.logs like every other
        access_log=False,  # api_requests_total counts requests; logs say what went wrong
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=math.ceil(settings.api_shutdown_grace_s),
    )
