"""Gauges computed at scrape time from shared state: the deliveries table and the broker's queues.

Each value is cached a few seconds, so a scrape costs at most one GROUP BY query on `deliveries`
(and one index probe per chain on `events`) and one LLEN per queue (and priority level) on a
Redis broker. Every process reports the same
cluster-wide values: aggregate them with `max`, not `sum`. A failed query is logged and leaves its
gauges out until the next recomputation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

SCRAPE_CACHE_S = 5.0


@dataclass
class _Cached:
    """A value recomputed at most every `ttl_s` seconds (a failed computation's empty list too)."""

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


# --- the deliveries table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    """Deliveries not yet settled, by status; `oldest_due` is the earliest pending next attempt."""

    pending: int = 0
    waiting: int = 0
    failed: int = 0
    oldest_due: datetime | None = None
    # Per chain the listener follows: when its first unmatched stored event (block order) was
    # stored, None when every stored event is matched.
    unmatched_since: dict[int, datetime | None] = field(default_factory=dict)

    def families(self, now: datetime) -> list[Metric]:
        unmatched = GaugeMetricFamily(
            "events_unmatched_oldest_seconds",
            "How long the chain's first unmatched stored event has waited for the matcher "
            "(0 = none); an ordered endpoint's later deliveries are held until it is matched",
            labels=["chain_id"],
        )
        for chain_id, since in sorted(self.unmatched_since.items()):
            unmatched.add_metric([str(chain_id)], _seconds_since(since, now))
        return [
            GaugeMetricFamily(
                "deliveries_pending",
                "Deliveries due now or scheduled for a retry (status pending)",
                value=self.pending,
            ),
            GaugeMetricFamily(
                "deliveries_waiting",
                "Deliveries waiting for their block's confirmations (or, an ordered endpoint's, "
                "for the chain's earlier events to be matched)",
                value=self.waiting,
            ),
            GaugeMetricFamily(
                "deliveries_failed",
                "Dead-lettered deliveries (every attempt failed; retry by hand)",
                value=self.failed,
            ),
            GaugeMetricFamily(
                "deliveries_oldest_due_seconds",
                "How long the most overdue pending delivery has been due (0 = none overdue)",
                value=_seconds_since(self.oldest_due, now),
            ),
            unmatched,
        ]


def _seconds_since(then: datetime | None, now: datetime) -> float:
    """Seconds from `then` (naive: UTC) to now; 0 for None or a time to come."""
    if then is None:
        return 0.0
    then = then if then.tzinfo else then.replace(tzinfo=UTC)
    return max((now - then).total_seconds(), 0.0)


def _query_backlog() -> Backlog | None:
    """One GROUP BY on deliveries (indexed on status, next_attempt_at), and each followed chain's
    first unmatched event (one probe of ix_events_unmatched per chain); None when it failed."""
    # Imported here: importing ethhook.celery_app (which imports this package) must stay cheap.
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from ethhook.db import session_scope
    from ethhook.db.models import ChainCursor, Delivery, DeliveryStatus, Event

    wanted = (DeliveryStatus.PENDING, DeliveryStatus.WAITING, DeliveryStatus.FAILED)
    try:
        with session_scope() as session:
            rows = session.execute(
                select(Delivery.status, func.count(), func.min(Delivery.next_attempt_at))
                .where(Delivery.status.in_(wanted))
                .group_by(Delivery.status)
            ).all()
            first_unmatched = (
                select(Event.created_at)
                .where(Event.chain_id == ChainCursor.chain_id, Event.matched_at.is_(None))
                .order_by(Event.block_number, Event.log_index)
                .limit(1)
                .correlate(ChainCursor)
                .scalar_subquery()
            )
            unmatched = session.execute(select(ChainCursor.chain_id, first_unmatched)).all()
    except SQLAlchemyError as exc:
        log.warning("metrics.collect.failed source=database error=%s", exc.__class__.__name__)
        return None
    by_status = {status: (int(count), min_next) for status, count, min_next in rows}
    pending, oldest_due = by_status.get(DeliveryStatus.PENDING, (0, None))
    return Backlog(
        pending=pending,
        waiting=by_status.get(DeliveryStatus.WAITING, (0, None))[0],
        failed=by_status.get(DeliveryStatus.FAILED, (0, None))[0],
        oldest_due=oldest_due,
        unmatched_since={int(chain_id): since for chain_id, since in unmatched},
    )


class DeliveryBacklogCollector(Collector):
    """`deliveries_pending`, `deliveries_waiting`, `deliveries_failed`, `deliveries_oldest_due_seconds`
    from one GROUP BY query on the deliveries table; `events_unmatched_oldest_seconds{chain_id}`
    from one probe per chain."""

    def __init__(self, ttl_s: float = SCRAPE_CACHE_S) -> None:
        self._cache = _Cached(self._compute, ttl_s)

    def describe(self) -> Iterable[Metric]:
        return []  # computed lazily; describing must not query the database at registration

    def collect(self) -> Iterable[Metric]:
        return self._cache.get()

    def _compute(self) -> list[Metric]:
        backlog = _query_backlog()
        return [] if backlog is None else backlog.families(datetime.now(UTC))


# --- the broker's queues --------------------------------------------------------------------------

# kombu's Redis transport keeps priority levels in extra lists: "<queue>\x06\x16<priority>".
_REDIS_PRIORITY_SEP = "\x06\x16"
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)


def redis_url_for(broker_url: str) -> str | None:
    """The redis-py URL for a Celery Redis broker URL, or None when the broker is not Redis."""
    scheme, _, rest = broker_url.partition("://")
    if scheme in ("redis", "rediss"):
        return broker_url
    if scheme == "redis+socket":
        return f"unix://{rest}"
    return None


def redis_list_keys(queue: str) -> list[str]:
    """The Redis lists holding `queue`'s messages, one per priority level kombu uses."""
    return [f"{queue}{_REDIS_PRIORITY_SEP}{pri}" if pri else queue for pri in _REDIS_PRIORITY_STEPS]


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
        redis_url = redis_url_for(self._broker_url)
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
                for key in redis_list_keys(queue):
                    pipe.llen(key)
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
