"""The deliveries-per-minute chart's geometry: axis maximum, stacked bars, labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ethhook.console.chart import BOTTOM, HEIGHT, LEFT, TOP, WIDTH, minute_chart, nice_ceiling
from ethhook.service.stats import MinuteCount

T0 = datetime(2026, 12, 3, 10, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 1), (1, 1), (2, 2), (3, 5), (5, 5), (6, 10), (10, 10), (11, 20), (99, 100), (101, 200)],
)
def test_the_axis_maximum_is_one_two_or_five_times_a_power_of_ten(value, expected):
    assert nice_ceiling(value) == expected


def test_bars_stack_failed_attempts_on_succeeded_ones_scaled_to_the_axis():
    minutes = [MinuteCount(T0, 0, 0), MinuteCount(T0 + timedelta(minutes=1), 10, 6)]
    chart = minute_chart(minutes)
    plot_height = HEIGHT - TOP - BOTTOM
    bottom = HEIGHT - BOTTOM
    empty, busy = chart.bars
    assert empty.ok_height == 0 and empty.failed_height == 0
    assert busy.ok_height == pytest.approx(plot_height * 0.6, abs=0.01)
    assert busy.failed_height == pytest.approx(plot_height * 0.4, abs=0.01)
    assert busy.ok_y == pytest.approx(bottom - busy.ok_height, abs=0.01)
    assert busy.failed_y == pytest.approx(busy.ok_y - busy.failed_height, abs=0.02)
    assert LEFT <= empty.x < busy.x < WIDTH
    assert busy.title == "10:59 UTC: 6 succeeded, 4 failed"
    assert (chart.total, chart.failed) == (10, 4)
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10"]


def test_time_labels_fall_on_every_tenth_minute():
    minutes = [MinuteCount(T0 + timedelta(minutes=i), 1, 1) for i in range(25)]
    chart = minute_chart(minutes)
    assert [t.label for t in chart.x_ticks] == ["11:00", "11:10", "11:20"]
    assert [t.label for t in chart.y_ticks] == ["0", "1"]


def test_an_hour_without_attempts_draws_no_bar_and_an_axis_of_one():
    chart = minute_chart([MinuteCount(T0 + timedelta(minutes=i), 0, 0) for i in range(60)])
    assert len(chart.bars) == 60
    assert all(b.ok_height == 0 and b.failed_height == 0 for b in chart.bars)
    assert chart.total == 0 and [t.label for t in chart.y_ticks] == ["0", "1"]
