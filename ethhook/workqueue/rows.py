"""Delivery rows: their one shape, and inserting them leased to the messages that will send them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import String, Table, select
from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db.bulk import Parent, insert_ignoring_conflicts
from ethhook.db.dialect import ids_in
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint, Event, Origin
from ethhook.db.partitions import writing
from ethhook.workqueue.lease import DispatchGroup, chunk_groups, groups_of, new_token
from ethhook.workqueue.sequence import number_deliveries

# A delivery is unique on these: a replayed batch or a re-read range inserts nothing twice.
# event_at is its event's, so it adds nothing to the key but the partition it is found in.
DELIVERY_KEY = ("event_id", "endpoint_id", "kind", "event_at")
# A delivery's endpoint must exist. The partitioned table has no foreign key (a partition drop
# must not lock endpoints), so each insert locks its endpoints' rows as the key's check did: an
# endpoint deleted meanwhile (service.endpoints) waits, then deletes these deliveries too.
ENDPOINT = Parent("endpoint_id", cast(Table, Endpoint.__table__), "id")


def delivery_row(
    endpoint_id: int,
    event_id: str,
    kind: str,
    status: str,
    now: datetime,
    *,
    event_at: datetime | None = None,
    next_attempt_at: datetime | None = None,
    release_block: int | None = None,
    release_tag: str | None = None,
    token: str | None = None,
    lease_expires_at: datetime | None = None,
    origin: str = Origin.LIVE,
) -> dict[str, Any]:
    """A new delivery, not yet attempted, as the values of one insert. `event_at` is its
    event's (partition_plan.event_time of the block); without it, insert_deliveries reads it."""
    row = {
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "kind": kind,
        "status": status,
        "attempts": 0,
        "next_attempt_at": next_attempt_at,
        "release_block": release_block,
        "release_tag": release_tag,
        "lease_token": token,
        "lease_expires_at": lease_expires_at,
        "origin": origin,
        "created_at": now,
        "updated_at": now,
    }
    if event_at is not None:
        row["event_at"] = event_at
    return row


class NewLeases:
    """Tokens for rows leased as they are inserted: one per endpoint, all expiring together, so
    the message that follows the commit is the only one that sends them."""

    def __init__(self, now: datetime) -> None:
        self.expires_at = now + timedelta(seconds=get_settings().dispatch_lease_s)
        self._tokens: dict[int, str] = {}

    def token(self, endpoint_id: int) -> str:
        return self._tokens.setdefault(endpoint_id, new_token())

    def leased(self, endpoint_id: int) -> bool:
        """Whether rows of the endpoint were leased (a disabled endpoint's held rows are not)."""
        return endpoint_id in self._tokens

    def groups(
        self, pairs: Iterable[tuple[int, int]], times: dict[int, datetime] | None = None
    ) -> list[DispatchGroup]:
        """(endpoint_id, delivery_id) pairs as deliver tasks, each under its endpoint's token
        (and with its rows' time range when `times` gives each delivery's event_at)."""
        per_task = get_settings().deliveries_per_task
        if times is not None:
            rows = ((e, d, times[d]) for e, d in pairs)
            return groups_of(rows, per_task, self._tokens.__getitem__)
        return [
            DispatchGroup(endpoint_id, ids, self._tokens[endpoint_id])
            for endpoint_id, ids in chunk_groups(pairs, per_task)
        ]


def insert_deliveries(
    session: Session, rows: Sequence[dict[str, Any]], leases: NewLeases
) -> list[DispatchGroup]:
    """Insert the rows (ones that exist already, or whose endpoint is gone, are left out);
    returns the inserted pending ones as groups to enqueue after the commit. Those take their
    endpoints' next sequence numbers, in the order of `rows` (workqueue.sequence)."""
    rows = with_event_times(session, rows)
    returning = ["id", "endpoint_id", "status", "event_at", "event_id", "kind"]
    inserted = writing(
        session,
        (r["event_at"] for r in rows),
        lambda: insert_ignoring_conflicts(
            session, Delivery, rows, DELIVERY_KEY, returning, parent=ENDPOINT
        ),
    )
    order = {(r["endpoint_id"], r["event_id"], r["kind"]): i for i, r in enumerate(rows)}
    pending = sorted(
        (r for r in inserted if r[2] == DeliveryStatus.PENDING),
        key=lambda r: order[(r[1], r[4], r[5])],
    )
    number_deliveries(session, [(d, t, e) for d, e, _, t, _, _ in pending])
    leased = [(e, d) for d, e, *_ in pending if leases.leased(e)]  # not a held backlog's
    return leases.groups(leased, {r[0]: r[3] for r in inserted})


def with_event_times(session: Session, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows, each with its event's event_at (read from the events for rows without one)."""
    missing = sorted({r["event_id"] for r in rows if "event_at" not in r})
    if not missing:
        return list(rows)
    found = dict(
        session.execute(
            select(Event.id, Event.event_at).where(ids_in(Event.id, missing, session, String))
        ).all()
    )
    return [r if "event_at" in r else {**r, "event_at": found[r["event_id"]]} for r in rows]
