"""Delivery → signed POST: the order of checks per attempt, and the loop over one message."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from threading import Semaphore

from sqlalchemy.orm import Session

from ethhook import __version__, metrics
from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.deliver import http
from ethhook.deliver.breaker import EndpointBreaker
from ethhook.deliver.inflight import endpoint_slots
from ethhook.deliver.ratelimit import RateLimiter
from ethhook.deliver.shared import redis_client
from ethhook.deliver.signing import webhook_headers
from ethhook.deliver.store import (
    EndpointView,
    Result,
    Work,
    disable_endpoint,
    load_endpoint,
    load_work,
    record,
)
from ethhook.workqueue import claim, defer, enqueue_groups, release_leases

log = logging.getLogger(__name__)

USER_AGENT = f"EthHook/{__version__}"
FLUSH_EVERY = 50
FLUSH_INTERVAL_S = 1.0
LOAD_CHUNK = 20

WINDOW_MEMORY_S = 10.0

SessionFactory = Callable[[], AbstractContextManager[Session]]


class WindowMemory:
    """The window each endpoint's last task in this process ended with; the next task starts there.

    As TCP does after an idle period, a window unused for WINDOW_MEMORY_S starts again from one.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, float]] = {}

    def start(self, endpoint_id: int) -> int:
        size, at = self._last.get(endpoint_id, (1, 0.0))
        return size if time.monotonic() - at < WINDOW_MEMORY_S else 1

    def end(self, endpoint_id: int, size: int) -> None:
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[endpoint_id] = (size, time.monotonic())

    def forget(self) -> None:
        self._last.clear()


windows = WindowMemory()


@dataclass
class Report:
    sent: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    released: int = 0
    deferred: int = 0
    skipped: int = 0
    disabled: bool = False


def send(endpoint: EndpointView, work: Work, settings: Settings, slot: Semaphore) -> Result:
    with slot:  # the endpoint's cap on requests in flight from this process
        started_at = utcnow()
        headers = webhook_headers(
            endpoint.secrets, work.webhook_id, int(started_at.timestamp()), work.body, USER_AGENT
        )
        outcome = http.post(
            endpoint.url,
            work.body,
            headers,
            settings.delivery_connect_timeout_s,
            settings.delivery_read_timeout_s,
            allow_private=settings.allow_private_targets,
        )
    return Result(work, started_at, outcome)


