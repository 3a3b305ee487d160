"""The listener's /health endpoint listens on the host it is given (ETHHOOK_METRICS_HOST)."""

from __future__ import annotations

import asyncio
import json

from ethhook.listen.health import serve


async def get(host: str, port: int, path: str) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status, _, rest = answer.partition(b"\r\n")
    return status.decode(), rest.partition(b"\r\n\r\n")[2]


def test_health_is_served_on_the_configured_host_only():
    async def scenario() -> None:
        server = await serve(0, lambda: {"ok": False, "chains": {}}, "127.0.0.1")
        assert isinstance(server, asyncio.Server)
        try:
            host, port = server.sockets[0].getsockname()[:2]
            assert host == "127.0.0.1"
            assert len(server.sockets) == 1
            status, body = await get(host, port, "/health")
            assert status == "HTTP/1.1 503 Service Unavailable"
            assert json.loads(body) == {"ok": False, "chains": {}}
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
