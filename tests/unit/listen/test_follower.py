"""The follower against an in-memory chain: catch-up in shrinking ranges, reorg walk-back, nodes that
lag. The store and the publisher it is handed are recorders; everything else is the real code."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

import pytest

from ethhook.config import ChainConfig
from ethhook.listen.errors import ChainMoved, RpcErrorResponse
from ethhook.listen.follower import ChainFollower
from ethhook.listen.records import BlockHeader, parse_header
from ethhook.listen.rpc import RpcClient
from ethhook.listen.store import ChainState, WatchList
from ethhook.listen.sync import Limits
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


def test_first_start_follows_from_the_head_without_replaying_history():
    chain, recorder = FakeChain(50), Recorder(ChainState(cursor=None))
    follower = make(chain, recorder)
    run(follower.sync())
    assert recorder.saves == [(50, 50)]
    assert recorder.published == []
    assert follower.cursor == (50, chain.blocks[50]["hash"])


def test_catch_up_shrinks_refused_ranges_and_publishes_every_event_once_in_order():
    chain = FakeChain(300, logs_per_block=3, max_range=40)
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder)
    run(follower.sync())
    keys = [(e.block_number, e.log_index) for e in recorder.published]
    assert keys == [(n, i) for n in range(1, 301) for i in range(3)]
    # the saved ranges are contiguous and none is wider than the provider allows
    assert recorder.saves[0][0] == 1 and recorder.saves[-1][1] == 300
    assert all(b[0] == a[1] + 1 for a, b in zip(recorder.saves, recorder.saves[1:]))
    assert all(end - start + 1 <= 40 for start, end in recorder.saves)
    # every range's events went to the matcher after its save, each event once
    assert [i for g in recorder.groups for i in g.event_ids] == [
        e.event_id for e in recorder.published
    ]
    refused = [
        p
        for m, p in chain.calls
        if m == "eth_getLogs" and int(p[0]["toBlock"], 16) - int(p[0]["fromBlock"], 16) + 1 > 40
    ]
    assert len(refused) == 2  # 100 → 50 → 25, then growing back only up to refusals again
    assert follower.cursor == (300, chain.blocks[300]["hash"])
    assert all(e.block_timestamp == 1000 + 12 * e.block_number for e in recorder.published)


def test_reorg_walks_back_to_the_common_ancestor_and_reads_the_new_blocks():
    chain = FakeChain(20)
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder)
    run(follower.sync())
    orphaned = chain.reorg(3)
    chain.extend(2)
    run(follower.sync())
    assert recorder.rewinds == [(17, sorted(orphaned))]
    new_blocks = {e.block_hash for e in recorder.published[-10:]}
    assert new_blocks == {chain.blocks[n]["hash"] for n in range(18, 23)}
    assert follower.cursor == (22, chain.blocks[22]["hash"])
    assert not set(orphaned) & set(follower.progress.blocks.values())


def test_reorg_at_the_same_height_is_found_without_new_blocks():
    chain = FakeChain(10)
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder)
    run(follower.sync())
    orphaned = chain.reorg(1)
    run(follower.sync())  # head == cursor, but the hash at the cursor changed
    assert recorder.rewinds == [(9, orphaned)]
    run(follower.sync())
    assert follower.cursor == (10, chain.blocks[10]["hash"])


def test_a_node_behind_its_peers_is_not_a_reorg():
    chain = FakeChain(10)
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder)
    run(follower.sync())
    chain.hidden_from = 8  # a load-balanced node that has not seen blocks 8-10 yet
    run(follower.sync())
    assert recorder.rewinds == []
    assert follower.cursor == (10, chain.blocks[10]["hash"])


def test_a_reorg_deeper_than_the_stored_hashes_resumes_below_them():
    chain = FakeChain(10)
    stored = {n: chain.blocks[n]["hash"] for n in (8, 9, 10)}
    recorder = Recorder(ChainState(cursor=(10, stored[10]), blocks=stored))
    follower = make(chain, recorder)
    chain.reorg(5)
    run(follower.sync())
    assert recorder.rewinds == [(7, sorted(stored.values()))]


def test_a_single_block_failure_is_raised_for_the_caller_to_back_off():
    chain = FakeChain(5, max_range=0)  # refuses everything
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder)
    with pytest.raises(RpcErrorResponse):
        for _ in range(10):
            run(follower.sync())
    assert recorder.saves == [] and recorder.published == []
    assert follower.cursor == (0, chain.blocks[0]["hash"])


def test_a_range_with_too_many_logs_makes_the_next_range_smaller():
    chain = FakeChain(400, logs_per_block=30)
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder, Limits(max_logs_per_range=1000))
    run(follower.sync())
    sizes = [end - start + 1 for start, end in recorder.saves]
    assert sizes[:3] == [100, 50, 25]  # 3000 and 1500 logs, then 750
    assert max(sizes[2:]) <= 25
    assert len(recorder.published) == 400 * 30


def test_the_node_is_asked_only_for_the_watched_events_when_every_endpoint_names_them():
    other = "0x" + "ee" * 32
    named = WatchList(frozenset({(1, TOKEN)}), frozenset({(1, TOPIC), (None, other)}))
    any_event = WatchList(frozenset({(1, TOKEN)}), frozenset({(1, TOPIC), (1, None)}))
    queries = []
    for watch in (named, any_event):
        chain = FakeChain(5)
        recorder = Recorder(
            ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
        )
        run(make(chain, recorder, watch=watch).sync())
        queries.append([p[0] for m, p in chain.calls if m == "eth_getLogs"])
        assert len(recorder.published) == 10

    assert queries[0] == [
        {"fromBlock": "0x1", "toBlock": "0x5", "address": [TOKEN], "topics": [[TOPIC, other]]}
    ]
    assert queries[1] == [{"fromBlock": "0x1", "toBlock": "0x5", "address": [TOKEN]}]


# --- heads notified over a WebSocket --------------------------------------------------------------


def following(blocks: int) -> tuple[FakeChain, Recorder, ChainFollower]:
    """A follower whose cursor reached the head of a chain of `blocks` blocks; calls forgotten."""
    chain = FakeChain(blocks)
    recorder = Recorder(
        ChainState(cursor=(0, chain.blocks[0]["hash"]), blocks={0: chain.blocks[0]["hash"]})
    )
    follower = make(chain, recorder)
    run(follower.sync())
    chain.calls.clear()
    recorder.saves.clear()
    recorder.groups.clear()
    return chain, recorder, follower


def methods(chain: FakeChain) -> list[str]:
    return [m for m, _ in chain.calls]


def test_a_notified_child_of_the_cursor_is_read_with_one_call_for_its_logs_by_hash():
    # Given a follower at the head, when the node mines block 6 and notifies its header
    chain, recorder, follower = following(5)
    chain.extend(1)
    follower._on_head(chain.notification(6))
    run(follower.sync())
    # Then the pass asked only for the block's logs, by its hash, and saved the notified header
    assert chain.calls == [("eth_getLogs", [{"blockHash": chain.blocks[6]["hash"]}])]
    assert recorder.saves == [(6, 6)]
    assert [(e.block_number, e.block_hash) for e in recorder.published[-2:]] == [
        (6, chain.blocks[6]["hash"])
    ] * 2
    assert all(e.block_timestamp == 1000 + 12 * 6 for e in recorder.published[-2:])
    assert follower.cursor == (6, chain.blocks[6]["hash"])
    assert follower.catch_up.node_head == 6


def test_a_notified_block_without_watched_contracts_asks_the_node_nothing():
    chain, recorder, follower = following(5)
    follower.catch_up.watch = lambda: WatchList(rows=frozenset())
    chain.extend(1)
    follower._on_head(chain.notification(6))
    run(follower.sync())
    assert chain.calls == []
    assert recorder.saves == [(6, 6)]


def test_a_gap_in_notifications_is_read_by_number_up_to_the_notified_head():
    # Given a follower at 5, when blocks 6-9 are mined but only 9 is notified
    chain, recorder, follower = following(5)
    chain.extend(4)
    follower._on_head(chain.notification(9))
    run(follower.sync())
    # Then blocks 6-9 are read in one range, headers by number, without eth_blockNumber
    assert methods(chain) == ["eth_getBlockByNumber"] * 4 + ["eth_getLogs"]
    assert recorder.saves == [(6, 9)]
    assert [e.block_number for e in recorder.published[-8:]] == [6, 6, 7, 7, 8, 8, 9, 9]
    assert follower.cursor == (9, chain.blocks[9]["hash"])


def test_a_notified_block_on_another_branch_is_a_reorg_found_by_number():
    # Given a follower at 10, when the last 2 blocks are replaced and a new 11 is notified
    chain, recorder, follower = following(10)
    orphaned = chain.reorg(2)
    chain.extend(1)
    follower._on_head(chain.notification(11))
    run(follower.sync())
    # Then the parent hash does not match: the reorg is found by number, walked back to 8,
    # and the new branch read in the same pass (no log asked for by the notified hash)
    assert not [p for m, p in chain.calls if m == "eth_getLogs" and "blockHash" in p[0]]
    assert recorder.rewinds == [(8, sorted(orphaned))]
    assert follower.cursor == (11, chain.blocks[11]["hash"])
    assert [e.block_hash for e in recorder.published[-6:]] == [
        chain.blocks[n]["hash"] for n in (9, 9, 10, 10, 11, 11)
    ]


def test_a_reorg_at_the_same_height_notified_is_found():
    chain, recorder, follower = following(10)
    orphaned = chain.reorg(1)
    follower._on_head(chain.notification(10))  # anvil re-sends the replaced number
    run(follower.sync())
    assert recorder.rewinds == [(9, orphaned)]
    assert "eth_blockNumber" not in methods(chain)


def test_a_notified_block_read_already_costs_no_call():
    # Given a follower that read 6-7 by number (polled) before 7's notification was handled
    chain, recorder, follower = following(5)
    chain.extend(2)
    run(follower.sync())
    chain.calls.clear()
    follower._on_head(chain.notification(7))
    run(follower.sync())
    assert chain.calls == []
    assert recorder.saves == [(6, 7)]


def test_a_node_that_refuses_logs_by_hash_is_read_by_number_and_after_three_refusals_only_so():
    chain, recorder, follower = following(5)
    chain.refuse_by_hash = True
    for number in range(6, 11):
        chain.extend(1)
        follower._on_head(chain.notification(number))
        run(follower.sync())
    by_hash = [p for m, p in chain.calls if m == "eth_getLogs" and "blockHash" in p[0]]
    assert len(by_hash) == 3
    assert recorder.saves == [(n, n) for n in range(6, 11)]
    assert [e.block_number for e in recorder.published[-10:]] == [
        n for n in range(6, 11) for _ in range(2)
    ]


def test_refusals_by_a_lagging_node_do_not_count_as_a_node_without_logs_by_hash():
    # Given a node whose HTTP side lags its WebSocket for 5 blocks in a row
    chain, recorder, follower = following(5)
    for number in range(6, 11):
        chain.extend(1)
        follower._on_head(chain.notification(number))
        chain.hidden_from = number
        with pytest.raises(ChainMoved):
            run(follower.sync())
        chain.hidden_from = None
        run(follower.sync())  # the retry after the backoff reads it by number
    # Then the next notified block is still read by hash
    chain.extend(1)
    follower._on_head(chain.notification(11))
    chain.calls.clear()
    run(follower.sync())
    assert chain.calls == [("eth_getLogs", [{"blockHash": chain.blocks[11]["hash"]}])]
    assert follower.cursor == (11, chain.blocks[11]["hash"])


def test_a_lagging_node_that_does_not_have_the_notified_block_stores_nothing_yet():
    # Given a WebSocket node that notified block 6 and an HTTP node that does not have it yet
    chain, recorder, follower = following(5)
    chain.extend(1)
    follower._on_head(chain.notification(6))
    chain.hidden_from = 6
    # Then the pass stores nothing (never an empty block), and the next pass reads it
    with pytest.raises(ChainMoved):
        run(follower.sync())
    assert recorder.saves == []
    assert follower.cursor == (5, chain.blocks[5]["hash"])
    chain.hidden_from = None
    run(follower.sync())
    assert recorder.saves == [(6, 6)]
    assert len(recorder.published) == 12
