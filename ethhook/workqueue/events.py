"""Events as the matcher's outbox: stored unmatched and leased to matcher messages, found again
by the due scan when a message is lost, and claimed by the matcher in the statement that marks
them matched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, String, Table, exists, or_, select, true, update
from sqlalchemy.orm import Session, aliased

from ethhook.config import get_settings
from ethhook.db.bulk import insert_ignoring_conflicts
from ethhook.db.dialect import ids_in, is_postgres, skip_locked
from ethhook.db.models import Delivery, DeliveryStatus, Event, EventKind, event_record_columns
from ethhook.db.partition_plan import event_time
from ethhook.db.partitions import writing
from ethhook.types import ChainEvent
from ethhook.workqueue.lease import TimeRange, in_time_range, lease_free, new_token, time_range

# An event is unique on these (its id is a hash of the first three): a re-read range stores
# nothing twice.
EVENT_KEY = ("chain_id", "block_hash", "log_index", "event_at")


@dataclass(frozen=True)
class MatchGroup:
    """One matcher task: stored events of one chain, in chain order, leased to one token."""

    chain_id: int
    event_ids: list[str]
    token: str
    event_at_range: TimeRange | None = None


def _event_row(event: ChainEvent, now: datetime) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "event_at": event_time(event.block_timestamp),
        "chain_id": event.chain_id,
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "block_timestamp": event.block_timestamp,
        "transaction_hash": event.transaction_hash,
        "transaction_index": event.transaction_index,
        "log_index": event.log_index,
        "address": event.address,
        "topics": event.topics,
        "data": event.data,
        "removed": False,
        "replay_only": False,
        "created_at": now,
        "matched_at": None,
        "lease_token": None,
        "lease_expires_at": None,
    }


def store_events(session: Session, events: Sequence[ChainEvent], now: datetime) -> list[MatchGroup]:
    """Store a range's events as unmatched, leased in batches to the matcher tasks the caller
    publishes after the commit; returns those batches.

    An event stored already is left as it is (a re-read range stores nothing twice), unless the
    matcher has not seen it for every endpoint: a replay stored it before the listener reached
    its block, or a reorg orphaned it and has since been undone (A→B→A). It is then matched again
    (`_reclaim`).
    """
    if not events:
        return []
    settings = get_settings()
    expires = now + timedelta(seconds=settings.dispatch_lease_s)
    size = settings.match_batch_size
    tokens = {e.event_id: new_token() for e in events[::size]}
    token_of = {e.event_id: tokens[events[i - i % size].event_id] for i, e in enumerate(events)}
    rows = []
    for event in events:
        row = _event_row(event, now)
        row["lease_token"] = token_of[event.event_id]
        row["lease_expires_at"] = expires
        rows.append(row)
    inserted = {r[0] for r in _insert(session, rows, ["id"])}
    existing = [e for e in events if e.event_id not in inserted]
    reclaimed = set(_reclaim(session, existing, token_of, expires, now))
    leased = [e for e in events if e.event_id in inserted or e.event_id in reclaimed]
    return _groups(
        (e.chain_id, e.event_id, token_of[e.event_id], event_time(e.block_timestamp))
        for e in leased
    )


def _insert(
    session: Session, rows: list[dict[str, Any]], returning: list[str]
) -> list[tuple[Any, ...]]:
    return writing(
        session,
        (r["event_at"] for r in rows),
        lambda: insert_ignoring_conflicts(session, Event, rows, EVENT_KEY, returning),
    )


def store_replayed(session: Session, events: Sequence[ChainEvent], now: datetime) -> None:
    """Store events a replay read, for the deliveries the replay creates itself; stored ones stay.

    A new one is stored matched, so the matcher leaves it alone, and `replay_only`: the
    listener, when it reads the block, hands it to the matcher for every other endpoint. A
    replay never decides what another endpoint receives.
    """
    rows = [{**_event_row(e, now), "matched_at": now, "replay_only": True} for e in events]
    if rows:
        _insert(session, rows, [])


def _reclaim(
    session: Session,
    events: Sequence[ChainEvent],
    token_of: dict[str, str],
    expires: datetime,
    now: datetime,
) -> list[str]:
    """Stored events the listener read again that the matcher must see (again): lease them to
    the listener's batches, unmatched, canonical and no longer replay-only."""
    if not events:
        return []
    event_ids = [e.event_id for e in events]
    bounds = time_range(event_time(e.block_timestamp) for e in events)
    found = session.execute(
        select(Event.id, Event.removed).where(
            Event.id.in_(event_ids),
            in_time_range(Event, bounds),
            or_(Event.removed.is_(True), Event.replay_only.is_(True)),
        )
    ).all()
    if not found:
        return []
    by_token: dict[str, list[str]] = {}
    for event_id, _ in found:
        by_token.setdefault(token_of[event_id], []).append(event_id)
    for token, ids in by_token.items():
        session.execute(
            update(Event)
            .where(Event.id.in_(ids), in_time_range(Event, bounds))
            .values(
                removed=False,
                replay_only=False,
                matched_at=None,
                lease_token=token,
                lease_expires_at=expires,
            )
        )
    restored = [event_id for event_id, removed in found if removed]
    _restore_deliveries(session, restored, bounds, now)
    return [event_id for event_id, _ in found]


