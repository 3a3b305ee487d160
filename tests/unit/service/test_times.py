"""The times users type: any ISO 8601 time from year 1 to 9999 in UTC, one line otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ethhook.exceptions import InputError
from ethhook.service.stats import rollup_ranges
from ethhook.service.times import parse_since

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9999-12-31T23:59:00Z", datetime(9999, 12, 31, 23, 59, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999", datetime.max.replace(tzinfo=UTC)),
        ("9999-12-31T23:59:59+14:00", datetime(9999, 12, 31, 9, 59, 59, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime.min.replace(tzinfo=UTC)),
        ("0001-01-01T00:00:00-14:00", datetime(1, 1, 1, 14, tzinfo=UTC)),
    ],
)
def test_every_time_from_year_1_to_9999_in_utc_is_read(text, expected):
    since = parse_since(text)
    assert since == expected
    # …and the statistics' ranges are computed for it without overflowing.
    ranges = rollup_ranges(since, NOW)
    assert ranges and all(start >= since.replace(second=0, microsecond=0) for _, start, _ in ranges)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0001-01-01T00:00:00+01:00", "in UTC it falls outside the years 1 to 9999"),
        ("9999-12-31T23:59:59-00:01", "in UTC it falls outside the years 1 to 9999"),
        ("+10000-01-01", "expected ISO 8601"),
        ("yesterday", "expected ISO 8601"),
        ("x" * 10_000, "expected ISO 8601"),
    ],
)
def test_a_time_that_is_not_one_is_one_line_naming_the_option(text, message):
    with pytest.raises(InputError, match=message) as refused:
        parse_since(text, "since")
    assert str(refused.value).startswith("invalid since ") and len(str(refused.value)) < 200


def test_a_since_after_now_reads_the_minutes_from_it_only():
    far = datetime(9999, 12, 31, 23, 59, 30, tzinfo=UTC)
    assert rollup_ranges(far, NOW) == [(60, datetime(9999, 12, 31, 23, 59, tzinfo=UTC), None)]
    soon = NOW + timedelta(minutes=5)
    assert rollup_ranges(soon, NOW) == [(60, soon, None)]
