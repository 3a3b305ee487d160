"""Redis and PostgreSQL failing under a steady stream of events: every process survives without a
restart of its own, and every event arrives. Includes the two promises a broker flush and a
database restart used to break: matcher batches queued in Redis when it is flushed, and matcher
tasks running while PostgreSQL restarts."""

from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import create_engine, text

from tests.support.faults_stream import settle
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def stored_unmatched(rig) -> int:  # noqa: ANN001
    engine = create_engine(rig.postgres.url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM events WHERE matched_at IS NULL")).scalar()
            )
    finally:
        engine.dispose()


def test_flushing_redis_with_matcher_batches_queued_loses_none(rig):
    # Given the match worker stopped while the listener reads and stores a stream of events
    rig.pipeline.kill("match", signal.SIGTERM)
    expected = rig.stream().wait_and_stop(6)
    wait_until(lambda: stored_unmatched(rig) >= len(expected), 60, 0.5, "events stored")
    assert rig.redis.client().llen("match") > 0  # their matcher batches wait in Redis

    # When Redis loses every message, and then the match worker starts
    rig.redis.flushall()
    rig.pipeline.start("match")

    # Then every event arrives, each once
    outcome = settle(rig.receiver, expected, 120, "Redis FLUSHALL with matcher batches queued")
    assert outcome.lost == 0 and outcome.repeated_ids == 0


def test_redis_down_for_30_seconds_loses_nothing(rig):
    stream = rig.stream()
    time.sleep(3)
    rig.redis.restart(down_s=30)
    time.sleep(3)
    expected = stream.stop()

    outcome = settle(rig.receiver, expected, 180, "Redis down 30 s")

    assert outcome.lost == 0 and outcome.repeated_ids == 0


def test_postgres_restart_under_the_stream_loses_nothing(rig):
    stream = rig.stream()
    time.sleep(3)
    rig.postgres.restart(down_s=5)
    time.sleep(3)
    expected = stream.stop()

    outcome = settle(rig.receiver, expected, 180, "PostgreSQL restart")

    # A repeat is possible only for a POST whose record the restart cut off.
    assert outcome.lost == 0


def test_matcher_tasks_running_while_postgres_restarts_are_retried_not_lost(rig):
    # Given stored events whose matcher batches wait in Redis
    rig.pipeline.kill("match", signal.SIGTERM)
    expected = rig.stream().wait_and_stop(4)
    wait_until(lambda: stored_unmatched(rig) >= len(expected), 60, 0.5, "events stored")

    # When the match worker takes them while PostgreSQL is down, and it comes back 5 s later
    rig.postgres.stop()
    rig.pipeline.start("match")
    wait_until(lambda: "match.batch.retry" in rig.pipeline.log("match"), 60, 0.2, "a retry")
    time.sleep(5)
    rig.postgres.start()

    # Then every event arrives, each once
    outcome = settle(rig.receiver, expected, 180, "PostgreSQL down while matcher tasks run")
    assert outcome.lost == 0 and outcome.repeated_ids == 0
