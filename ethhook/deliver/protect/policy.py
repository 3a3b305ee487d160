"""The deliver task's decisions besides the window: when to stop, when to flush, how to settle."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ethhook.deliver.http import HttpOutcome

FLUSH_EVERY = 50
FLUSH_INTERVAL_S = 1.0
# A request may still start while the lease covers it in full plus this margin.
LEASE_MARGIN_S = 5.0
# A rate-limited task waits in place for a token this close; a longer wait defers the rest.
RATE_WAIT_INLINE_S = 1.0


@dataclass(frozen=True)
class Deferral:
    """Why the task stopped sending before its work was done, and for how long to put it off."""

    delay_s: float
    reason: str  # a metrics.DeferReason


def deferral(delay_s: float, reason: str) -> Deferral | None:
    """A deferral for a refusal (rate limit, open breaker) that asks to wait; None for no wait."""
    return Deferral(delay_s, reason) if delay_s else None


def sending_budget_s(lease_s: float, request_s: float) -> float:
    """How long after it starts a task may start new requests: the lease must cover one more."""
    return max(lease_s - request_s - LEASE_MARGIN_S, 1.0)


def flush_due(pending: int, since_flush_s: float) -> bool:
    """Attempts are written in batches: every FLUSH_EVERY of them, or after FLUSH_INTERVAL_S."""
    return pending >= FLUSH_EVERY or since_flush_s > FLUSH_INTERVAL_S


def counts_against_breaker(outcome: HttpOutcome) -> bool:
    """Timeouts, connection errors and 5xx say the endpoint is down; 4xx do not."""
    return outcome.status_code is None or outcome.status_code >= 500


class Action(StrEnum):
    DISABLE = "disable"  # 410 Gone: disable the endpoint and release what is left
    DEFER = "defer"  # rate limited or breaker open: put what is left off, no attempt used
    RELEASE = "release"  # out of time, or nothing left: give the leases back


@dataclass(frozen=True)
class Settlement:
    """What a task does with the deliveries it claimed but did not send."""

    action: Action
    delay_s: float = 0.0
    reason: str = ""


def settle(gone: bool, stopped_by: Deferral | None, left: int) -> Settlement:
    """410 Gone disables the endpoint whatever else happened; a deferral applies to what is left."""
    if gone:
        return Settlement(Action.DISABLE)
    if stopped_by is not None and left:
        return Settlement(Action.DEFER, stopped_by.delay_s, stopped_by.reason)
    return Settlement(Action.RELEASE)
