"""A deliver task's start: claim its deliveries, read the endpoint and the first chunk's events.

One statement on PostgreSQL: the claim's UPDATE … RETURNING (workqueue.claim_statement, the one
claim rule) as a writable CTE, joined to the endpoint (on the first row only) and to the events of
the first `chunk` claimed ids (the rest are loaded as the sending reaches them: deliver.backlog).
Three statements on SQLite (the demo's database).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Select,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.arrays import array_literal
from ethhook.db.dialect import is_postgres
from ethhook.db.models import Delivery, Endpoint, Event, event_record_columns
from ethhook.deliver.store.load import (
    ENDPOINT_FIELDS,
    EndpointView,
    Work,
    endpoint_view,
    load_endpoint,
    load_work,
    work_from_row,
)
from ethhook.workqueue import TimeRange, claim, in_time_range
from ethhook.workqueue.lease import claim_statement
from ethhook.workqueue.ordered import Row, claim_ordered


@dataclass(frozen=True)
class ClaimedWork:
    """The ids claimed (sorted; an ordered endpoint's in sequence order), the endpoint (None if
    it is gone), the first chunk's work; for an ordered endpoint, what its claim skipped or found
    pausing it."""

    claimed: list[int]
    endpoint: EndpointView | None = None
    first: list[Work] = field(default_factory=list)
    skipped: list[Row] = field(default_factory=list)
    paused_by: Row | None = None


def claim_and_load(
    session: Session,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    worker_token: str,
    now: datetime,
    settings: Settings,
    chunk: int,
    bounds: TimeRange | None = None,
) -> ClaimedWork:
    """workqueue.claim, then the endpoint and the work of claimed[:chunk] (none for an endpoint
    that is gone or disabled); `bounds`, the message's time range, lets PostgreSQL read only the
    partitions that can hold its rows."""
    lease_s = settings.delivery_lease_s
    if not is_postgres(session):
        claimed = claim(
            session, endpoint_id, delivery_ids, token, worker_token, now, lease_s, bounds
        )
        if not claimed:
            return ClaimedWork([])
        endpoint = load_endpoint(session, endpoint_id, settings, now)
        if endpoint is None or not endpoint.active:
            return ClaimedWork(claimed, endpoint)
        work = load_work(session, endpoint, claimed[:chunk], settings, bounds)
        return ClaimedWork(claimed, endpoint, work)
    params: dict[str, Any] = {
        "w_endpoint": endpoint_id,
        "ids": array_literal(list(delivery_ids)),
        "token": token,
        "worker_token": worker_token,
        "now": now,
        "expires": now + timedelta(seconds=lease_s),
        "chunk": chunk,
    }
    if bounds is not None:
        params["low"], params["high"] = bounds
    rows = session.connection().execute(_query_pg(bounds is not None), params).all()
    if not rows:
        return ClaimedWork([])
    claimed = [row.delivery_id for row in rows]  # in id order (the row number)
    head = rows[0]
    if head.ep_id is None:
        return ClaimedWork(claimed)
    fields = SimpleNamespace(**{name: getattr(head, f"ep_{name}") for name in ENDPOINT_FIELDS})
    endpoint = endpoint_view(fields, settings, now)
    if not endpoint.active:
        return ClaimedWork(claimed, endpoint)
    loaded = [row for row in rows[:chunk] if row.chain_id is not None]
    loaded.sort(key=lambda r: (r.chain_id, r.block_number, r.log_index, r.delivery_id))
    return ClaimedWork(claimed, endpoint, [work_from_row(r, endpoint, settings) for r in loaded])


def claim_ordered_and_load(
    session: Session,
    endpoint_id: int,
    worker_token: str,
    now: datetime,
    settings: Settings,
    chunk: int,
) -> ClaimedWork:
    """An ordered endpoint's claim (workqueue.claim_ordered: its head and the due deliveries
    right after it, at most `chunk`) with the endpoint and their work in sequence order; nothing
    for an endpoint that is gone, disabled or not ordered."""
    endpoint = load_endpoint(session, endpoint_id, settings, now)
    if endpoint is None or endpoint.ordered is None or not endpoint.active:
        return ClaimedWork([], endpoint)
    plan = claim_ordered(
        session, endpoint_id, endpoint.ordered, worker_token, now, settings.delivery_lease_s, chunk
    )
    claimed = [row.id for row in plan.take]
    work: list[Work] = []
    if claimed:
        bounds = (min(r.event_at for r in plan.take), max(r.event_at for r in plan.take))
        position = {delivery_id: n for n, delivery_id in enumerate(claimed)}
        work = sorted(
            load_work(session, endpoint, claimed, settings, bounds),
            key=lambda w: position[w.delivery_id],
        )
    return ClaimedWork(claimed, endpoint, work, plan.skip, plan.paused_by)


# PostgreSQL's claim-and-load by whether the message carries a time range: built once with bound
# parameters and reused, so SQLAlchemy neither builds it nor computes its cache key for every task
# (which cost the deliver worker more CPU than the statement's rows did). Its parameters are named
# unlike any column of deliveries: SQLAlchemy would make one that is a SET of the claim's UPDATE.
_QUERIES_PG: dict[bool, Select[Any]] = {}


def _query_pg(bounded: bool) -> Select[Any]:
    query = _QUERIES_PG.get(bounded)
    if query is None:
        p: Any = bindparam  # the values' stand-ins (typed by what they are compared with)
        bounds = (p("low"), p("high")) if bounded else None
        ids = sql_cast(bindparam("ids", type_=Text), ARRAY(BigInteger))
        query = _QUERIES_PG[bounded] = _query(
            p("w_endpoint"), (), p("token"), p("worker_token"), p("now"), 0.0, p("chunk"),
            bounds, named=Delivery.id == any_(ids), expires=p("expires"),
        )  # fmt: skip
    return query


def _query(
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    worker_token: str,
    now: datetime,
    lease_s: float,
    chunk: int,
    bounds: TimeRange | None,
    named: Any = None,
    expires: Any = None,
) -> Select[Any]:
    claimed = (
        claim_statement(
            endpoint_id,
            delivery_ids,
            token,
            worker_token,
            now,
            lease_s,
            bounds,
            named=named,
            expires=expires,
        )  # fmt: skip
        .returning(
            Delivery.attempts,
            Delivery.kind,
            Delivery.created_at,
            Delivery.event_id,
            Delivery.event_at,
            Delivery.sequence,
            Delivery.origin,
        )
        .cte("claimed")
    )
    ranked = select(claimed, func.row_number().over(order_by=claimed.c.id).label("n")).subquery(
        "ranked"
    )
    events, endpoints = cast(Table, Event.__table__), cast(Table, Endpoint.__table__)
    return (
        select(
            ranked.c.id.label("delivery_id"),
            ranked.c.attempts,
            ranked.c.kind,
            ranked.c.created_at,
            ranked.c.event_id,
            ranked.c.event_at,
            ranked.c.sequence,
            ranked.c.origin,
            *event_record_columns(),
            *(endpoints.c[name].label(f"ep_{name}") for name in ENDPOINT_FIELDS),
        )
        .select_from(
            ranked.outerjoin(
                events,
                and_(
                    events.c.id == ranked.c.event_id,
                    events.c.event_at == ranked.c.event_at,
                    in_time_range(events.c, bounds),
                    ranked.c.n <= chunk,
                ),
            ).outerjoin(endpoints, and_(endpoints.c.id == endpoint_id, ranked.c.n == 1))
        )
        .order_by(ranked.c.n)
    )
