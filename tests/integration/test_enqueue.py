"""Publishing: the messages enqueue_groups builds are the ones app.send_task would publish."""

from __future__ import annotations

from typing import Any

import pytest
from celery.signals import after_task_publish, before_task_publish

import ethhook.workqueue.enqueue as enqueue
from ethhook.celery_app import app
from ethhook.queues import Queue
from ethhook.workqueue import DELIVER_TASK, DispatchGroup, enqueue_groups

TASK_ID = "0b5f9b0e-5d8e-4d4e-9a38-7d3c1f6a2b11"


def published(send: Any) -> list[dict[str, Any]]:
    """What before_task_publish saw while `send()` ran (the message and how it is published)."""
    seen: list[dict[str, Any]] = []

    def capture(sender=None, **message):  # noqa: ANN001, ANN003
        seen.append({"sender": sender, **message})

    before_task_publish.connect(capture)
    try:
        send()
    finally:
        before_task_publish.disconnect(capture)
    return seen


def send_task_reference(kwargs: dict[str, Any], countdown: float | None) -> None:
    """How each deliver message was published before: one app.send_task call per message."""
    with app.producer_or_acquire() as producer, producer.batch():
        queue = app.amqp.router.route({}, DELIVER_TASK)["queue"]
        app.send_task(
            DELIVER_TASK,
            kwargs=kwargs,
            producer=producer,
            countdown=countdown,
            queue=queue,
            declare=[],
            argsrepr="()",
            kwargsrepr=repr(kwargs)[:1024],
            task_id=TASK_ID,
        )


@pytest.mark.usefixtures("redis_server")
@pytest.mark.parametrize("countdown", [None, 5.0])
@pytest.mark.parametrize("registered", [False, True])
def test_enqueued_messages_are_the_ones_send_task_publishes(
    monkeypatch: pytest.MonkeyPatch, countdown: float | None, registered: bool
) -> None:
    if registered:
        # As in a worker, where the task modules are imported and the tasks' options apply.
        import ethhook.deliver.tasks  # noqa: F401

        app.finalize(auto=True)
    group = DispatchGroup(endpoint_id=7, delivery_ids=[1, 2, 3], token="m-abc")
    kwargs = {"endpoint_id": 7, "delivery_ids": [1, 2, 3], "token": "m-abc"}
    monkeypatch.setattr(enqueue, "uuid", lambda: TASK_ID)

    (ours,) = published(lambda: enqueue_groups([group], countdown=countdown))
    (reference,) = published(lambda: send_task_reference(kwargs, countdown))

    for message in (ours, reference):
        if countdown:  # the ETA is computed from the clock when the message is built
            assert message["headers"].pop("eta")
    assert ours == reference
    assert ours["body"][1] == kwargs


def test_every_group_becomes_one_message_in_the_deliver_queue(redis_server: str) -> None:
    """Counted as the broker accepted them (after_task_publish): the suite's worker consumes the
    deliver queue meanwhile, so its length would race it."""
    groups = [DispatchGroup(endpoint_id=i, delivery_ids=[i], token=f"m-{i}") for i in range(120)]
    sent: list[tuple[str, int]] = []

    def count(sender=None, headers=None, body=None, routing_key=None, **_):  # noqa: ANN001, ANN003
        sent.append((routing_key, body[1]["endpoint_id"]))

    after_task_publish.connect(count)
    try:
        assert enqueue_groups(groups) == 120
    finally:
        after_task_publish.disconnect(count)

    assert sorted(sent) == [(Queue.DELIVER.value, i) for i in range(120)]
