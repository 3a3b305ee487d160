"""Range planning as pure functions: which blocks to read next, how to ask for their logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ethhook.listen.errors import ChainMoved
from ethhook.listen.records import BlockHeader


def next_range(cursor: int, head: int, size: int) -> tuple[int, int] | None:
    """The blocks to read after the cursor block, at most `size` of them and none past the head;
    None when the cursor has reached the head."""
    if cursor >= head:
        return None
    start = cursor + 1
    return start, min(head, start + size - 1)


def extends(cursor: tuple[int, str], header: BlockHeader) -> bool:
    """True when `header` is the block right after the cursor block and built on it: a notified
    header that may stand for the block's own (a reorg or a gap is read by number instead)."""
    return header.number == cursor[0] + 1 and header.parent_hash == cursor[1]


@dataclass(frozen=True)
class LogQuery:
    """How to ask for a range's logs: not at all (no endpoint watches this chain), for every
    contract (`addresses` None), or for the listed contracts; and for any event (`topics`
    None) or only logs whose topic0 is one of `topics`."""

    needed: bool
    addresses: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None


def log_query(
    addresses: frozenset[str] | None,
    max_addresses: int,
    topics: frozenset[str] | None = None,
    max_topics: int = 0,
) -> LogQuery:
    """The `eth_getLogs` filter for the watched contracts of a chain (None: every contract) and
    their watched events (None: some endpoint watches every event of a contract it watches);
    above `max_addresses` contracts or `max_topics` events, that list is left out of the filter
    and the matcher filters instead (providers cap the lists)."""
    if addresses is not None and not addresses:
        return LogQuery(needed=False)
    if topics is not None and not 0 < len(topics) <= max_topics:
        topics = None
    if addresses is not None and len(addresses) > max_addresses:
        addresses = None
    return LogQuery(
        needed=True,
        addresses=None if addresses is None else tuple(sorted(addresses)),
        topics=None if topics is None else tuple(sorted(topics)),
    )


def linked_headers(
    start: int, headers: Sequence[BlockHeader | None], cursor_hash: str
) -> list[BlockHeader] | None:
    """The headers of blocks start.. when they form one chain on top of the cursor block.

    None when the first one does not build on the cursor block: the cursor block was replaced
    (a reorg). Raises ChainMoved when a header is missing or two neighbours do not link, which
    a node that changed its chain while answering produces: reading the range again settles it.
    """
    missing = [start + i for i, h in enumerate(headers) if h is None]
    if missing:
        raise ChainMoved(f"block {missing[0]} is not available yet")
    chain = [h for h in headers if h is not None]
    if chain[0].parent_hash != cursor_hash:
        return None
    for previous, current in pairwise(chain):
        if current.parent_hash != previous.hash:
            raise ChainMoved(f"block {current.number} does not follow {previous.number}")
    return chain


def too_many_logs(log_count: int, start: int, end: int, max_logs: int) -> bool:
    """True when the next range should be smaller because this one's answer was too large
    (a single block cannot be split, so it never counts)."""
    return log_count > max_logs and end > start
