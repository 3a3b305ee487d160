"""JSON-safe records that cross process boundaries (listener → matcher → delivery)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any


def event_id_for(chain_id: int, block_hash: str, log_index: int) -> str:
    """The deterministic id of an event: the same log in the same block always gets the same id."""
    digest = hashlib.sha256(f"{chain_id}:{block_hash.lower()}:{log_index}".encode()).hexdigest()
    return f"evt_{digest[:32]}"


def webhook_id_for(endpoint_id: int, event_id: str, kind: str) -> str:
    """The Standard Webhooks message id: stable across retries and replays of one delivery."""
    digest = hashlib.sha256(f"{endpoint_id}:{event_id}:{kind}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


@dataclass(frozen=True)
class ChainEvent:
    """One contract log, in plain JSON types (hex strings are 0x-prefixed and lowercase)."""

    chain_id: int
    block_number: int
    block_hash: str
    block_timestamp: int
    transaction_hash: str
    transaction_index: int
    log_index: int
    address: str
    topics: list[str]
    data: str
    removed: bool = False

    @cached_property  # a sha256, asked for many times per event while a range is stored
    def event_id(self) -> str:
        return event_id_for(self.chain_id, self.block_hash, self.log_index)

    @property
    def topic0(self) -> str | None:
        return self.topics[0] if self.topics else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ChainEvent:
        return cls(
            chain_id=int(raw["chain_id"]),
            block_number=int(raw["block_number"]),
            block_hash=str(raw["block_hash"]).lower(),
            block_timestamp=int(raw["block_timestamp"]),
            transaction_hash=str(raw["transaction_hash"]).lower(),
            transaction_index=int(raw["transaction_index"]),
            log_index=int(raw["log_index"]),
            address=str(raw["address"]).lower(),
            topics=[str(t).lower() for t in raw["topics"]],
            data=str(raw["data"]).lower(),
            removed=bool(raw.get("removed", False)),
        )
