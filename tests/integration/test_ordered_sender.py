"""A message for an ordered endpoint that a task of this worker is sending is left to that task
(deliver.ordered.Senders): acknowledged at once, without waiting for the endpoint's turn or
claiming anything, and its deliveries are sent by the sender next, each once, in sequence order;
including a message that comes as the sender finds nothing more to claim."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from ethhook.config import Settings, get_settings
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.deliver import service
from ethhook.deliver.answers import Report
from ethhook.deliver.service import deliver
from ethhook.workqueue import DispatchGroup
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db", "without_session_worker")

# One task of an endpoint sends at a time in a worker (its cap on requests in flight holds one
# window): a message that went through the endpoint's turn would wait for the sender to end.
ONE_TASK_AT_A_TIME = {"delivery_window": 8, "endpoint_max_in_flight": 8}


def settings_with(**changes: int) -> Settings:
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
        task = claim_ordered(*args)
        if task is None and not late:
            # The sender's claim read the head before this block was committed; its message
            # arrives before the sender has stopped.
            group = block(72, 2, 4)
            late.append(
                deliver(session_scope, settings, endpoint_id, group.delivery_ids, group.token)
            )
        return task

    monkeypatch.setattr(service, "_claim_ordered", claim_then_a_message_comes)
    first = block(72, 1, 4)
    report = deliver(session_scope, settings, endpoint_id, first.delivery_ids, first.token)

    assert (late[0].sent, late[0].skipped) == (0, 4)  # left to the sender
    assert report.sent == 8  # which claimed again, and sent them
    assert sequences(receiver, "/os2") == list(range(1, 9))
