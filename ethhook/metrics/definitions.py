"""The metric families EthHook exports, and this process's one instance of them.

`webhooks_delivered_total{status}` counts delivery *attempts* by outcome: `success` (a 2xx) or
`failure` (anything else: non-2xx, timeout, refused connection, redirect). So the `success` series
equals the deliveries that succeeded and the sum of both equals the rows in `delivery_attempts`.
Deferrals (rate limited, breaker open) are not attempts: see `deliveries_deferred_total{reason}`.
"""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class DeferReason:
    """Why a delivery was put back without consuming an attempt (`deliveries_deferred_total`)."""

    RATE_LIMITED = "rate_limited"
    BREAKER_OPEN = "breaker_open"


# Buckets: batches take milliseconds; block → webhook spans instant deliveries (seconds) to
# confirmations (minutes) and retries (hours); one HTTP attempt is bounded by the timeouts.
BATCH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS_S = (
    0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
    21600.0, 86400.0,
)  # fmt: skip
ATTEMPT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# An API request reads or writes a few rows; a test webhook waits for the receiver (timeouts).
API_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """This process's metric objects, all in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        # listener
        self.events_received = Counter(
            "events_received", "Contract events read from the chain, per chain", ["chain"],
            registry=r,
        )  # fmt: skip
        self.chain_head_block = Gauge(
            "chain_head_block", "Latest block number the node announced", ["chain"],
            registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self.listener_lag_blocks = Gauge(
            "listener_lag_blocks", "Blocks between the chain head and the last processed block",
            ["chain"], registry=r, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.chain_connected = Gauge(
            "chain_connected", "1 while the listener is connected to the chain's node, else 0",
            ["chain"], registry=r, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.cursor_block = Gauge(
            "listener_cursor_block", "Last block fully processed and published", ["chain"],
            registry=r, multiprocess_mode="livemax",
        )  # fmt: skip
        self.rpc_errors = Counter(
            "listener_rpc_errors", "Failed RPC passes of the listener, per chain", ["chain"],
            registry=r,
        )  # fmt: skip
        self.reorgs = Counter(
            "reorgs", "Chain reorganisations detected, per chain", ["chain"], registry=r
        )
        self.reorg_depth = Histogram(
            "reorg_depth_blocks", "Blocks rolled back per reorg", ["chain"], registry=r,
            buckets=(1, 2, 3, 5, 10, 20, 50, 100),
        )  # fmt: skip
        # matcher
        self.batch_seconds = Histogram(
            "batch_processing_seconds", "Time to match and store one event batch", registry=r,
            buckets=BATCH_BUCKETS_S,
        )  # fmt: skip
        self.deliveries_created = Counter(
            "deliveries_created", "Delivery rows created by the matcher", registry=r
        )
        # delivery
        self.delivered = Counter(
            "webhooks_delivered",
            "Delivery attempts by outcome: success (2xx) or failure (anything else)",
            ["status"], registry=r,
        )  # fmt: skip
        self.attempt_seconds = Histogram(
            "delivery_attempt_duration_seconds", "Duration of one HTTP attempt", registry=r,
            buckets=ATTEMPT_BUCKETS_S,
        )  # fmt: skip
        self.latency = Histogram(
            "delivery_latency_seconds",
            "From the event's block timestamp (or the delivery's creation) to the 2xx answer",
            registry=r, buckets=LATENCY_BUCKETS_S,
        )  # fmt: skip
        self.deferred = Counter(
            "deliveries_deferred", "Deliveries put back without an attempt, by reason",
            ["reason"], registry=r,
        )  # fmt: skip
        self.dead_lettered = Counter(
            "deliveries_dead_lettered", "Deliveries that used their last attempt (now failed)",
            registry=r,
        )  # fmt: skip
        self.ops_webhooks = Counter(
            "ops_webhooks", "Operational webhook attempts, by type and outcome (success, failure)",
            ["type", "outcome"], registry=r,
        )  # fmt: skip
        self.breaker_open = Gauge(
            "circuit_breaker_open", "1 while the endpoint's circuit breaker is open, else 0",
            ["endpoint"], registry=r, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        # retention (beat's cleanup job, PostgreSQL): whole partitions of the history tables
        self.retention_dropped = Counter(
            "retention_dropped_partitions", "History partitions dropped past retention, per table",
            ["table"], registry=r,
        )  # fmt: skip
        self.retention_held = Gauge(
            "retention_held_partitions",
            "History partitions past retention kept because their interval holds a waiting or "
            "pending delivery or an unmatched event, per table (at the last retention run)",
            ["table"], registry=r, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        self.retention_overdue = Gauge(
            "retention_overdue_seconds",
            "How long the oldest partition retention keeps has been past retention (0: none)",
            registry=r, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        # HTTP API, labelled by route template (/v1/endpoints/{endpoint_id}), never the raw path
        self.api_requests = Counter(
            "api_requests", "HTTP API requests answered", ["route", "method", "status"],
            registry=r,
        )  # fmt: skip
        self.api_request_seconds = Histogram(
            "api_request_duration_seconds", "Time to answer one HTTP API request",
            ["route", "method"], registry=r, buckets=API_BUCKETS_S,
        )  # fmt: skip
        # Pre-create the fixed label values so the series exist (at 0) from the first scrape.
        for status in ("success", "failure"):
            self.delivered.labels(status=status)


# Made on first use: a process that never records a metric never builds them, and a worker that
# switches to multiprocess mode first (see `start_over`) builds them file-backed from the start.
_lock = threading.Lock()
_registry = CollectorRegistry()
_metrics: Metrics | None = None


def current() -> Metrics:
    """This process's metric objects, created on first use."""
    global _metrics
    metrics = _metrics
    if metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics(_registry)
            metrics = _metrics
    return metrics


def own_registry() -> CollectorRegistry:
    """The registry holding this process's own metric objects (created if need be)."""
    current()
    return _registry


def start_over() -> None:
    """Drop the metric objects made so far; the next `current()` makes new ones.

    Called when prometheus-client switches to file-backed values: objects made earlier hold
    in-memory values and would never reach the files.
    """
    global _metrics, _registry
    with _lock:
        _registry = CollectorRegistry()
        _metrics = None
