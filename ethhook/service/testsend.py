"""Send a signed `endpoint.test` webhook to an endpoint now, the way deliveries are sent.

The body is signed with the endpoint's secrets (the previous one too during a rotation) and POSTed
by the deliver stage's one hardened HTTP function, with the same timeouts and the same guard
against private addresses. Nothing is stored: a test is not a delivery and has no attempts.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.deliver import http
from ethhook.deliver.send import USER_AGENT
from ethhook.deliver.signing import webhook_headers
from ethhook.service.endpoints import get_endpoint
from ethhook.service.scope import Scope

TEST_KIND = "endpoint.test"


@dataclass(frozen=True)
class TestResult:
    """What the receiver answered: its status (None when no answer came), how long it took, the
    error if the request failed or was redirected, the webhook-id the test carried and the URL
    it was sent to."""

    __test__ = False  # not a pytest test class, whatever its name

    status_code: int | None
    duration_ms: float
    error: str | None
    webhook_id: str
    url: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def new_test_webhook_id() -> str:
    """A fresh id (`msg_test_…`) per test: receivers must not take a test for a redelivery."""
    return f"msg_test_{secrets.token_hex(12)}"


def build_test_body(endpoint_id: int, webhook_id: str, now: datetime) -> bytes:
    """The Standard Webhooks envelope of a test: `type` endpoint.test, and no chain event."""
    body = {
        "type": TEST_KIND,
        "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {
            "endpoint_id": endpoint_id,
            "webhook_id": webhook_id,
            "message": "a test webhook sent by EthHook; verify its signature and answer 2xx",
        },
    }
    return json.dumps(body, separators=(",", ":")).encode()


def send_test_webhook(
    session: Session, endpoint_id: int, *, scope: Scope, settings: Settings
) -> TestResult:
    """POST a signed test webhook to the endpoint (enabled or not) and report the answer.

    Another application's endpoint is NotFoundError. A URL the guard refuses (a private address
    without ETHHOOK_ALLOW_PRIVATE_TARGETS) comes back as an error, like any failed attempt.

    It only reads, and it ends the session's transaction (a rollback) before the POST: the
    request may take the connect plus the read timeout (13 s by default), and no transaction,
    pooled connection or snapshot is held meanwhile. So call it with no write pending; the
    session stays usable afterwards (its ORM objects are expired, reloaded on use).
    """
    assert not (session.new or session.dirty or session.deleted), "a write would be rolled back"
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    now = utcnow()
    url, signing = endpoint.url, [endpoint.secret]
    if endpoint.previous_secret_signs(now) and endpoint.previous_secret:
        signing.append(endpoint.previous_secret)
    session.rollback()
    webhook_id = new_test_webhook_id()
    body = build_test_body(endpoint_id, webhook_id, now)
    headers = webhook_headers(signing, webhook_id, int(now.timestamp()), body, USER_AGENT)
    outcome = http.post(
        url,
        body,
        headers,
        settings.delivery_connect_timeout_s,
        settings.delivery_read_timeout_s,
        allow_private=settings.allow_private_targets,
    )
    return TestResult(outcome.status_code, outcome.duration_ms, outcome.error, webhook_id, url)
