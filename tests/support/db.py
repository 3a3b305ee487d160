"""The test database through the product's own code: events stored and matched as the listener
and the matcher store them, pending deliveries, row counts, and the rows a test inspects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from ethhook.db import get_engine, session_scope
from ethhook.db.models import (
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    Endpoint,
    EndpointFilter,
    Event,
    EventKind,
    ReplayJob,
    utcnow,
)
from ethhook.types import ChainEvent
from ethhook.workqueue import delivery_row, enqueue_match_groups, store_events, store_replayed


def store_and_match(session: Session, events: Sequence[ChainEvent], now: datetime) -> list[Any]:
    """What the listener and then the matcher do with these events, in one transaction; returns
    the deliver tasks to enqueue."""
    from ethhook.match.service import match_stored

    groups = []
    for group in store_events(session, events, now):
        groups += match_stored(session, group.event_ids, group.token, now)[1]
    return groups


def publish_events(events: Sequence[ChainEvent]) -> int:
    """Store events as the listener does, commit, and publish their matcher tasks."""
    with session_scope() as session:
        groups = store_events(session, events, utcnow())
    return enqueue_match_groups(groups)


def add_pending_deliveries(
    session: Session, endpoint_id: int, events: Sequence[ChainEvent], now: datetime
) -> list[int]:
    """The events stored as matched, and one pending delivery of each to the endpoint, due at
    `now` and held by nobody; their ids, in order."""
    store_replayed(session, events, now)
    rows = [
        delivery_row(
            endpoint_id,
            e.event_id,
            EventKind.INSTANT,
            DeliveryStatus.PENDING,
            now,
            next_attempt_at=now,
        )
        for e in events
    ]
    return sorted(session.scalars(insert(Delivery).returning(Delivery.id), rows).all())


def row_counts() -> dict[str, int]:
    with session_scope() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Endpoint, EndpointFilter, Event, Delivery)
        }


def database_state() -> list[Any]:
    """Every column of every endpoint, filter and delivery row: what a refused command leaves."""
    with session_scope() as session:
        return [
            session.execute(select(table).order_by(*table.primary_key)).all()
            for table in (Endpoint.__table__, EndpointFilter.__table__, Delivery.__table__)
        ]


def endpoint_count() -> int:
    with session_scope() as session:
        return len(session.scalars(select(Endpoint.id)).all())


def deliveries(endpoint_id: int) -> dict[int, tuple[Delivery, list[DeliveryAttempt]]]:
    """The endpoint's deliveries by their event's log index, each with its attempts in order."""
    with session_scope() as session:
        rows = session.execute(
            select(Delivery, Event.log_index)
            .join(Event, Event.id == Delivery.event_id)
            .where(Delivery.endpoint_id == endpoint_id)
        ).all()
        found = {}
        for delivery, log_index in rows:
            attempts = list(
                session.scalars(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id == delivery.id)
                    .order_by(DeliveryAttempt.attempt_number)
                )
            )
            session.expunge_all()
            found[log_index] = (delivery, attempts)
        return found


def job_row(job_id: int) -> ReplayJob:
    with session_scope() as session:
        job = session.get(ReplayJob, job_id)
        assert job is not None
        session.expunge(job)
        return job


T = TypeVar("T")


def explained(run: Callable[[], T]) -> tuple[T, str]:
    """run()'s result and PostgreSQL's EXPLAIN of the one statement it sent, as it was sent."""
    captured = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        captured.append((statement, parameters))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        result = run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = captured
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("EXPLAIN " + statement, parameters)
        return result, "\n".join(row[0] for row in cursor.fetchall())
    finally:
        raw.close()


def add_failed_attempt(endpoint_id: int, status_code: int, duration_ms: float) -> Delivery:
    """The endpoint's one delivery, given a first attempt answered `status_code`; the delivery."""
    with session_scope() as session:
        delivery = session.scalars(
            select(Delivery).where(Delivery.endpoint_id == endpoint_id)
        ).one()
        session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                event_at=delivery.event_at,
                attempt_number=1,
                started_at=utcnow(),
                duration_ms=duration_ms,
                status_code=status_code,
                error=f"HTTP {status_code}",
            )
        )
    return delivery
