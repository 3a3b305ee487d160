"""One test per delivery protection, measured at the receiver with real workers (issue 14).

Each test runs real deliveries (PostgreSQL, Redis, the loopback receiver, gevent deliver workers at
the README's -c 100) and asserts a bound computed from the settings the workers read, so a speed-up
that came from weakening a protection fails here: the window on a failing endpoint, the circuit
breaker, the rate limit, Retry-After and the cap on requests in flight.

The gevent workers consume a broker database of their own: the suite's main worker (threads, on
the default broker database) takes none of these tests' messages, so what the receiver sees came
from the worker processes a test started.
"""

from __future__ import annotations

import bisect
import collections
import math
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import formatdate, parsedate_to_datetime

import pytest
import redis
from sqlalchemy import select, update

from ethhook.config import Settings, load_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryStatus, Endpoint, utcnow
from ethhook.types import webhook_id_for
from ethhook.workqueue import DELIVER_TASK, DispatchGroup, enqueue_groups, new_token
from tests.support.db import add_pending_deliveries
from tests.support.endpoints import add_endpoint
from tests.support.env import TEST_ENV
from tests.support.factories import address, transfer
from tests.support.receiver import Received, Receiver
from tests.support.services import Worker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("db")]

# The README's deliver worker: `-P gevent -c 100`.
CONCURRENCY = 100
BROKER_URL = TEST_ENV["ETHHOOK_BROKER_URL"].rsplit("/", 1)[0] + "/5"
# A message's lease outlives every test here, so the main worker's beat never dispatches these
# deliveries again to its own queue.
MESSAGE_LEASE_S = 300
ANSWER_S = 0.05  # each answer takes this long, so requests that overlap are seen overlapping


@pytest.fixture()
def broker(redis_server: str) -> Iterator[str]:
    """The private broker database, empty before and after the test (with its workers gone, the
    deferred messages they held must not reach the next test's endpoints, which reuse ids)."""
    client = redis.Redis.from_url(BROKER_URL)
    client.flushdb()
    yield BROKER_URL
    client.flushdb()
    client.close()


def worker_settings(**env: str) -> Settings:
    """The settings a worker started with these overrides reads."""
    return load_settings({**os.environ, **env})


def deliver_worker(name: str, **env: str) -> Worker:
    return Worker(
        name,
        extra_env={"ETHHOOK_BROKER_URL": BROKER_URL, **env},
        beat=False,
        pool="gevent",
        concurrency=CONCURRENCY,
        queues="deliver",
    )


def backlog(
    endpoint_id: int, tasks: int, per_task: int, contract: int
) -> tuple[list[DispatchGroup], list[set[str]]]:
    """`tasks` deliver messages of `per_task` pending deliveries each, leased to their message;
    returns the messages and each one's webhook ids."""
    events = [
        transfer(
            contract=address(contract), block=contract * 1000 + n // 100, log_index=n % 100, value=n
        )
        for n in range(tasks * per_task)
    ]
    now = utcnow()
    with session_scope() as session:
        ids = add_pending_deliveries(session, endpoint_id, events, now)
        groups = []
        for k in range(tasks):
            chunk, token = ids[k * per_task : (k + 1) * per_task], new_token()
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(chunk))
                .values(
                    lease_token=token, lease_expires_at=now + timedelta(seconds=MESSAGE_LEASE_S)
                )
            )
            groups.append(DispatchGroup(endpoint_id, chunk, token))
    webhook_ids = [
        {
            webhook_id_for(endpoint_id, e.event_id, "event.instant")
            for e in events[k * per_task : (k + 1) * per_task]
        }
        for k in range(tasks)
    ]
    return groups, webhook_ids


def publish(groups: Sequence[DispatchGroup]) -> None:
    """One deliver message per group on the private broker, as enqueue_groups sends them."""
    from ethhook.celery_app import app

    with app.connection_for_write(BROKER_URL) as conn:
        for g in groups:
            app.send_task(
                DELIVER_TASK,
                kwargs={
                    "endpoint_id": g.endpoint_id,
                    "delivery_ids": g.delivery_ids,
                    "token": g.token,
                },
                connection=conn,
                queue="deliver",
            )


