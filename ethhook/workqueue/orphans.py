"""Reorged-out blocks: mark their events removed and tell the endpoints that already heard of them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ethhook.db.models import (
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventKind,
    utcnow,
)
from ethhook.workqueue.chainorder import held_row, release_held
from ethhook.workqueue.lease import DispatchGroup, in_time_range, time_range
from ethhook.workqueue.rows import NewLeases, delivery_row, insert_deliveries

log = logging.getLogger(__name__)


def orphan_blocks(
    session: Session, chain_id: int, block_hashes: Sequence[str], now: datetime | None = None
) -> list[DispatchGroup]:
    """Mark the events of orphaned blocks removed; returns the `event.removed` groups to enqueue.

    Confirmed deliveries still waiting are cancelled (the endpoint never hears of the event).
    Every endpoint that got (or is getting) the event instantly gets an `event.removed` webhook
    (an ordered endpoint's numbered after the instant one: workqueue.chainorder).
    """
    now = now or utcnow()
    hashes = [h.lower() for h in block_hashes]
    if not hashes:
        return []
    orphaned = session.execute(
        update(Event)
        .where(Event.chain_id == chain_id, Event.block_hash.in_(hashes), Event.removed.is_(False))
        .values(removed=True)
        .returning(Event.id, Event.event_at)
    ).all()
    if not orphaned:
        return []
    event_ids = [event_id for event_id, _ in orphaned]
    bounds = time_range(event_at for _, event_at in orphaned)
    session.execute(
        update(Delivery)
        .where(
            Delivery.event_id.in_(event_ids),
            in_time_range(Delivery, bounds),
            Delivery.kind == EventKind.CONFIRMED,
            Delivery.status == DeliveryStatus.WAITING,
        )
        .values(status=DeliveryStatus.CANCELLED, updated_at=now)
    )
    # One `event.removed` per (endpoint, event), however many of its kinds it heard (a
    # lifecycle endpoint may have both).
    told = session.execute(
        select(Delivery.endpoint_id, Delivery.event_id, Delivery.event_at)
        .where(
            Delivery.event_id.in_(event_ids),
            in_time_range(Delivery, bounds),
            Delivery.kind.in_([EventKind.INSTANT, EventKind.CONFIRMED]),
            Delivery.status != DeliveryStatus.CANCELLED,
        )
        .distinct()
        .order_by(Delivery.endpoint_id, Delivery.event_id)
    ).all()
    log.info(
        "match.reorg.orphaned chain=%s blocks=%d events=%d removed_webhooks=%d",
        chain_id,
        len(hashes),
        len(event_ids),
        len(told),
    )
    if not told:
        return []
    # An ordered endpoint's is held, to be numbered after the event's instant one, which may be
    # held too (workqueue.chainorder).
    ordered = set(
        session.scalars(
            select(Endpoint.id).where(
                Endpoint.id.in_({endpoint_id for endpoint_id, _, _ in told}),
                Endpoint.ordered.is_not(None),
            )
        )
    )
    leases = NewLeases(now)
    rows = [
        held_row(endpoint_id, event_id, EventKind.REMOVED, now, event_at)
        if endpoint_id in ordered
        else delivery_row(
            endpoint_id,
            event_id,
            EventKind.REMOVED,
            DeliveryStatus.PENDING,
            now,
            event_at=event_at,
            next_attempt_at=now,
            token=leases.token(endpoint_id),
            lease_expires_at=leases.expires_at,
        )
        for endpoint_id, event_id, event_at in told
    ]
    groups = insert_deliveries(session, rows, leases)
    return groups + release_held(session, now, [chain_id], own=bool(ordered))
