"""Beat jobs as plain functions: each takes a session and `now`, and is safe to run twice at once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, null, select, tuple_, update
from sqlalchemy.orm import Session, aliased

from ethhook.db.models import (
    ROLLUP_PERIODS_S,
    ChainBlock,
    ChainCursor,
    ChainTags,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    Event,
    Finality,
    OpsEventType,
    delivery_rollups,
)
from ethhook.workqueue import (
    DisableTrigger,
    DispatchGroup,
    MatchGroup,
    OpsDispatch,
    disable_endpoints,
    due_deliveries,
    due_events,
    due_heads,
    emit_for_endpoints,
    in_chain_order,
    lease_available,
    lease_due_ops,
    lease_events,
    number_deliveries,
)

log = logging.getLogger(__name__)


def _height() -> Any:
    """The block a waiting delivery's release compares with, by its release_tag: the listener's
    cursor, or the chain's `safe` or `finalized` block counted only up to that cursor (NULL when
    the listener has not stored the tag: nothing is released)."""
    head = ChainCursor.head_number
    tag = case(
        (Delivery.release_tag == Finality.SAFE, ChainTags.safe_number),
        (Delivery.release_tag == Finality.FINALIZED, ChainTags.finalized_number),
    )
    clipped = case((tag.is_(None), null()), (tag < head, tag), else_=head)
    return case((Delivery.release_tag.is_(None), head), else_=clipped)


def release_confirmed(session: Session, now: datetime) -> int:
    """Make `waiting` deliveries due once their block is deep enough (by the cursor, or by the
    chain tag they wait for) and still canonical."""
    event = Event.__table__
    replaced = exists().where(
        ChainBlock.chain_id == event.c.chain_id,
        ChainBlock.block_number == event.c.block_number,
        ChainBlock.block_hash != event.c.block_hash,
    )
    # The delivery's event, by its primary key (id, event_at): one partition's index.
    its_event = and_(event.c.id == Delivery.event_id, event.c.event_at == Delivery.event_at)
    # An ordered endpoint's waits, too, while an earlier event of its chain waits for the
    # matcher: its number must follow the chain's order (workqueue.chainorder).
    earlier = aliased(Event)
    unmatched_before = exists().where(
        earlier.chain_id == event.c.chain_id,
        earlier.matched_at.is_(None),
        tuple_(earlier.block_number, earlier.log_index)
        < tuple_(event.c.block_number, event.c.log_index),
    )
    ordered = exists().where(Endpoint.id == Delivery.endpoint_id, Endpoint.ordered.is_not(None))
    ready_events = select(event.c.id).where(
        its_event,
        event.c.removed.is_(False),
        ~replaced,
        ~and_(ordered, unmatched_before),
    )
    chain = event.join(ChainCursor, ChainCursor.chain_id == event.c.chain_id).outerjoin(
        ChainTags, ChainTags.chain_id == event.c.chain_id
    )
    height = select(_height()).select_from(chain).where(its_event).scalar_subquery()
    # A disabled endpoint's released deliveries join its held backlog (workqueue.backlog).
    endpoint_active = select(Endpoint.active).where(Endpoint.id == Delivery.endpoint_id)
    due_unless_held = case((endpoint_active.scalar_subquery().is_(False), null()), else_=now)
    released_rows = session.execute(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.WAITING,
            Delivery.release_block <= height,
            exists(ready_events),
        )
        .values(status=DeliveryStatus.PENDING, next_attempt_at=due_unless_held, updated_at=now)
        .returning(Delivery.id, Delivery.event_at, Delivery.endpoint_id, Delivery.sequence)
        .execution_options(synchronize_session=False)
    ).all()
    # Due to send now: each takes its endpoint's next number (in the chain's order), unless a
    # replay already gave it one.
    unnumbered = [(d, t, e) for d, t, e, seq in released_rows if seq is None]
    number_deliveries(session, in_chain_order(session, unnumbered))
    released = len(released_rows)
    if released:
        log.info("maintenance.confirmed.released deliveries=%d", released)
    return released


def dispatch_due(
    session: Session, now: datetime, limit: int, queue_busy: bool = False
) -> list[DispatchGroup]:
    """Lease due retries, released confirmations and expired leases; the caller enqueues them.

    With `queue_busy`, expired message leases are left a while to the messages still queued
    (`workqueue.due_deliveries`). Of an ordered endpoint, only its head is dispatched
    (`workqueue.due_heads`): the deliveries after it wait for it."""
    due = due_deliveries(session, now, limit, queue_busy) + due_heads(session, now, limit)
    groups = lease_available(session, due, now)
    if groups:  # silent when there was nothing to do: beat runs this every second
        log.info(
            "maintenance.due.dispatched deliveries=%d tasks=%d",
            sum(len(g.delivery_ids) for g in groups),
            len(groups),
        )
    return groups


def dispatch_unmatched(session: Session, now: datetime, limit: int) -> list[MatchGroup]:
    """Lease stored events whose matcher message was lost or failed; the caller enqueues them."""
    groups = lease_events(session, due_events(session, now, limit), now)
    if groups:
        log.info(
            "maintenance.unmatched.dispatched events=%d tasks=%d",
            sum(len(g.event_ids) for g in groups),
            len(groups),
        )
    return groups


def cleanup(
    session: Session, now: datetime, retention_days: float, batch_size: int
) -> dict[str, int]:
    """Delete finished deliveries, their attempts and their events, and the delivery rollups,
    past retention, in batches.

    A delivery that may still be sent (waiting or pending) is never deleted, nor is its event,
    nor an event the matcher has not seen yet.
    """
    cutoff = now - timedelta(days=retention_days)
    counts = {"attempts": 0, "deliveries": 0, "events": 0, "rollups": 0}

    def delete_batches(key: str, table: type, id_query: object) -> None:
        while True:
            ids = session.scalars(id_query).all()  # type: ignore[call-overload]
            if not ids:
                return
            session.execute(delete(table).where(table.id.in_(ids)))  # type: ignore[attr-defined]
            session.commit()
            counts[key] += len(ids)
            if len(ids) < batch_size:
                return

    old_deliveries = (
        select(Delivery.id)
        .where(Delivery.status.in_(DeliveryStatus.TERMINAL), Delivery.updated_at < cutoff)
        .limit(batch_size)
    )
    attempts_of_old = (
        select(DeliveryAttempt.id)
        .where(DeliveryAttempt.delivery_id.in_(old_deliveries.scalar_subquery()))
        .limit(batch_size)
    )
    delete_batches("attempts", DeliveryAttempt, attempts_of_old)
    old_attempts = (
        select(DeliveryAttempt.id).where(DeliveryAttempt.started_at < cutoff).limit(batch_size)
    )
    delete_batches("attempts", DeliveryAttempt, old_attempts)
    delete_batches("deliveries", Delivery, old_deliveries)
    old_events = (
        select(Event.id)
        .where(
            Event.created_at < cutoff,
            Event.matched_at.is_not(None),
            ~exists().where(Delivery.event_id == Event.id),
        )
        .limit(batch_size)
    )
    delete_batches("events", Event, old_events)
    counts["rollups"] = delete_old_rollups(session, cutoff)
    if any(counts.values()):
        log.info("maintenance.cleanup.done %s", " ".join(f"{k}={v}" for k, v in counts.items()))
    return counts


def delete_old_rollups(session: Session, cutoff: datetime) -> int:
    """Delete the rollup rows whose whole period ended before `cutoff`, committing every 60
    periods (at most 60 rows per endpoint per statement)."""
    c = delivery_rollups.c
    deleted = 0
    for period_s in ROLLUP_PERIODS_S:
        period = timedelta(seconds=period_s)
        while True:
            oldest = session.scalar(
                select(func.min(c.period_start)).where(
                    c.period_s == period_s, c.period_start <= cutoff - period
                )
            )
            if oldest is None:
                break
            upto = min(cutoff - period, oldest + 59 * period)
            result = session.execute(
                delete(delivery_rollups).where(c.period_s == period_s, c.period_start <= upto)
            )
            session.commit()
            deleted += getattr(result, "rowcount", 0) or 0
    return deleted


def auto_disable(session: Session, now: datetime, after_s: float) -> list[int]:
    """Disable endpoints whose every attempt has failed for `after_s` seconds (their backlog is
    kept, their applications told: workqueue.disable_endpoints)."""
    cutoff = now - timedelta(seconds=after_s)
    dead = session.scalars(
        select(Endpoint.id).where(and_(Endpoint.active.is_(True), Endpoint.failing_since < cutoff))
    ).all()
    reason = f"every delivery attempt failed for {after_s / 86400:g} days"
    ids = disable_endpoints(session, dead, reason, now, DisableTrigger.AUTOMATIC)
    for endpoint_id in ids:
        log.warning("maintenance.endpoint.auto_disabled endpoint=%s", endpoint_id)
    return list(ids)


def dispatch_ops(session: Session, now: datetime, limit: int, lease_s: float) -> list[OpsDispatch]:
    """Lease the ops messages that are due (new ones, retries, expired leases); the caller
    enqueues them."""
    dispatches = lease_due_ops(session, now, limit, lease_s)
    if dispatches:
        log.info(
            "maintenance.ops.dispatched messages=%d",
            sum(len(d.message_ids) for d in dispatches),
        )
    return dispatches


def watch_failing(session: Session, now: datetime, failing_after_s: float) -> dict[str, int]:
    """`endpoint.failing` for endpoints whose every attempt has failed for `failing_after_s`
    (once per run of failures), `endpoint.recovered` for those told so that succeeded since
    (their failing_since cleared by the success)."""
    cutoff = now - timedelta(seconds=failing_after_s)
    failing = list(
        session.scalars(
            update(Endpoint)
            .where(
                Endpoint.active.is_(True),
                Endpoint.failing_since < cutoff,
                Endpoint.failing_notified_at.is_(None),
            )
            .values(failing_notified_at=now)
            .returning(Endpoint.id)
            .execution_options(synchronize_session=False)
        )
    )
    emit_for_endpoints(
        session,
        OpsEventType.ENDPOINT_FAILING,
        failing,
        now,
        failing_for_s=failing_after_s,
    )
    recovered = list(
        session.scalars(
            update(Endpoint)
            .where(Endpoint.failing_since.is_(None), Endpoint.failing_notified_at.is_not(None))
            .values(failing_notified_at=None)
            .returning(Endpoint.id)
            .execution_options(synchronize_session=False)
        )
    )
    emit_for_endpoints(session, OpsEventType.ENDPOINT_RECOVERED, recovered, now)
    for endpoint_id in failing:
        log.warning("maintenance.endpoint.failing endpoint=%s", endpoint_id)
    for endpoint_id in recovered:
        log.info("maintenance.endpoint.recovered endpoint=%s", endpoint_id)
    return {"failing": len(failing), "recovered": len(recovered)}
