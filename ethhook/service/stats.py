"""Delivery statistics per endpoint, read from the rollups (never from the attempt rows).

At 10 million attempts a query over `delivery_attempts` takes seconds to minutes; the rollups
hold at most one row per endpoint per minute, hour and day, so a week is ~90 rows per endpoint
(bench/RESULTS.md §7).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from ethhook.db.models import (
    LATENCY_BOUNDS_MS,
    LATENCY_COLUMNS,
    ROLLUP_MINUTE_S,
    ROLLUP_PERIODS_S,
    Delivery,
    DeliveryStatus,
    Endpoint,
    delivery_rollups,
    utcnow,
)
from ethhook.service.rows import get_endpoint
from ethhook.service.scope import Scope, scoped

# The rollup columns summed over the window, in the order _endpoint_stats unpacks them.
SUMMED = (
    "attempts",
    "succeeded",
    "client_errors",
    "server_errors",
    "no_response",
    "dead_lettered",
    "duration_ms_total",
    *LATENCY_COLUMNS,
)
NOTHING_SUMMED: tuple[Any, ...] = (0,) * 6 + (0.0,) + (0,) * len(LATENCY_COLUMNS)


@dataclass(frozen=True)
class EndpointStats:
    """One endpoint's attempts since a time, and its deliveries by status now."""

    endpoint_id: int
    attempts: int
    succeeded: int  # attempts answered 2xx: each delivered its delivery
    failed: int  # every other attempt: 4xx, 5xx, no response, a redirect
    client_errors: int
    server_errors: int
    no_response: int  # timed out, or the connection failed
    dead_lettered: int  # deliveries given up (status failed) in the window
    success_rate: float | None  # succeeded / attempts
    latency_p50_ms: float | None  # estimated from the latency buckets
    latency_p95_ms: float | None
    latency_mean_ms: float | None
    # Attempts per latency bucket: up to each of LATENCY_BOUNDS_MS, then above the last.
    latency_buckets: tuple[int, ...]
    # Deliveries waiting, pending and failed now (not limited to the window).
    deliveries: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MinuteCount:
    """One endpoint's attempts in one minute (from its minute rollup row)."""

    start: datetime
    attempts: int
    succeeded: int

    @property
    def failed(self) -> int:
        return self.attempts - self.succeeded


def percentile_from_buckets(
    counts: Sequence[int], bounds: Sequence[float], q: float
) -> float | None:
    """The q-quantile (0 < q ≤ 1) of a histogram, as Prometheus' histogram_quantile estimates it.

    `counts[i]` counts the values in (bounds[i-1], bounds[i]] (from 0 for the first); one more
    count, for the values above the last bound, may follow. The value is interpolated linearly
    inside its bucket; a quantile that falls above the last bound is that bound. None when empty.
    """
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for i, count in enumerate(counts):
        if count and below + count >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = float(bounds[i - 1]) if i else 0.0
            return lower + (float(bounds[i]) - lower) * (rank - below) / count
        below += count
    return float(bounds[-1])  # unreachable: the loop reaches the total


def rollup_ranges(since: datetime, now: datetime) -> list[tuple[int, datetime, datetime | None]]:
    """Which rollup rows cover `since` to `now`: (period_s, first start, end start or open).

    Whole UTC days come from day rows, the whole hours around them from hour rows, the ragged
    ends from minute rows: a week is ~90 rows per endpoint. `since` counts from the start of
    its minute. Empty ranges are left out.
    """
    since, now = _utc(since), _utc(now)  # the rows' periods are UTC minutes, hours and days
    first, end = _floor(since, ROLLUP_MINUTE_S), None
    if first >= now:
        # Nothing happened yet: no coarser period to look for, and none to compute past a
        # `since` at the end of time (9999-12-31T23:59 plus an hour overflows).
        return [(ROLLUP_MINUTE_S, first, None)]
    head: list[tuple[int, datetime, datetime | None]] = []
    tail: list[tuple[int, datetime, datetime | None]] = []
    fine = ROLLUP_PERIODS_S[0]
    for coarse in ROLLUP_PERIODS_S[1:]:
        whole_from = _floor(first + timedelta(seconds=coarse - 1), coarse)
        whole_to = _floor(now, coarse)
        if end is not None:
            whole_to = min(whole_to, end)
        if whole_from >= whole_to:
            break
        head.append((fine, first, whole_from))
        tail.append((fine, whole_to, end))
        fine, first, end = coarse, whole_from, whole_to
    ranges = [*head, (fine, first, end), *reversed(tail)]
    return [r for r in ranges if r[2] is None or r[1] < r[2]]


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is None else t.astimezone(UTC)


def _floor(t: datetime, period_s: int) -> datetime:
    """The start of t's period: its minute, hour or day (every period divides a day)."""
    into = (t.hour * 3600 + t.minute * 60 + t.second) % period_s
    return t - timedelta(seconds=into, microseconds=t.microsecond)


