"""Per-endpoint sequence numbers: a delivery takes the next number of its endpoint's counter in the
transaction that makes it due to send, so the numbers an endpoint receives have no gap and no
repeat, whatever rolls back.

The counter is `endpoints.last_sequence`, raised by the number of deliveries in one UPDATE: a
transaction that rolls back gives its numbers back with it, and two transactions numbering
deliveries of one endpoint take turns on its row (locked in id order, so two batches naming
the same endpoints never wait for each other in a cycle). A delivery keeps its number for every
retry and replay. A confirmed delivery waiting for its confirmations takes one only when it is
released: one cancelled by a reorg before then never had one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, text, update
from sqlalchemy.orm import Session

from ethhook.db.bulk import arrays_of
from ethhook.db.dialect import is_postgres
from ethhook.db.models import Delivery, Endpoint

# (delivery id, its event_at, its endpoint id), in the order the numbers are to follow.
Numbered = tuple[int, datetime, int]

# One statement: lock the endpoints in id order, raise each counter by its deliveries, number
# the deliveries from the counter's old value. The deliveries were inserted by an earlier
# statement of the transaction (a statement's own inserts are not visible to it).
_NUMBER_SQL = """
WITH wanted AS (
    SELECT u.endpoint_id, count(*) AS n FROM unnest(CAST(:eps AS INTEGER[])) AS u(endpoint_id)
    GROUP BY u.endpoint_id
), locked AS MATERIALIZED (
    SELECT e.id FROM endpoints e WHERE e.id IN (SELECT endpoint_id FROM wanted)
    ORDER BY e.id FOR NO KEY UPDATE
), bumped AS (
    UPDATE endpoints e SET last_sequence = e.last_sequence + w.n
    FROM wanted w WHERE e.id = w.endpoint_id AND e.id IN (SELECT id FROM locked)
    RETURNING e.id, e.last_sequence - w.n AS base
)
UPDATE deliveries d SET sequence = b.base + u.rank
FROM {rows} AS u(id, event_at, endpoint_id, rank)
JOIN bumped b ON b.id = u.endpoint_id
WHERE d.id = u.id AND d.event_at = u.event_at
"""


def number_deliveries(session: Session, rows: Sequence[Numbered]) -> dict[int, int]:
    """Give each delivery the next number of its endpoint's counter, in the order of `rows`, in
    the caller's transaction; returns each delivery's number."""
    if not rows:
        return {}
    ranks: list[int] = []
    seen: dict[int, int] = {}
    for _, _, endpoint_id in rows:
        seen[endpoint_id] = seen.get(endpoint_id, 0) + 1
        ranks.append(seen[endpoint_id])
    if is_postgres(session):
        return _number_pg(session, rows, ranks)
    return _number_portable(session, rows, ranks, seen)


def _number_pg(session: Session, rows: Sequence[Numbered], ranks: list[int]) -> dict[int, int]:
    dialect = session.get_bind().dialect
    table = cast(Table, Delivery.__table__)
    names = ("id", "event_at", "endpoint_id", "sequence")
    columns = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], ranks)
    params = arrays_of(table, names, columns, dialect, prefix="r")
    arrays = ", ".join(
        f"CAST(:r{i} AS {table.c[name].type.compile(dialect)}[])" for i, name in enumerate(names)
    )
    params["eps"] = params["r2"]
    sql = _NUMBER_SQL.format(rows=f"unnest({arrays})") + " RETURNING d.id, d.sequence"
    return {int(i): int(s) for i, s in session.execute(text(sql), params)}


def _number_portable(
    session: Session, rows: Sequence[Numbered], ranks: list[int], counts: dict[int, int]
) -> dict[int, int]:
    """SQLite (one writer at a time): read the counters, raise them, number the rows."""
    base: dict[int, int] = {}
    for endpoint_id in sorted(counts):
        last = session.scalar(select(Endpoint.last_sequence).where(Endpoint.id == endpoint_id))
        base[endpoint_id] = int(last or 0)
        session.execute(
            update(Endpoint)
            .where(Endpoint.id == endpoint_id)
            .values(
                last_sequence=base[endpoint_id] + counts[endpoint_id],
                updated_at=Endpoint.updated_at,  # a counter, not a change of its settings
            )
            .execution_options(synchronize_session=False)
        )
    numbers = {
        delivery_id: base[endpoint_id] + rank
        for (delivery_id, _, endpoint_id), rank in zip(rows, ranks, strict=True)
    }
    for delivery_id, number in numbers.items():
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(sequence=number)
            .execution_options(synchronize_session=False)
        )
    return numbers
