"""Deliver stored or re-read events again (`ethhook replay`): same rows, same webhook-ids."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, tuple_, update
from sqlalchemy.orm import Session

from ethhook.db.bulk import insert_ignoring_conflicts
from ethhook.db.models import ChainTags, Delivery, DeliveryStatus, Endpoint, EventKind, Origin
from ethhook.db.partition_plan import event_time
from ethhook.db.partitions import writing
from ethhook.match.finality import Heights, release_of
from ethhook.match.service import Match, find_matches
from ethhook.types import ChainEvent
from ethhook.workqueue import (
    DispatchGroup,
    delivery_row,
    due_now,
    in_time_range,
    lease_available,
    lease_free,
    number_deliveries,
    store_replayed,
    time_range,
)
from ethhook.workqueue.rows import DELIVERY_KEY, ENDPOINT


def redeliver(
    session: Session,
    events: Sequence[ChainEvent],
    head: int,
    now: datetime,
    endpoint_id: int | None = None,
    origin: str = Origin.REPLAY,
) -> list[DispatchGroup]:
    """Make every (matching endpoint, event) delivery due again; the caller commits, then enqueues.

    Existing deliveries keep their id and webhook-id (receivers deduplicate on it): an event's
    rows carry its block's time, so a replay finds them in the partition they were stored in.
    Missing ones are created. A confirmed delivery whose block is not yet deep enough waits as
    usual (a chain tag's block, for a safe or finalized endpoint; a lifecycle endpoint's
    instant one goes again at once). Each delivery made due carries `origin`; it keeps its
    sequence number, and one that never had one (new, or made before numbers) takes its
    endpoint's next (workqueue.sequence).
    """
    store_replayed(session, events, now)
    matches = find_matches(session, events, live=False)
    skipped = _not_replayed(session, matches, endpoint_id, origin)
    heights = {c: _heights(session, c, head) for c in {e.chain_id for e in events}}
    rows = []
    for event in events:
        for match in matches.get(event.event_id, []):
            if endpoint_id is not None and match.endpoint_id != endpoint_id:
                continue
            if match.endpoint_id in skipped:
                continue
            for kind in match.kinds:
                instant = kind == EventKind.INSTANT
                release = release_of(event.block_number, match.confirmations, match.finality)
                deep = instant or heights[event.chain_id].reached(release)
                rows.append(
                    delivery_row(
                        match.endpoint_id,
                        event.event_id,
                        kind,
                        DeliveryStatus.PENDING if deep else DeliveryStatus.WAITING,
                        now,
                        event_at=event_time(event.block_timestamp),
                        next_attempt_at=now,
                        release_block=None if instant else release.block,
                        release_tag=None if instant else release.tag,
                        origin=origin,
                    )
                )
    if not rows:
        return []
    times = [r["event_at"] for r in rows]
    key_columns = ["endpoint_id", "event_id", "kind"]
    inserted = writing(
        session,
        times,
        lambda: insert_ignoring_conflicts(
            session, Delivery, rows, DELIVERY_KEY, key_columns, parent=ENDPOINT
        ),
    )
    keys = [(r["endpoint_id"], r["event_id"], r["kind"]) for r in rows if r["status"] == "pending"]
    if origin == Origin.BACKFILL:
        # History not sent yet only: a delivery that exists was sent live (the seam's overlap).
        new = {tuple(r) for r in inserted}
        keys = [k for k in keys if k in new]
    bounds = time_range(times)
    made_due: list[Any] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        made_due += session.execute(
            update(Delivery)
            .where(
                tuple_(Delivery.endpoint_id, Delivery.event_id, Delivery.kind).in_(chunk),
                in_time_range(Delivery, bounds),
                Delivery.status != DeliveryStatus.CANCELLED,
                lease_free(Delivery, now),
            )
            .values(**due_now(now), origin=origin)
            .returning(
                Delivery.id,
                Delivery.endpoint_id,
                Delivery.event_id,
                Delivery.kind,
                Delivery.event_at,
                Delivery.sequence,
            )
        ).all()
    order = {key: i for i, key in enumerate(keys)}
    made_due.sort(key=lambda r: order[(r.endpoint_id, r.event_id, r.kind)])
    number_deliveries(
        session, [(r.id, r.event_at, r.endpoint_id) for r in made_due if r.sequence is None]
    )
    return lease_available(session, [(r.endpoint_id, r.id, r.event_at) for r in made_due], now)


def _heights(session: Session, chain_id: int, head: int) -> Heights:
    """The chain's releasing heights for a replay: `head` (its caller's), and the tags the
    listener stored (none yet: tag-final deliveries wait for beat's release)."""
    tags = session.execute(
        select(ChainTags.safe_number, ChainTags.finalized_number).where(
            ChainTags.chain_id == chain_id
        )
    ).first()
    if tags is None:
        return Heights(head)
    return Heights(head, tags.safe_number, tags.finalized_number)


def _not_replayed(
    session: Session, matches: dict[str, list[Match]], endpoint_id: int | None, origin: str
) -> set[int]:
    """The matching endpoints a replay sends nothing: `--live-only` ones, and those whose own
    backfill is running (a backfill is for its one endpoint)."""
    if origin != Origin.REPLAY:
        return set()
    wanted = {m.endpoint_id for found in matches.values() for m in found}
    if endpoint_id is not None:
        wanted &= {endpoint_id}
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Endpoint.id).where(
                Endpoint.id.in_(sorted(wanted)),
                or_(Endpoint.live_only.is_(True), Endpoint.backfilling.is_(True)),
            )
        )
    )
