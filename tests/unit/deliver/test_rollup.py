"""What a flush of attempts adds to the rollups: rows per minute, hour and day, buckets, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ethhook.db.models import LATENCY_COLUMNS, latency_column
from ethhook.deliver.store.rollup import AttemptFacts, rollup_rows

T = datetime(2026, 11, 30, 10, 59, 58, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ms", "column"),
    [
        (0.0, "latency_25ms"),
        (25.0, "latency_25ms"),
        (25.001, "latency_50ms"),
        (999.9, "latency_1000ms"),
        (10000.0, "latency_10000ms"),
        (10000.1, "latency_inf"),
    ],
)
def test_a_duration_falls_in_the_bucket_up_to_its_bound(ms, column):
    assert latency_column(ms) == column


def test_one_row_per_minute_hour_and_day_with_every_outcome_counted():
    later = datetime(2026, 11, 30, 11, 0, 1, tzinfo=UTC)
    rows = rollup_rows(
        7,
        [
            AttemptFacts(T, 10.0, 200, False),
            AttemptFacts(T, 60.0, 503, False),
            AttemptFacts(T, 3000.0, None, True),
            AttemptFacts(later, 20000.0, 404, True),
            AttemptFacts(later, 1.0, 302, False),
        ],
    )
    keyed = {(r["period_s"], r["period_start"]): r for r in rows}
    assert sorted(keyed) == [
        (60, T.replace(second=0, microsecond=0)),
        (60, later.replace(second=0)),
        (3600, T.replace(minute=0, second=0, microsecond=0)),
        (3600, later.replace(second=0)),
        (86400, T.replace(hour=0, minute=0, second=0, microsecond=0)),
    ]
    minute = keyed[(60, T.replace(second=0, microsecond=0))]
    assert minute["endpoint_id"] == 7
    assert (minute["attempts"], minute["succeeded"], minute["server_errors"]) == (3, 1, 1)
    assert (minute["no_response"], minute["client_errors"], minute["dead_lettered"]) == (1, 0, 1)
    assert minute["duration_ms_total"] == 3070.0
    assert [minute[c] for c in LATENCY_COLUMNS] == [1, 0, 1, 0, 0, 0, 0, 1, 0, 0]
    eleven = keyed[(3600, later.replace(second=0))]
    assert (eleven["attempts"], eleven["client_errors"], eleven["succeeded"]) == (2, 1, 0)
    assert eleven["latency_inf"] == 1 and eleven["latency_25ms"] == 1
    # an hour row is the sum of its minutes
    assert keyed[(3600, T.replace(minute=0, second=0, microsecond=0))] == {
        **minute,
        "period_s": 3600,
        "period_start": T.replace(minute=0, second=0, microsecond=0),
    }
    # and a day row the sum of its hours
    day = keyed[(86400, T.replace(hour=0, minute=0, second=0, microsecond=0))]
    assert day["attempts"] == 5 and day["latency_inf"] == 1 and day["no_response"] == 1
    assert day["duration_ms_total"] == 3070.0 + 20001.0


def test_attempts_either_side_of_midnight_utc_fall_in_two_days():
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    after = datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC)
    rows = rollup_rows(
        3, [AttemptFacts(before, 5.0, 200, False), AttemptFacts(after, 5.0, 200, False)]
    )
    days = sorted((r["period_start"], r["attempts"]) for r in rows if r["period_s"] == 86400)
    assert days == [(before.replace(hour=0, minute=0, second=0), 1), (after, 1)]


def test_no_attempts_no_rows():
    assert rollup_rows(1, []) == []
