"""A worker holding an unacknowledged message through a Redis restart keeps consuming.

A match worker with a retry's countdown in hand, a deliver worker with a deferral, the
maintenance worker with a task running: when Redis restarted, closing the lost connection
restored those messages, and acknowledging them later, went through a transport kombu had already
detached; AttributeError, "Unrecoverable error", and the worker stopped for good (the maintenance
worker took beat with it: nothing stored but unmatched was ever dispatched again).
ethhook/broker_transport.py turns that into the connection error Celery expects.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import create_engine, text

from tests.support.faults_pipeline import Pipeline
from tests.support.faults_services import PrivatePostgres, PrivateRedis
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture()
def services() -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    root = Path(tempfile.mkdtemp(prefix="ethhook-reconnect-"))
    postgres, redis = PrivatePostgres(root), PrivateRedis(root)
    yield postgres, redis
    redis.close()
    postgres.close()


def test_a_worker_with_a_task_running_through_a_redis_restart_keeps_consuming(services):
    # Given a match worker whose task waits on a lock this test holds, and that waits for more
    postgres, redis = services
    broker_url = f"{redis.url}/0"
    env = {"ETHHOOK_DATABASE_URL": postgres.url, "ETHHOOK_BROKER_URL": broker_url,
           "ETHHOOK_REDIS_URL": f"{redis.url}/1"}  # fmt: skip
    pipeline = Pipeline(redis.dir.parent, env)
    publisher = Celery("ethhook-test")
    publisher.config_from_object("celeryconfig")
    publisher.conf.broker_url = broker_url
    engine = create_engine(postgres.url)
    try:
        pipeline.ethhook("db", "upgrade")
        pipeline.start("match")
        with engine.connect() as lock:
            lock.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
            publisher.send_task("ethhook.match.match_events", queue="match",
                                kwargs={"event_ids": ["evt_none"], "token": "t"})  # fmt: skip
            wait_until(lambda: "] received" in pipeline.log("match"), 30, 0.2, "the task to start")

            # When Redis restarts (the worker closes the lost connection with the task's message
            # unacknowledged), and the task ends after the worker reconnected (and acknowledges
            # its message on the old connection)
            redis.restart(down_s=2)
            wait_until(lambda: pipeline.log("match").count(" Connected to redis://") >= 2,
                       60, 0.2, "the worker to reconnect")  # fmt: skip
            lock.rollback()
        wait_until(lambda: "match.batch.done events=1 claimed=0" in pipeline.log("match"), 30,
                   0.2, "the task to end")  # fmt: skip

        # Then the worker is still there, and takes new messages
        publisher.send_task("ethhook.test.ping", queue="match")
        wait_until(lambda: "'ethhook.test.ping'" in pipeline.log("match"), 30, 0.2, "a new message")
        assert pipeline.procs["match"].poll() is None
        assert "Unrecoverable error" not in pipeline.log("match")
    finally:
        engine.dispose()
        publisher.close()
        pipeline.stop()
