"""The follower with heads notified over a WebSocket: a notified child of the cursor is read with one
call, gaps and other branches by number, nodes that refuse or lag on reads by hash."""

from __future__ import annotations

import pytest

from ethhook.listen.errors import ChainMoved
from ethhook.listen.follower import ChainFollower
from ethhook.listen.store import ChainState, WatchList
from tests.support.fakechain import FakeChain, Recorder, make, run


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
