"""The metric recorders count what the pipeline tells them, under the names the dashboards use."""

from __future__ import annotations

import pytest


def _value(name: str, **labels: str) -> float:
    from tests.support.metric_names import registry

    return registry().get_sample_value(name, labels) or 0.0


def test_metric_helpers_increment_and_read_back() -> None:
    from ethhook import metrics

    before = {
        "events": _value("events_received_total", chain="ethereum"),
        "ok": _value("webhooks_delivered_total", status="success"),
        "bad": _value("webhooks_delivered_total", status="failure"),
        "batches": _value("batch_processing_seconds_count"),
        "latency_sum": _value("delivery_latency_seconds_sum"),
        "deferred": _value("deliveries_deferred_total", reason="rate_limited"),
        "reorgs": _value("reorgs_total", chain="base"),
    }

    metrics.record_events_received("ethereum", 7)
    metrics.record_events_received("ethereum", 0)
    metrics.record_attempt(True, 0.05)
    metrics.record_attempt(True, 0.07)
    metrics.record_attempt(False, 3.0)
    metrics.observe_batch(0.02)
    metrics.record_delivered_latency(2.5)
    metrics.record_deferred(metrics.DeferReason.RATE_LIMITED, 3)
    metrics.record_reorg("base", 2)
    metrics.set_chain_head("ethereum", 123)
    metrics.set_listener_lag("ethereum", -4)
    metrics.set_chain_connected("ethereum", False)
    metrics.set_breaker_open(42, True)

    assert _value("events_received_total", chain="ethereum") - before["events"] == 7
    assert _value("webhooks_delivered_total", status="success") - before["ok"] == 2
    assert _value("webhooks_delivered_total", status="failure") - before["bad"] == 1
    assert _value("batch_processing_seconds_count") - before["batches"] == 1
    assert _value("delivery_latency_seconds_sum") - before["latency_sum"] == pytest.approx(2.5)
    assert _value("deliveries_deferred_total", reason="rate_limited") - before["deferred"] == 3
    assert _value("reorgs_total", chain="base") - before["reorgs"] == 1
    assert _value("chain_head_block", chain="ethereum") == 123
    assert _value("listener_lag_blocks", chain="ethereum") == 0  # never negative
    assert _value("chain_connected", chain="ethereum") == 0
    assert _value("circuit_breaker_open", endpoint="42") == 1
    metrics.set_breaker_open(42, False)
    assert _value("circuit_breaker_open", endpoint="42") == 0


def test_design_metric_names_are_defined() -> None:
    from tests.support.metric_names import METRIC_NAMES, registry

    exported = {m.name for m in registry().collect()}
    exported |= {name + "_total" for name in exported}  # counters' family names drop _total
    scrape_time = {
        "deliveries_pending",
        "deliveries_waiting",
        "deliveries_failed",
        "deliveries_oldest_due_seconds",
        "events_unmatched_oldest_seconds",
        "celery_queue_length",
    }
    assert METRIC_NAMES == (METRIC_NAMES & exported) | scrape_time
    assert {
        "events_received_total",
        "webhooks_delivered_total",
        "batch_processing_seconds",
        "delivery_latency_seconds",
        "chain_head_block",
        "listener_lag_blocks",
        "circuit_breaker_open",
        "deliveries_pending",
    } <= METRIC_NAMES


def test_worker_metrics_port_zero_disables_the_server() -> None:
    from ethhook import metrics

    assert metrics.start_worker_metrics(port=0, host="127.0.0.1") is None


def test_latency_since_prefers_the_block_timestamp() -> None:
    import time
    from datetime import UTC, datetime, timedelta

    from ethhook import metrics

    assert metrics.latency_since(time.time() - 10, None) == pytest.approx(10, abs=1)
    created = datetime.now(UTC) - timedelta(seconds=30)
    assert metrics.latency_since(None, created) == pytest.approx(30, abs=1)
    assert metrics.latency_since(time.time() + 100, created) == 0.0


def test_ops_webhooks_are_counted_by_type_and_outcome() -> None:
    from ethhook import metrics

    labels = {"type": "endpoint.disabled", "outcome": "failure"}
    before = _value("ops_webhooks_total", **labels)
    metrics.record_ops_webhook("endpoint.disabled", False)
    metrics.record_ops_webhook("endpoint.disabled", True)
    assert _value("ops_webhooks_total", **labels) - before == 1
