"""The demo's receiver answers a test webhook (sent from the console while the demo keeps running)
with 200 and counts it apart from the chain events it times."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from ethhook.db.models import utcnow
from ethhook.deliver.signing import generate_secret, webhook_headers
from ethhook.demo.receiver import DemoReceiver
from ethhook.service.testsend import build_test_body


@pytest.fixture()
def receiver() -> Iterator[DemoReceiver]:
    node = DemoReceiver(generate_secret())
    try:
        yield node
    finally:
        node.stop()


def signed(receiver: DemoReceiver, msg_id: str, body: bytes) -> dict[str, str]:
    return webhook_headers([receiver.secret], msg_id, int(time.time()), body, "test")


def test_a_test_webhook_is_answered_200_and_not_counted_as_an_event(
    receiver: DemoReceiver,
) -> None:
    # Given a signed endpoint.test webhook
    body = build_test_body(1, "msg_test_1", utcnow())

    # When it arrives
    status = receiver.accept(signed(receiver, "msg_test_1", body), body)

    # Then it is accepted and counted as a test, not as a delivered event
    assert status == 200
    assert receiver.tests == 1
    assert receiver.count() == 0
    assert receiver.unverified == 0


def test_an_event_webhook_is_counted_with_its_transaction(receiver: DemoReceiver) -> None:
    # Given a signed event webhook
    body = json.dumps({"type": "event", "data": {"transaction_hash": "0xab"}}).encode()

    # When it arrives twice
    first = receiver.accept(signed(receiver, "msg_1", body), body)
    again = receiver.accept(signed(receiver, "msg_1", body), body)

    # Then it counts once, with its transaction, and the second is a duplicate
    assert (first, again) == (200, 200)
    assert receiver.count() == 1
    assert receiver.duplicates == 1
    assert receiver.tx_of == {"msg_1": "0xab"}
    assert receiver.tests == 0


def test_an_unsigned_test_webhook_is_refused(receiver: DemoReceiver) -> None:
    body = build_test_body(1, "msg_test_2", utcnow())
    assert receiver.accept({"webhook-id": "msg_test_2"}, body) == 401
    assert (receiver.unverified, receiver.tests) == (1, 0)


@pytest.mark.parametrize("stamp", ["²", "١٧٠٠٠٠٠٠٠٠", " 1700000000", "1e9", ""])
def test_a_timestamp_that_is_not_ascii_digits_is_refused_not_a_crash(
    receiver: DemoReceiver, stamp: str
) -> None:
    body = build_test_body(1, "msg_test_3", utcnow())
    headers = {**signed(receiver, "msg_test_3", body), "webhook-timestamp": stamp}
    assert receiver.accept(headers, body) == 401
    assert receiver.unverified == 1