def statuses(endpoint_id: int) -> collections.Counter[str]:
    with session_scope() as session:
        return collections.Counter(
            session.scalars(select(Delivery.status).where(Delivery.endpoint_id == endpoint_id))
        )


def disable(endpoint_id: int) -> None:
    """Stop a test's endpoint: its deferred messages then release their deliveries unsent."""
    with session_scope() as session:
        session.execute(update(Endpoint).where(Endpoint.id == endpoint_id).values(active=False))


def most_overlapping(requests: Sequence[Received]) -> int:
    """The most of these requests the receiver was answering at the same moment."""
    edges = sorted(
        [(r.at, 1) for r in requests] + [(r.done or r.at, -1) for r in requests],
        key=lambda e: (e[0], e[1]),  # an answer that ends as the next arrives: not overlapping
    )
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def failing(_: int) -> tuple[int, dict[str, str], bytes]:
    time.sleep(ANSWER_S)
    return 500, {}, b"down"


# --- 1. the window: a failing endpoint gets one request at a time per task -----------------------


def test_a_failing_endpoint_gets_one_request_at_a_time_per_task(receiver: Receiver, broker):
    # Given a gevent worker with an 8-request window and a breaker that never opens here (so the
    # window alone decides), and an endpoint answering 500 to everything
    env = {
        "ETHHOOK_DELIVERY_WINDOW": "8",
        "ETHHOOK_ENDPOINT_MAX_IN_FLIGHT": "16",
        "ETHHOOK_BREAKER_FAIL_MAX": "100000",
    }
    settings = worker_settings(**env)
    tasks = 4
    assert settings.delivery_window > 1 and settings.endpoint_max_in_flight > tasks
    receiver.responders["/one"] = failing
    receiver.responders["/many"] = failing
    one, _ = add_endpoint(receiver.url("/one"), retry_schedule="0")
    many, _ = add_endpoint(receiver.url("/many"), retry_schedule="0")
    worker = deliver_worker("window", **env)
    try:
        # When one message carries 30 deliveries
        groups, _ = backlog(one, tasks=1, per_task=30, contract=1)
        publish(groups)
        wait_until(lambda: statuses(one)[DeliveryStatus.FAILED] == 30, 60, 0.2, "30 attempts")
        # Then its 30 requests came one after another
        sent = receiver.on("/one")
        at_once = receiver.most_in_flight("/one")
        assert (len(sent), at_once, most_overlapping(sent)) == (30, 1, 1)

        # When 4 messages of 30 run at once in the same worker
        groups, ids_by_task = backlog(many, tasks=tasks, per_task=30, contract=2)
        publish(groups)
        wait_until(
            lambda: statuses(many)[DeliveryStatus.FAILED] == tasks * 30, 60, 0.2, "120 attempts"
        )
    finally:
        worker.stop()
    # Then no task's requests overlapped, and the endpoint never had more than one per task
    requests = receiver.on("/many")
    assert len(requests) == tasks * 30
    per_task = [
        most_overlapping([r for r in requests if r.webhook_id in ids]) for ids in ids_by_task
    ]
    assert per_task == [1] * tasks
    at_once = receiver.most_in_flight("/many")
    assert at_once <= tasks


# --- 2. the circuit breaker ------------------------------------------------------------------------

BREAKER_OBSERVED_S = 7.0  # a little over two reset timeouts of the suite's settings


