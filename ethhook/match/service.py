"""Stored events → delivery rows: find endpoints with ONE query, insert deliveries in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from ethhook.abi import decode_log_values
from ethhook.conditions import Condition, canonical_args, compiled, event_signature
from ethhook.db.dialect import is_postgres
from ethhook.db.models import (
    CHAIN_ORDER,
    DeliveryStatus,
    EventKind,
    Finality,
)
from ethhook.db.partition_plan import event_time
from ethhook.match.finality import delivery_kinds, parse_mode, release_of
from ethhook.match.query import Batch, match_query
from ethhook.types import ChainEvent
from ethhook.workqueue import (
    DispatchGroup,
    NewLeases,
    TimeRange,
    claim_unmatched,
    delivery_row,
    held_row,
    insert_deliveries,
    release_held,
)


@dataclass(frozen=True)
class Match:
    endpoint_id: int
    confirmations: int
    finality: str = Finality.LATEST
    lifecycle: bool = False
    # False: the endpoint is disabled and keeps its backlog; the delivery is made held
    # (workqueue.backlog) and sent when the endpoint is enabled.
    active: bool = True
    # `--ordered`: its instant deliveries are held until numbered in the chain's order
    # (workqueue.chainorder).
    ordered: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        """The deliveries an event makes for this endpoint (match.finality)."""
        return delivery_kinds(self.confirmations, self.finality, self.lifecycle)


def find_matches(
    session: Session, events: Sequence[ChainEvent], live: bool = True
) -> dict[str, list[Match]]:
    """The endpoints each event goes to, found with one indexed query for the whole batch.
    `live` (the matcher's) leaves out endpoints whose --from-block backfill is running: their
    history, and the events up to the listener's cursor when it ends, are the backfill's."""
    if not events:
        return {}
    if not is_postgres(session):
        rows = session.execute(match_query(events, arrays=False, live=live)).all()
        return pair_with_filters(events, [tuple(row) for row in rows])
    # On PostgreSQL the statement depends only on which branches the batch needs, its values
    # being arrays: it is compiled once per shape and sent as it is, since compiling it for every
    # batch would be the largest part of the find phase's Python time (bench/RESULTS.md §0).
    batch = Batch(events, arrays=True)
    shape = (bool(batch.pairs), bool(batch.words), live)
    if shape not in _COMPILED:
        query = match_query(events, live=live)
        _COMPILED[shape] = str(query.compile(dialect=session.get_bind().dialect))
    result = session.connection().exec_driver_sql(_COMPILED[shape], batch.values())
    return pair_with_filters(events, [tuple(row) for row in result])


# The PostgreSQL statement of find_matches by (the batch has topic0s, the batch has topic words,
# live).
_COMPILED: dict[tuple[bool, bool, bool], str] = {}


class FilterRow(NamedTuple):
    """One filter row of the batched query (None = any chain, contract or event)."""

    endpoint_id: int
    chain_id: int | None
    address: str | None
    topic0: str | None
    confirmations: int | None  # None: the endpoint takes nothing (disabled with --discard)
    position: int | None = None  # the topic key: the log's topics[position] must be `value`
    value: str | None = None
    conditions: list[str] | None = None  # --where, as given
    signatures: list[str] | None = None  # the endpoint's event, when it has conditions
    mode: str | None = None  # its finality, lifecycle, ordering (match.finality.parse_mode)
    active: bool = True  # False: disabled, keeping its backlog


# Where pair_with_filters files a row: (address, topic0, topic position, topic word), None = any.
_Slot = tuple[str | None, str | None, int | None, str | None]
_Candidate = tuple[FilterRow, tuple[Condition, ...]]


def _slots(event: ChainEvent) -> list[_Slot]:
    """Every slot a row that fits this event's contract, topic0 and topics may be filed in."""
    slots: list[_Slot] = []
    for address in (event.address, None):
        for topic0 in {event.topic0, None}:
            slots.append((address, topic0, None, None))
            slots += [(address, topic0, i, event.topics[i]) for i in range(1, len(event.topics))]
    return slots


def event_args(event: ChainEvent, signature: str) -> dict[str, Any] | None:
    """The event decoded with `signature`, arguments in canonical form; None when it does not
    fit the signature (what --where conditions are checked against, here and by match.explain)."""
    values = decode_log_values(signature, event.topics, event.data)
    return None if values is None else canonical_args(event_signature(signature), values)


def pair_with_filters(
    events: Sequence[ChainEvent], rows: Iterable[tuple[Any, ...]]
) -> dict[str, list[Match]]:
    """Each event's endpoints, from the filter rows the batched query found (no database):
    the rows' chain, contract, event and topic key, then the endpoints' --where conditions.

    Rows are filed by (contract, topic0, topic key), so an event looks at the rows that fit it
    only: a batch of 100 Transfers and the rows of 100 endpoints keyed on their own recipient
    cost 100 lookups, not 100 × 100 comparisons."""
    filed: dict[_Slot, list[_Candidate]] = defaultdict(list)
    for raw in rows:
        row = FilterRow(*raw)
        if row.confirmations is None:  # the endpoint takes nothing now
            continue
        where = (
            compiled(row.signatures[0], tuple(row.conditions))
            if row.conditions and row.signatures
            else ()
        )
        filed[(row.address, row.topic0, row.position, row.value)].append((row, where))
    matches: dict[str, list[Match]] = {}
    for event in events:
        found: dict[int, Match] = {}
        decoded: dict[str, dict[str, Any] | None] = {}  # once per signature
        for slot in _slots(event):
            for row, where in filed.get(slot, ()):
                if row.endpoint_id in found or row.chain_id not in (None, event.chain_id):
                    continue
                if row.conditions:
                    if not (where and row.signatures):
                        continue
                    signature = row.signatures[0]
                    if signature not in decoded:
                        decoded[signature] = event_args(event, signature)
                    args = decoded[signature]
                    if args is None or not all(c.holds(args) for c in where):
                        continue
                assert row.confirmations is not None
                finality, lifecycle, ordered = parse_mode(row.mode)
                found[row.endpoint_id] = Match(
                    row.endpoint_id,
                    row.confirmations,
                    finality,
                    lifecycle,
                    active=row.active is not False,
                    ordered=ordered,
                )
        if found:
            matches[event.event_id] = sorted(found.values(), key=lambda m: m.endpoint_id)
    return matches


def create_deliveries(
    session: Session,
    events: Sequence[ChainEvent],
    matches: dict[str, list[Match]],
    now: datetime,
) -> list[DispatchGroup]:
    """Insert each (endpoint, event)'s deliveries; returns the instant ones to enqueue now.

    An endpoint that waits for confirmations or a chain tag gets a `waiting` confirmed delivery
    that the beat job releases once the block is final enough; a lifecycle endpoint gets both an
    instant and a waiting confirmed one (match.finality). Instant deliveries are leased to their
    message token as they are inserted, so the message that follows the commit is the only one
    that sends them. A disabled
    endpoint that keeps its backlog gets its instant deliveries held (pending, not due, not
    leased: workqueue.backlog), numbered in order, sent when it is enabled. An ordered
    endpoint's are held for the chain's order, and released here (or by a later batch's
    matcher) once no earlier event of the chain waits for the matcher (workqueue.chainorder).
    """
    leases = NewLeases(now)
    rows = []
    for event in events:
        event_at = event_time(event.block_timestamp)
        for match in matches.get(event.event_id, []):
            for kind in match.kinds:
                rows.append(_delivery(match, event, kind, event_at, now, leases))
    groups = insert_deliveries(session, rows, leases) if rows else []
    own = any(row["release_tag"] == CHAIN_ORDER for row in rows)
    return groups + release_held(session, now, {e.chain_id for e in events}, own)


def _delivery(
    match: Match, event: ChainEvent, kind: str, event_at: datetime, now: datetime, leases: NewLeases
) -> dict[str, Any]:
    """One delivery row of create_deliveries."""
    if kind != EventKind.INSTANT:  # waits for its block to be final enough
        release = release_of(event.block_number, match.confirmations, match.finality)
        return delivery_row(
            match.endpoint_id,
            event.event_id,
            kind,
            DeliveryStatus.WAITING,
            now,
            event_at=event_at,
            release_block=release.block,
            release_tag=release.tag,
        )
    if match.ordered:  # waits for the chain's order (workqueue.chainorder)
        return held_row(match.endpoint_id, event.event_id, kind, now, event_at)
    # Due now and leased to the message that follows, unless held (disabled).
    due: dict[str, Any] = {}
    if match.active:
        due = {
            "next_attempt_at": now,
            "token": leases.token(match.endpoint_id),
            "lease_expires_at": leases.expires_at,
        }
    return delivery_row(
        match.endpoint_id,
        event.event_id,
        kind,
        DeliveryStatus.PENDING,
        now,
        event_at=event_at,
        **due,
    )


def match_stored(
    session: Session,
    event_ids: Sequence[str],
    token: str,
    now: datetime,
    bounds: TimeRange | None = None,
) -> tuple[int, list[DispatchGroup]]:
    """Everything the matcher does for one message, in the caller's transaction: claim the stored
    events it was leased (within the message's time range, when it has one), mark them matched
    and create their deliveries. Returns the number of events claimed and the deliver tasks to
    enqueue after the commit."""
    events = claim_unmatched(session, event_ids, token, now, bounds)
    live = [e for e in events if not e.removed]  # reorged out before matching: nothing to send
    return len(events), create_deliveries(session, live, find_matches(session, live), now)
