"""Send a signed `endpoint.test` webhook to an endpoint now, the way deliveries are sent.

The body is signed with the endpoint's secrets (the previous one too during a rotation) and POSTed
by the deliver stage's one hardened HTTP function, with the same timeouts and the same guard
against private addresses. Nothing is stored: a test is not a delivery and has no attempts.

A test holds a thread for as long as the receiver takes to answer (up to the connect plus the
read timeout), so few may be under way at once in one process: ETHHOOK_API_TEST_SENDS_PER_KEY per
caller and ETHHOOK_API_TEST_SENDS_TOTAL in all; beyond, BusyError at once.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ethhook.config import Settings
from ethhook.db.models import utcnow
from ethhook.deliver import http
from ethhook.deliver.send import USER_AGENT
from ethhook.deliver.signing import KeyRing, webhook_headers
from ethhook.exceptions import BusyError
from ethhook.service.rows import get_endpoint
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


class TestSendSlots:
    """The test webhooks under way in this process, per caller and in all."""

    __test__ = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_caller: dict[str, int] = {}
        self._total = 0

    @contextmanager
    def reserve(self, caller: str, per_caller: int, total: int, retry_s: int) -> Iterator[None]:
        """Hold a slot for the block; BusyError at once when the caller, or everyone, holds
        as many as they may."""
        with self._lock:
            mine = self._by_caller.get(caller, 0)
            if mine >= per_caller:
                raise BusyError(
                    f"{per_caller} test webhooks under way for this key already; retry when one "
                    "has been answered",
                    retry_s,
                )
            if self._total >= total:
                raise BusyError(
                    f"{total} test webhooks under way on this server already; retry in a moment",
                    retry_s,
                )
            self._by_caller[caller] = mine + 1
            self._total += 1
        try:
            yield
        finally:
            with self._lock:
                self._total -= 1
                self._by_caller[caller] -= 1
                if not self._by_caller[caller]:
                    del self._by_caller[caller]


_SLOTS = TestSendSlots()


def reserve_test_send(scope: Scope, settings: Settings) -> AbstractContextManager[None]:
    """A slot for one test webhook by the caller of `scope` (BusyError when none is free);
    `send_test_webhook(..., reserved=True)` inside it."""
    caller = "operator" if scope is None else f"app:{scope}"
    # When the slowest test under way has surely been answered.
    retry_s = math.ceil(settings.delivery_connect_timeout_s + settings.delivery_read_timeout_s)
    return _SLOTS.reserve(
        caller, settings.api_test_sends_per_key, settings.api_test_sends_total, retry_s
    )


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
    session: Session, endpoint_id: int, *, scope: Scope, settings: Settings, reserved: bool = False
) -> TestResult:
    """POST a signed test webhook to the endpoint (enabled or not) and report the answer.

    In a slot of `reserve_test_send` (BusyError when none is free), or in the caller's when it
    holds one already (`reserved`).

    Another application's endpoint is NotFoundError. A URL the guard refuses (a private address
    without ETHHOOK_ALLOW_PRIVATE_TARGETS) comes back as an error, like any failed attempt.

    It only reads, and it ends the session's transaction (a rollback) before the POST: the
    request may take the connect plus the read timeout (13 s by default), and no transaction,
    pooled connection or snapshot is held meanwhile. So call it with no write pending; the
    session stays usable afterwards (its ORM objects are expired, reloaded on use).
    """
    if not reserved:
        with reserve_test_send(scope, settings):
            return send_test_webhook(
                session, endpoint_id, scope=scope, settings=settings, reserved=True
            )
    assert not (session.new or session.dirty or session.deleted), "a write would be rolled back"
    endpoint = get_endpoint(session, endpoint_id, scope=scope)
    now = utcnow()
    url, signing = endpoint.url, [endpoint.secret]
    if endpoint.previous_secret_signs(now) and endpoint.previous_secret:
        signing.append(endpoint.previous_secret)
    keys = KeyRing.of(endpoint.signing, signing)
    session.rollback()
    webhook_id = new_test_webhook_id()
    body = build_test_body(endpoint_id, webhook_id, now)
    headers = webhook_headers(keys, webhook_id, int(now.timestamp()), body, USER_AGENT)
    outcome = http.post(
        url,
        body,
        headers,
        settings.delivery_connect_timeout_s,
        settings.delivery_read_timeout_s,
        allow_private=settings.allow_private_targets,
    )
    return TestResult(outcome.status_code, outcome.duration_ms, outcome.error, webhook_id, url)
