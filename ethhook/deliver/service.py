"""Delivery → signed POST: claim one message's deliveries, send them in windows, settle the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.orm import Session

from ethhook import metrics
from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.deliver.answers import Report, tally
from ethhook.deliver.backlog import LOAD_CHUNK, Backlog
from ethhook.deliver.beside import Beside
from ethhook.deliver.ordered import claim_from_head, senders
from ethhook.deliver.protect import (
    RATE_WAIT_INLINE_S,
    Action,
    Deferral,
    EndpointBreaker,
    RateLimiter,
    deferral,
    endpoint_slots,
    endpoint_turn,
    first_window,
    flush_due,
    next_window,
    redis_client,
    sending_budget_s,
    settle,
    windows,
)
from ethhook.deliver.send import send_window
from ethhook.deliver.store import (
    EndpointView,
    Result,
    Work,
    claim_and_load,
    disable_endpoint,
    load_work,
    record,
)
from ethhook.workqueue import (
    DispatchGroup,
    TimeRange,
    defer,
    enqueue_groups,
    new_claim_token,
    release_leases,
    settle_disabled,
    time_range,
)

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Claimed:
    """What one task holds: the endpoint, the token its leases are under, the work to send, and
    the time range of its rows' event_at (None: unknown, every partition is read)."""

    endpoint: EndpointView
    worker_token: str
    backlog: Backlog
    bounds: TimeRange | None = None

    @property
    def ordered(self) -> bool:
        """Sent one at a time in sequence order, stopping at the first failure."""
        return self.endpoint.ordered is not None


def deliver(
    sessions: SessionFactory,
    settings: Settings,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    bounds: TimeRange | None = None,
) -> Report:
    """Send one endpoint's deliveries from one message; every step is safe to run twice.

    An endpoint's tasks take turns in a worker, oldest first (protect.inflight). Per attempt:
    endpoint active → rate limit → circuit breaker → signed POST. A rate-limit token due within a
    second is waited for; a longer wait or an open breaker defers the rest of the message without
    using an attempt. A message for an ordered endpoint that a task of this process is sending is
    left to that task, which claims its deliveries next, or publishes the message again if it
    stops early (deliver.ordered.Senders).
    """
    report = Report()
    message = DispatchGroup(endpoint_id, list(delivery_ids), token, bounds)
    if senders.defer_to_sender(message):
        report.skipped = len(delivery_ids)  # the sending task of this process claims them next
        return report
    with endpoint_turn(
        endpoint_id,
        settings.endpoint_max_in_flight,
        settings.delivery_window,
        settings.dispatch_lease_s / 2,
    ):
        budget = sending_budget_s(settings.delivery_lease_s, _request_s(settings))
        deadline = time.monotonic() + budget
        task = _claim(sessions, settings, endpoint_id, delivery_ids, token, report, bounds)
        sender = task is not None and task.ordered and senders.start(endpoint_id)
        ordered = True  # the endpoint as the last claim from its head found it
        try:
            while task is not None:
                stopped_by, unrecorded = _send_windows(sessions, settings, task, deadline, report)
                _settle(sessions, settings, task, unrecorded, stopped_by, report)
                # An ordered endpoint's task goes on with the deliveries after those it sent,
                # while every one succeeded and time is left: its next claim starts at the head.
                if not task.ordered or stopped_by is not None or report.disabled:
                    break
                if task.backlog.left() or time.monotonic() > deadline:
                    break
                task, ordered = _claim_ordered(sessions, settings, endpoint_id)
                while task is None and ordered and sender:
                    if senders.stop_unless_noted(endpoint_id):
                        sender = False
                    else:
                        task, ordered = _claim_ordered(sessions, settings, endpoint_id)
        finally:
            left = senders.stop(endpoint_id) if sender else []
        if left:
            _publish_again(left, ordered and not report.disabled)
    return report


def _publish_again(left: list[DispatchGroup], ordered: bool) -> None:
    """The messages left to a sender that stopped early, published again: for an endpoint still
    ordered, the newest (its task claims from the head, which takes every one's deliveries);
    else each, to claim its own deliveries."""
    groups = left[-1:] if ordered else left
    enqueue_groups(groups)
    log.info(
        "deliver.ordered.republished endpoint=%s messages=%d of=%d",
        left[0].endpoint_id,
        len(groups),
        len(left),
    )


