"""The retry policy: pure functions from an attempt's outcome to the next delay, or give up."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from ethhook.db.models import DeliveryStatus
from ethhook.deliver.http import HttpOutcome

JITTER_FRACTION = 0.1
MAX_RETRY_AFTER_S = 86400.0
_DELTA_SECONDS = re.compile(r"[0-9]{1,64}")
# An HTTP-date is 24 to 41 printable ASCII characters, whichever of its three forms.
_HTTP_DATE_CHARS = re.compile(r"[\x20-\x7e]{20,64}")


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
    """Seconds from a receiver's `Retry-After` (RFC 9110: delta-seconds or an HTTP-date), within
    0..MAX_RETRY_AFTER_S; None when absent or anything else: the header is ignored, never an error.

    Strict ASCII: a header is foreign bytes read as latin-1, and `str.isdigit()`, `int()` and
    email.utils take digits such as "²" or "٣" (on which `float()` raises).
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if _DELTA_SECONDS.fullmatch(value):
        return min(float(int(value)), MAX_RETRY_AFTER_S)
    if not _HTTP_DATE_CHARS.fullmatch(value):
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):  # what email.utils raises on a bad date
        return None
    if when.tzinfo is None:  # asctime and "-0000": GMT, not this machine's time zone
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, when.timestamp() - now_epoch), MAX_RETRY_AFTER_S)


def next_state(
    outcome: HttpOutcome, attempts_made: int, schedule_s: Sequence[float], now: datetime
) -> tuple[str, datetime | None]:
    """A delivery's status after an attempt (`attempts_made` counts it) and its next attempt's
    time: succeeded, pending until then, or failed when every attempt is used. A 429 or 503 may
    ask for a later retry with Retry-After."""
    if outcome.ok:
        return DeliveryStatus.SUCCEEDED, None
    retry_after = None
    if outcome.status_code in (429, 503):
        retry_after = parse_retry_after(outcome.retry_after, now.timestamp())
    decision = next_retry(attempts_made, schedule_s, retry_after)
    if decision.delay_s is None:
        return DeliveryStatus.FAILED, None
    return DeliveryStatus.PENDING, now + timedelta(seconds=decision.delay_s)
