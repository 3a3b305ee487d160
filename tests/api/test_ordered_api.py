"""`"ordered"` over HTTP: created, shown, changed and turned off (`null`) like the CLI's
`--ordered`; an unknown value is a 422 problem and makes or changes nothing."""

from __future__ import annotations

from typing import Any

from tests.support.api import ApiServer, assert_problem
from tests.support.db import endpoint_count


def test_ordered_is_created_shown_changed_and_turned_off(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    created = api.call(
        "POST", "/v1/endpoints", key, json={"url": "http://127.0.0.1:9/o", "ordered": "pause"}
    )
    assert created.status_code == 201, created.text
    endpoint_id = created.json()["id"]
    assert created.json()["ordered"] == "pause"
    shown = api.call("GET", f"/v1/endpoints/{endpoint_id}", key).json()
    assert (shown["ordered"], shown["paused"]) == ("pause", None)

    changed = api.call("PATCH", f"/v1/endpoints/{endpoint_id}", key, json={"ordered": "skip-dead"})
    assert changed.status_code == 200 and changed.json()["ordered"] == "skip-dead", changed.text
    refused = api.call("PATCH", f"/v1/endpoints/{endpoint_id}", key, json={"ordered": "fifo"})
    assert_problem(refused, 422, "invalid-input", "invalid --ordered 'fifo': use pause, skip-dead")
    assert api.call("GET", f"/v1/endpoints/{endpoint_id}", key).json()["ordered"] == "skip-dead"
    off = api.call("PATCH", f"/v1/endpoints/{endpoint_id}", key, json={"ordered": None})
    assert off.status_code == 200 and off.json()["ordered"] is None, off.text

    plain = api.call("POST", "/v1/endpoints", key, json={"url": "http://127.0.0.1:9/p"})
    assert plain.json()["ordered"] is None


def test_an_unknown_ordered_value_is_refused(api: ApiServer, tenants: dict[str, Any]) -> None:
    before = endpoint_count()
    answer = api.call(
        "POST",
        "/v1/endpoints",
        tenants["a"]["key"],
        json={"url": "http://127.0.0.1:9/x", "ordered": "sometimes"},
    )
    assert_problem(answer, 422, "invalid-input", "invalid --ordered 'sometimes'")
    assert endpoint_count() == before
