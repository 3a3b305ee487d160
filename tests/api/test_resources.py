"""The /v1 resources over HTTP: endpoints from creation to deletion, errors as problem+json,
cursor pagination, retries, replays, statistics, the signed test webhook, /health and /metrics."""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest
from sqlalchemy import make_url, text

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery
from tests.support.api import ApiServer, assert_problem
from tests.support.db import endpoint_count
from tests.support.factories import address, transfer
from tests.support.receiver import Receiver

# No worker sends what these tests retry while they count it (a retry leaves a delivery a worker
# has claimed to that worker, so it would not be counted).
pytestmark = pytest.mark.usefixtures("without_session_worker")

TRANSFER = "Transfer(address indexed from, address indexed to, uint256 value)"


def test_an_endpoint_from_creation_to_deletion(api: ApiServer, tenants: dict[str, Any]) -> None:
    key = tenants["a"]["key"]
    body = {
        "url": "http://127.0.0.1:9/new",
        "chains": ["ethereum", 10],
        "events": [TRANSFER],
        "confirmations": 2,
        "rate_limit": 5,
        "retry_schedule": [0, 5, 300],
        "name": "shop",
        "where": [],
    }
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    endpoint_id, secret = endpoint["id"], endpoint["secret"]
    assert secret.startswith("whsec_")
    assert endpoint["application_id"] == tenants["a"]["app"]
    assert (endpoint["chains"], endpoint["events"]) == ([1, 10], [TRANSFER])
    assert (endpoint["rate_limit"], endpoint["retry_schedule"]) == (5.0, [0.0, 5.0, 300.0])

    shown = api.call("GET", f"/v1/endpoints/{endpoint_id}", key).json()
    assert "secret" not in shown and secret not in str(shown)
    assert shown["deliveries"] == {} and shown["circuit_breaker"] == "closed"
    assert api.call("GET", f"/v1/endpoints/{endpoint_id}/secret", key).json()["secret"] == secret

    patched = api.call(
        "PATCH", f"/v1/endpoints/{endpoint_id}", key, json={"name": None, "confirmations": 0}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["confirmations"]) == (None, 0)
    assert patched.json()["events"] == [TRANSFER]  # what was not given stays

    disabled = api.call("POST", f"/v1/endpoints/{endpoint_id}/disable", key, json={"reason": "x"})
    assert (disabled.json()["active"], disabled.json()["disabled_reason"]) == (False, "x")
    enabled = api.call("POST", f"/v1/endpoints/{endpoint_id}/enable", key)
    assert (enabled.json()["active"], enabled.json()["disabled_reason"]) == (True, None)

    rotated = api.call(
        "POST", f"/v1/endpoints/{endpoint_id}/rotate-secret", key, json={"grace_s": 60}
    )
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != secret and rotated.json()["previous_secret_expires_at"] is not None
    secrets = api.call("GET", f"/v1/endpoints/{endpoint_id}/secret", key).json()
    assert (secrets["secret"], secrets["previous_secret"]) == (new, secret)

    assert api.call("DELETE", f"/v1/endpoints/{endpoint_id}", key).status_code == 204
    assert_problem(api.call("GET", f"/v1/endpoints/{endpoint_id}", key), 404, "not-found")