def breaker_run(receiver: Receiver, cap: int, tasks: int) -> tuple[int, int, int]:
    """An endpoint answering 500, 300 deliveries to it in `tasks` messages, a gevent worker capped
    at `cap` requests in flight; returns (requests in the first BREAKER_OBSERVED_S, fail_max, trials
    that fit in that time)."""
    env = {"ETHHOOK_DELIVERY_WINDOW": "8", "ETHHOOK_ENDPOINT_MAX_IN_FLIGHT": str(cap)}
    settings = worker_settings(**env)
    receiver.responders["/down"] = failing
    endpoint_id, _ = add_endpoint(receiver.url("/down"), retry_schedule="0")
    groups, _ = backlog(endpoint_id, tasks=tasks, per_task=300 // tasks, contract=4)
    worker = deliver_worker("breaker", **env)
    try:
        publish(groups)
        first = wait_until(lambda: receiver.on("/down")[:1], 30, 0.05, "a first request")[0]
        time.sleep(max(0.0, first.at + BREAKER_OBSERVED_S + 0.5 - time.time()))
    finally:
        disable(endpoint_id)
        worker.stop()
    seen = sum(1 for r in receiver.on("/down") if r.at < first.at + BREAKER_OBSERVED_S)
    # After it opens, one trial per reset timeout at most.
    trials = math.ceil(BREAKER_OBSERVED_S / settings.breaker_reset_timeout_s)
    return seen, settings.breaker_fail_max, trials


def test_an_open_breaker_lets_through_only_what_was_in_flight_and_the_trials(
    receiver: Receiver, broker: str
):
    # Given a gevent worker capped at 16 requests in flight, the suite's breaker settings
    # (5 failures, 3 s), and an endpoint answering 500 to every one of 300 deliveries in 12
    # messages: every task can hold a slot, so each has at most one request on its way (the
    # window of a failing endpoint is one) when the breaker opens
    cap, tasks = 16, 12
    # When the worker sends for BREAKER_OBSERVED_S
    seen, fail_max, trials = breaker_run(receiver, cap, tasks)
    # Then the endpoint got the failures that opened the breaker, the requests already on their
    # way, and the half-open trials; without the breaker it would have got all 300
    in_flight = min(cap, tasks)
    assert fail_max <= seen <= fail_max + in_flight + trials, (seen, fail_max, in_flight, trials)


def test_an_open_breaker_bound_with_more_tasks_than_the_cap(receiver: Receiver, broker: str):
    """The same bound when many more tasks than the cap are queued for the endpoint.

    A task checks the breaker before its first window. Before an endpoint's tasks took turns
    (deliver.inflight.endpoint_turn), every task of the worker passed that check at once and then
    waited for an in-flight slot, sending once it had one whatever the breaker did meanwhile: with
    40 tasks and a cap of 4, 23 to 25 requests reached the endpoint after the 5th failure, against
    fail_max + cap + trials = 12. Now only cap / window tasks are past the check at a time.
    """
    cap, tasks = 4, 40
    seen, fail_max, trials = breaker_run(receiver, cap, tasks)
    assert seen <= fail_max + cap + trials, (seen, fail_max, cap, trials)


# --- 3. the rate limit, shared by two worker processes -------------------------------------------

RATE_OBSERVED_S = 10.0


def test_two_workers_hold_an_endpoint_to_its_rate_limit_within_ten_percent(
    receiver: Receiver, broker: str
):
    # Given an endpoint limited to 20/s with 360 deliveries waiting in 12 messages (more than
    # RATE_OBSERVED_S can send), and two gevent worker processes sharing the limit through Redis
    rate, total, tasks = 20, 360, 12
    receiver.responders["/limited"] = lambda i: (200, {}, b"ok")
    endpoint_id, _ = add_endpoint(receiver.url("/limited"), rate_limit_per_s=rate)
    groups, _ = backlog(endpoint_id, tasks=tasks, per_task=total // tasks, contract=5)
    with ThreadPoolExecutor(2) as starting:  # a worker takes seconds to start on a busy machine
        workers = list(starting.map(deliver_worker, ["limited-a", "limited-b"]))
    try:
        # When they send for RATE_OBSERVED_S
        publish(groups)
        first = wait_until(lambda: receiver.on("/limited")[:1], 30, 0.05, "a first request")[0]
        time.sleep(max(0.0, first.at + RATE_OBSERVED_S - time.time()))
    finally:
        disable(endpoint_id)
        for w in workers:
            w.stop()
    times = sorted(r.at for r in receiver.on("/limited") if r.at < first.at + RATE_OBSERVED_S)
    per_second = sorted(collections.Counter(int(t - first.at) for t in times).items())
    # Then no 1-second window, wherever it starts, held more than 10 % over the limit
    worst = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    assert worst <= rate * 1.1, (worst, per_second)
    # …both processes sent some of it (the limit held across them, not within one)
    for w in workers:
        sent = re.findall(r"deliver\.task\.done endpoint=\d+ sent=(\d+)", w.log())
        assert sum(map(int, sent)) > 0, w.log_path
    # …and the backlog went out at no less than 75 % of the limit (a task waits in place for a
    # token due within a second; when each refusal ended the task and re-enqueued the rest, the
    # endpoint got 25-55 % of its limit here). The bar was 90 % until a clean-clone run on a
    # starved host (suite 19 min, the soak beside it) sent 86 %, 11-14/s in its last two seconds:
    # the bar is for the waiting in place, not for the host's spare CPU.
    overall = len(times) / RATE_OBSERVED_S
    assert overall >= rate * 0.75, f"sent at {overall:.1f}/s, under 75 % of {rate}/s: {per_second}"


# --- 4. Retry-After --------------------------------------------------------------------------------


def http_date_in(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize(
    ("status", "retry_after"),
    [(429, lambda: "2"), (429, lambda: http_date_in(3)), (503, lambda: "2")],
    ids=["429-seconds", "429-http-date", "503-seconds"],
)
def test_a_delivery_is_not_retried_before_its_retry_after(
    receiver: Receiver, worker: Worker, status: int, retry_after
):
    """Retry-After holds back the delivery it answered (ethhook/deliver/retry.py: a floor under
    the schedule's delay); the code promises nothing for the endpoint's other deliveries."""
    # Given an endpoint whose retry schedule would try again after 0.2 s, and which answers the
    # first attempt of each of its deliveries with `status` and a Retry-After; fewer deliveries
    # than the breaker's fail_max, so that 503s do not open it and only Retry-After holds them
    n = worker_settings().breaker_fail_max - 1
    promised: dict[int, float] = {}  # request number → earliest time its delivery may come back

    def answer(i: int) -> tuple[int, dict[str, str], bytes]:
        if i >= n:
            return 200, {}, b"ok"
        value = retry_after()
        promised[i] = (
            time.time() + float(value)
            if value.isdigit()
            else parsedate_to_datetime(value).timestamp()
        )
        return status, {"retry-after": value}, b"later"

    receiver.responders["/later"] = answer
    endpoint_id, _ = add_endpoint(receiver.url("/later"), retry_schedule="0,0.2,0.2")
    groups, _ = backlog(endpoint_id, tasks=1, per_task=n, contract=6)
    # When the suite's worker sends them and its beat retries them
    enqueue_groups(groups)
    wait_until(lambda: statuses(endpoint_id)[DeliveryStatus.SUCCEEDED] == n, 30, 0.2, "the retries")
    # Then each delivery came back once, no sooner than its Retry-After said
    requests = receiver.on("/later")
    assert len(requests) == 2 * n
    first, retries = requests[:n], {r.webhook_id: r for r in requests[n:]}
    for i, r in enumerate(first):
        again = retries[r.webhook_id]
        assert again.at >= promised[i], (r.webhook_id, again.at - promised[i])


# --- 5. the cap on requests in flight from one worker process -------------------------------------


def test_a_worker_never_has_more_than_the_cap_in_flight_or_connected(receiver: Receiver, broker):
    # Given a gevent worker (-c 100, 8-request windows) capped at 4 requests in flight per endpoint
    env = {"ETHHOOK_DELIVERY_WINDOW": "8", "ETHHOOK_ENDPOINT_MAX_IN_FLIGHT": "4"}
    cap = worker_settings(**env).endpoint_max_in_flight
    receiver.responders["/capped"] = lambda i: (time.sleep(ANSWER_S), (200, {}, b"ok"))[1]
    endpoint_id, _ = add_endpoint(receiver.url("/capped"))
    tasks, per_task = 40, 5
    groups, _ = backlog(endpoint_id, tasks=tasks, per_task=per_task, contract=3)
    worker = deliver_worker("capped", **env)
    try:
        # When 40 messages for the endpoint reach it at once (40 tasks × 8 = 320 could go at once)
        publish(groups)
        wait_until(
            lambda: statuses(endpoint_id)[DeliveryStatus.SUCCEEDED] == tasks * per_task,
            60,
            0.2,
            "every delivery",
        )
    finally:
        worker.stop()
    # Then the receiver never answered more than `cap` at once (and did reach it: the load was
    # there), and the worker opened no more than `cap` TCP connections to it
    assert len(receiver.on("/capped")) == tasks * per_task
    at_once = receiver.most_in_flight("/capped")
    assert at_once == cap
    connections = receiver.connections_accepted
    assert connections <= cap
