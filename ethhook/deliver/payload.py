"""The webhook body (Standard Webhooks envelope, event fields), built for one endpoint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from ethhook.abi import checksum, decode_log


def decode_for_endpoint(
    signatures: Sequence[str], topics: list[str], data: str
) -> dict[str, Any] | None:
    """Decoded arguments by the first of the endpoint's signatures that fits the log."""
    if len(data) <= CACHED_DATA_CHARS:
        return _decode_cached(tuple(signatures), tuple(topics), data)
    return _decode(signatures, topics, data)


# Decoding (eth_abi + checksummed addresses) was the largest cost of building a body (profile in
# bench/RESULTS.md); an event going to many endpoints is decoded once per worker process instead of
# once per endpoint. Small logs only, so the cache stays a few MB. Callers never mutate the result.
CACHED_DATA_CHARS = 1024


@lru_cache(maxsize=2048)
def _decode_cached(
    signatures: tuple[str, ...], topics: tuple[str, ...], data: str
) -> dict[str, Any] | None:
    return _decode(signatures, list(topics), data)


def _decode(signatures: Sequence[str], topics: list[str], data: str) -> dict[str, Any] | None:
    for signature in signatures:
        decoded = decode_log(signature, topics, data)
        if decoded is not None:
            return decoded
    return None


def build_body(
    *,
    kind: str,
    created_at: datetime,
    event_id: str,
    chain_id: int,
    chain_name: str,
    block_number: int,
    block_hash: str,
    block_timestamp: int,
    transaction_hash: str,
    transaction_index: int,
    log_index: int,
    address: str,
    topics: list[str],
    data: str,
    confirmations: int,
    removed: bool,
    signatures: Sequence[str],
    sequence: int | None = None,
    origin: str = "live",
) -> bytes:
    """The JSON body; the same bytes for every attempt of one delivery (a replay may change its
    origin, never its sequence)."""
    body = {
        "type": kind,
        "timestamp": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sequence": sequence,
        "origin": origin,
        "data": {
            "event_id": event_id,
            "chain_id": chain_id,
            "chain": chain_name,
            "block_number": block_number,
            "block_hash": block_hash,
            "block_timestamp": block_timestamp,
            "transaction_hash": transaction_hash,
            "transaction_index": transaction_index,
            "log_index": log_index,
            "address": checksum(address),
            "topics": topics,
            "data": data,
            "confirmations": confirmations,
            "removed": removed,
            "decoded": decode_for_endpoint(signatures, topics, data) if signatures else None,
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()
