"""Ordered endpoints (`--ordered`): real deliver workers (one, then two) send an endpoint's webhooks
to the real receiver strictly in sequence order, a failing one holding those after it while its
retries run; a dead-lettered head pauses the endpoint (until a retry) or, with skip-dead, is
skipped and the skip recorded; a bad `--ordered` is refused with one line."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery
from tests.support.cli import assert_refused, ethhook
from tests.support.db import publish_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.receiver import Received, Receiver
from tests.support.services import Worker
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db")

SCHEDULE = "0,1,1,1"  # four attempts, a second apart


def cli_json(*args: str) -> dict:
    result = ethhook(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def sequence_of(request: Received) -> int:
    return int(request.json["sequence"])


def fail_sequence(number: int, times: int) -> tuple[dict[int, int], object]:
    """An answer that fails the webhook of `number` `times` times (500), then accepts; every
    other webhook is accepted at once."""
    failures: dict[int, int] = {}
    lock = threading.Lock()

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        sequence = sequence_of(request)
        with lock:
            if sequence == number and failures.get(sequence, 0) < times:
                failures[sequence] = failures.get(sequence, 0) + 1
                return 500, {}, b"not now"
        return 200, {}, b"ok"

    return failures, answer


def by_sequence(endpoint_id: int) -> dict[int, Delivery]:
    with session_scope() as session:
        rows = session.scalars(select(Delivery).where(Delivery.endpoint_id == endpoint_id)).all()
        session.expunge_all()
    return {int(d.sequence): d for d in rows if d.sequence is not None}


def status_of(endpoint_id: int, sequence: int) -> str | None:
    found = by_sequence(endpoint_id).get(sequence)
    return None if found is None else found.status


def publish(contract: str, block: int, count: int) -> None:
    publish_events(
        [transfer(contract=contract, block=block, log_index=i, value=i) for i in range(count)]
    )


def assert_in_order_with_the_third_held(got: list[Received], total: int) -> None:
    """Every webhook arrived once in sequence order but the 3rd (three failures, then its
    success), and none after the 3rd before its success."""
    assert [sequence_of(r) for r in got] == [1, 2, 3, 3, 3, 3, *range(4, total + 1)]
    assert [r.status for r in got[2:6]] == [500, 500, 500, 200]
    third_ok = got[5]
    assert all(r.at >= (third_ok.done or 0) for r in got[6:])
    ok = [sequence_of(r) for r in got if r.status == 200]
    assert ok == list(range(1, total + 1))


def run_acceptance(receiver: Receiver, path: str, contract: str) -> tuple[int, list[Received]]:
    """An --ordered endpoint whose receiver fails the 3rd webhook three times: 12 events in
    three batches (three deliver messages in flight at once), the last published while the 3rd
    is failing; returns the endpoint id and what the receiver got, in arrival order."""
    failures, answer = fail_sequence(3, 3)
    receiver.answers[path] = answer  # type: ignore[assignment]
    created = cli_json(
        "endpoint", "add", "--url", receiver.url(path), "--contract", contract,
        "--retry-schedule", SCHEDULE, "--ordered",
    )  # fmt: skip
    assert created["ordered"] == "pause"
    publish(contract, 1, 4)
    publish(contract, 2, 4)
    wait_until(lambda: failures.get(3, 0) >= 1, 60, 0.05, "the 3rd webhook's first failure")
    publish(contract, 3, 4)
    wait_until(lambda: len([r for r in receiver.on(path) if r.status == 200]) >= 12, 90, 0.1,
               "12 webhooks accepted")  # fmt: skip
    return created["id"], receiver.on(path)


def assert_attempts(endpoint_id: int) -> None:
    """The 3rd used four attempts; the ones it held used one each (waiting costs none)."""

    def recorded() -> bool:
        return [d.status for d in by_sequence(endpoint_id).values()] == ["succeeded"] * 12

    wait_until(recorded, 30, 0.1, "12 deliveries recorded succeeded")
    rows = by_sequence(endpoint_id)
    assert sorted(rows) == list(range(1, 13))
    assert {s: d.attempts for s, d in rows.items()} == {s: 4 if s == 3 else 1 for s in rows}
    assert {d.status for d in rows.values()} == {"succeeded"}


@pytest.mark.usefixtures("worker")
def test_a_failing_webhook_holds_those_after_it_until_it_succeeds(receiver):
    endpoint_id, got = run_acceptance(receiver, "/ordered", address(90))
    assert_in_order_with_the_third_held(got, 12)
    assert_attempts(endpoint_id)
    assert receiver.most_in_flight("/ordered") == 1


@pytest.mark.usefixtures("worker")
def test_blocks_matched_side_by_side_arrive_in_the_chains_order(receiver):
    contract = address(92)
    endpoint_id, secret = add_endpoint(
        receiver.url("/chain"), contracts=[contract], ordered="pause"
    )
    receiver.secrets["/chain"] = secret
    # One match task per block, published at once: the worker's threads match them side by side
    # and commit in any order.
    for block in range(1, 17):
        publish(contract, block, 8)
    wait_until(lambda: len(receiver.on("/chain")) >= 128, 90, 0.1, "128 webhooks")
    got = receiver.on("/chain")
    assert all(r.verified and r.status == 200 for r in got)
    assert [sequence_of(r) for r in got] == list(range(1, 129))
    positions = [(r.json["data"]["block_number"], r.json["data"]["log_index"]) for r in got]
    assert positions == sorted(positions)
    assert len(set(positions)) == 128


@pytest.fixture()
def second_deliver_worker(worker: Worker) -> Iterator[Worker]:
    """A second worker process taking deliver tasks beside the session's (no beat of its own)."""
    w = Worker(f"ordered-2-{os.getpid()}", beat=False, queues="deliver", concurrency=4)
    yield w
    w.stop()


