"""Stored events → delivery rows: find endpoints with ONE query, insert deliveries in bulk."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    CompoundSelect,
    Select,
    SmallInteger,
    String,
    cast,
    false,
    not_,
    null,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from ethhook.abi import decode_log_values
from ethhook.conditions import Condition, canonical_args, compiled, event_signature
from ethhook.db.models import (
    DeliveryStatus,
    Endpoint,
    EndpointFilter,
    EndpointTopicKey,
    EventKind,
)
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
    rows = session.execute(match_query(events)).all()
    return pair_with_filters(events, [tuple(row) for row in rows])


def match_query(events: Sequence[ChainEvent]) -> Select[Any] | CompoundSelect:
    """The one query that finds the filter rows of a (non-empty) batch's endpoints."""
    addresses = sorted({e.address for e in events})
    chains = sorted({e.chain_id for e in events})
    topics = sorted({e.topic0 for e in events if e.topic0 is not None})
    f, k = EndpointFilter, EndpointTopicKey
    # The endpoint's settings come from correlated subqueries (NULL when it is inactive, or has
    # no conditions), not a join: PostgreSQL then probes the primary key once per matching filter
    # row, where a join made it hash the whole endpoints table (a sequential scan growing with
    # every endpoint; see bench/RESULTS.md).
    confirmations_of = (
        select(Endpoint.confirmations)
        .where(Endpoint.id == f.endpoint_id, Endpoint.active.is_(True))
        .scalar_subquery()
    )
    conditions_of = select(Endpoint.conditions).where(Endpoint.id == f.endpoint_id)
    signatures_of = select(Endpoint.event_signatures).where(
        Endpoint.id == f.endpoint_id, Endpoint.conditions.is_not(None)
    )
    # A contract's filters for topics that are in the batch but never on that contract are left
    # out by the (address, topic0) pairs: the rows found by the address index are filtered before
    # the subquery runs, instead of returning every endpoint of a busy contract.
    pairs = sorted({(e.address, e.topic0) for e in events if e.topic0 is not None})
    pair_match = tuple_(f.address, f.topic0).in_(pairs) if pairs else false()
    narrow = (
        or_(f.address.in_(addresses), f.address.is_(None)),
        or_(f.chain_id.in_(chains), f.chain_id.is_(None)),
        or_(f.topic0.in_(topics), f.topic0.is_(None)),
        or_(f.address.is_(None), f.topic0.is_(None), pair_match),
    )
    columns = (f.endpoint_id, f.chain_id, f.address, f.topic0, confirmations_of)
    settings = (conditions_of.scalar_subquery(), signatures_of.scalar_subquery())
    # Rows of endpoints without a topic key, through the partial (address, topic0) index…
    query = select(*columns, cast(null(), SmallInteger), cast(null(), String), *settings).where(
        not_(f.keyed), *narrow
    )
    # …and rows of endpoints keyed on a topic word that some event of the batch carries, through
    # the index on the key's value: a million endpoints each keyed on their own address cost one
    # index probe per word of the batch, not a scan of the token's million filter rows.
    words = sorted({word for e in events for word in e.topics[1:4]})
    if not words:
        return query
    keyed = (
        select(*columns, k.position, k.value, *settings)
        .select_from(k)
        .join(f, f.endpoint_id == k.endpoint_id)
        .where(k.value.in_(words), f.keyed, *narrow)
    )
    return union_all(query, keyed)


class FilterRow(NamedTuple):
    """One filter row of the batched query (None = any chain, contract or event)."""

    endpoint_id: int
    chain_id: int | None
    address: str | None
    topic0: str | None
    confirmations: int | None  # None: the endpoint is disabled
    position: int | None = None  # the topic key: the log's topics[position] must be `value`
    value: str | None = None
    conditions: list[str] | None = None  # --where, as given
    signatures: list[str] | None = None  # the endpoint's event, when it has conditions


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


def _canonical(event: ChainEvent, signature: str) -> dict[str, Any] | None:
    """The event decoded with `signature`, arguments in canonical form; None when it does not
    fit the signature."""
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
        if row.confirmations is None:  # the endpoint is disabled
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
                        decoded[signature] = _canonical(event, signature)
                    args = decoded[signature]
                    if args is None or not all(c.holds(args) for c in where):
                        continue
                assert row.confirmations is not None
                found[row.endpoint_id] = Match(row.endpoint_id, row.confirmations)
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
