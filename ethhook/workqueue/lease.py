"""Leases: hand rows to one message token, claim them for one worker, give them back or defer them."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, or_, select, true, update
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db.dialect import skip_locked
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint

# Deferrals up to this long go back on the queue with a countdown; longer ones wait in the
# database for the beat job (Celery holds a countdown message in worker memory, and on Redis one
# longer than the visibility timeout is redelivered again and again).
SHORT_DEFER_S = 15.0

# Message tokens start with this; a worker's claim token (a plain UUID, 36 characters) never does.
# A task may take a due delivery its ids name from another message's lease, never from a claim.
MESSAGE_TOKEN_PREFIX = "m-"

# While the deliver queue has messages waiting, an expired message lease is probably a message
# still in that queue, not a lost one: the due scan leaves it to that message for up to this many
# dispatch leases past its expiry (so a message that was lost is still sent again in bounded
# time), instead of leasing it to one more message at the back of the queue.
UNCLAIMED_HOLD_LEASES = 10


# The earliest and latest event_at of a message's rows: statements naming the rows by id add it,
# so PostgreSQL reads only the partitions that can hold them. None: every partition.
TimeRange = tuple[datetime, datetime]


@dataclass(frozen=True)
class DispatchGroup:
    """One deliver task: deliveries of one endpoint leased to one token."""

    endpoint_id: int
    delivery_ids: list[int]
    token: str
    event_at_range: TimeRange | None = None


def time_range(times: Iterable[datetime]) -> TimeRange | None:
    """The smallest range holding `times`; None when there are none."""
    found = list(times)
    return (min(found), max(found)) if found else None


def in_time_range(model: Any, bounds: TimeRange | None) -> ColumnElement[bool]:
    """`model.event_at` within `bounds` (what lets PostgreSQL skip partitions); true for None."""
    if bounds is None:
        return true()
    within: ColumnElement[bool] = model.event_at.between(*bounds)
    return within


def groups_of(
    rows: Iterable[tuple[int, int, datetime]], per_task: int, token_of: Any
) -> list[DispatchGroup]:
    """(endpoint_id, delivery_id, event_at) rows as deliver tasks of at most `per_task` ids,
    each leased to `token_of(endpoint_id)` and carrying its rows' time range."""
    rows = list(rows)
    time_of = {delivery_id: event_at for _, delivery_id, event_at in rows}
    return [
        DispatchGroup(endpoint_id, ids, token_of(endpoint_id), time_range(time_of[i] for i in ids))
        for endpoint_id, ids in chunk_groups(((e, d) for e, d, _ in rows), per_task)
    ]


def new_token() -> str:
    """A message's token: the row waits for the message that carries it (or for its copies)."""
    return MESSAGE_TOKEN_PREFIX + uuid.uuid4().hex


def new_claim_token() -> str:
    """A worker's claim: only the task holding it may send the row until it expires."""
    return str(uuid.uuid4())


def lease_free(model: Any, now: datetime) -> ColumnElement[bool]:
    """Nobody holds the row: it was never leased, or its lease has expired."""
    return or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)


def held_by_message(model: Any) -> ColumnElement[bool]:
    """Leased to a message token, not claimed by a worker (the token says which)."""
    return model.lease_token.startswith(MESSAGE_TOKEN_PREFIX, autoescape=True)


def claimable(model: Any, token: str, now: datetime) -> ColumnElement[bool]:
    """A row a worker's task may claim: leased to the task's own message (`token`), or due and
    held by nobody or by another message."""
    return or_(
        model.lease_token == token,
        and_(model.next_attempt_at <= now, or_(lease_free(model, now), held_by_message(model))),
    )


def due_now(now: datetime) -> dict[str, Any]:
    """The values that make a delivery pending, due now and held by nobody (a manual retry, a
    replay); a skipped one is its ordered endpoint's head again."""
    return {
        "status": DeliveryStatus.PENDING,
        "skipped_at": None,
        "next_attempt_at": now,
        "lease_token": None,
        "lease_expires_at": None,
        "updated_at": now,
    }


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
    session: Session, rows: Iterable[tuple[int, int, datetime]], now: datetime
) -> list[DispatchGroup]:
    """Lease due, unleased pending deliveries, given as (endpoint_id, delivery_id, event_at), to
    fresh tokens; returns what this call leased. Each UPDATE names its ids' time range, so that
    PostgreSQL looks them up in their partitions only."""
    settings = get_settings()
    expires = now + timedelta(seconds=settings.dispatch_lease_s)
    leased = []
    for group in groups_of(rows, settings.deliveries_per_task, lambda _: new_token()):
        claimed = session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(group.delivery_ids),
                in_time_range(Delivery, group.event_at_range),
                Delivery.status == DeliveryStatus.PENDING,
                lease_free(Delivery, now),
            )
            .values(lease_token=group.token, lease_expires_at=expires)
            .returning(Delivery.id, Delivery.event_at)
        ).all()
        if claimed:
            bounds = time_range(event_at for _, event_at in claimed)
            ids = sorted(i for i, _ in claimed)
            leased.append(DispatchGroup(group.endpoint_id, ids, group.token, bounds))
    return leased


