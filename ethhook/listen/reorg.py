"""Reorg bookkeeping as pure functions: recent blocks, common ancestor, orphaned and stale blocks.

Three values describe what the follower knows of a chain's recent past, all keyed by block number:
`blocks` (the hash of each recent canonical block, contiguous up to the cursor), `published`
(for recent heights, how many events were published per block hash, so that the events of a block
that turns out not to be canonical can be marked removed) and `sweeps` (orphaned blocks to look at
again later). Every function here returns new values and leaves its arguments alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ethhook.listen.records import BlockHeader
from ethhook.types import ChainEvent

# Recent canonical hashes kept per chain (the matcher's confirmation check needs >= 256).
KEEP_BLOCKS = 300

Blocks = dict[int, str]
Published = dict[int, dict[str, int]]
# (due time, block hashes): orphaned blocks to look at again for events the matcher stored late.
Sweeps = list[tuple[float, tuple[str, ...]]]


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
    published: Published


def rewind_to(
    ancestor: BlockHeader, blocks: Mapping[int, str], published: Mapping[int, Mapping[str, int]]
) -> Rewind:
    """Forget the blocks above the common ancestor, and their published events."""
    orphaned = {n: h for n, h in blocks.items() if n > ancestor.number}
    kept = {n: h for n, h in blocks.items() if n <= ancestor.number}
    kept[ancestor.number] = ancestor.hash
    remaining = {
        n: {h: count for h, count in by_hash.items() if orphaned.get(n) != h}
        for n, by_hash in published.items()
    }
    return Rewind(ancestor=ancestor, orphaned=orphaned, blocks=kept, published=remaining)


def count_published(
    published: Mapping[int, Mapping[str, int]], events: Iterable[ChainEvent]
) -> Published:
    """`published` with the events just published counted per block."""
    result = {n: dict(by_hash) for n, by_hash in published.items()}
    per_block = Counter((e.block_number, e.block_hash) for e in events)
    for (number, block_hash), count in per_block.items():
        result.setdefault(number, {})[block_hash] = count
    return result


def stale_hashes(
    published: Mapping[int, Mapping[str, int]], headers: Sequence[BlockHeader]
) -> list[str]:
    """Blocks at these heights published before (then the listener stopped or failed before
    saving them) that are no longer canonical."""
    return [
        block_hash
        for h in headers
        for block_hash in published.get(h.number, {})
        if block_hash != h.hash
    ]


def after_save(
    blocks: Mapping[int, str],
    published: Mapping[int, Mapping[str, int]],
    headers: Sequence[BlockHeader],
    keep: int = KEEP_BLOCKS,
) -> tuple[Blocks, Published]:
    """The recent blocks once a range is saved: its headers are canonical, other blocks at their
    heights are gone, and nothing older than the last `keep` blocks is remembered."""
    canonical = {h.number: h.hash for h in headers}
    new_blocks = {**blocks, **canonical}
    new_published = {
        n: {h: c for h, c in by_hash.items() if h == canonical[n]} if n in canonical else by_hash
        for n, by_hash in published.items()
    }
    floor = headers[-1].number - keep
    return (
        {n: h for n, h in new_blocks.items() if n > floor},
        {n: dict(v) for n, v in new_published.items() if n > floor and v},
    )


def expected_counts(
    published: Mapping[int, Mapping[str, int]], block_hashes: Sequence[str]
) -> dict[str, int]:
    """How many events were published for each of these blocks (blocks with none left out): what
    the matcher must have stored before marking them removed covers every one."""
    expected: dict[str, int] = {}
    for by_hash in published.values():
        for block_hash, count in by_hash.items():
            if block_hash in block_hashes and count:
                expected[block_hash] = count
    return expected


def schedule_sweeps(
    sweeps: Sweeps, block_hashes: Sequence[str], now: float, delays_s: Sequence[float]
) -> Sweeps:
    """`sweeps` plus one look at these orphaned blocks after each of the delays."""
    if not block_hashes:
        return list(sweeps)
    return [*sweeps, *((now + delay, tuple(block_hashes)) for delay in delays_s)]


def due_sweeps(sweeps: Sweeps, now: float) -> tuple[list[str], Sweeps]:
    """The orphaned blocks to look at now (sorted, each once), and the sweeps still to come."""
    due = {h for at, hashes in sweeps if at <= now for h in hashes}
    return sorted(due), [(at, hashes) for at, hashes in sweeps if at > now]
