"""A deliver task's count of its answers: the report, the metrics, the breaker and the log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ethhook import metrics
from ethhook.deliver.protect import EndpointBreaker, counts_against_breaker
from ethhook.deliver.store import EndpointView, Result

log = logging.getLogger("ethhook.deliver.service")  # the name its log lines have always had


@dataclass
class Report:
    """What one deliver task did with its message's deliveries (the task's log line)."""

    sent: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    released: int = 0
    deferred: int = 0
    skipped: int = 0
    disabled: bool = False


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
            log_attempt(endpoint, result)
            continue
        report.failed_attempts += 1
        log_attempt(endpoint, result)
        if counts_against_breaker(outcome):
            opened = breaker.record_failure() or opened
        if outcome.status_code == 410:
            report.disabled = True
    return opened


def log_attempt(endpoint: EndpointView, result: Result) -> None:
    """A failed attempt at INFO, a success after failures too (the end of a story the log told);
    a first-time success at DEBUG: under load, the task's line counts them."""
    item, outcome = result.work, result.outcome
    retried = item.attempts > 0
    level = logging.DEBUG if outcome.ok and not retried else logging.INFO
    if not log.isEnabledFor(level):
        return
    log.log(
        level,
        "%s endpoint=%s delivery=%s webhook=%s attempt=%d status=%s error=%s",
        "deliver.attempt.succeeded" if outcome.ok else "deliver.attempt.failed",
        endpoint.id,
        item.delivery_id,
        item.webhook_id,
        item.attempts + 1,
        outcome.status_code,
        outcome.error,
        extra={
            "endpoint_id": endpoint.id,
            "delivery_id": item.delivery_id,
            "webhook_id": item.webhook_id,
        },
    )
