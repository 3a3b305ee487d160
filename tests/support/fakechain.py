"""An in-memory chain behind a JSON-RPC transport, and the recorders the follower tests hand it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from ethhook.config import ChainConfig
from ethhook.listen.follower import ChainFollower
from ethhook.listen.lag import Lagging
from ethhook.listen.records import BlockHeader, parse_header
from ethhook.listen.rpc import RpcClient
from ethhook.listen.store import ChainState, WatchList
from ethhook.listen.sync import Limits
from ethhook.listen.tags import TagState
from ethhook.types import ChainEvent
from ethhook.workqueue import MatchGroup

WATCH_EVERYTHING = WatchList(rows=frozenset({(None, None)}))
TOKEN = "0x" + "ab" * 20
TOPIC = "0x" + "dd" * 32


def h(*parts: object) -> str:
    return "0x" + hashlib.sha256(repr(parts).encode()).hexdigest()


class FakeChain:
    """A JSON-RPC transport over an in-memory chain of blocks with `logs_per_block` logs each."""

    def __init__(self, blocks: int, logs_per_block: int = 2, max_range: int = 1000) -> None:
        self.logs_per_block = logs_per_block
        self.max_range = max_range
        self.blocks: list[dict[str, Any]] = []
        self.fork = 0
        self.calls: list[tuple[str, Any]] = []
        self.hidden_from: int | None = None  # a lagging node: blocks >= this are unknown
        self.refuse_by_hash = False  # a node without eth_getLogs by blockHash (EIP-234)
        # The depths of `safe` and `finalized` below the head (anvil's: 32, 64); None: a node
        # that answers those tags with an error.
        self.tag_depths: tuple[int, int] | None = None
        self.extend(blocks + 1)

    def extend(self, count: int) -> None:
        for _ in range(count):
            number = len(self.blocks)
            parent = self.blocks[-1]["hash"] if self.blocks else "0x" + "00" * 32
            self.blocks.append({"number": number, "hash": h(number, self.fork), "parent": parent})

    def reorg(self, depth: int) -> list[str]:
        """Replace the last `depth` blocks; returns the orphaned hashes."""
        self.fork += 1
        orphaned = [b["hash"] for b in self.blocks[-depth:]]
        del self.blocks[-depth:]
        self.extend(depth)
        return orphaned

    def header(self, number: int) -> dict[str, Any] | None:
        if number >= len(self.blocks) or (
            self.hidden_from is not None and number >= self.hidden_from
        ):
            return None
        b = self.blocks[number]
        return {
            "number": hex(number),
            "hash": b["hash"],
            "parentHash": b["parent"],
            "timestamp": hex(1000 + 12 * number),
        }

    def number_of(self, block_hash: str) -> int | None:
        found = [n for n, b in enumerate(self.blocks) if b["hash"] == block_hash]
        hidden = self.hidden_from is not None and found and found[0] >= self.hidden_from
        return found[0] if found and not hidden else None

    def notification(self, number: int) -> BlockHeader:
        """The header a `newHeads` notification of block `number` carries."""
        raw = self.header(number)
        assert raw is not None
        return parse_header(raw)

    def logs(self, start: int, end: int) -> list[dict[str, Any]]:
        return [
            {
                "address": TOKEN,
                "topics": [TOPIC],
                "data": "0x" + f"{number:064x}",
                "blockNumber": hex(number),
                "blockHash": self.blocks[number]["hash"],
                "transactionHash": h("tx", number),
                "transactionIndex": "0x0",
                "logIndex": hex(i),
                "removed": False,
            }
            for number in range(start, min(end, len(self.blocks) - 1) + 1)
            for i in range(self.logs_per_block)
        ]

    def answer(self, call: dict[str, Any]) -> dict[str, Any]:
        method, params = call["method"], call["params"]
        self.calls.append((method, params))
        if method == "eth_chainId":
            result: Any = "0x1"
        elif method == "eth_blockNumber":
            top = len(self.blocks) - 1
            result = hex(top if self.hidden_from is None else min(top, self.hidden_from - 1))
        elif method == "eth_getBlockByNumber" and params[0] in ("safe", "finalized"):
            if self.tag_depths is not None:
                depth = self.tag_depths[0 if params[0] == "safe" else 1]
                result = self.header(max(0, len(self.blocks) - 1 - depth))
                return {"jsonrpc": "2.0", "id": call["id"], "result": result}
            # A node without finality tags (listen.tags): the follower asks after a pass.
            return {
                "jsonrpc": "2.0",
                "id": call["id"],
                "error": {"code": -32602, "message": "unknown block tag"},
            }
        elif method == "eth_getBlockByNumber":
            result = self.header(int(params[0], 16))
        elif method == "eth_getLogs" and "blockHash" in params[0]:
            number = self.number_of(params[0]["blockHash"])
            if number is None or self.refuse_by_hash:
                return {
                    "jsonrpc": "2.0",
                    "id": call["id"],
                    "error": {"code": -32000, "message": "unknown block"},
                }
            result = self.logs(number, number)
        elif method == "eth_getLogs":
            start, end = int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)
            if end - start + 1 > self.max_range:
                return {
                    "jsonrpc": "2.0",
                    "id": call["id"],
                    "error": {"code": -32005, "message": "range too large"},
                }
            result = self.logs(start, end)
        else:
            raise AssertionError(method)
        return {"jsonrpc": "2.0", "id": call["id"], "result": result}

    async def send(self, payload: Any, label: str) -> Any:
        if isinstance(payload, list):
            return [self.answer(c) for c in payload]
        return self.answer(payload)

    async def close(self) -> None:
        return None


class FreeLock:
    """The chain lock, always free (no database here)."""

    def __init__(self) -> None:
        self.just_taken = False

    def hold(self) -> bool:
        return True

    def release(self) -> None:
        return None


class Recorder:
    """Stands in for the database (the follower's store) and the broker (its publisher)."""

    def __init__(self, state: ChainState) -> None:
        self.state = state
        self.lock = FreeLock()
        self.published: list[ChainEvent] = []  # events stored with their range, in order
        self.saves: list[tuple[int, int]] = []
        self.rewinds: list[tuple[int, list[str]]] = []
        self.groups: list[MatchGroup] = []  # what was handed to the matcher, after each save
        self.tags: list[TagState] = []  # what the follower learnt of the node's finality tags
        self.laggings: list[Lagging] = []  # chain.lagging told

    def load_state(self) -> ChainState:
        return self.state

    def publish(self, groups: Sequence[MatchGroup]) -> int:
        assert len(self.groups) < len(self.saves)  # published only after the range was saved
        self.groups.extend(groups)
        return len(groups)

    def save_range(
        self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]
    ) -> list[MatchGroup]:
        self.saves.append((headers[0].number, headers[-1].number))
        self.published.extend(events)
        return [MatchGroup(1, [e.event_id for e in events], f"token-{len(self.saves)}")]

    def rewind(self, ancestor: BlockHeader, orphaned_hashes: Sequence[str]) -> int:
        self.rewinds.append((ancestor.number, sorted(orphaned_hashes)))
        return 0

    def save_tags(self, state: TagState) -> None:
        self.tags.append(state)

    def tell_lagging(self, lagging: Lagging) -> int:
        self.laggings.append(lagging)
        return 1


def make(
    chain: FakeChain,
    recorder: Recorder,
    limits: Limits | None = None,
    watch: WatchList = WATCH_EVERYTHING,
) -> ChainFollower:
    config = ChainConfig(name="ethereum", chain_id=1, http_url="http://fake")
    return ChainFollower(
        config,
        lambda: watch,
        store=recorder,
        publish=recorder.publish,
        rpc=RpcClient(chain),
        limits=limits or Limits(),
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)
