"""Reorg bookkeeping as pure functions: recent blocks, common ancestor, orphaned and stale blocks.

What the follower knows of a chain's recent past is `blocks`: the hash of each recent canonical
block, contiguous up to the cursor, keyed by number. A range's events are stored in the
transaction that moves the cursor past them, so the events of every block above a common
ancestor are in the database, found by block hash. Every function here returns new values and
leaves its arguments alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ethhook.listen.records import BlockHeader

# Recent canonical hashes kept per chain (the matcher's confirmation check needs >= 256).
KEEP_BLOCKS = 300

Blocks = dict[int, str]


def walk_windows(blocks: Mapping[int, str], size: int) -> list[list[int]]:
    """The stored block numbers, highest first, in batches of `size`: the order in which to ask
    the node for its headers when looking for the common ancestor."""
    numbers = sorted(blocks, reverse=True)
    return [numbers[i : i + size] for i in range(0, len(numbers), size)]


def common_ancestor(
    blocks: Mapping[int, str], numbers: Sequence[int], headers: Sequence[BlockHeader | None]
) -> BlockHeader | None:
    """The first of `numbers` whose header on the node's chain still has the stored hash."""
    for number, header in zip(numbers, headers, strict=True):
        if header is not None and header.hash == blocks[number]:
            return header
    return None


def resume_below(blocks: Mapping[int, str], cursor_number: int) -> tuple[int, int]:
    """No stored block is canonical any more: (the lowest stored block, the block to resume
    from, just below it). The events between them can no longer be found, so this is logged."""
    lowest = min(blocks) if blocks else cursor_number
    return lowest, max(lowest - 1, 0)


@dataclass(frozen=True)
class Rewind:
    """What a reorg down to `ancestor` leaves of the recent blocks."""

    ancestor: BlockHeader
    # number → hash of the blocks above the ancestor: their events are to be marked removed.
    orphaned: Blocks
    blocks: Blocks


def rewind_to(ancestor: BlockHeader, blocks: Mapping[int, str]) -> Rewind:
    """Forget the blocks above the common ancestor."""
    orphaned = {n: h for n, h in blocks.items() if n > ancestor.number}
    kept = {n: h for n, h in blocks.items() if n <= ancestor.number}
    kept[ancestor.number] = ancestor.hash
    return Rewind(ancestor=ancestor, orphaned=orphaned, blocks=kept)


def after_save(
    blocks: Mapping[int, str], headers: Sequence[BlockHeader], keep: int = KEEP_BLOCKS
) -> Blocks:
    """The recent blocks once a range is saved: its headers are canonical, and nothing older
    than the last `keep` blocks is remembered."""
    new_blocks = {**blocks, **{h.number: h.hash for h in headers}}
    floor = headers[-1].number - keep
    return {n: h for n, h in new_blocks.items() if n > floor}


# Blocks older than the last KEEP_BLOCKS are deleted from the store once every this many blocks
# (a range that spans a multiple of it), not at every block.
TRIM_EVERY = 64


def trim_due(first: int, last: int, every: int = TRIM_EVERY) -> bool:
    """True when the range first..last holds a multiple of `every`: time to delete the stored
    blocks that fell out of the last KEEP_BLOCKS."""
    return last // every > (first - 1) // every
