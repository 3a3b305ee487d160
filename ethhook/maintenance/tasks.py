"""Beat tasks (schedule in celeryconfig.py), thin wrappers around maintenance.jobs."""

from __future__ import annotations

from ethhook.celery_app import app
from ethhook.config import get_settings
from ethhook.db import get_engine, session_scope
from ethhook.db.dialect import is_postgres
from ethhook.db.models import utcnow
from ethhook.db.partition_plan import retention_cutoff
from ethhook.db.partitions import ensure_ahead
from ethhook.maintenance import jobs
from ethhook.maintenance.retention import run_retention
from ethhook.workqueue import (
    DELIVER_TASK,
    enqueue_groups,
    enqueue_match_groups,
    enqueue_ops,
    held_chains,
    release_held,
    waiting_messages,
)


@app.task(name="ethhook.maintenance.dispatch_due", acks_late=True)
def dispatch_due() -> int:
    """Lease and enqueue unmatched events past their lease, release confirmed deliveries (and
    ordered endpoints' held ones), then lease and enqueue every delivery that is due, and every
    operational webhook."""
    settings = get_settings()
    with session_scope() as session:
        unmatched = jobs.dispatch_unmatched(session, utcnow(), settings.due_scan_limit)
    enqueue_match_groups(unmatched)
    with session_scope() as session:
        jobs.release_confirmed(session, utcnow())
        chains = held_chains(session)
    # What two match tasks of a chain committing at once left held (workqueue.chainorder), one
    # chain per transaction.
    released = 0
    for chain_id in chains:
        with session_scope() as session:
            held = release_held(session, utcnow(), [chain_id])
        released += enqueue_groups(held)
    # Messages waiting in the deliver queue may still carry deliveries whose lease expired there.
    busy = (waiting_messages(DELIVER_TASK) or 0) > 0
    with session_scope() as session:
        groups = jobs.dispatch_due(session, utcnow(), settings.due_scan_limit, busy)
    sent = released + enqueue_groups(groups)
    with session_scope() as session:
        ops = jobs.dispatch_ops(
            session, utcnow(), settings.due_scan_limit, settings.dispatch_lease_s
        )
    enqueue_ops(ops)
    return sent


@app.task(name="ethhook.maintenance.cleanup", acks_late=True)
def cleanup() -> dict[str, int]:
    """History past retention: on PostgreSQL whole partitions (maintenance.retention), on SQLite
    rows in batches; the rollups' rows in batches on both."""
    settings = get_settings()
    engine, now = get_engine(), utcnow()
    if not is_postgres(engine):
        with session_scope() as session:
            return jobs.cleanup(session, now, settings.retention_days, settings.cleanup_batch_size)
    report = run_retention(engine, now, settings.retention_days)
    with session_scope() as session:
        rollups = jobs.delete_old_rollups(session, retention_cutoff(now, settings.retention_days))
    return {"partitions": len(report.dropped), "held": len(report.held), "rollups": rollups}


@app.task(name="ethhook.maintenance.partitions", acks_late=True)
def partitions() -> None:
    """The history tables' partitions for the last interval, this one and the next three."""
    engine = get_engine()
    if is_postgres(engine):
        ensure_ahead(engine, utcnow())


@app.task(name="ethhook.maintenance.auto_disable", acks_late=True)
def auto_disable() -> list[int]:
    with session_scope() as session:
        return jobs.auto_disable(session, utcnow(), get_settings().auto_disable_after_s)


@app.task(name="ethhook.maintenance.watch_failing", acks_late=True)
def watch_failing() -> dict[str, int]:
    """`endpoint.failing` and `endpoint.recovered` to the applications' ops endpoints."""
    with session_scope() as session:
        return jobs.watch_failing(session, utcnow(), get_settings().ops_failing_after_s)
