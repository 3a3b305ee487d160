"""The history seeder (tests/support/history.py, used by the volume and retention benchmarks)
writes the history tables' rows as the models define them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ethhook.db.models import Delivery, DeliveryAttempt, Event
from tests.support.history import BLOCK_S, COLUMNS, Plan, block_layout, days_ending


@pytest.mark.parametrize("model", [Event, Delivery, DeliveryAttempt])
def test_every_column_of_each_history_table_has_a_seeding_expression(model: type) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    assert set(COLUMNS[table.name]) == set(table.columns.keys())


@pytest.mark.parametrize("rows", [1, 5_000, 7_200, 20_000, 1_000_000])
@pytest.mark.parametrize("span_s", [3_600.0, 86_400.0])
def test_blocks_hold_every_row_at_least_block_s_apart(rows: int, span_s: float) -> None:
    blocks, per_block, spacing = block_layout(rows, span_s)
    assert blocks * per_block >= rows > (blocks - 1) * per_block
    assert spacing >= BLOCK_S
    assert blocks * spacing == pytest.approx(span_s)


def test_history_ends_now_with_whole_days_before_today() -> None:
    now = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    spans = days_ending(now, 2)
    assert spans == [
        (datetime(2026, 12, 5, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC), 1.0),
        (datetime(2026, 12, 6, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC), 1.0),
        (datetime(2026, 12, 7, tzinfo=UTC), now, 0.25),
    ]


def test_attempt_times_follow_the_schedule_without_jitter() -> None:
    assert Plan([1], 2, 5, (0, 5, 300)).cumulative() == [0.0, 5.0, 305.0]
