"""Per-endpoint rate limits shared by every worker: GCRA in one atomic Redis script."""

from __future__ import annotations

import logging
from typing import Any

import redis

log = logging.getLogger(__name__)

# KEYS[1]: the endpoint's key. ARGV[1]: emission interval in µs (1 / rate).
# Returns 0 when the request may go now, else the µs to wait. Redis' own clock is used so that
# workers on machines with skewed clocks share one timeline. No burst: requests are spaced by the
# emission interval, so no 1-second window sees more than rate + 1 of them.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat > now then return tat - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(interval / 1000) + 1000)
return 0
"""


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script: Any = client.register_script(_GCRA)

    def acquire(self, endpoint_id: int, per_second: float) -> float:
        """0 when a request to the endpoint may go now, else the seconds until it may."""
        interval_us = max(1, int(1_000_000 / per_second))
        try:
            wait_us = int(
                self._script(keys=[f"ethhook:ratelimit:{endpoint_id}"], args=[interval_us])
            )
        except redis.RedisError as exc:
            # Without Redis there is no shared limit; sending beats holding every delivery back.
            log.warning("deliver.ratelimit.unavailable endpoint=%s error=%s", endpoint_id, exc)
            return 0.0
        return wait_us / 1_000_000
