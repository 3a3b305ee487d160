"""Read again from a chain node what the listener reads: a block range for replay jobs (one chunk
at a time), one transaction's logs for `ethhook explain`."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from ethhook.config import ChainConfig
from ethhook.exceptions import InputError
from ethhook.listen.errors import RpcBadResponse, RpcError
from ethhook.listen.records import BlockHeader, logs_to_events, quantity
from ethhook.listen.rpc import RpcClient
from ethhook.types import ChainEvent

MAX_RANGE_BLOCKS = 1000
MIN_RANGE_BLOCKS = 1

T = TypeVar("T")


def _require_node(chain: ChainConfig) -> None:
    if not chain.enabled:
        var = chain.name.upper()
        raise InputError(
            f"chain {chain.name} ({chain.chain_id}) has no node URL: set {var}_HTTP or {var}_WS"
        )


async def _head(chain: ChainConfig) -> int:
    client = RpcClient.for_urls(chain.http_url, chain.ws_url)
    try:
        return await client.block_number()
    finally:
        await client.close()


async def _fetch(
    chain: ChainConfig, from_block: int, to_block: int, addresses: Sequence[str] | None
) -> tuple[list[ChainEvent], int]:
    client = RpcClient.for_urls(chain.http_url, chain.ws_url)
    try:
        head = await client.block_number()
        if to_block > head:
            raise InputError(f"block {to_block} is past the chain's head ({head})")
        events: list[ChainEvent] = []
        start, size = from_block, MAX_RANGE_BLOCKS
        while start <= to_block:
            end = min(start + size - 1, to_block)
            try:
                raw = await client.logs(start, end, addresses)
            except RpcError:
                if size <= MIN_RANGE_BLOCKS:
                    raise
                size = max(MIN_RANGE_BLOCKS, size // 4)  # the node refused the range: ask less
                continue
            numbers = sorted(
                {
                    quantity(log.get("blockNumber"), "log blockNumber", "eth_getLogs")
                    for log in raw
                    if isinstance(log, dict)
                }
            )
            headers: dict[int, BlockHeader] = {
                h.number: h for h in await client.headers(numbers) if h is not None
            }
            wanted = frozenset(a.lower() for a in addresses) if addresses is not None else None
            events.extend(logs_to_events(raw, chain.chain_id, headers, wanted))
            start = end + 1
        return events, head
    finally:
        await client.close()


@dataclass(frozen=True)
class TransactionLogs:
    """A mined transaction as its receipt tells it: its block and its logs."""

    block_number: int
    block_hash: str
    block_timestamp: int
    events: list[ChainEvent]


async def _transaction(chain: ChainConfig, tx_hash: str) -> TransactionLogs | None:
    client = RpcClient.for_urls(chain.http_url, chain.ws_url)
    method = "eth_getTransactionReceipt"
    try:
        receipt = await client.call(method, [tx_hash])
        if receipt is None:  # unknown to the node, or not mined yet
            return None
        if not isinstance(receipt, dict):
            raise RpcBadResponse(method, "the receipt is not an object")
        number = quantity(receipt.get("blockNumber"), "receipt blockNumber", method)
        (header,) = await client.headers([number])
        if header is None:
            raise RpcBadResponse(method, f"the receipt's block {number} is unknown to the node")
        raw = receipt.get("logs")
        if not isinstance(raw, list):
            raise RpcBadResponse(method, "the receipt's logs are not a list")
        events = logs_to_events(raw, chain.chain_id, {number: header}, None)
        return TransactionLogs(number, header.hash, header.timestamp, events)
    finally:
        await client.close()


def transaction_logs(chain: ChainConfig, tx_hash: str) -> TransactionLogs | None:
    """The transaction's block and canonical logs from its receipt; None when the node does not
    know the transaction (or has not mined it)."""
    _require_node(chain)
    return _run(_transaction(chain, tx_hash))


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(coroutine), from any caller.

    Under a gevent pool every task is a greenlet of one OS thread, and asyncio keeps one running
    loop per OS thread: a second chunk starting while another waits on the node would find the
    first one's loop running and fail. There the loop runs in a real thread (the hub's pool)
    while the calling greenlet waits without holding up the others.
    """
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return asyncio.run(coroutine)
    import gevent

    def in_thread() -> tuple[T | None, BaseException | None]:
        # The error is handed back, not raised there: gevent's pool would print it as a crash.
        try:
            return asyncio.run(coroutine), None
        except BaseException as exc:  # noqa: BLE001 (re-raised in the calling greenlet)
            return None, exc

    result, error = gevent.get_hub().threadpool.apply(in_thread)
    if error is not None:
        raise error
    return cast(T, result)


def chain_head(chain: ChainConfig) -> int:
    """The chain's head block number, from its node (a replay's range must end at or before it)."""
    _require_node(chain)
    return _run(_head(chain))


def fetch_range(
    chain: ChainConfig, from_block: int, to_block: int, addresses: Sequence[str] | None
) -> tuple[list[ChainEvent], int]:
    """The canonical events of blocks from_block..to_block, and the chain's head block number."""
    _require_node(chain)
    return _run(_fetch(chain, from_block, to_block, addresses))
