"""Percentiles from latency buckets, and which rollup rows cover a period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ethhook.db.models import LATENCY_BOUNDS_MS
from ethhook.service.stats import percentile_from_buckets, rollup_ranges

BOUNDS = (25, 50, 100)


@pytest.mark.parametrize(
    ("counts", "q", "expected"),
    [
        ((0, 0, 0, 0), 0.5, None),  # nothing recorded
        ((10, 0, 0, 0), 0.5, 12.5),  # half of the first bucket, from 0
        ((10, 0, 0, 0), 1.0, 25.0),  # its upper bound
        ((0, 10, 0, 0), 0.95, 25 + 25 * 0.95),  # interpolated inside (25, 50]
        ((5, 5, 0, 0), 0.5, 25.0),  # the rank ends exactly at the first bucket's top
        ((5, 5, 0, 0), 0.6, 30.0),  # one of five values into (25, 50]
        ((18, 0, 1, 1), 0.95, 100.0),  # the 19th of 20 is the one in (50, 100], at its top
        ((18, 0, 0, 2), 0.95, 100.0),  # above the last bound: that bound
        ((0, 0, 0, 7), 0.5, 100.0),
        ((1, 0, 0), 0.5, 12.5),  # without an overflow count
        ((0, 0, 0, 0, 0), 0.5, None),
    ],
)
def test_percentile_from_buckets(counts, q, expected):
    assert percentile_from_buckets(counts, BOUNDS, q) == expected


def test_percentile_skips_empty_buckets_and_stays_within_its_bucket():
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[0], counts[4] = 90, 10  # 90 fast, 10 in (250, 500]
    p95 = percentile_from_buckets(counts, LATENCY_BOUNDS_MS, 0.95)
    assert p95 == 250 + 250 * 0.5
    assert percentile_from_buckets(counts, LATENCY_BOUNDS_MS, 0.5) == pytest.approx(25 * 50 / 90)


@pytest.mark.parametrize("q", [0, -0.1, 1.01])
def test_a_quantile_outside_0_1_is_refused(q):
    with pytest.raises(ValueError, match="quantile"):
        percentile_from_buckets((1, 1), (10,), q)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=UTC)


def test_whole_hours_come_from_hour_rows_and_the_ends_from_minute_rows():
    assert rollup_ranges(at(1, 9, 41, 30), at(2, 9, 44)) == [
        (60, at(1, 9, 41), at(1, 10)),
        (3600, at(1, 10), at(2, 9)),
        (60, at(2, 9), None),
    ]


def test_within_the_current_hour_only_minute_rows_are_read():
    assert rollup_ranges(at(1, 9, 41, 30), at(1, 9, 59)) == [(60, at(1, 9, 41), None)]
    assert rollup_ranges(at(1, 9, 1), at(1, 10, 30)) == [(60, at(1, 9, 1), None)]


def test_since_on_the_hour_reads_no_minutes_before_it():
    assert rollup_ranges(at(1, 9), at(1, 12, 5)) == [
        (3600, at(1, 9), at(1, 12)),
        (60, at(1, 12), None),
    ]


def test_whole_days_come_from_day_rows_with_hours_and_minutes_around_them():
    assert rollup_ranges(at(1, 9, 41, 30), at(8, 9, 44)) == [
        (60, at(1, 9, 41), at(1, 10)),
        (3600, at(1, 10), at(2, 0)),
        (86400, at(2, 0), at(8, 0)),
        (3600, at(8, 0), at(8, 9)),
        (60, at(8, 9), None),
    ]


def test_midnight_ends_read_no_empty_ranges_and_a_day_needs_to_be_whole():
    assert rollup_ranges(at(1, 0), at(3, 0, 5)) == [
        (86400, at(1, 0), at(3, 0)),
        (60, at(3, 0), None),
    ]
    # 23:59 on the 1st to 00:01 on the 3rd: the 2nd is whole, the ends are minutes
    assert rollup_ranges(at(1, 23, 59), at(3, 0, 1)) == [
        (60, at(1, 23, 59), at(2, 0)),
        (86400, at(2, 0), at(3, 0)),
        (60, at(3, 0), None),
    ]
    # less than a whole day: hours, even across midnight
    assert rollup_ranges(at(1, 22, 30), at(2, 23, 10)) == [
        (60, at(1, 22, 30), at(1, 23)),
        (3600, at(1, 23), at(2, 23)),
        (60, at(2, 23), None),
    ]


def test_times_in_another_zone_are_read_as_the_same_instant_in_utc():
    plus_two = timezone(timedelta(hours=2))
    since = datetime(2026, 11, 1, 11, 41, 30, tzinfo=plus_two)  # 09:41:30 UTC
    assert rollup_ranges(since, at(2, 9, 44)) == rollup_ranges(at(1, 9, 41, 30), at(2, 9, 44))
