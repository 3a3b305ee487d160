"""Prometheus metrics (names per DESIGN.md §3): definitions, helpers the pipeline calls, /metrics.

Two ways a process exposes them:

* The listener (one process) keeps its metrics in memory and serves `exposition()` on its own HTTP
  server (port `ETHHOOK_METRICS_PORT`, 3000) next to `/health`.
* A Celery worker calls `start_worker_metrics()` on `worker_init`, in its main process before the
  pool starts. That switches prometheus-client to multiprocess mode in a fresh folder of its own (so
  prefork children, gevent, threads and solo pools all write to the same place, and two workers on
  one machine never mix their numbers) and serves the merged values on
  `ETHHOOK_WORKER_METRICS_PORT` (9808; 0 = off).

Both also export gauges read at scrape time from shared state, cached a few seconds:
`deliveries_pending` and friends (one GROUP BY query on `deliveries`) and `celery_queue_length`
(LLEN on a Redis broker). Every process reports the same cluster-wide values: aggregate them with
`max`, not `sum`.

`webhooks_delivered_total{status}` counts delivery *attempts* by outcome: `success` (a 2xx) or
`failure` (anything else: non-2xx, timeout, refused connection, redirect). So the `success` series
equals the deliveries that succeeded and the sum of both equals the rows in `delivery_attempts`.
Deferrals (rate limited, breaker open) are not attempts: see `deliveries_deferred_total{reason}`.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    multiprocess,
    start_http_server,
)
from prometheus_client import values as _prom_values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

DEFAULT_WORKER_METRICS_PORT = 9808
DEFAULT_METRICS_HOST = "0.0.0.0"  # scraped from other hosts and containers
SCRAPE_CACHE_S = 5.0


class DeferReason:
    """Why a delivery was put back without consuming an attempt (`deliveries_deferred_total`)."""

    RATE_LIMITED = "rate_limited"
    BREAKER_OPEN = "breaker_open"
    ENDPOINT_DISABLED = "endpoint_disabled"
    LEASE_BUDGET = "lease_budget"


# Buckets: batches take milliseconds; block → webhook spans instant deliveries (seconds) to
# confirmations (minutes) and retries (hours); one HTTP attempt is bounded by the timeouts.
BATCH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS_S = (
    0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0,
    21600.0, 86400.0,
)  # fmt: skip
ATTEMPT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Metrics:
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
        self.breaker_open = Gauge(
            "circuit_breaker_open", "1 while the endpoint's circuit breaker is open, else 0",
            ["endpoint"], registry=r, multiprocess_mode="livemostrecent",
        )  # fmt: skip
        # Pre-create the fixed label values so the series exist (at 0) from the first scrape.
        for status in ("success", "failure"):
            self.delivered.labels(status=status)


_lock = threading.Lock()
_registry = CollectorRegistry()
_metrics: _Metrics | None = None
_multiproc_dir: str | None = None
_owner_pid: int | None = None
_server: WSGIServer | None = None


def _m() -> _Metrics:
    global _metrics
    metrics = _metrics
    if metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = _Metrics(_registry)
            metrics = _metrics
    return metrics


def registry() -> CollectorRegistry:
    """The registry holding this process's own metric objects (tests read values from it)."""
    _m()
    return _registry


# --- helpers the pipeline calls -------------------------------------------------------------------


def record_events_received(chain: str, n: int = 1) -> None:
    """The listener read `n` events of `chain` (its name, e.g. "ethereum")."""
    if n > 0:
        _m().events_received.labels(chain=chain).inc(n)


def set_chain_head(chain: str, block_number: int) -> None:
    _m().chain_head_block.labels(chain=chain).set(block_number)


def set_listener_lag(chain: str, blocks: int) -> None:
    _m().listener_lag_blocks.labels(chain=chain).set(max(blocks, 0))


def set_chain_connected(chain: str, connected: bool) -> None:
    _m().chain_connected.labels(chain=chain).set(1 if connected else 0)


def set_cursor_block(chain: str, block_number: int) -> None:
    _m().cursor_block.labels(chain=chain).set(block_number)


def record_rpc_error(chain: str) -> None:
    _m().rpc_errors.labels(chain=chain).inc()


def record_reorg(chain: str, depth: int) -> None:
    """A reorg of `depth` blocks was detected and handled on `chain`."""
    metrics = _m()
    metrics.reorgs.labels(chain=chain).inc()
    metrics.reorg_depth.labels(chain=chain).observe(depth)