def test_the_order_holds_with_two_deliver_workers(receiver, second_deliver_worker):
    endpoint_id, got = run_acceptance(receiver, "/ordered2", address(91))
    assert_in_order_with_the_third_held(got, 12)
    assert_attempts(endpoint_id)
    assert receiver.most_in_flight("/ordered2") == 1
    # Both workers took tasks for it: the order did not come from one worker alone.
    assert f"deliver.task.done endpoint={endpoint_id}" in second_deliver_worker.log()


@pytest.mark.usefixtures("worker")
def test_a_dead_lettered_head_pauses_the_endpoint_until_it_is_retried(receiver):
    # Given: a pause endpoint (the default) whose receiver refuses the 2nd webhook for now.
    refuse = threading.Event()
    refuse.set()

    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        if sequence_of(request) == 2 and refuse.is_set():
            return 500, {}, b"down"
        return 200, {}, b"ok"

    receiver.answers["/pause"] = answer  # type: ignore[assignment]
    contract = address(92)
    endpoint_id = cli_json(
        "endpoint", "add", "--url", receiver.url("/pause"), "--contract", contract,
        "--retry-schedule", "0,0.5", "--ordered=pause",
    )["id"]  # fmt: skip

    # When: four events; the 2nd uses its two attempts and is dead-lettered.
    publish(contract, 1, 4)
    wait_until(lambda: status_of(endpoint_id, 2) == "failed", 60, 0.1, "the 2nd dead-lettered")
    dead = by_sequence(endpoint_id)[2]

    # Then: the endpoint is paused and says why; nothing after the 2nd is sent while the due
    # scan (every second) runs several times and a new event arrives.
    publish(contract, 2, 1)
    wait_until(lambda: len(by_sequence(endpoint_id)) == 5, 30, 0.1, "the 5th numbered")
    shown = cli_json("endpoint", "show", str(endpoint_id))
    assert shown["paused"]["delivery_id"] == dead.id and shown["paused"]["sequence"] == 2
    assert f"ethhook delivery retry {dead.id}" in shown["paused"]["reason"]
    human = ethhook("endpoint", "show", str(endpoint_id)).stdout
    assert f"delivery {dead.id} (sequence 2) is dead-lettered" in human
    threading.Event().wait(3)  # the side effect that must not happen has time to happen
    assert [sequence_of(r) for r in receiver.on("/pause")] == [1, 2, 2]
    assert {s: d.attempts for s, d in by_sequence(endpoint_id).items()} == {
        1: 1, 2: 2, 3: 0, 4: 0, 5: 0,
    }  # fmt: skip

    # When: the operator retries it and the receiver accepts it now.
    refuse.clear()
    assert ethhook("delivery", "retry", str(dead.id)).returncode == 0

    # Then: it and those it held go out, in order; the endpoint is no longer paused.
    wait_until(lambda: len(receiver.on("/pause")) >= 7, 60, 0.1, "the held webhooks")
    assert [sequence_of(r) for r in receiver.on("/pause")] == [1, 2, 2, 2, 3, 4, 5]
    assert cli_json("endpoint", "show", str(endpoint_id))["paused"] is None