def in_parallel(fn: Callable[[Work], Result], items: Sequence[Work]) -> list[Result]:
    """fn over items at once, results in order: greenlets under a gevent pool, else threads."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("socket"):
            from gevent.pool import Group

            return list(Group().imap(fn, items))
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def counts_against_breaker(outcome: http.HttpOutcome) -> bool:
    """Timeouts, connection errors and 5xx say the endpoint is down; 4xx do not."""
    return outcome.status_code is None or outcome.status_code >= 500


def tally(
    endpoint: EndpointView, results: Sequence[Result], breaker: EndpointBreaker, report: Report
) -> bool:
    """Count one window's answers in the report, the metrics and the breaker; True when the
    breaker is open."""
    # The window's requests ran at once, so their order is unknown: its successes reset the
    # failure count first (one Redis update per window, not one per success), then its failures
    # count. An endpoint failing one request in three never reaches fail_max this way; one
    # failing them all opens the breaker as before.
    if any(r.outcome.ok for r in results):
        breaker.record_success()
    opened = False
    for result in results:
        item, outcome = result.work, result.outcome
        report.sent += 1
        metrics.record_attempt(outcome.ok, outcome.duration_ms / 1000)
        if outcome.ok:
            report.succeeded += 1
            metrics.record_delivered_latency(
                metrics.latency_since(item.block_timestamp, item.created_at)
            )
            continue
        report.failed_attempts += 1
        log.info(
            "deliver.attempt.failed endpoint=%s delivery=%s attempt=%d status=%s error=%s",
            endpoint.id,
            item.delivery_id,
            item.attempts + 1,
            outcome.status_code,
            outcome.error,
        )
        if counts_against_breaker(outcome):
            opened = breaker.record_failure() or opened
        if outcome.status_code == 410:
            report.disabled = True
    return opened


def deliver(
    sessions: SessionFactory,
    settings: Settings,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
) -> Report:
    """Send one endpoint's deliveries from one message; every step is safe to run twice.

    Per attempt: endpoint active → rate limit → circuit breaker → signed POST. Being rate limited or
    finding the breaker open defers the rest of the message without using an attempt.
    """
    report = Report()
    worker_token = str(uuid.uuid4())
    started = time.monotonic()
    request_s = settings.delivery_connect_timeout_s + settings.delivery_read_timeout_s
    # Stop starting new requests while the lease still covers one more full attempt.
    budget_s = max(settings.delivery_lease_s - request_s - 5, 1.0)
    with sessions() as session:
        now = utcnow()
        claimed = claim(
            session, endpoint_id, delivery_ids, token, worker_token, now, settings.delivery_lease_s
        )
        report.skipped = len(delivery_ids) - len(claimed)
        if not claimed:
            return report
        endpoint = load_endpoint(session, endpoint_id, settings, now)
        if endpoint is None or not endpoint.active:
            release_leases(session, claimed, worker_token)
            report.released = len(claimed)
            return report
        # Bodies are built LOAD_CHUNK at a time, as the sending reaches them: a worker's memory
        # then grows with its concurrency, not with concurrency × deliveries per task.
        remaining = load_work(session, endpoint, claimed[:LOAD_CHUNK], settings)
    unloaded = claimed[LOAD_CHUNK:]

    client = redis_client(settings.redis_url)
    limiter = RateLimiter(client) if endpoint.rate_limit_per_s else None
    breaker = EndpointBreaker(
        client,
        endpoint.id,
        settings.breaker_fail_max,
        settings.breaker_reset_timeout_s,
        request_s + 5,
    )
    pending: list[Result] = []
    last_flush = time.monotonic()
    defer_s = breaker.before_request()
    defer_reason = metrics.DeferReason.BREAKER_OPEN if defer_s else ""

    # Slow start: one request first; every window answered 2xx doubles the next one, up to
    # `delivery_window`; any failure shrinks it to one again. A failing endpoint therefore gets
    # one request at a time per task, as if there were no window. A healthy endpoint's next task
    # starts with the window this one ended with.
    window_size = min(windows.start(endpoint.id), settings.delivery_window)
    slot = endpoint_slots.get(endpoint.id, settings.endpoint_max_in_flight)
    while (remaining or unloaded) and not defer_s:
        if time.monotonic() - started > budget_s:
            break
        if len(remaining) < window_size and unloaded:
            with sessions() as session:
                remaining += load_work(session, endpoint, unloaded[:LOAD_CHUNK], settings)
            unloaded = unloaded[LOAD_CHUNK:]
        # Each request of a window has its own rate-limit token; a limited one ends the window
        # and defers the rest.
        window: list[Work] = []
        while remaining and len(window) < window_size:
            if limiter is not None and endpoint.rate_limit_per_s is not None:
                wait_s = limiter.acquire(endpoint.id, endpoint.rate_limit_per_s)
                if wait_s:
                    defer_s, defer_reason = wait_s, metrics.DeferReason.RATE_LIMITED
                    break
            window.append(remaining.pop(0))
        results = in_parallel(lambda item: send(endpoint, item, settings, slot), window)
        pending += results
        if tally(endpoint, results, breaker, report):
            defer_s = settings.breaker_reset_timeout_s
            defer_reason = metrics.DeferReason.BREAKER_OPEN
        if report.disabled:
            break
        all_ok = all(r.outcome.ok for r in results)
        window_size = min(window_size * 2, settings.delivery_window) if all_ok else 1
        if len(pending) >= FLUSH_EVERY or time.monotonic() - last_flush > FLUSH_INTERVAL_S:
            with sessions() as session:
                record(session, endpoint, pending, worker_token, utcnow())
            pending, last_flush = [], time.monotonic()

    windows.end(endpoint.id, window_size)
    requeue = None
    with sessions() as session:
        now = utcnow()
        record(session, endpoint, pending, worker_token, now)
        left = [w.delivery_id for w in remaining] + unloaded
        if report.disabled:
            disable_endpoint(session, endpoint.id, "the endpoint answered 410 Gone", now)
            log.warning("deliver.endpoint.disabled endpoint=%s reason=410-gone", endpoint.id)
            release_leases(session, left, worker_token)
            report.released = len(left)
        elif defer_s and left:
            requeue = defer(
                session, endpoint.id, left, worker_token, defer_s, now, settings.dispatch_lease_s
            )
            report.deferred = len(left)
            metrics.record_deferred(defer_reason, len(left))
            log.info(
                "deliver.deferred endpoint=%s deliveries=%d reason=%s delay_s=%.2f",
                endpoint.id,
                len(left),
                defer_reason,
                defer_s,
            )
        elif left:
            release_leases(session, left, worker_token)
            report.released = len(left)
    if requeue is not None:
        enqueue_groups([requeue], countdown=defer_s)
    return report
