"""How `ethhook api` serves: uvicorn with bounded connections and a deadline on the headers of
every request (the body's deadline is guard.BodyLimit's)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ethhook.config import Settings

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


def with_header_deadline(timeout_s: float) -> type[H11Protocol]:
    return type("HeaderDeadlineProtocol", (HeaderDeadline,), {"timeout_s": timeout_s})


def serve(app: Any, settings: Settings) -> None:
    """Run `app` until SIGINT or SIGTERM."""
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        http=with_header_deadline(settings.api_header_timeout_s),
        ws="none",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=settings.api_max_connections,
        timeout_keep_alive=KEEP_ALIVE_S,
        log_level="info",
        access_log=False,  # api_requests_total counts requests; logs say what went wrong
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )
