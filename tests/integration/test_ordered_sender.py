"""A message for an ordered endpoint that a task of this worker is sending is left to that task
(deliver.ordered.Senders): acknowledged at once, without waiting for the endpoint's turn or
claiming anything, and its deliveries are sent by the sender next, each once, in sequence order;
including a message that comes as the sender finds nothing more to claim. A sender that stops
early publishes the messages left to it again, so their deliveries do not wait for their
leases to expire."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import update

from ethhook.celery_app import app
from ethhook.config import Settings, get_settings
from ethhook.db import session_scope
from ethhook.db.models import Endpoint, utcnow
from ethhook.deliver import service
from ethhook.deliver.answers import Report
from ethhook.deliver.service import deliver
from ethhook.workqueue import DELIVER_TASK, DispatchGroup, range_of
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db", "redis_server", "without_session_worker")

# One task of an endpoint sends at a time in a worker (its cap on requests in flight holds one
# window): a message that went through the endpoint's turn would wait for the sender to end.
ONE_TASK_AT_A_TIME = {"delivery_window": 8, "endpoint_max_in_flight": 8}


def settings_with(**changes: float) -> Settings:
    return get_settings().__class__(**{**get_settings().__dict__, **changes})


def block(contract: int, number: int, count: int) -> DispatchGroup:
    """`count` Transfers of one block, stored and matched: the ordered endpoint's message."""
    events = [transfer(contract=address(contract), block=number, log_index=i, value=i)
              for i in range(count)]  # fmt: skip
    with session_scope() as session:
        (group,) = store_and_match(session, events, utcnow())
    return group


def deliver_on_thread(settings: Settings, endpoint_id: int, group: DispatchGroup) -> Any:
    reports: list[Report] = []
    thread = threading.Thread(
        target=lambda: reports.append(
            deliver(session_scope, settings, endpoint_id, group.delivery_ids, group.token)
        )
    )
    thread.start()
    return thread, reports


def sequences(receiver: Any, path: str) -> list[int]:
    return [int(r.json["sequence"]) for r in receiver.on(path)]


def published(*messages: DispatchGroup) -> list[dict[str, Any]]:
    """The deliver messages of these messages' tokens waiting on the broker, taken off it (no
    worker runs in this module: the test runs them)."""
    tokens = {m.token for m in messages}
    mine: list[dict[str, Any]] = []
    others = []
    with app.connection_for_read() as conn:
        queue = app.amqp.router.route({}, DELIVER_TASK)["queue"].bind(conn.default_channel)
        while (message := queue.get()) is not None:
            _args, kwargs, _embed = message.decode()
            if kwargs["token"] in tokens:
                mine.append(kwargs)
                message.ack()
            else:
                others.append(message)
        for message in others:
            message.requeue()
    return mine


def run(settings: Settings, message: dict[str, Any]) -> Report:
    """The message's task, as a worker would run it (deliver.tasks.deliver_endpoint)."""
    bounds = range_of(message.get("event_at_range"))
    ids, token = message["delivery_ids"], message["token"]
    return deliver(session_scope, settings, message["endpoint_id"], ids, token, bounds)


def sender_waits_with_a_message_left(
    receiver: Any, path: str, contract: int, settings: Settings
) -> tuple[int, threading.Event, Any, Any, DispatchGroup]:
    """An ordered endpoint's sender holding its first request (of a block of 5) until `go` is
    set, and a second block's message left to it."""
    go = threading.Event()
    receiver.responders[path] = lambda _n: (go.wait(20), (200, {}, b"ok"))[1]
    endpoint_id, _ = add_endpoint(
        receiver.url(path), contracts=[address(contract)], ordered="pause"
    )
    sender, reports = deliver_on_thread(settings, endpoint_id, block(contract, 1, 5))
    wait_until(lambda: len(receiver.on(path)) == 1, 20, 0.02, "the sender's first request")
    second = block(contract, 2, 5)
    left = deliver(session_scope, settings, endpoint_id, second.delivery_ids, second.token)
    assert (left.sent, left.skipped) == (0, 5)
    return endpoint_id, go, sender, reports, second


