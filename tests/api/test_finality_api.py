"""`finality` and `lifecycle` over HTTP: the same field names as `--json`, set on create and by
PATCH, and each refusal a 422 problem with the CLI's line that makes nothing."""

from __future__ import annotations

from typing import Any

from ethhook.listen.store import save_tags
from ethhook.listen.tags import TagState
from tests.support.api import ApiServer, assert_problem
from tests.support.db import endpoint_count

URL = "http://127.0.0.1:9/x"


def test_finality_and_lifecycle_are_set_shown_and_changed(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    body = {"url": URL, "finality": "finalized", "lifecycle": True}
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert (endpoint["finality"], endpoint["lifecycle"], endpoint["confirmations"]) == (
        "finalized",
        True,
        0,
    )
    path = f"/v1/endpoints/{endpoint['id']}"
    shown = api.call("GET", path, key).json()
    assert (shown["finality"], shown["lifecycle"]) == ("finalized", True)
    patched = api.call("PATCH", path, key, json={"finality": "latest", "confirmations": 6})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["finality"], patched.json()["confirmations"]) == ("latest", 6)
    assert patched.json()["lifecycle"] is True  # kept: not given
    patched = api.call("PATCH", path, key, json={"lifecycle": False})
    assert patched.json()["lifecycle"] is False
    # Defaults: latest, no lifecycle
    plain = api.call("POST", "/v1/endpoints", key, json={"url": URL}).json()
    assert (plain["finality"], plain["lifecycle"]) == ("latest", False)
    listed = api.call("GET", "/v1/endpoints", key).json()["data"]
    assert {e["id"]: e["finality"] for e in listed}[endpoint["id"]] == "latest"


def test_bad_finality_values_are_422_problems_that_make_nothing(
    api: ApiServer, tenants: dict[str, Any]
) -> None:
    key = tenants["a"]["key"]
    before = endpoint_count()
    answer = api.call("POST", "/v1/endpoints", key, json={"url": URL, "finality": "soon"})
    assert_problem(
        answer,
        422,
        "invalid-input",
        "invalid --finality 'soon': expected latest, safe or finalized",
    )
    answer = api.call(
        "POST", "/v1/endpoints", key, json={"url": URL, "finality": "safe", "confirmations": 2}
    )
    assert_problem(
        answer, 422, "invalid-input", "--finality safe and --confirmations 2 do not go together"
    )
    save_tags(1, TagState(False))
    answer = api.call(
        "POST", "/v1/endpoints", key, json={"url": URL, "chains": [1], "finality": "finalized"}
    )
    assert_problem(
        answer,
        422,
        "invalid-input",
        'the node of chain 1 does not answer the "finalized" block tag',
    )
    assert endpoint_count() == before
    made = api.call("POST", "/v1/endpoints", key, json={"url": URL, "confirmations": 3}).json()
    path = f"/v1/endpoints/{made['id']}"
    answer = api.call("PATCH", path, key, json={"finality": "safe"})
    assert_problem(answer, 422, "invalid-input", "--finality safe and --confirmations 3")
    answer = api.call("PATCH", path, key, json={"finality": None})
    assert answer.status_code == 422
    shown = api.call("GET", path, key).json()
    assert (shown["finality"], shown["confirmations"]) == ("latest", 3)
