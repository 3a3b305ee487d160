"""The Redis client for state every worker shares (rate limits, circuit breakers)."""

from __future__ import annotations

from functools import lru_cache

import redis


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """One pooled client per URL and process (created lazily, so after a fork)."""
    return redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
