"""Matcher task: one event batch in, per-endpoint delivery tasks out."""

from __future__ import annotations

import logging
import time
from typing import Any

from ethhook import metrics
from ethhook.celery_app import app
from ethhook.db import session_scope
from ethhook.db.models import utcnow
from ethhook.match.service import match_batch
from ethhook.types import EventBatch
from ethhook.workqueue import enqueue_groups

log = logging.getLogger(__name__)


@app.task(name="ethhook.match.match_events", acks_late=True)
def match_events(batch: dict[str, Any]) -> int:
    """Store a batch's events, create their deliveries, commit, then enqueue the deliver tasks."""
    started = time.perf_counter()
    parsed = EventBatch.from_json(batch)
    with session_scope() as session:
        groups = match_batch(session, parsed.events, utcnow())
    enqueue_groups(groups)
    elapsed = time.perf_counter() - started
    created = sum(len(g.delivery_ids) for g in groups)
    metrics.observe_batch(elapsed)
    metrics.record_deliveries_created(created)
    log.info(
        "match.batch.done chain=%s events=%d deliveries=%d tasks=%d ms=%.1f",
        parsed.chain_id,
        len(parsed.events),
        created,
        len(groups),
        elapsed * 1000,
    )
    return len(groups)
