"""Beat tasks (schedule in celeryconfig.py), thin wrappers around maintenance.jobs."""

from __future__ import annotations

from ethhook.celery_app import app
from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.maintenance import jobs
from ethhook.workqueue import (
    DELIVER_TASK,
    enqueue_groups,
    enqueue_match_groups,
    waiting_messages,
)


@app.task(name="ethhook.maintenance.dispatch_due", acks_late=True)
def dispatch_due() -> int:
    """Lease and enqueue unmatched events past their lease, release confirmed deliveries, then
    lease and enqueue every delivery that is due."""
    settings = get_settings()
    with session_scope() as session:
        unmatched = jobs.dispatch_unmatched(session, utcnow(), settings.due_scan_limit)
    enqueue_match_groups(unmatched)
    with session_scope() as session:
        jobs.release_confirmed(session, utcnow())
    # Messages waiting in the deliver queue may still carry deliveries whose lease expired there.
    busy = (waiting_messages(DELIVER_TASK) or 0) > 0
    with session_scope() as session:
        groups = jobs.dispatch_due(session, utcnow(), settings.due_scan_limit, busy)
    return enqueue_groups(groups)


@app.task(name="ethhook.maintenance.cleanup", acks_late=True)
def cleanup() -> dict[str, int]:
    settings = get_settings()
    with session_scope() as session:
        return jobs.cleanup(session, utcnow(), settings.retention_days, settings.cleanup_batch_size)


@app.task(name="ethhook.maintenance.auto_disable", acks_late=True)
def auto_disable() -> list[int]:
    with session_scope() as session:
        return jobs.auto_disable(session, utcnow(), get_settings().auto_disable_after_s)
