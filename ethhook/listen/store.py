"""The listener's database side: events with their blocks and cursor, reorg rewinds, the watch list.

Plain blocking functions (run in a worker thread by the follower); each is one transaction, and
the work found in it (matcher tasks, `event.removed` deliveries) is enqueued only after it
committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ethhook.db import get_engine, session_scope
from ethhook.db.dialect import insert, is_postgres
from ethhook.db.models import (
    ChainBlock,
    ChainCursor,
    ChainTags,
    Endpoint,
    EndpointFilter,
    Event,
    OpsEventType,
    utcnow,
)
from ethhook.listen import reorg
from ethhook.listen.lag import Lagging
from ethhook.listen.records import BlockHeader
from ethhook.listen.reorg import KEEP_BLOCKS
from ethhook.listen.tags import TagState
from ethhook.types import ChainEvent
from ethhook.workqueue import (
    MatchGroup,
    emit_for_chain,
    enqueue_groups,
    orphan_blocks,
    store_events,
)

log = logging.getLogger(__name__)

# Advisory lock keys: this base plus the chain id ("EHLS" in ASCII, shifted clear of chain ids).
LOCK_KEY_BASE = 0x45484C53 << 32


class ChainLock:
    """At most one listener per chain: a PostgreSQL session advisory lock, held on a connection
    of its own for as long as the listener runs (other databases: always granted)."""

    def __init__(self, chain_id: int) -> None:
        self.key = LOCK_KEY_BASE + chain_id
        self._conn: Connection | None = None
        # True when the last hold() took the lock anew: what was read before may be stale.
        self.just_taken = False

    def hold(self) -> bool:
        """True while this process holds the lock (taking it if free); checks the connection."""
        self.just_taken = False
        engine = get_engine()
        if not is_postgres(engine):
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))  # autocommit: one round trip, no COMMIT
                return True
            except DBAPIError:
                self._drop()  # the connection (and with it the lock) is gone: take it again
        # Autocommit: the lock belongs to the session, and the connection is never left idle in a
        # transaction (each check is one statement, not a statement and a COMMIT).
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
        except DBAPIError:
            conn.close()
            raise
        if got:
            self._conn = conn
            self.just_taken = True
        else:
            conn.close()
        return got

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            except DBAPIError as exc:  # closing the connection releases the lock anyway
                log.debug("listen.lock.unlock_failed chain_key=%s error=%s", self.key, exc)
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except DBAPIError:
                return


@dataclass
class ChainState:
    """What the listener knows about a chain when it starts."""

    cursor: tuple[int, str] | None
    # number → hash of the recent canonical blocks, contiguous up to the cursor.
    blocks: dict[int, str] = field(default_factory=dict)


def load_state(chain_id: int) -> ChainState:
    with session_scope() as session:
        cursor = session.get(ChainCursor, chain_id)
        if cursor is None:
            return ChainState(cursor=None)
        rows = session.execute(
            select(ChainBlock.block_number, ChainBlock.block_hash).where(
                ChainBlock.chain_id == chain_id,
                ChainBlock.block_number <= cursor.block_number,
                ChainBlock.block_number > cursor.block_number - KEEP_BLOCKS,
            )
        ).all()
        blocks = {number: block_hash for number, block_hash in rows}
        blocks[cursor.block_number] = cursor.block_hash
        # Keep only the contiguous run ending at the cursor.
        contiguous: dict[int, str] = {}
        number = cursor.block_number
        while number in blocks:
            contiguous[number] = blocks[number]
            number -= 1
        return ChainState(cursor=(cursor.block_number, cursor.block_hash), blocks=contiguous)


def save_range(
    chain_id: int, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]
) -> list[MatchGroup]:
    """Store a range's events, record its blocks as canonical and move the cursor to the last
    one, in one transaction: the cursor never passes an event that is not stored. Returns the
    matcher tasks to publish after the commit.

    Events stored earlier at these heights in blocks that are not canonical (a reorg the listener
    did not see, as when it was stopped) are marked removed in the same transaction.
    """
    if not headers:
        return []
    first, last = headers[0], headers[-1]
    now = utcnow()
    with session_scope() as session:
        groups = store_events(session, events, now)
        stale = session.scalars(
            select(Event.block_hash)
            .where(
                Event.chain_id == chain_id,
                Event.block_number.between(first.number, last.number),
                Event.block_hash.not_in([h.hash for h in headers]),
                Event.removed.is_(False),
            )
            .distinct()
        ).all()
        removed = orphan_blocks(session, chain_id, sorted(stale), now) if stale else []
        _upsert(
            session,
            ChainBlock,
            [_block_row(chain_id, h) for h in headers[-KEEP_BLOCKS:]],
            ["chain_id", "block_number"],
        )
        if reorg.trim_due(first.number, last.number):
            session.execute(
                delete(ChainBlock).where(
                    ChainBlock.chain_id == chain_id,
                    (ChainBlock.block_number > last.number)
                    | (ChainBlock.block_number <= last.number - KEEP_BLOCKS),
                )
            )
        _set_cursor(session, chain_id, last.number, last.hash, now)
    enqueue_groups(removed)
    return groups


def rewind(chain_id: int, ancestor: BlockHeader, orphaned_hashes: Sequence[str]) -> int:
    """A reorg: forget the blocks above the common ancestor and mark their events removed.

    Returns the number of `event.removed` delivery tasks enqueued after the commit.
    """
    with session_scope() as session:
        groups = orphan_blocks(session, chain_id, list(orphaned_hashes))
        session.execute(
            delete(ChainBlock).where(
                ChainBlock.chain_id == chain_id, ChainBlock.block_number >= ancestor.number
            )
        )
        session.add(ChainBlock(**_block_row(chain_id, ancestor)))
        _set_cursor(session, chain_id, ancestor.number, ancestor.hash, utcnow())
    return enqueue_groups(groups)


def _block_row(chain_id: int, header: BlockHeader) -> dict[str, object]:
    return {
        "chain_id": chain_id,
        "block_number": header.number,
        "block_hash": header.hash,
        "parent_hash": header.parent_hash,
    }


def _set_cursor(
    session: Session, chain_id: int, number: int, block_hash: str, now: datetime
) -> None:
    # Confirmations count only blocks the listener has checked to be one chain with the events'
    # blocks (head_number is the cursor): a head it has not verified yet could sit on a reorg it
    # has not seen.
    row = {
        "chain_id": chain_id,
        "block_number": number,
        "block_hash": block_hash,
        "head_number": number,
        "updated_at": now,
    }
    _upsert(session, ChainCursor, [row], ["chain_id"])


def _upsert(
    session: Session, model: Any, rows: Sequence[dict[str, object]], key: Sequence[str]
) -> None:
    """Insert `rows` or, for a key stored already, overwrite its other columns: one statement
    (not a read, then an insert or an update)."""
    statement = insert(model, session)
    statement = statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: statement.excluded[name] for name in rows[0] if name not in key},
    )
    session.execute(statement, list(rows))


def save_tags(chain_id: int, state: TagState) -> None:
    """What the listener learnt of the chain's tags (listen.tags), for beat's release of
    tag-final deliveries and for the endpoint checks that refuse a tag the node lacks."""
    row: dict[str, object] = {
        "chain_id": chain_id,
        "supported": state.supported,
        "safe_number": state.safe,
        "finalized_number": state.finalized,
        "updated_at": utcnow(),
    }
    with session_scope() as session:
        _upsert(session, ChainTags, [row], ["chain_id"])


def tell_lagging(chain_id: int, lagging: Lagging) -> int:
    """Queue `chain.lagging` for the applications watching the chain that have an ops endpoint;
    returns how many."""
    data = {
        "chain_id": chain_id,
        "node_head": lagging.node_head,
        "cursor": lagging.cursor,
        "lag_blocks": lagging.lag_blocks,
        "lagging_for_s": round(lagging.lagging_for_s, 1),
    }
    now = utcnow()
    with session_scope() as session:
        return emit_for_chain(session, chain_id, OpsEventType.CHAIN_LAGGING, data, now)


class DatabaseStore:
    """The follower's store for one chain: the functions above bound to its chain id, and the
    chain's lock (see `progress.ChainStore`)."""

    def __init__(self, chain_id: int) -> None:
        self.chain_id = chain_id
        self.lock = ChainLock(chain_id)

    def load_state(self) -> ChainState:
        return load_state(self.chain_id)

    def save_range(
        self, headers: Sequence[BlockHeader], events: Sequence[ChainEvent]
    ) -> list[MatchGroup]:
        return save_range(self.chain_id, headers, events)

    def rewind(self, ancestor: BlockHeader, orphaned_hashes: Sequence[str]) -> int:
        return rewind(self.chain_id, ancestor, orphaned_hashes)

    def save_tags(self, state: TagState) -> None:
        save_tags(self.chain_id, state)

    def tell_lagging(self, lagging: Lagging) -> int:
        return tell_lagging(self.chain_id, lagging)


