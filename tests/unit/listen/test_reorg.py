"""Reorg bookkeeping: the walk back to the common ancestor, what a rewind and a save leave."""

from __future__ import annotations

import copy

from ethhook.listen.records import BlockHeader
from ethhook.listen.reorg import (
    KEEP_BLOCKS,
    after_save,
    common_ancestor,
    count_published,
    due_sweeps,
    expected_counts,
    resume_below,
    rewind_to,
    schedule_sweeps,
    stale_hashes,
    walk_windows,
)
from ethhook.types import ChainEvent


def hash_of(number: int, fork: int = 0) -> str:
    return "0x" + f"{fork:02x}" * 30 + f"{number:04x}"


def header(number: int, fork: int = 0) -> BlockHeader:
    return BlockHeader(number, hash_of(number, fork), hash_of(number - 1, fork), 1000 + number)


def event(number: int, index: int, fork: int = 0) -> ChainEvent:
    return ChainEvent(
        chain_id=1,
        block_number=number,
        block_hash=hash_of(number, fork),
        block_timestamp=1000 + number,
        transaction_hash="0x" + "aa" * 32,
        transaction_index=0,
        log_index=index,
        address="0x" + "ab" * 20,
        topics=[],
        data="0x",
    )


def stored(numbers: range, fork: int = 0) -> dict[int, str]:
    return {n: hash_of(n, fork) for n in numbers}


# --- the walk back --------------------------------------------------------------------------------


def test_the_walk_asks_for_the_stored_blocks_highest_first_in_windows():
    assert walk_windows(stored(range(1, 8)), 3) == [[7, 6, 5], [4, 3, 2], [1]]
    assert walk_windows({}, 64) == []


def test_the_common_ancestor_is_the_highest_block_the_node_still_has():
    blocks = stored(range(5, 11))
    # the node replaced 9 and 10, and no longer has 8 at all
    headers = [header(10, 1), header(9, 1), None, header(7), header(6)]
    assert common_ancestor(blocks, [10, 9, 8, 7, 6], headers) == header(7)


def test_no_common_ancestor_in_a_window_of_replaced_blocks():
    blocks = stored(range(5, 8))
    assert common_ancestor(blocks, [7, 6], [header(7, 1), header(6, 1)]) is None


def test_a_reorg_below_every_stored_block_resumes_just_below_them():
    assert resume_below(stored(range(8, 11)), cursor_number=10) == (8, 7)
    assert resume_below({}, cursor_number=10) == (10, 9)
    assert resume_below(stored(range(0, 3)), cursor_number=2) == (0, 0)


def test_a_rewind_orphans_the_blocks_above_the_ancestor_and_forgets_their_events():
    blocks = stored(range(5, 11))
    stale = hash_of(7, 9)  # published before a crash, at a height that stays
    published = {7: {hash_of(7): 2, stale: 1}, 9: {hash_of(9): 3}, 10: {hash_of(10): 1}}
    before = (copy.deepcopy(blocks), copy.deepcopy(published))

    result = rewind_to(header(8), blocks, published)

    assert result.ancestor == header(8)
    assert result.orphaned == {9: hash_of(9), 10: hash_of(10)}
    assert result.blocks == stored(range(5, 9))
    assert result.published == {7: {hash_of(7): 2, stale: 1}, 9: {}, 10: {}}
    assert (blocks, published) == before  # the arguments are left alone


def test_a_rewind_to_a_block_below_the_stored_ones_keeps_it_as_the_only_block():
    result = rewind_to(header(7), stored(range(8, 11)), {})
    assert result.orphaned == stored(range(8, 11))
    assert result.blocks == {7: hash_of(7)}


# --- commits --------------------------------------------------------------------------------------


def test_published_events_are_counted_per_block():
    published = {5: {hash_of(5, 1): 4}}
    events = [event(5, 0), event(5, 1), event(6, 0)]
    assert count_published(published, events) == {
        5: {hash_of(5, 1): 4, hash_of(5): 2},
        6: {hash_of(6): 1},
    }
    assert published == {5: {hash_of(5, 1): 4}}


def test_a_block_counted_again_takes_the_new_count():
    assert count_published({5: {hash_of(5): 4}}, [event(5, 0)]) == {5: {hash_of(5): 1}}


def test_stale_hashes_are_the_other_blocks_published_at_the_saved_heights():
    published = {5: {hash_of(5): 2, hash_of(5, 1): 1}, 6: {hash_of(6): 1}, 9: {hash_of(9, 1): 1}}
    assert stale_hashes(published, [header(5), header(6), header(7)]) == [hash_of(5, 1)]
    assert stale_hashes({}, [header(5)]) == []


def test_after_a_save_the_headers_are_the_blocks_and_only_their_events_are_remembered():
    blocks = stored(range(1, 5))
    published = {5: {hash_of(5): 2, hash_of(5, 1): 1}, 6: {hash_of(6, 1): 3}, 9: {hash_of(9): 1}}
    new_blocks, new_published = after_save(blocks, published, [header(5), header(6)])
    assert new_blocks == stored(range(1, 7))
    # 6 had only a replaced block: nothing is left of it; 9 is past the range and stays
    assert new_published == {5: {hash_of(5): 2}, 9: {hash_of(9): 1}}
    assert blocks == stored(range(1, 5))


def test_after_a_save_nothing_older_than_the_kept_blocks_is_remembered():
    blocks = stored(range(1, 11))
    published = {2: {hash_of(2): 1}, 3: {hash_of(3): 1}}
    new_blocks, new_published = after_save(blocks, published, [header(11), header(12)], keep=10)
    assert new_blocks == stored(range(3, 13))
    assert new_published == {3: {hash_of(3): 1}}
    assert KEEP_BLOCKS >= 256  # the matcher's confirmation check needs that many


# --- waiting for the matcher, and sweeps ----------------------------------------------------------


def test_the_matcher_is_expected_to_have_stored_every_published_event_of_the_blocks():
    published = {5: {hash_of(5): 2, hash_of(5, 1): 0}, 6: {hash_of(6): 3}}
    wanted = [hash_of(5), hash_of(5, 1), hash_of(7)]
    assert expected_counts(published, wanted) == {hash_of(5): 2}


def test_sweeps_are_scheduled_once_per_delay_and_fall_due_in_time():
    sweeps = schedule_sweeps([], ["0xb", "0xa"], now=100.0, delays_s=(5.0, 30.0))
    assert sweeps == [(105.0, ("0xb", "0xa")), (130.0, ("0xb", "0xa"))]
    assert schedule_sweeps(sweeps, [], now=200.0, delays_s=(5.0,)) == sweeps

    assert due_sweeps(sweeps, now=104.0) == ([], sweeps)
    due, later = due_sweeps(sweeps, now=105.0)
    assert due == ["0xa", "0xb"]
    assert later == [(130.0, ("0xb", "0xa"))]


def test_blocks_in_several_due_sweeps_are_looked_at_once():
    sweeps = schedule_sweeps([], ["0xa"], now=0.0, delays_s=(1.0, 2.0, 50.0))
    sweeps = schedule_sweeps(sweeps, ["0xa", "0xc"], now=1.0, delays_s=(1.0,))
    due, later = due_sweeps(sweeps, now=3.0)
    assert due == ["0xa", "0xc"]
    assert later == [(50.0, ("0xa",))]
