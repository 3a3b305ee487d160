"""Stored events → delivery rows: find endpoints with ONE query, insert deliveries in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import false, or_, select, tuple_
from sqlalchemy.orm import Session

from ethhook.db.models import DeliveryStatus, Endpoint, EndpointFilter, EventKind
from ethhook.types import ChainEvent
from ethhook.workqueue import (
    DispatchGroup,
    NewLeases,
    claim_unmatched,
    delivery_row,
    insert_deliveries,
)


@dataclass(frozen=True)
class Match:
    endpoint_id: int
    confirmations: int


def find_matches(session: Session, events: Sequence[ChainEvent]) -> dict[str, list[Match]]:
    """The endpoints each event goes to, found with one indexed query for the whole batch."""
    if not events:
        return {}
    addresses = sorted({e.address for e in events})
    chains = sorted({e.chain_id for e in events})
    topics = sorted({e.topic0 for e in events if e.topic0 is not None})
    f = EndpointFilter
    # The endpoint's settings come from a correlated subquery (NULL when it is inactive), not a
    # join: PostgreSQL then probes the primary key once per matching filter row, where a join made
    # it hash the whole endpoints table (a sequential scan growing with every endpoint; see
    # bench/RESULTS.md).
    confirmations_of = (
        select(Endpoint.confirmations)
        .where(Endpoint.id == f.endpoint_id, Endpoint.active.is_(True))
        .scalar_subquery()
    )
    # A contract's filters for topics that are in the batch but never on that contract are left
    # out by the (address, topic0) pairs: the rows found by the address index are filtered before
    # the subquery runs, instead of returning every endpoint of a busy contract.
    pairs = sorted({(e.address, e.topic0) for e in events if e.topic0 is not None})
    pair_match = tuple_(f.address, f.topic0).in_(pairs) if pairs else false()
    rows = session.execute(
        select(f.endpoint_id, f.chain_id, f.address, f.topic0, confirmations_of).where(
            or_(f.address.in_(addresses), f.address.is_(None)),
            or_(f.chain_id.in_(chains), f.chain_id.is_(None)),
            or_(f.topic0.in_(topics), f.topic0.is_(None)),
            or_(f.address.is_(None), f.topic0.is_(None), pair_match),
        )
    ).all()
    return pair_with_filters(events, [tuple(row) for row in rows])


# One filter row of the batched query: endpoint id, chain id, address, topic0 (None = any) and
# the endpoint's confirmations (None when the endpoint is disabled).
FilterRow = tuple[int, int | None, str | None, str | None, int | None]


def pair_with_filters(
    events: Sequence[ChainEvent], rows: Iterable[FilterRow]
) -> dict[str, list[Match]]:
    """Each event's endpoints, from the filter rows the batched query found (no database)."""
    by_address: dict[str | None, list[tuple[int, int | None, str | None, int]]] = defaultdict(list)
    for endpoint_id, chain_id, address, topic0, confirmations in rows:
        if confirmations is not None:  # None: the endpoint is disabled
            by_address[address].append((endpoint_id, chain_id, topic0, confirmations))
    matches: dict[str, list[Match]] = {}
    for event in events:
        found: dict[int, Match] = {}
        for endpoint_id, chain_id, topic0, confirmations in by_address.get(
            event.address, []
        ) + by_address.get(None, []):
            if (chain_id is None or chain_id == event.chain_id) and (
                topic0 is None or topic0 == event.topic0
            ):
                found[endpoint_id] = Match(endpoint_id, confirmations)
        if found:
            matches[event.event_id] = sorted(found.values(), key=lambda m: m.endpoint_id)
    return matches


def create_deliveries(
    session: Session,
    events: Sequence[ChainEvent],
    matches: dict[str, list[Match]],
    now: datetime,
) -> list[DispatchGroup]:
    """Insert one delivery per (endpoint, event); returns the instant ones to enqueue now.

    Endpoints that want confirmations get a `waiting` delivery that the beat job releases once
    the block is deep enough. Instant deliveries are leased to their message token as they are
    inserted, so the message that follows the commit is the only one that sends them.
    """
    leases = NewLeases(now)
    rows = []
    for event in events:
        for match in matches.get(event.event_id, []):
            if match.confirmations == 0:
                row = delivery_row(
                    match.endpoint_id,
                    event.event_id,
                    EventKind.INSTANT,
                    DeliveryStatus.PENDING,
                    now,
                    next_attempt_at=now,
                    token=leases.token(match.endpoint_id),
                    lease_expires_at=leases.expires_at,
                )
            else:
                row = delivery_row(
                    match.endpoint_id,
                    event.event_id,
                    EventKind.CONFIRMED,
                    DeliveryStatus.WAITING,
                    now,
                    release_block=event.block_number + match.confirmations,
                )
            rows.append(row)
    if not rows:
        return []
    return insert_deliveries(session, rows, leases)


def match_stored(
    session: Session, event_ids: Sequence[str], token: str, now: datetime
) -> tuple[int, list[DispatchGroup]]:
    """Everything the matcher does for one message, in the caller's transaction: claim the stored
    events it was leased, mark them matched and create their deliveries. Returns the number of
    events claimed and the deliver tasks to enqueue after the commit."""
    events = claim_unmatched(session, event_ids, token, now)
    live = [e for e in events if not e.removed]  # reorged out before matching: nothing to send
    return len(events), create_deliveries(session, live, find_matches(session, live), now)