def _request_s(settings: Settings) -> float:
    return settings.delivery_connect_timeout_s + settings.delivery_read_timeout_s


def _claim(
    sessions: SessionFactory,
    settings: Settings,
    endpoint_id: int,
    delivery_ids: Sequence[int],
    token: str,
    report: Report,
    bounds: TimeRange | None,
) -> Claimed | None:
    """Claim the message's deliveries, load the endpoint and the first bodies; None when there is
    nothing to send (nothing claimed, or the endpoint is gone or disabled: leases given back)."""
    worker_token = new_claim_token()
    with sessions() as session:
        now = utcnow()
        got = claim_and_load(
            session,
            endpoint_id,
            delivery_ids,
            token,
            worker_token,
            now,
            settings,
            LOAD_CHUNK,
            bounds,
        )
        report.skipped = len(delivery_ids) - len(got.claimed)
        if not got.claimed:
            # Nothing claimed: an ordered endpoint's claim starts from its head instead, whatever
            # the message names (one more statement only when the first claimed nothing).
            task, _ = _ordered_claim(session, settings, endpoint_id, worker_token, now)
            if task is not None:  # the message's ids it did not take
                report.skipped = len(set(delivery_ids) - set(task.backlog.left()))
            return task
        endpoint = got.endpoint
        if endpoint is None or not endpoint.active:
            release_leases(session, got.claimed, worker_token, bounds)
            report.released = len(got.claimed)
            if endpoint is not None:
                settle_disabled(session, endpoint.id, now)
            return None
        backlog = Backlog.preloaded(got.claimed, got.first)
    return Claimed(endpoint, worker_token, backlog, bounds)


def _claim_ordered(
    sessions: SessionFactory, settings: Settings, endpoint_id: int
) -> tuple[Claimed | None, bool]:
    """The next claim of an ordered endpoint's task, under a new worker token; and whether the
    endpoint is still ordered and active."""
    with sessions() as session:
        return _ordered_claim(session, settings, endpoint_id, new_claim_token(), utcnow())


def _ordered_claim(
    session: Session, settings: Settings, endpoint_id: int, worker_token: str, now: datetime
) -> tuple[Claimed | None, bool]:
    """An ordered endpoint's claim from its head (None: nothing to send), and whether the
    endpoint is ordered and active."""
    got = claim_from_head(session, settings, endpoint_id, worker_token, now)
    endpoint = got.endpoint
    ordered = endpoint is not None and endpoint.ordered is not None and endpoint.active
    if not got.claimed or endpoint is None:
        return None, ordered
    bounds = time_range(w.event_at for w in got.first if w.event_at is not None)
    # An ordered claim reads the work of all it claims: nothing is left to load.
    backlog = Backlog.preloaded(got.claimed, got.first, covered=len(got.claimed))
    return Claimed(endpoint, worker_token, backlog, bounds), ordered


