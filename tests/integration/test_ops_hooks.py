"""Operational webhooks (issue 24): `ethhook app ops-endpoint`, and endpoint.failing,
endpoint.recovered and the retries of an ops webhook, through a real Celery worker with beat to
loopback receivers (ETHHOOK_OPS_FAILING_AFTER_S is 3 s in tests)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import OpsMessage, OpsStatus
from ethhook.service.apps import create_application
from ethhook.service.scope import OPERATOR
from tests.support.cli import assert_refused, ethhook
from tests.support.db import publish_events
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer
from tests.support.ops import default_application_id, ops_of, set_ops_endpoint
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("db", "worker")


def new_application(name: str) -> int:
    with session_scope() as session:
        return create_application(session, name, scope=OPERATOR).application.id


def ops_messages() -> list[OpsMessage]:
    with session_scope() as session:
        return list(session.scalars(select(OpsMessage).order_by(OpsMessage.id)))


def test_ops_endpoint_is_set_shown_moved_and_cleared_with_one_line_errors(receiver):
    app = new_application("shop")
    made = ethhook("app", "ops-endpoint", str(app), "--url", receiver.url("/ops"), "--json")
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)
    assert first["application_id"] == app and first["url"] == receiver.url("/ops")
    assert first["secret"].startswith("whsec_")
    human = ethhook("app", "ops-endpoint", str(app), "--url", receiver.url("/ops2"))
    assert human.returncode == 0 and f"secret: {first['secret']}" in human.stdout  # kept
    shown = json.loads(ethhook("app", "ops-endpoint", str(app), "--json").stdout)
    assert shown["url"] == receiver.url("/ops2") and "secret" not in shown
    assert shown["messages"] == []

    for args, words in (
        (("--url", "ftp://example.com/x"), "only http:// and https://"),
        (("--url", "http://"), "no host name"),
        (("--url", receiver.url("/x"), "--clear"), "--url URL or --clear, not both"),
    ):
        line = assert_refused(ethhook("app", "ops-endpoint", str(app), *args))
        assert words in line, line
    assert "no application with id 999" in assert_refused(
        ethhook("app", "ops-endpoint", "999", "--url", receiver.url("/x"))
    )

    cleared = ethhook("app", "ops-endpoint", str(app), "--clear")
    assert cleared.returncode == 0 and "removed" in cleared.stdout
    assert "has no ops endpoint" in assert_refused(ethhook("app", "ops-endpoint", str(app)))
    assert "has no ops endpoint" in assert_refused(
        ethhook("app", "ops-endpoint", str(app), "--clear")
    )


def test_a_failing_endpoint_is_reported_once_then_its_recovery(receiver):
    # Given an ops endpoint, and an endpoint whose receiver fails for a while
    set_ops_endpoint(receiver, default_application_id())
    answer = {"status": 500}
    receiver.responders["/flaky"] = lambda n: (answer["status"], {}, b"")
    endpoint_id, _ = add_endpoint(
        receiver.url("/flaky"), contracts=[address(51)], retry_schedule="0,1,1,1,1,1,1,1,1,1"
    )

    # When every attempt fails for longer than the failing period (3 s here)
    publish_events([transfer(contract=address(51), block=1, log_index=0, value=1)])

    # Then `endpoint.failing` arrives, signed, once
    (failing,) = wait_until(
        lambda: ops_of(receiver, "endpoint.failing", endpoint_id=endpoint_id), 30, 0.1, "failing"
    )
    assert failing.verified is True
    assert failing.json["data"]["failing_since"] and failing.json["data"]["failing_for_s"] == 3

    # When the receiver answers again, then `endpoint.recovered` follows, and no second failing
    answer["status"] = 200
    (recovered,) = wait_until(
        lambda: ops_of(receiver, "endpoint.recovered", endpoint_id=endpoint_id), 30, 0.1, "back"
    )
    assert recovered.verified is True and recovered.json["data"]["active"] is True
    assert len(ops_of(receiver, "endpoint.failing")) == 1


def test_an_ops_webhook_is_retried_on_the_schedule_until_its_endpoint_accepts_it(receiver):
    # Given an ops endpoint that fails its first request
    receiver.responders["/ops"] = lambda n: (503 if n < 1 else 204, {}, b"")
    set_ops_endpoint(receiver, default_application_id())
    endpoint_id, _ = add_endpoint(receiver.url("/ep"), contracts=[address(52)])

    # When an endpoint is disabled by hand
    assert ethhook("endpoint", "disable", str(endpoint_id)).returncode == 0

    # Then `endpoint.disabled` (trigger manual) is sent again on the retry schedule (the
    # default's second step: 5 s) until accepted, with one webhook-id
    wait_until(
        lambda: [m.status for m in ops_messages()] == [OpsStatus.SUCCEEDED], 30, 0.2, "accepted"
    )
    sent = ops_of(receiver, "endpoint.disabled", endpoint_id=endpoint_id)
    assert [r.status for r in sent] == [503, 204]
    assert sent[1].at - sent[0].at >= 4.4
    assert len({r.webhook_id for r in sent}) == 1 and all(r.verified for r in sent)
    assert sent[0].json["data"]["trigger"] == "manual"
    (message,) = ops_messages()
    assert message.attempts == 2 and message.last_status_code == 204
    listed = json.loads(
        ethhook("app", "ops-endpoint", str(default_application_id()), "--json").stdout
    )
    assert [(m["type"], m["status"]) for m in listed["messages"]] == [
        ("endpoint.disabled", "succeeded")
    ]


def test_an_application_without_an_ops_endpoint_gets_no_ops_messages(receiver):
    endpoint_id, _ = add_endpoint(receiver.url("/ep"), contracts=[address(53)])
    assert ethhook("endpoint", "disable", str(endpoint_id)).returncode == 0
    assert ops_messages() == []
