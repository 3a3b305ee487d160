"""Scrape-time metrics read PostgreSQL and the broker; a worker's /metrics merges its pool processes."""

from __future__ import annotations

import subprocess

from tests.support.env import ROOT


def test_scrape_time_gauges_read_the_database_and_the_broker(db: None, redis_server: str) -> None:
    """Given 3 pending deliveries and 5 queued messages, the collectors report exactly those."""
    from datetime import timedelta

    import redis
    from sqlalchemy import update

    from ethhook import metrics
    from ethhook.db import session_scope
    from ethhook.db.models import ChainCursor, Event, utcnow
    from ethhook.workqueue import store_events
    from tests.support.db import store_and_match
    from tests.support.endpoints import add_endpoint
    from tests.support.factories import address, h32, transfer

    contract = address(77)
    add_endpoint("https://hooks.example.com/m", contracts=[contract])
    events = [transfer(contract=contract, block=5, log_index=i, value=i) for i in range(3)]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
    # Chain 1's block 6 is stored and not matched, for a minute now; chain 10 has nothing waiting.
    unmatched = [transfer(contract=contract, block=6, log_index=i, value=i) for i in range(2)]
    with session_scope() as session:
        store_events(session, unmatched, utcnow())
        session.execute(
            update(Event)
            .where(Event.id == unmatched[0].event_id)
            .values(created_at=utcnow() - timedelta(seconds=60))
        )
        for chain_id in (1, 10):
            session.add(ChainCursor(chain_id=chain_id, block_number=6, block_hash=h32("c", 6)))
    queue = "ethhook-test-metrics"  # no worker consumes it
    client = redis.Redis.from_url(f"{redis_server}/0")
    client.delete(queue)
    client.lpush(queue, *[b"m"] * 5)
    try:
        registry = metrics.build_exposition_registry(
            extra=[
                metrics.DeliveryBacklogCollector(ttl_s=0),
                metrics.QueueLengthCollector(f"{redis_server}/0", [queue], ttl_s=0),
            ]
        )
        metrics.record_events_received("optimism", 2)
        assert registry.get_sample_value("events_received_total", {"chain": "optimism"}) >= 2
        assert registry.get_sample_value("deliveries_pending") == 3
        assert registry.get_sample_value("deliveries_failed") == 0
        assert registry.get_sample_value("celery_queue_length", {"queue": queue}) == 5
        waited = registry.get_sample_value("events_unmatched_oldest_seconds", {"chain_id": "1"})
        assert 60 <= waited < 120
        assert registry.get_sample_value("events_unmatched_oldest_seconds", {"chain_id": "10"}) == 0
    finally:
        client.delete(queue)
        client.close()


def test_scrape_time_gauges_are_absent_when_the_broker_is_down() -> None:
    from prometheus_client import CollectorRegistry

    from ethhook import metrics
    from tests.support.waiting import free_port

    registry = CollectorRegistry()
    registry.register(
        metrics.QueueLengthCollector(f"redis://127.0.0.1:{free_port()}/0", ["match"], ttl_s=0)
    )
    assert registry.get_sample_value("celery_queue_length", {"queue": "match"}) is None


_MULTIPROCESS_SCRIPT = """
import os, sys, urllib.request
from ethhook import metrics
port = metrics.start_worker_metrics(port=int(sys.argv[1]), host="127.0.0.1")
children = []
for i in range(3):  # like prefork pool processes
    pid = os.fork()
    if pid == 0:
        metrics.record_attempt(i != 0, 0.1)
        metrics.record_events_received("ethereum", 10)
        metrics.mark_worker_process_dead(os.getpid())
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
sys.stdout.write(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode())
folder = metrics.server._multiproc_dir
metrics.stop_worker_metrics()
sys.stdout.write(f"folder-left={os.path.exists(folder)}\\n")
"""


def test_worker_metrics_merge_pool_processes(redis_server: str) -> None:
    """Given a worker's main process serving /metrics, its forked pool processes' counts add up."""
    import sys

    from tests.support.waiting import free_port

    port = free_port()
    result = subprocess.run(
        [sys.executable, "-c", _MULTIPROCESS_SCRIPT, str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = set(result.stdout.splitlines())
    assert 'webhooks_delivered_total{status="success"} 2.0' in lines
    assert 'webhooks_delivered_total{status="failure"} 1.0' in lines
    assert 'events_received_total{chain="ethereum"} 30.0' in lines
    assert "folder-left=False" in lines
