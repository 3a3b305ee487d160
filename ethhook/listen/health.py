"""The listener's HTTP endpoint: GET /metrics (ethhook.metrics' exposition) and GET /health (JSON)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from ethhook.metrics import exposition

log = logging.getLogger(__name__)


async def serve(
    port: int, health: Callable[[], dict[str, Any]], host: str
) -> asyncio.AbstractServer | None:
    """Serve /metrics and /health on `host` (the settings' metrics_host); returns None (and logs)
    when the port is taken."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            headers: dict[str, str] = {}
            while True:
                line = await asyncio.wait_for(reader.readline(), 5)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path.startswith("/metrics"):
                # Scrape-time gauges query the database and the broker: not on the event loop.
                body, ctype = await asyncio.to_thread(exposition, headers.get("accept"))
                status = "200 OK"
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
            log.debug("listen.http.request_failed error=%s", exc)
        finally:
            writer.close()

    try:
        server = await asyncio.start_server(handle, host, port)
    except OSError as exc:
        log.error(
            "listen.http.unavailable port=%d error=%s; continuing without /metrics and /health",
            port,
            exc,
        )
        return None
    log.info("listen.http.serving port=%d paths=/metrics,/health", port)
    return server
