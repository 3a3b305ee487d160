"""Ordered endpoints (`--ordered`): an endpoint's head, the one delivery it may send next, and the
claim that takes the head and the due deliveries right after it, one claimer at a time.

The head is the endpoint's open delivery with the lowest sequence number: a pending one, or a
dead-lettered (`failed`) one not yet skipped. A `pause` endpoint whose head is dead-lettered
sends nothing until someone retries it (`delivery retry`) or sets `skip-dead`; a `skip-dead`
endpoint marks it skipped (`deliveries.skipped_at`) and goes on. Deliveries after a pending head
wait, whatever messages name them: only a claim of the head sends anything, so a held delivery
uses no attempt and is never dead-lettered for waiting.

Claims of one endpoint take turns (a transaction-scoped advisory lock on PostgreSQL; SQLite has
one writer at a time), and a claim takes nothing while any of the first rows is under another
worker's live claim: at most one worker sends an ordered endpoint's webhooks at any time, and it
sends the ones it claimed one after another, stopping at the first that fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select, text, update
from sqlalchemy.orm import Session

from ethhook.db.dialect import is_postgres
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint
from ethhook.workqueue.lease import MESSAGE_TOKEN_PREFIX, lease_free

PAUSE = "pause"
SKIP_DEAD = "skip-dead"
ORDERED_MODES = (PAUSE, SKIP_DEAD)

# The first advisory-lock key of ordered claims (the second is the endpoint id): "ORDR".
_LOCK_CLASS = 0x4F524452


@dataclass(frozen=True)
class Row:
    """An open delivery of an ordered endpoint as the claim reads it, in sequence order."""

    id: int
    event_at: datetime
    status: str
    sequence: int | None
    next_attempt_at: datetime | None
    lease_token: str | None
    lease_expires_at: datetime | None


@dataclass(frozen=True)
class Plan:
    """What one claim does: `take` (sent next, in this order), `skip` (dead-lettered heads a
    skip-dead endpoint goes past), `paused_by` (the dead head that holds a pause endpoint)."""

    take: list[Row] = field(default_factory=list)
    skip: list[Row] = field(default_factory=list)
    paused_by: Row | None = None


def in_order(model: Any) -> tuple[Any, ...]:
    """An endpoint's deliveries in the order they are sent: by sequence number (a row made
    before numbering existed, NULL, after them), then id."""
    return (model.sequence.asc().nulls_last(), model.id)


def holds(model: Any, mode: Any) -> ColumnElement[bool]:
    """The delivery can be its ordered endpoint's head: pending, or dead-lettered, not skipped,
    while `mode` (the endpoint's column, or a value) is pause."""
    pending = model.status == DeliveryStatus.PENDING
    dead = and_(model.status == DeliveryStatus.FAILED, model.skipped_at.is_(None))
    if isinstance(mode, str):
        return or_(pending, dead) if mode == PAUSE else pending
    return or_(pending, and_(dead, mode == PAUSE))


def plan_claim(rows: Sequence[Row], mode: str, now: datetime, busy: bool = False) -> Plan:
    """The deliveries a claim may take from the endpoint's first open rows (pending, or failed
    and not skipped, in sequence order): none while another worker's claim is live on one of
    them; else the due pending ones from the head on, up to the first that is not due or is
    dead-lettered (pause: it holds them all; skip-dead: it is skipped). `busy`: a worker's live
    claim was found on a row past them (a retry put older rows ahead of what it sends)."""
    if busy or any(_claimed_by_worker(row, now) for row in rows):
        return Plan()
    take: list[Row] = []
    skip: list[Row] = []
    for row in rows:
        if row.status == DeliveryStatus.FAILED:
            if mode == PAUSE:
                return Plan(take, skip, None if take else row)
            skip.append(row)
            continue
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            break
        take.append(row)
    return Plan(take, skip)


def _claimed_by_worker(row: Row, now: datetime) -> bool:
    return (
        row.lease_token is not None
        and not row.lease_token.startswith(MESSAGE_TOKEN_PREFIX)
        and row.lease_expires_at is not None
        and row.lease_expires_at >= now
    )


def claim_ordered(
    session: Session,
    endpoint_id: int,
    mode: str,
    worker_token: str,
    now: datetime,
    lease_s: float,
    limit: int,
) -> Plan:
    """Claim, for `worker_token`, up to `limit` deliveries of an ordered endpoint from its head
    on (plan_claim), and mark the dead-lettered ones a skip-dead endpoint goes past, in the
    caller's transaction; claims of one endpoint take turns until it ends."""
    if is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:cls, :endpoint)"),
            {"cls": _LOCK_CLASS, "endpoint": endpoint_id},
        )
    found = session.execute(
        select(
            Delivery.id,
            Delivery.event_at,
            Delivery.status,
            Delivery.sequence,
            Delivery.next_attempt_at,
            Delivery.lease_token,
            Delivery.lease_expires_at,
        )
        .where(
            Delivery.endpoint_id == endpoint_id,
            or_(
                Delivery.status == DeliveryStatus.PENDING,
                and_(Delivery.status == DeliveryStatus.FAILED, Delivery.skipped_at.is_(None)),
            ),
        )
        .order_by(*in_order(Delivery))
        .limit(limit)
    ).all()
    # Another sender anywhere among its pending rows, not only the first ones read above.
    busy = session.scalar(
        select(
            exists().where(
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == DeliveryStatus.PENDING,
                ~Delivery.lease_token.startswith(MESSAGE_TOKEN_PREFIX, autoescape=True),
                Delivery.lease_expires_at >= now,
            )
        )
    )
    plan = plan_claim([Row(*r) for r in found], mode, now, bool(busy))
    if plan.take:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.id for r in plan.take]))
            .values(lease_token=worker_token, lease_expires_at=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
    if plan.skip:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.id for r in plan.skip]))
            .values(skipped_at=now)
            .execution_options(synchronize_session=False)
        )
    return plan


