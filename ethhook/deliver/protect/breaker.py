"""Per-endpoint circuit breakers: pybreaker's Redis storage, shared by every worker.

pybreaker's `call()` holds a lock for the whole request, which serialises every delivery to an
endpoint within a process; so the state is checked before the request and updated after it.
Closed → (fail_max failures) → open → (reset timeout) → half-open: one trial request, whose
outcome closes or re-opens the breaker. Timeouts, connection errors and 5xx count as failures.
pybreaker keeps the opening time in whole seconds, which would end a reset timeout up to a second
early; the breaker keeps its own, in milliseconds, beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pybreaker
import redis

from ethhook import metrics

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN
TRIAL_RETRY_S = 1.0
# How often a breaker without failures of its own reads the shared failure counter after a
# success, to reset other workers' failures: reading it after every window cost a busy deliver
# worker a Redis round trip per 8 requests (7 % of its CPU in a profile of one endpoint's burst).
SHARED_COUNT_READ_S = 1.0


class EndpointBreaker:
    def __init__(
        self,
        client: redis.Redis,
        endpoint_id: int,
        fail_max: int,
        reset_timeout_s: float,
        trial_ttl_s: float,
        shared_count_read_s: float = SHARED_COUNT_READ_S,
    ) -> None:
        self.endpoint_id = endpoint_id
        self.fail_max = fail_max
        self.reset_timeout_s = reset_timeout_s
        self._client = client
        self._trial_key = f"ethhook:breaker:{endpoint_id}:trial"
        self._opened_key = f"ethhook:breaker:{endpoint_id}:opened_ms"
        self._trial_ttl_ms = int(trial_ttl_s * 1000)
        self._storage: pybreaker.CircuitRedisStorage | None = None
        self._had_failures = False
        self._shared_count_read_s = shared_count_read_s
        self._counter_read_at = float("-inf")  # monotonic time of the last read of the counter

    def _store(self) -> pybreaker.CircuitRedisStorage | None:
        if self._storage is None:
            try:
                self._storage = pybreaker.CircuitRedisStorage(
                    CLOSED, self._client, namespace=f"ethhook:endpoint:{self.endpoint_id}"
                )
            except redis.RedisError as exc:
                log.warning(
                    "deliver.breaker.unavailable endpoint=%s error=%s", self.endpoint_id, exc
                )
                return None
        return self._storage

    def _redis(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A Redis call whose failure must not stop the delivery: the attempts around it are
        recorded in PostgreSQL whatever the breaker's state (None when Redis failed)."""
        try:
            return call(*args, **kwargs)
        except redis.RedisError as exc:
            log.warning("deliver.breaker.unavailable endpoint=%s error=%s", self.endpoint_id, exc)
            return None

    def state(self) -> str:
        store = self._store()
        return store.state if store is not None else CLOSED

    def before_request(self) -> float:
        """0 when a request may go (closed, or this is the half-open trial), else seconds to wait."""
        store = self._store()
        if store is None:
            return 0.0
        state = store.state
        if state == CLOSED:
            self._had_failures = self._shared_failures(store)
            return 0.0
        if state == OPEN:
            opened = self._opened_s(store)
            remaining = (opened + self.reset_timeout_s - time.time()) if opened else 0.0
            if remaining > 0:
                return remaining
        # Open past its timeout, or half-open: exactly one worker gets the trial request.
        if self._redis(self._client.set, self._trial_key, b"1", nx=True, px=self._trial_ttl_ms):
            store.state = HALF_OPEN
            self._had_failures = True
            log.info("deliver.breaker.half_open endpoint=%s", self.endpoint_id)
            return 0.0
        return TRIAL_RETRY_S

    def _opened_s(self, store: pybreaker.CircuitRedisStorage) -> float | None:
        """When the breaker opened: ours to the millisecond, else pybreaker's whole second."""
        ms = self._redis(self._client.get, self._opened_key)
        if ms:
            return int(ms) / 1000
        opened = store.opened_at
        return opened.timestamp() if opened else None

    def _shared_failures(self, store: pybreaker.CircuitRedisStorage) -> bool:
        self._counter_read_at = time.monotonic()
        return bool(store.counter > 0)

    def _others_failed(self, store: pybreaker.CircuitRedisStorage) -> bool:
        """Whether other workers counted failures, read at most every SHARED_COUNT_READ_S."""
        if time.monotonic() - self._counter_read_at < self._shared_count_read_s:
            return False
        return self._shared_failures(store)

    def record_success(self) -> None:
        store = self._store()
        # Other workers' failures count too: a success resets the shared counter when it is
        # above zero, or failures spread over many tasks would add up and open the breaker. A
        # task with failures of its own resets it at once; one without reads the counter at
        # the task's start and then at most once a second.
        if store is None or not (self._had_failures or self._others_failed(store)):
            return
        store.reset_counter()
        if store.state != CLOSED:
            store.state = CLOSED
            metrics.set_breaker_open(self.endpoint_id, False)
            log.info("deliver.breaker.closed endpoint=%s", self.endpoint_id)
        self._redis(self._client.delete, self._trial_key)
        self._had_failures = False

    def record_failure(self) -> bool:
        """Count a failure; True when the breaker is (now) open."""
        store = self._store()
        if store is None:
            return False
        self._had_failures = True
        state = store.state
        if state == OPEN:
            return True
        store.increment_counter()
        if state == HALF_OPEN or store.counter >= self.fail_max:
            store.state = OPEN
            now = datetime.now(UTC)
            store.opened_at = now
            self._redis(self._client.set, self._opened_key, int(now.timestamp() * 1000))
            self._redis(self._client.delete, self._trial_key)
            metrics.set_breaker_open(self.endpoint_id, True)
            log.warning(
                "deliver.breaker.opened endpoint=%s failures=%d reset_s=%g",
                self.endpoint_id,
                store.counter,
                self.reset_timeout_s,
            )
            return True
        return False
