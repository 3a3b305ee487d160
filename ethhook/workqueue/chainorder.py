"""An ordered endpoint's webhooks numbered in the chain's order, however the matcher's tasks run.

Several match tasks of one chain run side by side, so a later batch of blocks may be matched, and
its deliveries made, before an earlier one. An `--ordered` endpoint sends in sequence order, so
its numbers must follow the chain's order: the matcher makes its deliveries *held* (`waiting`,
release tag CHAIN_ORDER, no release block) and numbers none of them. They are released (made
due, numbered, leased to a message) in block and log order once no stored event of their chain
before them is still unmatched: an earlier batch still being matched holds the later one's, and
whichever transaction finds the earlier ones matched releases both.

Releases of one chain take turns (a transaction-scoped advisory lock on PostgreSQL; SQLite has
one writer at a time), each after its own events are marked matched, so the second of two
concurrent matchers sees the first one's commit. A matcher whose batch made nothing held and who
sees none (another's not yet committed) takes no lock; beat's due scan releases what such a race
left, within a second (`maintenance.tasks.dispatch_due`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, text, tuple_, update
from sqlalchemy.orm import Session

from ethhook.db.dialect import is_postgres
from ethhook.db.models import (
    CHAIN_ORDER,
    HELD_DELIVERY,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventKind,
)
from ethhook.workqueue.lease import DispatchGroup, in_time_range, time_range
from ethhook.workqueue.rows import NewLeases, delivery_row
from ethhook.workqueue.sequence import Numbered, number_deliveries

# The first advisory-lock key of releases (the second is the chain id): "ORDC".
_LOCK_CLASS = 0x4F524443

# Of one event, the kinds in the order an endpoint hears them.
_KIND_ORDER = {EventKind.INSTANT: 0, EventKind.CONFIRMED: 1, EventKind.REMOVED: 2}


def _place(block_number: int, log_index: int, kind: str) -> tuple[int, int, int]:
    """Where a delivery of the chain goes in its endpoint's sequence."""
    return block_number, log_index, _KIND_ORDER.get(kind, len(_KIND_ORDER))


# Whether anything is held, as every match task asks it: sent as it is (SQLAlchemy's building and
# caching of a statement cost the matcher more CPU than PostgreSQL's answer from the empty index).
_ANY_HELD = f"SELECT 1 FROM deliveries WHERE {HELD_DELIVERY.text} LIMIT 1"


def held_row(
    endpoint_id: int, event_id: str, kind: str, now: datetime, event_at: datetime
) -> dict[str, Any]:
    """A new delivery held for its chain's order: no number, no lease, until release_held."""
    return delivery_row(
        endpoint_id,
        event_id,
        kind,
        DeliveryStatus.WAITING,
        now,
        event_at=event_at,
        release_tag=CHAIN_ORDER,
    )


def held(model: Any = Delivery) -> Any:
    """The delivery is held for its chain's order (db.history.HELD_DELIVERY)."""
    return and_(model.status == DeliveryStatus.WAITING, model.release_tag == CHAIN_ORDER)


def release_held(
    session: Session, now: datetime, chains: Iterable[int], own: bool = False
) -> list[DispatchGroup]:
    """Release, in the caller's transaction, the held deliveries of `chains` that no unmatched
    stored event precedes; returns the deliver tasks to enqueue after the commit. `own`: the
    caller made held deliveries itself (it then releases under the lock even if it sees none of
    another's). Give one chain per transaction where several may be held (beat): a chain's lock
    is then never held while waiting for another's."""
    wanted = sorted(set(chains))
    if not wanted:
        return []
    if not own and session.connection().exec_driver_sql(_ANY_HELD).first() is None:
        return []  # nothing held anywhere (the partial index alone): the common case
    leases = NewLeases(now)
    released: list[tuple[int, int, datetime]] = []
    for chain_id in wanted:
        if is_postgres(session):
            session.execute(
                text("SELECT pg_advisory_xact_lock(:cls, :chain)"),
                {"cls": _LOCK_CLASS, "chain": chain_id},
            )
        released += _release_chain(session, chain_id, now, leases)
    if not released:
        return []
    return leases.groups(((e, d) for e, d, _ in released), {d: t for _, d, t in released})


