"""Per-minute and per-hour delivery rollups: what a flush of attempts adds, and the one upsert."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from ethhook.db.models import (
    LATENCY_COLUMNS,
    ROLLUP_COUNTS,
    ROLLUP_HOUR_S,
    ROLLUP_MINUTE_S,
    delivery_rollups,
    latency_column,
)

KEY = ("endpoint_id", "period_s", "period_start")
ADDED = (*ROLLUP_COUNTS, "duration_ms_total", *LATENCY_COLUMNS)


class AttemptFacts(NamedTuple):
    """What the rollups keep of one attempt."""

    started_at: datetime
    duration_ms: float
    status_code: int | None
    dead_lettered: bool  # the delivery was given up after this attempt


def rollup_rows(endpoint_id: int, attempts: Iterable[AttemptFacts]) -> list[dict[str, Any]]:
    """One row per (period, start) the attempts fall in: their minute rows and their hour rows."""
    rows: dict[tuple[int, datetime], dict[str, Any]] = {}
    for a in attempts:
        minute = a.started_at.replace(second=0, microsecond=0)
        for period_s, start in (
            (ROLLUP_MINUTE_S, minute),
            (ROLLUP_HOUR_S, minute.replace(minute=0)),
        ):
            row = rows.get((period_s, start))
            if row is None:
                row = rows[(period_s, start)] = dict.fromkeys(ADDED, 0)
                row.update(endpoint_id=endpoint_id, period_s=period_s, period_start=start)
            _add(row, a)
    return list(rows.values())


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

    The rows' keys are distinct (rollup_rows), as one statement may not update a row twice.
    """
    if rows:
        session.execute(_upsert(session.get_bind().dialect.name).values(list(rows)))


@functools.cache
def _upsert(dialect_name: str) -> Insert:
    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = dialect_insert(delivery_rollups)
    table, new = delivery_rollups.c, statement.excluded
    return statement.on_conflict_do_update(
        index_elements=KEY, set_={name: table[name] + new[name] for name in ADDED}
    )
