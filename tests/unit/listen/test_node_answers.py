"""A node's answers parsed strictly: anything malformed is an RpcBadResponse (one log line, a
retry), never another exception, a crashed chain task or a value stored as it came."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ethhook.config import ChainConfig
from ethhook.listen.errors import RpcBadResponse
from ethhook.listen.records import parse_header, parse_log, quantity
from ethhook.listen.replay import fetch_range
from ethhook.listen.rpc import HttpTransport, RpcClient, WebSocketTransport
from tests.support.rawlogs import H1, H2, raw_log

# --- records --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["0x10\n", "0x\u0661", "0x1_0", " 0x10", "16", 16, None, "0x" + "f" * 65]
)
def test_a_quantity_is_0x_and_ascii_hex_only(value):
    with pytest.raises(RpcBadResponse):
        quantity(value, "block number", "eth_blockNumber")


def test_a_hash_with_a_trailing_newline_is_refused_not_stored_as_67_characters():
    header = {"number": "0x1", "hash": H1 + "\n", "parentHash": H2, "timestamp": "0x1"}
    with pytest.raises(RpcBadResponse, match="block hash"):
        parse_header(header)


@pytest.mark.parametrize(
    "override",
    [
        {"blockHash": H1 + "\n"},
        {"transactionHash": "0x" + "aa" * 32 + "\n"},
        {"topics": [H2 + "\n"]},
        {"address": "0x" + "ab" * 20 + "\n"},
        {"data": "0x00\n"},
        {"logIndex": "0x0\n"},
        {"removed": "false"},  # a string: truthy, and the log would have been dropped unseen
        {"removed": 0},
    ],
)
def test_log_fields_with_anything_extra_are_bad_responses(override):
    with pytest.raises(RpcBadResponse):
        parse_log(raw_log(**override), chain_id=1)


@pytest.mark.parametrize(("removed", "expected"), [(True, True), (False, False), (None, False)])
def test_removed_is_a_boolean_or_absent(removed, expected):
    assert parse_log(raw_log(removed=removed), chain_id=1).removed is expected
    assert parse_log({k: v for k, v in raw_log().items() if k != "removed"}, 1).removed is False


# --- transports, against a node on loopback answering what each test says ----------------------

Answer = Callable[[Any], bytes]


@pytest.fixture()
def http_node() -> Iterator[Callable[[Answer], str]]:
    """start(answer) → the URL of an HTTP JSON-RPC node answering answer(request) as its body."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> str:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = answer(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _call(url: str, method: str) -> Any:
    async def run() -> Any:
        client = RpcClient(HttpTransport(url))
        try:
            if method == "batch":
                return await client.batch([("eth_chainId", []), ("eth_blockNumber", [])])
            return await client.call(method, [])
        finally:
            await client.close()

    return asyncio.run(run())


DEEP_JSON_CALL = """
import asyncio, sys
import ethhook.listen.heads  # web3, as in a listener that follows a WebSocket
from ethhook.listen.errors import RpcBadResponse
from ethhook.listen.rpc import HttpTransport, RpcClient

async def main():
    client = RpcClient(HttpTransport(sys.argv[1]))
    try:
        await client.call("eth_blockNumber", [])
    except RpcBadResponse as exc:
        print(exc)
    finally:
        await client.close()

asyncio.run(main())
"""


def test_json_nested_too_deep_to_parse_is_a_bad_response_in_a_process_with_web3(http_node):
    url = http_node(lambda request: b"[" * 100_000 + b"]" * 100_000)
    result = subprocess.run(
        [sys.executable, "-c", DEEP_JSON_CALL, url], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.startswith("eth_blockNumber: answer is not JSON: '[[[[")


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}])
def test_a_batch_answer_with_an_id_that_is_no_id_is_a_bad_response(http_node, bad_id):
    def answer(request: Any) -> bytes:
        return json.dumps(
            [{"jsonrpc": "2.0", "id": bad_id, "result": "0x1"} for _ in request]
        ).encode()

    with pytest.raises(RpcBadResponse, match="ids do not match"):
        _call(http_node(answer), "batch")


@pytest.mark.parametrize("bad_id", [[1], {"a": 1}])
def test_a_websocket_answer_with_an_id_that_is_no_id_is_not_taken_for_ours(bad_id, monkeypatch):
    from websockets.asyncio.server import serve

    from ethhook.listen import rpc

    monkeypatch.setattr(rpc, "RPC_TIMEOUT_S", 1.0)

    async def run() -> Any:
        async def handler(ws: Any) -> None:
            async for message in ws:
                request = json.loads(message)
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": bad_id, "result": "0x1"}))
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x2"}))

        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            client = RpcClient(WebSocketTransport(f"ws://127.0.0.1:{port}"))
            try:
                return await client.call("eth_blockNumber", [])
            finally:
                await client.close()

    assert asyncio.run(run()) == "0x2"  # the answer with the unusable id is not ours


# --- a replay's read ---------------------------------------------------------------------------


@pytest.mark.parametrize("block_number", [None, 5, "0x5\n", "5"])
def test_a_replayed_log_with_a_bad_block_number_is_a_bad_response(http_node, block_number):
    log = raw_log(blockNumber=block_number)
    if block_number is None:
        del log["blockNumber"]

    def answer(request: Any) -> bytes:
        results = {"eth_blockNumber": "0x10", "eth_getLogs": [log]}
        if isinstance(request, list):
            return json.dumps(
                [{"jsonrpc": "2.0", "id": r["id"], "result": None} for r in request]
            ).encode()
        return json.dumps(
            {"jsonrpc": "2.0", "id": request["id"], "result": results.get(request["method"])}
        ).encode()

    chain = ChainConfig("ethereum", 1, http_url=http_node(answer))
    with pytest.raises(RpcBadResponse, match="blockNumber"):
        fetch_range(chain, 1, 10, None)