def observe_batch(seconds: float) -> None:
    """One matcher batch took `seconds` (store events, match, create deliveries, commit)."""
    _m().batch_seconds.observe(seconds)


def record_deliveries_created(n: int) -> None:
    if n > 0:
        _m().deliveries_created.inc(n)


def record_attempt(ok: bool, duration_s: float) -> None:
    """One HTTP attempt finished: ok means a 2xx answer."""
    metrics = _m()
    metrics.delivered.labels(status="success" if ok else "failure").inc()
    metrics.attempt_seconds.observe(max(duration_s, 0.0))


def record_delivered_latency(seconds: float) -> None:
    """A delivery succeeded `seconds` after its block's timestamp (or the delivery's creation)."""
    _m().latency.observe(max(seconds, 0.0))


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
        _m().deferred.labels(reason=reason).inc(n)


def record_dead_lettered(n: int = 1) -> None:
    """`n` deliveries used their last attempt and are now `failed`."""
    if n > 0:
        _m().dead_lettered.inc(n)


def set_breaker_open(endpoint_id: int, is_open: bool) -> None:
    _m().breaker_open.labels(endpoint=str(endpoint_id)).set(1 if is_open else 0)


# --- gauges computed at scrape time -----------------------------------------------------------------


@dataclass
class _Cached:
    """A value recomputed at most every `ttl_s` seconds; failures are logged, not cached."""

    compute: Callable[[], list[Metric]]
    ttl_s: float = SCRAPE_CACHE_S
    _at: float = field(default=-1e18, init=False)
    _value: list[Metric] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def get(self) -> list[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                self._value = self.compute()
                self._at = time.monotonic()
            return self._value


class DeliveryBacklogCollector(Collector):
    """`deliveries_pending`, `deliveries_waiting`, `deliveries_failed`, `deliveries_oldest_due_seconds`
    from one GROUP BY query on the deliveries table (indexed on status, next_attempt_at)."""

    def __init__(self, ttl_s: float = SCRAPE_CACHE_S) -> None:
        self._cache = _Cached(self._compute, ttl_s)

    def describe(self) -> Iterable[Metric]:
        return []  # computed lazily; describing must not query the database at registration

    def collect(self) -> Iterable[Metric]:
        return self._cache.get()

    def _compute(self) -> list[Metric]:
        from sqlalchemy import func, select
        from sqlalchemy.exc import SQLAlchemyError

        from ethhook.db import session_scope
        from ethhook.db.models import Delivery, DeliveryStatus

        wanted = (DeliveryStatus.PENDING, DeliveryStatus.WAITING, DeliveryStatus.FAILED)
        counts = dict.fromkeys(wanted, 0)
        oldest_due: datetime | None = None
        try:
            with session_scope() as session:
                rows = session.execute(
                    select(Delivery.status, func.count(), func.min(Delivery.next_attempt_at))
                    .where(Delivery.status.in_(wanted))
                    .group_by(Delivery.status)
                ).all()
        except SQLAlchemyError as exc:
            log.warning("metrics.collect.failed source=database error=%s", exc.__class__.__name__)
            return []
        for status, count, min_next in rows:
            counts[status] = int(count)
            if status == DeliveryStatus.PENDING:
                oldest_due = min_next
        now = datetime.now(UTC)
        overdue = 0.0
        if oldest_due is not None:
            due = oldest_due if oldest_due.tzinfo else oldest_due.replace(tzinfo=UTC)
            overdue = max((now - due).total_seconds(), 0.0)
        return [
            GaugeMetricFamily(
                "deliveries_pending",
                "Deliveries due now or scheduled for a retry (status pending)",
                value=counts[DeliveryStatus.PENDING],
            ),
            GaugeMetricFamily(
                "deliveries_waiting",
                "Deliveries waiting for their block's confirmations",
                value=counts[DeliveryStatus.WAITING],
            ),
            GaugeMetricFamily(
                "deliveries_failed",
                "Dead-lettered deliveries (every attempt failed; retry by hand)",
                value=counts[DeliveryStatus.FAILED],
            ),
            GaugeMetricFamily(
                "deliveries_oldest_due_seconds",
                "How long the most overdue pending delivery has been due (0 = none overdue)",
                value=overdue,
            ),
        ]


# kombu's Redis transport keeps priority levels in extra lists: "<queue>\x06\x16<priority>".
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def _redis_url_for(broker_url: str) -> str | None:
    """The redis-py URL for a Celery Redis broker URL, or None when the broker is not Redis."""
    scheme, _, rest = broker_url.partition("://")
    if scheme in ("redis", "rediss"):
        return broker_url
    if scheme == "redis+socket":
        return f"unix://{rest}"
    return None


class QueueLengthCollector(Collector):
    """`celery_queue_length{queue}`: messages waiting in each EthHook queue on the broker."""

    def __init__(
        self,
        broker_url: str,
        queues: Iterable[str],
        ttl_s: float = SCRAPE_CACHE_S,
    ) -> None:
        self._broker_url = broker_url
        self._queues = tuple(queues)
        self._redis: Any = None
        self._cache = _Cached(self._compute, ttl_s)

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return self._cache.get()

    def lengths(self) -> dict[str, int] | None:
        redis_url = _redis_url_for(self._broker_url)
        if redis_url is not None:
            return self._redis_lengths(redis_url)
        return self._kombu_lengths()

    def _redis_lengths(self, url: str) -> dict[str, int] | None:
        import redis

        if self._redis is None:
            self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            pipe = self._redis.pipeline(transaction=False)
            for queue in self._queues:
                for pri in _REDIS_PRIORITY_STEPS:
                    pipe.llen(f"{queue}{_REDIS_PRIORITY_SEP}{pri}" if pri else queue)
            counts = iter(pipe.execute())
        except (redis.RedisError, OSError) as exc:
            log.warning("metrics.collect.failed source=broker error=%s", exc.__class__.__name__)
            return None
        return {q: sum(int(next(counts)) for _ in _REDIS_PRIORITY_STEPS) for q in self._queues}

    def _kombu_lengths(self) -> dict[str, int] | None:
        from kombu import Connection

        result: dict[str, int] = {}
        conn = Connection(self._broker_url, connect_timeout=2)
        try:
            for queue in self._queues:
                channel = conn.channel()
                try:
                    result[queue] = int(channel.queue_declare(queue=queue, passive=True)[1])
                except conn.channel_errors:
                    result[queue] = 0  # not declared yet: nothing waiting
                finally:
                    channel.close()
        except (*conn.connection_errors, OSError) as exc:
            log.warning("metrics.collect.failed source=broker error=%s", exc.__class__.__name__)
            return None
        finally:
            conn.release()
        return result

    def _compute(self) -> list[Metric]:
        lengths = self.lengths()
        if lengths is None:
            return []
        family = GaugeMetricFamily(
            "celery_queue_length", "Messages waiting on the broker, per queue", labels=["queue"]
        )
        for queue, n in sorted(lengths.items()):
            family.add_metric([queue], n)
        return [family]


def shared_state_collectors() -> list[Collector]:
    """The scrape-time collectors for the database and the broker, built from the settings."""
    from ethhook.config import get_settings
    from ethhook.queues import Queue

    return [
        DeliveryBacklogCollector(),
        QueueLengthCollector(get_settings().broker_url, [q.value for q in Queue]),
    ]


# --- exposing ---------------------------------------------------------------------------------------


def build_exposition_registry(
    extra: Iterable[Collector] | None = None,
) -> CollectorRegistry:
    """What this process's /metrics shows: its metrics (merged across the worker's processes in
    multiprocess mode), plus `extra` collectors (default: the database and broker gauges)."""
    out = CollectorRegistry()
    if _multiproc_dir is not None:
        multiprocess.MultiProcessCollector(out, path=_multiproc_dir)
    else:
        _m()
        out.register(_RegistryCollector(_registry))
        out.register(ProcessCollector(registry=None))
    for collector in shared_state_collectors() if extra is None else extra:
        out.register(collector)
    return out


class _RegistryCollector(Collector):
    """Lets one registry be shown inside another."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        return self._inner.collect()


_exposition_registry: CollectorRegistry | None = None


def exposition(accept_header: str | None = None) -> tuple[bytes, str]:
    """(body, content type) for a GET /metrics: for the listener's own HTTP server."""
    global _exposition_registry
    if _exposition_registry is None:
        with _lock:
            if _exposition_registry is None:
                _exposition_registry = build_exposition_registry()
    encoder, content_type = choose_encoder(accept_header or "")
    return encoder(_exposition_registry), content_type


def enable_multiprocess(directory: str | None = None) -> str:
    """Back every metric of this process and of processes forked from it by files in `directory`
    (a new private temporary folder by default). Call before the pool forks; idempotent."""
    global _metrics, _registry, _multiproc_dir, _owner_pid
    with _lock:
        if _multiproc_dir is not None:
            return _multiproc_dir
        path = directory or tempfile.mkdtemp(prefix="ethhook-metrics-")
        os.makedirs(path, exist_ok=True)
        # prometheus-client reads the folder from this variable when it opens its value files.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        _prom_values.ValueClass = _prom_values.MultiProcessValue()
        # Metric objects made earlier hold in-memory values: start again, file-backed.
        _registry = CollectorRegistry()
        _metrics = None
        _multiproc_dir = path
        _owner_pid = os.getpid()
    atexit.register(_remove_multiproc_dir)
    return path


def _remove_multiproc_dir() -> None:
    # Only the process that created the folder removes it (forked children inherit atexit hooks).
    if _multiproc_dir is not None and os.getpid() == _owner_pid:
        shutil.rmtree(_multiproc_dir, ignore_errors=True)


def start_metrics_server(port: int, host: str = DEFAULT_METRICS_HOST) -> int:
    """Serve /metrics (see build_exposition_registry) on a daemon thread; returns the bound port."""
    global _server
    server, _thread = start_http_server(port, addr=host, registry=build_exposition_registry())
    _server = server
    return int(server.server_address[1])


def _settings_value(name: str, default: Any) -> Any:
    from ethhook.config import get_settings

    return getattr(get_settings(), name, default)


def start_worker_metrics(
    sender: Any = None, *, port: int | None = None, host: str | None = None, **_: Any
) -> int | None:
    """Celery `worker_init` receiver (main process, before the pool starts): multiprocess mode and
    the /metrics server on ETHHOOK_WORKER_METRICS_PORT. Returns the port, or None when disabled or
    the port is taken (logged; the worker runs on without metrics)."""
    if port is None:
        port = int(_settings_value("worker_metrics_port", DEFAULT_WORKER_METRICS_PORT))
    if host is None:
        host = str(_settings_value("metrics_host", DEFAULT_METRICS_HOST))
    if port == 0 and _server is None:
        return None
    path = enable_multiprocess()
    _m()  # the fixed series (webhooks_delivered_total{status}) exist at 0 before any task ran
    if _server is not None:
        return int(_server.server_address[1])
    try:
        bound = start_metrics_server(port, host)
    except OSError as exc:
        log.error(
            "metrics.server.failed port=%s error=%s (set ETHHOOK_WORKER_METRICS_PORT to a free "
            "port per worker on one machine, or 0 to disable)",
            port,
            exc.strerror or exc,
        )
        return None
    log.info(
        "metrics.server.started worker=%s port=%s dir=%s",
        getattr(sender, "hostname", None),
        bound,
        path,
    )
    return bound


def mark_worker_process_dead(pid: int | None = None, **_: Any) -> None:
    """Celery `worker_process_shutdown` receiver: drop the exiting pool process's live gauges."""
    if _multiproc_dir is not None:
        multiprocess.mark_process_dead(pid or os.getpid(), _multiproc_dir)


def stop_worker_metrics(**_: Any) -> None:
    """Celery `worker_shutdown` receiver: stop serving and remove the metrics folder."""
    global _server
    if _server is not None:
        _server.shutdown()
        _server.server_close()
        _server = None
    _remove_multiproc_dir()


def connect_worker_signals() -> None:
    """Hook the three receivers above to Celery's worker signals (call once in celery_app)."""
    from celery.signals import worker_init, worker_process_shutdown, worker_shutdown

    worker_init.connect(start_worker_metrics, weak=False)
    worker_process_shutdown.connect(mark_worker_process_dead, weak=False)
    worker_shutdown.connect(stop_worker_metrics, weak=False)


# Every metric family name this module can export (alerts and dashboards may use only these + `up`).
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
        "circuit_breaker_open",
        "deliveries_pending",
        "deliveries_waiting",
        "deliveries_failed",
        "deliveries_oldest_due_seconds",
        "celery_queue_length",
    }
)


def iter_metric_names() -> Iterator[str]:
    """METRIC_NAMES plus the sample suffixes Prometheus derives (_bucket, _sum, _count, _created)."""
    for name in sorted(METRIC_NAMES):
        yield name
        for suffix in ("_bucket", "_sum", "_count", "_created"):
            yield name + suffix