def _restore_deliveries(
    session: Session, restored: Sequence[str], bounds: TimeRange | None, now: datetime
) -> None:
    """Orphaned events canonical again: their unsent deliveries go out after all."""
    if not restored:
        return
    # An `event.removed` not yet attempted is no longer true and is cancelled. Confirmed
    # deliveries cancelled by the reorg wait for their confirmations again (the beat job checks
    # the block is canonical before releasing them), unless the endpoint may have heard the
    # removal (a lifecycle endpoint): no confirmed follows a removed.
    session.execute(
        update(Delivery)
        .where(
            Delivery.event_id.in_(restored),
            in_time_range(Delivery, bounds),
            Delivery.kind == EventKind.REMOVED,
            # (pending, or an ordered endpoint's held: workqueue.chainorder)
            Delivery.status.in_(DeliveryStatus.UNSENT),
            Delivery.attempts == 0,
        )
        .values(status=DeliveryStatus.CANCELLED, updated_at=now)
    )
    removal = aliased(Delivery)
    heard_removal = exists().where(
        removal.event_id == Delivery.event_id,
        removal.endpoint_id == Delivery.endpoint_id,
        removal.event_at == Delivery.event_at,
        removal.kind == EventKind.REMOVED,
        removal.status != DeliveryStatus.CANCELLED,
    )
    session.execute(
        update(Delivery)
        .where(
            Delivery.event_id.in_(restored),
            in_time_range(Delivery, bounds),
            Delivery.kind == EventKind.CONFIRMED,
            Delivery.status == DeliveryStatus.CANCELLED,
            ~heard_removal,
        )
        .values(status=DeliveryStatus.WAITING, updated_at=now)
    )


def _groups(items: Iterable[tuple[int, str, str, datetime]]) -> list[MatchGroup]:
    """(chain_id, event_id, token, event_at) in chain order → one group per token."""
    groups: dict[str, tuple[int, list[str], list[datetime]]] = {}
    for chain_id, event_id, token, event_at in items:
        _, ids, times = groups.setdefault(token, (chain_id, [], []))
        ids.append(event_id)
        times.append(event_at)
    return [
        MatchGroup(chain_id, ids, token, time_range(times))
        for token, (chain_id, ids, times) in groups.items()
    ]


def claim_unmatched(
    session: Session,
    event_ids: Sequence[str],
    token: str,
    now: datetime,
    bounds: TimeRange | None = None,
) -> list[ChainEvent]:
    """Mark matched, and return, the events of `event_ids` that are still unmatched.

    Any message naming an event may claim it, whoever it was leased to (`token` is the caller's,
    kept for the logs): a lease only tells beat not to dispatch the event again yet. One statement
    claims and loads them, so the claim is exclusive without one: a second message waits on the
    row locks, then finds them matched and does nothing. A message that waited in a long match
    queue past its lease therefore still does its work (ops/RELIABILITY.md). The caller
    creates their deliveries in the same transaction: if it fails, the rollback leaves them
    unmatched for a retry.
    """
    if not event_ids:
        return []
    named = ids_in(Event.id, event_ids, session, String)
    unmatched: ColumnElement[bool] = Event.matched_at.is_(None)
    if is_postgres(session):
        # The same condition, in a form the planner cannot match to the partial index of
        # unmatched events, so it finds the events by primary key: with statistics older than a
        # backlog it would read the whole index instead (bench/RESULTS.md §0).
        unmatched = unmatched.is_(true())
    # The table, not the mapped class: an ORM-enabled UPDATE … RETURNING goes through the ORM's
    # bulk machinery, which cost the matcher more CPU than the statement's rows.
    rows = session.execute(
        update(cast(Table, Event.__table__))
        .where(named, in_time_range(Event, bounds), unmatched)
        .values(matched_at=now, lease_token=None, lease_expires_at=None)
        .returning(*event_record_columns(), Event.removed)
    ).all()
    events = [ChainEvent(**row._asdict()) for row in rows]
    return sorted(events, key=lambda e: (e.chain_id, e.block_number, e.log_index))


def due_events(session: Session, now: datetime, limit: int) -> list[tuple[int, str]]:
    """(chain_id, event_id) of unmatched events that no matcher message holds, in chain order."""
    query = (
        select(Event.chain_id, Event.id)
        .where(Event.matched_at.is_(None), lease_free(Event, now))
        .order_by(Event.chain_id, Event.block_number, Event.log_index)
        .limit(limit)
    )
    # A second beat process running by mistake skips rows this one is leasing.
    query = skip_locked(query, session)
    return [(row[0], row[1]) for row in session.execute(query)]


def lease_events(
    session: Session, pairs: Sequence[tuple[int, str]], now: datetime
) -> list[MatchGroup]:
    """Lease due unmatched events to fresh tokens, a matcher batch each; returns what it leased."""
    settings = get_settings()
    expires = now + timedelta(seconds=settings.dispatch_lease_s)
    size = settings.match_batch_size
    by_chain: dict[int, list[str]] = {}
    for chain_id, event_id in pairs:
        by_chain.setdefault(chain_id, []).append(event_id)
    leased = []
    for chain_id, ids in by_chain.items():
        for start in range(0, len(ids), size):
            chunk, token = ids[start : start + size], new_token()
            claimed = dict(
                session.execute(
                    update(Event)
                    .where(Event.id.in_(chunk), Event.matched_at.is_(None), lease_free(Event, now))
                    .values(lease_token=token, lease_expires_at=expires)
                    .returning(Event.id, Event.event_at)
                ).all()
            )
            if claimed:
                ordered = [i for i in chunk if i in claimed]
                bounds = time_range(claimed.values())
                leased.append(MatchGroup(chain_id, ordered, token, bounds))
    return leased
