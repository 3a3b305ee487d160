"""Replay tasks on the maintenance queue: one chunk per message, and beat's re-dispatch."""

from __future__ import annotations

import logging

from ethhook.celery_app import app
from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.replay.chunks import dispatch_due_replays
from ethhook.replay.run import run_chunk
from ethhook.workqueue import REPLAY_TASK, enqueue_groups, enqueue_replays

log = logging.getLogger(__name__)


@app.task(name=REPLAY_TASK, acks_late=True)
def replay_chunk(job_id: int, token: str) -> int:
    """Commit the job's next chunk, enqueue its deliveries, then the chunk after it."""
    outcome = run_chunk(session_scope, get_settings(), job_id, token)
    enqueue_groups(outcome.groups)
    if outcome.next is not None:
        enqueue_replays([outcome.next])
    return sum(len(g.delivery_ids) for g in outcome.groups)


@app.task(name="ethhook.replay.dispatch_due", acks_late=True)
def dispatch_due() -> int:
    """Resume queued or running jobs whose lease expired (their worker died, a message was lost)."""
    with session_scope() as session:
        dispatches = dispatch_due_replays(session, utcnow(), get_settings().replay_lease_s)
    if dispatches:  # silent when there was nothing to do: beat runs this every second
        log.info(
            "replay.due.dispatched jobs=%d ids=%s",
            len(dispatches),
            ",".join(str(d.job_id) for d in dispatches),
        )
    return enqueue_replays(dispatches)
