"""The retry schedule is a pure function; its table of cases."""

import random

import pytest

from ethhook.config import DEFAULT_RETRY_SCHEDULE_S
from ethhook.deliver.protect.retry import next_retry, parse_retry_after

SCHEDULE = DEFAULT_RETRY_SCHEDULE_S  # 0, 5, 300, 1800, 7200, 18000, 36000, 36000


@pytest.mark.parametrize(
    ("attempts_made", "expected_base"),
    [
        (1, 5),
        (2, 300),
        (3, 1800),
        (4, 7200),
        (5, 18000),
        (6, 36000),
        (7, 36000),
        (8, None),
        (9, None),
    ],
)
def test_default_schedule_delays_with_jitter(attempts_made, expected_base):
    for seed in range(20):
        decision = next_retry(attempts_made, SCHEDULE, rng=random.Random(seed))
        if expected_base is None:
            assert decision.give_up and decision.delay_s is None
        else:
            assert not decision.give_up
            assert expected_base * 0.9 <= decision.delay_s <= expected_base * 1.1


def test_default_schedule_spans_more_than_a_day():
    assert sum(SCHEDULE) > 86400
    assert len(SCHEDULE) == 8


@pytest.mark.parametrize(
    ("attempts_made", "retry_after", "floor"),
    [(1, 120.0, 120.0), (1, 2.0, 5 * 0.9), (3, 10.0, 1800 * 0.9), (1, 10**9, 86400.0)],
)
def test_retry_after_is_a_floor_and_capped(attempts_made, retry_after, floor):
    decision = next_retry(attempts_made, SCHEDULE, retry_after_s=retry_after, rng=random.Random(1))
    assert decision.delay_s is not None
    assert decision.delay_s >= floor
    assert decision.delay_s <= max(SCHEDULE[attempts_made] * 1.1, min(retry_after, 86400.0))


def test_retry_after_does_not_extend_the_number_of_attempts():
    assert next_retry(3, (0, 1, 1), retry_after_s=5).give_up


def test_zero_delay_stays_zero():
    assert next_retry(1, (0, 0, 0)).delay_s == 0


def test_attempts_made_must_be_positive():
    with pytest.raises(ValueError):
        next_retry(0, SCHEDULE)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("2", 2.0),
        (" 30 ", 30.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: retry as soon as the schedule allows
        ("Thu, 27 Nov 2026 03:00:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(header, expected):
    now = 1795748400.0  # Thu, 27 Nov 2026 03:00:00 GMT
    assert parse_retry_after(header, now) == expected
