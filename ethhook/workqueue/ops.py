"""Operational webhooks as work: a message row per application that has an ops endpoint,
written in the transaction of what it reports, then leased, claimed and found again by the due
scan with the same lease conditions as deliveries (workqueue.lease)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, insert, or_, select, update
from sqlalchemy.orm import Session

from ethhook.db.dialect import skip_locked
from ethhook.db.models import Endpoint, EndpointFilter, OpsEndpoint, OpsMessage, OpsStatus
from ethhook.workqueue.lease import claimable, lease_free, new_token


@dataclass(frozen=True)
class OpsDispatch:
    """One ops task: messages leased to one token."""

    message_ids: list[int]
    token: str


def emit_ops(
    session: Session, application_id: int, type_: str, data: dict[str, Any], now: datetime
) -> int | None:
    """Queue an ops webhook for the application, in the caller's transaction; None (nothing
    written) when it has no ops endpoint. The due scan sends it after the commit."""
    has_endpoint = session.scalar(
        select(OpsEndpoint.application_id).where(OpsEndpoint.application_id == application_id)
    )
    if has_endpoint is None:
        return None
    return session.scalar(
        insert(OpsMessage)
        .values(
            application_id=application_id,
            type=type_,
            data=data,
            status=OpsStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        .returning(OpsMessage.id)
    )


def emit_for_endpoints(
    session: Session,
    type_: str,
    endpoint_ids: Sequence[int],
    now: datetime,
    **extra: Any,
) -> int:
    """Queue `type_` about each endpoint to its application's ops endpoint (those without one
    get nothing); `data` is the endpoint's id, name, state and `extra`. Returns how many."""
    if not endpoint_ids:
        return 0
    rows = session.execute(
        select(
            Endpoint.id,
            Endpoint.application_id,
            Endpoint.name,
            Endpoint.active,
            Endpoint.disabled_reason,
            Endpoint.failing_since,
            Endpoint.discard_while_disabled,
        )
        .join(OpsEndpoint, OpsEndpoint.application_id == Endpoint.application_id)
        .where(Endpoint.id.in_(endpoint_ids))
        .order_by(Endpoint.id)
    ).all()
    for row in rows:
        data: dict[str, Any] = {
            "endpoint_id": row.id,
            "application_id": row.application_id,
            "name": row.name,
            "active": row.active,
        }
        if not row.active:
            data["reason"] = row.disabled_reason
            data["backlog"] = "discarded" if row.discard_while_disabled else "kept"
        if row.failing_since is not None:
            data["failing_since"] = row.failing_since.isoformat()
        data.update(extra)
        emit_ops(session, row.application_id, type_, data, now)
    return len(rows)


def emit_for_chain(
    session: Session, chain_id: int, type_: str, data: dict[str, Any], now: datetime
) -> int:
    """Queue `type_` for every application with an ops endpoint and an active endpoint that
    watches the chain (or every chain); returns how many."""
    watching = (
        select(Endpoint.application_id)
        .join(EndpointFilter, EndpointFilter.endpoint_id == Endpoint.id)
        .where(
            Endpoint.active.is_(True),
            or_(EndpointFilter.chain_id == chain_id, EndpointFilter.chain_id.is_(None)),
        )
    )
    apps = session.scalars(
        select(OpsEndpoint.application_id)
        .where(OpsEndpoint.application_id.in_(watching))
        .order_by(OpsEndpoint.application_id)
    ).all()
    for application_id in apps:
        emit_ops(session, application_id, type_, {**data, "application_id": application_id}, now)
    return len(apps)


def lease_due_ops(session: Session, now: datetime, limit: int, lease_s: float) -> list[OpsDispatch]:
    """Lease pending ops messages that are due and held by nobody to one new token (they are
    few); the caller enqueues the dispatch after the commit."""
    due = select(OpsMessage.id).where(
        OpsMessage.status == OpsStatus.PENDING,
        OpsMessage.next_attempt_at <= now,
        lease_free(OpsMessage, now),
    )
    ids = list(
        session.scalars(
            skip_locked(due.order_by(OpsMessage.id).limit(limit), session, of=OpsMessage)
        )
    )
    if not ids:
        return []
    token = new_token()
    leased = session.scalars(
        update(OpsMessage)
        .where(OpsMessage.id.in_(ids), lease_free(OpsMessage, now))
        .values(lease_token=token, lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(OpsMessage.id)
    ).all()
    return [OpsDispatch(sorted(leased), token)] if leased else []


def claim_ops_statement(
    message_ids: Sequence[int], token: str, worker_token: str, now: datetime, lease_s: float
) -> Update:
    """Claim, for one worker, the messages this task was leased, or those of its ids due and held
    by nobody or by another message (workqueue.lease.claim's rule, for ops messages)."""
    return (
        update(OpsMessage)
        .where(
            OpsMessage.id.in_(message_ids),
            OpsMessage.status == OpsStatus.PENDING,
            claimable(OpsMessage, token, now),
        )
        .values(lease_token=worker_token, lease_expires_at=now + timedelta(seconds=lease_s))
    )