@pytest.mark.usefixtures("worker")
def test_skip_dead_goes_past_a_dead_lettered_head_and_records_the_skip(receiver):
    # Given: a skip-dead endpoint whose receiver always refuses the 2nd webhook.
    def answer(request: Received) -> tuple[int, dict[str, str], bytes]:
        return (500, {}, b"never") if sequence_of(request) == 2 else (200, {}, b"ok")

    receiver.answers["/skip"] = answer  # type: ignore[assignment]
    contract = address(93)
    endpoint_id = cli_json(
        "endpoint", "add", "--url", receiver.url("/skip"), "--contract", contract,
        "--retry-schedule", "0,0.5", "--ordered=skip-dead",
    )["id"]  # fmt: skip

    # When: four events.
    publish(contract, 1, 4)
    wait_until(lambda: len(receiver.on("/skip")) >= 5, 60, 0.1, "every webhook tried")

    # Then: the 2nd was tried twice, dead-lettered, and only then the 3rd and 4th were sent.
    got = receiver.on("/skip")
    assert [sequence_of(r) for r in got] == [1, 2, 2, 3, 4]
    assert got[3].at >= (got[2].done or 0)
    wait_until(lambda: status_of(endpoint_id, 4) == "succeeded", 30, 0.1, "the 4th recorded")
    rows = by_sequence(endpoint_id)
    assert rows[2].status == "failed" and rows[2].skipped_at is not None
    assert all(rows[s].skipped_at is None and rows[s].status == "succeeded" for s in (1, 3, 4))
    # The skip is recorded where users look: the delivery, and the worker's log.
    shown = cli_json("delivery", "show", str(rows[2].id))
    assert shown["skipped_at"] is not None and shown["status"] == "failed"
    line = f"deliver.ordered.skipped endpoint={endpoint_id} delivery={rows[2].id} sequence=2"
    wait_until(lambda: line in _worker_logs(), 10, 0.1, "the skip's log line")
    assert cli_json("endpoint", "show", str(endpoint_id))["paused"] is None


def _worker_logs() -> str:
    from tests.support.env import TMP

    return "".join(p.read_text() for p in TMP.glob("worker-*.log"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--ordered=sometimes"], "invalid --ordered 'sometimes': use pause, skip-dead"),
        (["--ordered", "fifo"], "invalid --ordered 'fifo'"),
    ],
)
def test_a_bad_ordered_value_is_refused_with_one_line(args, words):
    before = cli_json("endpoint", "list")
    line = assert_refused(ethhook("endpoint", "add", "--url", "https://example.com/h", *args))
    assert words in line
    assert cli_json("endpoint", "list") == before  # nothing made


def test_ordered_is_shown_changed_and_turned_off_by_the_cli():
    made = cli_json("endpoint", "add", "--url", "https://example.com/h")
    assert made["ordered"] is None
    endpoint_id = str(made["id"])
    assert cli_json("endpoint", "update", endpoint_id, "--ordered")["ordered"] == "pause"
    changed = cli_json("endpoint", "update", endpoint_id, "--ordered=skip-dead")
    assert changed["ordered"] == "skip-dead"
    assert cli_json("endpoint", "show", endpoint_id)["ordered"] == "skip-dead"
    assert cli_json("endpoint", "update", endpoint_id, "--ordered=off")["ordered"] is None
    line = assert_refused(ethhook("endpoint", "update", endpoint_id, "--ordered=yes"))
    assert "invalid --ordered 'yes'" in line
