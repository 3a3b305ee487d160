"""The follower against an in-memory chain: catch-up in shrinking ranges, reorg walk-back, nodes that
lag. The store and the publisher it is handed are recorders; everything else is the real code."""

from __future__ import annotations

import pytest

from ethhook.listen.errors import RpcErrorResponse
from ethhook.listen.store import ChainState, WatchList
from ethhook.listen.sync import Limits
from tests.support.fakechain import TOKEN, TOPIC, FakeChain, Recorder, make, run


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
