"""The delivery window and the per-endpoint slots of a worker, with real deliveries to the
loopback receiver: slow start, the cap on requests in flight across tasks, the oldest task first."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from ethhook.config import Settings, get_settings
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.deliver import service
from ethhook.deliver.protect.window import WindowMemory
from ethhook.deliver.service import deliver
from ethhook.workqueue import DispatchGroup
from tests.support.db import store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer


def matched(contract: int, blocks: Sequence[int], per_block: int) -> list[DispatchGroup]:
    """Each block's `per_block` Transfers on `contract`, stored and matched: one group per block
    for every endpoint watching them."""
    groups = []
    for block in blocks:
        with session_scope() as session:
            groups += store_and_match(
                session,
                [
                    transfer(contract=address(contract), block=block, log_index=i, value=i)
                    for i in range(per_block)
                ],
                utcnow(),
            )
    return groups


def settings_with(**changes: int) -> Settings:
    return get_settings().__class__(**{**get_settings().__dict__, **changes})


def deliver_at_once(
    settings: Settings, endpoint_id: int, groups: Sequence[DispatchGroup], apart_s: float = 0.0
) -> None:
    """One deliver task per group, each in its own thread, started `apart_s` apart in order."""
    tasks = []
    for g in groups:
        tasks.append(
            threading.Thread(
                target=deliver, args=(session_scope, settings, endpoint_id, g.delivery_ids, g.token)
            )
        )
        tasks[-1].start()
        time.sleep(apart_s)
    for task in tasks:
        task.join(30)


@pytest.fixture()
def fresh_windows(monkeypatch):
    """A window memory of the test's own: no window carried over from other tests' tasks."""
    monkeypatch.setattr(service, "windows", WindowMemory())


@pytest.mark.usefixtures("db", "fresh_windows", "without_session_worker")
def test_the_window_opens_after_successes_and_falls_back_to_one_on_a_failure(receiver):
    in_flight = [0]
    seen: list[int] = []  # requests in flight when each request arrived, in arrival order
    lock = threading.Lock()

    def answer(i: int) -> tuple[int, dict[str, str], bytes]:
        with lock:
            in_flight[0] += 1
            seen.append(in_flight[0])
        time.sleep(1.0)  # every request of a window arrives before the first is answered
        with lock:
            in_flight[0] -= 1
        return (500, {}, b"down") if i == 7 else (200, {}, b"ok")

    receiver.responders["/window"] = answer
    endpoint_id, _ = add_endpoint(receiver.url("/window"))
    (group,) = matched(51, [1], 20)
    settings = settings_with(delivery_window=8)
    report = deliver(session_scope, settings, endpoint_id, group.delivery_ids, group.token)

    # 1, 2, 4, 8 (the 8th request overall fails), then 1, 2 and the last 2.
    assert seen == [1, 1, 2, 1, 2, 3, 4, *range(1, 9), 1, 1, 2, 1, 2]
    assert (report.sent, report.succeeded, report.failed_attempts) == (20, 19, 1)

    # The endpoint's next task starts with the window the last one ended with.
    seen.clear()
    (group,) = matched(51, [2], 20)
    deliver(session_scope, settings, endpoint_id, group.delivery_ids, group.token)
    assert seen == [*range(1, 9), *range(1, 9), 1, 2, 3, 4]


@pytest.mark.usefixtures("db", "fresh_windows", "without_session_worker")
def test_a_worker_has_at_most_the_cap_in_flight_to_one_endpoint_across_its_tasks(receiver):
    in_flight, most = [0], [0]
    lock = threading.Lock()

    def answer(_: int) -> tuple[int, dict[str, str], bytes]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.2)
        with lock:
            in_flight[0] -= 1
        return 200, {}, b"ok"

    receiver.responders["/capped"] = answer
    endpoint_id, _ = add_endpoint(receiver.url("/capped"))
    groups = matched(52, [1, 2], 12)
    deliver_at_once(settings_with(delivery_window=8, endpoint_max_in_flight=4), endpoint_id, groups)

    assert len(receiver.on("/capped")) == 24
    assert most[0] == 4  # two tasks with windows of up to 8 each, four requests at a time


@pytest.mark.usefixtures("db", "fresh_windows", "without_session_worker")
def test_the_endpoints_slots_go_to_its_oldest_task_first(receiver):
    """A burst arrives as many tasks at once: the first task's events are not held back by the
    tasks that came after it (each would otherwise get a share of the slots)."""

    def answer(_: int) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.03)
        return 200, {}, b"ok"

    receiver.responders["/ordered"] = answer
    endpoint_id, _ = add_endpoint(receiver.url("/ordered"))
    groups = matched(53, [1, 2, 3], 8)
    settings = settings_with(delivery_window=2, endpoint_max_in_flight=2)
    deliver_at_once(settings, endpoint_id, groups, apart_s=0.02)  # in block order, a little apart

    arrivals = receiver.on("/ordered")
    assert len(arrivals) == 24
    block_of = [int(r.json["data"]["block_number"]) for r in arrivals]
    # The first task is done before the last one sends anything.
    assert max(i for i, b in enumerate(block_of) if b == 1) < block_of.index(3), block_of
