"""The history tables' partitions as arithmetic: event times, intervals, names, ranges to make,
what is past retention, bounds read back from pg_catalog, a message's time range."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ethhook.db.partition_plan import (
    LATEST_EVENT_AT,
    Span,
    aligned_span,
    event_time,
    interval_start,
    is_partition_name,
    parse_bound,
    partition_name,
    past_retention,
    retention_cutoff,
    span_to_create,
    sql_bounds,
    table_of,
    times_ahead,
)
from ethhook.workqueue import range_of, time_range
from ethhook.workqueue.enqueue import range_kwargs

DAY, FIVE_MIN = 86400, 300
T = datetime(2026, 12, 7, 12, 7, 31, tzinfo=UTC)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_an_events_time_is_its_blocks_time_in_utc_and_absurd_ones_are_clamped():
    assert event_time(1_764_000_000) == at(2025, 11, 24, 16, 0)
    assert event_time(0) == at(1970, 1, 1)
    assert event_time(-5) == at(1970, 1, 1)
    assert event_time(2**255) == LATEST_EVENT_AT  # a node's nonsense still has a partition
    assert aligned_span(LATEST_EVENT_AT, 31 * DAY).end is not None


@pytest.mark.parametrize(
    ("interval_s", "start"),
    [
        (DAY, at(2026, 12, 7)),
        (6 * 3600, at(2026, 12, 7, 12)),
        (FIVE_MIN, at(2026, 12, 7, 12, 5)),
        (60, at(2026, 12, 7, 12, 7)),
        (7 * DAY, at(2026, 12, 3)),  # weeks counted from the epoch, a Thursday
    ],
)
def test_intervals_are_counted_from_the_epoch_so_every_process_cuts_time_alike(interval_s, start):
    assert interval_start(T, interval_s) == start
    span = aligned_span(T, interval_s)
    assert span == Span(start, start + timedelta(seconds=interval_s)) and span.covers(T)
    assert interval_start(start, interval_s) == start  # a start is its own interval's


def test_names_say_the_start_a_day_without_its_time_and_legacy_for_the_unbounded_one():
    assert partition_name("events", aligned_span(T, DAY)) == "events_p20261207"
    five = partition_name("delivery_attempts", aligned_span(T, FIVE_MIN))
    assert five == "delivery_attempts_p20261207t1205"
    assert partition_name("deliveries", Span(None, at(2026, 12, 9))) == "deliveries_legacy"
    for name in ("events_p20261207", five, "deliveries_legacy"):
        assert is_partition_name(name)
    assert table_of(five) == "delivery_attempts"
    for other in ("events", "endpoints_p20261207", "events_p2026120", "events_p20261207t12"):
        assert not is_partition_name(other)


def test_a_new_partition_covers_its_interval_up_to_its_neighbours():
    day = aligned_span(T, DAY)
    assert span_to_create(T, DAY, []) == day
    assert span_to_create(T, DAY, [day]) is None
    # The legacy partition (every time before the upgrade's cutover) covers older times…
    legacy = Span(None, at(2026, 12, 7, 12))
    assert span_to_create(at(2020, 1, 1), DAY, [legacy]) is None
    # …and a partition after it starts where it ends.
    assert span_to_create(T, DAY, [legacy]) == Span(at(2026, 12, 7, 12), at(2026, 12, 8))
    # A shorter interval chosen later fills the gaps between the longer partitions.
    later = Span(at(2026, 12, 7, 12, 10), at(2026, 12, 8))
    assert span_to_create(T, DAY, [legacy, later]) == Span(at(2026, 12, 7, 12), later.start)


def test_partitions_ahead_cover_the_last_interval_this_one_and_three_more():
    times = times_ahead(T, FIVE_MIN)
    assert times[0] == at(2026, 12, 7, 12, 0) and times[-1] == at(2026, 12, 7, 12, 20)
    assert len(times) == 5


def test_a_partition_is_past_retention_when_its_end_is():
    cutoff = retention_cutoff(T, 30)
    assert cutoff == T - timedelta(days=30)
    assert past_retention(Span(cutoff - timedelta(days=1), cutoff), cutoff)
    assert not past_retention(
        Span(cutoff - timedelta(days=1), cutoff + timedelta(seconds=1)), cutoff
    )
    assert past_retention(Span(None, cutoff), cutoff)
    assert not past_retention(Span(cutoff, None), cutoff)


def test_bounds_read_back_from_pg_catalog():
    rendered = "FOR VALUES FROM ('2026-12-07 12:05:00+00') TO ('2026-12-07 12:10:00+00')"
    assert parse_bound(rendered) == Span(at(2026, 12, 7, 12, 5), at(2026, 12, 7, 12, 10))
    legacy = parse_bound("FOR VALUES FROM (MINVALUE) TO ('2026-12-09 00:00:00+00')")
    assert legacy == Span(None, at(2026, 12, 9))
    assert parse_bound("DEFAULT") is None
    assert sql_bounds(legacy) == "FROM (MINVALUE) TO ('2026-12-09T00:00:00+00:00')"


def test_a_messages_time_range_travels_as_iso_times_and_a_bad_one_means_every_partition():
    bounds = time_range([T, T - timedelta(hours=1), T + timedelta(seconds=5)])
    assert bounds == (T - timedelta(hours=1), T + timedelta(seconds=5))
    assert range_of(range_kwargs(bounds)["event_at_range"]) == bounds
    assert range_kwargs(None) == {} and time_range([]) is None
    for bad in (None, "x", ["2026-12-07T12:00:00+00:00"], ["2026-12-07T12:00:00", "x"]):
        assert range_of(bad) is None
    assert range_of([T.isoformat(), (T - timedelta(1)).isoformat()]) is None  # reversed
    assert range_of([T.replace(tzinfo=None).isoformat()] * 2) is None  # naive
