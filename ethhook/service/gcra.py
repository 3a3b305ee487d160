"""Limits shared by every process through Redis: GCRA, a rate with a burst, on Redis' clock.

Without Redis there is no shared count: every caller is let through (fails open) and the log says
so, at most once a minute per limit.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0

# KEYS[1]: what is limited. ARGV[1]: emission interval in µs (1 / rate); ARGV[2]: how far ahead
# of now the theoretical arrival time may run, in µs (interval × (burst - 1)); ARGV[3]: 'take'
# to count one when it may go, 'peek' to count nothing. Returns 0 when one may go now, else the
# µs until it may. Redis' clock: every process shares one.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if tat - tolerance > now then return tat - tolerance - now end
if ARGV[3] == 'peek' then return 0 end
local later = tat + interval
redis.call('SET', KEYS[1], string.format('%d', later), 'PX', math.ceil((later - now) / 1000) + 1000)
return 0
"""


class Gcra:
    """`per_second` on average, `burst` at once, per key under `prefix`; 0 per second: off.

    `name` is the limit's name in the log line that says Redis is unreachable."""

    def __init__(
        self, client: redis.Redis, prefix: str, per_second: float, burst: int, name: str
    ) -> None:
        self._prefix = prefix
        self._name = name
        self._interval_us = max(1, int(1_000_000 / per_second)) if per_second > 0 else 0
        self._tolerance_us = self._interval_us * max(0, burst - 1)
        self._script: Any = client.register_script(_GCRA) if per_second > 0 else None
        self._logged_at = -math.inf

    def take(self, key: str) -> float:
        """0 when one may go now (and it is counted), else the seconds until one may."""
        return self._run(key, "take")

    def wait(self, key: str) -> float:
        """0 when one may go now, else the seconds until one may; nothing is counted."""
        return self._run(key, "peek")

    def _run(self, key: str, mode: str) -> float:
        if self._script is None:
            return 0.0
        try:
            wait_us = int(
                self._script(
                    keys=[self._prefix + key], args=[self._interval_us, self._tolerance_us, mode]
                )
            )
        except redis.RedisError as exc:
            now = time.monotonic()
            if now - self._logged_at >= LOG_EVERY_S:
                self._logged_at = now
                log.warning("%s.unavailable error=%s (nothing is limited)", self._name, exc)
            return 0.0
        return wait_us / 1_000_000
