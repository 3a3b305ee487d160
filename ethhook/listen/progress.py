"""One chain's progress: cursor, recent blocks and published events, kept in step with the store.

The store and the publisher are handed in (`ChainStore`, `Publish`): `runner.make_follower` passes
the database (`store.DatabaseStore`) and the broker (`publish.publish_batches`), tests pass fakes.
Their calls block, so they run on the chain's lane, one after another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ethhook.listen import reorg
from ethhook.listen.publish import split
from ethhook.listen.records import BlockHeader
from ethhook.listen.threads import BlockingLane
from ethhook.types import ChainEvent, EventBatch

if TYPE_CHECKING:
    from ethhook.listen.store import ChainState

log = logging.getLogger(__name__)


class Lock(Protocol):
    """At most one listener per chain."""

    # True when the last hold() took the lock anew: what was read before may be stale.
    just_taken: bool

    def hold(self) -> bool: ...

    def release(self) -> None: ...


class ChainStore(Protocol):
    """The database side of one chain; each call is one transaction (see `store`)."""

    @property
    def lock(self) -> Lock: ...

    def load_state(self) -> ChainState: ...

    def save_range(self, headers: Sequence[BlockHeader], stale_hashes: Sequence[str]) -> int: ...

    def rewind(self, ancestor: BlockHeader, orphaned_hashes: Sequence[str]) -> int: ...

    def orphan_again(self, block_hashes: Sequence[str]) -> int: ...

    def stored_event_counts(self, block_hashes: Sequence[str]) -> dict[str, int]: ...


# Sends event batches to the matcher, or raises PublishError; returns the batches sent.
Publish = Callable[[Sequence[EventBatch]], int]


class ChainProgress:
    """What the follower has published and saved for one chain: publishes a range's events, then
    saves its blocks and the cursor; on a reorg, marks the orphaned blocks' events removed."""

    def __init__(
        self,
        chain: str,
        chain_id: int,
        store: ChainStore,
        publish: Publish,
        lane: BlockingLane,
        batch_size: int,
        matcher_wait_s: float,
        sweep_delays_s: Sequence[float],
        stopping: Callable[[], bool],
    ) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.store = store
        self.publish = publish
        self.lane = lane
        self.batch_size = batch_size
        self.matcher_wait_s = matcher_wait_s
        self.sweep_delays_s = tuple(sweep_delays_s)
        self.stopping = stopping
        self.loaded = False
        self.cursor: tuple[int, str] | None = None
        self.blocks: reorg.Blocks = {}
        self.published: reorg.Published = {}
        self.sweeps: reorg.Sweeps = []
        # True while a store or broker call must not be cancelled by a stop.
        self.committing = False

    async def load(self) -> None:
        """Read the cursor and the recent blocks again from the store."""
        state = await self.lane.run(self.store.load_state)
        self.cursor = state.cursor
        self.blocks = state.blocks
        self.published = state.unsaved
        self.loaded = True

    async def commit(self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]) -> None:
        """Publish, then save the blocks and the cursor: nothing here is interrupted by a stop."""
        self.committing = True
        try:
            await self.lane.run(self.publish, split(self.chain_id, events, self.batch_size))
            self.published = reorg.count_published(self.published, events)
            stale = reorg.stale_hashes(self.published, headers)
            if stale:
                await self._wait_for_matcher(stale)
            await self.lane.run(self.store.save_range, headers, stale)
            self._schedule_sweeps(stale)
        finally:
            self.committing = False
        last = headers[-1]
        self.cursor = (last.number, last.hash)
        self.blocks, self.published = reorg.after_save(self.blocks, self.published, headers)

    async def rewind(self, ancestor: BlockHeader) -> None:
        """A reorg down to `ancestor`: mark the events of the blocks above it removed."""
        after = reorg.rewind_to(ancestor, self.blocks, self.published)
        orphaned = list(after.orphaned.values())
        await self._wait_for_matcher(orphaned)
        self.committing = True
        try:
            await self.lane.run(self.store.rewind, ancestor, orphaned)
        finally:
            self.committing = False
        self._schedule_sweeps(orphaned)
        self.cursor = (ancestor.number, ancestor.hash)
        self.blocks, self.published = after.blocks, after.published

    async def sweep(self) -> None:
        """Mark removed the events of orphaned blocks that the matcher stored after the reorg."""
        due, later = reorg.due_sweeps(self.sweeps, time.monotonic())
        if not due:
            return
        tasks = await self.lane.run(self.store.orphan_again, due)
        self.sweeps = later
        if tasks:
            log.warning(
                "listen.reorg.late_events chain=%s blocks=%d removed_tasks=%d "
                "(the matcher stored them after the reorg was handled)",
                self.chain,
                len(due),
                tasks,
            )

    def _schedule_sweeps(self, block_hashes: Sequence[str]) -> None:
        self.sweeps = reorg.schedule_sweeps(
            self.sweeps, block_hashes, time.monotonic(), self.sweep_delays_s
        )

    async def _wait_for_matcher(self, block_hashes: Sequence[str]) -> None:
        """Wait (bounded) until the matcher stored the events published for these blocks, so
        that marking them removed covers every one of them."""
        expected = reorg.expected_counts(self.published, block_hashes)
        if not expected:
            return
        deadline = time.monotonic() + self.matcher_wait_s
        while True:
            stored = await self.lane.run(self.store.stored_event_counts, list(expected))
            if all(stored.get(h, 0) >= n for h, n in expected.items()):
                return
            if time.monotonic() > deadline or self.stopping():
                log.warning(
                    "listen.reorg.matcher_behind chain=%s blocks=%d waited=%.0fs; "
                    "marking the events stored so far",
                    self.chain,
                    len(expected),
                    self.matcher_wait_s,
                )
                return
            await asyncio.sleep(0.1)
