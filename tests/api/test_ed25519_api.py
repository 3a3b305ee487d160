"""`"signing": "ed25519"` over HTTP: the answers carry the public key, never a private key; the test
webhook verifies with that key; an unknown scheme is a 422 problem and makes nothing."""

from __future__ import annotations

from typing import Any

from tests.support.api import ApiServer, assert_problem
from tests.support.db import endpoint_count
from tests.support.receiver import Receiver, verify_v1a


def test_an_ed25519_endpoint_over_http(
    api: ApiServer, tenants: dict[str, Any], receiver: Receiver
) -> None:
    key = tenants["a"]["key"]
    body = {"url": receiver.url("/ed"), "signing": "ed25519"}
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    endpoint = created.json()
    public_key = endpoint["public_key"]
    assert (endpoint["signing"], endpoint["secret"]) == ("ed25519", None)
    assert public_key.startswith("whpk_")

    shown = api.call("GET", f"/v1/endpoints/{endpoint['id']}", key).json()
    assert (shown["signing"], shown["public_key"]) == ("ed25519", public_key)
    secret = api.call("GET", f"/v1/endpoints/{endpoint['id']}/secret", key).json()
    assert (secret["secret"], secret["public_key"]) == (None, public_key)

    rotated = api.call("POST", f"/v1/endpoints/{endpoint['id']}/rotate-secret", key, json={})
    new_key = rotated.json()["public_key"]
    assert rotated.json()["secret"] is None and new_key not in (None, public_key)

    # The test webhook carries both key pairs' signatures during the grace period.
    answer = api.call("POST", f"/v1/endpoints/{endpoint['id']}/test", key)
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
    (got,) = receiver.on("/ed")
    assert verify_v1a(new_key, got.headers, got.body) == [True, False]
    assert verify_v1a(public_key, got.headers, got.body) == [False, True]
    texts = [created.text, rotated.text, answer.text, str(shown), str(secret)]
    assert all("whsk_" not in t for t in texts)


def test_an_unknown_signing_scheme_is_refused(api: ApiServer, tenants: dict[str, Any]) -> None:
    before = endpoint_count()
    answer = api.call(
        "POST",
        "/v1/endpoints",
        tenants["a"]["key"],
        json={"url": "http://127.0.0.1:9/x", "signing": "rsa"},
    )
    assert_problem(answer, 422, "invalid-input", "invalid --signing 'rsa': use one of hmac")
    assert endpoint_count() == before
