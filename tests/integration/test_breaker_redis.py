"""A breaker whose Redis goes away mid-task answers every call: the attempts around it are still
recorded, and deliveries still go (a breaker is protection, not a gate that loses work)."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from ethhook.deliver.protect.breaker import CLOSED, EndpointBreaker


def test_a_breaker_that_loses_redis_after_opening_answers_every_call(tmp_path: Path) -> None:
    from ethhook.demo.localredis import LocalRedis

    server = LocalRedis(tmp_path)
    client = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
    breaker = EndpointBreaker(client, 7, fail_max=1, reset_timeout_s=30, trial_ttl_s=5)
    try:
        # Given an open breaker, its state in Redis
        assert breaker.before_request() == 0.0
        assert breaker.record_failure() is True
    finally:
        server.stop()

    # When Redis is gone after the window's requests went out, counting their answers still
    # answers, so the task goes on to record them
    started = time.monotonic()
    breaker.record_success()
    assert breaker.record_failure() is False
    assert breaker.before_request() == 0.0
    assert breaker.state() == CLOSED  # pybreaker's own fallback without Redis
    assert time.monotonic() - started < 30
