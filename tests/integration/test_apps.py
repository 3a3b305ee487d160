"""Applications: their lifecycle over the CLI, API keys stored only as hashes, the operator key,
and tenant scoping in the service layer (another application's resource is simply not there)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from ethhook.config import get_settings
from ethhook.db import session_scope
from ethhook.db.models import Delivery, Endpoint, utcnow
from ethhook.exceptions import NotFoundError, PermissionDeniedError
from ethhook.service import apps, deliveries, endpoints
from ethhook.service.changes import build_changes
from ethhook.service.deliveries import DeliveryFilter
from ethhook.service.pages import Page
from ethhook.service.scope import OPERATOR
from tests.support.cli import assert_refused, ethhook
from tests.support.db import row_counts, store_and_match
from tests.support.endpoints import add_endpoint
from tests.support.factories import address, transfer

pytestmark = pytest.mark.usefixtures("db")

URL = "https://hooks.example.com/eth"


def api_key_rows() -> list[Any]:
    with session_scope() as session:
        return list(
            session.execute(
                text("SELECT application_id, role, key_hash FROM api_keys ORDER BY id")
            ).all()
        )


def who(key: str) -> apps.Principal | None:
    with session_scope() as session:
        return apps.authenticate(session, key)


def run_json(*args: str) -> Any:
    result = ethhook(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- the CLI -------------------------------------------------------------------------------------


def test_app_lifecycle_keys_are_shown_once_and_stored_only_as_their_hash():
    created = run_json("app", "add", "shop")
    key = created["api_key"]
    assert key.startswith("ehk_") and len(key) >= 4 + 43
    assert (created["name"], created["endpoints"]) == ("shop", 0)
    app_id = created["id"]

    rows = api_key_rows()
    assert rows == [(app_id, "application", hashlib.sha256(key.encode()).hexdigest())]
    assert who(key) == apps.Principal(app_id)

    listed = run_json("app", "list")
    assert [(a["id"], a["name"]) for a in listed] == [(1, "default"), (app_id, "shop")]
    shown = run_json("app", "show", str(app_id))
    assert shown["name"] == "shop" and "api_key" not in shown
    for args in (("app", "list"), ("app", "show", str(app_id)), ("app", "list", "--json")):
        assert "ehk_" not in ethhook(*args).stdout

    rotated = run_json("app", "rotate-key", str(app_id))["api_key"]
    assert rotated != key and who(rotated) == apps.Principal(app_id) and who(key) is None
    assert len(api_key_rows()) == 1

    assert ethhook("app", "delete", str(app_id)).returncode == 0
    assert run_json("app", "list") == [listed[0]] and who(rotated) is None and api_key_rows() == []


def test_human_output_of_app_add_prints_the_key_once():
    result = ethhook("app", "add", "billing")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    app_id = run_json("app", "list")[-1]["id"]
    assert lines[0] == f"created application {app_id} (billing)"
    assert lines[1].startswith("api key: ehk_") and result.stdout.count("ehk_") == 1


def test_an_application_with_endpoints_is_not_deleted_and_default_never():
    app_id = run_json("app", "add", "shop")["id"]
    endpoint = run_json("endpoint", "add", "--url", URL, "--app", str(app_id))
    assert endpoint["application_id"] == app_id
    assert run_json("endpoint", "add", "--url", URL)["application_id"] == 1
    assert [e["id"] for e in run_json("endpoint", "list", "--app", str(app_id))] == [endpoint["id"]]

    line = assert_refused(ethhook("app", "delete", str(app_id)))
    assert line == (
        f"ethhook: error: application {app_id} still has 1 endpoint(s); delete them first "
        f"(`ethhook endpoint list --app {app_id}`, then `ethhook endpoint delete ID`)"
    )
    assert run_json("app", "show", str(app_id))["endpoints"] == 1
    assert "built-in 'default'" in assert_refused(ethhook("app", "delete", "1"))

    assert ethhook("endpoint", "delete", str(endpoint["id"])).returncode == 0
    assert ethhook("app", "delete", str(app_id)).returncode == 0


def test_the_operator_key_is_replaced_never_doubled():
    first = run_json("app", "operator-key")["operator_key"]
    assert who(first) == apps.Principal(None) and who(first).is_operator  # type: ignore[union-attr]
    second = run_json("app", "operator-key")["operator_key"]
    assert who(first) is None and who(second) == apps.Principal(None)
    assert api_key_rows() == [(None, "operator", hashlib.sha256(second.encode()).hexdigest())]
    human = ethhook("app", "operator-key")
    assert human.returncode == 0 and human.stdout.count("ehk_") == 1


@pytest.mark.parametrize(
    "args",
    [
        ("app", "show", "999"),
        ("app", "rotate-key", "999"),
        ("app", "delete", "999"),
        ("app", "add", "default"),
        ("app", "add", "  "),
        ("app", "add", "n" * 201),
        ("app", "add", "two\nlines"),
        ("app", "show", "abc"),
        ("endpoint", "add", "--url", URL, "--app", "999"),
        ("endpoint", "list", "--app", "0"),
    ],
    ids=lambda a: " ".join(a)[:40],
)
def test_bad_app_input_is_one_line_exit_2_and_changes_nothing(args):
    before = (row_counts(), api_key_rows(), run_json("app", "list"))
    assert_refused(ethhook(*args))
    assert (row_counts(), api_key_rows(), run_json("app", "list")) == before


@pytest.mark.parametrize("key", ["", "ehk_", "ehk_" + "a" * 43, "Bearer x", "x" * 5000])
def test_a_wrong_key_authenticates_nobody(key):
    run_json("app", "add", "shop")
    assert who(key) is None


# --- tenant scoping in the service layer --------------------------------------------------------


def two_tenants() -> dict[str, int]:
    """Applications A and B, each with an endpoint that has one delivery."""
    with session_scope() as session:
        a = apps.create_application(session, "A", scope=OPERATOR).application.id
        b = apps.create_application(session, "B", scope=OPERATOR).application.id
    ep_a = add_endpoint(URL, contracts=[address(1)], application_id=a)[0]
    ep_b = add_endpoint(URL, contracts=[address(2)], application_id=b)[0]
    events = [
        transfer(contract=address(1), block=1, log_index=0, value=1),
        transfer(contract=address(2), block=1, log_index=1, value=2),
    ]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
        owner = dict(session.execute(select(Delivery.endpoint_id, Delivery.id)).all())
    return {"a": a, "b": b, "ep_a": ep_a, "ep_b": ep_b, "d_a": owner[ep_a], "d_b": owner[ep_b]}


# Every service function that takes an id, called with application B's scope on A's resource.
BY_ID: dict[str, Callable[[Any, dict[str, int]], Any]] = {
    "endpoint show": lambda s, t: endpoints.show_endpoint(s, t["ep_a"], scope=t["b"]),
    "endpoint get": lambda s, t: endpoints.get_endpoint(s, t["ep_a"], scope=t["b"]),
    "endpoint update": lambda s, t: endpoints.update_endpoint(
        s, t["ep_a"], build_changes(get_settings(), name="stolen"), scope=t["b"]
    ),
    "endpoint delete": lambda s, t: endpoints.delete_endpoint(s, t["ep_a"], scope=t["b"]),
    "endpoint enable": lambda s, t: endpoints.set_active(s, t["ep_a"], True, None, scope=t["b"]),
    "endpoint disable": lambda s, t: endpoints.set_active(s, t["ep_a"], False, "x", scope=t["b"]),
    "endpoint rotate": lambda s, t: endpoints.rotate_secret(s, t["ep_a"], 60, scope=t["b"]),
    "endpoint secret": lambda s, t: endpoints.endpoint_secrets(s, t["ep_a"], scope=t["b"]),
    "delivery show": lambda s, t: deliveries.show_delivery(s, t["d_a"], scope=t["b"]),
    "delivery retry": lambda s, t: deliveries.retry_deliveries(s, [t["d_a"]], scope=t["b"]),
    "delivery retry with its own": lambda s, t: deliveries.retry_deliveries(
        s, [t["d_b"], t["d_a"]], scope=t["b"]
    ),
    "app show": lambda s, t: apps.get_application(s, t["a"], scope=t["b"]),
    "app rotate-key": lambda s, t: apps.rotate_api_key(s, t["a"], scope=t["b"]),
    "app delete": lambda s, t: apps.delete_application(s, t["a"], scope=t["b"]),
    "endpoint add in A": lambda s, t: endpoints.create_endpoint(
        s, _spec(), scope=t["b"], application_id=t["a"]
    ),
}


def _spec() -> Any:
    from ethhook.service.validation import build_spec

    return build_spec(
        url=URL,
        chains=[],
        contracts=[],
        events=[],
        confirmations=0,
        rate_limit_per_s=None,
        retry_schedule=None,
        name=None,
        settings=get_settings(),
    )


def snapshot() -> Any:
    with session_scope() as session:
        rows = session.execute(select(Endpoint.__table__).order_by(Endpoint.id)).all()
        return rows, session.execute(select(Delivery.__table__).order_by(Delivery.id)).all()


@pytest.mark.parametrize("call", BY_ID.values(), ids=BY_ID.keys())
def test_another_applications_resource_is_not_found_and_unchanged(call):
    tenants = two_tenants()
    before, keys = snapshot(), api_key_rows()
    with pytest.raises(NotFoundError) as raised, session_scope() as session:
        call(session, tenants)
    assert "no " in str(raised.value) and "forbidden" not in str(raised.value).lower()
    assert (snapshot(), api_key_rows()) == (before, keys)


def test_the_same_calls_with_the_owners_scope_succeed():
    tenants = two_tenants()
    with session_scope() as session:
        shown = endpoints.show_endpoint(session, tenants["ep_a"], scope=tenants["a"])
        assert shown.endpoint.application_id == tenants["a"] and shown.deliveries == {"pending": 1}
        assert deliveries.show_delivery(session, tenants["d_a"], scope=tenants["a"])
        assert deliveries.retry_deliveries(session, [tenants["d_a"]], scope=tenants["a"]).count == 1
        assert apps.get_application(session, tenants["a"], scope=tenants["a"]).endpoints == 1


def test_lists_never_show_another_applications_rows():
    t = two_tenants()
    with session_scope() as session:
        for scope, mine in ((t["a"], t["ep_a"]), (t["b"], t["ep_b"])):
            listed = endpoints.list_endpoints(session, scope=scope)
            assert [e.id for e in listed.items] == [mine]
            assert (
                endpoints.list_endpoints(
                    session, scope=scope, application_id=t["a"] + t["b"] - scope
                ).items
                == []
            )
            shown = deliveries.list_deliveries(session, DeliveryFilter(), scope=scope).items
            assert [d.endpoint_id for d in shown] == [mine]
            other = t["ep_a"] + t["ep_b"] - mine
            assert (
                deliveries.list_deliveries(
                    session, DeliveryFilter(endpoint_id=other), scope=scope
                ).items
                == []
            )
            assert [a.id for a in apps.list_applications(session, scope=scope).items] == [scope]
            failed = DeliveryFilter(status="pending", endpoint_id=other)
            assert deliveries.retry_matching(session, failed, scope=scope).count == 0
        assert len(endpoints.list_endpoints(session, scope=OPERATOR).items) == 2
        assert len(deliveries.list_deliveries(session, DeliveryFilter(), scope=OPERATOR).items) == 2


def test_an_application_key_may_not_create_or_delete_applications():
    t = two_tenants()
    with session_scope() as session:
        with pytest.raises(PermissionDeniedError):
            apps.create_application(session, "C", scope=t["a"])
        with pytest.raises(PermissionDeniedError):
            apps.delete_application(session, t["a"], scope=t["a"])


def drain(fetch: Callable[[str | None], Page[Any]]) -> list[int]:
    ids: list[int] = []
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        assert len(page.items) <= 3
        ids += [item.id for item in page.items]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_pagination_returns_every_row_exactly_once():
    with session_scope() as session:
        app_ids = [
            apps.create_application(session, f"app{i}", scope=OPERATOR).application.id
            for i in range(6)
        ]
    endpoint_ids = [add_endpoint(URL)[0] for _ in range(7)]
    events = [transfer(contract=address(1), block=1, log_index=i, value=i) for i in range(3)]
    with session_scope() as session:
        store_and_match(session, events, utcnow())
        delivery_ids = list(session.scalars(select(Delivery.id).order_by(Delivery.id)))
        assert len(delivery_ids) == 21
        assert (
            drain(lambda c: endpoints.list_endpoints(session, scope=OPERATOR, cursor=c, limit=3))
            == endpoint_ids
        )
        assert drain(
            lambda c: apps.list_applications(session, scope=OPERATOR, cursor=c, limit=3)
        ) == [1, *app_ids]
        every = DeliveryFilter()
        assert (
            drain(
                lambda c: deliveries.list_deliveries(
                    session, every, scope=OPERATOR, cursor=c, limit=3
                )
            )
            == delivery_ids
        )
