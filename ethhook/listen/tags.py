"""The node's `safe` and `finalized` blocks, asked after each pass that saw a new head and stored
per chain (`chain_tags`), where beat's release of tag-final deliveries reads them."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ethhook.listen.errors import RpcBadResponse, RpcErrorResponse
from ethhook.listen.records import parse_header
from ethhook.listen.rpc import RpcClient
from ethhook.listen.threads import BlockingLane

log = logging.getLogger(__name__)

TAGS = ("safe", "finalized")
# The tags are asked at most this often (a pass per block on a fast chain would otherwise ask
# them once per block), and never later than this after a new head (follower._wait_for_head).
TAGS_POLL_S = 2.0


@dataclass(frozen=True)
class TagState:
    """Whether the node answers both tags, and their block numbers when it does."""

    supported: bool
    safe: int | None = None
    finalized: int | None = None


UNSUPPORTED = TagState(False)


async def ask_tags(rpc: RpcClient) -> TagState:
    """The node's tags in one batch. A node that answers either with an error, with no block or
    with something that is not a block does not support them (pre-merge chains, some rollup
    nodes and most dev chains but anvil); a node that cannot be reached raises, as any other
    call (the pass is retried)."""
    calls = [("eth_getBlockByNumber", [tag, False]) for tag in TAGS]
    try:
        safe, finalized = await rpc.batch(calls)
    except RpcErrorResponse:
        return UNSUPPORTED
    if safe is None or finalized is None:
        return UNSUPPORTED
    try:
        return TagState(True, parse_header(safe).number, parse_header(finalized).number)
    except RpcBadResponse:  # not a block: the node does not know the tag as a block tag
        return UNSUPPORTED


class TagStore(Protocol):
    def save_tags(self, state: TagState) -> None: ...


class ChainTagWatch:
    """One chain's tags: asked after a pass that saw a new head, at most every `interval_s`
    (a head seen sooner is owed an ask, `due_in`), saved when they changed; says once (and again
    whenever it changes) whether the node answers them."""

    def __init__(
        self,
        chain: str,
        rpc: RpcClient,
        store: TagStore,
        lane: BlockingLane,
        interval_s: float = TAGS_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chain = chain
        self.rpc = rpc
        self.store = store
        self.lane = lane
        self.interval_s = interval_s
        self.clock = clock
        self.asked_at: int | None = None  # the head when they were last asked
        self.asked_time: float | None = None
        self.owed = False
        self.saved: TagState | None = None

    def due_in(self) -> float:
        """Seconds until an owed ask may be made; infinity when none is owed."""
        if not self.owed or self.asked_time is None:
            return math.inf
        return max(0.0, self.asked_time + self.interval_s - self.clock())

    async def after_pass(self, head: int | None) -> None:
        if head is None or head == self.asked_at:
            return
        now = self.clock()
        if self.asked_time is not None and now < self.asked_time + self.interval_s:
            self.owed = True
            return
        state = await ask_tags(self.rpc)
        self.asked_at, self.asked_time, self.owed = head, now, False
        if state == self.saved:
            return
        await self.lane.run(self.store.save_tags, state)
        if self.saved is None or self.saved.supported != state.supported:
            self._say(state)
        self.saved = state

    def _say(self, state: TagState) -> None:
        if state.supported:
            log.info(
                "listen.chain.finality_tags chain=%s safe=%s finalized=%s",
                self.chain,
                state.safe,
                state.finalized,
            )
            return
        log.warning(
            "listen.chain.no_finality_tags chain=%s: the node does not answer "
            'eth_getBlockByNumber("safe"/"finalized"); endpoints there can use only '
            "--finality latest (with --confirmations), and safe or finalized ones wait",
            self.chain,
        )
