"""A cap on the requests one worker process has in flight to one endpoint, all its tasks together.

Each deliver task keeps up to `ETHHOOK_DELIVERY_WINDOW` requests in flight, and a busy endpoint has
many tasks at once: without a cap a worker with 100 greenlets could open hundreds of connections
to one customer's server. Under the gevent pool `threading` is patched, so waiting for a slot
yields to the other greenlets.
"""

from __future__ import annotations

import threading
from weakref import WeakValueDictionary


class EndpointSlots:
    """One semaphore per endpoint, kept while some task of this process holds a reference to it."""

    def __init__(self) -> None:
        self._slots: WeakValueDictionary[tuple[int, int], threading.BoundedSemaphore] = (
            WeakValueDictionary()
        )
        self._lock = threading.Lock()

    def get(self, endpoint_id: int, limit: int) -> threading.BoundedSemaphore:
        with self._lock:
            slot = self._slots.get((endpoint_id, limit))
            if slot is None:
                slot = threading.BoundedSemaphore(limit)
                self._slots[(endpoint_id, limit)] = slot
            return slot


endpoint_slots = EndpointSlots()
