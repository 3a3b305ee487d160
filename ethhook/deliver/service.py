"""Delivery → signed POST: claim leased deliveries, send them, record every attempt."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from ethhook import __version__
from ethhook.config import Settings
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint, Event, utcnow
from ethhook.deliver import http
from ethhook.deliver.payload import build_body
from ethhook.deliver.retry import next_retry, parse_retry_after
from ethhook.deliver.signing import webhook_headers
from ethhook.match.dispatch import release_leases
from ethhook.types import webhook_id_for

log = logging.getLogger(__name__)

USER_AGENT = f"EthHook/{__version__}"
FLUSH_EVERY = 50
FLUSH_INTERVAL_S = 1.0

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class EndpointView:
    """What sending needs to know about an endpoint, read once per task."""

    id: int
    url: str
    secrets: tuple[str, ...]
    signatures: tuple[str, ...]
    confirmations: int
    retry_schedule_s: tuple[float, ...]
    active: bool


@dataclass(frozen=True)
class Work:
    delivery_id: int
    attempts: int
    webhook_id: str
    body: bytes


@dataclass(frozen=True)
class Result:
    work: Work
    started_at: datetime
    outcome: http.HttpOutcome


@dataclass
class Report:
    sent: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    released: int = 0
    skipped: int = 0
    disabled: bool = False


def claim(
    session: Session,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    worker_token: str,
    now: datetime,
    lease_s: float,
) -> list[int]:
    """Take the deliveries this message was dispatched for (or that nobody holds and are due)."""
    return sorted(
        session.scalars(
            update(Delivery)
            .where(
                Delivery.id.in_(delivery_ids),
                Delivery.endpoint_id == endpoint_id,
                Delivery.status == DeliveryStatus.PENDING,
                or_(
                    Delivery.lease_token == token,
                    and_(
                        or_(Delivery.lease_expires_at.is_(None), Delivery.lease_expires_at < now),
                        Delivery.next_attempt_at <= now,
                    ),
                ),
            )
            .values(lease_token=worker_token, lease_expires_at=now + timedelta(seconds=lease_s))
            .returning(Delivery.id)
        ).all()
    )


def load_endpoint(
    session: Session, endpoint_id: int, settings: Settings, now: datetime
) -> EndpointView | None:
    endpoint = session.get(Endpoint, endpoint_id)
    if endpoint is None:
        return None
    secrets = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and (endpoint.previous_secret_expires_at > now)
    ):
        secrets.append(endpoint.previous_secret)
    return EndpointView(
        id=endpoint.id,
        url=endpoint.url,
        secrets=tuple(secrets),
        signatures=tuple(endpoint.event_signatures or ()),
        confirmations=endpoint.confirmations,
        retry_schedule_s=tuple(endpoint.retry_schedule_s or settings.retry_schedule_s),
        active=endpoint.active,
    )


def load_work(
    session: Session, endpoint: EndpointView, delivery_ids: Sequence[int], settings: Settings
) -> list[Work]:
    rows = session.execute(
        select(Delivery.id, Delivery.attempts, Delivery.kind, Delivery.created_at, Event)
        .join(Event, Event.id == Delivery.event_id)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Event.chain_id, Event.block_number, Event.log_index, Delivery.id)
    ).all()
    work = []
    for delivery_id, attempts, kind, created_at, event in rows:
        body = build_body(
            kind=kind,
            created_at=created_at,
            event_id=event.id,
            chain_id=event.chain_id,
            chain_name=settings.chain_name(event.chain_id),
            block_number=event.block_number,
            block_hash=event.block_hash,
            block_timestamp=event.block_timestamp,
            transaction_hash=event.transaction_hash,
            transaction_index=event.transaction_index,
            log_index=event.log_index,
            address=event.address,
            topics=list(event.topics),
            data=event.data,
            confirmations=endpoint.confirmations if kind == "event.confirmed" else 0,
            removed=kind == "event.removed",
            signatures=endpoint.signatures,
        )
        work.append(Work(delivery_id, attempts, webhook_id_for(endpoint.id, event.id, kind), body))
    return work


def send(endpoint: EndpointView, work: Work, settings: Settings) -> Result:
    started_at = utcnow()
    headers = webhook_headers(
        endpoint.secrets, work.webhook_id, int(started_at.timestamp()), work.body, USER_AGENT
    )
    outcome = http.post(
        endpoint.url,
        work.body,
        headers,
        settings.delivery_connect_timeout_s,
        settings.delivery_read_timeout_s,
    )
    return Result(work, started_at, outcome)


def record(
    session: Session,
    endpoint: EndpointView,
    results: Sequence[Result],
    worker_token: str,
    now: datetime,
) -> None:
    """Write the attempt rows and each delivery's new state; schedule retries in the database."""
    if not results:
        return
    session.execute(
        insert(DeliveryAttempt),
        [
            {
                "delivery_id": r.work.delivery_id,
                "attempt_number": r.work.attempts + 1,
                "started_at": r.started_at,
                "duration_ms": round(r.outcome.duration_ms, 3),
                "status_code": r.outcome.status_code,
                "error": r.outcome.error[:500] if r.outcome.error else None,
                "response_body": r.outcome.body,
            }
            for r in results
        ],
    )
    updates = []
    for r in results:
        status, next_at = _next_state(endpoint, r, now)
        updates.append(
            {
                "b_id": r.work.delivery_id,
                "b_token": worker_token,
                "status": status,
                "attempts": r.work.attempts + 1,
                "next_attempt_at": next_at,
                "last_status_code": r.outcome.status_code,
                "last_error": (r.outcome.error or _status_error(r.outcome))[:500] or None,
                "lease_token": None,
                "lease_expires_at": None,
                "updated_at": now,
            }
        )
    table = cast(Table, Delivery.__table__)
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.lease_token == bindparam("b_token"))
        .values({key: bindparam(key) for key in updates[0] if not key.startswith("b_")}),
        updates,
    )
    any_ok = any(r.outcome.ok for r in results)
    # Auto-disable looks at how long every attempt has been failing.
    failing = Endpoint.failing_since
    session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint.id, failing.is_not(None) if any_ok else failing.is_(None))
        .values(failing_since=None if any_ok else now)
    )


