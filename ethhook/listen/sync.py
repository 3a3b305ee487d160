"""One pass of a follower: from the cursor to the node's head, range by range, reorgs included.

What to read next and what a reorg orphans are the pure functions of `plan` and `reorg`; what was
published and saved is `progress.ChainProgress`; this module asks the node and sequences them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ethhook import metrics
from ethhook.config import ChainConfig
from ethhook.listen import plan, reorg
from ethhook.listen.chunks import ChunkSizer
from ethhook.listen.errors import (
    ChainMoved,
    RpcBadResponse,
    RpcConnectionError,
    RpcError,
    RpcErrorResponse,
)
from ethhook.listen.progress import ChainProgress
from ethhook.listen.records import BlockHeader, logs_to_events, quantity
from ethhook.listen.rpc import RpcClient
from ethhook.types import ChainEvent

if TYPE_CHECKING:
    from ethhook.listen.store import WatchList

log = logging.getLogger(__name__)

# After this many blocks in a row refused by hash (`eth_getLogs` with blockHash) but then read by
# number in the same pass, the node is taken not to support it: every block is read by number.
BY_HASH_REFUSALS = 3
# A range read without events is logged at INFO only from this many blocks (catching up): a
# chain's new blocks, read a few at a time, say nothing while no watched contract emits.
CATCH_UP_BLOCKS = 100


def range_log_level(start: int, end: int, events: int) -> int:
    """INFO for a range that found events or that catches up, DEBUG for the routine ones."""
    return logging.INFO if events or end - start + 1 >= CATCH_UP_BLOCKS else logging.DEBUG


@dataclass(frozen=True)
class Limits:
    """A follower's range sizes and reorg delays (tests pass smaller ones)."""

    # Blocks per range: the first try, and the most it grows back to after refusals.
    initial_chunk_blocks: int = 100
    max_chunk_blocks: int = 500
    # Above this many watched contracts, fetch every log and filter here (providers cap the list).
    max_addresses_per_query: int = 500
    # The same for watched events (topic0s); a longer list asks for every event.
    max_topics_per_query: int = 100
    # A range that returned more logs than this is halved for the next one (most providers refuse
    # answers above 10,000 logs; smaller answers also keep the listener's memory flat).
    max_logs_per_range: int = 10_000
    # Headers fetched per batch while walking back to a common ancestor.
    reorg_window: int = 64


DEFAULT_LIMITS = Limits()


