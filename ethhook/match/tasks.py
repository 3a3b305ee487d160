"""Matcher task: stored event ids in, per-endpoint delivery tasks out."""

from __future__ import annotations

import logging
import time

from celery import Task
from sqlalchemy.exc import DBAPIError

from ethhook import metrics
from ethhook.celery_app import app
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.match.service import match_stored
from ethhook.workqueue import MATCH_TASK, enqueue_groups, range_of

log = logging.getLogger(__name__)

# A database that is down or restarting is retried this often, backing off to RETRY_CAP_S; past
# that the events stay unmatched in the database and the beat job dispatches them again.
MAX_RETRIES = 12
RETRY_CAP_S = 30.0


@app.task(name=MATCH_TASK, bind=True, acks_late=True, max_retries=MAX_RETRIES)
def match_events(
    self: Task, event_ids: list[str], token: str, event_at_range: list[str] | None = None
) -> int:
    """Match the stored events this message was leased, commit, then enqueue the deliver tasks."""
    started = time.perf_counter()
    try:
        with session_scope() as session:
            bounds = range_of(event_at_range)
            claimed, groups = match_stored(session, event_ids, token, utcnow(), bounds)
    except DBAPIError as exc:
        # The transaction rolled back: the events are still unmatched and still leased to this
        # token, so the retried message (same kwargs) finds them again.
        delay = min(2.0**self.request.retries, RETRY_CAP_S)
        log.warning(
            "match.batch.retry events=%d attempt=%d delay_s=%.0f error=%s",
            len(event_ids),
            self.request.retries + 1,
            delay,
            str(exc).splitlines()[0],
        )
        raise self.retry(exc=exc, countdown=delay) from exc
    enqueue_groups(groups)
    elapsed = time.perf_counter() - started
    created = sum(len(g.delivery_ids) for g in groups)
    metrics.observe_batch(elapsed)
    metrics.record_deliveries_created(created)
    log.info(
        "match.batch.done events=%d claimed=%d deliveries=%d tasks=%d ms=%.1f",
        len(event_ids),
        claimed,
        created,
        len(groups),
        elapsed * 1000,
    )
    return len(groups)
