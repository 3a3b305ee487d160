"""Three minutes of the soak (tests/support/soak.py; `python -m bench.soak` runs it longer) in the
suite, on partitioned history with retention: a steady stream, a random fault every 30 s (the
seed is printed: `python -m bench.soak --minutes 3 --fault-every-s 30 --partition-interval 1m
--retention-minutes 1 --seed N` replays the draw), not one event lost, and retention dropping
the history's oldest partitions as it goes, none holding a delivery still to send.

One-minute partitions and one minute of retention (the retry schedule: 0, 2, 5, 10 s, see
tests/support/soak_history.py), with beat's retention run once a minute: the partition of the
stream's first minute is past retention two minutes after it began, so it is dropped within the
three minutes, faults or not, unless a delivery in it is still open at that run (retention then
holds it: on a starved host the stream can be seconds behind). The soak then waits, after
everything is delivered, for the next run (soak.wait_for_retention)."""

from __future__ import annotations

import pytest

from tests.support.soak import soak
from tests.support.soak_history import Retention

pytestmark = pytest.mark.slow

# 300 events/s is the 10-minute soak's target (`python -m bench.soak`), and this 2-core machine
# sustains it with nothing else running (2026-12-01: ≤ 60 events behind, P50 81 ms, P95 252 ms,
# our processes using one core of two). The suite runs at two thirds of that: after each fault
# the backlog must drain within the 30 s before the next one while the stream goes on, and
# another session's load on the shared cores must not turn that into a timeout.
SUITE_RATE = 200.0


@pytest.mark.timeout(1200)
def test_three_minutes_under_a_stream_with_faults_and_retention_lose_no_event(tmp_path):
    retention = Retention.of("1m", retention_minutes=1)
    report = soak(
        minutes=3,
        rate=SUITE_RATE,
        fault_every_s=30,
        out=tmp_path / "soak.json",
        retention=retention,
        size_every_s=15,
    )

    assert report["stream_alive_to_the_end"]
    assert report["died"] == [] and report["unrecoverable"] == {}  # no process stopped by itself
    assert len(report["faults"]) == 5
    assert report["lost"] == 0
    assert report["events_received"] == report["events_emitted"] > 0
    assert report["unverified"] == 0
    history = report["history"]
    # Retention dropped partitions that held the stream's rows, and rows with them.
    assert history["data_partitions_dropped"] > 0
    assert history["rows_at_end"]["events"] < report["events_emitted"]
    # No delivery still to send went with them: every one seen waiting or pending in a partition
    # aging past retention was delivered or is still there.
    assert history["open_dropped"] == 0
    assert history["failed_deliveries_at_end"] == 0
    # The size is bounded: never more partitions than retention, the current interval, the one
    # awaiting the next run and those made ahead.
    assert history["size_samples"]
    assert max(s["partitions"] for s in history["size_samples"]) <= history["partitions_bound"]