def test_a_message_for_an_endpoint_being_sent_is_left_to_its_sender(receiver):
    go = threading.Event()
    receiver.responders["/os1"] = lambda _n: (go.wait(20), (200, {}, b"ok"))[1]
    endpoint_id, _ = add_endpoint(receiver.url("/os1"), contracts=[address(71)], ordered="pause")
    settings = settings_with(**ONE_TASK_AT_A_TIME)
    first = block(71, 1, 5)
    sender, reports = deliver_on_thread(settings, endpoint_id, first)
    wait_until(lambda: len(receiver.on("/os1")) == 1, 20, 0.02, "the sender's first request")

    second = block(71, 2, 5)
    started = time.monotonic()
    left = deliver(session_scope, settings, endpoint_id, second.delivery_ids, second.token)
    assert time.monotonic() - started < 2  # not after the sender's turn: its first request waits
    assert (left.sent, left.skipped) == (0, 5)

    go.set()
    sender.join(30)
    assert reports[0].sent == 10  # the second message's five too, by the sender
    assert sequences(receiver, "/os1") == list(range(1, 11))


def test_a_message_that_comes_as_the_sender_finds_nothing_more_is_still_sent(receiver, monkeypatch):
    endpoint_id, _ = add_endpoint(receiver.url("/os2"), contracts=[address(72)], ordered="pause")
    settings = settings_with(**ONE_TASK_AT_A_TIME)
    claim_ordered = service._claim_ordered
    late: list[Report] = []

    def claim_then_a_message_comes(*args: Any) -> Any:
        task, ordered = claim_ordered(*args)
        if task is None and not late:
            # The sender's claim read the head before this block was committed; its message
            # arrives before the sender has stopped.
            group = block(72, 2, 4)
            late.append(
                deliver(session_scope, settings, endpoint_id, group.delivery_ids, group.token)
            )
        return task, ordered

    monkeypatch.setattr(service, "_claim_ordered", claim_then_a_message_comes)
    first = block(72, 1, 4)
    report = deliver(session_scope, settings, endpoint_id, first.delivery_ids, first.token)

    assert (late[0].sent, late[0].skipped) == (0, 4)  # left to the sender
    assert report.sent == 8  # which claimed again, and sent them
    assert sequences(receiver, "/os2") == list(range(1, 9))


def test_a_sender_out_of_time_publishes_the_newest_message_left_to_it_again(receiver):
    # A budget of 1 s: the sender's first request outlasts it, and it stops after that request.
    settings = settings_with(
        **ONE_TASK_AT_A_TIME, delivery_lease_s=5.0, delivery_read_timeout_s=5.0
    )
    endpoint_id, go, sender, reports, second = sender_waits_with_a_message_left(
        receiver, "/os3", 73, settings
    )
    time.sleep(1.2)  # the budget is spent while the request waits
    go.set()
    sender.join(30)
    assert reports[0].sent == 1 and reports[0].released == 4

    (again,) = published(second)  # the message left to it, for a task to claim the head
    assert again["token"] == second.token
    assert run(settings, again).sent == 9  # from the head on: the first block's four, then its five
    assert sequences(receiver, "/os3") == list(range(1, 11))


def test_a_sender_whose_endpoint_is_no_longer_ordered_publishes_the_messages_left_to_it(
    receiver,
):
    settings = settings_with(**ONE_TASK_AT_A_TIME)
    endpoint_id, go, sender, reports, second = sender_waits_with_a_message_left(
        receiver, "/os4", 74, settings
    )
    with session_scope() as session:  # `endpoint update --ordered off` while the sender sends
        session.execute(update(Endpoint).where(Endpoint.id == endpoint_id).values(ordered=None))
    go.set()
    sender.join(30)
    assert reports[0].sent == 5  # its own claim's five

    (again,) = published(second)
    assert again["delivery_ids"] == second.delivery_ids  # each message, to claim its own
    assert run(settings, again).sent == 5  # its lease was the message's: no wait for it to end
    assert sorted(sequences(receiver, "/os4")) == list(range(1, 11))
    assert len({r.headers["webhook-id"] for r in receiver.on("/os4")}) == 10
