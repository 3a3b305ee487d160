"""The same code on RabbitMQ: stored events in, signed webhooks out, through a worker on AMQP."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from celery import Celery

from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.workqueue import MATCH_TASK, store_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.services import Worker
from tests.support.waiting import wait_until

AMQP = "amqp://guest:guest@127.0.0.1:5672"


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture()
def vhost() -> Iterator[str]:
    """A fresh RabbitMQ virtual host, deleted afterwards (queues and messages with it)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl not found: install rabbitmq-server (.ci/run does)")
    name = f"ethhook_test_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"{AMQP}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.mark.usefixtures("db")
def test_a_worker_on_rabbitmq_delivers_every_matching_event_once(receiver, vhost):
    worker = Worker("rabbit", extra_env={"ETHHOOK_BROKER_URL": vhost}, pool="gevent", beat=False)
    publisher = Celery("ethhook-test")
    publisher.config_from_object("celeryconfig")
    publisher.conf.broker_url = vhost
    try:
        ids = [add_endpoint(receiver.url(f"/r{i}"), contracts=[address(90)])[0] for i in range(3)]
        events = [
            transfer(contract=address(90), block=1 + i // 50, log_index=i, value=i)
            for i in range(300)
        ]
        with session_scope() as session:
            groups = store_events(session, events, utcnow())
        for group in groups:
            publisher.send_task(
                MATCH_TASK, kwargs={"event_ids": group.event_ids, "token": group.token}
            )
        wait_until(lambda: len(receiver.requests) >= 900, 60, 0.2, "900 webhooks over RabbitMQ")
        per_id = Counter(r.webhook_id for r in receiver.requests)
        assert len(per_id) == 900 and set(per_id.values()) == {1}
        assert {r.path for r in receiver.requests} == {f"/r{i}" for i in range(len(ids))}
    finally:
        publisher.close()
        worker.stop()
