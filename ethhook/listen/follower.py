"""One chain: from the stored cursor to the node's head, block ranges in order, reorgs by parent hash.

Every pass reads a range of blocks (headers in one batch, logs in one `eth_getLogs`), checks that
the headers form one chain with the cursor block, publishes the range's events, and only then moves
the cursor past it. A failure anywhere leaves the cursor where it was, so the range is read again;
the matcher's unique keys make a republished event a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import pairwise
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ethhook import metrics
from ethhook.config import ChainConfig
from ethhook.exceptions import EthHookError
from ethhook.listen.backoff import Backoff
from ethhook.listen.chunks import ChunkSizer
from ethhook.listen.errors import (
    ChainLocked,
    ChainMoved,
    PublishError,
    RpcBadResponse,
    RpcConnectionError,
    RpcError,
)
from ethhook.listen.publish import publish_batches, split
from ethhook.listen.records import BlockHeader, parse_log, quantity
from ethhook.listen.rpc import RpcClient
from ethhook.listen.store import (
    KEEP_BLOCKS,
    ChainLock,
    WatchList,
    load_state,
    orphan_again,
    rewind,
    save_range,
    stored_event_counts,
)
from ethhook.listen.threads import BlockingLane
from ethhook.types import ChainEvent

if TYPE_CHECKING:
    from ethhook.listen.heads import HeadSubscription

log = logging.getLogger(__name__)

# Blocks per range: the first try, and the most it grows back to after refusals.
INITIAL_CHUNK_BLOCKS = 100
MAX_CHUNK_BLOCKS = 500
# With a live WebSocket, still ask the node for its head this often (a silent subscription).
SAFETY_POLL_S = 5.0
# Before marking a reorged block's events removed, wait this long for the matcher to store them.
MATCHER_WAIT_S = 30.0
# Above this many watched contracts, fetch every log and filter here (providers cap the list).
MAX_ADDRESSES_PER_QUERY = 500
# A range that returned more logs than this is halved for the next one (most providers refuse
# answers above 10,000 logs; smaller answers also keep the listener's memory flat).
MAX_LOGS_PER_RANGE = 10_000
# Headers fetched per batch while walking back to a common ancestor.
REORG_WINDOW = 64
# After a reorg, look again this long after for events of the orphaned blocks that the matcher
# stored late (a batch that was still queued), and mark them removed too.
SWEEP_DELAYS_S = (5.0, 30.0, 120.0)
# Retry delays after a failed pass (capped exponential, jittered).
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


def logs_to_events(
    raw_logs: Sequence[object],
    chain_id: int,
    headers: dict[int, BlockHeader],
    addresses: frozenset[str] | None,
) -> list[ChainEvent]:
    """Validate the logs of a range against its headers; the events, in chain order."""
    events = []
    for raw in raw_logs:
        event = parse_log(raw, chain_id)
        if event.removed:
            continue
        header = headers.get(event.block_number)
        if header is None:
            raise RpcBadResponse(
                "eth_getLogs",
                f"log of block {event.block_number} outside the range asked for",
            )
        if event.block_hash != header.hash:
            raise ChainMoved(
                f"a log of block {event.block_number} has hash {event.block_hash[:10]}…, "
                f"the header {header.hash[:10]}…"
            )
        if addresses is not None and event.address not in addresses:
            continue
        if event.block_timestamp != header.timestamp:
            event = replace(event, block_timestamp=header.timestamp)
        events.append(event)
    events.sort(key=lambda e: (e.block_number, e.log_index))
    return events


class ChainFollower:
    """Follows one chain until stopped; never lets an error escape (one chain must not stall
    the others), and logs one line per problem."""

    def __init__(
        self,
        chain: ChainConfig,
        batch_size: int,
        watch: Callable[[], WatchList],
        rpc: RpcClient | None = None,
    ) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self.batch_size = batch_size
        self.watch = watch
        self.rpc = rpc or RpcClient.for_urls(chain.http_url, chain.ws_url)
        self.lane = BlockingLane(f"listen-{chain.name}")
        self.sizer = ChunkSizer(INITIAL_CHUNK_BLOCKS, MAX_CHUNK_BLOCKS)
        self.backoff = Backoff(base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S)
        self.wake = asyncio.Event()
        # Set when the WebSocket (re)connects: a node that is back ends the retry wait early.
        self.reconnected = asyncio.Event()
        self.heads: HeadSubscription | None = None
        if chain.ws_url:
            # Imported only for a chain with a WebSocket URL: web3 is ~40 MB of the listener's RSS.
            from ethhook.listen.heads import HeadSubscription

            self.heads = HeadSubscription(
                chain.name, chain.ws_url, self._on_head, self.reconnected.set
            )
        self.lock = ChainLock(chain.chain_id)
        self.loaded = False
        self.chain_checked = False
        self.cursor: tuple[int, str] | None = None
        self.blocks: dict[int, str] = {}
        # number → {block hash: events published} for recent blocks, to orphan them on a reorg.
        self.published: dict[int, dict[str, int]] = {}
        self.node_head: int | None = None
        self.last_error: str | None = None
        self.last_ok_at: float | None = None
        self.events_published = 0
        # (due time, block hashes): orphaned blocks to look at again for late events.
        self.sweeps: list[tuple[float, tuple[str, ...]]] = []
        self.behind = False
        self.standby = False
        self.stopping = False
        self.committing = False

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        heads_task = asyncio.create_task(self.heads.run()) if self.heads else None
        try:
            while not self.stopping:
                try:
                    await self.sync()
                except (EthHookError, SQLAlchemyError) as exc:
                    await self._failed(exc)
                    continue
                self.backoff.reset()
                self.last_error = None
                self.last_ok_at = time.monotonic()
                await self._wait_for_head()
        finally:
            if heads_task is not None:
                heads_task.cancel()
                await asyncio.gather(heads_task, return_exceptions=True)
            await self.rpc.close()
            self.lane.close(last=self.lock.release)

    def request_stop(self) -> bool:
        """Ask the loop to end; True when it may be cancelled now (it holds nothing unsaved)."""
        self.stopping = True
        self.wake.set()
        return not self.committing

    def health(self) -> dict[str, object]:
        cursor = self.cursor[0] if self.cursor else None
        lag = None if cursor is None or self.node_head is None else max(0, self.node_head - cursor)
        return {
            "chain_id": self.chain_id,
            "transport": "websocket" if self.ws_live else "polling",
            "head": self.node_head,
            "cursor": cursor,
            "lag_blocks": lag,
            "ok": self.last_error is None and self.last_ok_at is not None,
            "last_error": self.last_error,
        }

    @property
    def ws_live(self) -> bool:
        return self.heads is not None and self.heads.live

    def _on_head(self, number: int | None) -> None:
        if number is not None:
            self.node_head = number
        self.wake.set()

    async def _wait_for_head(self) -> None:
        timeout = self.chain.poll_interval_s
        if self.ws_live:
            timeout = max(timeout, SAFETY_POLL_S)
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            pass
        self.wake.clear()

    async def _failed(self, exc: BaseException) -> None:
        delay = self.backoff.next_delay()
        if isinstance(exc, RpcError):
            event, detail = "listen.rpc.error", f"method={exc.method} error={exc.detail}"
        elif isinstance(exc, PublishError):
            event, detail = "listen.publish.failed", f"error={exc}"
        elif isinstance(exc, ChainLocked):
            event, detail = "listen.chain.locked", f"detail={exc}"
        elif isinstance(exc, ChainMoved):
            event, detail = "listen.chain.moved", f"detail={exc}"
        elif isinstance(exc, SQLAlchemyError):
            event, detail = "listen.db.error", f"error={type(exc).__name__}: {str(exc)[:200]}"
        else:
            event, detail = "listen.error", f"error={exc}"
        self.last_error = f"{event} {detail}"
        metrics.record_rpc_error(self.chain.name)
        metrics.set_chain_connected(self.chain.name, self.ws_live)
        log_at = logging.INFO if isinstance(exc, ChainMoved) else logging.WARNING
        if isinstance(exc, ChainLocked):
            # A standby listener: say it once, not at every retry.
            log_at = logging.DEBUG if self.standby else logging.WARNING
            self.standby = True
        log.log(
            log_at,
            "%s chain=%s %s cursor=%s; retrying in %.1fs",
            event,
            self.chain.name,
            detail,
            self.cursor[0] if self.cursor else None,
            delay,
        )
        await self._pause(delay)

    async def _pause(self, seconds: float) -> None:
        if self.stopping:
            return
        self.reconnected.clear()
        try:
            await asyncio.wait_for(self.reconnected.wait(), seconds)
        except TimeoutError:
            pass

    # --- one pass: catch up to the node's head -------------------------------------------------

    async def sync(self) -> None:
        if not await self.lane.run(self.lock.hold):
            raise ChainLocked(f"another listener follows chain {self.chain_id}; waiting for it")
        if self.lock.just_taken:
            self.loaded = False  # another listener may have moved the cursor meanwhile
            if self.standby:
                log.info("listen.chain.taken_over chain=%s", self.chain.name)
            self.standby = False
        if not self.loaded:
            state = await self.lane.run(load_state, self.chain_id)
            self.cursor = state.cursor
            self.blocks = state.blocks
            self.published = state.unsaved
            self.loaded = True
        if not self.chain_checked:
            await self._check_chain_id()
        if self.sweeps:
            await self._sweep()
        head = await self.rpc.block_number()
        self.node_head = head
        metrics.set_chain_head(self.chain.name, head)
        metrics.set_chain_connected(self.chain.name, True)
        if self.cursor is None:
            await self._start_at(head)
            return
        if head <= self.cursor[0]:
            # Nothing new, or a node behind its peers, or a reorg onto a shorter chain: only a
            # different hash at a height already processed proves a reorg.
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
            return
        self.behind = False
        while not self.stopping and self.cursor[0] < head:
            start = self.cursor[0] + 1
            await self._process(start, min(head, start + self.sizer.size - 1))

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

    async def _process(self, start: int, end: int) -> None:
        """Read blocks start..end, publish their events, move the cursor to `end`."""
        assert self.cursor is not None
        addresses = self.watch().addresses_for(self.chain_id)
        try:
            headers = await self.rpc.headers(range(start, end + 1))
            missing = [start + i for i, h in enumerate(headers) if h is None]
            if missing:
                raise ChainMoved(f"block {missing[0]} is not available yet")
            chain = [h for h in headers if h is not None]
            if chain[0].parent_hash != self.cursor[1]:
                await self._reorg()
                return
            for previous, current in pairwise(chain):
                if current.parent_hash != previous.hash:
                    raise ChainMoved(f"block {current.number} does not follow {previous.number}")
            raw_logs: list[object] = []
            if addresses is None or addresses:
                query = (
                    sorted(addresses)
                    if addresses is not None and len(addresses) <= MAX_ADDRESSES_PER_QUERY
                    else None
                )
                raw_logs = await self.rpc.logs(start, end, query)
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
        if len(raw_logs) > MAX_LOGS_PER_RANGE and end > start:
            self.sizer.shrink(end - start + 1)
        else:
            self.sizer.succeeded()
        log.log(
            logging.INFO if end > start else logging.DEBUG,
            "listen.range.done chain=%s blocks=%d-%d events=%d head=%s",
            self.chain.name,
            start,
            end,
            len(events),
            self.node_head,
        )

    async def _commit(self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]) -> None:
        """Publish, then save the blocks and the cursor: nothing here is interrupted by a stop."""
        self.committing = True
        try:
            batches = split(self.chain_id, events, self.batch_size)
            await self.lane.run(publish_batches, batches)
            self.events_published += len(events)
            for (number, block_hash), count in Counter(
                (e.block_number, e.block_hash) for e in events
            ).items():
                self.published.setdefault(number, {})[block_hash] = count
            # Blocks at these heights published before (then the listener stopped or failed
            # before saving them) that are no longer canonical.
            stale = [
                block_hash
                for h in headers
                for block_hash in self.published.get(h.number, {})
                if block_hash != h.hash
            ]
            if stale:
                await self._wait_for_matcher(stale)
            await self.lane.run(save_range, self.chain_id, headers, stale)
            self._schedule_sweeps(stale)
        finally:
            self.committing = False
        last = headers[-1]
        self.cursor = (last.number, last.hash)
        for h in headers:
            self.blocks[h.number] = h.hash
            if h.number in self.published:
                self.published[h.number] = {
                    k: v for k, v in self.published[h.number].items() if k == h.hash
                }
        metrics.record_events_received(self.chain.name, len(events))
        metrics.set_cursor_block(self.chain.name, last.number)
        metrics.set_listener_lag(self.chain.name, (self.node_head or last.number) - last.number)
        floor = last.number - KEEP_BLOCKS
        self.blocks = {n: v for n, v in self.blocks.items() if n > floor}
        self.published = {n: v for n, v in self.published.items() if n > floor and v}

    # --- reorgs -------------------------------------------------------------------------------

    async def _reorg(self) -> None:
        """The cursor block is no longer canonical: walk back to the common ancestor, mark the
        events above it removed, and let the next pass read the new canonical blocks."""
        assert self.cursor is not None
        old_head = self.cursor[0]
        numbers = sorted(self.blocks, reverse=True)
        ancestor: BlockHeader | None = None
        for i in range(0, len(numbers), REORG_WINDOW):
            window = numbers[i : i + REORG_WINDOW]
            for number, header in zip(window, await self.rpc.headers(window), strict=True):
                if header is not None and header.hash == self.blocks[number]:
                    ancestor = header
                    break
            if ancestor is not None:
                break
        if ancestor is None:
            lowest = numbers[-1] if numbers else old_head
            [ancestor] = await self.rpc.headers([max(lowest - 1, 0)])
            if ancestor is None:
                raise ChainMoved(f"block {max(lowest - 1, 0)} is not available")
            log.error(
                "listen.reorg.too_deep chain=%s stored_from=%d cursor=%d; resuming from %d",
                self.chain.name,
                lowest,
                old_head,
                ancestor.number,
            )
        orphaned = {n: h for n, h in self.blocks.items() if n > ancestor.number}
        metrics.record_reorg(self.chain.name, old_head - ancestor.number)
        log.warning(
            "listen.reorg.detected chain=%s depth=%d ancestor=%d old_cursor=%d",
            self.chain.name,
            old_head - ancestor.number,
            ancestor.number,
            old_head,
        )
        await self._wait_for_matcher(list(orphaned.values()))
        self.committing = True
        try:
            await self.lane.run(rewind, self.chain_id, ancestor, list(orphaned.values()))
        finally:
            self.committing = False
        self._schedule_sweeps(list(orphaned.values()))
        self.cursor = (ancestor.number, ancestor.hash)
        self.blocks = {n: h for n, h in self.blocks.items() if n <= ancestor.number}
        self.blocks[ancestor.number] = ancestor.hash
        for number, block_hash in orphaned.items():
            self.published.get(number, {}).pop(block_hash, None)

    def _schedule_sweeps(self, block_hashes: Sequence[str]) -> None:
        if block_hashes:
            now = time.monotonic()
            self.sweeps += [(now + delay, tuple(block_hashes)) for delay in SWEEP_DELAYS_S]

    async def _sweep(self) -> None:
        now = time.monotonic()
        due = {h for at, hashes in self.sweeps if at <= now for h in hashes}
        if not due:
            return
        tasks = await self.lane.run(orphan_again, self.chain_id, sorted(due))
        self.sweeps = [(at, hashes) for at, hashes in self.sweeps if at > now]
        if tasks:
            log.warning(
                "listen.reorg.late_events chain=%s blocks=%d removed_tasks=%d "
                "(the matcher stored them after the reorg was handled)",
                self.chain.name,
                len(due),
                tasks,
            )

    async def _wait_for_matcher(self, block_hashes: Sequence[str]) -> None:
        """Wait (bounded) until the matcher stored the events published for these blocks, so
        that marking them removed covers every one of them."""
        expected: dict[str, int] = {}
        for by_hash in self.published.values():
            for block_hash, count in by_hash.items():
                if block_hash in block_hashes and count:
                    expected[block_hash] = count
        if not expected:
            return
        deadline = time.monotonic() + MATCHER_WAIT_S
        while True:
            stored = await self.lane.run(stored_event_counts, self.chain_id, list(expected))
            if all(stored.get(h, 0) >= n for h, n in expected.items()):
                return
            if time.monotonic() > deadline or self.stopping:
                log.warning(
                    "listen.reorg.matcher_behind chain=%s blocks=%d waited=%.0fs; "
                    "marking the events stored so far",
                    self.chain.name,
                    len(expected),
                    MATCHER_WAIT_S,
                )
                return
            await asyncio.sleep(0.1)
