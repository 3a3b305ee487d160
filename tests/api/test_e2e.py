"""End to end over HTTP: an endpoint registered with POST /v1/endpoints receives its webhooks from
a real anvil chain through the listener and a Celery worker, each verified with standardwebhooks
and the secret the API returned; GET /v1/deliveries pages through all of them; a retry through the
API sends one again with the same webhook-id."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook

from ethhook.demo.devchain import events_in
from tests.support.api import ApiServer
from tests.support.chain import Token
from tests.support.factories import TRANSFER
from tests.support.listener import wait_for_cursor
from tests.support.receiver import Receiver
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.usefixtures("db", "worker")]

TXS, PER_TX = 3, 5


def all_deliveries(api: ApiServer, key: str, endpoint_id: int) -> tuple[list[dict[str, Any]], int]:
    """Every delivery of the endpoint, 4 a page; and how many pages that took."""
    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    while True:
        query = f"?endpoint_id={endpoint_id}&limit=4" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", "/v1/deliveries" + query, key).json()
        pages += 1
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages


def test_an_endpoint_made_over_http_gets_verified_webhooks_lists_and_retries_them(
    api: ApiServer, operator_key: str, receiver: Receiver, start_anvil: Any, start_listener: Any
) -> None:
    node = start_anvil(chain_id=1)
    token = Token(node)
    app = api.call("POST", "/v1/applications", operator_key, json={"name": "e2e"}).json()
    key = app["api_key"]
    body = {
        "url": receiver.url("/e2e"),
        "chains": [1],
        "contracts": [token.address],
        "events": [TRANSFER],
        "name": "over http",
    }
    created = api.call("POST", "/v1/endpoints", key, json=body)
    assert created.status_code == 201, created.text
    endpoint_id, secret = created.json()["id"], created.json()["secret"]
    listener = start_listener({"ETHEREUM_HTTP": node.http_url})
    listener.wait_started(1)

    for k in range(TXS):
        token.emit_transfers(PER_TX, 100 + k * PER_TX, wait=False)
    assert events_in(node.confirm_sent()) == TXS * PER_TX
    wait_for_cursor(1, node.block_number())
    wait_until(
        lambda: len({r.webhook_id for r in receiver.on("/e2e")}) >= TXS * PER_TX,
        60,
        0.2,
        "every webhook",
    )
    received = receiver.on("/e2e")
    verifier = Webhook(secret)
    for request in received:
        verifier.verify(request.body, request.headers)  # raises unless signed with that secret
        assert request.json["type"] == "event.instant"
    ids = {r.webhook_id for r in received}
    assert len(ids) == TXS * PER_TX

    def settled() -> list[dict[str, Any]] | None:
        rows, _ = all_deliveries(api, key, endpoint_id)
        return rows if all(d["status"] == "succeeded" for d in rows) else None

    wait_until(settled, 30, 0.3, "every delivery to be recorded as succeeded")
    rows, pages = all_deliveries(api, key, endpoint_id)
    assert pages == 4 and len(rows) == TXS * PER_TX
    assert {d["webhook_id"] for d in rows} == ids and len({d["id"] for d in rows}) == len(rows)

    chosen = rows[0]
    retried = api.call("POST", f"/v1/deliveries/{chosen['id']}/retry", key)
    assert retried.status_code == 202 and retried.json() == {"count": 1}
    wait_until(
        lambda: len([r for r in receiver.on("/e2e") if r.webhook_id == chosen["webhook_id"]]) == 2,
        30,
        0.2,
        "the retried webhook",
    )
    again = [r for r in receiver.on("/e2e") if r.webhook_id == chosen["webhook_id"]][-1]
    verifier.verify(again.body, again.headers)
    assert len(receiver.on("/e2e")) == TXS * PER_TX + 1  # nothing else was sent again
    wait_until(
        lambda: len(api.call("GET", f"/v1/deliveries/{chosen['id']}", key).json()["attempts"]) == 2,
        30,
        0.3,
        "the retry's attempt to be recorded",
    )