def due_heads(session: Session, now: datetime, limit: int) -> list[tuple[int, int, datetime]]:
    """(endpoint_id, delivery_id, event_at) of the heads of active ordered endpoints that are pending, due
    and held by nobody: the due scan's share of ordered endpoints (it leaves out the rest of
    their deliveries, which wait for their head)."""
    head = (
        select(Delivery.id)
        .where(Delivery.endpoint_id == Endpoint.id, holds(Delivery, Endpoint.ordered))
        .order_by(*in_order(Delivery))
        .limit(1)
        .correlate(Endpoint)
        .scalar_subquery()
    )
    heads = (
        select(Endpoint.id.label("endpoint_id"), head.label("head_id"))
        .where(Endpoint.ordered.is_not(None), Endpoint.active.is_(True))
        .subquery("heads")
    )
    query = (
        select(heads.c.endpoint_id, Delivery.id, Delivery.event_at)
        .join(Delivery, Delivery.id == heads.c.head_id)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.next_attempt_at <= now,
            lease_free(Delivery, now),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(query)]


@dataclass(frozen=True)
class Head:
    """An ordered endpoint's head: the delivery it sends next (pending), or the dead-lettered
    one that holds a pause endpoint (failed)."""

    id: int
    sequence: int | None
    status: str
    attempts: int
    next_attempt_at: datetime | None


def head_of(session: Session, endpoint_id: int, mode: str) -> Head | None:
    """The head of an endpoint ordered in `mode`; None when nothing is open."""
    row = session.execute(
        select(
            Delivery.id,
            Delivery.sequence,
            Delivery.status,
            Delivery.attempts,
            Delivery.next_attempt_at,
        )
        .where(Delivery.endpoint_id == endpoint_id, holds(Delivery, mode))
        .order_by(*in_order(Delivery))
        .limit(1)
    ).first()
    return None if row is None else Head(*row)


def paused_by(session: Session, endpoint: Endpoint) -> tuple[int, int | None] | None:
    """(delivery id, sequence) of the dead-lettered head that holds a pause endpoint; None when
    nothing holds it (or it is not a pause endpoint)."""
    if endpoint.ordered != PAUSE:
        return None
    head = head_of(session, endpoint.id, PAUSE)
    if head is None or head.status != DeliveryStatus.FAILED:
        return None
    return head.id, head.sequence
