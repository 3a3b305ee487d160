"""The functions the pipeline calls to record what happened (listener, matcher, delivery)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ethhook.metrics.definitions import current

# --- listener -------------------------------------------------------------------------------------


def record_events_received(chain: str, n: int = 1) -> None:
    """The listener read `n` events of `chain` (its name, e.g. "ethereum")."""
    if n > 0:
        current().events_received.labels(chain=chain).inc(n)


def set_chain_head(chain: str, block_number: int) -> None:
    current().chain_head_block.labels(chain=chain).set(block_number)


def set_listener_lag(chain: str, blocks: int) -> None:
    current().listener_lag_blocks.labels(chain=chain).set(max(blocks, 0))


def set_chain_connected(chain: str, connected: bool) -> None:
    current().chain_connected.labels(chain=chain).set(1 if connected else 0)


def set_cursor_block(chain: str, block_number: int) -> None:
    current().cursor_block.labels(chain=chain).set(block_number)


def record_rpc_error(chain: str) -> None:
    current().rpc_errors.labels(chain=chain).inc()


def record_reorg(chain: str, depth: int) -> None:
    """A reorg of `depth` blocks was detected and handled on `chain`."""
    metrics = current()
    metrics.reorgs.labels(chain=chain).inc()
    metrics.reorg_depth.labels(chain=chain).observe(depth)


# --- matcher --------------------------------------------------------------------------------------


def observe_batch(seconds: float) -> None:
    """One matcher batch took `seconds` (store events, match, create deliveries, commit)."""
    current().batch_seconds.observe(seconds)


def record_deliveries_created(n: int) -> None:
    if n > 0:
        current().deliveries_created.inc(n)


# --- delivery -------------------------------------------------------------------------------------


def record_attempt(ok: bool, duration_s: float) -> None:
    """One HTTP attempt finished: ok means a 2xx answer."""
    metrics = current()
    metrics.delivered.labels(status="success" if ok else "failure").inc()
    metrics.attempt_seconds.observe(max(duration_s, 0.0))


def record_ops_webhook(type_: str, ok: bool) -> None:
    """One operational webhook attempt finished: ok means a 2xx answer."""
    current().ops_webhooks.labels(type=type_, outcome="success" if ok else "failure").inc()


def record_delivered_latency(seconds: float) -> None:
    """A delivery succeeded `seconds` after its block's timestamp (or the delivery's creation)."""
    current().latency.observe(max(seconds, 0.0))


def latency_since(block_timestamp: int | float | None, created_at: datetime | None) -> float:
    """Seconds from the block's timestamp (else the delivery's creation) to now."""
    now = time.time()
    if block_timestamp:
        return max(now - float(block_timestamp), 0.0)
    if created_at is not None:
        created = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        return max(now - created.timestamp(), 0.0)
    return 0.0


def record_deferred(reason: str, n: int = 1) -> None:
    """`n` deliveries were put back without an attempt (see DeferReason)."""
    if n > 0:
        current().deferred.labels(reason=reason).inc(n)


def record_dead_lettered(n: int = 1) -> None:
    """`n` deliveries used their last attempt and are now `failed`."""
    if n > 0:
        current().dead_lettered.inc(n)


def set_breaker_open(endpoint_id: int, is_open: bool) -> None:
    current().breaker_open.labels(endpoint=str(endpoint_id)).set(1 if is_open else 0)


# --- retention ------------------------------------------------------------------------------------


def record_retention(dropped: dict[str, int], held: dict[str, int], overdue_s: float) -> None:
    """A retention run dropped `dropped` partitions and kept `held` past retention, per table;
    the oldest kept one has been past retention for `overdue_s` seconds."""
    metrics = current()
    for table, n in dropped.items():
        if n > 0:
            metrics.retention_dropped.labels(table=table).inc(n)
    for table, n in held.items():
        metrics.retention_held.labels(table=table).set(n)
    metrics.retention_overdue.set(max(overdue_s, 0.0))


# --- HTTP API -------------------------------------------------------------------------------------


def record_api_request(route: str, method: str, status: int, seconds: float) -> None:
    """The API answered a request to `route` (its template, e.g. /v1/endpoints/{endpoint_id})."""
    metrics = current()
    metrics.api_requests.labels(route=route, method=method, status=str(status)).inc()
    metrics.api_request_seconds.labels(route=route, method=method).observe(max(seconds, 0.0))
