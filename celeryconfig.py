"""Celery configuration for EthHook: declarative; values come from ethhook.config."""

from kombu import Exchange, Queue

from ethhook.config import get_settings
from ethhook.queues import Queue as Q

_settings = get_settings()

broker_url = _settings.broker_url
# Results are not used: the database records every outcome.
task_ignore_result = True
result_backend = None

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# Messages go through the default exchange, routed by queue name: on Redis that needs no binding
# keys, so publishing keeps working after the broker lost its contents (FLUSHALL, restart without
# persistence); on RabbitMQ the default exchange does the same natively.
task_queues = [Queue(q.value, Exchange(""), routing_key=q.value) for q in Q]
task_default_queue = Q.MAINTENANCE.value
task_routes = {
    "ethhook.match.*": {"queue": Q.MATCH.value},
    "ethhook.deliver.*": {"queue": Q.DELIVER.value},
    "ethhook.maintenance.*": {"queue": Q.MAINTENANCE.value},
    # Replay chunks are long I/O-bound tasks beside the beat jobs, not in the matcher's way.
    "ethhook.replay.*": {"queue": Q.MAINTENANCE.value},
}

# Every task is idempotent (leases and unique keys), so a message is acknowledged only after the
# task ran, and a worker lost mid-task means the message runs again.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 4
task_soft_time_limit = 600
task_time_limit = 660
worker_send_task_events = True
# No task-sent events: they cost the publisher ~25 % (see bench/RESULTS.md); Flower still shows
# every task from the workers' own events.
task_send_sent_event = False
broker_connection_retry_on_startup = True

# gevent pools need a connection per greenlet for acks (with kombu's default of 10, acks failed
# under load and their tasks ran twice); the visibility timeout
# outlives the longest task so Redis does not hand a running task to a second worker.
broker_transport_options = {"max_connections": 1000, "visibility_timeout": 3600}
broker_pool_limit = 100

beat_schedule = {
    "dispatch-due": {
        "task": "ethhook.maintenance.dispatch_due",
        "schedule": _settings.due_scan_interval_s,
        "options": {"expires": max(_settings.due_scan_interval_s * 5, 5.0)},
    },
    "replay-due": {
        "task": "ethhook.replay.dispatch_due",
        "schedule": max(_settings.due_scan_interval_s, 1.0),
        "options": {"expires": max(_settings.due_scan_interval_s * 5, 5.0)},
    },
    # Retention: hourly, or once an interval when partitions are shorter.
    "cleanup": {
        "task": "ethhook.maintenance.cleanup",
        "schedule": float(min(3600, _settings.partition_interval_s)),
        "options": {"expires": 1800.0},
    },
    # Partitions ahead: four times an interval (hourly at most), so that one beat missed, or a
    # database down for a while, still leaves the next intervals' partitions made in time.
    "partitions": {
        "task": "ethhook.maintenance.partitions",
        "schedule": float(min(3600, _settings.partition_interval_s // 4 or 15)),
        "options": {"expires": 900.0},
    },
    "auto-disable": {
        "task": "ethhook.maintenance.auto_disable",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    # `endpoint.failing` / `endpoint.recovered`: ten looks per failing period, between 1 s and
    # 60 s apart (each look scans the endpoints).
    "watch-failing": {
        "task": "ethhook.maintenance.watch_failing",
        "schedule": min(60.0, max(_settings.ops_failing_after_s / 10, 1.0)),
        "options": {"expires": 60.0},
    },
}