def held_chains(session: Session) -> list[int]:
    """The chains that have held deliveries (beat releases each in a transaction of its own)."""
    found = session.scalars(
        select(Event.chain_id)
        .join(Delivery, and_(Event.id == Delivery.event_id, Event.event_at == Delivery.event_at))
        .where(held())
        .distinct()
    )
    return sorted(found)


def in_chain_order(session: Session, rows: Sequence[Numbered]) -> list[Numbered]:
    """Deliveries to number, (id, event_at, endpoint_id), in their events' order (chain, block,
    log), an event's kinds in the order an endpoint hears them."""
    if not rows:
        return []
    found = session.execute(
        select(Delivery.id, Delivery.kind, Event.chain_id, Event.block_number, Event.log_index)
        .join(Event, and_(Event.id == Delivery.event_id, Event.event_at == Delivery.event_at))
        .where(
            Delivery.id.in_([r[0] for r in rows]),
            in_time_range(Delivery, time_range(r[1] for r in rows)),
        )
    ).all()
    place = {r.id: (r.chain_id, *_place(r.block_number, r.log_index, r.kind)) for r in found}
    return sorted(rows, key=lambda r: (place.get(r[0], (-1, -1, -1, -1)), r[0]))


def _held_rows(chain_id: int) -> Any:
    return (
        select(
            Delivery.id,
            Delivery.event_at,
            Delivery.endpoint_id,
            Delivery.kind,
            Event.block_number,
            Event.log_index,
            Endpoint.active,
        )
        .join(Event, and_(Event.id == Delivery.event_id, Event.event_at == Delivery.event_at))
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(held(), Event.chain_id == chain_id)
    )


def _release_chain(
    session: Session, chain_id: int, now: datetime, leases: NewLeases
) -> list[tuple[int, int, datetime]]:
    """Make due, lease and number (in block and log order) the chain's held deliveries before its
    first unmatched event; returns (endpoint_id, delivery_id, event_at) of those leased (a
    disabled endpoint's join its held backlog instead: workqueue.backlog)."""
    barrier = session.execute(
        select(Event.block_number, Event.log_index)
        .where(Event.chain_id == chain_id, Event.matched_at.is_(None))
        .order_by(Event.block_number, Event.log_index)
        .limit(1)
    ).first()
    query = _held_rows(chain_id)
    if barrier is not None:
        query = query.where(tuple_(Event.block_number, Event.log_index) < tuple(barrier))
    rows = sorted(
        session.execute(query).all(),
        key=lambda r: (_place(r.block_number, r.log_index, r.kind), r.id),
    )
    made_due: set[int] = set()
    for endpoint_id in sorted({r.endpoint_id for r in rows}):
        mine = [r for r in rows if r.endpoint_id == endpoint_id]
        due: dict[str, Any] = {
            "next_attempt_at": None,
            "lease_token": None,
            "lease_expires_at": None,
        }
        if mine[0].active:
            due = {
                "next_attempt_at": now,
                "lease_token": leases.token(endpoint_id),
                "lease_expires_at": leases.expires_at,
            }
        # Only what is still held: a reorg's restore or a discard may have changed a row since.
        made_due.update(
            session.scalars(
                update(Delivery)
                .where(
                    Delivery.id.in_([r.id for r in mine]),
                    in_time_range(Delivery, time_range(r.event_at for r in mine)),
                    held(),
                )
                .values(status=DeliveryStatus.PENDING, release_tag=None, updated_at=now, **due)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
        )
    released = [r for r in rows if r.id in made_due]
    number_deliveries(session, [(r.id, r.event_at, r.endpoint_id) for r in released])
    return [(r.endpoint_id, r.id, r.event_at) for r in released if r.active]
