"""Deliveries: list and show them with their attempts, and send chosen ones again now."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from ethhook.db.models import Delivery, DeliveryStatus, Endpoint, Event, EventKind, utcnow
from ethhook.exceptions import InputError, NotFoundError
from ethhook.service import public
from ethhook.service.hashes import parse_tx_hash
from ethhook.service.pages import DEFAULT_LIMIT, Page, check_limit, decode_cursor, page_of
from ethhook.service.scope import Scope
from ethhook.types import webhook_id_for
from ethhook.workqueue import (
    DispatchGroup,
    due_now,
    held_by_message,
    lease_available,
    lease_free,
)

RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED)
KINDS = (EventKind.INSTANT, EventKind.CONFIRMED, EventKind.REMOVED)


@dataclass(frozen=True)
class DeliveryFilter:
    """Which deliveries `list` shows and a bulk `retry` sends again; None = any."""

    status: str | None = None
    endpoint_id: int | None = None
    since: datetime | None = None
    # Made before this time; of this kind (the webhook's type, e.g. event.confirmed); of an event
    # of this transaction.
    until: datetime | None = None
    kind: str | None = None
    tx_hash: str | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in DeliveryStatus.ALL:
            raise InputError(
                f"invalid status {self.status!r}: expected one of {', '.join(DeliveryStatus.ALL)}"
            )
        if self.kind is not None and self.kind not in KINDS:
            raise InputError(
                f"invalid event type {self.kind!r}: expected one of {', '.join(KINDS)}"
            )
        if self.tx_hash is not None:
            object.__setattr__(self, "tx_hash", parse_tx_hash(self.tx_hash))


@dataclass(frozen=True)
class DeliveryDetails:
    """`show`: the delivery and every attempt at it, oldest first."""

    delivery: public.Delivery
    attempts: list[public.Attempt]

    def as_public(self) -> public.DeliveryDetails:
        return public.DeliveryDetails(**dict(self.delivery), attempts=self.attempts)


@dataclass(frozen=True)
class RetryPlan:
    """Deliveries made due and leased; enqueue `groups` after the session commits."""

    groups: list[DispatchGroup]

    @property
    def count(self) -> int:
        return sum(len(g.delivery_ids) for g in self.groups)


def view(delivery: Delivery) -> public.Delivery:
    return public.Delivery(
        id=delivery.id,
        webhook_id=webhook_id_for(delivery.endpoint_id, delivery.event_id, delivery.kind),
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        kind=delivery.kind,
        status=delivery.status,
        sequence=delivery.sequence,
        origin=delivery.origin,
        skipped_at=delivery.skipped_at,
        attempt_count=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


def _in_scope(query: Any, scope: Scope) -> Any:
    """Only the deliveries of the scope's endpoints (another application's are missing)."""
    if scope is None:
        return query
    mine = select(Endpoint.id).where(Endpoint.application_id == scope)
    return query.where(Delivery.endpoint_id.in_(mine))


def _filtered(query: Any, where: DeliveryFilter, scope: Scope) -> Any:
    query = _in_scope(query, scope)
    if where.status:
        query = query.where(Delivery.status == where.status)
    if where.endpoint_id:
        query = query.where(Delivery.endpoint_id == where.endpoint_id)
    if where.since:
        query = query.where(Delivery.created_at >= where.since)
    if where.until:
        query = query.where(Delivery.created_at < where.until)
    if where.kind:
        query = query.where(Delivery.kind == where.kind)
    if where.tx_hash:
        # Each delivery's event by its primary key (the events table has no index on the hash).
        of_tx = select(Event.id).where(
            Event.id == Delivery.event_id,
            Event.event_at == Delivery.event_at,
            Event.transaction_hash == where.tx_hash,
        )
        query = query.where(of_tx.exists())
    return query


def count_deliveries(session: Session, where: DeliveryFilter, *, scope: Scope) -> int:
    """How many deliveries the filter selects (what a bulk retry of it would send)."""
    query = _filtered(select(func.count()).select_from(Delivery), where, scope)
    return int(session.scalar(query) or 0)


def list_deliveries(
    session: Session,
    where: DeliveryFilter,
    *,
    scope: Scope,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    newest_first: bool = False,
) -> Page[public.Delivery]:
    """Deliveries oldest first (the CLI, the API), or newest first (the console's lists);
    `next_cursor` continues in the same direction."""
    check_limit(limit)
    after = decode_cursor(cursor)
    if newest_first:
        query = select(Delivery).where(Delivery.id < after) if after else select(Delivery)
        query = query.order_by(Delivery.id.desc())
    else:
        query = select(Delivery).where(Delivery.id > after).order_by(Delivery.id)
    query = _filtered(query, where, scope).limit(limit + 1)
    return page_of([view(d) for d in session.scalars(query)], limit)


def show_delivery(session: Session, delivery_id: int, *, scope: Scope) -> DeliveryDetails:
    # One statement, so one snapshot: read apart, a flush committed between the delivery and its
    # attempts would show more attempts than the delivery counts.
    query = select(Delivery).where(Delivery.id == delivery_id)
    query = _in_scope(query.options(joinedload(Delivery.attempt_rows)), scope)
    delivery = session.scalars(query).unique().first()
    if delivery is None:
        raise NotFoundError(f"no delivery with id {delivery_id} (see `ethhook delivery list`)")
    attempts = [
        public.Attempt(
            attempt=a.attempt_number,
            started_at=a.started_at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
            response_body=a.response_body,
        )
        for a in delivery.attempt_rows
    ]
    return DeliveryDetails(view(delivery), attempts)


def retry_deliveries(session: Session, delivery_ids: Sequence[int], *, scope: Scope) -> RetryPlan:
    """Make the deliveries due now and lease them; the caller commits, then enqueues the groups.

    A retried delivery gets one more attempt (plus any the schedule still had); if that fails it is
    `failed` again. Every id is checked before anything changes.
    """
    delivery_ids = list(dict.fromkeys(delivery_ids))
    query = select(Delivery.id, Delivery.endpoint_id, Delivery.status, Delivery.event_at).where(
        Delivery.id.in_(delivery_ids)
    )
    rows = session.execute(_in_scope(query, scope)).all()
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
        chunk = delivery_ids[start : start + 1000]
        # A delivery a deliver task has claimed is being sent now: taking its lease would send
        # it twice. One leased to a queued message is taken (that message then finds it gone).
        not_claimed = or_(lease_free(Delivery, now), held_by_message(Delivery))
        session.execute(
            update(Delivery).where(Delivery.id.in_(chunk), not_claimed).values(**due_now(now))
        )
    return RetryPlan(
        lease_available(
            session, [(found[i].endpoint_id, i, found[i].event_at) for i in delivery_ids], now
        )
    )


def retry_matching(session: Session, where: DeliveryFilter, *, scope: Scope) -> RetryPlan:
    """`retry --status failed [--endpoint …]`: every delivery the filter selects."""
    if where.status is None:
        raise InputError(
            "give delivery ids, or --status failed (with --endpoint/--since/--until/--kind/--tx) "
            "to retry many"
        )
    ids = session.scalars(_filtered(select(Delivery.id), where, scope).order_by(Delivery.id))
    return retry_deliveries(session, list(ids), scope=scope)
