"""Reorg bookkeeping: the walk back to the common ancestor, what a rewind and a save leave."""

from __future__ import annotations

import copy

from ethhook.listen.records import BlockHeader
from ethhook.listen.reorg import (
    KEEP_BLOCKS,
    after_save,
    common_ancestor,
    resume_below,
    rewind_to,
    walk_windows,
)


def hash_of(number: int, fork: int = 0) -> str:
    return "0x" + f"{fork:02x}" * 30 + f"{number:04x}"


def header(number: int, fork: int = 0) -> BlockHeader:
    return BlockHeader(number, hash_of(number, fork), hash_of(number - 1, fork), 1000 + number)


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


def test_a_rewind_orphans_the_blocks_above_the_ancestor():
    blocks = stored(range(5, 11))
    before = copy.deepcopy(blocks)

    result = rewind_to(header(8), blocks)

    assert result.ancestor == header(8)
    assert result.orphaned == {9: hash_of(9), 10: hash_of(10)}
    assert result.blocks == stored(range(5, 9))
    assert blocks == before  # the argument is left alone


def test_a_rewind_to_a_block_below_the_stored_ones_keeps_it_as_the_only_block():
    result = rewind_to(header(7), stored(range(8, 11)))
    assert result.orphaned == stored(range(8, 11))
    assert result.blocks == {7: hash_of(7)}


# --- commits --------------------------------------------------------------------------------------


def test_after_a_save_the_headers_are_the_blocks():
    blocks = {**stored(range(1, 5)), 5: hash_of(5, 1)}
    new_blocks = after_save(blocks, [header(5), header(6)])
    assert new_blocks == stored(range(1, 7))
    assert blocks == {**stored(range(1, 5)), 5: hash_of(5, 1)}


def test_after_a_save_nothing_older_than_the_kept_blocks_is_remembered():
    new_blocks = after_save(stored(range(1, 11)), [header(11), header(12)], keep=10)
    assert new_blocks == stored(range(3, 13))
    assert KEEP_BLOCKS >= 256  # the matcher's confirmation check needs that many
