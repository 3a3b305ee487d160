"""Two minutes of the soak (tests/support/soak.py; `python -m bench.soak` runs it longer) in the
suite: a steady stream, a random fault every 30 s (the seed is printed: `python -m bench.soak
--minutes 2 --fault-every-s 30 --seed N` replays the draw), and not one event lost."""

from __future__ import annotations

import pytest

from tests.support.soak import soak

pytestmark = pytest.mark.slow

# 300 events/s is the 10-minute soak's target (`python -m bench.soak`), and this 2-core machine
# sustains it with nothing else running (2026-12-01: ≤ 60 events behind, P50 81 ms, P95 252 ms,
# our processes using one core of two). The suite runs at two thirds of that: after each fault
# the backlog must drain within the 30 s before the next one while the stream goes on, and
# another session's load on the shared cores must not turn that into a timeout.
SUITE_RATE = 200.0


@pytest.mark.timeout(1200)
def test_two_minutes_under_a_stream_with_a_fault_every_30_s_lose_no_event(tmp_path):
    report = soak(minutes=2, rate=SUITE_RATE, fault_every_s=30, out=tmp_path / "soak.json")

    assert report["stream_alive_to_the_end"]
    assert report["died"] == [] and report["unrecoverable"] == {}  # no process stopped by itself
    assert len(report["faults"]) == 3
    assert report["lost"] == 0
    assert report["events_received"] == report["events_emitted"] > 0
    assert report["unverified"] == 0
