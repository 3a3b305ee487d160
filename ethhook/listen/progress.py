"""One chain's progress: cursor and recent blocks, kept in step with the store.

The store and the publisher are handed in (`ChainStore`, `Publish`): `runner.make_follower` passes
the database (`store.DatabaseStore`) and the broker (`workqueue.enqueue_match_groups`), tests pass
fakes. Their calls block, so they run on the chain's lane, one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ethhook.listen import reorg
from ethhook.listen.records import BlockHeader
from ethhook.listen.threads import BlockingLane
from ethhook.types import ChainEvent
from ethhook.workqueue import MatchGroup

if TYPE_CHECKING:
    from ethhook.listen.lag import Lagging
    from ethhook.listen.store import ChainState
    from ethhook.listen.tags import TagState


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

    def save_range(
        self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]
    ) -> list[MatchGroup]: ...

    def rewind(self, ancestor: BlockHeader, orphaned_hashes: Sequence[str]) -> int: ...

    def save_tags(self, state: TagState) -> None: ...
    def tell_lagging(self, lagging: Lagging) -> int: ...


# Hands stored events to the matcher (after the commit); returns the tasks sent. A broker that
# refuses them is logged, not raised: the events are leased in the database, and the beat job
# dispatches them again when the lease expires.
Publish = Callable[[Sequence[MatchGroup]], int]


class ChainProgress:
    """What the follower has saved for one chain: a range's events, its blocks and the cursor in
    one transaction, then the matcher tasks; on a reorg, the orphaned blocks' events removed."""

    def __init__(
        self,
        chain: str,
        chain_id: int,
        store: ChainStore,
        publish: Publish,
        lane: BlockingLane,
    ) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.store = store
        self.publish = publish
        self.lane = lane
        self.loaded = False
        self.cursor: tuple[int, str] | None = None
        self.blocks: reorg.Blocks = {}
        # True while a store or broker call must not be cancelled by a stop.
        self.committing = False

    async def load(self) -> None:
        """Read the cursor and the recent blocks again from the store."""
        state = await self.lane.run(self.store.load_state)
        self.cursor = state.cursor
        self.blocks = state.blocks
        self.loaded = True

    async def commit(self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]) -> None:
        """Store the events with the blocks and the cursor, then publish the matcher tasks:
        nothing here is interrupted by a stop."""
        self.committing = True
        try:
            await self.lane.run(self._save_and_publish, headers, events)
        finally:
            self.committing = False
        last = headers[-1]
        self.cursor = (last.number, last.hash)
        self.blocks = reorg.after_save(self.blocks, headers)

    def _save_and_publish(
        self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]
    ) -> None:
        """One job on the lane, not two: the publish follows the commit without a hand-off
        back to the event loop and out to the lane again."""
        self.publish(self.store.save_range(headers, events))

    async def rewind(self, ancestor: BlockHeader) -> None:
        """A reorg down to `ancestor`: mark the events of the blocks above it removed."""
        after = reorg.rewind_to(ancestor, self.blocks)
        self.committing = True
        try:
            await self.lane.run(self.store.rewind, ancestor, list(after.orphaned.values()))
        finally:
            self.committing = False
        self.cursor = (ancestor.number, ancestor.hash)
        self.blocks = after.blocks