def _send_windows(
    sessions: SessionFactory, settings: Settings, task: Claimed, deadline: float, report: Report
) -> tuple[Deferral | None, list[Result]]:
    """Windows of requests until the work is sent, the time is up, a refusal defers the rest or
    the endpoint answers 410; returns the refusal, if any, and the results not yet recorded."""
    endpoint, backlog = task.endpoint, task.backlog
    client = redis_client(settings.redis_url)
    limiter = RateLimiter(client) if endpoint.rate_limit_per_s else None
    breaker = EndpointBreaker(
        client,
        endpoint.id,
        settings.breaker_fail_max,
        settings.breaker_reset_timeout_s,
        _request_s(settings) + 5,
    )
    pending: list[Result] = []
    last_flush = time.monotonic()
    stopped_by = deferral(breaker.before_request(), metrics.DeferReason.BREAKER_OPEN)
    # An ordered endpoint's requests go one at a time (a window of one), in sequence order.
    most = 1 if task.ordered else settings.delivery_window
    size = first_window(windows.start(endpoint.id), most)
    slot = endpoint_slots.get(endpoint.id, settings.endpoint_max_in_flight)
    priority = time.monotonic()  # this task's place in the queue for the endpoint's slots

    def load(ids: Sequence[int]) -> list[Work]:
        with sessions() as session:
            return load_work(session, endpoint, ids, settings, task.bounds)

    def write(results: Sequence[Result]) -> None:
        with sessions() as session:
            record(session, endpoint, results, task.worker_token, utcnow())

    # The next bodies load while a window is sent (when fewer than a full window are left), and
    # attempts are written while the next windows are sent.
    loader, writer = Beside(), Beside()
    while backlog and stopped_by is None and time.monotonic() <= deadline:
        loader.wait()
        backlog.top_up(size, load)
        window, stopped_by = _take_window(backlog, size, endpoint, limiter, deadline)
        if stopped_by is None and backlog.short_of(settings.delivery_window):
            loader.start(partial(backlog.top_up, settings.delivery_window, load))
        results = send_window(endpoint, window, settings, slot, priority)
        pending += results
        if tally(endpoint, results, breaker, report):
            stopped_by = deferral(
                settings.breaker_reset_timeout_s, metrics.DeferReason.BREAKER_OPEN
            )
        if report.disabled:
            break
        if task.ordered and not all(r.outcome.ok for r in results):
            break  # a failed head holds the deliveries after it: they are released
        size = next_window(size, (r.outcome.ok for r in results), most)
        if flush_due(len(pending), time.monotonic() - last_flush):
            writer.start(partial(write, pending))
            pending, last_flush = [], time.monotonic()
    windows.end(endpoint.id, size)
    loader.wait()
    writer.wait()
    return stopped_by, pending


def _take_window(
    backlog: Backlog,
    size: int,
    endpoint: EndpointView,
    limiter: RateLimiter | None,
    deadline: float,
) -> tuple[list[Work], Deferral | None]:
    """Up to `size` loaded deliveries, each with its own rate-limit token.

    A window ends at the first delivery without a token. An empty one waits for the next token
    when it comes within RATE_WAIT_INLINE_S (and the time left): a task sending to a limited
    endpoint keeps its pace instead of going back to the queue after every request. A longer
    wait defers the rest of the message.
    """
    window: list[Work] = []
    while backlog.has_loaded() and len(window) < size:
        if limiter is not None and endpoint.rate_limit_per_s is not None:
            wait_s = limiter.acquire(endpoint.id, endpoint.rate_limit_per_s)
            if wait_s:
                if window:
                    break
                if wait_s > RATE_WAIT_INLINE_S or time.monotonic() + wait_s > deadline:
                    return window, Deferral(wait_s, metrics.DeferReason.RATE_LIMITED)
                time.sleep(wait_s)  # a greenlet's sleep under the gevent pool
                continue
        window.append(backlog.pop())
    return window, None


def _settle(
    sessions: SessionFactory,
    settings: Settings,
    task: Claimed,
    unrecorded: Sequence[Result],
    stopped_by: Deferral | None,
    report: Report,
) -> None:
    """Record the last attempts, then disable, defer or release what was not sent; a short
    deferral goes back on the queue once that is committed."""
    endpoint, worker_token, left = task.endpoint, task.worker_token, task.backlog.left()
    decision = settle(report.disabled, stopped_by, len(left))
    requeue = None
    with sessions() as session:
        now = utcnow()
        record(session, endpoint, unrecorded, worker_token, now)
        if decision.action is Action.DEFER:
            requeue = defer(
                session,
                endpoint.id,
                left,
                worker_token,
                decision.delay_s,
                now,
                settings.dispatch_lease_s,
                task.bounds,
            )
            report.deferred = len(left)
            metrics.record_deferred(decision.reason, len(left))
            log.info(
                "deliver.deferred endpoint=%s deliveries=%d reason=%s delay_s=%.2f",
                endpoint.id,
                len(left),
                decision.reason,
                decision.delay_s,
            )
        else:  # a disabled endpoint's deliveries wait, unleased, for it to be enabled again
            if decision.action is Action.DISABLE:
                disable_endpoint(session, endpoint.id, "the endpoint answered 410 Gone", now)
                log.warning("deliver.endpoint.disabled endpoint=%s reason=410-gone", endpoint.id)
            release_leases(session, left, worker_token, task.bounds)
            report.released = len(left)
            if report.disabled or decision.action is Action.DISABLE:
                settle_disabled(session, endpoint.id, now)
    if requeue is not None:
        enqueue_groups([requeue], countdown=decision.delay_s)
