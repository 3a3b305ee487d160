"""The same code on RabbitMQ: batches in, signed webhooks out, through a worker on an AMQP broker."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
from celery import Celery

from tests.conftest import Worker, wait_until
from tests.factories import address, batches, transfer
from tests.integration.helpers import add_endpoint

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
        for batch in batches(events, 100):
            publisher.send_task("ethhook.match.match_events", kwargs={"batch": batch.to_json()})
        wait_until(lambda: len(receiver.requests) >= 900, 60, 0.2, "900 webhooks over RabbitMQ")
        per_id = Counter(r.webhook_id for r in receiver.requests)
        assert len(per_id) == 900 and set(per_id.values()) == {1}
        assert {r.path for r in receiver.requests} == {f"/r{i}" for i in range(len(ids))}
    finally:
        publisher.close()
        worker.stop()
