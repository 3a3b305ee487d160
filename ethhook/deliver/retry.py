"""The retry policy: a pure function from an attempt's outcome to the next delay, or give up."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

JITTER_FRACTION = 0.1
MAX_RETRY_AFTER_S = 86400.0


@dataclass(frozen=True)
class RetryDecision:
    """`delay_s` is None when the delivery has used every attempt and is dead-lettered."""

    delay_s: float | None

    @property
    def give_up(self) -> bool:
        return self.delay_s is None


def next_retry(
    attempts_made: int,
    schedule_s: Sequence[float],
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> RetryDecision:
    """Delay before the next attempt after `attempts_made` failed ones.

    `schedule_s[i]` is the delay before attempt i+1 (the first entry, usually 0, is the first try),
    so a schedule of n entries allows n attempts. Delays get ±10 % jitter so retries of many
    deliveries spread out; a receiver's `Retry-After` is a floor that jitter never undercuts.
    """
    if attempts_made < 1:
        raise ValueError("attempts_made counts the failed attempts so far, starting at 1")
    if attempts_made >= len(schedule_s):
        return RetryDecision(None)
    base = float(schedule_s[attempts_made])
    jitter = (rng or random).uniform(-JITTER_FRACTION, JITTER_FRACTION)
    delay = base * (1 + jitter)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return RetryDecision(delay)


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_epoch)
