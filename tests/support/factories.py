"""Synthetic chain events for tests that do not need a chain node."""

from __future__ import annotations

import hashlib

from ethhook.abi import parse_event_signature
from ethhook.types import ChainEvent

TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"
APPROVAL = "Approval(address indexed owner, address indexed spender, uint256 value)"
TRANSFER_TOPIC = parse_event_signature(TRANSFER).topic0
APPROVAL_TOPIC = parse_event_signature(APPROVAL).topic0


def h32(*parts: object) -> str:
    return "0x" + hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


def address(n: int) -> str:
    return "0x" + hashlib.sha256(f"addr{n}".encode()).hexdigest()[:40]


def word_address(addr: str) -> str:
    return "0x" + "0" * 24 + addr[2:]


def transfer(
    *,
    chain_id: int = 1,
    contract: str,
    block: int,
    log_index: int,
    value: int,
    topic0: str = TRANSFER_TOPIC,
    sender: int = 1,
    to: int = 2,
) -> ChainEvent:
    return ChainEvent(
        chain_id=chain_id,
        block_number=block,
        block_hash=h32("block", chain_id, block),
        block_timestamp=1_764_000_000 + block,
        transaction_hash=h32("tx", chain_id, block, log_index),
        transaction_index=0,
        log_index=log_index,
        address=contract,
        topics=[topic0, word_address(address(sender)), word_address(address(to))],
        data="0x" + value.to_bytes(32, "big").hex(),
    )
