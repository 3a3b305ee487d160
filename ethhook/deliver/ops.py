"""Operational webhooks (`endpoint.disabled`, …) to an application's ops endpoint: claimed as the
deliver task claims deliveries (workqueue.ops), signed by deliver.signing, POSTed by
send.post_guarded (timeouts, no redirects, the SSRF guard) and retried on the retry policy's
schedule (protect.retry.next_state), recorded on the message row."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ethhook import metrics
from ethhook.config import Settings
from ethhook.db.models import OpsEndpoint, OpsMessage, OpsStatus, utcnow
from ethhook.db.ops import ops_webhook_id
from ethhook.deliver.http import HttpOutcome
from ethhook.deliver.protect.retry import next_state
from ethhook.deliver.send import USER_AGENT, post_guarded
from ethhook.deliver.signing import webhook_headers
from ethhook.workqueue import claim_ops_statement, new_claim_token

log = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]
CLEARED = "the application cleared its ops endpoint before this was sent"


@dataclass(frozen=True)
class OpsWork:
    """A claimed ops message with what sends it."""

    id: int
    type: str
    data: dict[str, Any]
    attempts: int
    created_at: datetime
    url: str
    secret: str


def ops_body(type_: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """The body of an ops webhook: the shape of event webhooks (`type`, `timestamp`, `data`)."""
    stamp = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"type": type_, "timestamp": stamp, "data": data}).encode()


def send_ops(
    sessions: SessionFactory, settings: Settings, message_ids: Sequence[int], token: str
) -> int:
    """Send the ops messages this task was leased (or that are due and held by no worker);
    returns how many were sent. Safe to run twice: a second copy finds them claimed or sent."""
    worker_token = new_claim_token()
    with sessions() as session:
        work = _claim(session, message_ids, token, worker_token, settings)
    outcomes = []
    for item in work:
        body = ops_body(item.type, item.created_at, item.data)
        stamp = int(utcnow().timestamp())
        headers = webhook_headers([item.secret], ops_webhook_id(item.id), stamp, body, USER_AGENT)
        context = f"ops_message={item.id} type={item.type}"
        outcome = post_guarded(item.url, body, headers, settings, context)
        outcomes.append((item, outcome))
        metrics.record_ops_webhook(item.type, outcome.ok)
        log.log(
            logging.DEBUG if outcome.ok else logging.INFO,
            "deliver.ops.%s message=%s type=%s attempt=%d status=%s error=%s",
            "succeeded" if outcome.ok else "failed",
            item.id,
            item.type,
            item.attempts + 1,
            outcome.status_code,
            outcome.error,
        )
    with sessions() as session:
        _record(session, outcomes, worker_token, settings, utcnow())
    return len(outcomes)


def _claim(
    session: Session,
    message_ids: Sequence[int],
    token: str,
    worker_token: str,
    settings: Settings,
) -> list[OpsWork]:
    """Claim the messages and read their ops endpoints; a message whose application cleared its
    ops endpoint meanwhile ends `cancelled`."""
    now = utcnow()
    claimed = session.execute(
        claim_ops_statement(message_ids, token, worker_token, now, settings.delivery_lease_s)
        .returning(
            OpsMessage.id,
            OpsMessage.application_id,
            OpsMessage.type,
            OpsMessage.data,
            OpsMessage.attempts,
            OpsMessage.created_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    apps = sorted({row.application_id for row in claimed})
    targets = {
        row.application_id: (row.url, row.secret)
        for row in session.execute(
            select(OpsEndpoint.application_id, OpsEndpoint.url, OpsEndpoint.secret).where(
                OpsEndpoint.application_id.in_(apps)
            )
        )
    }
    orphaned = [row.id for row in claimed if row.application_id not in targets]
    if orphaned:
        session.execute(
            update(OpsMessage)
            .where(OpsMessage.id.in_(orphaned), OpsMessage.lease_token == worker_token)
            .values(status=OpsStatus.CANCELLED, last_error=CLEARED, lease_token=None,
                    lease_expires_at=None, next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    return [
        OpsWork(
            row.id, row.type, row.data, row.attempts, row.created_at, *targets[row.application_id]
        )
        for row in sorted(claimed, key=lambda r: r.id)
        if row.application_id in targets
    ]


def _record(
    session: Session,
    outcomes: Sequence[tuple[OpsWork, HttpOutcome]],
    worker_token: str,
    settings: Settings,
    now: datetime,
) -> None:
    """Each message's attempt: succeeded, pending until its next try on the retry schedule, or
    failed once the schedule is used up; the claim is given back."""
    for item, outcome in outcomes:
        attempts = item.attempts + 1
        status, next_at = next_state(outcome, attempts, settings.retry_schedule_s, now)
        error = outcome.error or (None if outcome.ok else f"HTTP {outcome.status_code}")
        session.execute(
            update(OpsMessage)
            .where(OpsMessage.id == item.id, OpsMessage.lease_token == worker_token)
            .values(
                status=status,
                attempts=attempts,
                next_attempt_at=next_at,
                last_status_code=outcome.status_code,
                last_error=error[:500] if error else None,
                lease_token=None,
                lease_expires_at=None,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