def _status_error(outcome: http.HttpOutcome) -> str:
    if outcome.ok or outcome.status_code is None:
        return ""
    return f"HTTP {outcome.status_code}"


def _next_state(
    endpoint: EndpointView, result: Result, now: datetime
) -> tuple[str, datetime | None]:
    outcome = result.outcome
    if outcome.ok:
        return DeliveryStatus.SUCCEEDED, None
    retry_after = None
    if outcome.status_code in (429, 503):
        retry_after = parse_retry_after(outcome.retry_after, now.timestamp())
    decision = next_retry(result.work.attempts + 1, endpoint.retry_schedule_s, retry_after)
    if decision.delay_s is None:
        return DeliveryStatus.FAILED, None
    return DeliveryStatus.PENDING, now + timedelta(seconds=decision.delay_s)


def disable_endpoint(session: Session, endpoint_id: int, reason: str, now: datetime) -> None:
    session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint_id)
        .values(active=False, disabled_reason=reason[:500], disabled_at=now)
    )


def deliver(
    sessions: SessionFactory,
    settings: Settings,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
) -> Report:
    """Send one endpoint's deliveries from one message; every step is safe to run twice."""
    report = Report()
    worker_token = str(uuid.uuid4())
    started = time.monotonic()
    # Stop starting new requests while the lease still covers one more full attempt.
    budget_s = settings.delivery_lease_s - (
        settings.delivery_connect_timeout_s + settings.delivery_read_timeout_s + 5
    )
    with sessions() as session:
        now = utcnow()
        claimed = claim(
            session, endpoint_id, delivery_ids, token, worker_token, now, settings.delivery_lease_s
        )
        report.skipped = len(delivery_ids) - len(claimed)
        if not claimed:
            return report
        endpoint = load_endpoint(session, endpoint_id, settings, now)
        if endpoint is None or not endpoint.active:
            release_leases(session, claimed, worker_token)
            report.released = len(claimed)
            return report
        work = load_work(session, endpoint, claimed, settings)

    pending: list[Result] = []
    last_flush = time.monotonic()
    remaining = list(work)

    def flush() -> None:
        nonlocal pending, last_flush
        with sessions() as session:
            record(session, endpoint, pending, worker_token, utcnow())
        pending = []
        last_flush = time.monotonic()

    while remaining:
        if time.monotonic() - started > max(budget_s, 1.0):
            break
        item = remaining.pop(0)
        result = send(endpoint, item, settings)
        report.sent += 1
        pending.append(result)
        if result.outcome.ok:
            report.succeeded += 1
        else:
            report.failed_attempts += 1
            log.info(
                "deliver.attempt.failed endpoint=%s delivery=%s attempt=%d status=%s error=%s",
                endpoint.id,
                item.delivery_id,
                item.attempts + 1,
                result.outcome.status_code,
                result.outcome.error,
            )
        if result.outcome.status_code == 410:
            report.disabled = True
            break
        if len(pending) >= FLUSH_EVERY or time.monotonic() - last_flush > FLUSH_INTERVAL_S:
            flush()

    with sessions() as session:
        record(session, endpoint, pending, worker_token, utcnow())
        pending = []
        if report.disabled:
            disable_endpoint(session, endpoint.id, "the endpoint answered 410 Gone", utcnow())
            log.warning("deliver.endpoint.disabled endpoint=%s reason=410-gone", endpoint.id)
        if remaining:
            release_leases(session, [w.delivery_id for w in remaining], worker_token)
            report.released = len(remaining)
    return report
