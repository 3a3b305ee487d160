"""One name per field: what `ethhook … --json` prints about a resource and what the API answers
about it carry the same fields (the public models of ethhook.service.public)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ethhook.db import session_scope
from ethhook.db.models import DeliveryAttempt, utcnow
from tests.integration.helpers import ethhook

# A resource: its `ethhook` command showing one, the tenants' fixture key of its id, its API path.
SHOWN = {
    "endpoint": (("endpoint", "show"), "endpoint", "/v1/endpoints/{}"),
    "endpoint secret": (("endpoint", "secret"), "endpoint", "/v1/endpoints/{}/secret"),
    "delivery": (("delivery", "show"), "delivery", "/v1/deliveries/{}"),
    "application": (("app", "show"), "app", "/v1/applications/{}"),
    "replay": (("replay", "status"), "replay", "/v1/replays/{}"),
}


def cli_json(*args: str) -> Any:
    result = ethhook(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fields(api: Any, model: str) -> set[str]:
    """The fields of one of the API's response models, from /openapi.json."""
    schema = api.call("GET", "/openapi.json").json()
    return set(schema["components"]["schemas"][model]["properties"])


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
    # When the CLI shows the resource and the API answers GET for it
    shown = cli_json(*command, str(resource_id))
    answer = api.call("GET", path.format(resource_id), operator_key)
    # Then both name the same fields (and a delivery's attempts too)
    assert answer.status_code == 200, answer.text
    assert sorted(shown) == sorted(answer.json())
    if resource == "delivery":
        assert [sorted(a) for a in shown["attempts"]] == [sorted(answer.json()["attempts"][0])]


def test_lists_and_changes_print_the_fields_the_api_answers(api, operator_key, tenants):
    a = tenants["a"]
    endpoint, with_secret = fields(api, "Endpoint"), fields(api, "EndpointWithSecret")
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
    assert [set(d) for d in deliveries] == [fields(api, "Delivery")]
    apps = cli_json("app", "list")
    assert {frozenset(app) for app in apps} == {frozenset(fields(api, "Application"))}

    retried = cli_json("delivery", "retry", str(a["delivery"]))
    answer = api.call("POST", f"/v1/deliveries/{a['delivery']}/retry", operator_key).json()
    assert retried["count"] == answer["count"] == 1
