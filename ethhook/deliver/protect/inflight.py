"""A cap on the requests one worker process has in flight to one endpoint, all its tasks together.

Each deliver task keeps up to `ETHHOOK_DELIVERY_WINDOW` requests in flight, and a busy endpoint has
many tasks at once: without a cap a worker with 100 greenlets could open hundreds of connections
to one customer's server. Under the gevent pool `threading` is patched, so waiting for a slot
yields to the other greenlets.

Slots go to the oldest task first. A burst to one endpoint arrives as many tasks at once; served
in arrival order each would get a share of the slots, and every task (so the burst's median event)
would finish near the end of the burst. Served oldest first, the burst's events arrive in the
order they happened, and the first ones do not wait for the last.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakValueDictionary


class OrderedSlots:
    """A counting semaphore whose waiters are served lowest `priority` first (FIFO among equals).

    A released slot passes straight to the first waiter, so a newcomer never overtakes one.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._lock = threading.Lock()
        self._waiting: list[tuple[float, int, threading.Event]] = []
        self._order = itertools.count()

    def acquire(self, priority: float, timeout_s: float | None = None) -> bool:
        """Wait for a slot, at most `timeout_s`; False when the time ran out without one."""
        with self._lock:
            if self._free > 0:  # free slots only exist while nobody waits
                self._free -= 1
                return True
            turn = threading.Event()
            entry = (priority, next(self._order), turn)
            heapq.heappush(self._waiting, entry)
        try:
            if turn.wait(timeout_s):
                return True
        except BaseException:  # killed while waiting (a task time limit): leave no slot behind
            if not self._withdraw(entry):
                self.release()  # the slot was handed over as the wait ended
            raise
        return not self._withdraw(entry)  # handed over just as the time ran out: keep it

    def _withdraw(self, entry: tuple[float, int, threading.Event]) -> bool:
        """Leave the queue; False when it is too late (a slot was handed over meanwhile)."""
        with self._lock:
            if entry[2].is_set():
                return False
            self._waiting.remove(entry)
            heapq.heapify(self._waiting)
            return True

    def release(self) -> None:
        with self._lock:
            if self._waiting:
                heapq.heappop(self._waiting)[2].set()
            else:
                self._free += 1

    @contextmanager
    def held(self, priority: float) -> Iterator[None]:
        self.acquire(priority)
        try:
            yield
        finally:
            self.release()


class EndpointSlots:
    """One set of slots per endpoint and limit, kept while some task of this process holds it."""

    def __init__(self) -> None:
        self._slots: WeakValueDictionary[tuple[int, int], OrderedSlots] = WeakValueDictionary()
        self._lock = threading.Lock()

    def get(self, endpoint_id: int, limit: int) -> OrderedSlots:
        with self._lock:
            slot = self._slots.get((endpoint_id, limit))
            if slot is None:
                slot = OrderedSlots(limit)
                self._slots[(endpoint_id, limit)] = slot
            return slot


endpoint_slots = EndpointSlots()  # requests in flight
endpoint_tasks = EndpointSlots()  # tasks sending at once


def tasks_at_once(max_in_flight: int, window: int) -> int:
    """How many of an endpoint's tasks send at once in one worker: enough to fill its cap on
    requests in flight with full windows, and no more, so the oldest tasks are not slowed down
    by the ones behind them."""
    return max(1, max_in_flight // max(window, 1))


@contextmanager
def endpoint_turn(
    endpoint_id: int, max_in_flight: int, window: int, wait_s: float
) -> Iterator[None]:
    """Wait (at most `wait_s`, oldest task first) until this task may send to the endpoint.

    Past `wait_s` the task sends anyway, its requests still within the cap: a slow endpoint's
    queue of tasks never waits here longer than that.
    """
    gate = endpoint_tasks.get(endpoint_id, tasks_at_once(max_in_flight, window))
    admitted = gate.acquire(time.monotonic(), wait_s)
    try:
        yield
    finally:
        if admitted:
            gate.release()
