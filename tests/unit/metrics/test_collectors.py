"""Scrape-time collectors: the broker URL and key rules, the backlog gauges, and their cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from ethhook.metrics import collectors
from ethhook.metrics.collectors import (
    Backlog,
    DeliveryBacklogCollector,
    redis_list_keys,
    redis_url_for,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("broker_url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("rediss://cache.example.com:6380/2", "rediss://cache.example.com:6380/2"),
        ("redis+socket:///run/redis.sock", "unix:///run/redis.sock"),
        ("amqp://guest@127.0.0.1//", None),
        ("memory://", None),
    ],
)
def test_redis_url_for_broker_urls(broker_url: str, expected: str | None) -> None:
    assert redis_url_for(broker_url) == expected


def test_redis_list_keys_cover_kombu_priority_levels() -> None:
    assert redis_list_keys("match") == [
        "match",
        "match\x06\x163",
        "match\x06\x166",
        "match\x06\x169",
    ]


def _values(backlog: Backlog) -> dict[str, float]:
    return {
        family.name: family.samples[0].value
        for family in backlog.families(NOW)
        if family.samples
    }


def test_each_chains_first_unmatched_event_reports_how_long_it_has_waited() -> None:
    since = {1: NOW - timedelta(seconds=42), 10: None, 8453: NOW.replace(tzinfo=None)}
    (family,) = [
        f for f in Backlog(unmatched_since=since).families(NOW)
        if f.name == "events_unmatched_oldest_seconds"
    ]
    assert {s.labels["chain_id"]: s.value for s in family.samples} == {
        "1": 42.0,
        "10": 0.0,  # every stored event matched
        "8453": 0.0,
    }


def test_backlog_gauges_report_counts_and_how_long_the_oldest_is_overdue() -> None:
    backlog = Backlog(pending=3, waiting=2, failed=1, oldest_due=NOW - timedelta(seconds=90))
    assert _values(backlog) == {
        "deliveries_pending": 3,
        "deliveries_waiting": 2,
        "deliveries_failed": 1,
        "deliveries_oldest_due_seconds": 90.0,
    }


@pytest.mark.parametrize(
    ("oldest_due", "overdue_s"),
    [
        (None, 0.0),  # nothing pending
        (NOW + timedelta(seconds=30), 0.0),  # due later: not overdue
        ((NOW - timedelta(seconds=12)).replace(tzinfo=None), 12.0),  # naive times are UTC
    ],
)
def test_backlog_overdue_edge_cases(oldest_due: datetime | None, overdue_s: float) -> None:
    assert _values(Backlog(oldest_due=oldest_due))["deliveries_oldest_due_seconds"] == overdue_s


def test_backlog_collector_queries_at_most_once_per_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def query() -> Backlog:
        calls.append(1)
        return Backlog(pending=len(calls))

    monkeypatch.setattr(collectors, "_query_backlog", query)
    registry = CollectorRegistry()
    registry.register(DeliveryBacklogCollector(ttl_s=3600))

    assert registry.get_sample_value("deliveries_pending") == 1
    assert registry.get_sample_value("deliveries_pending") == 1
    assert len(calls) == 1


def test_backlog_collector_shows_nothing_when_the_query_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(collectors, "_query_backlog", lambda: None)
    registry = CollectorRegistry()
    registry.register(DeliveryBacklogCollector(ttl_s=0))

    assert registry.get_sample_value("deliveries_pending") is None
    assert registry.get_sample_value("deliveries_oldest_due_seconds") is None
