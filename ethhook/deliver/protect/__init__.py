"""Per-endpoint protection: breaker, rate limit, requests in flight, slow start, policy, retries."""

from ethhook.deliver.protect.breaker import EndpointBreaker
from ethhook.deliver.protect.inflight import OrderedSlots, endpoint_slots, endpoint_turn
from ethhook.deliver.protect.policy import (
    RATE_WAIT_INLINE_S,
    Action,
    Deferral,
    Settlement,
    counts_against_breaker,
    deferral,
    flush_due,
    sending_budget_s,
    settle,
)
from ethhook.deliver.protect.ratelimit import RateLimiter
from ethhook.deliver.protect.retry import RetryDecision, next_retry, next_state, parse_retry_after
from ethhook.deliver.protect.shared import redis_client
from ethhook.deliver.protect.window import WindowMemory, first_window, next_window, windows

__all__ = [
    "RATE_WAIT_INLINE_S",
    "Action",
    "Deferral",
    "EndpointBreaker",
    "OrderedSlots",
    "RateLimiter",
    "RetryDecision",
    "Settlement",
    "WindowMemory",
    "counts_against_breaker",
    "deferral",
    "endpoint_slots",
    "endpoint_turn",
    "first_window",
    "flush_due",
    "next_retry",
    "next_state",
    "next_window",
    "parse_retry_after",
    "redis_client",
    "sending_budget_s",
    "settle",
    "windows",
]
