"""The whole pipeline on RabbitMQ (listener, match, deliver and beat on `amqp://`, in a virtual host
of its own; Redis keeps only the breaker and rate-limit state) under a steady stream of events:
every event arrives once, and a RabbitMQ restart under the stream loses none, with every process
reconnecting by itself."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.support.faults_rig import Rig, make_rig
from tests.support.faults_stream import settle
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

AMQP = "amqp://guest:guest@127.0.0.1:5672"
WORK_QUEUES = {"match", "deliver", "maintenance"}
WORKERS = ("match", "deliver", "beat")


def rabbitmqctl(*args: str, timeout_s: float = 120) -> str:
    result = subprocess.run(
        ["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=timeout_s
    )
    return result.stdout


@pytest.fixture(scope="module")
def vhost() -> Iterator[str]:
    """A fresh RabbitMQ virtual host, deleted afterwards (queues and messages with it)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl not found: install rabbitmq-server (.ci/run does)")
    name = f"ethhook_faults_{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


@pytest.fixture(scope="module")
def rig(vhost: str) -> Iterator[Rig]:
    yield from make_rig(broker_url=f"{AMQP}/{vhost}")


def queues(vhost: str) -> dict[str, tuple[bool, int]]:
    """Queue name → (durable, messages) in the virtual host."""
    lines = rabbitmqctl("list_queues", "-p", vhost, "--no-table-headers", "name", "durable",
                        "messages").splitlines()  # fmt: skip
    return {
        name: (durable == "true", int(messages))
        for name, durable, messages in (line.split("\t") for line in lines if line.strip())
    }


def consuming(vhost: str) -> set[str]:
    """The work queues in the virtual host that have a consumer (not the workers' pidboxes)."""
    lines = rabbitmqctl("list_consumers", "-p", vhost, "--no-table-headers", "queue_name")
    return {line.strip() for line in lines.splitlines()} & WORK_QUEUES


def test_the_pipeline_on_rabbitmq_delivers_every_event_once(rig, vhost):
    # Given the pipeline publishing and consuming on RabbitMQ
    assert consuming(vhost) == WORK_QUEUES

    # When a stream of events runs
    expected = rig.stream().wait_and_stop(8)

    # Then every event arrives once, and Redis holds no message queue
    outcome = settle(rig.receiver, expected, 120, "RabbitMQ: steady stream")
    assert outcome.lost == 0 and outcome.repeated_ids == 0 and outcome.unverified == 0
    assert not {b"match", b"deliver", b"maintenance"} & set(rig.redis.client().keys())


def test_a_rabbitmq_restart_under_the_stream_loses_nothing(rig, vhost):
    # Given a stream running on RabbitMQ, brisk enough that tasks are in flight when it stops
    pids = {name: proc.pid for name, proc in rig.pipeline.procs.items()}
    connected = {name: rig.pipeline.log(name).count("Connected to amqp") for name in WORKERS}
    stream = rig.stream(tx_per_s=5)
    time.sleep(3)

    # When RabbitMQ stops for a few seconds (every connection closed, the port refusing), and
    # starts again
    rabbitmqctl("stop_app")
    time.sleep(5)
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    time.sleep(2)
    failures = broker_failures(rig)
    time.sleep(5)
    expected = stream.stop()

    # Then every event arrives, each once, and the virtual host and its durable queues survived
    outcome = settle(rig.receiver, expected, 180, "RabbitMQ restart (stop_app 5 s, start_app)")
    assert outcome.lost == 0 and outcome.repeated_ids == 0 and outcome.unverified == 0
    assert {name for name, (durable, _) in queues(vhost).items() if durable} >= WORK_QUEUES

    # ... and every process is the one that started and recovered by itself: the listener and
    # beat publish again, every worker reconnected and consumes its queue again
    for name, proc in rig.pipeline.procs.items():
        assert proc.poll() is None, f"{name} exited: {rig.pipeline.log(name)[-3000:]}"
    assert {name: proc.pid for name, proc in rig.pipeline.procs.items()} == pids
    assert broker_failures(rig) == failures
    for name in WORKERS:
        assert rig.pipeline.log(name).count("Connected to amqp") > connected[name], name
    wait_until(lambda: consuming(vhost) == WORK_QUEUES, 60, 0.5, "every worker to consume again")


def broker_failures(rig: Rig) -> tuple[int, int]:
    """Publishes that failed so far: the listener's matcher tasks, beat's scheduled tasks."""
    return (
        rig.pipeline.log("listener").count("dispatch.enqueue.failed"),
        rig.pipeline.log("beat").count("SchedulingError"),
    )
