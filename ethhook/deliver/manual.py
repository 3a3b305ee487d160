"""Manual repair: send chosen deliveries again now (`ethhook delivery retry`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ethhook.db.models import Delivery, DeliveryStatus, utcnow
from ethhook.exceptions import InputError, NotFoundError
from ethhook.workqueue import DispatchGroup, due_now, lease_available

RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED)


def retry_deliveries(session: Session, delivery_ids: Sequence[int]) -> list[DispatchGroup]:
    """Make the deliveries due now and lease them; the caller commits, then enqueues the groups.

    A retried delivery gets one more attempt (plus any the schedule still had); if that fails it is
    `failed` again. Every id is checked before anything changes.
    """
    rows = session.execute(
        select(Delivery.id, Delivery.endpoint_id, Delivery.status).where(
            Delivery.id.in_(delivery_ids)
        )
    ).all()
    found = {row.id: row for row in rows}
    missing = [i for i in delivery_ids if i not in found]
    if missing:
        raise NotFoundError(f"no delivery with id {missing[0]} (see `ethhook delivery list`)")
    for row in rows:
        if row.status not in RETRYABLE:
            raise InputError(
                f"delivery {row.id} is {row.status}: only pending, failed or succeeded deliveries "
                "can be retried"
            )
    now = utcnow()
    for start in range(0, len(delivery_ids), 1000):
        chunk = list(delivery_ids[start : start + 1000])
        session.execute(update(Delivery).where(Delivery.id.in_(chunk)).values(**due_now(now)))
    return lease_available(session, [(found[i].endpoint_id, i) for i in delivery_ids], now)
