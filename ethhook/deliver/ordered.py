"""An ordered endpoint's claim for the deliver task: from its head, whatever the message names,
with a log line for each dead-lettered delivery it skips or that pauses the endpoint."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.deliver.store import ClaimedWork, claim_ordered_and_load

log = logging.getLogger(__name__)

# An ordered claim takes at most this many deliveries from the head (sent one at a time): as many
# as a matcher's message holds. Each claim costs a transaction, a breaker check and a settle:
# with 20 an ordered endpoint's webhook took the deliver worker ~1.5x an unordered one's CPU, and
# at 400 events/s live it fell 2.6-4 s behind where claims of 100 fell 0.3-1.9 s behind
# (bench/RESULTS.md §14).
ORDERED_CHUNK = 100


def claim_from_head(
    session: Session, settings: Settings, endpoint_id: int, worker_token: str, now: datetime
) -> ClaimedWork | None:
    """The endpoint's head and the due deliveries after it, claimed for `worker_token` (at most
    a chunk, their work in sequence order); None when the endpoint is not ordered or there is
    nothing to send (the head waits for its retry, another worker is sending, or it is paused)."""
    got = claim_ordered_and_load(session, endpoint_id, worker_token, now, settings, ORDERED_CHUNK)
    for row in got.skipped:
        log.warning(
            "deliver.ordered.skipped endpoint=%s delivery=%s sequence=%s reason=dead-lettered",
            endpoint_id,
            row.id,
            row.sequence,
            extra={"endpoint_id": endpoint_id, "delivery_id": row.id},
        )
    if got.paused_by is not None:
        log.info(
            "deliver.ordered.paused endpoint=%s delivery=%s sequence=%s reason=dead-lettered",
            endpoint_id,
            got.paused_by.id,
            got.paused_by.sequence,
            extra={"endpoint_id": endpoint_id, "delivery_id": got.paused_by.id},
        )
    return got if got.claimed else None
