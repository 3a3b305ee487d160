"""A replay job's pure decisions: the next chunk of blocks, its size, and the progress shown."""

from __future__ import annotations

from dataclasses import dataclass

# The first chunk is small: a busy contract has thousands of events per hundred blocks, and a
# chunk's events are all in memory at once. Sparse chunks double the next one up to the maximum.
FIRST_CHUNK_BLOCKS = 100
# A chunk denser than this makes the next one proportionally smaller.
TARGET_CHUNK_EVENTS = 2000


@dataclass(frozen=True)
class Chunk:
    """Blocks start..end, both included."""

    start: int
    end: int

    @property
    def blocks(self) -> int:
        return self.end - self.start + 1


def first_chunk_blocks(maximum: int) -> int:
    return max(1, min(FIRST_CHUNK_BLOCKS, maximum))


def next_chunk(next_block: int, to_block: int, size: int) -> Chunk | None:
    """The chunk that starts at the job's cursor, or None when the range is done."""
    if next_block > to_block:
        return None
    return Chunk(next_block, min(to_block, next_block + max(1, size) - 1))


def next_chunk_size(size: int, events: int, maximum: int) -> int:
    """The size of the chunk after one of `size` blocks that held `events` events: aimed at
    TARGET_CHUNK_EVENTS per chunk, at most doubling, never past `maximum`, at least 1 block."""
    if events > TARGET_CHUNK_EVENTS:
        wanted = size * TARGET_CHUNK_EVENTS // events
    elif events <= TARGET_CHUNK_EVENTS // 4:
        wanted = size * 2
    else:
        wanted = size
    return max(1, min(maximum, wanted))


@dataclass(frozen=True)
class Progress:
    """What a person watching a replay sees."""

    blocks_done: int
    blocks_total: int
    events: int
    deliveries: int

    @property
    def fraction(self) -> float:
        return 1.0 if self.blocks_total <= 0 else min(1.0, self.blocks_done / self.blocks_total)

    def line(self) -> str:
        return (
            f"{self.blocks_done:,}/{self.blocks_total:,} blocks ({self.fraction:.0%}), "
            f"{self.events:,} events, {self.deliveries:,} deliveries"
        )


def blocks_total(from_block: int, to_block: int) -> int:
    return to_block - from_block + 1
