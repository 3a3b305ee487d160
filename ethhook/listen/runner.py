"""`ethhook listen`: one process, one asyncio task per enabled chain, stopped cleanly by a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ethhook.config import ChainConfig, Settings
from ethhook.exceptions import ConfigError
from ethhook.listen import health
from ethhook.listen.follower import ChainFollower
from ethhook.listen.store import DatabaseStore, WatchList, load_watch_list
from ethhook.listen.threads import BlockingLane
from ethhook.logs import configure, log_fields
from ethhook.workqueue import enqueue_match_groups

log = logging.getLogger(__name__)

# A new or changed endpoint reaches the log filters within this many seconds.
WATCH_REFRESH_S = 2.0
# After SIGTERM: time for in-flight publishes and cursor saves before the tasks are cancelled.
SHUTDOWN_GRACE_S = 5.0
# A chain task that died of a bug is started again after this pause (the others keep going).
RESTART_DELAY_S = 5.0


def make_follower(
    chain: ChainConfig, settings: Settings, watch: Callable[[], WatchList]
) -> ChainFollower:
    """A follower that stores in the database and publishes to the broker."""
    return ChainFollower(chain, watch, DatabaseStore(chain.chain_id), enqueue_match_groups)


class Listener:
    def __init__(self, settings: Settings, chains: list[ChainConfig]) -> None:
        self.settings = settings
        self.chains = chains
        self.watch: WatchList | None = None
        self.stop = asyncio.Event()
        self.followers: dict[int, ChainFollower] = {}
        self.tasks: dict[asyncio.Task[None], int] = {}

    def current_watch(self) -> WatchList:
        assert self.watch is not None
        return self.watch

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        lane = BlockingLane("listen-watch")
        server = (
            await health.serve(self.settings.metrics_port, self.health, self.settings.metrics_host)
            if self.settings.metrics_port
            else None
        )
        try:
            if not await self._first_watch(lane):
                return 0
            refresher = asyncio.create_task(self._refresh_watch(lane))
            for chain in self.chains:
                self._start(chain)
            log.info(
                "listen.started chains=%s",
                ",".join(f"{c.name}:{c.chain_id}" for c in self.chains),
            )
            await self._supervise()
            refresher.cancel()
            await self._shutdown()
        finally:
            lane.close()
            if server is not None:
                server.close()
        log.info("listen.stopped")
        return 0

    def _on_signal(self, sig: int) -> None:
        log.info("listen.stopping signal=%s", signal.Signals(sig).name)
        self.stop.set()

    def _start(self, chain: ChainConfig) -> None:
        follower = make_follower(chain, self.settings, self.current_watch)
        self.followers[chain.chain_id] = follower
        with log_fields(chain=chain.name):  # every line of the chain's task names it
            task = asyncio.create_task(follower.run(), name=f"listen-{chain.name}")
        self.tasks[task] = chain.chain_id

    async def _supervise(self) -> None:
        stop_wait: asyncio.Task[Any] = asyncio.create_task(self.stop.wait())
        while not self.stop.is_set():
            waiting: list[asyncio.Task[Any]] = [stop_wait, *self.tasks]
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is stop_wait:
                    continue
                chain_id = self.tasks.pop(task)
                follower = self.followers[chain_id]
                error = task.exception() if not task.cancelled() else None
                log.error(
                    "listen.chain.crashed chain=%s error=%r; restarting in %.0fs",
                    follower.chain.name,
                    error,
                    RESTART_DELAY_S,
                    exc_info=error,
                )
                asyncio.get_running_loop().call_later(
                    RESTART_DELAY_S, self._restart, follower.chain
                )

    def _restart(self, chain: ChainConfig) -> None:
        if not self.stop.is_set():
            self._start(chain)

    async def _shutdown(self) -> None:
        """Let every chain finish publishing and saving what it holds, then cancel the rest."""
        for task, chain_id in self.tasks.items():
            if self.followers[chain_id].request_stop():
                task.cancel()
        if not self.tasks:
            return
        _, pending = await asyncio.wait(self.tasks, timeout=SHUTDOWN_GRACE_S)
        for task in pending:
            log.warning("listen.stop.forced chain=%s", self.followers[self.tasks[task]].chain.name)
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    async def _first_watch(self, lane: BlockingLane) -> bool:
        """Load the watch list once before reading any log; False if stopped meanwhile."""
        delay = 0.5
        while not self.stop.is_set():
            try:
                self.watch = await lane.run(load_watch_list)
                return True
            except SQLAlchemyError as exc:
                log.warning(
                    "listen.db.error reading endpoints error=%s; retrying in %.1fs",
                    str(exc).splitlines()[0][:200],
                    delay,
                )
            try:
                await asyncio.wait_for(self.stop.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, 30.0)
        return False

    async def _refresh_watch(self, lane: BlockingLane) -> None:
        while True:
            await asyncio.sleep(WATCH_REFRESH_S)
            try:
                self.watch = await lane.run(load_watch_list)
            except SQLAlchemyError as exc:
                log.warning(
                    "listen.db.error refreshing endpoints error=%s; keeping the previous list",
                    str(exc).splitlines()[0][:200],
                )

    def health(self) -> dict[str, Any]:
        chains = {f.chain.name: f.health() for f in self.followers.values()}
        return {"ok": all(c["ok"] for c in chains.values()), "chains": chains}


def run_listener(settings: Settings) -> int:
    """Follow every enabled chain until SIGTERM/SIGINT; returns the process exit code."""
    configure(settings, "listener")
    chains = [c for c in settings.chains if c.enabled]
    if not chains:
        raise ConfigError(
            "no chain to listen to: set ETHEREUM_WS or ETHEREUM_HTTP (or ARBITRUM_*, OPTIMISM_*, "
            "BASE_*), or declare chains in the file named by ETHHOOK_CHAINS_FILE"
        )
    return asyncio.run(Listener(settings, chains).run())
