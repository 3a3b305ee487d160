"""Raw JSON-RPC clients for everything but subscriptions: HTTP (aiohttp) or a second WebSocket.

Raw JSON, not web3's result formatters: `records` validates the answers already, and the
formatters' per-field conversions would dominate the cost of reading `eth_getLogs`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection

from ethhook.listen.errors import (
    RpcBadResponse,
    RpcConnectionError,
    RpcErrorResponse,
    RpcTimeout,
    error_text,
)
from ethhook.listen.records import BlockHeader, parse_header, quantity

# Seconds to wait for one answer (a whole batch counts as one).
RPC_TIMEOUT_S = 10.0
# Answers larger than this are refused (a provider gone mad must not exhaust memory).
MAX_RESPONSE_BYTES = 256 * 1024 * 1024

Call = tuple[str, list[Any]]


class Transport(Protocol):
    async def send(self, payload: Any, label: str) -> Any: ...

    async def close(self) -> None: ...


def _parse(text: bytes | str, label: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested too deep
        preview = text[:60] if isinstance(text, str) else text[:60].decode("utf-8", "replace")
        raise RpcBadResponse(label, f"answer is not JSON: {preview!r}") from None


class HttpTransport:
    """JSON-RPC over HTTP POST, one aiohttp session per chain."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    async def send(self, payload: Any, label: str) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=RPC_TIMEOUT_S),
                read_bufsize=2**20,
            )
        try:
            async with self._session.post(
                self.url,
                data=json.dumps(payload),
                headers={"content-type": "application/json"},
            ) as response:
                if response.content_length and response.content_length > MAX_RESPONSE_BYTES:
                    raise RpcBadResponse(label, f"answer of {response.content_length} bytes")
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(1 << 20):
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise RpcBadResponse(
                            label, f"answer larger than {MAX_RESPONSE_BYTES} bytes"
                        )
                    chunks.append(chunk)
                body = b"".join(chunks)
                if response.status != 200 and not body.startswith((b"{", b"[")):
                    raise RpcBadResponse(label, f"HTTP {response.status}: {body[:60]!r}")
        except TimeoutError:
            raise RpcTimeout(label, f"no answer within {RPC_TIMEOUT_S:g}s") from None
        except aiohttp.ClientError as exc:
            raise RpcConnectionError(label, error_text(exc, self.url)) from None
        return _parse(body, label)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class WebSocketTransport:
    """JSON-RPC over a WebSocket of its own (never the subscription connection), one call at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()

    async def send(self, payload: Any, label: str) -> Any:
        wanted = {p["id"] for p in payload} if isinstance(payload, list) else {payload["id"]}
        async with self._lock:
            try:
                async with asyncio.timeout(RPC_TIMEOUT_S):
                    if self._ws is None:
                        self._ws = await websockets.connect(
                            self.url, max_size=MAX_RESPONSE_BYTES, open_timeout=RPC_TIMEOUT_S
                        )
                    await self._ws.send(json.dumps(payload))
                    while True:
                        answer = _parse(await self._ws.recv(), label)
                        ids = _ids(answer if isinstance(answer, list) else [answer])
                        if ids & wanted or None in ids:
                            return answer
            except TimeoutError:
                await self._drop()
                raise RpcTimeout(label, f"no answer within {RPC_TIMEOUT_S:g}s") from None
            except (OSError, websockets.WebSocketException) as exc:
                await self._drop()
                raise RpcConnectionError(label, error_text(exc, self.url)) from None

    async def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


class RpcClient:
    """The handful of calls the listener makes, with answers checked before anyone uses them."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._next_id = 1

    @classmethod
    def for_urls(cls, http_url: str | None, ws_url: str | None) -> RpcClient:
        if http_url:
            return cls(HttpTransport(http_url))
        if ws_url:
            return cls(WebSocketTransport(ws_url))
        raise ValueError("a chain needs an HTTP or a WebSocket URL")

    async def call(self, method: str, params: list[Any]) -> Any:
        request_id = self._take_ids(1)
        answer = await self.transport.send(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}, method
        )
        return _result(answer, method)

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Several calls in one JSON-RPC batch; any failed item fails the batch."""
        if not calls:  # a range without logs asks for no headers
            return []
        if len(calls) == 1:
            return [await self.call(*calls[0])]
        label = f"{calls[0][0]} x{len(calls)}"
        first = self._take_ids(len(calls))
        payload = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        answer = await self.transport.send(payload, label)
        if isinstance(answer, dict) and "error" in answer:
            _result(answer, label)  # a batch refused as a whole
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise RpcBadResponse(label, f"batch answer is not a list of {len(calls)} items")
        by_id = {a.get("id"): a for a in answer if isinstance(a, dict) and _is_id(a.get("id"))}
        if len(by_id) != len(calls) or any(first + i not in by_id for i in range(len(calls))):
            raise RpcBadResponse(label, "batch answer ids do not match the request")
        return [_result(by_id[first + i], calls[i][0]) for i in range(len(calls))]

    def _take_ids(self, count: int) -> int:
        first = self._next_id
        self._next_id += count
        return first

    async def close(self) -> None:
        await self.transport.close()

    # --- the calls -----------------------------------------------------------------------------

    async def block_number(self) -> int:
        return quantity(await self.call("eth_blockNumber", []), "block number", "eth_blockNumber")

    async def headers(self, numbers: Sequence[int]) -> list[BlockHeader | None]:
        """Canonical headers by number; None for a number the node does not have (yet)."""
        raw = await self.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        result: list[BlockHeader | None] = []
        for number, block in zip(numbers, raw, strict=True):
            if block is None:
                result.append(None)
                continue
            header = parse_header(block)
            if header.number != number:
                raise RpcBadResponse(
                    "eth_getBlockByNumber", f"asked for block {number}, got {header.number}"
                )
            result.append(header)
        return result

    async def logs(
        self,
        from_block: int,
        to_block: int,
        addresses: Sequence[str] | None,
        topics: Sequence[str] | None = None,
    ) -> list[Any]:
        """Raw logs of a block range (all contracts when `addresses` is None; any topic0 when
        `topics` is None, else one of them)."""
        query = {"fromBlock": hex(from_block), "toBlock": hex(to_block)}
        return await self._get_logs(query, addresses, topics)

    async def block_logs(
        self, block_hash: str, addresses: Sequence[str] | None, topics: Sequence[str] | None
    ) -> list[Any]:
        """Raw logs of one block by its hash (EIP-234): a node that does not have that block
        answers an error, never an empty list."""
        return await self._get_logs({"blockHash": block_hash}, addresses, topics)

    async def _get_logs(
        self,
        query: dict[str, Any],
        addresses: Sequence[str] | None,
        topics: Sequence[str] | None,
    ) -> list[Any]:
        if addresses is not None:
            query["address"] = list(addresses)
        if topics is not None:
            query["topics"] = [list(topics)]
        result = await self.call("eth_getLogs", [query])
        if not isinstance(result, list):
            raise RpcBadResponse("eth_getLogs", f"result is not a list: {str(result)[:60]!r}")
        return result


def _is_id(value: object) -> bool:
    """An answer's id that can be one we sent (an integer), or null (an error about a request)."""
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _ids(answers: list[Any]) -> set[int | None]:
    return {a.get("id") for a in answers if isinstance(a, dict) and _is_id(a.get("id"))}


def _result(answer: Any, method: str) -> Any:
    if not isinstance(answer, dict) or answer.get("jsonrpc") != "2.0":
        raise RpcBadResponse(method, f"not a JSON-RPC answer: {str(answer)[:60]!r}")
    if "error" in answer:
        error = answer["error"]
        if isinstance(error, dict):
            raise RpcErrorResponse(method, error.get("code"), str(error.get("message", ""))[:300])
        raise RpcErrorResponse(method, None, str(error)[:300])
    if "result" not in answer:
        raise RpcBadResponse(method, "answer has neither result nor error")
    return answer["result"]
