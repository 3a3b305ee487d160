"""The metric names EthHook exports, for tests that check alerts, dashboards and the registry."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry

# Every metric family name EthHook exports (alerts and dashboards may use only these + `up`).
METRIC_NAMES: frozenset[str] = frozenset(
    {
        "events_received_total",
        "chain_head_block",
        "listener_lag_blocks",
        "chain_connected",
        "listener_cursor_block",
        "listener_rpc_errors_total",
        "reorgs_total",
        "reorg_depth_blocks",
        "batch_processing_seconds",
        "deliveries_created_total",
        "webhooks_delivered_total",
        "delivery_attempt_duration_seconds",
        "delivery_latency_seconds",
        "deliveries_deferred_total",
        "deliveries_dead_lettered_total",
        "ops_webhooks_total",
        "circuit_breaker_open",
        "deliveries_pending",
        "deliveries_waiting",
        "deliveries_failed",
        "deliveries_oldest_due_seconds",
        "events_unmatched_oldest_seconds",
        "celery_queue_length",
        "api_requests_total",
        "api_request_duration_seconds",
        "retention_dropped_partitions_total",
        "retention_held_partitions",
        "retention_overdue_seconds",
    }
)


def iter_metric_names() -> Iterator[str]:
    """METRIC_NAMES plus the sample suffixes Prometheus derives (_bucket, _sum, _count, _created)."""
    for name in sorted(METRIC_NAMES):
        yield name
        for suffix in ("_bucket", "_sum", "_count", "_created"):
            yield name + suffix


def registry() -> CollectorRegistry:
    """The registry holding this process's own metric objects (tests read values from it)."""
    from ethhook.metrics.definitions import own_registry

    return own_registry()
