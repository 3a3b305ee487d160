"""Prometheus metrics: what the pipeline records (`metrics.record_…`) and how /metrics serves it.

* `definitions`: the metric families and this process's instance of them.
* `recorders`: the functions the listener, matcher and delivery call.
* `collectors`: gauges computed at scrape time from the deliveries table and the broker.
* `server`: the listener's exposition and a Celery worker's multiprocess /metrics server.

Importing this package is cheap (importing ethhook.celery_app imports it): SQLAlchemy, redis-py,
kombu, Celery's signals and the settings are imported only when first needed.
"""

from ethhook.metrics.collectors import (
    DeliveryBacklogCollector,
    QueueLengthCollector,
    shared_state_collectors,
)
from ethhook.metrics.definitions import DeferReason
from ethhook.metrics.recorders import (
    latency_since,
    observe_batch,
    record_api_request,
    record_attempt,
    record_dead_lettered,
    record_deferred,
    record_delivered_latency,
    record_deliveries_created,
    record_events_received,
    record_ops_webhook,
    record_reorg,
    record_retention,
    record_rpc_error,
    set_breaker_open,
    set_chain_connected,
    set_chain_head,
    set_cursor_block,
    set_listener_lag,
)
from ethhook.metrics.server import (
    build_exposition_registry,
    connect_worker_signals,
    enable_multiprocess,
    exposition,
    mark_worker_process_dead,
    start_metrics_server,
    start_worker_metrics,
    stop_worker_metrics,
)

__all__ = [
    "DeferReason",
    "DeliveryBacklogCollector",
    "QueueLengthCollector",
    "build_exposition_registry",
    "connect_worker_signals",
    "enable_multiprocess",
    "exposition",
    "latency_since",
    "mark_worker_process_dead",
    "observe_batch",
    "record_api_request",
    "record_attempt",
    "record_dead_lettered",
    "record_deferred",
    "record_delivered_latency",
    "record_deliveries_created",
    "record_events_received",
    "record_ops_webhook",
    "record_reorg",
    "record_retention",
    "record_rpc_error",
    "set_breaker_open",
    "set_chain_connected",
    "set_chain_head",
    "set_cursor_block",
    "set_listener_lag",
    "shared_state_collectors",
    "start_metrics_server",
    "start_worker_metrics",
    "stop_worker_metrics",
]
