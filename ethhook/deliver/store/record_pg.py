"""record() on PostgreSQL: a flush's attempts, the deliveries' new states, the endpoint's
failing_since and the rollups in ONE statement (writable CTEs over arrays, as in db/bulk.py).

The text is fixed, so nothing is compiled per flush, and a flush is one round trip instead of four
or more (one UPDATE per distinct new state before). The attempt rows are written even for a
delivery whose claim was lost (the attempt happened); its state only under the worker's claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, TextClause, text
from sqlalchemy.orm import Session

from ethhook.db.bulk import arrays_of, unnest_of
from ethhook.db.dialect import POSTGRES
from ethhook.db.models import Delivery, DeliveryAttempt
from ethhook.deliver.store.rollup import rollup_arrays, unnest_upsert_sql

ATTEMPT_COLUMNS = (
    "delivery_id",
    "attempt_number",
    "started_at",
    "duration_ms",
    "status_code",
    "error",
    "response_body",
)
STATE_COLUMNS = ("id", "status", "attempts", "next_attempt_at", "last_status_code", "last_error")
# Each attempt's and each state's delivery's partition key, beside ATTEMPT_COLUMNS and
# STATE_COLUMNS.
TIME_COLUMN = "event_at"


class NewState(NamedTuple):
    """A delivery's row after one attempt (STATE_COLUMNS)."""

    delivery_id: int
    status: str
    attempts: int
    next_attempt_at: datetime | None
    status_code: int | None
    last_error: str | None


_ATTEMPTS = cast(Table, DeliveryAttempt.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)


def _record_sql() -> TextClause:
    # No indexed column is set but status and next_attempt_at (when they change): the update of
    # a retry that keeps both, and every claim and lease, can be HOT.
    states = ", ".join(f"{name} = v.{name}" for name in STATE_COLUMNS[1:])
    attempt_columns = (*ATTEMPT_COLUMNS, TIME_COLUMN)
    state_columns = (*STATE_COLUMNS, TIME_COLUMN)
    return text(
        f"WITH new_attempts AS (INSERT INTO delivery_attempts ({', '.join(attempt_columns)})"
        f" SELECT * FROM {unnest_of(_ATTEMPTS, attempt_columns, POSTGRES, 'a')}),"
        f" moved AS (UPDATE deliveries SET {states}, lease_token = NULL,"
        " lease_expires_at = NULL, updated_at = :w_now"
        f" FROM {unnest_of(_DELIVERIES, state_columns, POSTGRES, 'd')}"
        f" AS v({', '.join(state_columns)})"
        " WHERE deliveries.id = v.id AND deliveries.event_at = v.event_at"
        # The flush's time range as constants: PostgreSQL plans for those partitions only.
        " AND deliveries.event_at BETWEEN :w_low AND :w_high"
        " AND deliveries.lease_token = :w_token),"
        # Auto-disable looks at how long every attempt has been failing.
        " failing AS (UPDATE endpoints SET updated_at = :w_now, failing_since = CASE"
        " WHEN CAST(:w_any_ok AS BOOLEAN) THEN NULL ELSE CAST(:w_now AS TIMESTAMP WITH TIME ZONE)"
        " END WHERE id = :w_endpoint"
        " AND (failing_since IS NOT NULL) = CAST(:w_any_ok AS BOOLEAN))"
        f" {unnest_upsert_sql()}"
    )


RECORD = _record_sql()


def record_in_one_statement(
    session: Session,
    endpoint_id: int,
    attempts: Sequence[Sequence[Any]],
    states: Sequence[NewState],
    times: Sequence[datetime],
    rollups: Sequence[dict[str, Any]],
    any_ok: bool,
    worker_token: str,
    now: datetime,
) -> None:
    """`attempts`: one row per attempt (ATTEMPT_COLUMNS); `states` its delivery's new state;
    `times` its delivery's event_at; `rollups`: rollup.rollup_rows."""
    attempt_columns = (*ATTEMPT_COLUMNS, TIME_COLUMN)
    state_columns = (*STATE_COLUMNS, TIME_COLUMN)
    attempt_rows = [(*row, t) for row, t in zip(attempts, times, strict=True)]
    state_rows = [(*row, t) for row, t in zip(states, times, strict=True)]
    params: dict[str, Any] = {
        **arrays_of(
            _ATTEMPTS, attempt_columns, list(zip(*attempt_rows, strict=True)), POSTGRES, "a"
        ),
        **arrays_of(_DELIVERIES, state_columns, list(zip(*state_rows, strict=True)), POSTGRES, "d"),
        **rollup_arrays(rollups),
        "w_now": now,
        "w_low": min(times),
        "w_high": max(times),
        "w_token": worker_token,
        "w_endpoint": endpoint_id,
        "w_any_ok": any_ok,
    }
    session.connection().execute(RECORD, params)
