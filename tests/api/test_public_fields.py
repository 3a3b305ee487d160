"""One name per field: what `ethhook … --json` prints about a resource and what the API answers
about it carry the same fields (the public models of ethhook.service.public)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ethhook.db import session_scope
from ethhook.db.models import DeliveryAttempt, utcnow
from tests.support.cli import ethhook

# A resource: its `ethhook` command showing one, the tenants' fixture key of its id, its API path.
SHOWN = {
    "endpoint": (("endpoint", "show"), "endpoint", "/v1/endpoints/{}"),
    "endpoint secret": (("endpoint", "secret"), "endpoint", "/v1/endpoints/{}/secret"),
    "delivery": (("delivery", "show"), "delivery", "/v1/deliveries/{}"),
    "application": (("app", "show"), "app", "/v1/applications/{}"),
    "replay": (("replay", "status"), "replay", "/v1/replays/{}"),
}

ATTEMPT_FIELDS = ("attempt", "started_at", "duration_ms", "status_code", "error", "response_body")


def cli_json(*args: str) -> Any:
    result = ethhook(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fields(schemas: dict[str, Any], model: str) -> set[str]:
    """The fields of one of the API's response models (/openapi.json's components.schemas)."""
    return set(schemas[model]["properties"])


@pytest.mark.parametrize("resource", list(SHOWN))
def test_show_json_and_the_api_name_the_same_fields(api, operator_key, tenants, resource):
    command, key, path = SHOWN[resource]
    resource_id = tenants["a"][key]
    if resource == "delivery":
        with session_scope() as session:
            session.add(
                DeliveryAttempt(
                    delivery_id=resource_id,
                    attempt_number=1,
                    started_at=utcnow(),
                    duration_ms=1.5,
                    status_code=500,
                    response_body="down",
                )
            )
    # When the API answers GET for the resource and the CLI shows it
    answer = api.call("GET", path.format(resource_id), operator_key)
    shown = cli_json(*command, str(resource_id))
    # Then both name the same fields (and a delivery's attempts too)
    assert answer.status_code == 200, answer.text
    assert sorted(shown) == sorted(answer.json())
    if resource == "delivery":
        attempts = [shown["attempts"], answer.json()["attempts"]]
        assert [{frozenset(a) for a in listed} for listed in attempts] == [
            {frozenset(ATTEMPT_FIELDS)}
        ] * 2


def test_lists_and_changes_print_the_fields_the_api_answers(api, operator_key, tenants):
    a = tenants["a"]
    schema = api.call("GET", "/openapi.json").json()["components"]["schemas"]
    endpoint, with_secret = fields(schema, "Endpoint"), fields(schema, "EndpointWithSecret")
    # No failed delivery: nothing is retried, and no deliver task outlives the test.
    body = {"status": "failed", "endpoint_id": a["endpoint"]}
    answer = api.call("POST", "/v1/deliveries/retry", operator_key, json=body).json()
    listed = cli_json("endpoint", "list", "--app", str(a["app"]))
    disabled = cli_json("endpoint", "disable", str(a["endpoint"]))
    enabled = cli_json("endpoint", "enable", str(a["endpoint"]))
    updated = cli_json("endpoint", "update", str(a["endpoint"]), "--rate-limit", "5")
    rotated = cli_json("endpoint", "rotate-secret", str(a["endpoint"]))
    added = cli_json("endpoint", "add", "--url", "https://example.com/h", "--app", str(a["app"]))
    assert [set(e) for e in (listed[0], disabled, enabled, updated)] == [endpoint] * 4
    assert set(rotated) == set(added) == with_secret
    assert (updated["rate_limit"], updated["retry_schedule"]) == (5.0, None)

    deliveries = cli_json("delivery", "list", "--endpoint", str(a["endpoint"]))
    assert [set(d) for d in deliveries] == [fields(schema, "Delivery")]
    apps = cli_json("app", "list")
    assert {frozenset(app) for app in apps} == {frozenset(fields(schema, "Application"))}

    retried = cli_json("delivery", "retry", "--status", "failed", "--endpoint", str(a["endpoint"]))
    assert (retried["count"], retried["enqueued_tasks"], answer) == (0, 0, {"count": 0})
