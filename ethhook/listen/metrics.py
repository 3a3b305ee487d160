"""The listener's Prometheus metrics and its `/metrics` + `/health` HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

log = logging.getLogger(__name__)

EVENTS_RECEIVED = Counter(
    "events_received_total", "Contract events published to the matcher", ["chain"]
)
CHAIN_HEAD = Gauge("chain_head_block", "Latest block number the node reported", ["chain"])
CURSOR_BLOCK = Gauge("listener_cursor_block", "Last block fully processed and published", ["chain"])
LAG_BLOCKS = Gauge(
    "listener_lag_blocks", "Blocks between the node's head and the cursor", ["chain"]
)
RPC_ERRORS = Counter("listener_rpc_errors_total", "Failed passes, by chain", ["chain"])
REORGS = Counter("listener_reorgs_total", "Reorgs detected by parent hash", ["chain"])


async def serve(
    port: int,
    health: Callable[[], dict[str, Any]],
    host: str = "0.0.0.0",  # noqa: S104
) -> asyncio.AbstractServer | None:
    """Serve GET /metrics and GET /health; returns None (and logs) when the port is taken."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/metrics"):
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest()
            elif path.startswith("/health"):
                report = health()
                status = "200 OK" if report["ok"] else "503 Service Unavailable"
                ctype, body = "application/json", json.dumps(report).encode()
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, OSError, UnicodeError) as exc:
            log.debug("listen.metrics.request_failed error=%s", exc)
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port)
    except OSError as exc:
        log.error(
            "listen.metrics.unavailable port=%d error=%s; continuing without /metrics", port, exc
        )
        return None
    log.info("listen.metrics.serving port=%d paths=/metrics,/health", port)
    return server
