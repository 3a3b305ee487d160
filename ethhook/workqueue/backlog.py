"""Disabling an endpoint, and its backlog: its pending deliveries held (next_attempt_at NULL, so
the due scan's index never reads them), made due again in order when it is enabled, or
discarded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from ethhook.db.models import Delivery, DeliveryStatus, Endpoint, OpsEventType
from ethhook.workqueue.lease import held_by_message, lease_free
from ethhook.workqueue.ops import emit_for_endpoints

DISCARDED_REASON = "discarded: the endpoint was disabled with --discard"


def hold_backlog(session: Session, endpoint_ids: Sequence[int], now: datetime) -> int:
    """Hold the pending deliveries of endpoints just disabled: they wait, kept, for an enable
    (retention bounds how long). A worker's claim in flight records its attempt as usual."""
    if not endpoint_ids:
        return 0
    pending = (
        Delivery.endpoint_id.in_(endpoint_ids),
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at.is_not(None),
    )
    result = session.execute(
        update(Delivery)
        .where(*pending, Delivery.id.in_(_unlocked(*pending)))
        .values(next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def resume_backlog(session: Session, endpoint_id: int, now: datetime) -> int:
    """An endpoint enabled again: every pending delivery it has, held or waiting for a retry, is
    due now (the due scan sends them oldest first); a worker's claim is left alone."""
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.endpoint_id == endpoint_id,
            Delivery.status == DeliveryStatus.PENDING,
            or_(lease_free(Delivery, now), held_by_message(Delivery)),
        )
        .values(next_attempt_at=now, lease_token=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def discard_backlog(session: Session, endpoint_id: int, now: datetime) -> int:
    """`endpoint disable --discard`: its deliveries still to send (waiting, pending) end as
    `discarded`, with the reason in last_error; nothing is deleted. Returns how many."""
    unsent = (Delivery.endpoint_id == endpoint_id, Delivery.status.in_(DeliveryStatus.UNSENT))
    result = session.execute(
        update(Delivery)
        .where(*unsent, Delivery.id.in_(_unlocked(*unsent)))
        .values(
            status=DeliveryStatus.DISCARDED,
            next_attempt_at=None,
            lease_token=None,
            lease_expires_at=None,
            last_error=DISCARDED_REASON,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def settle_disabled(session: Session, endpoint_id: int, now: datetime) -> int:
    """What a deliver task does with a disabled endpoint's deliveries it gave back: hold them, or
    discard them if it was disabled with --discard (the disable skipped the rows it was writing)."""
    discard = session.scalar(
        select(Endpoint.discard_while_disabled).where(Endpoint.id == endpoint_id)
    )
    if discard:
        return discard_backlog(session, endpoint_id, now)
    return hold_backlog(session, [endpoint_id], now)


def _unlocked(*where: Any) -> Select[int]:
    """The deliveries matching `where` that no other transaction is writing, locked for this one.
    A deliver task recording its attempts holds its deliveries' rows and then wants their
    endpoint's, which a disable holds: waiting for its rows would deadlock, so the disable
    leaves them, and the task settles them when it finds the endpoint disabled
    (settle_disabled)."""
    return select(Delivery.id).where(*where).with_for_update(skip_locked=True)


class DisableTrigger:
    """Who disabled an endpoint (the `trigger` of `endpoint.disabled`)."""

    MANUAL = "manual"  # the CLI, the API or the console
    AUTOMATIC = "automatic"  # every attempt failed for the auto-disable period, or a 410 Gone


def disable_endpoints(
    session: Session,
    endpoint_ids: Sequence[int],
    reason: str,
    now: datetime,
    trigger: str,
    discard: bool = False,
) -> list[int]:
    """Disable the endpoints of `endpoint_ids` that are active, every way an endpoint is
    disabled: hold their backlog (or, with `discard`, drop it, recorded), and queue
    `endpoint.disabled` for their applications' ops endpoints. Returns the ids it disabled."""
    if not endpoint_ids:
        return []
    disabled = list(
        session.scalars(
            update(Endpoint)
            .where(Endpoint.id.in_(endpoint_ids), Endpoint.active.is_(True))
            .values(
                active=False,
                disabled_reason=reason[:500],
                disabled_at=now,
                discard_while_disabled=discard,
                failing_notified_at=None,
                updated_at=now,
            )
            .returning(Endpoint.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    if discard:
        for endpoint_id in disabled:
            discard_backlog(session, endpoint_id, now)
    else:
        hold_backlog(session, disabled, now)
    emit_for_endpoints(session, OpsEventType.ENDPOINT_DISABLED, disabled, now, trigger=trigger)
    return sorted(disabled)
