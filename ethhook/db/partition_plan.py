"""The history tables' time partitions as arithmetic, without a database: an event's time (the
partition key), the interval a time falls in, partition names and ranges, the range to create
for a time, and which partitions are past retention.

`events`, `deliveries` and `delivery_attempts` are partitioned by `event_at`, the block time of
the event a row is about: a re-read range, a replay a month later and every retry compute the
same value, so a row's unique key (which includes it) finds the same row, in the same partition.
Intervals are counted from the Unix epoch in UTC, so every process cuts time the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HISTORY_TABLES = ("events", "deliveries", "delivery_attempts")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A node's absurd block timestamp is stored as this (Python's datetimes end with the year 9999,
# and a partition around it must still have an end).
LATEST_EVENT_AT = datetime(9999, 1, 1, tzinfo=UTC)
_LATEST_S = int((LATEST_EVENT_AT - EPOCH).total_seconds())
# A partition that existed before partitioning (migration 0012): every older row, up to the
# upgrade's cutover.
LEGACY_SUFFIX = "legacy"
_NAME = re.compile(
    rf"(?P<table>{'|'.join(HISTORY_TABLES)})_(?:p(?P<day>[0-9]{{8}})(?:t(?P<hm>[0-9]{{4}}))?"
    rf"|{LEGACY_SUFFIX})"
)


def event_time(block_timestamp: int) -> datetime:
    """The partition key of an event, and of its deliveries and attempts: its block's time."""
    return EPOCH + timedelta(seconds=min(max(int(block_timestamp), 0), _LATEST_S))


@dataclass(frozen=True, order=True)
class Span:
    """A partition's range of event times, [start, end); None is unbounded (MINVALUE/MAXVALUE)."""

    start: datetime | None
    end: datetime | None

    def covers(self, t: datetime) -> bool:
        return (self.start is None or self.start <= t) and (self.end is None or t < self.end)

    def overlaps(self, other: Span) -> bool:
        below = other.end is not None and self.start is not None and other.end <= self.start
        above = self.end is not None and other.start is not None and self.end <= other.start
        return not (below or above)


def interval_start(t: datetime, interval_s: int) -> datetime:
    """The start of the interval `t` falls in, counting intervals from the epoch."""
    seconds = int((t - EPOCH).total_seconds() // interval_s) * interval_s
    return EPOCH + timedelta(seconds=seconds)


def aligned_span(t: datetime, interval_s: int) -> Span:
    start = interval_start(t, interval_s)
    return Span(start, start + timedelta(seconds=interval_s))


def partition_name(table: str, span: Span) -> str:
    """`events_p20261207` (a span starting at midnight), `events_p20261207t1205` otherwise,
    `events_legacy` for the span that starts at MINVALUE."""
    if span.start is None:
        return f"{table}_{LEGACY_SUFFIX}"
    start = span.start.astimezone(UTC)
    if (start.hour, start.minute) == (0, 0):
        return f"{table}_p{start:%Y%m%d}"
    return f"{table}_p{start:%Y%m%d}t{start:%H%M}"


def is_partition_name(name: str) -> bool:
    """Whether `name` is one partition_name makes (a leftover of an interrupted drop may be one)."""
    return _NAME.fullmatch(name) is not None


def table_of(name: str) -> str | None:
    match = _NAME.fullmatch(name)
    return match["table"] if match else None


def span_to_create(t: datetime, interval_s: int, existing: Iterable[Span]) -> Span | None:
    """The range a new partition for `t` covers: `t`'s interval, cut where it meets existing
    partitions (made with another interval, or the legacy one); None when one covers `t`."""
    wanted = aligned_span(t, interval_s)
    start, end = wanted.start, wanted.end
    assert start is not None and end is not None
    for span in existing:
        if span.covers(t):
            return None
        if span.end is not None and span.end <= t:
            start = max(start, span.end)
        elif span.start is not None and span.start > t:
            end = min(end, span.start)
    return Span(start, end)


def times_ahead(now: datetime, interval_s: int, behind: int = 1, ahead: int = 3) -> list[datetime]:
    """One time in each interval from `behind` intervals before now's to `ahead` after it: the
    partitions `db upgrade` and beat make before any row needs them."""
    start = interval_start(now, interval_s)
    step = timedelta(seconds=interval_s)
    return [start + step * i for i in range(-behind, ahead + 1)]


def retention_cutoff(now: datetime, retention_days: float) -> datetime:
    return now - timedelta(days=retention_days)


def past_retention(span: Span, cutoff: datetime) -> bool:
    """Every event time the span can hold is older than the cutoff."""
    return span.end is not None and span.end <= cutoff


def overlapping(span: Span, spans: Sequence[Span]) -> bool:
    return any(span.overlaps(other) for other in spans)


_BOUND = re.compile(r"FOR VALUES FROM \((?P<start>[^)]*)\) TO \((?P<end>[^)]*)\)")


def parse_bound(expression: str) -> Span | None:
    """The span of a range partition from `pg_get_expr(relpartbound)` read with TimeZone UTC
    and DateStyle ISO, e.g. `FOR VALUES FROM ('2026-12-07 00:00:00+00') TO (MAXVALUE)`; None
    for anything else (a DEFAULT partition)."""
    match = _BOUND.fullmatch(expression.strip())
    if match is None:
        return None
    return Span(_bound_time(match["start"]), _bound_time(match["end"]))


def _bound_time(value: str) -> datetime | None:
    value = value.strip()
    if value in ("MINVALUE", "MAXVALUE"):
        return None
    return datetime.fromisoformat(value.strip("'")).astimezone(UTC)


def sql_time(t: datetime) -> str:
    """A time as a literal for a partition bound: ISO 8601 in UTC, quoted."""
    return f"'{t.astimezone(UTC).isoformat()}'"


def sql_bounds(span: Span) -> str:
    """`FROM (…) TO (…)` of a range partition covering `span`."""
    start = "MINVALUE" if span.start is None else sql_time(span.start)
    end = "MAXVALUE" if span.end is None else sql_time(span.end)
    return f"FROM ({start}) TO ({end})"