def test_where_conditions_are_kept_as_given_replaced_cleared_and_checked(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    body = {
        "url": "http://127.0.0.1:9/w",
        "events": [TRANSFER],
        "where": ["to == 0x00000000000000000000000000000000000000aa", "value >= 10"],
    }
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    shown = api.call("GET", f"/v1/endpoints/{endpoint_id}", key).json()
    assert shown["where"] == body["where"]

    path = f"/v1/endpoints/{endpoint_id}"
    replaced = api.call("PATCH", path, key, json={"where": ["value < 5"]})
    assert replaced.status_code == 200 and replaced.json()["where"] == ["value < 5"]
    assert api.call("PATCH", path, key, json={"where": []}).json()["where"] == []

    # A condition the event cannot satisfy is refused with the parser's one line; nothing changes
    before = endpoint_count()
    wrong = {**body, "where": ["valu > 1"]}
    assert_problem(api.call("POST", "/v1/endpoints", key, json=wrong), 422, "invalid-input",
                   "Transfer has no argument 'valu'")  # fmt: skip
    assert_problem(api.call("PATCH", path, key, json={"where": ["to < 1"]}), 422, "invalid-input")
    assert endpoint_count() == before
    assert api.call("GET", path, key).json()["where"] == []


def test_bad_input_is_a_problem_naming_what_is_wrong(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    before = endpoint_count()
    assert_problem(
        api.call("POST", "/v1/endpoints", key, json={"url": "ftp://x"}),
        422,
        "invalid-input",
        "only http:// and https://",
    )
    problem = assert_problem(
        api.call("POST", "/v1/endpoints", key, json={"url": "http://127.0.0.1:9/", "x": 1}),
        422,
        "invalid-request",
        "body.x",
    )
    assert problem["errors"][0]["loc"] == ["body", "x"]
    assert_problem(
        api.call(
            "POST", "/v1/endpoints", key, data=b"{", headers={"content-type": "application/json"}
        ),
        422,
        "invalid-request",
    )
    assert_problem(
        api.call("PATCH", f"/v1/endpoints/{tenants['a']['endpoint']}", key, json={"url": None}),
        422,
        "invalid-request",
        "may not be null",
    )
    assert_problem(api.call("GET", "/v1/endpoints?limit=0", key), 422, "invalid-request")
    assert_problem(api.call("GET", "/v1/endpoints?cursor=nope", key), 422, "invalid-input")
    assert_problem(api.call("GET", "/v1/stats?since=yesterday", key), 422, "invalid-input")
    assert_problem(api.call("GET", "/v1/nowhere", key), 404, "not-found")
    assert endpoint_count() == before


def test_cursor_pagination_returns_every_endpoint_once(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    made = {tenants["a"]["endpoint"]}
    for i in range(7):
        answer = api.call("POST", "/v1/endpoints", key, json={"url": f"http://127.0.0.1:9/{i}"})
        made.add(answer.json()["id"])
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", "/v1/endpoints" + query, key).json()
        pages += 1
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def due_or_sent(delivery_id: int) -> bool:
    """Made due and leased to the deliver task that was enqueued, or already sent by a worker
    (the session's worker runs when an end-to-end test ran before this one)."""
    with session_scope() as session:
        row = session.get(Delivery, delivery_id)
        assert row is not None
        return row.lease_token is not None or row.attempts > 0


def test_retries_are_accepted_and_made_due(api: ApiServer, tenants: dict[str, Any]) -> None:
    a = tenants["a"]
    one = api.call("POST", f"/v1/deliveries/{a['delivery']}/retry", a["key"])
    assert one.status_code == 202 and one.json() == {"count": 1}
    assert due_or_sent(a["delivery"])
    pending = api.call("GET", "/v1/deliveries?status=pending", a["key"]).json()["data"]
    bulk = api.call("POST", "/v1/deliveries/retry", a["key"], json={"status": "pending"})
    # The suite's worker may send some of them between the two calls (the one just retried is
    # due): the bulk retry counts those still pending, never another tenant's.
    left = [
        d
        for d in pending
        if api.call("GET", f"/v1/deliveries/{d['id']}", a["key"]).json()["status"] != "pending"
    ]
    assert bulk.status_code == 202
    assert len(pending) - len(left) <= bulk.json()["count"] <= len(pending), (bulk.json(), left)
    assert_problem(
        api.call("POST", "/v1/deliveries/retry", a["key"], json={"status": "lost"}),
        422,
        "invalid-input",
        "invalid status 'lost'",
    )
    details = api.call("GET", f"/v1/deliveries/{a['delivery']}", a["key"]).json()
    assert details["webhook_id"].startswith("msg_") and details["endpoint_id"] == a["endpoint"]
    assert len(details["attempts"]) == details["attempt_count"]


def test_deliveries_are_listed_by_transaction_kind_and_time(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    a, b = tenants["a"], tenants["b"]
    tx = transfer(contract=address(1), block=1, log_index=1, value=1).transaction_hash

    def listed(key: str, query: str) -> list[int]:
        answer = api.call("GET", "/v1/deliveries?" + query, key)
        assert answer.status_code == 200, answer.text
        return [d["id"] for d in answer.json()["data"]]

    assert listed(a["key"], f"transaction_hash={tx.upper().replace('0X', '0x')}") == [a["delivery"]]
    assert listed(b["key"], f"transaction_hash={tx}") == []  # another application's
    assert listed(a["key"], "kind=event.instant") == [a["delivery"]]
    assert listed(a["key"], "kind=event.confirmed") == []
    assert listed(a["key"], "until=2000-01-01T00:00:00Z") == []
    assert listed(a["key"], "since=2000-01-01T00:00:00Z&until=9999-01-01T00:00:00Z") == [
        a["delivery"]
    ]
    for query, words in (
        ("kind=event", "invalid event type 'event'"),
        ("transaction_hash=0x12", "invalid transaction hash '0x12'"),
        ("until=tomorrow", "invalid until 'tomorrow'"),
    ):
        assert_problem(
            api.call("GET", "/v1/deliveries?" + query, a["key"]), 422, "invalid-input", words
        )
    # A bulk retry takes the same filters
    body = {"status": "pending", "transaction_hash": "0x" + "00" * 32}
    none = api.call("POST", "/v1/deliveries/retry", a["key"], json=body)
    assert none.status_code == 202 and none.json() == {"count": 0}


def test_a_replay_job_is_shown_and_cancelled(api: ApiServer, tenants: dict[str, Any]) -> None:
    a = tenants["a"]
    shown = api.call("GET", f"/v1/replays/{a['replay']}", a["key"]).json()
    assert (shown["state"], shown["blocks_total"], shown["chain"]) == ("queued", 10, "ethereum")
    cancelled = api.call("POST", f"/v1/replays/{a['replay']}/cancel", a["key"])
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    body = {"chain": "base", "from_block": 1, "to_block": 5, "endpoint_id": a["endpoint"]}
    no_node = api.call("POST", "/v1/replays", a["key"], json=body)
    assert_problem(no_node, 422, "invalid-input", "has no node URL")
    body.update(from_block=9)
    assert_problem(
        api.call("POST", "/v1/replays", a["key"], json=body),
        422,
        "invalid-input",
        "to_block 5 is before from_block 9",
    )


def test_the_test_webhook_is_signed_and_reports_the_answer(
    api: ApiServer, tenants: dict[str, Any], receiver: Receiver
) -> None:
    key = tenants["a"]["key"]
    created = api.call("POST", "/v1/endpoints", key, json={"url": receiver.url("/t")}).json()
    receiver.secrets["/t"] = created["secret"]
    answer = api.call("POST", f"/v1/endpoints/{created['id']}/test", key)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["ok"], result["status_code"], result["error"]) == (True, 200, None)
    (got,) = receiver.on("/t")
    assert got.verified is True and got.webhook_id == result["webhook_id"]
    assert got.json["type"] == "endpoint.test"
    assert got.json["data"]["endpoint_id"] == created["id"]

    receiver.responders["/t"] = lambda n: (503, {}, b"down")
    failed = api.call("POST", f"/v1/endpoints/{created['id']}/test", key).json()
    assert (failed["ok"], failed["status_code"]) == (False, 503)
    assert failed["webhook_id"] != result["webhook_id"]  # a test is never a redelivery


def transactions_open_in(pid: int) -> list[str]:
    """The state of every PostgreSQL session of process `pid` that is inside a transaction."""
    ports = [
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == (make_url(get_settings().database_url).port or 5432)
    ]
    assert ports, "the API holds no connection to PostgreSQL"
    with session_scope() as session:
        return list(
            session.scalars(
                text(
                    "SELECT state FROM pg_stat_activity WHERE client_port = ANY(:ports) "
                    "AND xact_start IS NOT NULL"
                ),
                {"ports": ports},
            )
        )


def test_the_test_webhook_holds_no_transaction_while_it_waits_for_the_answer(
    api: ApiServer, tenants: dict[str, Any], receiver: Receiver
) -> None:
    # Given an endpoint whose receiver looks at the API's database sessions while it answers
    key = tenants["a"]["key"]
    created = api.call("POST", "/v1/endpoints", key, json={"url": receiver.url("/slow")}).json()
    seen: list[list[str]] = []

    def answer(number: int) -> tuple[int, dict[str, str], bytes]:
        seen.append(transactions_open_in(api.proc.pid))
        return 200, {}, b"ok"

    receiver.responders["/slow"] = answer

    # When a test webhook is sent
    result = api.call("POST", f"/v1/endpoints/{created['id']}/test", key)

    # Then it arrived while the API had no transaction open, and the answer is reported
    assert result.status_code == 200 and result.json()["ok"] is True, result.text
    assert seen == [[]]
    assert transactions_open_in(api.proc.pid) == []


def test_health_and_metrics_need_no_key_and_metrics_name_route_templates(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    health = api.call("GET", "/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok", "redis": "ok"}
    endpoint_id = tenants["a"]["endpoint"]
    api.call("GET", f"/v1/endpoints/{endpoint_id}", tenants["a"]["key"])
    api.call("GET", "/v1/endpoints/1", "wrong")
    time.sleep(0.1)
    text = api.call("GET", "/metrics").text
    assert (
        'api_requests_total{method="GET",route="/v1/endpoints/{endpoint_id}",status="200"}' in text
    )
    assert 'route="/v1/endpoints/{endpoint_id}",status="401"' in text
    assert f"/v1/endpoints/{endpoint_id}" + '"' not in text  # never a raw path
    assert 'api_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"}' in text
