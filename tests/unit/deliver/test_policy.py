"""The deliver task's decisions are pure: stopping, flushing, the breaker's view, settling."""

import pytest

from ethhook.deliver.http import HttpOutcome
from ethhook.deliver.protect.policy import (
    FLUSH_EVERY,
    FLUSH_INTERVAL_S,
    Action,
    Deferral,
    Settlement,
    counts_against_breaker,
    deferral,
    flush_due,
    sending_budget_s,
    settle,
)
from ethhook.metrics import DeferReason

LIMITED = Deferral(0.25, DeferReason.RATE_LIMITED)
BREAKER = Deferral(30.0, DeferReason.BREAKER_OPEN)


@pytest.mark.parametrize(
    ("gone", "stopped_by", "left", "expected"),
    [
        (False, None, 0, Settlement(Action.RELEASE)),  # everything sent
        (False, None, 5, Settlement(Action.RELEASE)),  # out of time: someone else sends them
        (False, LIMITED, 5, Settlement(Action.DEFER, 0.25, DeferReason.RATE_LIMITED)),
        (False, BREAKER, 5, Settlement(Action.DEFER, 30.0, DeferReason.BREAKER_OPEN)),
        (False, LIMITED, 0, Settlement(Action.RELEASE)),  # refused, but nothing was left
        (False, BREAKER, 0, Settlement(Action.RELEASE)),
        (True, None, 0, Settlement(Action.DISABLE)),  # 410 on the last delivery
        (True, None, 3, Settlement(Action.DISABLE)),
        (True, BREAKER, 3, Settlement(Action.DISABLE)),  # 410 wins over a deferral
        (True, LIMITED, 3, Settlement(Action.DISABLE)),
    ],
)
def test_settle(gone, stopped_by, left, expected):
    assert settle(gone, stopped_by, left) == expected


@pytest.mark.parametrize(
    ("delay_s", "reason", "expected"),
    [
        (0.0, DeferReason.BREAKER_OPEN, None),  # the breaker lets the request go
        (0.0, DeferReason.RATE_LIMITED, None),
        (0.25, DeferReason.RATE_LIMITED, LIMITED),
        (30.0, DeferReason.BREAKER_OPEN, BREAKER),
    ],
)
def test_a_refusal_defers_only_when_it_asks_to_wait(delay_s, reason, expected):
    assert deferral(delay_s, reason) == expected


@pytest.mark.parametrize(
    ("lease_s", "request_s", "expected"),
    [(300.0, 15.0, 280.0), (30.0, 15.0, 10.0), (21.0, 15.0, 1.0), (10.0, 15.0, 1.0)],
)
def test_sending_stops_while_the_lease_covers_one_more_request(lease_s, request_s, expected):
    assert sending_budget_s(lease_s, request_s) == expected


@pytest.mark.parametrize(
    ("pending", "since_flush_s", "expected"),
    [
        (0, 0.0, False),
        (FLUSH_EVERY - 1, FLUSH_INTERVAL_S, False),
        (FLUSH_EVERY, 0.0, True),
        (FLUSH_EVERY + 7, 0.0, True),
        (1, FLUSH_INTERVAL_S + 0.01, True),
        (0, FLUSH_INTERVAL_S + 0.01, True),  # recording nothing costs no statement
    ],
)
def test_flush_due(pending, since_flush_s, expected):
    assert flush_due(pending, since_flush_s) is expected


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (None, True),  # timeout, refused connection, reset
        (500, True),
        (502, True),
        (503, True),
        (400, False),
        (404, False),
        (410, False),
        (429, False),
    ],
)
def test_only_an_endpoint_that_is_down_counts_against_its_breaker(status_code, expected):
    outcome = HttpOutcome(status_code, 12.0, error=None if status_code else "timed out")
    assert counts_against_breaker(outcome) is expected
