"""plan_claim: what one claim of an ordered endpoint takes, skips, or finds pausing it, as a
table over the endpoint's first open rows in sequence order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ethhook.workqueue.ordered import PAUSE, SKIP_DEAD, Row, plan_claim

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=5)
EARLIER = NOW - timedelta(seconds=5)


def row(
    n: int,
    status: str = "pending",
    due: datetime = NOW,
    token: str | None = None,
    expires: datetime | None = None,
) -> Row:
    return Row(n, NOW, status, n, due, token, expires)


WORKER = "0f4b8a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"

CASES = [
    # (rows, mode, taken, skipped, paused_by)
    ([], PAUSE, [], [], None),
    ([row(1), row(2), row(3)], PAUSE, [1, 2, 3], [], None),
    # A head waiting for its retry holds every row after it, due or not.
    ([row(1, due=LATER), row(2), row(3)], PAUSE, [], [], None),
    ([row(1), row(2, due=LATER), row(3)], PAUSE, [1], [], None),
    # Another worker's live claim anywhere: nothing (one sender at a time).
    ([row(1, token=WORKER, expires=LATER), row(2)], PAUSE, [], [], None),
    ([row(1), row(2, token=WORKER, expires=LATER)], SKIP_DEAD, [], [], None),
    # An expired claim or a message's lease does not hold the row.
    ([row(1, token=WORKER, expires=EARLIER), row(2)], PAUSE, [1, 2], [], None),
    ([row(1, token="m-abc", expires=LATER), row(2)], PAUSE, [1, 2], [], None),
    # A dead-lettered head: pause stops there and says so; skip-dead goes past it.
    ([row(1, "failed"), row(2), row(3)], PAUSE, [], [], 1),
    ([row(1, "failed"), row(2), row(3)], SKIP_DEAD, [2, 3], [1], None),
    ([row(1), row(2, "failed"), row(3)], PAUSE, [1], [], None),
    ([row(1), row(2, "failed"), row(3, "failed"), row(4)], SKIP_DEAD, [1, 4], [2, 3], None),
    ([row(1, "failed"), row(2, due=LATER)], SKIP_DEAD, [], [1], None),
]


@pytest.mark.parametrize(("rows", "mode", "taken", "skipped", "paused"), CASES)
def test_plan_claim(rows, mode, taken, skipped, paused):
    plan = plan_claim(rows, mode, NOW)
    assert [r.id for r in plan.take] == taken
    assert [r.id for r in plan.skip] == skipped
    assert (plan.paused_by.id if plan.paused_by else None) == paused


def test_a_live_claim_past_the_rows_read_holds_the_claim():
    plan = plan_claim([row(1), row(2)], PAUSE, NOW, busy=True)
    assert (plan.take, plan.skip, plan.paused_by) == ([], [], None)
