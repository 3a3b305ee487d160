"""PUT|GET|DELETE /v1/ops-endpoint and its messages over a real `ethhook api`: an application's
key reaches its own ops endpoint only; another application's is missing (404), never set or
seen; bad input is one problem+json; POST /disable {"discard": true} drops the backlog."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ethhook.db import session_scope
from ethhook.db.models import Delivery, DeliveryStatus
from tests.support.api import ApiServer, assert_problem

OPS = "/v1/ops-endpoint"
HOOK = "https://hooks.example.com/ops"


def test_an_application_sets_shows_moves_and_clears_its_own_ops_endpoint(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    made = api.call("PUT", OPS, a["key"], json={"url": HOOK})
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["application_id"] == a["app"] and body["url"] == HOOK
    assert body["secret"].startswith("whsec_")
    moved = api.call("PUT", OPS, a["key"], json={"url": HOOK + "/v2"}).json()
    assert moved["secret"] == body["secret"] and moved["url"] == HOOK + "/v2"
    shown = api.call("GET", OPS, a["key"]).json()
    assert shown["url"] == HOOK + "/v2" and "secret" not in shown
    assert api.call("GET", OPS + "/messages", a["key"]).json() == []
    assert api.call("DELETE", OPS, a["key"]).status_code == 204
    assert_problem(api.call("GET", OPS, a["key"]), 404, "not-found", "has no ops endpoint")
    assert_problem(api.call("DELETE", OPS, a["key"]), 404, "not-found", "has no ops endpoint")


def test_bad_input_is_one_problem(api: ApiServer, tenants: dict[str, Any]) -> None:
    key = tenants["a"]["key"]
    assert_problem(
        api.call("PUT", OPS, key, json={"url": "ftp://example.com/x"}),
        422,
        "invalid-input",
        "only http:// and https://",
    )
    assert api.call("PUT", OPS, key, json={}).status_code == 422
    assert api.call("PUT", OPS, key, json={"url": HOOK, "extra": 1}).status_code == 422


def test_an_application_can_neither_see_nor_set_another_applications_ops_endpoint(
    api: ApiServer, tenants: dict[str, Any], operator_key: str
) -> None:
    a, b = tenants["a"], tenants["b"]
    secret = api.call("PUT", OPS, a["key"], json={"url": HOOK}).json()["secret"]
    for method, kw in (
        ("PUT", {"json": {"url": "https://evil.example.com/", "application_id": a["app"]}}),
        ("GET", {"params": {"application_id": a["app"]}}),
        ("DELETE", {"params": {"application_id": a["app"]}}),
    ):
        answer = api.call(method, OPS, b["key"], **kw)
        assert_problem(answer, 404, "not-found", f"no application with id {a['app']}")
    messages = api.call("GET", OPS + "/messages", b["key"], params={"application_id": a["app"]})
    assert messages.status_code == 404
    # B's own is B's: it has none, and A's is unchanged
    assert_problem(api.call("GET", OPS, b["key"]), 404, "not-found", "has no ops endpoint")
    assert api.call("GET", OPS, a["key"]).json()["url"] == HOOK
    # The operator names any application
    seen = api.call("GET", OPS, operator_key, params={"application_id": a["app"]})
    assert seen.status_code == 200 and seen.json()["url"] == HOOK
    moved = api.call(
        "PUT", OPS, operator_key, json={"url": HOOK + "/op", "application_id": a["app"]}
    )
    assert moved.json()["secret"] == secret
    assert api.call("GET", OPS, a["key"]).json()["url"] == HOOK + "/op"


def test_disable_with_discard_through_the_api_drops_the_backlog(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    a = tenants["a"]
    answer = api.call(
        "POST", f"/v1/endpoints/{a['endpoint']}/disable", a["key"], json={"discard": True}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is False
    with session_scope() as session:
        delivery = session.scalars(select(Delivery).where(Delivery.id == a["delivery"])).one()
    assert delivery.status == DeliveryStatus.DISCARDED
    assert "discard" in (delivery.last_error or "")
