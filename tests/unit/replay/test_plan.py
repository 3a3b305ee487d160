"""A replay's pure decisions: chunk planning, adaptive chunk size, progress."""

from __future__ import annotations

import pytest

from ethhook.cli.replays import progress_bar
from ethhook.replay.plan import (
    FIRST_CHUNK_BLOCKS,
    TARGET_CHUNK_EVENTS,
    Chunk,
    Progress,
    blocks_total,
    first_chunk_blocks,
    next_chunk,
    next_chunk_size,
)


@pytest.mark.parametrize(
    ("next_block", "to_block", "size", "expected"),
    [
        (0, 9_999, 100, Chunk(0, 99)),
        (9_900, 9_999, 1000, Chunk(9_900, 9_999)),  # the last chunk ends at the range's end
        (9_999, 9_999, 1000, Chunk(9_999, 9_999)),
        (10_000, 9_999, 1000, None),  # done
        (5, 5, 0, Chunk(5, 5)),  # never an empty chunk
    ],
)
def test_next_chunk_starts_at_the_cursor(next_block, to_block, size, expected):
    assert next_chunk(next_block, to_block, size) == expected


def test_chunks_cover_a_range_once_without_gaps():
    covered, cursor, size = [], 1_000, 1
    while (chunk := next_chunk(cursor, 10_999, size)) is not None:
        covered.extend(range(chunk.start, chunk.end + 1))
        cursor, size = chunk.end + 1, next_chunk_size(chunk.blocks, 0, 2000)
    assert covered == list(range(1_000, 11_000))


@pytest.mark.parametrize(
    ("size", "events", "maximum", "expected"),
    [
        (100, 0, 1000, 200),  # sparse: doubles
        (800, 10, 1000, 1000),  # ... up to the maximum
        (1000, TARGET_CHUNK_EVENTS // 4, 1000, 1000),
        (400, TARGET_CHUNK_EVENTS, 1000, 400),  # on target: stays
        (400, TARGET_CHUNK_EVENTS * 4, 1000, 100),  # dense: proportionally smaller
        (1, TARGET_CHUNK_EVENTS * 50, 1000, 1),  # never below one block
        (1000, 0, 300, 300),  # a lowered maximum applies at once
    ],
)
def test_the_next_chunk_size_aims_at_the_target_events(size, events, maximum, expected):
    assert next_chunk_size(size, events, maximum) == expected


def test_the_first_chunk_is_small_but_within_the_maximum():
    assert first_chunk_blocks(5_000) == FIRST_CHUNK_BLOCKS
    assert first_chunk_blocks(10) == 10


def test_progress_counts_blocks_of_the_inclusive_range():
    assert blocks_total(100, 100) == 1
    progress = Progress(2_500, blocks_total(0, 9_999), 120, 240)
    assert progress.fraction == 0.25
    assert progress.line() == "2,500/10,000 blocks (25%), 120 events, 240 deliveries"
    assert Progress(0, 0, 0, 0).fraction == 1.0


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.0, "[..........]"),
        (0.25, "[##........]"),
        (0.99, "[#########.]"),
        (1.0, "[##########]"),
        (1.5, "[##########]"),
    ],
)
def test_the_progress_bar(fraction, expected):
    assert progress_bar(fraction, width=10) == expected
