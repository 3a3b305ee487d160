"""Requests per API key, and requests without a valid key per client address, shared by every
API process through Redis: GCRA with a burst.

Without Redis there is no shared count: the API answers anyway (fails open) and says so in the
log, at most once a minute (once for every limiter of the process).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0

# KEYS[1]: the caller's key. ARGV[1]: emission interval in µs (1 / rate); ARGV[2]: how far ahead
# of now the theoretical arrival time may run, in µs (interval × (burst - 1)); ARGV[3]: 1 to
# count the request, 0 only to ask. Returns 0 when the request may go now, else the µs until it
# may. Redis' clock: every API process shares one.
_GCRA_BURST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if tat - tolerance > now then return tat - tolerance - now end
if ARGV[3] == '0' then return 0 end
local later = tat + interval
redis.call('SET', KEYS[1], string.format('%d', later), 'PX', math.ceil((later - now) / 1000) + 1000)
return 0
"""


class ApiRateLimiter:
    """`per_second` requests per key on average, `burst` of them at once; 0 per second: off."""

    # When a limiter of this process last said Redis was unreachable.
    _logged_at = -math.inf

    def __init__(self, client: redis.Redis, per_second: float, burst: int) -> None:
        self._client = client
        self._interval_us = max(1, int(1_000_000 / per_second)) if per_second > 0 else 0
        self._tolerance_us = self._interval_us * max(0, burst - 1)
        self._script: Any = client.register_script(_GCRA_BURST) if per_second > 0 else None

    def acquire(self, key: str) -> float:
        """0 when a request with this key may go now (and it is counted), else the seconds
        until it may."""
        return self._run(key, count=True)

    def peek(self, key: str) -> float:
        """What `acquire` would answer, without counting a request."""
        return self._run(key, count=False)

    def _run(self, key: str, count: bool) -> float:
        if self._script is None:
            return 0.0
        try:
            wait_us = int(
                self._script(
                    keys=[f"ethhook:api:ratelimit:{key}"],
                    args=[self._interval_us, self._tolerance_us, int(count)],
                )
            )
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - ApiRateLimiter._logged_at >= LOG_EVERY_S:
                ApiRateLimiter._logged_at = now
                log.warning("api.ratelimit.unavailable error=%s (requests are not limited)", exc)
            return 0.0
        return wait_us / 1_000_000
