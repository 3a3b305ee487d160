"""Where an endpoint's --from-block backfill ends and its live deliveries begin.

While its backfill job runs, the matcher leaves the endpoint out (`backfilling`): every event up to
the listener's cursor is the job's, read from the node with the endpoint's own filter and
numbered in block order from 1. When the job has read to its last block it looks at the
listener's cursor, locked FOR SHARE so that the listener cannot store another range meanwhile:
past the job's last block, the job goes on to it (chasing); at it, the endpoint turns live in the
same transaction, and every block after the cursor is matched live. An event the listener stored
before the switch and the matcher handles after it is found delivered already (a delivery is
unique on endpoint, event and kind) and is sent once. So nothing is missed or repeated at the
seam.

The listener reads the contracts its active endpoints watch, and reloads that list every few
seconds (`listen.runner.WATCH_REFRESH_S`): the switch waits until the endpoint has existed for
WATCH_PICKUP_S, so the blocks after the cursor are read with its contracts in the list.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ethhook.db.models import ChainCursor, Endpoint, ReplayJob

# Two of the listener's watch-list reloads (listen.runner.WATCH_REFRESH_S, 2 s), and a margin.
WATCH_PICKUP_S = 5.0


def reach_listener(session: Session, job: ReplayJob, now: datetime) -> datetime | None:
    """The backfill `job` has read to its last block: chase the listener's cursor, or turn the
    endpoint live. Returns when to look again if it is too early to switch, else None (the job
    goes on when its `to_block` moved, and is done otherwise)."""
    cursor = session.scalar(
        select(ChainCursor.block_number)
        .where(ChainCursor.chain_id == job.chain_id)
        .with_for_update(read=True)
    )
    if cursor is not None and cursor > job.to_block:
        job.to_block = cursor
        return None
    created = session.scalar(select(Endpoint.created_at).where(Endpoint.id == job.endpoint_id))
    if created is not None and now < created + timedelta(seconds=WATCH_PICKUP_S):
        return created + timedelta(seconds=WATCH_PICKUP_S)
    session.execute(
        update(Endpoint).where(Endpoint.id == job.endpoint_id).values(backfilling=False)
    )
    return None
