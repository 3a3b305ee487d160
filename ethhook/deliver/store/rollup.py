"""Per-minute, hour and day delivery rollups: what a flush of attempts adds, and the one upsert."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from ethhook.db.arrays import array_literal
from ethhook.db.dialect import POSTGRES, insert, is_postgres
from ethhook.db.models import (
    LATENCY_COLUMNS,
    ROLLUP_COUNTS,
    ROLLUP_DAY_S,
    ROLLUP_HOUR_S,
    ROLLUP_MINUTE_S,
    delivery_rollups,
    latency_column,
)

KEY = ("endpoint_id", "period_s", "period_start")
ADDED = (*ROLLUP_COUNTS, "duration_ms_total", *LATENCY_COLUMNS)
COLUMNS = (*KEY, *ADDED)


class AttemptFacts(NamedTuple):
    """What the rollups keep of one attempt."""

    started_at: datetime
    duration_ms: float
    status_code: int | None
    dead_lettered: bool  # the delivery was given up after this attempt


def rollup_rows(endpoint_id: int, attempts: Iterable[AttemptFacts]) -> list[dict[str, Any]]:
    """One row per (period, start) the attempts fall in: their minute, hour and day rows."""
    minutes: dict[datetime, dict[str, Any]] = {}
    for a in attempts:
        start = a.started_at.replace(second=0, microsecond=0)
        row = minutes.get(start)
        if row is None:
            row = minutes[start] = _row(endpoint_id, ROLLUP_MINUTE_S, start)
        _add(row, a)
    hours = _coarser(endpoint_id, ROLLUP_HOUR_S, minutes, lambda t: t.replace(minute=0))
    days = _coarser(endpoint_id, ROLLUP_DAY_S, hours, lambda t: t.replace(hour=0))
    return [*minutes.values(), *hours.values(), *days.values()]


def _coarser(
    endpoint_id: int,
    period_s: int,
    finer: dict[datetime, dict[str, Any]],
    start_of: Callable[[datetime], datetime],
) -> dict[datetime, dict[str, Any]]:
    """The finer rows added up into rows of `period_s` (each finer row lies in one of them)."""
    rows: dict[datetime, dict[str, Any]] = {}
    for start, fine in finer.items():
        coarse = start_of(start)
        row = rows.get(coarse)
        if row is None:
            row = rows[coarse] = _row(endpoint_id, period_s, coarse)
        for name in ADDED:
            row[name] += fine[name]
    return rows


def _row(endpoint_id: int, period_s: int, start: datetime) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ADDED, 0)
    row.update(endpoint_id=endpoint_id, period_s=period_s, period_start=start)
    return row


def _add(row: dict[str, Any], a: AttemptFacts) -> None:
    row["attempts"] += 1
    code = a.status_code
    if code is None:
        row["no_response"] += 1
    elif 200 <= code < 300:
        row["succeeded"] += 1
    elif 400 <= code < 500:
        row["client_errors"] += 1
    elif 500 <= code < 600:
        row["server_errors"] += 1
    row["dead_lettered"] += a.dead_lettered
    row["duration_ms_total"] += a.duration_ms
    row[latency_column(a.duration_ms)] += 1


def upsert_rollups(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Add `rows` to the stored rollups: one INSERT … ON CONFLICT DO UPDATE for them all.

    On PostgreSQL the statement's text is fixed (the rows travel as one array per column, as in
    db/bulk.py): nothing to compile per flush, one round trip. The rows' keys are distinct
    (rollup_rows), as one statement may not update a row twice.
    """
    if not rows:
        return
    if is_postgres(session):
        session.execute(_UNNEST_UPSERT, rollup_arrays(rows))
    else:
        session.execute(_upsert(session), list(rows))  # the demo's database


def rollup_arrays(rows: Sequence[dict[str, Any]]) -> dict[str, str | list[Any]]:
    """The parameters of unnest_upsert_sql(): one array per column, named after it."""
    return {name: array_literal([row[name] for row in rows]) for name in COLUMNS}


def unnest_upsert_sql() -> str:
    """PostgreSQL's upsert of rollup rows sent as arrays (rollup_arrays), as text that another
    statement may end with."""
    c = delivery_rollups.c
    arrays = ", ".join(f"CAST(:{name} AS {c[name].type.compile(POSTGRES)}[])" for name in COLUMNS)
    added = ", ".join(f"{name} = delivery_rollups.{name} + excluded.{name}" for name in ADDED)
    return (
        f"INSERT INTO delivery_rollups ({', '.join(COLUMNS)}) SELECT * FROM unnest({arrays})"
        f" ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {added}"
    )


_UNNEST_UPSERT: TextClause = text(unnest_upsert_sql())


def _upsert(session: Session) -> Insert:
    """The upsert of rollup rows as SQLAlchemy writes it for the session's database."""
    statement = insert(delivery_rollups, session)
    table, new = delivery_rollups.c, statement.excluded
    return statement.on_conflict_do_update(
        index_elements=KEY, set_={name: table[name] + new[name] for name in ADDED}
    )
