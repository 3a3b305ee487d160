"""The listener's JSON-RPC clients against loopback servers: answers that arrive in pieces, batches,
and a WebSocket transport against a real anvil node."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ethhook.listen.errors import RpcBadResponse, RpcErrorResponse
from ethhook.listen.rpc import HttpTransport, RpcClient, WebSocketTransport


class SlowServer:
    """Answers every POST with `answer(request)`, written in 64 KiB pieces 1 ms apart."""

    def __init__(self, answer: Any) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                body = json.dumps(answer(request)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                for start in range(0, len(body), 65536):
                    self.wfile.write(body[start : start + 65536])
                    self.wfile.flush()
                    time.sleep(0.001)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def log_entry(i: int) -> dict[str, Any]:
    return {"address": "0x" + "ab" * 20, "topics": ["0x" + "dd" * 32], "data": "0x" + "00" * 64,
            "blockNumber": "0x1", "blockHash": "0x" + "11" * 32, "transactionHash": "0x" + "22" * 32,
            "transactionIndex": "0x0", "logIndex": hex(i), "removed": False}


def test_a_large_answer_arriving_in_pieces_is_read_whole():
    logs = [log_entry(i) for i in range(20_000)]  # ~8 MB of JSON
    server = SlowServer(lambda r: {"jsonrpc": "2.0", "id": r["id"], "result": logs})
    try:
        async def fetch() -> list[Any]:
            client = RpcClient(HttpTransport(server.url))
            try:
                return await client.logs(1, 1, None)
            finally:
                await client.close()

        assert len(asyncio.run(fetch())) == 20_000
    finally:
        server.close()


def test_batch_answers_are_matched_by_id_whatever_their_order():
    def answer(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"jsonrpc": "2.0", "id": c["id"], "result": c["params"][0]} for c in reversed(calls)]

    server = SlowServer(answer)
    try:
        async def batch() -> list[Any]:
            client = RpcClient(HttpTransport(server.url))
            try:
                return await client.batch([("echo", [i]) for i in range(5)])
            finally:
                await client.close()

        assert asyncio.run(batch()) == [0, 1, 2, 3, 4]
    finally:
        server.close()


@pytest.mark.parametrize("answer, error", [
    (lambda calls: [{"jsonrpc": "2.0", "id": 999, "result": 1}] * len(calls), RpcBadResponse),
    (lambda calls: {"jsonrpc": "2.0", "id": None,
                    "error": {"code": -32600, "message": "batch too large"}}, RpcErrorResponse),
    (lambda calls: [{"jsonrpc": "2.0", "id": c["id"], "result": 1} for c in calls[:-1]],
     RpcBadResponse),
])
def test_a_wrong_batch_answer_is_an_rpc_error(answer, error):
    server = SlowServer(answer)
    try:
        async def batch() -> None:
            client = RpcClient(HttpTransport(server.url))
            try:
                await client.batch([("echo", [i]) for i in range(3)])
            finally:
                await client.close()

        with pytest.raises(error):
            asyncio.run(batch())
    finally:
        server.close()


def test_websocket_transport_calls_and_batches_on_a_real_node(start_anvil):
    node = start_anvil(chain_id=10)
    node.mine(3)

    async def calls() -> tuple[int, list[Any]]:
        client = RpcClient(WebSocketTransport(node.ws_url))
        try:
            head = await client.block_number()
            headers = await client.headers([1, 2, 3, 99])
            return head, headers
        finally:
            await client.close()

    head, headers = asyncio.run(calls())
    assert head == 3
    assert [h.number for h in headers[:3] if h is not None] == [1, 2, 3]
    assert headers[3] is None
    assert headers[1] is not None and headers[2] is not None
    assert headers[2].parent_hash == headers[1].hash