def due_deliveries(
    session: Session, now: datetime, limit: int, queue_busy: bool = False
) -> list[tuple[int, int, datetime]]:
    """(endpoint_id, delivery_id, event_at) of pending deliveries that are due and held by nobody, of
    endpoints that are not ordered (`workqueue.ordered.due_heads` finds those).

    With `queue_busy` (the deliver queue has messages waiting), a message lease that expired less
    than UNCLAIMED_HOLD_LEASES dispatch leases ago is left to its message: dispatching it again
    would only queue one more message behind it.
    """
    conditions = [
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at <= now,
        lease_free(Delivery, now),
        Endpoint.active.is_(True),
        Endpoint.ordered.is_(None),  # an ordered endpoint's head only: ordered.due_heads
    ]
    if queue_busy:
        hold = timedelta(seconds=UNCLAIMED_HOLD_LEASES * get_settings().dispatch_lease_s)
        conditions.append(
            or_(
                Delivery.lease_token.is_(None),
                ~held_by_message(Delivery),
                Delivery.lease_expires_at < now - hold,
            )
        )
    query = (
        select(Delivery.endpoint_id, Delivery.id, Delivery.event_at)
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(*conditions)
        .order_by(Delivery.next_attempt_at, Delivery.id)  # ties (an enabled backlog): oldest first
        .limit(limit)
    )
    # A second beat process running by mistake skips rows this one is leasing.
    query = skip_locked(query, session, of=Delivery)
    return [(row[0], row[1], row[2]) for row in session.execute(query)]


def claim(
    session: Session,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    worker_token: str,
    now: datetime,
    lease_s: float,
    bounds: TimeRange | None = None,
) -> list[int]:
    """Claim, for `worker_token`, the deliveries this message was dispatched for, and those of its
    ids that are due and held by nobody or only by another message (never a worker's claim).

    A message that waited in the queue past its lease, whose deliveries beat has leased to a newer
    message since, still sends them: a backlog longer than the lease drains instead of leaving
    every queued message empty-handed. The newer message then finds them sent. A worker's claim is
    exclusive until it expires; the row lock makes two claims at once see each other's.
    """
    statement = claim_statement(
        endpoint_id, delivery_ids, token, worker_token, now, lease_s, bounds
    )
    return sorted(session.scalars(statement).all())


def claim_statement(
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    worker_token: str,
    now: datetime,
    lease_s: float,
    bounds: TimeRange | None = None,
    *,
    named: ColumnElement[bool] | None = None,
    expires: Any = None,
) -> Update:
    """The UPDATE that claims (see claim), RETURNING the claimed ids; a caller may return more
    columns and read them in the same statement (the deliver task's claim-and-load). It claims
    nothing of an ordered endpoint: the caller then asks `ordered.claim_ordered`.

    A caller that builds the statement once with bound parameters for the values gives `named`
    (its condition on the ids, instead of `id IN delivery_ids`) and `expires` (the lease's end,
    instead of now + lease_s)."""
    # An ordered endpoint's deliveries are claimed by workqueue.ordered.claim_ordered alone.
    ordered = select(Endpoint.id).where(Endpoint.id == endpoint_id, Endpoint.ordered.is_not(None))
    if expires is None:
        expires = now + timedelta(seconds=lease_s)
    return (
        update(Delivery)
        .where(
            Delivery.id.in_(delivery_ids) if named is None else named,
            in_time_range(Delivery, bounds),
            Delivery.endpoint_id == endpoint_id,
            ~ordered.exists(),
            Delivery.status == DeliveryStatus.PENDING,
            claimable(Delivery, token, now),
        )
        .values(lease_token=worker_token, lease_expires_at=expires)
        .returning(Delivery.id)
    )


def release_leases(
    session: Session,
    delivery_ids: Sequence[int],
    token: str,
    bounds: TimeRange | None = None,
) -> None:
    """Give back leases a worker holds without attempting (endpoint disabled, time budget spent)."""
    if delivery_ids:
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(delivery_ids),
                in_time_range(Delivery, bounds),
                Delivery.lease_token == token,
            )
            .values(lease_token=None, lease_expires_at=None)
        )


def defer(
    session: Session,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    worker_token: str,
    delay_s: float,
    now: datetime,
    dispatch_lease_s: float,
    bounds: TimeRange | None = None,
) -> DispatchGroup | None:
    """Put deliveries off by `delay_s` without using an attempt (rate limit, open breaker).

    A short delay returns a group to re-enqueue with that countdown, leased to a new token; a long
    one goes back to the database as due at now + delay_s.
    """
    if not delivery_ids:
        return None
    held = and_(
        Delivery.id.in_(delivery_ids),
        in_time_range(Delivery, bounds),
        Delivery.lease_token == worker_token,
    )
    if delay_s <= SHORT_DEFER_S:
        token = new_token()
        rows = session.execute(
            update(Delivery)
            .where(held)
            .values(
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=delay_s + dispatch_lease_s),
                next_attempt_at=now + timedelta(seconds=delay_s),
            )
            .returning(Delivery.id, Delivery.event_at)
        ).all()
        if not rows:
            return None
        ids = sorted(i for i, _ in rows)
        return DispatchGroup(endpoint_id, ids, token, time_range(t for _, t in rows))
    session.execute(
        update(Delivery)
        .where(held)
        .values(
            lease_token=None,
            lease_expires_at=None,
            next_attempt_at=now + timedelta(seconds=delay_s),
        )
    )
    return None
