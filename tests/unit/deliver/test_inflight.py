"""The per-endpoint slots: a counting semaphore that serves the oldest task first."""

from __future__ import annotations

import threading
import time

import pytest

from ethhook.deliver.protect import inflight
from ethhook.deliver.protect.inflight import EndpointSlots, OrderedSlots


def wait_for_waiters(slots: OrderedSlots, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(slots._waiting) < n:
        assert time.monotonic() < deadline, "waiters never queued"
        time.sleep(0.005)


def test_free_slots_are_taken_at_once_up_to_the_limit():
    slots = OrderedSlots(2)
    slots.acquire(5.0)
    slots.acquire(9.0)
    assert slots._free == 0 and not slots._waiting
    slots.release()
    slots.acquire(1.0)
    assert slots._free == 0


def test_waiters_are_served_lowest_priority_first_then_in_arrival_order():
    slots = OrderedSlots(1)
    slots.acquire(0.0)
    served: list[str] = []
    threads = []
    for name, priority in [("c", 3.0), ("a", 1.0), ("b2", 2.0), ("b1", 2.0)]:
        t = threading.Thread(target=lambda n=name, p=priority: (slots.acquire(p), served.append(n)))
        t.start()
        threads.append(t)
        wait_for_waiters(slots, len(threads))  # arrival order: c, a, b2, b1
    for expected in (["a"], ["a", "b2"], ["a", "b2", "b1"], ["a", "b2", "b1", "c"]):
        slots.release()
        deadline = time.monotonic() + 5
        while served != expected:
            assert time.monotonic() < deadline, served
            time.sleep(0.005)
    for t in threads:
        t.join(5)


def test_a_newcomer_never_overtakes_a_waiter():
    slots = OrderedSlots(1)
    slots.acquire(0.0)
    got = threading.Event()
    t = threading.Thread(target=lambda: (slots.acquire(5.0), got.set()))
    t.start()
    wait_for_waiters(slots, 1)
    slots.release()  # handed to the waiter, not left free for the next acquire
    assert got.wait(5)
    assert slots._free == 0
    t.join(5)


class Killed(BaseException):
    pass


def test_a_waiter_killed_while_waiting_leaves_no_slot_behind(monkeypatch):
    class DyingEvent(threading.Event):
        def wait(self, timeout=None):  # noqa: ANN001, ANN202
            raise Killed  # as gevent's task time limit raises inside the wait

    slots = OrderedSlots(1)
    slots.acquire(0.0)
    monkeypatch.setattr(inflight.threading, "Event", DyingEvent)
    with pytest.raises(Killed):
        slots.acquire(1.0)
    monkeypatch.undo()
    assert not slots._waiting
    slots.release()
    assert slots._free == 1


def test_a_slot_handed_over_as_the_waiter_dies_is_given_back(monkeypatch):
    class HandedThenKilled(threading.Event):
        def wait(self, timeout=None):  # noqa: ANN001, ANN202
            slots.release()  # the holder releases: the slot passes to this waiter ...
            raise Killed  # ... which is killed before it could use it

    slots = OrderedSlots(1)
    slots.acquire(0.0)
    monkeypatch.setattr(inflight.threading, "Event", HandedThenKilled)
    with pytest.raises(Killed):
        slots.acquire(1.0)
    assert not slots._waiting and slots._free == 1


def test_held_releases_on_error():
    slots = OrderedSlots(1)
    with pytest.raises(RuntimeError), slots.held(1.0):
        raise RuntimeError
    assert slots._free == 1


def test_one_set_of_slots_per_endpoint_and_limit_while_referenced():
    registry = EndpointSlots()
    a = registry.get(1, 4)
    assert registry.get(1, 4) is a
    assert registry.get(2, 4) is not a
    assert registry.get(1, 8) is not a


def test_a_wait_that_times_out_leaves_the_queue():
    slots = OrderedSlots(1)
    slots.acquire(0.0)
    started = time.monotonic()
    assert slots.acquire(1.0, timeout_s=0.05) is False
    assert time.monotonic() - started >= 0.05
    assert not slots._waiting
    slots.release()
    assert slots._free == 1


@pytest.mark.parametrize(
    ("max_in_flight", "window", "tasks"), [(16, 8, 2), (16, 32, 1), (4, 1, 4), (1, 8, 1)]
)
def test_an_endpoint_sends_as_many_tasks_at_once_as_fill_its_cap(max_in_flight, window, tasks):
    assert inflight.tasks_at_once(max_in_flight, window) == tasks


def test_a_task_past_its_wait_sends_anyway_and_gives_back_no_turn_it_did_not_get():
    gate = inflight.endpoint_tasks.get(7, 1)  # held here, so the registry keeps it
    with inflight.endpoint_turn(7, 1, 1, wait_s=5):
        started = time.monotonic()
        with inflight.endpoint_turn(7, 1, 1, wait_s=0.05):
            assert time.monotonic() - started >= 0.05
        assert gate._free == 0
    assert gate._free == 1 and not gate._waiting
