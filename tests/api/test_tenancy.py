"""Tenant isolation over HTTP, walked from /openapi.json so that a new route is covered the day it
is added: another application's resource is 404 (and unchanged), a missing or wrong key is 401
on every /v1 route, and lists never show another application's rows."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from ethhook.db import session_scope
from ethhook.db.models import Delivery, utcnow
from ethhook.db.replay_jobs import ReplayJob
from ethhook.service.keys import generate_key
from tests.support.api import ApiServer
from tests.support.factories import address, transfer

# Path parameter → the tenant resource it names.
RESOURCE = {
    "endpoint_id": "endpoint",
    "delivery_id": "delivery",
    "replay_id": "replay",
    "application_id": "app",
}
# A body each write accepts, so that only the ownership check can refuse it.
BODIES = {"PATCH": {"name": "stolen"}}


def operations(api: ApiServer) -> list[tuple[str, str]]:
    schema = api.call("GET", "/openapi.json").json()
    return sorted(
        (method.upper(), path) for path, methods in schema["paths"].items() for method in methods
    )


def fill(path: str, tenant: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(tenant[RESOURCE[m.group(1)]]), path)


def view_of(api: ApiServer, tenant: dict[str, Any]) -> dict[str, Any]:
    """What A's owner sees of A's resources (secret included): must not change."""
    key = tenant["key"]
    return {
        "endpoint": api.call("GET", f"/v1/endpoints/{tenant['endpoint']}", key).json(),
        "secret": api.call("GET", f"/v1/endpoints/{tenant['endpoint']}/secret", key).json(),
        "delivery": api.call("GET", f"/v1/deliveries/{tenant['delivery']}", key).json(),
        "replay": api.call("GET", f"/v1/replays/{tenant['replay']}", key).json(),
        "app": api.call("GET", f"/v1/applications/{tenant['app']}", key).json(),
    }


def park(tenant: dict[str, Any]) -> None:
    """Hold the tenant's delivery and replay job until tomorrow, so that beat (a session worker
    may be running on this database) leaves them alone: any change seen after is a caller's."""
    tomorrow = utcnow() + timedelta(days=1)
    with session_scope() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == tenant["delivery"])
            .values(
                next_attempt_at=tomorrow,
                lease_token=None,
                lease_expires_at=None,
                updated_at=Delivery.updated_at,
            )
        )
        session.execute(
            update(ReplayJob)
            .where(ReplayJob.id == tenant["replay"])
            .values(lease_expires_at=tomorrow, updated_at=ReplayJob.updated_at)
        )