class ChainSync:
    """Catches one chain up to its node's head; raises on any failure, leaving the cursor at the
    last range that was published and saved (the follower backs off and calls again)."""

    def __init__(
        self,
        chain: ChainConfig,
        watch: Callable[[], WatchList],
        rpc: RpcClient,
        progress: ChainProgress,
        limits: Limits,
        stopping: Callable[[], bool],
    ) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self.watch = watch
        self.rpc = rpc
        self.progress = progress
        self.limits = limits
        self.stopping = stopping
        self.sizer = ChunkSizer(limits.initial_chunk_blocks, limits.max_chunk_blocks)
        self.chain_checked = False
        # The highest block the node reported, by eth_blockNumber or over the WebSocket.
        self.node_head: int | None = None
        # The newest header notified over the WebSocket that no pass has read yet.
        self.notified: BlockHeader | None = None
        self.by_hash_refusals = 0
        # The block whose logs the node refused by hash in this pass.
        self.refused_by_hash: int | None = None
        self.behind = False

    def notify(self, header: BlockHeader) -> None:
        """A `newHeads` notification: the next pass starts from this header."""
        self.notified = header
        self.node_head = header.number

    @property
    def cursor(self) -> tuple[int, str] | None:
        return self.progress.cursor

    async def run(self) -> None:
        if not self.progress.loaded:
            await self.progress.load()
        if not self.chain_checked:
            await self._check_chain_id()
        notified, self.notified = self.notified, None
        self.refused_by_hash = None
        if notified is not None and await self._read_notified(notified):
            return
        # A notified head is as new as eth_blockNumber would say (a newer one wakes the next pass).
        head = notified.number if notified is not None else await self.rpc.block_number()
        self._saw_head(head)
        if self.cursor is None:
            await self._start_at(head)
            return
        if head <= self.cursor[0]:
            await self._check_cursor(head)
            return
        self.behind = False
        while not self.stopping():
            block_range = plan.next_range(self.cursor[0], head, self.sizer.size)
            if block_range is None:
                return
            await self._process(*block_range)

    def _saw_head(self, head: int) -> None:
        self.node_head = head
        metrics.set_chain_head(self.chain.name, head)
        metrics.set_chain_connected(self.chain.name, True)

    async def _read_notified(self, header: BlockHeader) -> bool:
        """The notified block, when it is the cursor block's child: its header is the
        notification's, and its logs are asked for by its hash, so the node answers for that
        very block or refuses (a node that has not got it yet never answers an empty list).
        False when the pass must read by number instead (a gap, a reorg, a refusal)."""
        if self.cursor is not None and self.progress.blocks.get(header.number) == header.hash:
            return True  # read already, in a range read by number
        if (
            self.cursor is None
            or not plan.extends(self.cursor, header)
            or self.by_hash_refusals >= BY_HASH_REFUSALS
        ):
            return False
        self._saw_head(header.number)
        watch = self.watch()
        addresses = watch.addresses_for(self.chain_id)
        query = self._log_query(watch, addresses)
        try:
            raw_logs = (
                await self.rpc.block_logs(header.hash, query.addresses, query.topics)
                if query.needed
                else []
            )
        except RpcErrorResponse as exc:
            # A node that has not got the block yet refuses too: counted only once the same
            # pass reads it by number (`_commit`).
            log.debug(
                "listen.rpc.by_hash_refused chain=%s block=%d error=%s; reading it by number",
                self.chain.name,
                header.number,
                exc.detail,
            )
            self.refused_by_hash = header.number
            return False
        self.by_hash_refusals = 0
        events = logs_to_events(raw_logs, self.chain_id, {header.number: header}, addresses)
        self.behind = False
        await self._commit([header], events)
        self._log_done(header.number, header.number, events)
        return True

    def _count_by_hash_refusal(self, headers: Sequence[BlockHeader]) -> None:
        """The block refused by hash in this pass was read by number: the node had it."""
        refused, self.refused_by_hash = self.refused_by_hash, None
        if refused is None or not headers[0].number <= refused <= headers[-1].number:
            return
        self.by_hash_refusals += 1
        if self.by_hash_refusals == BY_HASH_REFUSALS:
            log.warning(
                "listen.rpc.by_hash_unsupported chain=%s refusals=%d; reading every block by "
                "number from now on",
                self.chain.name,
                self.by_hash_refusals,
            )

    def _log_query(self, watch: WatchList, addresses: frozenset[str] | None) -> plan.LogQuery:
        return plan.log_query(
            addresses,
            self.limits.max_addresses_per_query,
            watch.topics_for(self.chain_id),
            self.limits.max_topics_per_query,
        )

    async def _check_chain_id(self) -> None:
        raw = await self.rpc.call("eth_chainId", [])
        node_chain = quantity(raw, "chain id", "eth_chainId")
        if node_chain != self.chain_id:
            raise RpcBadResponse(
                "eth_chainId",
                f"the node serves chain {node_chain}, not {self.chain_id}: fix the URL of "
                f"{self.chain.name}",
            )
        self.chain_checked = True

    async def _start_at(self, head: int) -> None:
        [header] = await self.rpc.headers([head])
        if header is None:
            raise ChainMoved(f"head block {head} is not available")
        await self._commit([header], [])
        log.info(
            "listen.chain.started chain=%s block=%d (no cursor yet: following from the head)",
            self.chain.name,
            head,
        )

    async def _check_cursor(self, head: int) -> None:
        """Nothing new, or a node behind its peers, or a reorg onto a shorter chain: only a
        different hash at a height already processed proves a reorg."""
        assert self.cursor is not None
        [header] = await self.rpc.headers([self.cursor[0]])
        if header is not None and header.hash != self.cursor[1]:
            await self._reorg()
        elif header is None and not self.behind:
            self.behind = True
            log.warning(
                "listen.chain.behind chain=%s node_head=%d cursor=%d; waiting for the node "
                "to reach the cursor",
                self.chain.name,
                head,
                self.cursor[0],
            )

    async def _process(self, start: int, end: int) -> None:
        """Read blocks start..end, publish their events, move the cursor to `end`."""
        assert self.cursor is not None
        watch = self.watch()
        addresses = watch.addresses_for(self.chain_id)
        try:
            headers = await self.rpc.headers(range(start, end + 1))
            chain = plan.linked_headers(start, headers, self.cursor[1])
            if chain is None:
                await self._reorg()
                return
            query = self._log_query(watch, addresses)
            raw_logs = (
                await self.rpc.logs(start, end, query.addresses, query.topics)
                if query.needed
                else []
            )
            by_number = {h.number: h for h in chain}
            events = logs_to_events(raw_logs, self.chain_id, by_number, addresses)
        except RpcError as exc:
            if end == start or isinstance(exc, RpcConnectionError):
                raise
            size = self.sizer.shrink(end - start + 1)
            log.warning(
                "listen.rpc.range_failed chain=%s method=%s blocks=%d-%d error=%s; "
                "retrying with %d blocks",
                self.chain.name,
                exc.method,
                start,
                end,
                exc.detail,
                size,
            )
            return
        await self._commit(chain, events)
        if plan.too_many_logs(len(raw_logs), start, end, self.limits.max_logs_per_range):
            self.sizer.shrink(end - start + 1)
        else:
            self.sizer.succeeded()
        self._log_done(start, end, events)

    def _log_done(self, start: int, end: int, events: Sequence[ChainEvent]) -> None:
        log.log(
            range_log_level(start, end, len(events)),
            "listen.range.done chain=%s blocks=%d-%d events=%d head=%s",
            self.chain.name,
            start,
            end,
            len(events),
            self.node_head,
        )

    async def _commit(self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]) -> None:
        await self.progress.commit(headers, events)
        self._count_by_hash_refusal(headers)
        last = headers[-1]
        metrics.record_events_received(self.chain.name, len(events))
        metrics.set_cursor_block(self.chain.name, last.number)
        metrics.set_listener_lag(self.chain.name, (self.node_head or last.number) - last.number)

    async def _reorg(self) -> None:
        """The cursor block is no longer canonical: walk back to the common ancestor, mark the
        events above it removed, and let the next pass read the new canonical blocks."""
        assert self.cursor is not None
        old_head = self.cursor[0]
        blocks = self.progress.blocks
        ancestor: BlockHeader | None = None
        for window in reorg.walk_windows(blocks, self.limits.reorg_window):
            ancestor = reorg.common_ancestor(blocks, window, await self.rpc.headers(window))
            if ancestor is not None:
                break
        if ancestor is None:
            lowest, number = reorg.resume_below(blocks, old_head)
            [ancestor] = await self.rpc.headers([number])
            if ancestor is None:
                raise ChainMoved(f"block {number} is not available")
            log.error(
                "listen.reorg.too_deep chain=%s stored_from=%d cursor=%d; resuming from %d",
                self.chain.name,
                lowest,
                old_head,
                ancestor.number,
            )
        metrics.record_reorg(self.chain.name, old_head - ancestor.number)
        log.warning(
            "listen.reorg.detected chain=%s depth=%d ancestor=%d old_cursor=%d",
            self.chain.name,
            old_head - ancestor.number,
            ancestor.number,
            old_head,
        )
        await self.progress.rewind(ancestor)
