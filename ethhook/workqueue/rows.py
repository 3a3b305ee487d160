"""Delivery rows: their one shape, and inserting them leased to the messages that will send them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ethhook.config import get_settings
from ethhook.db.bulk import insert_ignoring_conflicts
from ethhook.db.models import Delivery, DeliveryStatus
from ethhook.workqueue.lease import DispatchGroup, chunk_groups, new_token

# A delivery is unique on these: a replayed batch or a re-read range inserts nothing twice.
DELIVERY_KEY = ("endpoint_id", "event_id", "kind")


def delivery_row(
    endpoint_id: int,
    event_id: str,
    kind: str,
    status: str,
    now: datetime,
    *,
    next_attempt_at: datetime | None = None,
    release_block: int | None = None,
    token: str | None = None,
    lease_expires_at: datetime | None = None,
) -> dict[str, Any]:
    """A new delivery, not yet attempted, as the values of one insert."""
    return {
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "kind": kind,
        "status": status,
        "attempts": 0,
        "next_attempt_at": next_attempt_at,
        "release_block": release_block,
        "lease_token": token,
        "lease_expires_at": lease_expires_at,
        "created_at": now,
        "updated_at": now,
    }


class NewLeases:
    """Tokens for rows leased as they are inserted: one per endpoint, all expiring together, so
    the message that follows the commit is the only one that sends them."""

    def __init__(self, now: datetime) -> None:
        self.expires_at = now + timedelta(seconds=get_settings().dispatch_lease_s)
        self._tokens: dict[int, str] = {}

    def token(self, endpoint_id: int) -> str:
        return self._tokens.setdefault(endpoint_id, new_token())

    def groups(self, pairs: Iterable[tuple[int, int]]) -> list[DispatchGroup]:
        """(endpoint_id, delivery_id) pairs as deliver tasks, each under its endpoint's token."""
        per_task = get_settings().deliveries_per_task
        return [
            DispatchGroup(endpoint_id, ids, self._tokens[endpoint_id])
            for endpoint_id, ids in chunk_groups(pairs, per_task)
        ]


def insert_deliveries(
    session: Session, rows: Sequence[dict[str, Any]], leases: NewLeases
) -> list[DispatchGroup]:
    """Insert the rows (ones that exist already are left as they are); returns the inserted
    pending ones as groups to enqueue after the commit."""
    inserted = insert_ignoring_conflicts(
        session, Delivery, rows, DELIVERY_KEY, returning=["id", "endpoint_id", "status"]
    )
    return leases.groups(
        (endpoint_id, delivery_id)
        for delivery_id, endpoint_id, status in inserted
        if status == DeliveryStatus.PENDING
    )
