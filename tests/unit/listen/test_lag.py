"""LagWatch: `chain.lagging` is told once per spell of lag over the limit that lasts long enough."""

from __future__ import annotations

import pytest

from ethhook.listen.lag import LagWatch


@pytest.mark.parametrize(
    ("looks", "told_at"),
    [
        # (lag, seconds) per look, limit 10 blocks for 5 s → which looks tell
        ([(11, 0), (50, 4.9), (50, 5.0), (60, 9), (60, 30)], [2]),
        ([(11, 0), (5, 3), (11, 4), (11, 8.9), (11, 9)], [4]),  # a dip under the limit restarts
        ([(10, 0), (10, 100)], []),  # at the limit is not over it
        ([(None, 0), (20, 1), (None, 7), (20, 8)], []),  # no cursor or head yet: not lagging
        ([(20, 0), (20, 5), (3, 6), (20, 7), (20, 12)], [1, 4]),  # a new spell is told again
    ],
)
def test_a_spell_over_the_limit_for_long_enough_is_told_once(looks, told_at):
    watch = LagWatch(blocks=10, after_s=5)
    assert [i for i, (lag, at) in enumerate(looks) if watch.observe(lag, at)] == told_at


def test_a_failed_tell_is_tried_again_at_the_next_look():
    watch = LagWatch(blocks=1, after_s=0)
    assert watch.observe(5, 0) is True
    watch.retry()
    assert watch.observe(5, 1) is True and watch.observe(5, 2) is False