def delivery_stats(
    session: Session,
    since: datetime,
    now: datetime | None = None,
    endpoint_ids: Collection[int] | Select[Any] | None = None,
) -> list[EndpointStats]:
    """Per endpoint with attempts since `since` or open deliveries, ordered by endpoint id.

    `endpoint_ids` limits the answer: ids, or a SELECT of ids (an application's endpoints).
    Two statements: the rollups, and the open deliveries counted from their partial index.
    """
    c = delivery_rollups.c
    query = (
        select(c.endpoint_id, *(func.sum(c[name]) for name in SUMMED))
        .where(or_(*(_in_range(*r) for r in rollup_ranges(since, now or utcnow()))))
        .group_by(c.endpoint_id)
    )
    backlog = (
        select(Delivery.endpoint_id, Delivery.status, func.count())
        .where(Delivery.status.in_(DeliveryStatus.OPEN))
        .group_by(Delivery.endpoint_id, Delivery.status)
    )
    if endpoint_ids is not None:
        query = query.where(c.endpoint_id.in_(endpoint_ids))
        backlog = backlog.where(Delivery.endpoint_id.in_(endpoint_ids))
    sums = {row[0]: row[1:] for row in session.execute(query)}
    open_now: dict[int, dict[str, int]] = {}
    for endpoint_id, status, count in session.execute(backlog):
        open_now.setdefault(endpoint_id, dict.fromkeys(DeliveryStatus.OPEN, 0))[status] = count
    return [
        _endpoint_stats(endpoint_id, sums.get(endpoint_id), open_now.get(endpoint_id))
        for endpoint_id in sorted(sums.keys() | open_now.keys())
    ]


def _in_range(period_s: int, first: datetime, end: datetime | None) -> ColumnElement[bool]:
    c = delivery_rollups.c
    condition = and_(c.period_s == period_s, c.period_start >= first)
    return condition if end is None else and_(condition, c.period_start < end)


def _endpoint_stats(
    endpoint_id: int, sums: Sequence[Any] | None, open_now: dict[str, int] | None
) -> EndpointStats:
    # Unpacked by position (SUMMED's order): this runs per endpoint, and names cost more.
    attempts, succeeded, client_errors, server_errors, no_response, dead_lettered, duration, *b = (
        sums or NOTHING_SUMMED
    )
    buckets = tuple(b)
    return EndpointStats(
        endpoint_id=endpoint_id,
        attempts=attempts,
        succeeded=succeeded,
        failed=attempts - succeeded,
        client_errors=client_errors,
        server_errors=server_errors,
        no_response=no_response,
        dead_lettered=dead_lettered,
        success_rate=succeeded / attempts if attempts else None,
        latency_p50_ms=percentile_from_buckets(buckets, LATENCY_BOUNDS_MS, 0.5),
        latency_p95_ms=percentile_from_buckets(buckets, LATENCY_BOUNDS_MS, 0.95),
        latency_mean_ms=duration / attempts if attempts else None,
        latency_buckets=buckets,
        deliveries=open_now or dict.fromkeys(DeliveryStatus.OPEN, 0),
    )


def deliveries_per_minute(
    session: Session,
    endpoint_id: int,
    *,
    scope: Scope,
    since: datetime,
    now: datetime | None = None,
) -> list[MinuteCount]:
    """One endpoint's attempts in every minute from `since`'s to `now`'s, oldest first; a minute
    without attempts counts 0. One read of at most one minute row per minute."""
    get_endpoint(session, endpoint_id, scope=scope)  # another application's: NotFoundError
    first = since.replace(second=0, microsecond=0)
    last = (now or utcnow()).replace(second=0, microsecond=0)
    c = delivery_rollups.c
    rows = session.execute(
        select(c.period_start, c.attempts, c.succeeded).where(
            c.endpoint_id == endpoint_id,
            c.period_s == ROLLUP_MINUTE_S,
            c.period_start >= first,
            c.period_start <= last,
        )
    )
    found = {row.period_start: (row.attempts, row.succeeded) for row in rows}
    minutes = int((last - first).total_seconds() // ROLLUP_MINUTE_S) + 1
    counts = []
    for i in range(max(0, minutes)):
        start = first + timedelta(minutes=i)
        attempts, succeeded = found.get(start, (0, 0))
        counts.append(MinuteCount(start, attempts, succeeded))
    return counts


def scoped_stats(
    session: Session, since: datetime, *, scope: Scope, now: datetime | None = None
) -> list[EndpointStats]:
    """`delivery_stats` of the scope's endpoints only (the operator's: every endpoint's)."""
    ids = None if scope is None else scoped(select(Endpoint.id), Endpoint.application_id, scope)
    return delivery_stats(session, since, now, endpoint_ids=ids)