@dataclass(frozen=True)
class WatchList:
    """Which contracts and events each chain's endpoints watch (those that events are matched to:
    active, or disabled keeping their backlog); `None` means every one."""

    # (chain_id or None for every chain, address or None for every contract)
    rows: frozenset[tuple[int | None, str | None]]
    # (chain_id or None for every chain, topic0 or None for every event); by default, every
    # event of every chain.
    events: frozenset[tuple[int | None, str | None]] = frozenset({(None, None)})

    def addresses_for(self, chain_id: int) -> frozenset[str] | None:
        return _values_for(self.rows, chain_id)

    def topics_for(self, chain_id: int) -> frozenset[str] | None:
        """The topic0s to ask the node for: None unless every endpoint on the chain names its
        events (one eth_getLogs filter is addresses AND topics, so one endpoint that takes any
        event of its contract needs every log of the watched contracts)."""
        return _values_for(self.events, chain_id)


def _values_for(
    rows: frozenset[tuple[int | None, str | None]], chain_id: int
) -> frozenset[str] | None:
    relevant = [value for cid, value in rows if cid is None or cid == chain_id]
    if any(value is None for value in relevant):
        return None
    return frozenset(v for v in relevant if v is not None)


def load_watch_list() -> WatchList:
    with session_scope() as session:
        rows = session.execute(
            select(EndpointFilter.chain_id, EndpointFilter.address, EndpointFilter.topic0)
            .join(Endpoint, Endpoint.id == EndpointFilter.endpoint_id)
            .where(Endpoint.takes_events())  # a disabled endpoint's backlog is kept too
            .distinct()
        ).all()
        return WatchList(
            rows=frozenset((cid, addr.lower() if addr else None) for cid, addr, _ in rows),
            events=frozenset((cid, t.lower() if t else None) for cid, _, t in rows),
        )
