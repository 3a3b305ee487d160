"""Delivery task: one endpoint's deliveries from one batch."""

from __future__ import annotations

import logging

from ethhook.celery_app import app
from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.deliver.ops import send_ops
from ethhook.deliver.service import deliver
from ethhook.logs import log_fields
from ethhook.workqueue import DELIVER_TASK, OPS_TASK, range_of

log = logging.getLogger(__name__)


@app.task(name=DELIVER_TASK, acks_late=True)
def deliver_endpoint(
    endpoint_id: int,
    delivery_ids: list[int],
    token: str,
    event_at_range: list[str] | None = None,
) -> int:
    """Send the deliveries this message holds the lease for; returns how many were sent.
    `event_at_range` (their earliest and latest event_at) spares PostgreSQL the partitions that
    cannot hold them; a message without it (published before partitioning) reads them all."""
    with log_fields(endpoint_id=endpoint_id):
        bounds = range_of(event_at_range)
        report = deliver(session_scope, get_settings(), endpoint_id, delivery_ids, token, bounds)
        log.info(
            "deliver.task.done endpoint=%s sent=%d ok=%d failed=%d released=%d skipped=%d",
            endpoint_id,
            report.sent,
            report.succeeded,
            report.failed_attempts,
            report.released,
            report.skipped,
        )
    return report.sent


@app.task(name=OPS_TASK, acks_late=True)
def send_ops_messages(message_ids: list[int], token: str) -> int:
    """Send the operational webhooks this message holds the lease for (deliver.ops)."""
    return send_ops(session_scope, get_settings(), message_ids, token)