def test_every_route_with_an_id_hides_another_applications_resource(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    a, b = tenants["a"], tenants["b"]
    park(a)
    before = view_of(api, a)
    walked = []
    for method, path in operations(api):
        if "{" not in path:
            continue
        answer = api.call(method, fill(path, a), b["key"], json=BODIES.get(method))
        walked.append((method, path))
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json()
        assert problem["status"] == 404 and problem["type"] == "urn:ethhook:problem:not-found"
        # The answer is the one a missing id gets: nothing tells that A's resource exists.
        missing = api.call(
            method, re.sub(r"/\d+", "/999999", fill(path, a)), b["key"], json=BODIES.get(method)
        )
        assert missing.status_code == 404
        assert missing.json()["type"] == problem["type"]
    assert len(walked) >= 14, walked
    assert view_of(api, a) == before


def test_the_owner_reaches_every_route_with_an_id(api: ApiServer, tenants: dict[str, Any]) -> None:
    """The same calls with A's own key get past the ownership check (no 404 or 401)."""
    a = tenants["a"]
    key = a["key"]
    for method, path in operations(api):
        if "{" not in path or method == "DELETE":
            continue
        answer = api.call(method, fill(path, a), key, json=BODIES.get(method))
        assert answer.status_code not in (401, 404), (method, path, answer.text)
        if path.endswith("/rotate-key"):
            key = answer.json()["api_key"]  # the old key stopped working


def test_every_v1_route_refuses_a_missing_or_wrong_key_with_401(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    wrong = {
        "missing": None,
        "unknown": generate_key(),
        "malformed": "not-a-key",
    }
    for method, path in operations(api):
        if not path.startswith("/v1"):
            continue
        for what, key in wrong.items():
            answer = api.call(method, fill(path, tenants["a"]), key, json=BODIES.get(method))
            assert answer.status_code == 401, (what, method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            challenge = answer.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="ethhook"')
            assert ('error="invalid_token"' in challenge) == (key is not None)
    # A key replaced by a rotation stops at once.
    a = tenants["a"]
    rotated = api.call("POST", f"/v1/applications/{a['app']}/rotate-key", a["key"])
    assert rotated.status_code == 200
    assert api.call("GET", "/v1/endpoints", a["key"]).status_code == 401
    assert api.call("GET", "/v1/endpoints", rotated.json()["api_key"]).status_code == 200


def ids(api: ApiServer, path: str, key: str, field: str = "id") -> set[int]:
    answer = api.call("GET", path, key)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    rows = body["data"] if "data" in body else body["endpoints"]
    return {row[field] for row in rows}


@pytest.mark.parametrize(
    ("path", "field", "resource"),
    [
        ("/v1/endpoints", "id", "endpoint"),
        ("/v1/deliveries", "id", "delivery"),
        ("/v1/applications", "id", "app"),
        ("/v1/stats?since=2000-01-01T00:00:00Z", "endpoint_id", "endpoint"),
    ],
)
def test_lists_show_only_the_callers_rows(
    api: ApiServer,
    tenants: dict[str, Any],
    operator_key: str,
    path: str,
    field: str,
    resource: str,
) -> None:
    a, b = tenants["a"], tenants["b"]
    assert ids(api, path, a["key"], field) == {a[resource]}
    assert ids(api, path, b["key"], field) == {b[resource]}
    assert {a[resource], b[resource]} <= ids(api, path, operator_key, field)


def test_filters_naming_another_applications_endpoint_find_nothing(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    a, b = tenants["a"], tenants["b"]
    listed = api.call("GET", f"/v1/deliveries?endpoint_id={a['endpoint']}", b["key"])
    assert listed.status_code == 200 and listed.json()["data"] == []
    retry = {"status": "pending", "endpoint_id": a["endpoint"]}
    bulk = api.call("POST", "/v1/deliveries/retry", b["key"], json=retry)
    assert bulk.status_code == 202 and bulk.json() == {"count": 0}
    moved = api.call(
        "POST",
        "/v1/endpoints",
        b["key"],
        json={"url": "http://127.0.0.1:9/x", "application_id": a["app"]},
    )
    assert moved.status_code == 404
    assert ids(api, "/v1/endpoints", a["key"]) == {a["endpoint"]}


def test_only_the_operator_creates_or_deletes_applications(
    api: ApiServer, tenants: dict[str, Any], operator_key: str
) -> None:
    b = tenants["b"]
    created = api.call("POST", "/v1/applications", b["key"], json={"name": "C"})
    assert created.status_code == 403
    assert created.json()["type"] == "urn:ethhook:problem:operator-only"
    own = api.call("DELETE", f"/v1/applications/{b['app']}", b["key"])
    assert own.status_code == 403
    assert api.call("GET", f"/v1/applications/{b['app']}", b["key"]).status_code == 200
    by_operator = api.call("POST", "/v1/applications", operator_key, json={"name": "C"})
    assert by_operator.status_code == 201 and by_operator.json()["name"] == "C"
    new_key = by_operator.json()["api_key"]
    assert ids(api, "/v1/applications", new_key) == {by_operator.json()["id"]}
    gone = api.call("DELETE", f"/v1/applications/{by_operator.json()['id']}", operator_key)
    assert gone.status_code == 204
    assert api.call("GET", "/v1/endpoints", new_key).status_code == 401


def test_explain_shows_only_the_callers_endpoints(
    api: ApiServer, tenants: dict[str, Any], operator_key: str
) -> None:
    # A's transaction (make_tenant stored and matched it): each key sees its own endpoints only
    a, b = tenants["a"], tenants["b"]
    tx = transfer(contract=address(1), block=1, log_index=1, value=1).transaction_hash

    def seen(key: str) -> dict[int, bool]:
        answer = api.call("GET", f"/v1/explain?chain=1&tx={tx}", key)
        assert answer.status_code == 200, answer.text
        (log,) = answer.json()["logs"]
        return {e["endpoint_id"]: e["matched"] for e in log["endpoints"]}

    assert seen(a["key"]) == {a["endpoint"]: True}
    assert seen(b["key"]) == {b["endpoint"]: False}
    assert seen(operator_key) == {a["endpoint"]: True, b["endpoint"]: False}
