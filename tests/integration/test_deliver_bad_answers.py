"""A receiver whose answer to one delivery is malformed, among normal answers in the same task:
that attempt is recorded as a failure and follows its retry schedule, the others as successes."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from ethhook.db import session_scope
from ethhook.db.models import DeliveryStatus, Endpoint
from tests.support.db import deliveries, publish_events
from tests.support.endpoints import SCHEDULE, add_endpoint
from tests.support.factories import address, transfer
from tests.support.fixtures import session_worker_without
from tests.support.services import Worker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db", "worker")]

EVENTS = 5
BAD = 2  # the log index of the event whose deliveries get the bad answer

# Raw bytes: http.server would not put every one of these on the wire as they are.
GOOD_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
BAD_ANSWERS = {
    "retry-after-superscript-two": (
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: \xb2\r\n"
        b"content-length: 4\r\nconnection: close\r\n\r\nbusy"
    ),
    "retry-after-date-overflow": (
        b"HTTP/1.1 429 Too Many Requests\r\n"
        b"retry-after: Thu, 27 Nov 2026 03:01:00 +99999999999999999\r\n"
        b"content-length: 4\r\nconnection: close\r\n\r\nslow"
    ),
    "nul-in-body": (
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 5\r\n"
        b"connection: close\r\n\r\nno\x00pe"
    ),
}
STATUS = {"retry-after-superscript-two": 503, "retry-after-date-overflow": 429, "nul-in-body": 500}
STORED_BODY = {
    "retry-after-superscript-two": "busy",
    "retry-after-date-overflow": "slow",
    "nul-in-body": "no\ufffdpe",
}


@dataclass
class RawReceiver:
    """A loopback HTTP receiver on a bare socket: it answers each request with the bytes
    `answer(log_index)` gives, one request per connection, and records the log indexes."""

    answer: Callable[[int], bytes]
    seen: list[tuple[int, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.server.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/hook"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, body = data.split(b"\r\n\r\n", 1)
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")[1:]
                    if line.lower().startswith(b"content-length:")
                )
                while len(body) < length:
                    body += conn.recv(65536)
                log_index = json.loads(body)["data"]["log_index"]
                with self._lock:
                    self.seen.append((log_index, time.time()))
                conn.sendall(self.answer(log_index))
            except OSError:
                return

    def times(self, log_index: int) -> list[float]:
        with self._lock:
            return [at for i, at in self.seen if i == log_index]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.server.close()


@pytest.fixture()
def gevent_deliver_worker() -> Iterator[None]:
    """A gevent deliver worker (the production pool) instead of the session worker's threads."""
    with session_worker_without("deliver"):
        worker = Worker(
            f"deliver-gevent-{os.getpid()}", beat=False, pool="gevent", queues="deliver"
        )
        yield
        worker.stop()


def run_scenario(kind: str) -> None:
    receiver = RawReceiver(lambda i: BAD_ANSWERS[kind] if i == BAD else GOOD_ANSWER)
    try:
        endpoint_id, _ = add_endpoint(receiver.url, contracts=[contract()], retry_schedule=SCHEDULE)
        publish_events(
            [transfer(contract=contract(), block=7, log_index=i, value=i) for i in range(EVENTS)]
        )

        def bad_failed() -> bool:
            rows = deliveries(endpoint_id)
            return BAD in rows and rows[BAD][0].status == DeliveryStatus.FAILED

        wait_until(bad_failed, 30, 0.2, f"the delivery answered {kind} to be failed")
        rows = deliveries(endpoint_id)
    finally:
        receiver.stop()

    # The others: one attempt each, a success, recorded with the bad one's first attempt or after.
    assert sorted(rows) == list(range(EVENTS))
    for i, (delivery, attempts) in rows.items():
        if i == BAD:
            continue
        assert delivery.status == DeliveryStatus.SUCCEEDED, (i, delivery.last_error)
        assert [(a.attempt_number, a.status_code, a.error) for a in attempts] == [(1, 200, None)]
        assert len(receiver.times(i)) == 1

    # The bad one: every attempt recorded with the status it got, then given up on schedule.
    delivery, attempts = rows[BAD]
    status = STATUS[kind]
    assert [(a.attempt_number, a.status_code) for a in attempts] == [
        (1, status),
        (2, status),
        (3, status),
    ]
    assert {a.response_body for a in attempts} == {STORED_BODY[kind]}
    assert (delivery.attempts, delivery.last_status_code) == (3, status)
    assert delivery.last_error == f"HTTP {status}"
    sent = receiver.times(BAD)
    assert len(sent) == 3
    assert all(later - earlier >= 0.9 for earlier, later in zip(sent, sent[1:], strict=False))
    # A dead letter counts toward auto-disable: the endpoint is failing since its last flush.
    with session_scope() as session:
        endpoint = session.get(Endpoint, endpoint_id)
        assert endpoint is not None and endpoint.failing_since is not None


def contract() -> str:
    return address(83)


@pytest.mark.parametrize("kind", sorted(BAD_ANSWERS))
def test_one_bad_answer_is_recorded_as_a_failed_attempt_and_the_rest_of_the_task_as_usual(kind):
    run_scenario(kind)


@pytest.mark.usefixtures("gevent_deliver_worker")
def test_the_same_on_a_gevent_deliver_worker():
    run_scenario("retry-after-superscript-two")
