"""Follow one chain until stopped: a pass to the node's head, wait for the next; back off on errors.

Every pass reads a range of blocks (headers in one batch, logs in one `eth_getLogs`), checks that
the headers form one chain with the cursor block, and stores the range's events with its blocks
and the cursor in one transaction; the matcher tasks are published after it. A block notified over
the WebSocket that is the cursor block's child is read with one call: its header is the
notification's, its logs are asked for by its hash. A failure before the
commit leaves the cursor where it was, so the range is read again (the events' unique keys make a
re-read range store nothing twice).

The pass is `sync.ChainSync`; what was published and saved is `progress.ChainProgress`, over the
store and the publisher the follower is handed (`runner.make_follower` passes the real ones).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from ethhook import metrics
from ethhook.config import ChainConfig, get_settings
from ethhook.exceptions import EthHookError
from ethhook.listen.backoff import Backoff
from ethhook.listen.errors import ChainLocked, ChainMoved, RpcError
from ethhook.listen.lag import Lagging, LagWatch
from ethhook.listen.progress import ChainProgress, ChainStore, Publish
from ethhook.listen.records import BlockHeader
from ethhook.listen.rpc import RpcClient
from ethhook.listen.sync import DEFAULT_LIMITS, ChainSync, Limits
from ethhook.listen.tags import ChainTagWatch
from ethhook.listen.threads import BlockingLane

if TYPE_CHECKING:
    from ethhook.listen.heads import HeadSubscription
    from ethhook.listen.store import WatchList

log = logging.getLogger(__name__)

# With a live WebSocket, still ask the node for its head this often (a silent subscription).
SAFETY_POLL_S = 5.0
# Retry delays after a failed pass (capped exponential, jittered); read when a follower is made.
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """The stable event name and the detail of the log line for a failed pass."""
    if isinstance(exc, RpcError):
        return "listen.rpc.error", f"method={exc.method} error={exc.detail}"
    if isinstance(exc, ChainLocked):
        return "listen.chain.locked", f"detail={exc}"
    if isinstance(exc, ChainMoved):
        return "listen.chain.moved", f"detail={exc}"
    if isinstance(exc, SQLAlchemyError):
        return "listen.db.error", f"error={type(exc).__name__}: {str(exc)[:200]}"
    return "listen.error", f"error={exc}"


class ChainFollower:
    """Follows one chain until stopped; never lets an error escape (one chain must not stall
    the others), and logs one line per problem."""

    def __init__(
        self,
        chain: ChainConfig,
        watch: Callable[[], WatchList],
        store: ChainStore,
        publish: Publish,
        rpc: RpcClient | None = None,
        limits: Limits = DEFAULT_LIMITS,
        lag_watch: LagWatch | None = None,
    ) -> None:
        self.chain = chain
        self.chain_id = chain.chain_id
        self.lock = store.lock
        self.store = store
        if lag_watch is None:
            settings = get_settings()
            lag_watch = LagWatch(settings.ops_lag_blocks, settings.ops_lag_after_s)
        self.lag_watch = lag_watch
        self.rpc = rpc or RpcClient.for_urls(chain.http_url, chain.ws_url)
        self.lane = BlockingLane(f"listen-{chain.name}")
        self.progress = ChainProgress(
            chain.name,
            chain.chain_id,
            store,
            publish,
            self.lane,
        )
        self.catch_up = ChainSync(
            chain, watch, self.rpc, self.progress, limits, stopping=lambda: self.stopping
        )
        self.tags = ChainTagWatch(chain.name, self.rpc, store, self.lane)
        self.backoff = Backoff(base_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S)
        self.wake = asyncio.Event()
        # Set when the WebSocket (re)connects: a node that is back ends the retry wait early.
        self.reconnected = asyncio.Event()
        self.heads: HeadSubscription | None = None
        if chain.ws_url:
            # Imported only for a chain with a WebSocket URL: web3 is the listener's largest
            # import (bench/RESULTS.md §4).
            from ethhook.listen.heads import HeadSubscription

            self.heads = HeadSubscription(
                chain.name, chain.ws_url, self._on_head, self.reconnected.set
            )
        self.last_error: str | None = None
        self.last_ok_at: float | None = None
        self.standby = False
        self.stopping = False

    @property
    def cursor(self) -> tuple[int, str] | None:
        return self.progress.cursor

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        heads_task = asyncio.create_task(self.heads.run()) if self.heads else None
        try:
            while not self.stopping:
                await self._watch_lag()
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
        return not self.progress.committing

    def health(self) -> dict[str, object]:
        cursor = self.cursor[0] if self.cursor else None
        node_head = self.catch_up.node_head
        lag = None if cursor is None or node_head is None else max(0, node_head - cursor)
        return {
            "chain_id": self.chain_id,
            "transport": "websocket" if self.ws_live else "polling",
            "head": node_head,
            "cursor": cursor,
            "lag_blocks": lag,
            "ok": self.last_error is None and self.last_ok_at is not None,
            "last_error": self.last_error,
        }

    async def _watch_lag(self) -> None:
        """`chain.lagging` once the listener has been too far behind the head for too long."""
        cursor, node_head = self.cursor, self.catch_up.node_head
        lag = None if cursor is None or node_head is None else max(0, node_head - cursor[0])
        now = time.monotonic()
        if not self.lag_watch.observe(lag, now) or cursor is None or node_head is None:
            return
        since = self.lag_watch.since if self.lag_watch.since is not None else now
        lagging = Lagging(node_head, cursor[0], node_head - cursor[0], now - since)
        try:
            told = await self.lane.run(self.store.tell_lagging, lagging)
        except SQLAlchemyError as exc:
            self.lag_watch.retry()
            log.warning("listen.lag.untold chain=%s error=%s", self.chain.name, exc)
            return
        log.warning(
            "listen.chain.lagging chain=%s lag_blocks=%d for_s=%.0f applications_told=%d",
            self.chain.name,
            lagging.lag_blocks,
            lagging.lagging_for_s,
            told,
        )

    @property
    def ws_live(self) -> bool:
        return self.heads is not None and self.heads.live

    def _on_head(self, header: BlockHeader | None) -> None:
        if header is not None:
            self.catch_up.notify(header)
        self.wake.set()

    async def _wait_for_head(self) -> None:
        timeout = self.chain.poll_interval_s
        if self.ws_live:
            timeout = max(timeout, SAFETY_POLL_S)
        timeout = min(timeout, self.tags.due_in())  # a pass that asks the owed tags
        try:
            await asyncio.wait_for(self.wake.wait(), timeout)
        except TimeoutError:
            pass
        self.wake.clear()

    async def _failed(self, exc: BaseException) -> None:
        delay = self.backoff.next_delay()
        event, detail = describe_failure(exc)
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

    # --- one pass --------------------------------------------------------------------------------

    async def sync(self) -> None:
        """Hold the chain's lock (another listener process may follow it), then catch up."""
        if not await self.lane.run(self.lock.hold):
            raise ChainLocked(f"another listener follows chain {self.chain_id}; waiting for it")
        if self.lock.just_taken:
            self.progress.loaded = False  # another listener may have moved the cursor meanwhile
            if self.standby:
                log.info("listen.chain.taken_over chain=%s", self.chain.name)
            self.standby = False
        await self.catch_up.run()
        await self.tags.after_pass(self.catch_up.node_head)
