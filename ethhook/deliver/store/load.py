"""Loading a deliver task's work: the endpoint as sending needs it, and each delivery's body."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import ARRAY, BigInteger, Text, and_, any_, bindparam, cast, select
from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.arrays import array_literal
from ethhook.db.dialect import is_postgres
from ethhook.db.models import Delivery, Endpoint, Event, event_record_columns
from ethhook.deliver.payload import build_body
from ethhook.deliver.signing import KeyRing
from ethhook.types import webhook_id_for
from ethhook.workqueue import TimeRange, in_time_range


@dataclass(frozen=True)
class EndpointView:
    """What sending needs to know about an endpoint, read once per task."""

    id: int
    url: str
    secrets: tuple[str, ...]
    signatures: tuple[str, ...]
    confirmations: int
    retry_schedule_s: tuple[float, ...]
    rate_limit_per_s: float | None
    active: bool
    signing: str = "hmac"
    # `--ordered`: None, `pause` or `skip-dead` (workqueue.ordered).
    ordered: str | None = None

    @cached_property
    def keys(self) -> KeyRing:
        """The secrets (or Ed25519 private keys) loaded once per task, on the first request."""
        return KeyRing.of(self.signing, self.secrets)


@dataclass(frozen=True)
class Work:
    delivery_id: int
    attempts: int
    webhook_id: str
    body: bytes
    block_timestamp: int
    created_at: datetime
    # The delivery's partition key (its event's time); None only in work made by hand (tests):
    # recording it then reads the delivery's.
    event_at: datetime | None = None
    # The endpoint's counter (an ordered endpoint's work is sent in this order).
    sequence: int | None = None


def load_endpoint(
    session: Session, endpoint_id: int, settings: Settings, now: datetime
) -> EndpointView | None:
    endpoint = session.get(Endpoint, endpoint_id)
    return None if endpoint is None else endpoint_view(endpoint, settings, now)


def endpoint_view(endpoint: Any, settings: Settings, now: datetime) -> EndpointView:
    """The view of an endpoint read as an ORM object or as a row with its ENDPOINT_FIELDS."""
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
        rate_limit_per_s=endpoint.rate_limit_per_s,
        active=endpoint.active,
        signing=endpoint.signing,
        ordered=endpoint.ordered,
    )


# What endpoint_view reads.
ENDPOINT_FIELDS = (
    "id",
    "url",
    "secret",
    "previous_secret",
    "previous_secret_expires_at",
    "event_signatures",
    "confirmations",
    "retry_schedule_s",
    "rate_limit_per_s",
    "active",
    "signing",
    "ordered",
)


def work_columns() -> tuple[Any, ...]:
    """The delivery and event columns work_from_row reads, by the names it reads them."""
    return (
        Delivery.id.label("delivery_id"),
        Delivery.attempts,
        Delivery.kind,
        Delivery.created_at,
        Delivery.event_at,
        Delivery.sequence,
        Delivery.origin,
        Event.id.label("event_id"),
        *event_record_columns(),
    )


def load_work(
    session: Session,
    endpoint: EndpointView,
    delivery_ids: Sequence[int],
    settings: Settings,
    bounds: TimeRange | None = None,
) -> list[Work]:
    # Columns, not ORM objects: nothing here changes, and a hundred tasks each holding a hundred
    # Event objects cost a deliver worker CPU and memory for nothing.
    if is_postgres(session):
        rows = _load_pg(session, delivery_ids, bounds)
    else:
        rows = session.execute(
            _load_query(Delivery.id.in_(delivery_ids)).where(
                in_time_range(Delivery, bounds), in_time_range(Event, bounds)
            )
        ).all()
    return [work_from_row(row, endpoint, settings) for row in rows]


def _load_query(named: Any) -> Any:
    """The deliveries `named` with their events, in the order they are to be sent."""
    return (
        select(*work_columns())
        .join(Event, and_(Event.id == Delivery.event_id, Event.event_at == Delivery.event_at))
        .where(named)
        .order_by(Event.chain_id, Event.block_number, Event.log_index, Delivery.id)
    )


# PostgreSQL's statement of load_work by whether it has a time range: compiled once and sent as
# it is, the ids as one array (SQLAlchemy's compiling and caching for every chunk cost the deliver
# worker more CPU than the rows did).
_LOAD_PG: dict[bool, str] = {}


def _load_pg(session: Session, delivery_ids: Sequence[int], bounds: TimeRange | None) -> Any:
    bounded = bounds is not None
    sql = _LOAD_PG.get(bounded)
    if sql is None:
        ids = cast(bindparam("ids", type_=Text), ARRAY(BigInteger))
        query = _load_query(Delivery.id == any_(ids))
        if bounded:
            low: Any = bindparam("low")
            high: Any = bindparam("high")
            query = query.where(Delivery.event_at.between(low, high))
            query = query.where(Event.event_at.between(low, high))
        sql = _LOAD_PG[bounded] = str(query.compile(dialect=session.get_bind().dialect))
    params: dict[str, Any] = {"ids": array_literal(list(delivery_ids))}
    if bounds is not None:
        params["low"], params["high"] = bounds
    return session.connection().exec_driver_sql(sql, params).all()


def work_from_row(row: Any, endpoint: EndpointView, settings: Settings) -> Work:
    """A delivery's signed-to-be body from a row of work_columns()."""
    body = build_body(
        kind=row.kind,
        created_at=row.created_at,
        event_id=row.event_id,
        chain_id=row.chain_id,
        chain_name=settings.chain_name(row.chain_id),
        block_number=row.block_number,
        block_hash=row.block_hash,
        block_timestamp=row.block_timestamp,
        transaction_hash=row.transaction_hash,
        transaction_index=row.transaction_index,
        log_index=row.log_index,
        address=row.address,
        topics=list(row.topics),
        data=row.data,
        confirmations=endpoint.confirmations if row.kind == "event.confirmed" else 0,
        removed=row.kind == "event.removed",
        signatures=endpoint.signatures,
        sequence=row.sequence,
        origin=row.origin,
    )
    return Work(
        row.delivery_id,
        row.attempts,
        webhook_id_for(endpoint.id, row.event_id, row.kind),
        body,
        row.block_timestamp,
        row.created_at,
        row.event_at,
        row.sequence,
    )
