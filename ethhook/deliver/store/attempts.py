"""Recording a deliver task's attempts: attempt rows, the deliveries' new states, the endpoint's
failing_since and rollups; disabling an endpoint."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from ethhook import metrics
from ethhook.db.dialect import is_postgres
from ethhook.db.models import Delivery, DeliveryAttempt, DeliveryStatus, Endpoint
from ethhook.deliver import http
from ethhook.deliver.protect.retry import next_state
from ethhook.deliver.store.load import EndpointView, Work
from ethhook.deliver.store.record_pg import (
    ATTEMPT_COLUMNS,
    TIME_COLUMN,
    NewState,
    record_in_one_statement,
)
from ethhook.deliver.store.rollup import AttemptFacts, rollup_rows, upsert_rollups
from ethhook.redact import redact_in
from ethhook.workqueue import DisableTrigger, disable_endpoints

log = logging.getLogger(__name__)

ERROR_CHARS = 500  # delivery_attempts.error and deliveries.last_error


@dataclass(frozen=True)
class Result:
    """One attempt: the work sent, when, and what came of it."""

    work: Work
    started_at: datetime
    outcome: http.HttpOutcome


def record(
    session: Session,
    endpoint: EndpointView,
    results: Sequence[Result],
    worker_token: str,
    now: datetime,
) -> None:
    """Write the attempt rows and each delivery's new state; schedule retries in the database;
    clear or start the endpoint's failing_since; add the attempts to its rollups.

    One statement on PostgreSQL (record_pg); on SQLite (the demo) one statement per table, the
    deliveries updated together when their new state is the same (every success of a message).
    """
    if not results:
        return
    attempts, states, facts = [], [], []
    for r in results:
        rows = _rows_total(endpoint, r, now)
        if rows.facts.dead_lettered:
            metrics.record_dead_lettered()
        attempts.append(rows.attempt)
        states.append(rows.state)
        facts.append(rows.facts)
    any_ok = any(state.status == DeliveryStatus.SUCCEEDED for state in states)
    rollups = rollup_rows(endpoint.id, facts)
    times = _event_times(session, results)
    if is_postgres(session):
        record_in_one_statement(
            session, endpoint.id, attempts, states, times, rollups, any_ok, worker_token, now
        )
        return
    _insert_attempts(session, attempts, times)
    _update_states(session, states, worker_token, now)
    failing = Endpoint.failing_since
    session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint.id, failing.is_not(None) if any_ok else failing.is_(None))
        .values(failing_since=None if any_ok else now)
    )
    upsert_rollups(session, rollups)


def _event_times(session: Session, results: Sequence[Result]) -> list[datetime]:
    """Each attempt's delivery's event_at (its partition key): from its work, or from the
    delivery's row for work made without it (by hand, in tests)."""
    missing = [r.work.delivery_id for r in results if r.work.event_at is None]
    found: dict[int, datetime] = {}
    if missing:
        query = select(Delivery.id, Delivery.event_at).where(Delivery.id.in_(missing))
        found = {delivery_id: event_at for delivery_id, event_at in session.execute(query)}
    return [r.work.event_at or found[r.work.delivery_id] for r in results]


class AttemptRows(NamedTuple):
    """What one attempt writes: its row (ATTEMPT_COLUMNS), its delivery's new state, and what
    the rollups keep of it."""

    attempt: tuple[Any, ...]
    state: NewState
    facts: AttemptFacts


def _rows_total(endpoint: EndpointView, result: Result, now: datetime) -> AttemptRows:
    """The rows of one attempt, whatever its answer: one the rows cannot be made of is recorded
    as a failed attempt saying why, so it cannot take the rest of its flush down with it (the
    flush would be lost and its deliveries sent again at every lease expiry, never failed)."""
    try:
        return _rows(endpoint, result, now)
    except Exception as exc:  # noqa: BLE001 (recorded as the attempt's error, and logged)
        log.error(
            "deliver.answer.invalid endpoint=%s delivery=%s error=%s",
            endpoint.id,
            result.work.delivery_id,
            redact_in(repr(exc), endpoint.url),
        )
        return _rows(endpoint, _invalid_answer(result, exc), now)


def _invalid_answer(result: Result, exc: Exception) -> Result:
    outcome = result.outcome
    status = outcome.status_code
    return Result(
        result.work,
        result.started_at,
        http.HttpOutcome(
            status if isinstance(status, int) and 100 <= status <= 999 else None,
            outcome.duration_ms if isinstance(outcome.duration_ms, int | float) else 0.0,
            error=f"invalid answer: {type(exc).__name__}: {exc}",
        ),
    )


def _rows(endpoint: EndpointView, result: Result, now: datetime) -> AttemptRows:
    outcome = result.outcome
    number = result.work.attempts + 1
    status, next_at = next_state(outcome, number, endpoint.retry_schedule_s, now)
    dead = status == DeliveryStatus.FAILED
    error = _text(outcome.error, ERROR_CHARS) or None
    last_error = _text(outcome.error or _status_error(outcome), ERROR_CHARS) or None
    return AttemptRows(
        (result.work.delivery_id, number, result.started_at, round(outcome.duration_ms, 3),
         outcome.status_code, error, _text(outcome.body, http.STORED_BODY_BYTES)),
        NewState(result.work.delivery_id, status, number, next_at, outcome.status_code, last_error),
        AttemptFacts(result.started_at, outcome.duration_ms, outcome.status_code, dead),
    )  # fmt: skip


def _text(value: str | None, limit: int) -> str | None:
    """A receiver's text as PostgreSQL stores it: NUL, which a text column refuses (failing the
    whole flush's statement), becomes U+FFFD as undecodable bytes do; at most `limit` characters."""
    return None if value is None else value.replace("\x00", "\ufffd")[:limit]


def _insert_attempts(
    session: Session, attempts: Sequence[Sequence[Any]], times: Sequence[datetime]
) -> None:
    # RETURNING makes SQLAlchemy send one multi-VALUES insert, not one INSERT per row.
    session.execute(
        insert(DeliveryAttempt).returning(DeliveryAttempt.id),
        [
            {**dict(zip(ATTEMPT_COLUMNS, row, strict=True)), TIME_COLUMN: t}
            for row, t in zip(attempts, times, strict=True)
        ],
    ).all()


def _update_states(
    session: Session, states: Sequence[NewState], worker_token: str, now: datetime
) -> None:
    same_state: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    for s in states:
        same_state[s[1:]].append(s.delivery_id)
    table = cast(Table, Delivery.__table__)
    for (status, attempts, next_at, status_code, last_error), ids in same_state.items():
        session.execute(
            update(table)
            .where(table.c.id.in_(ids), table.c.lease_token == worker_token)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_at,
                last_status_code=status_code,
                last_error=last_error,
                lease_token=None,
                lease_expires_at=None,
                updated_at=now,
            )
        )


def _status_error(outcome: http.HttpOutcome) -> str:
    if outcome.ok or outcome.status_code is None:
        return ""
    return f"HTTP {outcome.status_code}"


def disable_endpoint(session: Session, endpoint_id: int, reason: str, now: datetime) -> None:
    """The endpoint asked to be disabled (410 Gone): its backlog is kept, its application told."""
    disable_endpoints(session, [endpoint_id], reason, now, DisableTrigger.AUTOMATIC)
