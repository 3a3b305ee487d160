"""Hand deliveries to the deliver queue: lease them to a message token, commit, then enqueue.

A delivery is sent only by the holder of its lease. A message carries the token it was leased to;
a duplicate message (broker redelivery, a second beat) finds the lease taken and does nothing, and a
lost message (Redis flushed) lets the lease expire so the beat job dispatches the delivery again.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kombu.exceptions import KombuError
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint

log = logging.getLogger(__name__)

DELIVER_TASK = "ethhook.deliver.deliver_endpoint"
KWARGS_REPR_CHARS = 1024


@dataclass(frozen=True)
class DispatchGroup:
    """One deliver task: deliveries of one endpoint leased to one token."""

    endpoint_id: int
    delivery_ids: list[int]
    token: str


def new_token() -> str:
    return str(uuid.uuid4())


def chunk_groups(pairs: Iterable[tuple[int, int]], per_task: int) -> list[tuple[int, list[int]]]:
    """Group (endpoint_id, delivery_id) pairs by endpoint, at most `per_task` ids per group."""
    by_endpoint: dict[int, list[int]] = defaultdict(list)
    for endpoint_id, delivery_id in pairs:
        by_endpoint[endpoint_id].append(delivery_id)
    groups = []
    for endpoint_id, ids in by_endpoint.items():
        ids.sort()
        for start in range(0, len(ids), per_task):
            groups.append((endpoint_id, ids[start : start + per_task]))
    return groups


def lease_available(
    session: Session, pairs: Iterable[tuple[int, int]], now: datetime
) -> list[DispatchGroup]:
    """Lease due, unleased pending deliveries to fresh tokens; returns what this call leased."""
    settings = get_settings()
    expires = now + timedelta(seconds=settings.dispatch_lease_s)
    leased = []
    for endpoint_id, ids in chunk_groups(pairs, settings.deliveries_per_task):
        token = new_token()
        claimed = session.scalars(
            update(Delivery)
            .where(
                Delivery.id.in_(ids),
                Delivery.status == DeliveryStatus.PENDING,
                or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
            )
            .values(lease_token=token, lease_expires_at=expires)
            .returning(Delivery.id)
        ).all()
        if claimed:
            leased.append(DispatchGroup(endpoint_id, sorted(claimed), token))
    return leased


def due_deliveries(session: Session, now: datetime, limit: int) -> list[tuple[int, int]]:
    """(endpoint_id, delivery_id) of pending deliveries that are due and held by nobody."""
    query = (
        select(Delivery.endpoint_id, Delivery.id)
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
            Endpoint.active.is_(True),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # A second beat process running by mistake skips rows this one is leasing.
        query = query.with_for_update(skip_locked=True, of=Delivery)
    return [(row[0], row[1]) for row in session.execute(query)]


def release_leases(session: Session, delivery_ids: Sequence[int], token: str) -> None:
    """Give back leases a worker holds without attempting (endpoint disabled, time budget spent)."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(and_(Delivery.id.in_(delivery_ids), Delivery.lease_token == token))
            .values(lease_token=None, lease_expires_at=None)
        )


def enqueue_groups(groups: Sequence[DispatchGroup], countdown: float | None = None) -> int:
    """Publish one deliver task per group (after the leases were committed); returns the count.

    A broker failure is logged, not raised: the leases expire and the beat job dispatches again.
    """
    if not groups:
        return 0
    from ethhook.celery_app import app

    try:
        # One Redis round trip for the whole lot (kombu's publish batch; other transports publish
        # each message at once): per-message publishing cost ~1 ms here, more than matching.
        with app.producer_or_acquire() as producer, producer.batch():
            # Declared once here rather than by every send_task (each copied the queue object: a
            # quarter of the publishing cost).
            queue = app.amqp.router.route({}, DELIVER_TASK)["queue"]
            producer.maybe_declare(queue)
            for group in groups:
                kwargs = {
                    "endpoint_id": group.endpoint_id,
                    "delivery_ids": group.delivery_ids,
                    "token": group.token,
                }
                app.send_task(
                    DELIVER_TASK,
                    kwargs=kwargs,
                    producer=producer,
                    countdown=countdown,
                    queue=queue,
                    declare=[],
                    # What Flower shows; Celery's own saferepr of it cost a fifth of publishing.
                    argsrepr="()",
                    kwargsrepr=repr(kwargs)[:KWARGS_REPR_CHARS],
                )
    except (KombuError, OSError) as exc:
        log.warning(
            "dispatch.enqueue.failed groups=%d error=%s; the beat job will dispatch them again",
            len(groups),
            exc,
        )
        return 0
    return len(groups)
