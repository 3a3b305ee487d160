"""Raw JSON-RPC answers → plain records, validated at the edge (a malformed answer is an RpcError)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ethhook.listen.errors import ChainMoved, RpcBadResponse
from ethhook.types import ChainEvent

# Matched whole (fullmatch): with re.match, "$" also matches before a trailing newline.
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")


@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: str
    parent_hash: str
    timestamp: int


def quantity(value: Any, what: str, method: str) -> int:
    """A JSON-RPC quantity ("0x1a") as an int."""
    if isinstance(value, str) and _QUANTITY.fullmatch(value):
        return int(value, 16)
    raise RpcBadResponse(method, f"{what} is not a hex quantity: {_show(value)}")


def _hash(value: Any, what: str, method: str) -> str:
    if isinstance(value, str) and _HASH.fullmatch(value):
        return value.lower()
    raise RpcBadResponse(method, f"{what} is not a 32-byte hex hash: {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_header(raw: Any, method: str = "eth_getBlockByNumber") -> BlockHeader:
    if not isinstance(raw, dict):
        raise RpcBadResponse(method, f"block is not an object: {_show(raw)}")
    return BlockHeader(
        number=quantity(raw.get("number"), "block number", method),
        hash=_hash(raw.get("hash"), "block hash", method),
        parent_hash=_hash(raw.get("parentHash"), "parent hash", method),
        timestamp=quantity(raw.get("timestamp"), "block timestamp", method),
    )


def parse_log(raw: Any, chain_id: int, method: str = "eth_getLogs") -> ChainEvent:
    """One log as a ChainEvent; its block timestamp is 0 until the caller fills it from the header
    (or from anvil's `blockTimestamp` field when present)."""
    if not isinstance(raw, dict):
        raise RpcBadResponse(method, f"log is not an object: {_show(raw)}")
    address = raw.get("address")
    if not (isinstance(address, str) and _ADDRESS.fullmatch(address)):
        raise RpcBadResponse(method, f"log address is invalid: {_show(address)}")
    topics = raw.get("topics")
    if not isinstance(topics, list) or len(topics) > 4:
        raise RpcBadResponse(method, f"log topics are not a list of up to 4: {_show(topics)}")
    data = raw.get("data")
    if not (isinstance(data, str) and _DATA.fullmatch(data)):
        raise RpcBadResponse(method, f"log data is not hex bytes: {_show(data)}")
    stamp = raw.get("blockTimestamp")
    removed = raw.get("removed")
    if removed is not None and not isinstance(removed, bool):
        raise RpcBadResponse(method, f"log removed is not a boolean: {_show(removed)}")
    return ChainEvent(
        chain_id=chain_id,
        block_number=quantity(raw.get("blockNumber"), "log blockNumber", method),
        block_hash=_hash(raw.get("blockHash"), "log blockHash", method),
        block_timestamp=quantity(stamp, "log blockTimestamp", method) if stamp else 0,
        transaction_hash=_hash(raw.get("transactionHash"), "log transactionHash", method),
        transaction_index=quantity(raw.get("transactionIndex"), "log transactionIndex", method),
        log_index=quantity(raw.get("logIndex"), "log logIndex", method),
        address=address.lower(),
        topics=[_hash(t, "log topic", method) for t in topics],
        data=data.lower(),
        removed=removed is True,
    )


def logs_to_events(
    raw_logs: Sequence[object],
    chain_id: int,
    headers: Mapping[int, BlockHeader],
    addresses: frozenset[str] | None,
) -> list[ChainEvent]:
    """Validate the logs of a range against its headers; the events, in chain order."""
    events = []
    for raw in raw_logs:
        event = parse_log(raw, chain_id)
        if event.removed:
            continue
        header = headers.get(event.block_number)
        if header is None:
            raise RpcBadResponse(
                "eth_getLogs",
                f"log of block {event.block_number} outside the range asked for",
            )
        if event.block_hash != header.hash:
            raise ChainMoved(
                f"a log of block {event.block_number} has hash {event.block_hash[:10]}…, "
                f"the header {header.hash[:10]}…"
            )
        if addresses is not None and event.address not in addresses:
            continue
        if event.block_timestamp != header.timestamp:
            event = replace(event, block_timestamp=header.timestamp)
        events.append(event)
    events.sort(key=lambda e: (e.block_number, e.log_index))
    return events
